//! Unsigned integers as the OpenAPI format registry names them. utoipa documents them (with its
//! `non_strict_integers` feature, without which a `u32` reads as an `int32` and its upper half as
//! invalid) under the formats `u-int8` … `u-int64`; the registry's are `uint8` … `uint64`, and
//! a `maximum` says the range to tools that know neither.

use utoipa::Number;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, KnownFormat, Schema, SchemaFormat,
};
use utoipa::openapi::{OpenApi as Document, RefOr};

pub fn name(document: &mut Document) {
    for (_, operation) in super::operations(&mut document.paths) {
        for parameter in operation.parameters.iter_mut().flatten() {
            if let Some(schema) = parameter.schema.as_mut() {
                walk(schema);
            }
        }
    }
    if let Some(components) = document.components.as_mut() {
        components.schemas.values_mut().for_each(walk);
    }
}

fn walk(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else {
        return;
    };
    match schema {
        Schema::Object(object) => {
            if let Some((format, maximum)) = object.format.as_ref().and_then(registered) {
                object.format = Some(SchemaFormat::Custom(format.to_string()));
                object.maximum = maximum.map(Number::UInt).or(object.maximum.take());
            }
            object.properties.values_mut().for_each(walk);
            if let Some(AdditionalProperties::RefOr(values)) =
                object.additional_properties.as_deref_mut()
            {
                walk(values);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                walk(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(walk),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(walk),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(walk),
        _ => {}
    }
}

/// The registry's name for an unsigned format, and its maximum where a JSON number holds it
/// exactly (a `uint64`'s does not).
fn registered(format: &SchemaFormat) -> Option<(&'static str, Option<usize>)> {
    match format {
        SchemaFormat::KnownFormat(KnownFormat::UInt8) => Some(("uint8", Some(u8::MAX.into()))),
        SchemaFormat::KnownFormat(KnownFormat::UInt16) => Some(("uint16", Some(u16::MAX.into()))),
        SchemaFormat::KnownFormat(KnownFormat::UInt32) => {
            Some(("uint32", usize::try_from(u32::MAX).ok()))
        }
        SchemaFormat::KnownFormat(KnownFormat::UInt64) => Some(("uint64", None)),
        _ => None,
    }
}
