//! `vireo build`: runs the manifest's build command, then checks the component the way a deploy
//! does (without compiling it) and says what is wrong in a JS, Python or Rust developer's terms.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Serialize;
use vireo_server::Rejection;

use crate::manifest::{FunctionSpec, Manifest};
use crate::output::{self, Format};

#[derive(Args)]
pub struct BuildArgs {
    /// The project manifest [default: ./vireo.toml]
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    manifest: Option<PathBuf>,
}

/// What `vireo build` reports of one function's component.
#[derive(Serialize)]
struct BuildReport {
    function: String,
    component: String,
    size_bytes: u64,
    /// How long the build command took, when one ran for this function.
    build_ms: Option<u64>,
    /// Imports linked as traps (`allow_unimplemented_imports`).
    unimplemented_imports: Vec<String>,
}

pub fn run(format: Format, args: BuildArgs) -> anyhow::Result<()> {
    let manifest = Manifest::load(args.manifest.as_deref())?;
    let mut reports = Vec::new();
    // Functions built by one command (one project, several functions) build once.
    let mut ran: Vec<(&str, Duration)> = Vec::new();
    for function in &manifest.functions {
        let took = match &function.build {
            Some(build) => match ran.iter().find(|(command, _)| *command == build.command) {
                Some((_, took)) => Some(*took),
                None => {
                    let took = run_command(&manifest, function, format)?;
                    ran.push((&build.command, took));
                    Some(took)
                }
            },
            None => None,
        };
        let path = manifest.path_of(&function.component);
        let unimplemented_imports = check(function, &path)?;
        reports.push(BuildReport {
            function: function.name.to_string(),
            component: path.display().to_string(),
            size_bytes: std::fs::metadata(&path)
                .map(|m| m.len())
                .unwrap_or_default(),
            build_ms: took.map(|took| took.as_millis() as u64),
            unimplemented_imports,
        });
    }
    let answer = serde_json::json!({ "functions": reports });
    output::emit(format, answer, |_: serde_json::Value| {
        reports.iter().map(built_message).collect::<String>()
    })
}

fn built_message(report: &BuildReport) -> String {
    let mut message = format!(
        "{}: {} ({})",
        report.function,
        report.component,
        output::size(report.size_bytes)
    );
    if let Some(millis) = report.build_ms {
        message.push_str(&format!(", built in {}", output::duration_ms(millis)));
    }
    message.push_str(", a component Vireo runs\n");
    if !report.unimplemented_imports.is_empty() {
        message.push_str(&format!(
            "  linked as traps (a call fails): {}\n",
            report.unimplemented_imports.join(", ")
        ));
    }
    message
}

/// Runs the function's build command with `sh -c` in the manifest's directory, its output
/// shown as it comes (on stderr when stdout carries JSON); returns how long it took.
pub fn run_command(
    manifest: &Manifest,
    function: &FunctionSpec,
    format: Format,
) -> anyhow::Result<Duration> {
    let Some(build) = &function.build else {
        bail!(
            "{} has no [build] command for {}: add one, or build {} yourself",
            manifest.shown,
            function.name,
            function.component.display()
        );
    };
    eprintln!("building {}: {}", function.name, build.command);
    let started = Instant::now();
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(&build.command)
        .current_dir(&manifest.dir);
    if format == Format::Json {
        command.stdout(std::io::stderr());
    }
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running the build command of {}", function.name))?;
    if !status.success() {
        bail!(
            "the build command of {} failed ({status}): {}",
            function.name,
            build.command
        );
    }
    Ok(started.elapsed())
}

/// Whether the component must be built before a deploy: it is missing, or a watched file is
/// newer than it.
pub fn stale_reason(
    manifest: &Manifest,
    function: &FunctionSpec,
) -> anyhow::Result<Option<String>> {
    let component = manifest.path_of(&function.component);
    let built = match std::fs::metadata(&component) {
        Ok(metadata) => metadata.modified()?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Some(format!("{} does not exist", component.display())));
        }
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!("reading {}", component.display())));
        }
    };
    let Some(build) = &function.build else {
        return Ok(None);
    };
    for watched in &build.watch {
        let watched = manifest.path_of(watched);
        if let Some(newer) = newer_than(&watched, built)? {
            return Ok(Some(format!(
                "{} is newer than {}",
                newer.display(),
                component.display()
            )));
        }
    }
    Ok(None)
}

/// A file at or below `path` modified after `than`; a watched path that does not exist
/// counts as unchanged.
fn newer_than(path: &Path, than: SystemTime) -> anyhow::Result<Option<PathBuf>> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!("reading {}", path.display())));
        }
    };
    if metadata.modified()? > than {
        return Ok(Some(path.to_path_buf()));
    }
    if metadata.is_dir() {
        let entries =
            std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?;
        for entry in entries {
            if let Some(newer) = newer_than(&entry?.path(), than)? {
                return Ok(Some(newer));
            }
        }
    }
    Ok(None)
}

/// The deploy's checks of the component at `path`, run here; returns the imports that would be
/// linked as traps.
pub fn check(function: &FunctionSpec, path: &Path) -> anyhow::Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "reading the component of {} at {}",
            function.name,
            path.display()
        )
    })?;
    let allow_unimplemented = function.settings().allow_unimplemented_imports;
    vireo_server::check_component(&bytes, allow_unimplemented).map_err(|rejection| {
        anyhow::anyhow!(
            "{} cannot be deployed: {rejection}\n{}",
            path.display(),
            explain(&rejection)
        )
    })
}

/// What to do about a rejection, in the terms of the toolchains that make components.
fn explain(rejection: &Rejection) -> &'static str {
    match rejection {
        Rejection::NotWasm => {
            "This file is not WebAssembly at all: point `component` in vireo.toml at the \
             .wasm file your build writes (not a source file or a JavaScript bundle)."
        }
        Rejection::CoreModule => {
            "This is a core wasm module, not a component: build it with componentize-js \
             (`jco componentize`), componentize-py, or `cargo build --target wasm32-wasip2`; a \
             module from wasm32-wasip1 or emscripten needs `wasm-tools component new` with the \
             WASI adapter."
        }
        Rejection::Invalid(_) => {
            "The file is damaged, or written by a tool newer than Vireo knows: build it again."
        }
        Rejection::NoHttpHandler(_) => {
            "The component does not handle HTTP requests: build it for the world \
             `wasi:http/proxy`: with componentize-js export a `fetch` handler (or \
             `incomingHandler`), with componentize-py pass `-w wasi:http/proxy` and define \
             `class IncomingHandler`, in Rust export `wasi::http::incoming_handler`."
        }
        Rejection::UnsupportedImports(_) => {
            "The component asks for interfaces Vireo does not have (named above): build it for \
             the world `wasi:http/proxy` plus what Vireo links, or leave out the library that \
             imports them."
        }
        Rejection::UnimplementedImports(_) => {
            "If the function never calls them, set `allow_unimplemented_imports = true` under \
             [settings] in vireo.toml."
        }
        Rejection::Unlinkable(_) => "Build it again against the WASI 0.2 interfaces.",
    }
}
