//! `ANY /fn/{namespace}/{function}[@{alias|version}]/{rest}`: hands the request to the function
//! and streams its answer back.

use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use vireo_core::invoke::Peer;
use vireo_core::spin_http::Arrival;
use vireo_core::{
    BoxError, Call, InvocationId, Name, PathPattern, Principal, RequestBodyError, Trigger,
    VersionSelector,
};

use crate::accept::Target;
use crate::body::Guarded;
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::Invoking;
use crate::{GatewayLimits, INVOCATION_ID_HEADER};
use crate::{accept, auth, limits};

/// Headers that describe one connection, not the request; never forwarded to a guest.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// `{namespace}`, `{target}` and the rest of the path.
type Route = (String, String, String);

pub async fn root(
    State(state): State<Invoking>,
    path: Result<ApiPath<(String, String)>, ApiError>,
    request: Request,
) -> Response {
    let route = path.map(|ApiPath((ns, target))| (ns, target, String::new()));
    respond(state, route, request).await
}

pub async fn rest(
    State(state): State<Invoking>,
    path: Result<ApiPath<Route>, ApiError>,
    request: Request,
) -> Response {
    respond(state, path.map(|ApiPath(route)| route), request).await
}

/// Every answer carries the invocation id, errors Vireo gives before the function runs too, so
/// a caller can always quote it.
async fn respond(state: Invoking, route: Result<Route, ApiError>, request: Request) -> Response {
    let id = InvocationId::generate();
    let answer = match route {
        Ok((ns, target, rest)) => invoke(state, id.clone(), &ns, &target, &rest, request).await,
        Err(invalid) => Err(invalid),
    };
    with_invocation_id(answer, &id)
}

/// The answer, or the error's, with the invocation id.
pub(crate) fn with_invocation_id(
    answer: Result<Response, ApiError>,
    id: &InvocationId,
) -> Response {
    let mut response = answer.unwrap_or_else(IntoResponse::into_response);
    // A repeated async request answers with the first invocation's id, already set.
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response
            .headers_mut()
            .entry(INVOCATION_ID_HEADER)
            .or_insert(value);
    }
    response
}

async fn invoke(
    state: Invoking,
    id: InvocationId,
    ns: &str,
    target: &str,
    rest: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let namespace = Name::parse("namespace", ns)?;
    let (function, selector) = VersionSelector::split_target(target)?;
    let target = Target {
        namespace,
        function,
        selector,
        route_auth: None,
    };
    call_function(state, id, target, (None, rest), request).await
}

/// Hands `request` to `target`, which sees the path `/{rest}`; `route` is the path pattern of
/// the route the request took, if it took one.
pub(crate) async fn call_function(
    state: Invoking,
    id: InvocationId,
    target: Target,
    (route, rest): (Option<PathPattern>, &str),
    request: Request,
) -> Result<Response, ApiError> {
    let limit = state.limits.max_request_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(RequestBodyError::TooLarge { limit }.into());
    }

    let (mut parts, body) = request.into_parts();
    let arrival = arrival(&parts, route);
    parts.uri = guest_uri(rest, parts.uri.query())?;
    strip_hop_by_hop(&mut parts.headers);
    let principal = auth::invoker(&state.access, &mut parts.headers)?;
    let budget = match &principal {
        Principal::Key(caller) => limits::key_budget(&state.access, caller, &target.namespace)?,
        _ => None,
    };
    let mut response = deliver(&state, id, (target, arrival), principal, parts, body).await?;
    if let Some(budget) = budget {
        limits::describe(response.headers_mut(), budget);
    }
    Ok(response)
}

/// Runs the function now, or stores the request when the caller prefers an async answer.
async fn deliver(
    state: &Invoking,
    id: InvocationId,
    (target, arrival): (Target, Arrival),
    principal: Principal,
    mut parts: axum::http::request::Parts,
    body: AxumBody,
) -> Result<Response, ApiError> {
    if !parts.headers.contains_key(header::HOST) {
        // wasi:http requires an authority; HTTP/1.0 clients may not send one.
        parts
            .headers
            .insert(header::HOST, HeaderValue::from_static("localhost"));
    }
    if accept::wants_async(&parts.headers) {
        return accept::accept(state, id, target, &principal, parts, body).await;
    }
    // Streamed to the guest, never buffered: a chunked body is cut off at the limit, a trickling
    // one when it falls behind the pace. Either fault is the invoker's to report (413, 408).
    let body = guarded(state.limits, body)
        .map_err(BoxError::from)
        .boxed_unsync();
    let call = Call {
        id,
        namespace: target.namespace,
        function: target.function,
        selector: target.selector,
        trigger: Trigger::Http,
        principal,
        route_auth: target.route_auth,
        request: http::Request::from_parts(parts, body),
        arrival: Some(arrival),
    };

    let response = state.invoker.invoke(call).await?;
    Ok(response.map(AxumBody::new))
}

/// How the request reached the gateway, before its path is made function-relative.
fn arrival(parts: &axum::http::request::Parts, route: Option<PathPattern>) -> Arrival {
    let peer = parts.extensions.get::<Peer>();
    Arrival {
        target: parts.uri.clone(),
        route,
        client: peer.map(|peer| peer.addr),
        tls: peer.is_some_and(|peer| peer.tls),
    }
}

/// A request body for a function, bounded by the server's size limit and body pace.
pub fn guarded(limits: GatewayLimits, body: AxumBody) -> Guarded<AxumBody> {
    Guarded::new(body, limits.body_pace, Some(limits.max_request_body_bytes))
}

/// The path the guest sees: `/{rest}` plus the original query string.
fn guest_uri(rest: &str, query: Option<&str>) -> Result<Uri, ApiError> {
    let path_and_query = match query {
        Some(query) => format!("/{rest}?{query}"),
        None => format!("/{rest}"),
    };
    path_and_query
        .parse()
        .map_err(|e| ApiError::bad_request(format!("invalid request path: {e}")))
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1).
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim).map(str::to_ascii_lowercase))
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_sees_the_rest_of_the_path_and_the_query() {
        assert_eq!(
            guest_uri("some/path", Some("x=1")).unwrap(),
            "/some/path?x=1"
        );
        assert_eq!(guest_uri("", None).unwrap(), "/");
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(
            headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["x-kept"]
        );
    }
}
