//! The OpenAPI document of the admin API, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::api;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vireo admin API",
        description = "Deploy and inspect WebAssembly HTTP functions, their async queues, cron schedules and secrets; manage namespaces and API keys. Every route but this document needs `Authorization: Bearer <key>`; a namespace the key does not cover answers 404. Functions themselves answer at /fn/{namespace}/{function}[@{alias|version}]/{path}."
    ),
    paths(
        api::namespaces::list,
        api::namespaces::create,
        api::namespaces::get,
        api::namespaces::set_quotas,
        api::namespaces::delete,
        api::keys::create,
        api::keys::list,
        api::keys::revoke,
        api::functions::list,
        api::functions::create,
        api::functions::get,
        api::functions::delete,
        api::versions::deploy,
        api::versions::list,
        api::versions::get,
        api::aliases::set,
        api::aliases::delete,
        api::invocations::list,
        api::invocations::get,
        api::logs::read,
        api::queue::counts,
        api::queue::dead,
        api::queue::redrive,
        api::queue::policy,
        api::queue::set_policy,
        api::schedules::create,
        api::schedules::list,
        api::schedules::get,
        api::schedules::delete,
        api::schedules::pause,
        api::schedules::resume,
        api::usage::report,
        api::secrets::set,
        api::secrets::list,
        api::secrets::delete,
    )
)]
struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
