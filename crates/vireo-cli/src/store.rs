//! `vireo store copy`: moves an installation into another store, e.g. a single node's data
//! directory into the PostgreSQL database of a cluster. Runs here, not through a server.

use std::io::IsTerminal as _;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use vireo_server::{CopyProgress, CopyReport};

use crate::output::{self, Format};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy everything (functions, versions and their components, aliases, namespaces and
    /// quotas, API keys, sealed secrets, schedules, sources, key-value stores, buckets and their
    /// objects, queued async invocations, records and logs) into an empty store. Stop the servers of both stores first; SQLite ends are locked
    /// meanwhile. The nodes of the new store need the same master key file.
    Copy {
        /// The store to copy: a data directory (e.g. .vireo), sqlite:PATH or postgres://…
        #[arg(long, value_name = "STORE")]
        from: String,
        /// The empty store to fill: a data directory, sqlite:PATH or postgres://…
        #[arg(long, value_name = "STORE")]
        to: String,
    },
}

pub async fn run(format: Format, command: StoreCommand) -> anyhow::Result<()> {
    let StoreCommand::Copy { from, to } = command;
    let bar = copy_progress();
    let report = vireo_server::copy_store(&from, &to, &|progress: CopyProgress<'_>| {
        bar.set_length(progress.total);
        bar.set_position(progress.done);
        bar.set_message(progress.what.to_string());
    })
    .await?;
    bar.finish_and_clear();
    let text = match format {
        Format::Json => output::pretty_json(&report_json(&report)),
        Format::Table => summary(&report, &to),
        Format::Csv => return Err(output::csv_unsupported()),
    };
    output::write_stdout(text.as_bytes())
}

fn report_json(report: &CopyReport) -> serde_json::Value {
    let tables: Vec<serde_json::Value> = report
        .tables
        .iter()
        .map(|(table, rows)| serde_json::json!({"table": table, "rows": rows}))
        .collect();
    serde_json::json!({
        "tables": tables,
        "components": report.components,
        "component_bytes": report.component_bytes,
        "objects": report.objects,
        "object_bytes": report.object_bytes,
    })
}

/// A bar of rows copied on stderr, hidden when stderr is not a terminal.
fn copy_progress() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("copying {msg:18} [{bar:30}] {pos}/{len}")
        .expect("valid template")
        .progress_chars("=> ");
    ProgressBar::new(0).with_style(style)
}

fn summary(report: &CopyReport, to: &str) -> String {
    let rows: u64 = report.tables.iter().map(|(_, rows)| rows).sum();
    let mut text = output::table(
        ["TABLE", "ROWS"],
        report
            .tables
            .iter()
            .map(|(table, rows)| [table.clone(), rows.to_string()]),
    );
    text.push_str(&format!(
        "\ncopied {rows} rows, {} components ({}) and the bytes of {} objects ({}) into {to}.\n\
         Give every node of that store the same master key file (the source's master.key).\n",
        report.components,
        output::size(report.component_bytes),
        report.objects,
        output::size(report.object_bytes)
    ));
    text
}
