//! `vireo schema`: the manifest's JSON Schema, for editors (taplo, Even Better TOML). Made from
//! the same types the manifest parses into, through the OpenAPI schemas core already derives
//! for the API (OpenAPI 3.1 schemas are JSON Schema 2020-12).

use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema as _, ToSchema};

use super::{FunctionList, FunctionSpec};

/// The manifest's JSON Schema: one function, or a `[[function]]` list of them.
pub fn json_schema() -> Value {
    let mut parts: Vec<(String, RefOr<Schema>)> = Vec::new();
    for (name, schema) in [
        (FunctionSpec::name(), FunctionSpec::schema()),
        (FunctionList::name(), FunctionList::schema()),
    ] {
        parts.push((name.into_owned(), schema));
    }
    FunctionSpec::schemas(&mut parts);
    FunctionList::schemas(&mut parts);
    let defs: serde_json::Map<String, Value> = parts
        .into_iter()
        .map(|(name, schema)| {
            let schema = serde_json::to_value(schema).expect("schemas serialize as JSON");
            (name, schema)
        })
        .collect();
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "vireo.toml",
        "description": "A Vireo project manifest: one function, or several as [[function]].",
        "oneOf": [
            { "$ref": "#/$defs/FunctionSpec" },
            { "$ref": "#/$defs/FunctionList" }
        ],
        "$defs": defs,
    });
    point_refs_at_defs(&mut schema);
    schema
}

/// OpenAPI's `#/components/schemas/X` references become this document's `#/$defs/X`.
fn point_refs_at_defs(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                match field {
                    Value::String(target) if key == "$ref" => {
                        if let Some(name) = target.strip_prefix("#/components/schemas/") {
                            *target = format!("#/$defs/{name}");
                        }
                    }
                    other => point_refs_at_defs(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(point_refs_at_defs),
        _ => {}
    }
}
