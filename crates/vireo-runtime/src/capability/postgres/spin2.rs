//! Spin 2's `fermyon:spin/postgres@2.0.0` (`spin_sdk::pg`), over `fermyon:spin/rdbms-types`:
//! numbers, text, bytes and booleans; any other column reads as `unsupported`, and an unsigned
//! parameter is refused (PostgreSQL has no unsigned integers), as in Spin.

use crate::bindings::fermyon::spin::postgres;
use crate::bindings::fermyon::spin::rdbms_types::{
    Column, DbDataType, DbValue, Error, ParameterValue, RowSet,
};
use crate::bindings::spin::postgres4_0_0::postgres as v4;

super::calls::serve!(postgres);

super::calls::flat_error!(Error);

impl super::calls::Param for ParameterValue {
    fn into_v4(self) -> Result<v4::ParameterValue, v4::Error> {
        type V4 = v4::ParameterValue;
        Ok(match self {
            ParameterValue::Boolean(v) => V4::Boolean(v),
            ParameterValue::Int8(v) => V4::Int8(v),
            ParameterValue::Int16(v) => V4::Int16(v),
            ParameterValue::Int32(v) => V4::Int32(v),
            ParameterValue::Int64(v) => V4::Int64(v),
            ParameterValue::Floating32(v) => V4::Floating32(v),
            ParameterValue::Floating64(v) => V4::Floating64(v),
            ParameterValue::Str(v) => V4::Str(v),
            ParameterValue::Binary(v) => V4::Binary(v),
            ParameterValue::DbNull => V4::DbNull,
            ParameterValue::Uint8(_)
            | ParameterValue::Uint16(_)
            | ParameterValue::Uint32(_)
            | ParameterValue::Uint64(_) => {
                return Err(v4::Error::BadParameter(
                    "PostgreSQL has no unsigned integers: pass a signed one".to_string(),
                ));
            }
        })
    }
}

impl From<v4::RowSet> for RowSet {
    fn from(set: v4::RowSet) -> Self {
        let column = |column: v4::Column| Column {
            name: column.name,
            data_type: data_type(column.data_type),
        };
        let (columns, rows) = super::calls::rows_as(set, column, value);
        Self { columns, rows }
    }
}

fn data_type(ty: v4::DbDataType) -> DbDataType {
    match ty {
        v4::DbDataType::Boolean => DbDataType::Boolean,
        v4::DbDataType::Int8 => DbDataType::Int8,
        v4::DbDataType::Int16 => DbDataType::Int16,
        v4::DbDataType::Int32 => DbDataType::Int32,
        v4::DbDataType::Int64 => DbDataType::Int64,
        v4::DbDataType::Floating32 => DbDataType::Floating32,
        v4::DbDataType::Floating64 => DbDataType::Floating64,
        v4::DbDataType::Str => DbDataType::Str,
        v4::DbDataType::Binary => DbDataType::Binary,
        _ => DbDataType::Other,
    }
}

fn value(value: v4::DbValue) -> DbValue {
    match value {
        v4::DbValue::Boolean(v) => DbValue::Boolean(v),
        v4::DbValue::Int8(v) => DbValue::Int8(v),
        v4::DbValue::Int16(v) => DbValue::Int16(v),
        v4::DbValue::Int32(v) => DbValue::Int32(v),
        v4::DbValue::Int64(v) => DbValue::Int64(v),
        v4::DbValue::Floating32(v) => DbValue::Floating32(v),
        v4::DbValue::Floating64(v) => DbValue::Floating64(v),
        v4::DbValue::Str(v) => DbValue::Str(v),
        v4::DbValue::Binary(v) => DbValue::Binary(v),
        v4::DbValue::DbNull => DbValue::DbNull,
        _ => DbValue::Unsupported,
    }
}
