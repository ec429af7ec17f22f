//! The pattern of every name and id the API takes, from the rules Vireo checks them by, on path
//! and query parameters and on the name fields of request bodies.

use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{ArrayItems, Schema};
use utoipa::openapi::{OpenApi as Document, RefOr};
use vireo_core::auth::KEY_ID_PATTERN;
use vireo_core::http_route::HOST_PATTERN;
use vireo_core::invocation::INVOCATION_ID_PATTERN;
use vireo_core::names::NAME_PATTERN;
use vireo_core::secrets::SECRET_NAME_PATTERN;
use vireo_core::store::{KV_KEY_PATTERN, OBJECT_KEY_PATTERN};

/// `function` or `function@selector`, as a schedule names what it invokes.
const TARGET_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,62}(@[a-z0-9][a-z0-9-]{0,62})?$";

/// Name fields of request bodies: (schema, field, pattern).
const BODY_FIELDS: [(&str, &str, &str); 9] = [
    ("CreateNamespace", "name", NAME_PATTERN),
    ("CreateFunction", "name", NAME_PATTERN),
    ("CreateKvStore", "name", NAME_PATTERN),
    ("CreateBucket", "name", NAME_PATTERN),
    ("CreateSqliteDatabase", "name", NAME_PATTERN),
    ("CreateSchedule", "name", NAME_PATTERN),
    ("CreateSchedule", "function", TARGET_PATTERN),
    ("CreateKey", "namespaces", NAME_PATTERN),
    ("Redrive", "ids", INVOCATION_ID_PATTERN),
];

pub fn add(document: &mut Document) {
    for (path, operation) in super::operations(&mut document.paths) {
        for parameter in operation.parameters.iter_mut().flatten() {
            if let (Some(pattern), Some(schema)) = (
                pattern_of(path, &parameter.parameter_in, &parameter.name),
                parameter.schema.as_mut(),
            ) {
                set(schema, pattern);
            }
        }
    }
    let Some(components) = document.components.as_mut() else {
        return;
    };
    for (schema, field, pattern) in BODY_FIELDS {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema)
            && let Some(property) = object.properties.get_mut(field)
        {
            set(property, pattern);
        }
    }
}

/// The rule a parameter follows, by its name and, where names are shared, its route. `None`
/// for parameters that are no name or id (limits, times, flags).
pub fn pattern_of(path: &str, place: &ParameterIn, name: &str) -> Option<&'static str> {
    match (place, name) {
        (_, "namespace" | "function") => Some(NAME_PATTERN),
        // Selectors are names too; an alias must not be all digits, a version must be.
        (ParameterIn::Path, "alias" | "version") => Some(NAME_PATTERN),
        (ParameterIn::Path, "name")
            if path.contains("/schedules/")
                || path.contains("/sources/")
                || path.contains("/sqlite/") =>
        {
            Some(NAME_PATTERN)
        }
        (ParameterIn::Path, "store" | "bucket") => Some(NAME_PATTERN),
        (ParameterIn::Path, "host") => Some(HOST_PATTERN),
        (ParameterIn::Path, "key") if path.contains("/buckets/") => Some(OBJECT_KEY_PATTERN),
        (ParameterIn::Path, "key") => Some(KV_KEY_PATTERN),
        (ParameterIn::Path, "name") if path.contains("/secrets/") => Some(SECRET_NAME_PATTERN),
        (ParameterIn::Path, "id") if path.starts_with("/v1/keys/") => Some(KEY_ID_PATTERN),
        (ParameterIn::Path, "id") if path.starts_with("/v1/invocations/") => {
            Some(INVOCATION_ID_PATTERN)
        }
        (ParameterIn::Query, "invocation" | "before") => Some(INVOCATION_ID_PATTERN),
        _ => None,
    }
}

/// Sets `pattern` on a string schema, or on the items of an array of strings.
fn set(schema: &mut RefOr<Schema>, pattern: &str) {
    match schema {
        RefOr::T(Schema::Object(object)) => object.pattern = Some(pattern.to_string()),
        RefOr::T(Schema::Array(array)) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                set(items, pattern);
            }
        }
        _ => {}
    }
}
