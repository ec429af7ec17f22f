//! `vireo deploy`: streams a component and its settings to the server as the next version.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use futures::TryStreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Method, StatusCode};
use serde::Serialize;
use tokio_util::io::ReaderStream;
use vireo_core::settings::{DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT_MS};
use vireo_core::{Name, SecretName};

use crate::args;
use crate::client::{self, Client};
use crate::output::{self, Format};
use crate::views::{SettingChange, VersionView};

#[derive(Args)]
pub struct DeployArgs {
    /// The function to deploy to; it is created on its first deploy.
    #[arg(value_parser = args::function_name)]
    name: Name,

    /// The WebAssembly HTTP component (`.wasm`) to upload.
    file: PathBuf,

    #[command(flatten)]
    settings: SettingsArgs,
}

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

    /// An origin the function may send HTTP requests to: `scheme://host[:port]`, `*.` as the
    /// leftmost label for any name below, port `*` for any; loopback and private addresses only
    /// as IP literals. Repeat for more [default: none, no outgoing requests]
    #[arg(long, value_name = "URL")]
    allow_outbound: Vec<String>,

    /// Start from the default settings instead of the latest version's (flags still apply)
    #[arg(long)]
    reset_settings: bool,
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
        }
    }
}

pub async fn run(client: &Client, format: Format, args: DeployArgs) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("opening {}", args.file.display()))?;
    let metadata = file
        .metadata()
        .await
        .with_context(|| format!("reading the size of {}", args.file.display()))?;
    if metadata.is_dir() {
        bail!(
            "{} is a directory: pass the component's .wasm file, e.g. {}",
            args.file.display(),
            args.file
                .join(format!("target/wasm32-wasip2/release/{}.wasm", args.name))
                .display()
        );
    }
    let size = metadata.len();
    let file_name = args.file.file_name().map_or_else(
        || "component.wasm".into(),
        |n| n.to_string_lossy().into_owned(),
    );

    let progress = upload_progress(size);
    let counter = progress.clone();
    let body = ReaderStream::with_capacity(file, 256 * 1024).inspect_ok(move |chunk| {
        counter.inc(chunk.len() as u64);
        if counter.position() >= size {
            // All bytes are on their way; the server now validates and compiles the component.
            counter.set_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
            );
            counter.set_message("compiling…");
            counter.enable_steady_tick(Duration::from_millis(100));
        }
    });
    let component = Part::stream_with_length(Body::wrap_stream(body), size)
        .file_name(file_name)
        .mime_str("application/wasm")
        .context("labelling the component part")?;
    let form = settings_form(&args.settings)?.part("component", component);
    let what = format!("deploying {}", args.file.display());
    let answered = submit_version(client, format, &args.name, form, &what).await;
    progress.finish_and_clear();
    answered
}

/// Posts `form` as the next version of `name` (`what` names the operation in errors) and
/// prints what happened: the version, the settings that changed, the function's URL.
pub async fn submit_version(
    client: &Client,
    format: Format,
    name: &Name,
    form: Form,
    what: &str,
) -> anyhow::Result<()> {
    let function = client.qualified(name);
    let request = client
        .request(Method::POST, &client.function_path(name, "/versions"))
        .multipart(form);
    let response = client
        .success(request)
        .await
        .with_context(|| format!("{what} to {function}"))?;
    let created = response.status() == StatusCode::CREATED;
    let answer = client::read_json(response)
        .await
        .with_context(|| format!("{what} to {function}"))?;
    let url = format!("{}/fn/{}/{}", client.base_url(), client.namespace(), name);
    output::emit(format, answer, |view: VersionView| {
        let changes = view.settings_changed.unwrap_or_default();
        deployed_message(&function, view.version, created, &changes, &url)
    })
}

/// A byte-counting bar on stderr, hidden when stderr is not a terminal (CI logs, pipes).
fn upload_progress(size: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "uploading [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
    )
    .expect("valid template")
    .progress_chars("=> ");
    ProgressBar::new(size).with_style(style)
}

/// The form's settings fields: the settings given, and whether to start from the defaults.
pub fn settings_form(args: &SettingsArgs) -> anyhow::Result<Form> {
    let settings = serde_json::to_string(&Settings::from(args)).context("encoding the settings")?;
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

/// What a deploy did, the settings it changed (one line each), and where the function answers.
fn deployed_message(
    function: &str,
    version: u32,
    created: bool,
    changes: &[SettingChange],
    url: &str,
) -> String {
    let mut message = if created {
        format!("deployed {function} version {version}\n")
    } else {
        format!("unchanged {function} version {version} (identical to the latest version)\n")
    };
    for change in changes {
        message.push_str(&format!(
            "  {}: {} → {}\n",
            change.setting, change.from, change.to
        ));
    }
    message.push_str(url);
    message.push('\n');
    message
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

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

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: DeployArgs,
    }

    fn settings_json(argv: &[&str]) -> String {
        let cli = Cli::try_parse_from(argv).unwrap();
        serde_json::to_string(&Settings::from(&cli.args.settings)).unwrap()
    }

    #[test]
    fn settings_carry_only_what_was_given() {
        assert_eq!(settings_json(&["deploy", "hello", "hello.wasm"]), "{}");
        assert_eq!(
            settings_json(&[
                "deploy",
                "hello",
                "hello.wasm",
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
            r#"{"memory_mib":64,"timeout_ms":500,"env":{"A":"2","B":"x"},"secrets":["DB_PASSWORD"],"max_concurrency":4,"instance_reuse":10,"min_instances":1,"allowed_outbound_hosts":["https://api.example.com","http://127.0.0.1:8080"]}"#
        );
    }

    #[test]
    fn bad_names_and_limits_are_refused_before_uploading() {
        assert!(Cli::try_parse_from(["deploy", "Hello", "hello.wasm"]).is_err());
        assert!(Cli::try_parse_from(["deploy", "hello", "hello.wasm", "--memory", "0"]).is_err());
        assert!(
            Cli::try_parse_from(["deploy", "hello", "hello.wasm", "--env", "NOEQUALS"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["deploy", "hello", "hello.wasm", "--secret", "db-password"])
                .is_err()
        );
    }

    #[test]
    fn messages_say_whether_a_version_was_created() {
        let url = "http://127.0.0.1:8080/fn/default/hello";
        assert_eq!(
            deployed_message("default/hello", 1, true, &[], url),
            "deployed default/hello version 1\nhttp://127.0.0.1:8080/fn/default/hello\n"
        );
        assert_eq!(
            deployed_message("default/hello", 1, false, &[], url),
            "unchanged default/hello version 1 (identical to the latest version)\n\
             http://127.0.0.1:8080/fn/default/hello\n"
        );
        let changed = SettingChange {
            setting: "memory_mib".to_string(),
            from: serde_json::json!(128),
            to: serde_json::json!(256),
        };
        assert_eq!(
            deployed_message("default/hello", 2, true, &[changed], url),
            "deployed default/hello version 2\n  memory_mib: 128 → 256\n\
             http://127.0.0.1:8080/fn/default/hello\n"
        );
    }
}
