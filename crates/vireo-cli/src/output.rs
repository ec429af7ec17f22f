//! Printing results: the server's JSON for scripts, or tables and human units for people.

use std::io::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use clap::ValueEnum;
use comfy_table::{Table, presets};
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns and plain sentences.
    Table,
    /// The server's JSON answer, for scripts.
    Json,
    /// Comma-separated values with a header row (only `vireo usage`).
    Csv,
}

/// Prints a server answer: pretty JSON as received for `-o json` (so no field is lost on the
/// way), otherwise decoded into `T` and rendered for people by `render`.
pub fn emit<T: DeserializeOwned>(
    format: Format,
    answer: Value,
    render: impl FnOnce(T) -> String,
) -> anyhow::Result<()> {
    let text = match format {
        Format::Json => pretty_json(&answer),
        Format::Table => render(decode(answer)?),
        Format::Csv => return Err(csv_unsupported()),
    };
    write_stdout(text.as_bytes())
}

/// Decodes a JSON value into the view the CLI expects.
pub fn decode<T: DeserializeOwned>(value: Value) -> anyhow::Result<T> {
    serde_json::from_value(value).context("the server's answer does not have the expected shape")
}

/// The error for `-o csv` on a command whose answer is not a table of numbers.
pub fn csv_unsupported() -> anyhow::Error {
    anyhow::anyhow!("-o csv is only available for `vireo usage`; use table or json")
}

pub fn pretty_json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// A byte-counting bar on stderr (`verb` says which way the bytes go), hidden when stderr is
/// not a terminal (CI logs, pipes).
pub fn transfer_progress(verb: &str, size: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let style = indicatif::ProgressStyle::with_template(&format!(
        "{verb} [{{bar:30}}] {{bytes}}/{{total_bytes}} ({{bytes_per_sec}})"
    ))
    .expect("valid template")
    .progress_chars("=> ");
    indicatif::ProgressBar::new(size).with_style(style)
}

/// Standard output was closed by its reader (`vireo logs hello | head`): not a failure.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes and flushes at once, so streamed output shows up as it arrives.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        result => result.context("writing to standard output"),
    }
}

/// Left-aligned columns without borders (easy to read, grep and cut), ending in a newline.
pub fn table<R: Into<comfy_table::Row>>(
    header: impl Into<comfy_table::Row>,
    rows: impl IntoIterator<Item = R>,
) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(header)
        .add_rows(rows);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut text = table.trim_fmt();
    text.push('\n');
    text
}

/// `key: value` lines with the values aligned, for showing one record.
pub fn details(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(key, _)| key.len()).max().unwrap_or(0) + 1;
    fields
        .iter()
        .map(|(key, value)| format!("{:width$} {value}\n", format!("{key}:")))
        .collect()
}

/// Bytes in binary units: `512 B`, `95.0 KiB`, `3.4 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Move up a unit before the value would print as 1024.0.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A run time in microseconds as milliseconds (`1.234 ms`), or seconds from one second up.
pub fn duration_us(micros: u64) -> String {
    if micros < 1_000_000 {
        format!("{}.{:03} ms", micros / 1000, micros % 1000)
    } else {
        format!("{}.{:03} s", micros / 1_000_000, micros % 1_000_000 / 1000)
    }
}

/// A configured limit in milliseconds the way people write it: `10s`, `500ms`, `1m 30s`.
pub fn duration_ms(millis: u64) -> String {
    humantime::format_duration(Duration::from_millis(millis)).to_string()
}

/// A timestamp (microseconds since the epoch) to the second, for table columns.
pub fn timestamp(micros: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// At most `max` characters, with `…` marking a cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// `-` for a missing value.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |value| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(97_306), "95.0 KiB");
        assert_eq!(size(97_500), "95.2 KiB");
        assert_eq!(size(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(size(5 * 1024 * 1024 + 512 * 1024), "5.5 MiB");
        assert_eq!(size(3 << 40), "3.0 TiB");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_us(1234), "1.234 ms");
        assert_eq!(duration_us(7), "0.007 ms");
        assert_eq!(duration_us(999_999), "999.999 ms");
        assert_eq!(duration_us(2_500_000), "2.500 s");
        assert_eq!(duration_ms(10_000), "10s");
        assert_eq!(duration_ms(500), "500ms");
        assert_eq!(duration_ms(90_000), "1m 30s");
        assert_eq!(timestamp(1_500_000), "1970-01-01T00:00:01Z");
    }

    #[test]
    fn text_is_truncated_by_characters() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(or_dash(None::<u32>), "-");
        assert_eq!(or_dash(Some(200)), "200");
    }

    #[test]
    fn tables_have_aligned_columns_and_no_borders() {
        let text = table(
            ["NAME", "LATEST"],
            [
                ["hello".to_string(), "3".to_string()],
                ["a".to_string(), "-".to_string()],
            ],
        );
        assert_eq!(text, "NAME   LATEST\nhello  3\na      -\n");
        assert_eq!(
            details(&[("id", "x".into()), ("status", "ok".into())]),
            "id:     x\nstatus: ok\n"
        );
    }
}
