//! Requests outside Vireo's own paths: matched against the published routes (host and path →
//! function) in memory; a match goes to its function like `/fn/...` does, with the path after
//! the matched prefix and the original request target in `x-vireo-original-url`. Each route
//! counts its requests by status and their latency.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use metrics::{counter, histogram};
use vireo_core::InvocationId;
use vireo_core::http_route::ORIGINAL_URL_HEADER;

use crate::accept::Target;
use crate::error::ApiError;
use crate::invoke::{call_function, with_invocation_id};
use crate::state::Invoking;

/// Requests that took a route, by namespace, route and status.
pub const ROUTE_REQUESTS: &str = "vireo_route_requests_total";
/// How long requests that took a route took to answer (to the response head).
pub const ROUTE_DURATION: &str = "vireo_route_request_duration_seconds";

pub async fn fallback(State(state): State<Invoking>, mut request: Request) -> Response {
    let table = state.published.current();
    let host = request_host(&request);
    let path = request.uri().path().to_string();
    let Some(found) = table.find(&host, &path) else {
        return not_found(&path).into_response();
    };
    let route = found.route;
    let rest = found.rest.to_string();
    let pattern = route.pattern.to_string();
    let namespace = route.namespace.to_string();
    if let Some(original) = request.uri().path_and_query()
        && let Ok(value) = HeaderValue::from_str(original.as_str())
    {
        request.headers_mut().insert(ORIGINAL_URL_HEADER, value);
    }
    let target = Target {
        namespace: route.namespace.clone(),
        function: route.function.clone(),
        selector: route.selector.clone(),
        route_auth: route.invoke_auth.clone(),
    };
    drop(table);
    let started = Instant::now();
    let id = InvocationId::generate();
    let answer = call_function(state, id.clone(), target, &rest, request).await;
    let response = with_invocation_id(answer, &id);
    let status = response.status().as_u16().to_string();
    counter!(ROUTE_REQUESTS, "namespace" => namespace.clone(), "route" => pattern.clone(), "status" => status)
        .increment(1);
    histogram!(ROUTE_DURATION, "namespace" => namespace, "route" => pattern)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The host a request names, lowercase and without its port.
fn request_host(request: &Request) -> String {
    let named = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().host())
        .unwrap_or_default();
    // `[::1]:8080`, `host:8080`, `host`.
    let host = match named.rfind(':') {
        Some(colon) if !named[colon..].contains(']') => &named[..colon],
        _ => named,
    };
    host.to_ascii_lowercase()
}

pub(crate) fn not_found(path: &str) -> ApiError {
    ApiError::not_found(format!(
        "no route for {path}: functions answer under /fn/{{namespace}}/{{function}}/... and at the routes published to them, the admin API under /v1 (see /v1/openapi.json)"
    ))
}
