//! The error answers each operation can give, derived from what its route is: who may call it,
//! whether it names a namespace, and which parameters and body it takes. An answer the handler's
//! annotation already describes keeps that description.

use axum::http::StatusCode;
use utoipa::openapi::path::{Operation, ParameterIn, Paths};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

use crate::auth::Requirement;

/// Adds the errors of a route's operations; every documented route is guarded by `needs`.
pub fn add(paths: &mut Paths, needs: Requirement) {
    for (path, operation) in super::operations(paths) {
        for (status, description) in answers(path, needs, operation) {
            let error = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build();
            operation
                .responses
                .responses
                .entry(status.as_u16().to_string())
                .or_insert_with(|| error.into());
        }
    }
}

fn answers(
    path: &str,
    needs: Requirement,
    operation: &Operation,
) -> Vec<(StatusCode, &'static str)> {
    let mut answers = vec![
        (
            StatusCode::UNAUTHORIZED,
            "No key, or an invalid, revoked or expired one",
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The store failed; the server log says why",
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "The store is unreachable or busy; try again shortly",
        ),
    ];
    if matches!(needs, Requirement::Admin | Requirement::Namespace(_)) {
        answers.push((StatusCode::FORBIDDEN, "The key's role may not do this"));
    }
    if path.contains("{namespace}") {
        answers.push((
            StatusCode::TOO_MANY_REQUESTS,
            "The key's rate limit in this namespace is used up; Retry-After says when to retry",
        ));
    }
    let takes = |place: ParameterIn| {
        operation
            .parameters
            .iter()
            .flatten()
            .any(|parameter| parameter.parameter_in == place)
    };
    if takes(ParameterIn::Path) {
        answers.extend([
            (
                StatusCode::BAD_REQUEST,
                "A path parameter is not a valid name or id",
            ),
            (
                StatusCode::NOT_FOUND,
                "It does not exist, or not in a namespace the key covers",
            ),
        ]);
    }
    if takes(ParameterIn::Query) {
        answers.push((StatusCode::BAD_REQUEST, "A query parameter is invalid"));
    }
    if let Some(body) = &operation.request_body {
        answers.extend([
            (StatusCode::BAD_REQUEST, "The body is malformed"),
            (StatusCode::REQUEST_TIMEOUT, "The body arrived too slowly"),
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "The body is larger than this route accepts",
            ),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "The body is not of the content type this route takes",
            ),
        ]);
        if body.content.contains_key("application/json") {
            answers.push((
                StatusCode::UNPROCESSABLE_ENTITY,
                "The JSON does not have the expected fields and types",
            ));
        }
    }
    answers
}
