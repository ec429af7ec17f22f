//! `/v1/namespaces/{namespace}/routes`: publish a function at a path (and host), list and
//! remove routes; `/v1/hosts`: which namespace may route which host, decided by an admin.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vireo_core::time::{now_micros, rfc3339};
use vireo_core::{
    Caller, HostClaim, HostPattern, HttpRoute, InvokeAuth, Name, Role, RoutePattern, RouteStore,
    VersionSelector,
};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, NamespacePath};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddRoute {
    /// `[HOST]/PATH`: `/hello`, `/orders/*` (a prefix), `api.example.com/orders/*`,
    /// `*.example.com/*`.
    pub route: String,
    /// `function[@version|@alias]` of the namespace.
    pub function: String,
    /// Who may call the function through this route (`public`, `key` or `{"jwt": {...}}`),
    /// instead of the version's own `invoke_auth`; the version's when left out.
    #[serde(default)]
    pub invoke_auth: Option<InvokeAuth>,
}

#[derive(Serialize, ToSchema)]
pub struct RouteView {
    pub namespace: String,
    pub route: String,
    pub function: String,
    /// The route's own `invoke_auth`; absent when the version's applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoke_auth: Option<InvokeAuth>,
    pub created_at: String,
    pub created_at_us: i64,
}

impl From<HttpRoute> for RouteView {
    fn from(route: HttpRoute) -> Self {
        Self {
            namespace: route.namespace.to_string(),
            route: route.pattern.to_string(),
            function: format!("{}@{}", route.function, route.selector),
            invoke_auth: route.invoke_auth,
            created_at: rfc3339(route.created_at_us),
            created_at_us: route.created_at_us,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RouteList {
    pub routes: Vec<RouteView>,
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RouteQuery {
    /// The route as written when it was added.
    pub route: String,
}

fn pattern(written: &str) -> Result<RoutePattern, ApiError> {
    RoutePattern::parse(written).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Publishes a function at a path, on any host (admin keys only, as such a route reaches every
/// host) or on a host an admin claimed for the namespace.
#[utoipa::path(post, path = "/v1/namespaces/{namespace}/routes", tag = "routes",
    params(("namespace" = String, Path)),
    request_body = AddRoute,
    responses(
        (status = 201, body = RouteView),
        (status = 400, description = "Not a route pattern, or a path Vireo keeps (/fn, /v1, /metrics, /healthz, /readyz, /ui)", body = ErrorBody),
        (status = 403, description = "The host is not claimed for the namespace, or a route for any host without an admin key", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A route with the same pattern exists; the message names it", body = ErrorBody)))]
pub async fn add(
    State(routes): State<Arc<dyn RouteStore>>,
    Extension(caller): Extension<Caller>,
    NamespacePath(namespace): NamespacePath,
    ApiJson(body): ApiJson<AddRoute>,
) -> Result<(StatusCode, Json<RouteView>), ApiError> {
    let pattern = pattern(&body.route)?;
    if pattern.host.is_none() && caller.role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "a route without a host reaches every host, so it needs an admin key; add the host an admin claimed for namespace {namespace} (HOST{})",
                pattern.path
            ),
        ));
    }
    let (function, selector) = VersionSelector::split_target(&body.function)?;
    if let Some(auth) = &body.invoke_auth {
        auth.validate()
            .map_err(|e| ApiError::bad_request(format!("invalid invoke_auth: {e}")))?;
    }
    let route = HttpRoute {
        namespace,
        pattern,
        function,
        selector,
        invoke_auth: body.invoke_auth,
        created_at_us: now_micros(),
    };
    routes.add_route(&route).await?;
    Ok((StatusCode::CREATED, Json(route.into())))
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/routes", tag = "routes",
    params(("namespace" = String, Path)),
    responses((status = 200, body = RouteList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(routes): State<Arc<dyn RouteStore>>,
    NamespacePath(namespace): NamespacePath,
) -> Result<Json<RouteList>, ApiError> {
    let listed = routes.list_routes(Some(&namespace)).await?;
    Ok(Json(RouteList {
        routes: listed.into_iter().map(RouteView::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/routes", tag = "routes",
    params(("namespace" = String, Path), RouteQuery),
    responses((status = 204, description = "Removed"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(routes): State<Arc<dyn RouteStore>>,
    NamespacePath(namespace): NamespacePath,
    ApiQuery(query): ApiQuery<RouteQuery>,
) -> Result<StatusCode, ApiError> {
    routes
        .delete_route(&namespace, &pattern(&query.route)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimHost {
    pub namespace: String,
}

#[derive(Serialize, ToSchema)]
pub struct HostList {
    pub hosts: Vec<HostClaim>,
}

fn host(written: &str) -> Result<HostPattern, ApiError> {
    HostPattern::parse(written).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Lets a namespace route a host (`api.example.com`) or every subdomain of one
/// (`*.example.com`); no other namespace may then claim an overlapping host.
#[utoipa::path(put, path = "/v1/hosts/{host}", tag = "routes",
    params(("host" = String, Path)),
    request_body = ClaimHost,
    responses((status = 204, description = "Claimed"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Another namespace claims an overlapping host", body = ErrorBody)))]
pub async fn claim(
    State(routes): State<Arc<dyn RouteStore>>,
    Path(written): Path<String>,
    ApiJson(body): ApiJson<ClaimHost>,
) -> Result<StatusCode, ApiError> {
    let namespace = Name::parse("namespace", &body.namespace)?;
    routes
        .claim_host(&host(&written)?, &namespace, now_micros())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/hosts", tag = "routes",
    responses((status = 200, body = HostList)))]
pub async fn hosts(State(routes): State<Arc<dyn RouteStore>>) -> Result<Json<HostList>, ApiError> {
    Ok(Json(HostList {
        hosts: routes.list_host_claims().await?,
    }))
}

#[utoipa::path(delete, path = "/v1/hosts/{host}", tag = "routes",
    params(("host" = String, Path)),
    responses((status = 204, description = "Released"), (status = 404, body = ErrorBody),
        (status = 409, description = "Routes still use the host", body = ErrorBody)))]
pub async fn release(
    State(routes): State<Arc<dyn RouteStore>>,
    Path(written): Path<String>,
) -> Result<StatusCode, ApiError> {
    routes.release_host(&host(&written)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
