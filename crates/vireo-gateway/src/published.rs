//! Requests outside Vireo's own paths: matched against the published routes (host and path →
//! function) in memory; a match goes to its function like `/fn/...` does, with the path after
//! the matched prefix and the original request target in `x-vireo-original-url`. Each route
//! counts its requests by status and their latency.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram, counter, histogram};
use vireo_core::http_route::{ORIGINAL_URL_HEADER, RoutePattern};
use vireo_core::{InvocationId, Name};

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
    let started = Instant::now();
    let id = InvocationId::generate();
    let matched = Some(route.pattern.path.clone());
    let answer = call_function(state, id.clone(), target, (matched, &rest), request).await;
    let response = with_invocation_id(answer, &id);
    count_request(
        &route.namespace,
        &route.pattern,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// A route's metric handles, registered once: looking a metric up by its label strings
/// allocates them and searches the registry on every request, a cost a route must not add.
struct RouteMetrics {
    duration: Histogram,
    /// One counter per status seen, a handful per route.
    requests: Vec<(u16, Counter)>,
}

/// Handles by namespace, then route.
static ROUTES: LazyLock<Mutex<HashMap<Name, HashMap<RoutePattern, RouteMetrics>>>> =
    LazyLock::new(Mutex::default);

fn count_request(namespace: &Name, pattern: &RoutePattern, status: u16, seconds: f64) {
    let mut routes = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
    // Looked up by reference: the names are cloned only for a route's first request.
    if !routes
        .get(namespace)
        .is_some_and(|known| known.contains_key(pattern))
    {
        let duration = histogram!(ROUTE_DURATION, "namespace" => namespace.to_string(), "route" => pattern.to_string());
        routes.entry(namespace.clone()).or_default().insert(
            pattern.clone(),
            RouteMetrics {
                duration,
                requests: Vec::new(),
            },
        );
    }
    let route = routes
        .get_mut(namespace)
        .and_then(|known| known.get_mut(pattern))
        .expect("registered above");
    route.duration.record(seconds);
    match route.requests.iter().find(|(seen, _)| *seen == status) {
        Some((_, requests)) => requests.increment(1),
        None => {
            let requests = counter!(
                ROUTE_REQUESTS,
                "namespace" => namespace.to_string(),
                "route" => pattern.to_string(),
                "status" => status.to_string()
            );
            requests.increment(1);
            route.requests.push((status, requests));
        }
    }
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
