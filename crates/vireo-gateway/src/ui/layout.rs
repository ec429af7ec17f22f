//! The frame every page shares, and the small pieces pages repeat: times (shown in the viewer's
//! zone by the script, UTC without it), durations, and the pager.

use axum::response::Html;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use vireo_core::time::rfc3339;

use super::session::Viewer;

/// htmx's settings: no inline indicator styles (the CSP forbids them) and no evaluated code.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0}"#;

pub(crate) fn page(title: &str, viewer: Option<&Viewer>, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " · Vireo" }
                link rel="stylesheet" href="/ui/assets/uPlot.min.css";
                link rel="stylesheet" href="/ui/assets/dashboard.css";
                script src="/ui/assets/htmx.min.js" defer {}
                script src="/ui/assets/uPlot.iife.min.js" defer {}
                script src="/ui/assets/dashboard.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui" { "Vireo" }
                    @if let Some(viewer) = viewer {
                        nav {
                            a href="/ui" { "Namespaces" }
                            @if viewer.is_admin() {
                                a href="/ui/keys" { "API keys" }
                            }
                        }
                        span.who { (viewer.caller.role.as_str()) " key " code { (viewer.caller.key_id) } }
                        form.logout method="post" action="/ui/logout" {
                            (viewer.csrf.field())
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    Html(markup.into_string())
}

/// A time the script shows in the viewer's time zone.
pub(crate) fn time(micros: i64) -> Markup {
    stamp(&rfc3339(micros))
}

/// An RFC 3339 time the script shows in the viewer's time zone.
pub(crate) fn stamp(rfc3339: &str) -> Markup {
    html! { time datetime=(rfc3339) { (rfc3339) } }
}

/// A duration in milliseconds, as people read them.
#[expect(
    clippy::cast_precision_loss,
    reason = "durations are far below 2^52 µs"
)]
pub(crate) fn millis(micros: u64) -> String {
    format!("{:.1} ms", micros as f64 / 1000.0)
}

/// A size in bytes, as people read them.
#[expect(clippy::cast_precision_loss, reason = "shown to one decimal")]
pub(crate) fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `base` with the non-empty `pairs` as its query string, each value URL-encoded.
pub(crate) fn with_query(base: &str, pairs: &[(&str, Option<&str>)]) -> String {
    let query: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(name, value)| value.filter(|v| !v.is_empty()).map(|v| (*name, v)))
        .collect();
    let encoded = serde_urlencoded::to_string(query).unwrap_or_default();
    if encoded.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{encoded}")
    }
}

/// Rows a paged table shows at once.
pub(crate) const PAGE_ROWS: usize = 50;

/// The rows of page `page` (from 1) of `rows`.
pub(crate) fn page_of<T>(rows: &[T], page: usize) -> &[T] {
    let start = page
        .saturating_sub(1)
        .saturating_mul(PAGE_ROWS)
        .min(rows.len());
    &rows[start..(start + PAGE_ROWS).min(rows.len())]
}

/// Links to the neighbouring pages of a table of `total` rows; `url` makes a page's address.
pub(crate) fn pager(page: usize, total: usize, url: impl Fn(usize) -> String) -> Markup {
    let pages = total.div_ceil(PAGE_ROWS).max(1);
    let page = page.clamp(1, pages);
    html! {
        @if pages > 1 {
            nav.pager aria-label="pages" {
                @if page > 1 { a href=(url(page - 1)) rel="prev" { "← Previous" } }
                span { "page " (page) " of " (pages) }
                @if page < pages { a href=(url(page + 1)) rel="next" { "Next →" } }
            }
        }
    }
}

/// `?prefix=…&cursor=…` of a listing paged by cursor: keys starting with `prefix`, from where
/// the API's `next_cursor` of the page before left off.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Listing {
    #[serde(default)]
    pub prefix: String,
    pub cursor: Option<String>,
}

/// Links through a listing paged by cursor: back to its first page (`first`) when this is a later
/// one, and on to `next` when there is more.
pub(crate) fn cursor_pager(first: &str, later_page: bool, next: Option<String>) -> Markup {
    html! {
        nav.pager aria-label="pages" {
            @if later_page { a href=(first) { "← First page" } }
            @if let Some(next) = next { a href=(next) rel="next" { "Next →" } }
        }
    }
}

/// What a page with no rows says instead, with what to do next.
pub(crate) fn empty(what: &str, next: Markup) -> Markup {
    html! { div.empty { p { (what) } p.hint { (next) } } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cut_rows_and_link_their_neighbours() {
        let rows: Vec<usize> = (0..120).collect();
        assert_eq!(page_of(&rows, 1), &rows[..50]);
        assert_eq!(page_of(&rows, 3), &rows[100..]);
        assert!(page_of(&rows, 9).is_empty());
        let links = pager(2, rows.len(), |p| format!("?page={p}")).into_string();
        assert!(
            links.contains("?page=1") && links.contains("?page=3"),
            "{links}"
        );
        assert!(links.contains("page 2 of 3"), "{links}");
        assert!(pager(1, 50, |p| p.to_string()).into_string().is_empty());
    }

    #[test]
    fn sizes_and_queries_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(
            with_query("/b", &[("prefix", Some("")), ("cursor", None)]),
            "/b"
        );
        assert_eq!(
            with_query("/b", &[("prefix", Some("a b/&<")), ("cursor", Some("x"))]),
            "/b?prefix=a+b%2F%26%3C&cursor=x"
        );
    }
}
