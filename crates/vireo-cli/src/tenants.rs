//! `vireo ns` (namespaces and their quotas) and `vireo keys` (API keys): admin commands.

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::Client;
use crate::output::{self, Format};

#[derive(Subcommand)]
pub enum NsCommand {
    /// Create a namespace, optionally with quotas.
    Create {
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// List the namespaces (an admin key sees all, other keys the ones they cover).
    Ls,
    /// Change a namespace's quotas; flags not given are removed (no quota).
    Quota {
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// Delete an empty namespace; keys that name it are revoked.
    Rm { name: String },
}

#[derive(Args)]
pub struct QuotaArgs {
    /// Functions the namespace may hold.
    #[arg(long, value_name = "N")]
    max_functions: Option<u32>,
    /// Invocations running at once across the namespace.
    #[arg(long, value_name = "N")]
    max_concurrency: Option<u32>,
    /// Async invocations queued or running.
    #[arg(long, value_name = "N")]
    max_queued: Option<u64>,
    /// Requests per second each API key may make to the namespace.
    #[arg(long, value_name = "N", requires = "key_burst")]
    key_rate: Option<u32>,
    /// Burst allowed above --key-rate.
    #[arg(long, value_name = "N", requires = "key_rate")]
    key_burst: Option<u32>,
    /// Bytes of keys and values the namespace's key-value stores may hold together.
    #[arg(long, value_name = "BYTES")]
    max_kv_bytes: Option<u64>,
    /// Bytes of objects the namespace's buckets may hold together.
    #[arg(long, value_name = "BYTES")]
    max_object_bytes: Option<u64>,
}

impl QuotaArgs {
    fn to_json(&self) -> Value {
        let key_rate_limit = self
            .key_rate
            .zip(self.key_burst)
            .map(|(per_second, burst)| json!({"per_second": per_second, "burst": burst}));
        json!({
            "max_functions": self.max_functions,
            "max_concurrency": self.max_concurrency,
            "max_queued": self.max_queued,
            "key_rate_limit": key_rate_limit,
            "max_kv_bytes": self.max_kv_bytes,
            "max_object_bytes": self.max_object_bytes,
        })
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once and cannot be shown again.
    Create {
        /// What the key may do; every role but admin also needs `--namespace NS[,NS...]`.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// When it stops working: a duration from now (`30d`) or an RFC 3339 time.
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
        /// A note for people, e.g. who holds the key.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List keys (never their secrets).
    Ls,
    /// Revoke a key by id; it stops working at once.
    Revoke { id: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Developer,
    Invoker,
    Viewer,
}

#[derive(Deserialize)]
struct NamespaceView {
    name: String,
    created_at: String,
    quotas: Value,
    functions: u64,
}

#[derive(Deserialize)]
struct NamespaceList {
    namespaces: Vec<NamespaceView>,
}

#[derive(Deserialize)]
struct KeyView {
    id: String,
    role: String,
    namespaces: Vec<String>,
    description: Option<String>,
    created_at: String,
    expires_at: Option<String>,
    state: String,
}

#[derive(Deserialize)]
struct CreatedKey {
    key: String,
    #[serde(flatten)]
    view: KeyView,
}

#[derive(Deserialize)]
struct KeyList {
    keys: Vec<KeyView>,
}

pub async fn namespaces(client: &Client, format: Format, command: NsCommand) -> anyhow::Result<()> {
    match command {
        NsCommand::Create { name, quotas } => {
            let body = json!({"name": name, "quotas": quotas.to_json()});
            let answer = client
                .json(client.request(Method::POST, "/v1/namespaces").json(&body))
                .await
                .with_context(|| format!("creating namespace {name}"))?;
            output::emit(format, answer, |ns: NamespaceView| {
                format!(
                    "namespace {} created ({})\n",
                    ns.name,
                    quotas_text(&ns.quotas)
                )
            })
        }
        NsCommand::Ls => {
            let answer = client
                .json(client.request(Method::GET, "/v1/namespaces"))
                .await
                .context("listing namespaces")?;
            output::emit(format, answer, |list: NamespaceList| {
                output::table(
                    ["NAME", "FUNCTIONS", "QUOTAS", "CREATED"],
                    list.namespaces.iter().map(|ns| {
                        [
                            ns.name.clone(),
                            ns.functions.to_string(),
                            quotas_text(&ns.quotas),
                            ns.created_at.clone(),
                        ]
                    }),
                )
            })
        }
        NsCommand::Quota { name, quotas } => {
            let path = format!("/v1/namespaces/{name}/quotas");
            let answer = client
                .json(client.request(Method::PUT, &path).json(&quotas.to_json()))
                .await
                .with_context(|| format!("setting the quotas of {name}"))?;
            output::emit(format, answer, |ns: NamespaceView| {
                format!("namespace {}: {}\n", ns.name, quotas_text(&ns.quotas))
            })
        }
        NsCommand::Rm { name } => {
            client
                .no_content(client.request(Method::DELETE, &format!("/v1/namespaces/{name}")))
                .await
                .with_context(|| format!("deleting namespace {name}"))?;
            done(format, &format!("namespace {name} deleted\n"))
        }
    }
}

/// `team-a,team-b` as the namespaces of a key.
pub fn namespace_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|ns| !ns.is_empty())
        .map(str::to_string)
        .collect()
}

/// `namespaces` is what `--namespace` named, for `keys create`.
pub async fn keys(
    client: &Client,
    format: Format,
    command: KeysCommand,
    namespaces: Vec<String>,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            role,
            expires,
            description,
        } => {
            let role = format!("{role:?}").to_lowercase();
            if role != "admin" && namespaces.is_empty() {
                anyhow::bail!(
                    "a {role} key acts only in the namespaces it names: add -n NS[,NS...], e.g. `vireo keys create --role {role} -n default`"
                );
            }
            let body = json!({
                "role": role, "namespaces": namespaces, "expires": expires, "description": description,
            });
            let answer = client
                .json(client.request(Method::POST, "/v1/keys").json(&body))
                .await
                .with_context(|| format!("creating a {role} key"))?;
            output::emit(format, answer, |created: CreatedKey| {
                format!(
                    "{}\n\nkey {} ({}, {}) created. It is shown only now: store it safely.\n",
                    created.key,
                    created.view.id,
                    created.view.role,
                    scope(&created.view)
                )
            })
        }
        KeysCommand::Ls => {
            let answer = client
                .json(client.request(Method::GET, "/v1/keys"))
                .await
                .context("listing API keys")?;
            output::emit(format, answer, |list: KeyList| {
                output::table(
                    [
                        "ID",
                        "ROLE",
                        "NAMESPACES",
                        "STATE",
                        "EXPIRES",
                        "CREATED",
                        "DESCRIPTION",
                    ],
                    list.keys.iter().map(|key| {
                        [
                            key.id.clone(),
                            key.role.clone(),
                            scope(key),
                            key.state.clone(),
                            output::or_dash(key.expires_at.clone()),
                            key.created_at.clone(),
                            output::or_dash(key.description.clone()),
                        ]
                    }),
                )
            })
        }
        KeysCommand::Revoke { id } => {
            let answer = client
                .json(client.request(Method::DELETE, &format!("/v1/keys/{id}")))
                .await
                .with_context(|| format!("revoking key {id}"))?;
            output::emit(format, answer, |key: KeyView| {
                format!("key {} revoked\n", key.id)
            })
        }
    }
}

fn scope(key: &KeyView) -> String {
    if key.namespaces.is_empty() {
        "all namespaces".to_string()
    } else {
        key.namespaces.join(",")
    }
}

/// `max_functions=10 max_concurrency=5`, or `no quotas`.
fn quotas_text(quotas: &Value) -> String {
    let parts: Vec<String> = quotas
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| match value {
            Value::Object(limit) => format!(
                "{name}={}/s burst {}",
                limit.get("per_second").unwrap_or(&Value::Null),
                limit.get("burst").unwrap_or(&Value::Null)
            ),
            other => format!("{name}={other}"),
        })
        .collect();
    if parts.is_empty() {
        "no quotas".to_string()
    } else {
        parts.join(" ")
    }
}

fn done(format: Format, message: &str) -> anyhow::Result<()> {
    if format == Format::Json {
        return output::write_stdout(b"{}\n");
    }
    output::write_stdout(message.as_bytes())
}
