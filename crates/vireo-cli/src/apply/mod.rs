//! `vireo deploy` from the project manifest: builds a stale component, deploys it with the
//! manifest's settings as the next version (the server keeps the latest version when nothing
//! differs), then makes the function's aliases and schedules what the manifest says.
//! `--dry-run` compares the same things and changes nothing.

mod aliases;
mod named;
mod notifications;
mod routes;
mod schedules;
mod sources;

use anyhow::Context as _;
use reqwest::multipart::{Form, Part};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use vireo_core::settings::{SettingChange, changes_between, settings_object};
use vireo_core::{Name, VersionSettings};

use crate::build;
use crate::client::Client;
use crate::deploy::{change_lines, function_url, post_version, upload_part, version_lines};
use crate::manifest::{FunctionSpec, Manifest};
use crate::output::{self, Format};
use crate::views::VersionView;

/// What deploying one function of the manifest did, or would do.
#[derive(Serialize)]
struct FunctionReport {
    namespace: String,
    function: String,
    /// Why the component was built (or would be) before deploying; none when it was fresh.
    build_reason: Option<String>,
    build_ms: Option<u64>,
    /// The version deployed or kept; on a dry run, the one the function would have.
    version: u32,
    /// Whether the deploy made a new version; on a dry run of a component that would be built
    /// first, unknown (null) until it is built.
    new_version: Option<bool>,
    component_changed: Option<bool>,
    settings_changed: Vec<SettingChange>,
    aliases: Vec<aliases::AliasChange>,
    schedules: Vec<named::Change>,
    routes: Vec<named::Change>,
    sources: Vec<named::Change>,
    notifications: Vec<named::Change>,
    unimplemented_imports: Vec<String>,
    warnings: Vec<String>,
    url: String,
}

/// The latest version as far as a deploy compares it.
#[derive(Deserialize)]
struct Latest {
    version: u32,
    component_sha256: String,
    /// As the server shows them: a newer server's fields compare too.
    settings: Map<String, Value>,
}

pub async fn run(
    client: &Client,
    format: Format,
    manifest: &Manifest,
    dry_run: bool,
) -> anyhow::Result<()> {
    if format == Format::Csv {
        return Err(output::csv_unsupported());
    }
    if format == Format::Table {
        for note in &manifest.notes {
            eprintln!("note: {note}");
        }
    }
    let mut reports = Vec::new();
    for function in &manifest.functions {
        let client = match &function.namespace {
            Some(namespace) => client.in_namespace(namespace),
            None => client.clone(),
        };
        let report = apply(&client, format, manifest, function, dry_run)
            .await
            .with_context(|| {
                let doing = if dry_run { "comparing" } else { "deploying" };
                format!(
                    "{doing} {} from {}",
                    client.qualified(&function.name),
                    manifest.shown
                )
            })?;
        if format == Format::Table {
            output::write_stdout(report_text(&report, dry_run).as_bytes())?;
        }
        reports.push(report);
    }
    if format == Format::Json {
        let answer =
            json!({ "dry_run": dry_run, "functions": reports, "not_mapped": manifest.notes });
        output::write_stdout(output::pretty_json(&answer).as_bytes())?;
    }
    Ok(())
}

async fn apply(
    client: &Client,
    format: Format,
    manifest: &Manifest,
    function: &FunctionSpec,
    dry_run: bool,
) -> anyhow::Result<FunctionReport> {
    let name = &function.name;
    let settings = function.settings();
    let build_reason = build::stale_reason(manifest, function)?;
    if let Some(reason) = &build_reason
        && function.build.is_none()
    {
        anyhow::bail!(
            "{reason}, and {} has no [build] command for {name}",
            manifest.shown
        );
    }
    let latest = latest_version(client, name).await?;
    let mut report = FunctionReport {
        namespace: client.namespace().to_string(),
        function: name.to_string(),
        build_reason: build_reason.clone(),
        build_ms: None,
        version: 0,
        new_version: None,
        component_changed: None,
        settings_changed: Vec::new(),
        aliases: Vec::new(),
        schedules: Vec::new(),
        routes: Vec::new(),
        sources: Vec::new(),
        notifications: Vec::new(),
        unimplemented_imports: Vec::new(),
        warnings: Vec::new(),
        url: function_url(client, name),
    };
    if dry_run {
        compare(manifest, function, &settings, latest.as_ref(), &mut report)?;
    } else {
        if build_reason.is_some() {
            let took = build::run_command(manifest, function, format)?;
            report.build_ms = Some(took.as_millis() as u64);
        }
        deploy(
            client,
            manifest,
            function,
            &settings,
            latest.as_ref(),
            &mut report,
        )
        .await?;
    }
    report.aliases =
        aliases::apply(client, name, &function.aliases, report.version, dry_run).await?;
    report.schedules = schedules::apply(client, name, &function.schedules, dry_run).await?;
    report.routes = routes::apply(client, name, &function.routes, dry_run).await?;
    report.sources = sources::apply(client, name, &function.sources, dry_run).await?;
    report.notifications =
        notifications::apply(client, name, &function.notifications, dry_run).await?;
    Ok(report)
}

/// The function's latest version, if it has one.
async fn latest_version(client: &Client, name: &Name) -> anyhow::Result<Option<Latest>> {
    client
        .get_if_found(&client.function_path(name, "/versions/latest"))
        .await
}

/// A dry run: what a deploy would make of the latest version, from the component's digest and
/// the settings (a first version's settings change from the defaults, as on the server).
fn compare(
    manifest: &Manifest,
    function: &FunctionSpec,
    settings: &VersionSettings,
    latest: Option<&Latest>,
    report: &mut FunctionReport,
) -> anyhow::Result<()> {
    let before = latest.map_or_else(
        || settings_object(&VersionSettings::default()),
        |latest| latest.settings.clone(),
    );
    report.settings_changed = changes_between(&before, &settings_object(settings));
    let next = latest.map_or(1, |latest| latest.version + 1);
    if report.build_reason.is_some() {
        // Whether the build changes the component is known only once it ran.
        report.version = next;
        return Ok(());
    }
    let path = manifest.path_of(&function.component);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let sha = vireo_core::component_sha256(&bytes);
    let component_changed = latest.is_none_or(|latest| latest.component_sha256 != sha);
    let new_version = component_changed || !report.settings_changed.is_empty();
    report.component_changed = Some(component_changed);
    report.new_version = Some(new_version);
    report.version = match latest {
        Some(latest) if !new_version => latest.version,
        _ => next,
    };
    Ok(())
}

/// Uploads the component with the manifest's settings, which replace the latest version's
/// whole (a setting left out of the manifest goes back to its default).
async fn deploy(
    client: &Client,
    manifest: &Manifest,
    function: &FunctionSpec,
    settings: &VersionSettings,
    latest: Option<&Latest>,
    report: &mut FunctionReport,
) -> anyhow::Result<()> {
    let name = &function.name;
    let path = manifest.path_of(&function.component);
    build::check(function, &path)?;
    let settings = Part::text(serde_json::to_string(settings).context("encoding the settings")?)
        .mime_str("application/json")
        .context("labelling the settings part")?;
    let (component, progress) = upload_part(name, &path).await?;
    let form = Form::new()
        .part("settings", settings)
        .text("reset_settings", "true")
        .part("component", component);
    let what = format!("deploying {}", path.display());
    let posted = post_version(client, name, form, &what).await;
    progress.finish_and_clear();
    let (answer, created) = posted?;
    let view: VersionView = output::decode(answer)?;
    report.version = view.version;
    report.new_version = Some(created);
    report.component_changed =
        Some(latest.is_none_or(|latest| latest.component_sha256 != view.component_sha256));
    report.settings_changed = view.settings_changed.unwrap_or_default();
    report.unimplemented_imports = view.unimplemented_imports.unwrap_or_default();
    report.warnings = view.warnings.unwrap_or_default();
    Ok(())
}

/// The report in sentences, one function at a time.
fn report_text(report: &FunctionReport, dry_run: bool) -> String {
    let function = format!("{}/{}", report.namespace, report.function);
    let mut text = if dry_run {
        dry_run_head(report, &function)
    } else {
        let mut text = String::new();
        if let (Some(reason), Some(millis)) = (&report.build_reason, report.build_ms) {
            text.push_str(&format!(
                "built {function} in {} ({reason})\n",
                output::duration_ms(millis)
            ));
        }
        text.push_str(&version_lines(
            &function,
            report.version,
            report.new_version == Some(true),
            (&report.settings_changed, &report.unimplemented_imports),
        ));
        text
    };
    for change in &report.aliases {
        text.push_str(&format!("  {}\n", change.describe(dry_run)));
    }
    for change in report
        .schedules
        .iter()
        .chain(&report.routes)
        .chain(&report.sources)
        .chain(&report.notifications)
    {
        text.push_str(&format!("  {}\n", change.describe(dry_run)));
    }
    for warning in &report.warnings {
        text.push_str(&format!("warning: {warning}\n"));
    }
    if !dry_run {
        text.push_str(&report.url);
        text.push('\n');
    }
    text
}

fn dry_run_head(report: &FunctionReport, function: &str) -> String {
    let mut text = match (report.new_version, report.component_changed) {
        (None, _) => format!(
            "would build {function} first ({}), then deploy it: a new version {} if the built \
             component or the settings differ\n",
            report.build_reason.as_deref().unwrap_or("stale"),
            report.version
        ),
        (Some(false), _) => {
            format!(
                "{function} is unchanged: it stays at version {}\n",
                report.version
            )
        }
        (Some(true), Some(true)) if report.version == 1 => {
            format!("would create {function} with version 1\n")
        }
        (Some(true), Some(true)) => format!(
            "would deploy {function} as version {}: the component changed\n",
            report.version
        ),
        (Some(true), _) => format!(
            "would deploy {function} as version {} with other settings (same component)\n",
            report.version
        ),
    };
    text.push_str(&change_lines(&report.settings_changed));
    text
}
