//! Spin's `spin:postgres/postgres@3.0.0` (`spin_sdk::pg3`): its values are a subset of
//! @4.0.0's; what only @4.0.0 maps (UUID, JSON, decimals, ranges, arrays, intervals) reads as
//! `unsupported`, as it does in Spin.

use crate::bindings::spin::postgres3_0_0::postgres::{
    self, Column, DbDataType, DbValue, Error, ParameterValue, RowSet,
};
use crate::bindings::spin::postgres4_0_0::postgres as v4;

super::calls::serve!(postgres);

impl From<ParameterValue> for v4::ParameterValue {
    fn from(value: ParameterValue) -> Self {
        match value {
            ParameterValue::Boolean(v) => Self::Boolean(v),
            ParameterValue::Int8(v) => Self::Int8(v),
            ParameterValue::Int16(v) => Self::Int16(v),
            ParameterValue::Int32(v) => Self::Int32(v),
            ParameterValue::Int64(v) => Self::Int64(v),
            ParameterValue::Floating32(v) => Self::Floating32(v),
            ParameterValue::Floating64(v) => Self::Floating64(v),
            ParameterValue::Str(v) => Self::Str(v),
            ParameterValue::Binary(v) => Self::Binary(v),
            ParameterValue::Date(v) => Self::Date(v),
            ParameterValue::Time(v) => Self::Time(v),
            ParameterValue::Datetime(v) => Self::Datetime(v),
            ParameterValue::Timestamp(v) => Self::Timestamp(v),
            ParameterValue::DbNull => Self::DbNull,
        }
    }
}

impl From<v4::RowSet> for RowSet {
    fn from(set: v4::RowSet) -> Self {
        let columns = set.columns.into_iter().map(|column| Column {
            name: column.name,
            data_type: data_type(column.data_type),
        });
        let rows = set
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(value).collect());
        Self {
            columns: columns.collect(),
            rows: rows.collect(),
        }
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

impl From<v4::Error> for Error {
    fn from(error: v4::Error) -> Self {
        match error {
            v4::Error::ConnectionFailed(m) => Self::ConnectionFailed(m),
            v4::Error::BadParameter(m) => Self::BadParameter(m),
            v4::Error::QueryFailed(v4::QueryError::Text(m)) => Self::QueryFailed(m),
            v4::Error::QueryFailed(v4::QueryError::DbError(db)) => Self::QueryFailed(db.as_text),
            v4::Error::ValueConversionFailed(m) => Self::ValueConversionFailed(m),
            v4::Error::Other(m) => Self::Other(m),
        }
    }
}
