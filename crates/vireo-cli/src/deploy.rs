//! `vireo deploy`: streams a component and its settings to the server as the next version.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use futures::TryStreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Method, StatusCode};
use tokio_util::io::ReaderStream;
use vireo_core::Name;

use crate::client::{self, Client};
use crate::manifest::Manifest;
use crate::output::{self, Format};
use crate::settings_args::{SettingsArgs, settings_form};
use crate::views::{SettingChange, VersionView};
use crate::{apply, args, spin_manifest};

#[derive(Args)]
pub struct DeployArgs {
    /// The function to deploy to; it is created on its first deploy. Without NAME and FILE,
    /// deploys what the project manifest (./vireo.toml, or -f) says.
    #[arg(value_parser = args::function_name, requires = "file")]
    name: Option<Name>,

    /// The WebAssembly HTTP component (`.wasm`) to upload.
    file: Option<PathBuf>,

    /// The project manifest to deploy from [default: ./vireo.toml]
    #[arg(
        short = 'f',
        long = "manifest",
        value_name = "PATH",
        conflicts_with = "name"
    )]
    manifest: Option<PathBuf>,

    /// Deploy a Spin application: every component of the Spin manifest (version 2) that an
    /// HTTP trigger runs, with its routes, outbound hosts, key-value stores, environment and
    /// variables (`SPIN_VARIABLE_NAME` in the environment sets one, as for `spin up`); what
    /// Vireo cannot map is reported [default path: ./spin.toml]
    #[arg(
        long,
        value_name = "SPIN.TOML",
        num_args = 0..=1,
        default_missing_value = spin_manifest::FILE_NAME,
        conflicts_with_all = ["name", "manifest"]
    )]
    from_spin: Option<PathBuf>,

    /// Say what deploying the manifest would change (version, settings, aliases, schedules,
    /// routes, sources) and change nothing
    #[arg(long, conflicts_with = "name")]
    dry_run: bool,

    #[command(flatten)]
    settings: SettingsArgs,
}

pub async fn run(client: &Client, format: Format, args: DeployArgs) -> anyhow::Result<()> {
    let (Some(name), Some(file)) = (args.name, args.file) else {
        if args.settings.given() {
            bail!(
                "settings flags apply to `vireo deploy NAME FILE`; a deploy from the manifest \
                 takes its settings from its [settings] table"
            );
        }
        let manifest = match &args.from_spin {
            Some(spin) => spin_manifest::load(Some(spin))?,
            None => Manifest::load(args.manifest.as_deref())?,
        };
        return apply::run(client, format, &manifest, args.dry_run).await;
    };
    let (component, progress) = upload_part(&name, &file).await?;
    let form = settings_form(&args.settings)?.part("component", component);
    let what = format!("deploying {}", file.display());
    let answered = submit_version(client, format, &name, form, &what).await;
    progress.finish_and_clear();
    answered
}

/// The component at `file` as a streamed form part, and the progress bar it moves (finish it
/// when the server has answered).
pub async fn upload_part(name: &Name, file: &Path) -> anyhow::Result<(Part, ProgressBar)> {
    let opened = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    let metadata = opened
        .metadata()
        .await
        .with_context(|| format!("reading the size of {}", file.display()))?;
    if metadata.is_dir() {
        bail!(
            "{} is a directory: pass the component's .wasm file, e.g. {}",
            file.display(),
            file.join(format!("target/wasm32-wasip2/release/{name}.wasm"))
                .display()
        );
    }
    let size = metadata.len();
    let file_name = file.file_name().map_or_else(
        || "component.wasm".into(),
        |n| n.to_string_lossy().into_owned(),
    );

    let progress = output::transfer_progress("uploading", size);
    let counter = progress.clone();
    let body = ReaderStream::with_capacity(opened, 256 * 1024).inspect_ok(move |chunk| {
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
    Ok((component, progress))
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
    let (answer, created) = post_version(client, name, form, what).await?;
    let url = function_url(client, name);
    output::emit(format, answer, |view: VersionView| {
        let changes = view.settings_changed.unwrap_or_default();
        let traps = view.unimplemented_imports.unwrap_or_default();
        let mut message =
            deployed_message(&function, view.version, created, (&changes, &traps), &url);
        for warning in view.warnings.unwrap_or_default() {
            message.push_str(&format!("warning: {warning}\n"));
        }
        message
    })
}

/// Posts `form` as the next version of `name`: the server's answer, and whether it made a new
/// version (an identical one keeps the latest).
pub async fn post_version(
    client: &Client,
    name: &Name,
    form: Form,
    what: &str,
) -> anyhow::Result<(serde_json::Value, bool)> {
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
    Ok((answer, created))
}

/// Where the function answers.
pub fn function_url(client: &Client, name: &Name) -> String {
    format!("{}/fn/{}/{}", client.base_url(), client.namespace(), name)
}

/// What a deploy did, the settings it changed (one line each), and where the function answers.
fn deployed_message(
    function: &str,
    version: u32,
    created: bool,
    changes_and_traps: (&[SettingChange], &[String]),
    url: &str,
) -> String {
    let mut message = version_lines(function, version, created, changes_and_traps);
    message.push_str(url);
    message.push('\n');
    message
}

/// Whether a deploy made a version, the settings it changed and the imports linked as traps.
pub fn version_lines(
    function: &str,
    version: u32,
    created: bool,
    (changes, linked_as_traps): (&[SettingChange], &[String]),
) -> String {
    let mut message = if created {
        format!("deployed {function} version {version}\n")
    } else {
        format!("unchanged {function} version {version} (identical to the latest version)\n")
    };
    message.push_str(&change_lines(changes));
    if !linked_as_traps.is_empty() {
        message.push_str(&format!(
            "  linked as traps (a call fails): {}\n",
            linked_as_traps.join(", ")
        ));
    }
    message
}

/// One line per changed setting: `  name: from → to`.
pub fn change_lines(changes: &[SettingChange]) -> String {
    changes
        .iter()
        .map(|change| format!("  {}: {} → {}\n", change.setting, change.from, change.to))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_whether_a_version_was_created() {
        let url = "http://127.0.0.1:8080/fn/default/hello";
        assert_eq!(
            deployed_message("default/hello", 1, true, (&[], &[]), url),
            "deployed default/hello version 1\nhttp://127.0.0.1:8080/fn/default/hello\n"
        );
        assert_eq!(
            deployed_message("default/hello", 1, false, (&[], &[]), url),
            "unchanged default/hello version 1 (identical to the latest version)\n\
             http://127.0.0.1:8080/fn/default/hello\n"
        );
        let changed = SettingChange {
            setting: "memory_mib".to_string(),
            from: serde_json::json!(128),
            to: serde_json::json!(256),
        };
        assert_eq!(
            deployed_message(
                "default/hello",
                2,
                true,
                (&[changed], &["fermyon:spin/llm@2.0.0".to_string()]),
                url
            ),
            "deployed default/hello version 2\n  memory_mib: 128 → 256\n\
             \x20 linked as traps (a call fails): fermyon:spin/llm@2.0.0\n\
             http://127.0.0.1:8080/fn/default/hello\n"
        );
    }
}
