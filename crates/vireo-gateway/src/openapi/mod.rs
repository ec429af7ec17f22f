//! The OpenAPI document of the admin API. Its operations come from the route table
//! (`routes.rs`), each from its handler's annotation and completed from what its route is: the
//! errors it can answer (`errors.rs`, by the route's requirement) and, once all are in, the
//! pattern of every name it takes (`patterns.rs`); unsigned integers get their registered
//! formats (`integers.rs`).

mod errors;
mod integers;
mod patterns;

use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::path::{Operation, Paths};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};

pub(crate) use errors::add as add_errors;

#[derive(OpenApi)]
#[openapi(info(
    title = "Vireo admin API",
    description = "Deploy and inspect WebAssembly HTTP functions, their async queues, cron schedules, event sources and secrets; manage namespaces and API keys. Every route but this document needs `Authorization: Bearer <key>`; a namespace the key does not cover answers 404. Functions themselves answer at /fn/{namespace}/{function}[@{alias|version}]/{path}."
))]
struct Frame;

/// The document before any route is added: its title and description.
pub(crate) fn frame() -> Document {
    Frame::openapi()
}

/// Finishes a document that holds every route.
pub(crate) fn complete(document: &mut Document) {
    rest_of_path_parameters(document);
    patterns::add(document);
    integers::name(document);
    unique_operation_ids(document);
    bearer_keys(document);
}

/// axum writes a parameter that takes the rest of the path (an object key) `{*key}`; OpenAPI
/// has no such form and names it `{key}`.
fn rest_of_path_parameters(document: &mut Document) {
    let paths = std::mem::take(&mut document.paths.paths);
    document.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
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
    for (_, operation) in operations(&mut document.paths) {
        let tag = operation.tags.iter().flatten().next().cloned();
        if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
            *id = format!("{tag}_{id}");
        }
    }
}

/// Every operation with its path.
fn operations(paths: &mut Paths) -> impl Iterator<Item = (&str, &mut Operation)> {
    paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .filter_map(move |operation| {
            operation
                .as_mut()
                .map(|operation| (path.as_str(), operation))
        })
    })
}
