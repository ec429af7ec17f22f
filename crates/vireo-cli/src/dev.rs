//! `vireo dev`: a local server on an embedded store in the project's `.vireo/`, the manifest's
//! functions deployed to it, rebuilt and redeployed when a watched file (or the manifest)
//! changes, and their log lines printed as they are written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use notify::{EventKind, RecursiveMode, Watcher as _};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use vireo_core::Name;

use crate::client::Client;
use crate::manifest::Manifest;
use crate::output::Format;
use crate::{apply, credentials, logs};

#[derive(Args)]
pub struct DevArgs {
    /// The project manifest [default: ./vireo.toml]
    #[arg(short = 'f', long = "manifest", value_name = "PATH")]
    manifest: Option<PathBuf>,

    /// Where the local server listens [default: a free port on 127.0.0.1]
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: String,
}

/// Changes that come together (an editor's save, a build writing many files) are one change.
const SETTLE: Duration = Duration::from_millis(200);

pub async fn run(format: Format, args: DevArgs) -> anyhow::Result<()> {
    let manifest_path = args
        .manifest
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::manifest::FILE_NAME));
    let mut manifest = Manifest::load(args.manifest.as_deref())?;
    let data = manifest.dir.join(".vireo");
    let (mut server, url) = start_server(&args.listen, &data).await?;
    eprintln!(
        "vireo dev: a local server on {url} (its data and log in {}); Ctrl-C stops it",
        data.display()
    );
    let key = credentials::admin_key_in(&data)?;
    let client = Client::new(&url, "default", Some(&key), None)?;
    let (changed_tx, mut changed) = mpsc::unbounded_channel();
    let _watcher = watch(&manifest, &manifest_path, changed_tx)?;
    let mut followed = BTreeSet::new();
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    loop {
        let deployed = match create_namespaces(&client, &manifest).await {
            Ok(()) => apply::run(&client, format, &manifest, false).await,
            Err(err) => Err(err),
        };
        match deployed {
            Ok(()) => follow_new_functions(&client, format, &manifest, &mut followed),
            Err(err) => eprintln!("error: {}", crate::error_text(&err)),
        }
        tokio::select! {
            Some(()) = changed.recv() => {
                while let Ok(Some(())) = tokio::time::timeout(SETTLE, changed.recv()).await {}
                eprintln!("vireo dev: a watched file changed");
                match Manifest::load(args.manifest.as_deref()) {
                    Ok(reloaded) => manifest = reloaded,
                    Err(err) => eprintln!("error: {} (deploying the last good manifest)", crate::error_text(&err)),
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            status = server.wait() => bail!("the local server stopped ({})", status.map_or_else(|e| e.to_string(), |s| s.to_string())),
        }
    }
    server.kill().await.context("stopping the local server")
}

/// The local server starts with the namespace `default` only: the others the manifest names
/// are made.
async fn create_namespaces(client: &Client, manifest: &Manifest) -> anyhow::Result<()> {
    let named: BTreeSet<&Name> = manifest
        .functions
        .iter()
        .filter_map(|function| function.namespace.as_ref())
        .collect();
    for namespace in named {
        let path = format!("/v1/namespaces/{namespace}");
        if client.get_if_found::<Value>(&path).await?.is_none() {
            let request = client
                .request(Method::POST, "/v1/namespaces")
                .json(&json!({ "name": namespace }));
            client
                .json(request)
                .await
                .with_context(|| format!("creating the namespace {namespace}"))?;
            eprintln!("vireo dev: created the namespace {namespace}");
        }
    }
    Ok(())
}

/// Starts `vireo serve` on `data` and waits for the address it listens on; its own log goes to
/// `data/server.log`.
async fn start_server(listen: &str, data: &Path) -> anyhow::Result<(Child, String)> {
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let log_path = data.join("server.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut server = Command::new(std::env::current_exe().context("finding the vireo binary")?)
        .args(["serve", "--listen", listen, "--data"])
        .arg(data)
        .env_remove("VIREO_STORE")
        .env_remove("VIREO_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting the local server")?;
    let stdout = server.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines
        .next_line()
        .await
        .context("reading the local server")?
    {
        if let Some(url) = line.strip_prefix("vireo listening on ") {
            let url = url.to_string();
            // Whatever else it prints is drained, so it never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok((server, url));
        }
    }
    bail!(
        "the local server did not start; its log is {}",
        log_path.display()
    )
}

/// Sends a `()` for every change of the manifest or of a file under a function's `build.watch`.
fn watch(
    manifest: &Manifest,
    manifest_path: &Path,
    changed: mpsc::UnboundedSender<()>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let manifest_file = absolute(manifest_path)?;
    let watched: Vec<PathBuf> = manifest
        .functions
        .iter()
        .filter_map(|function| function.build.as_ref())
        .flat_map(|build| build.watch.iter().map(|path| manifest.path_of(path)))
        .filter(|path| path.exists())
        .map(|path| absolute(&path))
        .collect::<anyhow::Result<_>>()?;
    let relevant = {
        let (manifest_file, watched) = (manifest_file.clone(), watched.clone());
        move |path: &Path| path == manifest_file || watched.iter().any(|w| path.starts_with(w))
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let edits = matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        );
        if edits && event.paths.iter().any(|path| relevant(path)) {
            let _ = changed.send(());
        }
    })
    .context("starting to watch files")?;
    // The manifest's directory, not the file: editors replace a file by renaming over it.
    let directory = manifest_file.parent().unwrap_or(Path::new("/"));
    watcher
        .watch(directory, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", directory.display()))?;
    for path in &watched {
        watcher
            .watch(path, RecursiveMode::Recursive)
            .with_context(|| format!("watching {}", path.display()))?;
    }
    Ok(watcher)
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// Starts printing the log lines of each deployed function not followed yet.
fn follow_new_functions(
    client: &Client,
    format: Format,
    manifest: &Manifest,
    followed: &mut BTreeSet<(Option<Name>, Name)>,
) {
    for function in &manifest.functions {
        let key = (function.namespace.clone(), function.name.clone());
        if !followed.insert(key) {
            continue;
        }
        let client = match &function.namespace {
            Some(namespace) => client.in_namespace(namespace),
            None => client.clone(),
        };
        let name = function.name.clone();
        tokio::spawn(async move {
            if let Err(err) = logs::follow_from_now(&client, &name, format).await {
                eprintln!(
                    "error: following the logs of {name}: {}",
                    crate::error_text(&err)
                );
            }
        });
    }
}
