//! `vireo sqlite`: a namespace's SQLite databases (the ones functions open through Spin's
//! sqlite), listed, created, deleted, and a statement run on one, for operators.

use anyhow::Context as _;
use clap::Subcommand;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use vireo_core::Name;

use crate::client::Client;
use crate::output::{self, Format};

#[derive(Subcommand)]
pub enum SqliteCommand {
    /// The namespace's databases (`default` always exists) with their sizes on disk.
    Ls,
    /// Create an empty database.
    Create {
        /// `NS/DB`, or `DB` in the profile's namespace.
        #[arg(value_name = "[NS/]DB", value_parser = database)]
        database: Database,
    },
    /// Delete a database with its data (`default` is emptied instead).
    Rm {
        /// `NS/DB`, or `DB` in the profile's namespace.
        #[arg(value_name = "[NS/]DB", value_parser = database)]
        database: Database,
    },
    /// Run one SQL statement and print the rows it returns (-o json for the server's answer).
    Exec {
        /// `NS/DB`, or `DB` in the profile's namespace.
        #[arg(value_name = "[NS/]DB", value_parser = database)]
        database: Database,
        /// One statement; `?` marks where each --param goes.
        statement: String,
        /// A value bound to the statement's next `?`: JSON (`42`, `2.5`, `null`, `"text"`,
        /// `{"blob": "<base64>"}`), or else the text as given; repeat for more.
        #[arg(long = "param", value_name = "VALUE", value_parser = param)]
        params: Vec<Value>,
    },
}

/// A database named on the command line, with its namespace if it gave one.
#[derive(Clone)]
pub struct Database {
    namespace: Option<Name>,
    name: Name,
}

fn database(value: &str) -> Result<Database, String> {
    let (namespace, name) = match value.split_once('/') {
        Some((namespace, name)) => (
            Some(Name::parse("namespace", namespace).map_err(|e| e.to_string())?),
            name,
        ),
        None => (None, value),
    };
    Ok(Database {
        namespace,
        name: Name::parse("SQLite database", name).map_err(|e| e.to_string())?,
    })
}

/// JSON when it parses as JSON, otherwise the text itself.
fn param(value: &str) -> Result<Value, String> {
    Ok(serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string())))
}

fn databases_path(namespace: &Name) -> String {
    format!("/v1/namespaces/{namespace}/sqlite")
}

#[derive(Deserialize)]
struct DatabaseList {
    namespace: String,
    databases: Vec<DatabaseView>,
    bytes_used: u64,
}

#[derive(Deserialize)]
struct DatabaseView {
    name: String,
    bytes: u64,
}

#[derive(Deserialize)]
struct Executed {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
    changes: u64,
}

pub async fn run(client: &Client, format: Format, command: SqliteCommand) -> anyhow::Result<()> {
    let in_namespace = |given: Option<Name>| given.unwrap_or_else(|| client.namespace().clone());
    match command {
        SqliteCommand::Ls => {
            let namespace = client.namespace();
            let answer = client
                .json(client.request(Method::GET, &databases_path(namespace)))
                .await
                .with_context(|| format!("listing the SQLite databases of {namespace}"))?;
            output::emit(format, answer, |list: DatabaseList| {
                let table = output::table(
                    ["DATABASE", "SIZE"],
                    list.databases
                        .iter()
                        .map(|database| [database.name.clone(), output::size(database.bytes)]),
                );
                format!(
                    "{table}\nnamespace {} holds {} in SQLite databases\n",
                    list.namespace,
                    output::size(list.bytes_used)
                )
            })
        }
        SqliteCommand::Create { database } => {
            let namespace = in_namespace(database.namespace);
            let name = database.name;
            let answer = client
                .json(
                    client
                        .request(Method::POST, &databases_path(&namespace))
                        .json(&json!({"name": name.as_str()})),
                )
                .await
                .with_context(|| format!("creating SQLite database {namespace}/{name}"))?;
            output::emit(format, answer, |_: Value| {
                format!("SQLite database {namespace}/{name} created\n")
            })
        }
        SqliteCommand::Rm { database } => {
            let namespace = in_namespace(database.namespace);
            let name = database.name;
            let path = format!("{}/{name}", databases_path(&namespace));
            client
                .no_content(client.request(Method::DELETE, &path))
                .await
                .with_context(|| format!("deleting SQLite database {namespace}/{name}"))?;
            let answer = json!({"namespace": namespace.as_str(), "database": name.as_str(), "deleted": true});
            output::emit(format, answer, |_: Value| {
                format!("SQLite database {namespace}/{name} deleted with its data\n")
            })
        }
        SqliteCommand::Exec {
            database,
            statement,
            params,
        } => {
            let namespace = in_namespace(database.namespace);
            let name = database.name;
            let path = format!("{}/{name}/execute", databases_path(&namespace));
            let answer = client
                .json(
                    client
                        .request(Method::POST, &path)
                        .json(&json!({"statement": statement, "parameters": params})),
                )
                .await
                .with_context(|| format!("running a statement on {namespace}/{name}"))?;
            output::emit(format, answer, shown)
        }
    }
}

/// The rows as a table (text as is, other values as JSON), then what changed.
fn shown(executed: Executed) -> String {
    let cell = |value: &Value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let mut text = if executed.columns.is_empty() {
        String::new()
    } else {
        output::table(
            executed.columns.clone(),
            executed
                .rows
                .iter()
                .map(|row| row.iter().map(cell).collect::<Vec<_>>()),
        )
    };
    let rows = executed.rows.len();
    text.push_str(&format!(
        "{rows} row{} returned, {} changed\n",
        if rows == 1 { "" } else { "s" },
        executed.changes
    ));
    text
}
