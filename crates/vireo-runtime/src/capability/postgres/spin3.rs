//! Spin's `spin:postgres/postgres@3.0.0` (`spin_sdk::pg3`): its values are a subset of
//! @4.0.0's; what only @4.0.0 maps (UUID, JSON, decimals, ranges, arrays, intervals) reads as
//! `unsupported`, as it does in Spin.

use crate::bindings::spin::postgres3_0_0::postgres::{
    self, Column, DbDataType, DbValue, Error, ParameterValue, RowSet,
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
            ParameterValue::Date(v) => V4::Date(v),
            ParameterValue::Time(v) => V4::Time(v),
            ParameterValue::Datetime(v) => V4::Datetime(v),
            ParameterValue::Timestamp(v) => V4::Timestamp(v),
            ParameterValue::DbNull => V4::DbNull,
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
        v4::DbDataType::Date => DbDataType::Date,
        v4::DbDataType::Time => DbDataType::Time,
        v4::DbDataType::Datetime => DbDataType::Datetime,
        v4::DbDataType::Timestamp => DbDataType::Timestamp,
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
        v4::DbValue::Date(v) => DbValue::Date(v),
        v4::DbValue::Time(v) => DbValue::Time(v),
        v4::DbValue::Datetime(v) => DbValue::Datetime(v),
        v4::DbValue::Timestamp(v) => DbValue::Timestamp(v),
        v4::DbValue::DbNull => DbValue::DbNull,
        _ => DbValue::Unsupported,
    }
}
