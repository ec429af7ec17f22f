//! `/v1/namespaces/{namespace}/metrics`: the Prometheus exposition narrowed to one namespace's
//! series, for keys that may read the namespace but not the whole server's `/metrics` (`vireo
//! top` with a developer or viewer key).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use vireo_core::Directory;

use crate::error::{ApiError, ErrorBody};
use crate::extract::NamespacePath;
use crate::state::RenderMetrics;

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/metrics", tag = "metrics",
    params(("namespace" = String, Path)),
    responses(
        (status = 200, description = "The Prometheus text exposition of the namespace's series (labelled with it), with the metrics' HELP and TYPE lines",
            content_type = "text/plain; version=0.0.4", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn namespace(
    State(directory): State<Arc<Directory>>,
    State(render): State<RenderMetrics>,
    NamespacePath(namespace): NamespacePath,
) -> Result<impl IntoResponse, ApiError> {
    directory.store().get_namespace(&namespace).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        of_namespace(&render(), namespace.as_str()),
    ))
}

/// Whether an exposition line is a sample whose labels begin with `labels` (whole labels,
/// such as `namespace="team"`). Vireo's label values are names, which hold no quotes or commas,
/// so `labels` cannot match inside another label's value.
pub fn leads_with_labels(line: &str, labels: &str) -> bool {
    line.split_once('{').is_some_and(|(_, rest)| {
        rest.strip_prefix(labels)
            .is_some_and(|rest| rest.starts_with([',', '}']))
    })
}

/// The samples labelled `namespace="…"` first (as every per-namespace series is), and the
/// comment lines, which describe metrics and name no namespace.
fn of_namespace(exposition: &str, namespace: &str) -> String {
    let label = format!("namespace=\"{namespace}\"");
    let mut kept = String::new();
    for line in exposition.lines() {
        if line.starts_with('#') || leads_with_labels(line, &label) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_namespaces_samples_are_kept() {
        let exposition = "# TYPE vireo_invocations_total counter\n\
            vireo_invocations_total{namespace=\"team\",function=\"a\",status=\"ok\",trigger=\"http\"} 2\n\
            vireo_invocations_total{namespace=\"team-b\",function=\"a\",status=\"ok\",trigger=\"http\"} 5\n\
            vireo_invocations_total{namespace=\"default\",function=\"a\",status=\"ok\",trigger=\"http\"} 7\n\
            vireo_async_pending{namespace=\"team\"} 1\n\
            vireo_invocations_in_flight 3\n\
            process_resident_memory_bytes 1000\n";
        assert_eq!(
            of_namespace(exposition, "team"),
            "# TYPE vireo_invocations_total counter\n\
             vireo_invocations_total{namespace=\"team\",function=\"a\",status=\"ok\",trigger=\"http\"} 2\n\
             vireo_async_pending{namespace=\"team\"} 1\n"
        );
    }
}
