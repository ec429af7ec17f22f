//! The OpenAPI document of the admin API, generated from the handlers' annotations and then
//! completed from what each route is: the errors it can answer (`errors.rs`) and the pattern of
//! every name it takes (`patterns.rs`); unsigned integers get their registered formats
//! (`integers.rs`).

mod errors;
mod integers;
mod patterns;

use axum::Json;
use axum::http::Method;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
    ),
    modifiers(&Completed)
)]
struct ApiDoc;

struct Completed;

impl Modify for Completed {
    fn modify(&self, document: &mut Document) {
        errors::add(document);
        patterns::add(document);
        integers::name(document);
        unique_operation_ids(document);
        bearer_keys(document);
    }
}

/// Every documented route takes `Authorization: Bearer <key>` (the document itself, which
/// needs none, is not among them).
fn bearer_keys(document: &mut Document) {
    let scheme = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("vireo_<id>_<secret>")
        .build();
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    document.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
}

/// Handlers in different modules share names (`list`, `get`, `set`); an operation id is unique
/// once its tag (the resource) comes first.
fn unique_operation_ids(document: &mut Document) {
    for (_, _, operation) in operations(document) {
        let tag = operation.tags.iter().flatten().next().cloned();
        if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
            *id = format!("{tag}_{id}");
        }
    }
}

/// Every operation of the document with its path and method.
fn operations(document: &mut Document) -> impl Iterator<Item = (&str, Method, &mut Operation)> {
    document.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            (Method::GET, &mut item.get),
            (Method::PUT, &mut item.put),
            (Method::POST, &mut item.post),
            (Method::DELETE, &mut item.delete),
            (Method::PATCH, &mut item.patch),
        ]
        .into_iter()
        .filter_map(move |(method, operation)| {
            operation
                .as_mut()
                .map(|operation| (path.as_str(), method, operation))
        })
    })
}

pub async fn document() -> Json<Document> {
    Json(ApiDoc::openapi())
}
