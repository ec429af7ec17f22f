//! `vireo secrets`: set, list and delete a namespace's secrets. A value goes in on standard
//! input (never on the command line, where `ps` and shell history would show it) and never
//! comes back out: the server has no route that answers one.

use std::io::{IsTerminal as _, Read};

use anyhow::{Context as _, anyhow};
use clap::Subcommand;
use reqwest::{Method, StatusCode};
use serde_json::json;
use vireo_core::secrets::MAX_SECRET_BYTES;
use vireo_core::{InvalidSecretValue, Name, SecretName, SecretValue};

use crate::client::Client;
use crate::output::{self, Format};
use crate::views::SecretList;

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Set a secret to the value read from standard input (one trailing newline is dropped).
    /// Functions granted it see the new value from their next invocation on.
    Set {
        /// NS/NAME, or NAME in the namespace of --namespace.
        #[arg(value_name = "[NS/]NAME", value_parser = SecretRef::parse)]
        secret: SecretRef,
    },
    /// List a namespace's secrets: names and times, never values.
    Ls {
        /// The namespace [default: the one of --namespace]
        #[arg(value_name = "NS", value_parser = |ns: &str| Name::parse("namespace", ns))]
        ns: Option<Name>,
    },
    /// Delete a secret; versions granted it fail to load until it is set again.
    Rm {
        /// NS/NAME, or NAME in the namespace of --namespace.
        #[arg(value_name = "[NS/]NAME", value_parser = SecretRef::parse)]
        secret: SecretRef,
    },
}

/// `NS/NAME` or `NAME`, checked before anything is read or sent.
#[derive(Debug, Clone)]
pub struct SecretRef {
    namespace: Option<Name>,
    name: SecretName,
}

impl SecretRef {
    fn parse(value: &str) -> Result<Self, String> {
        let (namespace, name) = match value.split_once('/') {
            Some((ns, name)) => (
                Some(Name::parse("namespace", ns).map_err(|e| e.to_string())?),
                name,
            ),
            None => (None, value),
        };
        let name = SecretName::parse(name).map_err(|e| e.to_string())?;
        Ok(Self { namespace, name })
    }

    /// The namespace and the secret's API path.
    fn resolve(&self, client: &Client) -> (Name, String) {
        let namespace = self
            .namespace
            .as_ref()
            .unwrap_or(client.namespace())
            .clone();
        let path = format!("{}/{}", secrets_path(&namespace), self.name);
        (namespace, path)
    }
}

fn secrets_path(namespace: &Name) -> String {
    format!("/v1/namespaces/{namespace}/secrets")
}

pub async fn run(client: &Client, format: Format, command: SecretsCommand) -> anyhow::Result<()> {
    match command {
        SecretsCommand::Set { secret } => {
            let (namespace, path) = secret.resolve(client);
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("reading the value from standard input; end it with Ctrl-D");
            }
            let value = read_value(stdin.lock())?;
            let body = json!({ "value": value.expose() });
            let response = client
                .success(client.request(Method::PUT, &path).json(&body))
                .await
                .with_context(|| format!("setting secret {namespace}/{}", secret.name))?;
            let created = response.status() == StatusCode::CREATED;
            let verb = if created { "created" } else { "updated" };
            let answer =
                json!({"namespace": namespace.as_str(), "name": secret.name, "created": created});
            output::emit(format, answer, |_: serde_json::Value| {
                format!("secret {namespace}/{} {verb}\n", secret.name)
            })
        }
        SecretsCommand::Ls { ns } => {
            let namespace = ns.unwrap_or_else(|| client.namespace().clone());
            let answer = client
                .json(client.request(Method::GET, &secrets_path(&namespace)))
                .await
                .with_context(|| format!("listing the secrets of namespace {namespace}"))?;
            output::emit(format, answer, |list: SecretList| {
                output::table(
                    ["NAME", "CREATED", "UPDATED"],
                    list.secrets.iter().map(|s| {
                        [
                            s.name.clone(),
                            output::timestamp(s.created_at_us),
                            output::timestamp(s.updated_at_us),
                        ]
                    }),
                )
            })
        }
        SecretsCommand::Rm { secret } => {
            let (namespace, path) = secret.resolve(client);
            client
                .no_content(client.request(Method::DELETE, &path))
                .await
                .with_context(|| format!("deleting secret {namespace}/{}", secret.name))?;
            let answer =
                json!({"namespace": namespace.as_str(), "name": secret.name, "deleted": true});
            output::emit(format, answer, |_: serde_json::Value| {
                format!("secret {namespace}/{} deleted\n", secret.name)
            })
        }
    }
}

/// The value on `input` without one trailing newline (`\n` or `\r\n`, as `echo` or an editor
/// adds); a value longer than the server takes is refused without reading all of it.
fn read_value(input: impl Read) -> anyhow::Result<SecretValue> {
    let mut bytes = Vec::new();
    input
        .take(MAX_SECRET_BYTES as u64 + 3)
        .read_to_end(&mut bytes)
        .context("reading the value from standard input")?;
    let mut text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("the value on standard input is not UTF-8 text"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    SecretValue::new(text).map_err(|error| match error {
        InvalidSecretValue::Empty => {
            anyhow!("{error}: pipe it in, e.g. `printf %s \"$PASSWORD\" | vireo secrets set NAME`")
        }
        other => anyhow!(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &str) -> anyhow::Result<String> {
        read_value(input.as_bytes()).map(|value| value.expose().to_string())
    }

    #[test]
    fn one_trailing_newline_is_dropped() {
        assert_eq!(read("hunter2").unwrap(), "hunter2");
        assert_eq!(read("hunter2\n").unwrap(), "hunter2");
        assert_eq!(read("hunter2\r\n").unwrap(), "hunter2");
        assert_eq!(read("two\nlines\n\n").unwrap(), "two\nlines\n");
    }

    #[test]
    fn empty_and_oversized_values_are_refused() {
        for empty in ["", "\n", "\r\n"] {
            let err = read(empty).unwrap_err().to_string();
            assert!(err.contains("must not be empty"), "{empty:?}: {err}");
        }
        assert!(read(&"x".repeat(MAX_SECRET_BYTES)).is_ok());
        let err = read(&"x".repeat(MAX_SECRET_BYTES + 1)).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[test]
    fn references_name_a_namespace_or_not() {
        let full = SecretRef::parse("team-a/DB_PASSWORD").unwrap();
        assert_eq!(full.namespace.unwrap().as_str(), "team-a");
        assert_eq!(full.name.as_str(), "DB_PASSWORD");
        assert!(SecretRef::parse("DB_PASSWORD").unwrap().namespace.is_none());
        assert!(SecretRef::parse("Team/DB_PASSWORD").is_err());
        assert!(SecretRef::parse("default/db-password").is_err());
        assert!(SecretRef::parse("a/b/C").is_err());
    }
}
