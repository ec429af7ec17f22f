//! `vireo kv`: look inside a namespace's key-value stores and change them. Values go and come
//! back byte for byte (`@FILE`, `@-`, raw bytes on stdout), so binary data survives the trip.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use vireo_core::Name;

use crate::args::{self, Data};
use crate::client::Client;
use crate::output::{self, Format};

/// The most keys the server answers per page.
const MAX_PAGE: u32 = 1000;

#[derive(Subcommand)]
pub enum KvCommand {
    /// The namespace's stores (`default` always exists): list, create, delete.
    #[command(subcommand)]
    Stores(StoresCommand),
    /// Set a key to a value: the text given, @FILE for a file's bytes, or @- for standard input,
    /// stored verbatim (no newline dropped).
    Set {
        /// The store (`default`, or one `kv stores create` made).
        #[arg(value_parser = store_name)]
        store: Name,
        /// The key: any UTF-8, `/` and spaces included.
        #[arg(value_parser = key)]
        key: String,
        /// The value: this text, @FILE for a file's bytes, or @- for standard input.
        #[arg(value_name = "VALUE|@FILE|@-", value_parser = args::data)]
        value: Data,
    },
    /// Print a key's value: its raw bytes, or with -o json the key and the value as text if it
    /// is UTF-8, else base64.
    Get {
        /// The store (`default`, or one `kv stores create` made).
        #[arg(value_parser = store_name)]
        store: Name,
        /// The key: any UTF-8, `/` and spaces included.
        #[arg(value_parser = key)]
        key: String,
    },
    /// List a store's keys in order, a page at a time; the next page's cursor goes to stderr.
    Ls(LsArgs),
    /// Delete a key.
    Rm {
        /// The store (`default`, or one `kv stores create` made).
        #[arg(value_parser = store_name)]
        store: Name,
        /// The key: any UTF-8, `/` and spaces included.
        #[arg(value_parser = key)]
        key: String,
    },
}

#[derive(Subcommand)]
pub enum StoresCommand {
    /// The stores with their keys and bytes, and the namespace's max_kv_bytes quota.
    Ls,
    /// Create an empty store.
    Create {
        /// The store's name: lowercase letters, digits and `-`.
        #[arg(value_parser = store_name)]
        name: Name,
    },
    /// Delete a store with every key in it (`default` cannot be deleted).
    Rm {
        /// The store's name: lowercase letters, digits and `-`.
        #[arg(value_parser = store_name)]
        name: Name,
    },
}

#[derive(Args)]
pub struct LsArgs {
    /// The store (`default`, or one `kv stores create` made).
    #[arg(value_parser = store_name)]
    store: Name,
    /// Only keys starting with this.
    #[arg(long, value_name = "P")]
    prefix: Option<String>,
    /// Keys per page (the server's default is 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE)))]
    limit: Option<u32>,
    /// Start after the page this cursor was printed for.
    #[arg(long, value_name = "C", conflicts_with = "all")]
    cursor: Option<String>,
    /// Every key, page after page.
    #[arg(long)]
    all: bool,
}

fn store_name(value: &str) -> Result<Name, String> {
    Name::parse("key-value store", value).map_err(|error| error.to_string())
}

/// A key the API can name: `.` and `..` cannot travel as a URL path segment.
fn key(value: &str) -> Result<String, String> {
    match value {
        "" => Err("a key must not be empty".into()),
        "." | ".." => Err(format!(
            "the key {value:?} cannot be named in a URL path, so not through the API"
        )),
        _ => Ok(value.to_string()),
    }
}

fn stores_path(client: &Client) -> String {
    format!("/v1/namespaces/{}/kv", client.namespace())
}

fn keys_path(client: &Client, store: &Name) -> String {
    format!("{}/{store}/keys", stores_path(client))
}

/// The key in one path segment: every byte but letters and digits percent-encoded, so `/`, `?`,
/// `%` and spaces stay part of the key.
fn key_path(client: &Client, store: &Name, key: &str) -> String {
    format!(
        "{}/{}",
        keys_path(client, store),
        utf8_percent_encode(key, NON_ALPHANUMERIC)
    )
}

pub async fn run(client: &Client, format: Format, command: KvCommand) -> anyhow::Result<()> {
    let namespace = client.namespace().clone();
    match command {
        KvCommand::Stores(command) => stores(client, format, command).await,
        KvCommand::Set { store, key, value } => {
            let value = value.read().await?;
            let response = client
                .success(
                    client
                        .request(Method::PUT, &key_path(client, &store, &key))
                        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .body(value.clone()),
                )
                .await
                .with_context(|| format!("setting {key:?} in {namespace}/{store}"))?;
            let created = response.status() == StatusCode::CREATED;
            let answer = json!({"namespace": namespace.as_str(), "store": store.as_str(), "key": key, "bytes": value.len(), "created": created});
            let verb = if created { "created" } else { "replaced" };
            output::emit(format, answer, |_: Value| {
                format!(
                    "{key:?} {verb} in {namespace}/{store} ({})\n",
                    output::size(value.len() as u64)
                )
            })
        }
        KvCommand::Get { store, key } => {
            let response = client
                .success(client.request(Method::GET, &key_path(client, &store, &key)))
                .await
                .with_context(|| format!("reading {key:?} in {namespace}/{store}"))?;
            let value = response.bytes().await.context("reading the value")?;
            match format {
                Format::Table => output::write_stdout(&value),
                Format::Json => {
                    let mut answer = json!({"namespace": namespace.as_str(), "store": store.as_str(), "key": key});
                    match std::str::from_utf8(&value) {
                        Ok(text) => answer["value"] = json!(text),
                        Err(_) => answer["value_base64"] = json!(STANDARD.encode(&value)),
                    }
                    output::write_stdout(output::pretty_json(&answer).as_bytes())
                }
                Format::Csv => Err(output::csv_unsupported()),
            }
        }
        KvCommand::Ls(args) => list_keys(client, format, args).await,
        KvCommand::Rm { store, key } => {
            client
                .no_content(client.request(Method::DELETE, &key_path(client, &store, &key)))
                .await
                .with_context(|| format!("deleting {key:?} in {namespace}/{store}"))?;
            let answer = json!({"namespace": namespace.as_str(), "store": store.as_str(), "key": key, "deleted": true});
            output::emit(format, answer, |_: Value| {
                format!("{key:?} deleted from {namespace}/{store}\n")
            })
        }
    }
}

#[derive(Deserialize)]
struct StoreList {
    namespace: String,
    stores: Vec<StoreView>,
    bytes_used: u64,
    max_kv_bytes: Option<u64>,
}

#[derive(Deserialize)]
struct StoreView {
    name: String,
    keys: u64,
    bytes: u64,
    created_at_us: i64,
}

async fn stores(client: &Client, format: Format, command: StoresCommand) -> anyhow::Result<()> {
    let namespace = client.namespace();
    match command {
        StoresCommand::Ls => {
            let answer = client
                .json(client.request(Method::GET, &stores_path(client)))
                .await
                .with_context(|| format!("listing the key-value stores of {namespace}"))?;
            output::emit(format, answer, |list: StoreList| {
                let quota = match list.max_kv_bytes {
                    Some(limit) => format!("of its max_kv_bytes quota of {}", output::size(limit)),
                    None => "(no max_kv_bytes quota)".to_string(),
                };
                let table = output::table(
                    ["STORE", "KEYS", "BYTES", "CREATED"],
                    list.stores.iter().map(|store| {
                        [
                            store.name.clone(),
                            store.keys.to_string(),
                            output::size(store.bytes),
                            output::timestamp(store.created_at_us),
                        ]
                    }),
                );
                format!(
                    "{table}\nnamespace {} uses {} {quota}\n",
                    list.namespace,
                    output::size(list.bytes_used)
                )
            })
        }
        StoresCommand::Create { name } => {
            let answer = client
                .json(
                    client
                        .request(Method::POST, &stores_path(client))
                        .json(&json!({"name": name.as_str()})),
                )
                .await
                .with_context(|| format!("creating key-value store {namespace}/{name}"))?;
            output::emit(format, answer, |_: Value| {
                format!("key-value store {namespace}/{name} created\n")
            })
        }
        StoresCommand::Rm { name } => {
            let path = format!("{}/{name}", stores_path(client));
            client
                .no_content(client.request(Method::DELETE, &path))
                .await
                .with_context(|| format!("deleting key-value store {namespace}/{name}"))?;
            let answer =
                json!({"namespace": namespace.as_str(), "store": name.as_str(), "deleted": true});
            output::emit(format, answer, |_: Value| {
                format!("key-value store {namespace}/{name} deleted with its keys\n")
            })
        }
    }
}

#[derive(Deserialize)]
struct KeyPage {
    keys: Vec<String>,
    next_cursor: Option<String>,
}

/// One page, or with `--all` every page; the keys go to stdout, a cursor left over to stderr.
async fn list_keys(client: &Client, format: Format, args: LsArgs) -> anyhow::Result<()> {
    let store = &args.store;
    let mut keys = Vec::new();
    let mut cursor = args.cursor.clone();
    loop {
        let mut query: Vec<(&str, String)> = Vec::new();
        query.extend(args.prefix.clone().map(|prefix| ("prefix", prefix)));
        query.extend(args.limit.map(|limit| ("limit", limit.to_string())));
        query.extend(cursor.clone().map(|cursor| ("cursor", cursor)));
        let answer = client
            .json(
                client
                    .request(Method::GET, &keys_path(client, store))
                    .query(&query),
            )
            .await
            .with_context(|| format!("listing the keys of {}/{store}", client.namespace()))?;
        let page: KeyPage = output::decode(answer)?;
        keys.extend(page.keys);
        cursor = page.next_cursor;
        if !args.all || cursor.is_none() {
            break;
        }
    }
    if let Some(cursor) = &cursor {
        eprintln!("(more keys: --cursor {cursor} lists the next page, --all lists every key)");
    }
    let text = match format {
        Format::Table => output::table(["KEY"], keys.into_iter().map(|key| [key])),
        Format::Json => output::pretty_json(&json!({"keys": keys, "next_cursor": cursor})),
        Format::Csv => return Err(output::csv_unsupported()),
    };
    output::write_stdout(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_travel_in_one_path_segment() {
        let client = Client::new("http://127.0.0.1:8080", "team-a", None, None).unwrap();
        let store = Name::parse("store", "sessions").unwrap();
        assert_eq!(
            key_path(&client, &store, "a/b c:ü%"),
            "/v1/namespaces/team-a/kv/sessions/keys/a%2Fb%20c%3A%C3%BC%25"
        );
    }

    #[test]
    fn keys_a_url_cannot_carry_are_refused() {
        assert!(key("").is_err());
        assert!(key(".").unwrap_err().contains("URL path"));
        assert!(key("..").is_err());
        assert_eq!(key("...").unwrap(), "...");
    }
}
