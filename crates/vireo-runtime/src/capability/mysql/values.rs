//! Values between the guest and MySQL, as `fermyon:spin/rdbms-types@2.0.0` maps them: each
//! parameter becomes the MySQL value of its type, and each column's type (with its unsigned
//! and binary flags) decides the `db-value` its fields become. Types the WIT does not map
//! (decimals, dates and times, JSON, ...) arrive as text, as MySQL writes them.

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::{Column, Params, Value};

use crate::bindings::fermyon::spin::rdbms_types::{DbDataType, DbValue, Error, ParameterValue};

/// The character set MySQL gives binary strings and blobs.
const BINARY_CHARSET: u16 = 63;
/// Strings and blobs: text, or bytes in the binary character set.
const STRINGS: [ColumnType; 7] = [
    ColumnType::MYSQL_TYPE_VARCHAR,
    ColumnType::MYSQL_TYPE_VAR_STRING,
    ColumnType::MYSQL_TYPE_STRING,
    ColumnType::MYSQL_TYPE_TINY_BLOB,
    ColumnType::MYSQL_TYPE_MEDIUM_BLOB,
    ColumnType::MYSQL_TYPE_LONG_BLOB,
    ColumnType::MYSQL_TYPE_BLOB,
];

pub(super) fn params(values: Vec<ParameterValue>) -> Params {
    if values.is_empty() {
        return Params::Empty;
    }
    Params::Positional(values.into_iter().map(param).collect())
}

fn param(value: ParameterValue) -> Value {
    match value {
        ParameterValue::Boolean(v) => Value::Int(v.into()),
        ParameterValue::Int8(v) => Value::Int(v.into()),
        ParameterValue::Int16(v) => Value::Int(v.into()),
        ParameterValue::Int32(v) => Value::Int(v.into()),
        ParameterValue::Int64(v) => Value::Int(v),
        ParameterValue::Uint8(v) => Value::UInt(v.into()),
        ParameterValue::Uint16(v) => Value::UInt(v.into()),
        ParameterValue::Uint32(v) => Value::UInt(v.into()),
        ParameterValue::Uint64(v) => Value::UInt(v),
        ParameterValue::Floating32(v) => Value::Float(v),
        ParameterValue::Floating64(v) => Value::Double(v),
        ParameterValue::Str(v) => Value::Bytes(v.into_bytes()),
        ParameterValue::Binary(v) => Value::Bytes(v),
        ParameterValue::DbNull => Value::NULL,
    }
}

/// What a column holds, as the WIT names it.
#[derive(Clone, Copy)]
enum Kind {
    Boolean,
    Signed(DbDataType),
    Unsigned(DbDataType),
    Float32,
    Float64,
    Text,
    Binary,
    /// A type the WIT does not map: its text, as MySQL writes it.
    Other,
}

fn kind(column: &Column) -> Kind {
    let unsigned = column.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = column.character_set() == BINARY_CHARSET;
    let integer = |signed, unsigned_type| {
        if unsigned {
            Kind::Unsigned(unsigned_type)
        } else {
            Kind::Signed(signed)
        }
    };
    match column.column_type() {
        ColumnType::MYSQL_TYPE_TINY if column.column_length() == 1 && !unsigned => Kind::Boolean,
        ColumnType::MYSQL_TYPE_TINY => integer(DbDataType::Int8, DbDataType::Uint8),
        ColumnType::MYSQL_TYPE_SHORT | ColumnType::MYSQL_TYPE_YEAR => {
            integer(DbDataType::Int16, DbDataType::Uint16)
        }
        ColumnType::MYSQL_TYPE_LONG | ColumnType::MYSQL_TYPE_INT24 => {
            integer(DbDataType::Int32, DbDataType::Uint32)
        }
        ColumnType::MYSQL_TYPE_LONGLONG => integer(DbDataType::Int64, DbDataType::Uint64),
        ColumnType::MYSQL_TYPE_FLOAT => Kind::Float32,
        ColumnType::MYSQL_TYPE_DOUBLE => Kind::Float64,
        string if STRINGS.contains(&string) && binary => Kind::Binary,
        string if STRINGS.contains(&string) => Kind::Text,
        _ => Kind::Other,
    }
}

pub(super) fn data_type(column: &Column) -> DbDataType {
    match kind(column) {
        Kind::Boolean => DbDataType::Boolean,
        Kind::Signed(ty) | Kind::Unsigned(ty) => ty,
        Kind::Float32 => DbDataType::Floating32,
        Kind::Float64 => DbDataType::Floating64,
        Kind::Text => DbDataType::Str,
        Kind::Binary => DbDataType::Binary,
        Kind::Other => DbDataType::Other,
    }
}

/// A field of `column` as the guest gets it, and the bytes it holds.
pub(super) fn field(column: &Column, value: Value) -> Result<(DbValue, usize), Error> {
    let wrong = |value: &Value| {
        Error::ValueConversionFailed(format!(
            "column {}: {value:?} does not fit {:?}",
            column.name_str(),
            data_type(column)
        ))
    };
    let converted = match (kind(column), value) {
        (_, Value::NULL) => DbValue::DbNull,
        (Kind::Boolean, Value::Int(v)) => DbValue::Boolean(v != 0),
        (Kind::Signed(ty), Value::Int(v)) => signed(ty, v).ok_or_else(|| wrong(&Value::Int(v)))?,
        (Kind::Unsigned(ty), Value::UInt(v)) => {
            unsigned(ty, v).ok_or_else(|| wrong(&Value::UInt(v)))?
        }
        (Kind::Unsigned(ty), Value::Int(v)) => u64::try_from(v)
            .ok()
            .and_then(|v| unsigned(ty, v))
            .ok_or_else(|| wrong(&Value::Int(v)))?,
        (Kind::Float32, Value::Float(v)) => DbValue::Floating32(v),
        (Kind::Float64, Value::Double(v)) => DbValue::Floating64(v),
        (Kind::Binary, Value::Bytes(v)) => DbValue::Binary(v),
        (Kind::Text | Kind::Other, Value::Bytes(v)) => {
            DbValue::Str(String::from_utf8(v).map_err(|e| wrong(&Value::Bytes(e.into_bytes())))?)
        }
        (Kind::Other, value @ (Value::Date(..) | Value::Time(..))) => {
            DbValue::Str(value.as_sql(true).trim_matches('\'').to_string())
        }
        (_, value) => return Err(wrong(&value)),
    };
    let bytes = match &converted {
        DbValue::Str(s) => s.len(),
        DbValue::Binary(b) => b.len(),
        _ => 8,
    };
    Ok((converted, bytes))
}

fn signed(ty: DbDataType, v: i64) -> Option<DbValue> {
    Some(match ty {
        DbDataType::Int8 => DbValue::Int8(v.try_into().ok()?),
        DbDataType::Int16 => DbValue::Int16(v.try_into().ok()?),
        DbDataType::Int32 => DbValue::Int32(v.try_into().ok()?),
        _ => DbValue::Int64(v),
    })
}

fn unsigned(ty: DbDataType, v: u64) -> Option<DbValue> {
    Some(match ty {
        DbDataType::Uint8 => DbValue::Uint8(v.try_into().ok()?),
        DbDataType::Uint16 => DbValue::Uint16(v.try_into().ok()?),
        DbDataType::Uint32 => DbValue::Uint32(v.try_into().ok()?),
        _ => DbValue::Uint64(v),
    })
}
