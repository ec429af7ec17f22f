//! The dashboard's scripts and styles, compiled into the binary: its own (`dashboard.js`,
//! `dashboard.css`) and the vendored htmx and uPlot builds (versions and licences in
//! `assets/vendor/LICENSES.txt`).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "dashboard.js",
        "text/javascript",
        include_bytes!("assets/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css",
        include_bytes!("assets/dashboard.css"),
    ),
    (
        "htmx.min.js",
        "text/javascript",
        include_bytes!("assets/vendor/htmx.min.js"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript",
        include_bytes!("assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css",
        include_bytes!("assets/vendor/uPlot.min.css"),
    ),
];

pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                // Assets change only with the binary; an hour keeps pages quick without pinning
                // an old script across an upgrade for long.
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
