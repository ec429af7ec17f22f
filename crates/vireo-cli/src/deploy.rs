//! `vireo deploy`: streams a component and its settings to the server as the next version.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use futures::TryStreamExt as _;
use indicatif::ProgressStyle;
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Method, StatusCode};
use tokio_util::io::ReaderStream;
use vireo_core::Name;

use crate::args;
use crate::client::{self, Client};
use crate::output::{self, Format};
use crate::settings_args::{SettingsArgs, settings_form};
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

    let progress = output::transfer_progress("uploading", size);
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
        let traps = view.unimplemented_imports.unwrap_or_default();
        let mut message =
            deployed_message(&function, view.version, created, (&changes, &traps), &url);
        for warning in view.warnings.unwrap_or_default() {
            message.push_str(&format!("warning: {warning}\n"));
        }
        message
    })
}

/// What a deploy did, the settings it changed (one line each), and where the function answers.
fn deployed_message(
    function: &str,
    version: u32,
    created: bool,
    (changes, linked_as_traps): (&[SettingChange], &[String]),
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
    if !linked_as_traps.is_empty() {
        message.push_str(&format!(
            "  linked as traps (a call fails): {}\n",
            linked_as_traps.join(", ")
        ));
    }
    message.push_str(url);
    message.push('\n');
    message
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
