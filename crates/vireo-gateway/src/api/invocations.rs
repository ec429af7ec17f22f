//! Invocation records: per function, and by id.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;
use vireo_core::{
    Action, Caller, Catalog, InvocationId, InvocationQuery, Name, QueueAdmin, Records,
};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, FunctionPath, InvocationPath, invocation_id};
use crate::views::{AsyncInvocationView, InvocationDetail, InvocationList, InvocationView};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// At most this many, newest first (default 50, at most 1000).
    limit: Option<u32>,
    /// Only invocations older than this id (paging).
    before: Option<String>,
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/functions/{function}/invocations", tag = "invocations",
    params(("namespace" = String, Path), ("function" = String, Path), ListParams),
    responses((status = 200, body = InvocationList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(catalog): State<Arc<dyn Catalog>>,
    State(records): State<Arc<dyn Records>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<InvocationList>, ApiError> {
    catalog.get_function(&namespace, &function).await?;
    let before = params.before.as_deref().map(invocation_id).transpose()?;
    let query = InvocationQuery {
        namespace,
        function,
        before,
        limit: params.limit.unwrap_or(50).clamp(1, 1000),
    };
    let found = records.list_invocations(&query).await?;
    Ok(Json(InvocationList {
        invocations: found.into_iter().map(InvocationView::from).collect(),
    }))
}

/// An async invocation shows its status, attempts and stored answer (plus its last execution's
/// record); a direct one shows its record.
#[utoipa::path(get, path = "/v1/invocations/{id}", tag = "invocations",
    params(("id" = String, Path)),
    responses((status = 200, body = InvocationDetail), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(records): State<Arc<dyn Records>>,
    State(queue): State<Arc<dyn QueueAdmin>>,
    Extension(caller): Extension<Caller>,
    InvocationPath(id): InvocationPath,
) -> Result<Json<InvocationDetail>, ApiError> {
    let found = find(records.as_ref(), queue.as_ref(), &caller, &id).await?;
    Ok(Json(found.detail))
}

/// An invocation the caller may read, and whose function it belongs to.
pub(crate) struct Found {
    pub detail: InvocationDetail,
    pub namespace: Name,
    pub function: Name,
}

pub(crate) async fn find(
    records: &dyn Records,
    queue: &dyn QueueAdmin,
    caller: &Caller,
    id: &InvocationId,
) -> Result<Found, ApiError> {
    // Another tenant's invocation is answered exactly like one that does not exist.
    let missing = || ApiError::not_found(format!("invocation {id} does not exist"));
    let readable = |namespace: &Name| caller.may(Action::Read, namespace);
    let record = records.get_invocation(id).await?;
    if let Some(invocation) = queue.get_async(id).await? {
        if !readable(&invocation.namespace) {
            return Err(missing());
        }
        return Ok(Found {
            namespace: invocation.namespace.clone(),
            function: invocation.function.clone(),
            detail: InvocationDetail::Async(Box::new(AsyncInvocationView::new(invocation, record))),
        });
    }
    let record = record
        .filter(|record| readable(&record.namespace))
        .ok_or_else(missing)?;
    Ok(Found {
        namespace: record.namespace.clone(),
        function: record.function.clone(),
        detail: InvocationDetail::Direct(Box::new(record.into())),
    })
}
