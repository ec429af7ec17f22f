//! The settings flags `vireo deploy` and `vireo config` share, and the settings they send.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use reqwest::multipart::{Form, Part};
use serde::Serialize;
use serde_json::{Map, Value};
use vireo_core::cors::CorsSettings;
use vireo_core::settings::{DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_MS};
use vireo_core::variables::{SecretRef, VariableValue};
use vireo_core::{InvokeAuth, Name, RateLimit, SecretName};

use crate::{args, output};

/// The settings flags of `vireo deploy` and `vireo config`: each replaces that setting of the
/// latest version; the rest is kept.
#[derive(Args)]
pub struct SettingsArgs {
    #[arg(
        long,
        value_name = "MIB",
        value_parser = clap::value_parser!(u32).range(1..),
        help = format!("Memory limit per instance, in MiB [default: {DEFAULT_MEMORY_MIB}]")
    )]
    memory: Option<u32>,

    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_timeout_ms,
        help = format!(
            "Wall-clock limit per invocation: seconds (`2`) or a duration (`2s`, `500ms`, `1m`) [default: {}]",
            output::duration_ms(DEFAULT_TIMEOUT_MS)
        )
    )]
    timeout: Option<u64>,

    /// Environment variable the function sees; repeat for more (a repeated KEY keeps its last
    /// value).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,

    /// A key-value store of the namespace the function may open (`default` too only when
    /// named); repeat for more. Given at all, the list replaces the latest version's
    /// [default: none]
    #[arg(long = "kv", value_name = "STORE", value_parser = args::kv_store_name)]
    key_value_stores: Vec<Name>,

    /// A bucket of the namespace the function may open through `wasi:blobstore`; repeat for
    /// more. Given at all, the list replaces the latest version's [default: none]
    #[arg(long = "bucket", value_name = "BUCKET", value_parser = args::bucket_name)]
    buckets: Vec<Name>,

    /// A SQLite database of the namespace the function may open through Spin's sqlite
    /// (`default` too only when named); repeat for more. Given at all, the list replaces the
    /// latest version's [default: none]
    #[arg(long = "sqlite", value_name = "DATABASE", value_parser = args::sqlite_database_name)]
    sqlite_databases: Vec<Name>,

    /// A configuration variable the function reads through `wasi:config/store` or Spin's
    /// `variables` (names: lowercase letters, digits, `_`); repeat for more. Given at all,
    /// `--var` and `--var-secret` together replace the latest version's variables
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_env)]
    variables: Vec<(String, String)>,

    /// A configuration variable whose value is a secret of the namespace, opened when the
    /// version loads (never shown); repeat for more. The secret must exist
    #[arg(long = "var-secret", value_name = "NAME=SECRET", value_parser = parse_variable_secret)]
    secret_variables: Vec<(String, SecretName)>,

    /// Grant a secret of the namespace: the function sees it as an environment variable of
    /// the same name; repeat for more. It must exist (`vireo secrets set`).
    #[arg(long = "secret", value_name = "NAME", value_parser = SecretName::parse)]
    secrets: Vec<SecretName>,

    /// How many invocations of this version may run at once [default: no limit of its own]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrency: Option<u32>,

    /// Let one instance serve up to N sequential requests; its globals then survive between
    /// requests of this version [default: 1, a fresh instance per request]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    instance_reuse: Option<u32>,

    /// Keep N instances ready and never scale this version to zero [default: 0]
    #[arg(long, value_name = "N")]
    min_instances: Option<u32>,

    /// An origin the function may send HTTP requests to, or a database it may connect to:
    /// `scheme://host[:port]` (http, https, postgres, redis, ...), `*.` as the leftmost label for
    /// any name below, port `*` for any; loopback and private addresses only as IP literals (or
    /// `localhost`). Repeat for more [default: none, no outgoing connections]
    #[arg(long, value_name = "URL")]
    allow_outbound: Vec<String>,

    /// Who may invoke: `public` (anyone), `key` (invoker, developer and admin keys of the
    /// namespace) or bearer JWTs of an identity provider as JSON:
    /// `{"jwt":{"issuer":"…","audiences":["…"],"jwks_url":"https://…"}}` [default: public]
    #[arg(long, value_name = "WHO", value_parser = parse_invoke_auth)]
    invoke_auth: Option<InvokeAuth>,

    /// Requests per second to the function from all callers together: `RATE` or `RATE:BURST`
    /// (bursts up to BURST, default RATE); `none` removes the limit [default: none]
    #[arg(long, value_name = "RATE[:BURST]", value_parser = parse_rate_limit)]
    rate_limit: Option<Limit<RateLimit>>,

    /// An origin browsers may call the function from (`https://app.example.com`, or `*`):
    /// Vireo answers preflights and adds the CORS headers; repeat for more. `none` leaves CORS to
    /// the function. Other CORS fields: `--settings` [default: none]
    #[arg(long, value_name = "ORIGIN")]
    cors_origin: Vec<String>,

    /// Link imports of packages Vireo knows but does not implement yet (Spin's, wasi:keyvalue,
    /// …) as traps instead of refusing the component, for SDK-built components that import
    /// more than they call [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    allow_unimplemented_imports: Option<bool>,

    /// Hand requests over as Spin's HTTP trigger does: the whole path a route matched and
    /// Spin's `spin-*` headers, for components written for Spin [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    spin_http: Option<bool>,

    /// A JSON file of settings (the fields of `GET …/versions/N`'s `settings`), for all of them
    /// at once; flags given too replace the file's fields
    #[arg(long = "settings", value_name = "FILE.json")]
    settings_file: Option<PathBuf>,

    /// Start from the default settings instead of the latest version's (flags still apply)
    #[arg(long)]
    reset_settings: bool,
}

impl SettingsArgs {
    /// Whether any settings flag was given.
    pub fn given(&self) -> bool {
        self.settings_file.is_some()
            || self.reset_settings
            || serde_json::to_value(Settings::from(self))
                .map_or(true, |sent| sent != Value::Object(Map::new()))
    }
}

/// A setting given as a value, or as `none` to remove it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit<T> {
    Set(T),
    None,
}

impl<T> Limit<T> {
    fn into_option(self) -> Option<T> {
        match self {
            Limit::Set(value) => Some(value),
            Limit::None => None,
        }
    }
}

/// The `settings` part: only what the user gave; the server keeps the rest from the latest
/// version (or the defaults, for a first version or with `--reset-settings`).
#[derive(Serialize)]
struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_mib: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<SecretName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance_reuse: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_instances: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_outbound_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoke_auth: Option<InvokeAuth>,
    /// `Some(None)` removes the limit (sent as `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<Option<RateLimit>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cors: Option<Option<CorsSettings>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_unimplemented_imports: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spin_http: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    variables: BTreeMap<String, VariableValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    key_value_stores: Vec<Name>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    buckets: Vec<Name>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sqlite_databases: Vec<Name>,
}

impl From<&SettingsArgs> for Settings {
    fn from(args: &SettingsArgs) -> Self {
        Self {
            memory_mib: args.memory,
            timeout_ms: args.timeout,
            env: args.env.iter().cloned().collect(),
            secrets: args.secrets.clone(),
            max_concurrency: args.max_concurrency,
            instance_reuse: args.instance_reuse,
            min_instances: args.min_instances,
            allowed_outbound_hosts: args.allow_outbound.clone(),
            invoke_auth: args.invoke_auth.clone(),
            rate_limit: args.rate_limit.map(Limit::into_option),
            cors: cors_from_origins(&args.cors_origin),
            allow_unimplemented_imports: args.allow_unimplemented_imports,
            spin_http: args.spin_http,
            key_value_stores: args.key_value_stores.clone(),
            buckets: args.buckets.clone(),
            sqlite_databases: args.sqlite_databases.clone(),
            variables: args
                .variables
                .iter()
                .map(|(name, value)| (name.clone(), VariableValue::Text(value.clone())))
                .chain(args.secret_variables.iter().map(|(name, secret)| {
                    let bound = SecretRef {
                        secret: secret.clone(),
                    };
                    (name.clone(), VariableValue::Secret(bound))
                }))
                .collect(),
        }
    }
}

/// `--cors-origin`: the origins given, or `none` alone to leave CORS to the function.
fn cors_from_origins(origins: &[String]) -> Option<Option<CorsSettings>> {
    match origins {
        [] => None,
        [only] if only == "none" => Some(None),
        origins => Some(Some(CorsSettings {
            allow_origins: origins.to_vec(),
            allow_methods: Vec::new(),
            allow_headers: Vec::new(),
            expose_headers: Vec::new(),
            max_age_secs: None,
            allow_credentials: false,
        })),
    }
}

/// The settings to send: the `--settings` file's fields, with the flags' over them. The server
/// checks every value and names a field it does not know.
fn settings_json(args: &SettingsArgs) -> anyhow::Result<String> {
    let mut settings = match &args.settings_file {
        Some(path) => {
            let text = std::fs::read(path)
                .with_context(|| format!("reading the settings file {}", path.display()))?;
            match serde_json::from_slice(&text)
                .with_context(|| format!("reading the settings file {}", path.display()))?
            {
                Value::Object(fields) => fields,
                _ => bail!(
                    "the settings file {} must hold a JSON object, e.g. {{\"memory_mib\": 256}}",
                    path.display()
                ),
            }
        }
        None => Map::new(),
    };
    let Value::Object(flags) =
        serde_json::to_value(Settings::from(args)).context("encoding the settings")?
    else {
        unreachable!("settings encode as an object")
    };
    settings.extend(flags);
    serde_json::to_string(&settings).context("encoding the settings")
}

/// The form's settings fields: the settings given, and whether to start from the defaults.
pub fn settings_form(args: &SettingsArgs) -> anyhow::Result<Form> {
    let settings = settings_json(args)?;
    let settings = Part::text(settings)
        .mime_str("application/json")
        .context("labelling the settings part")?;
    let form = Form::new().part("settings", settings);
    Ok(if args.reset_settings {
        form.text("reset_settings", "true")
    } else {
        form
    })
}

/// `--timeout`: a plain number means seconds, anything else is a humantime duration.
fn parse_timeout_ms(value: &str) -> Result<u64, String> {
    let invalid =
        || format!("invalid timeout {value:?}: use seconds (2) or a duration (2s, 500ms, 1m)");
    let duration = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(value).map_err(|_| invalid())?,
    };
    let millis = u64::try_from(duration.as_millis()).map_err(|_| invalid())?;
    if millis == 0 {
        return Err(format!(
            "invalid timeout {value:?}: it must be at least 1ms"
        ));
    }
    Ok(millis)
}

/// `--env KEY=VALUE`: split at the first `=`, so values may contain `=`. The server checks the
/// name's characters.
fn parse_env(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((key, val)) if !key.is_empty() => Ok((key.to_string(), val.to_string())),
        _ => Err(format!(
            "invalid environment variable {value:?}: use KEY=VALUE"
        )),
    }
}

/// `--var-secret NAME=SECRET`.
fn parse_variable_secret(value: &str) -> Result<(String, SecretName), String> {
    let (name, secret) =
        parse_env(value).map_err(|_| format!("invalid --var-secret {value:?}: use NAME=SECRET"))?;
    let secret = SecretName::parse(&secret).map_err(|e| e.to_string())?;
    Ok((name, secret))
}

/// `--invoke-auth public|key|{"jwt":{...}}`.
pub(crate) fn parse_invoke_auth(value: &str) -> Result<InvokeAuth, String> {
    match value {
        "public" => Ok(InvokeAuth::Public),
        "key" => Ok(InvokeAuth::Key),
        json if json.trim_start().starts_with('{') => {
            serde_json::from_str(json).map_err(|e| format!("invalid invoke auth {json:?}: {e}"))
        }
        _ => Err(format!(
            "invalid invoke auth {value:?}: use public (anyone), key (keys of the namespace) or {{\"jwt\": {{...}}}}"
        )),
    }
}

/// `--rate-limit RATE[:BURST]` or `none`.
fn parse_rate_limit(value: &str) -> Result<Limit<RateLimit>, String> {
    if value == "none" {
        return Ok(Limit::None);
    }
    let invalid = || {
        format!(
            "invalid rate limit {value:?}: use RATE or RATE:BURST in requests per second (100, 100:200), or none"
        )
    };
    let number = |text: &str| text.parse::<u32>().ok().filter(|n| *n > 0);
    let (rate, burst) = match value.split_once(':') {
        Some((rate, burst)) => (number(rate), number(burst)),
        None => (number(value), number(value)),
    };
    match (rate, burst) {
        (Some(per_second), Some(burst)) => Ok(Limit::Set(RateLimit { per_second, burst })),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: SettingsArgs,
    }

    #[test]
    fn timeouts_accept_seconds_and_durations() {
        assert_eq!(parse_timeout_ms("2"), Ok(2000));
        assert_eq!(parse_timeout_ms("2s"), Ok(2000));
        assert_eq!(parse_timeout_ms("500ms"), Ok(500));
        assert_eq!(parse_timeout_ms("1m"), Ok(60_000));
        assert_eq!(parse_timeout_ms("1m 30s"), Ok(90_000));
        for bad in ["", "abc", "-1", "2 parsecs", "1.5"] {
            let err = parse_timeout_ms(bad).unwrap_err();
            assert!(
                err.contains("use seconds (2) or a duration"),
                "{bad}: {err}"
            );
        }
        assert!(parse_timeout_ms("0").unwrap_err().contains("at least 1ms"));
        assert!(
            parse_timeout_ms("10us")
                .unwrap_err()
                .contains("at least 1ms")
        );
    }

    #[test]
    fn env_pairs_split_at_the_first_equals_sign() {
        assert_eq!(parse_env("KEY=value"), Ok(("KEY".into(), "value".into())));
        assert_eq!(parse_env("URL=a=b"), Ok(("URL".into(), "a=b".into())));
        assert_eq!(parse_env("EMPTY="), Ok(("EMPTY".into(), String::new())));
        assert!(parse_env("KEY").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_env("=value").unwrap_err().contains("KEY=VALUE"));
    }

    #[test]
    fn rate_limits_take_a_rate_a_burst_or_none() {
        assert_eq!(
            parse_rate_limit("100"),
            Ok(Limit::Set(RateLimit {
                per_second: 100,
                burst: 100
            }))
        );
        assert_eq!(
            parse_rate_limit("5:20"),
            Ok(Limit::Set(RateLimit {
                per_second: 5,
                burst: 20
            }))
        );
        assert_eq!(parse_rate_limit("none"), Ok(Limit::None));
        for bad in ["", "0", "5:0", "x", "5:", ":5", "-1", "1.5"] {
            let err = parse_rate_limit(bad).unwrap_err();
            assert!(err.contains("use RATE or RATE:BURST"), "{bad}: {err}");
        }
        assert!(
            parse_invoke_auth("private")
                .unwrap_err()
                .contains("use public")
        );
    }

    /// The settings a command line sends, as JSON (field order aside).
    fn sent(argv: &[&str]) -> Value {
        let cli = Cli::try_parse_from(argv).unwrap();
        serde_json::from_str(&settings_json(&cli.settings).unwrap()).unwrap()
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn settings_carry_only_what_was_given() {
        assert_eq!(sent(&["config"]), json("{}"));
        assert_eq!(
            sent(&[
                "config",
                "--memory",
                "64",
                "--timeout",
                "500ms",
                "-e",
                "A=1",
                "--env",
                "A=2",
                "--env",
                "B=x",
                "--max-concurrency",
                "4",
                "--instance-reuse",
                "10",
                "--min-instances",
                "1",
                "--allow-outbound",
                "https://api.example.com",
                "--allow-outbound",
                "http://127.0.0.1:8080",
                "--secret",
                "DB_PASSWORD",
            ]),
            json(
                r#"{"memory_mib":64,"timeout_ms":500,"env":{"A":"2","B":"x"},"secrets":["DB_PASSWORD"],"max_concurrency":4,"instance_reuse":10,"min_instances":1,"allowed_outbound_hosts":["https://api.example.com","http://127.0.0.1:8080"]}"#
            )
        );
    }

    #[test]
    fn bad_names_and_limits_are_refused_before_uploading() {
        assert!(Cli::try_parse_from(["deploy", "Hello", "hello.wasm"]).is_err());
        assert!(Cli::try_parse_from(["config", "--memory", "0"]).is_err());
        assert!(Cli::try_parse_from(["config", "--env", "NOEQUALS"]).is_err());
        assert!(Cli::try_parse_from(["config", "--secret", "db-password"]).is_err());
    }

    #[test]
    fn policy_flags_are_sent_and_none_removes() {
        assert_eq!(
            sent(&[
                "config",
                "--invoke-auth",
                "key",
                "--rate-limit",
                "5:20",
                "--cors-origin",
                "https://app.example.com",
            ]),
            json(
                r#"{"invoke_auth":"key","rate_limit":{"per_second":5,"burst":20},"cors":{"allow_origins":["https://app.example.com"],"allow_methods":[],"allow_headers":[],"expose_headers":[],"max_age_secs":null,"allow_credentials":false}}"#
            )
        );
        assert_eq!(
            sent(&[
                "config",
                "--var",
                "api_url=https://a.example",
                "--var-secret",
                "db_password=DB_PASSWORD",
            ]),
            json(
                r#"{"variables":{"api_url":"https://a.example","db_password":{"secret":"DB_PASSWORD"}}}"#
            )
        );
        assert!(Cli::try_parse_from(["config", "--var-secret", "x=not-a-secret"]).is_err());
        assert_eq!(
            sent(&["config", "--rate-limit", "none", "--cors-origin", "none"]),
            json(r#"{"rate_limit":null,"cors":null}"#)
        );
    }

    #[test]
    fn flags_replace_the_fields_of_the_settings_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("settings.json");
        std::fs::write(&file, r#"{"memory_mib": 64, "invoke_auth": "key"}"#).unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(
            sent(&["config", "--settings", path, "--memory", "256"]),
            json(r#"{"invoke_auth":"key","memory_mib":256}"#)
        );
        std::fs::write(&file, "[1]").unwrap();
        let cli = Cli::try_parse_from(["config", "--settings", path]).unwrap();
        let err = settings_json(&cli.settings).unwrap_err().to_string();
        assert!(err.contains("must hold a JSON object"), "{err}");
        let cli = Cli::try_parse_from(["config", "--settings", "/nonexistent/s.json"]).unwrap();
        let err = format!("{:#}", settings_json(&cli.settings).unwrap_err());
        assert!(
            err.contains("reading the settings file /nonexistent/s.json"),
            "{err}"
        );
    }
}
