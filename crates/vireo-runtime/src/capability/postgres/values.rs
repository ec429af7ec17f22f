//! Values between the guest and PostgreSQL, as `spin:postgres/postgres@3.0.0` maps them:
//! parameters become typed SQL parameters, and each column's type decides the `db-value` its
//! fields become (`unsupported` for types the WIT does not map).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::bindings::spin::postgres::postgres::{DbDataType, DbValue, Error, ParameterValue};

/// A parameter ready to bind.
pub(super) type Param = Box<dyn ToSql + Send + Sync>;

/// SQL NULL, for a parameter of any type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(IsNull::Yes)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A date-time the WIT says is UTC: bound to a `timestamp` as it is, to a `timestamptz` as that
/// instant in UTC.
#[derive(Debug)]
struct UtcDateTime(NaiveDateTime);

impl ToSql for UtcDateTime {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::TIMESTAMPTZ {
            self.0.and_utc().to_sql(ty, out)
        } else {
            self.0.to_sql(ty, out)
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TIMESTAMP | Type::TIMESTAMPTZ)
    }

    to_sql_checked!();
}

/// The guest's parameters as SQL parameters; the first that cannot be is `bad-parameter`.
pub(super) fn params(values: Vec<ParameterValue>) -> Result<Vec<Param>, Error> {
    values
        .into_iter()
        .map(param)
        .collect::<Result<_, _>>()
        .map_err(Error::BadParameter)
}

/// Parameters as tokio-postgres takes them.
pub(super) fn borrowed(params: &[Param]) -> impl ExactSizeIterator<Item = &(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync))
}

/// The guest's parameter as a SQL parameter; a date or time that does not exist is refused.
fn param(value: ParameterValue) -> Result<Param, String> {
    Ok(match value {
        ParameterValue::Boolean(v) => Box::new(v),
        ParameterValue::Int8(v) => Box::new(v),
        ParameterValue::Int16(v) => Box::new(v),
        ParameterValue::Int32(v) => Box::new(v),
        ParameterValue::Int64(v) | ParameterValue::Timestamp(v) => Box::new(v),
        ParameterValue::Floating32(v) => Box::new(v),
        ParameterValue::Floating64(v) => Box::new(v),
        ParameterValue::Str(v) => Box::new(v),
        ParameterValue::Binary(v) => Box::new(v),
        ParameterValue::Date((y, m, d)) => Box::new(date(y, m, d)?),
        ParameterValue::Time((h, m, s, ns)) => Box::new(time(h, m, s, ns)?),
        ParameterValue::Datetime((y, mo, d, h, mi, s, ns)) => Box::new(UtcDateTime(
            NaiveDateTime::new(date(y, mo, d)?, time(h, mi, s, ns)?),
        )),
        ParameterValue::DbNull => Box::new(Null),
    })
}

fn date(year: i32, month: u8, day: u8) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(year, month.into(), day.into())
        .ok_or_else(|| format!("{year}-{month}-{day} is not a date"))
}

fn time(hour: u8, minute: u8, second: u8, nanos: u32) -> Result<NaiveTime, String> {
    NaiveTime::from_hms_nano_opt(hour.into(), minute.into(), second.into(), nanos)
        .ok_or_else(|| format!("{hour}:{minute}:{second}.{nanos:09} is not a time"))
}

/// The WIT's name for a column's type.
pub(super) fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::CHAR => DbDataType::Int8,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DbDataType::Str,
        Type::BYTEA => DbDataType::Binary,
        Type::DATE => DbDataType::Date,
        Type::TIME => DbDataType::Time,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DbDataType::Datetime,
        _ => DbDataType::Other,
    }
}

/// Field `index` of `row`, and the bytes it holds (what the result's size limit counts).
pub(super) fn field(row: &Row, index: usize) -> Result<(DbValue, usize), String> {
    let ty = row.columns()[index].type_().clone();
    let value = match ty {
        Type::BOOL => get(row, index, DbValue::Boolean)?,
        Type::CHAR => get(row, index, DbValue::Int8)?,
        Type::INT2 => get(row, index, DbValue::Int16)?,
        Type::INT4 => get(row, index, DbValue::Int32)?,
        Type::INT8 => get(row, index, DbValue::Int64)?,
        Type::FLOAT4 => get(row, index, DbValue::Floating32)?,
        Type::FLOAT8 => get(row, index, DbValue::Floating64)?,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get(row, index, DbValue::Str)?,
        Type::BYTEA => get(row, index, DbValue::Binary)?,
        Type::DATE => get(row, index, |d: NaiveDate| {
            DbValue::Date((d.year(), d.month() as u8, d.day() as u8))
        })?,
        Type::TIME => get(row, index, |t: NaiveTime| {
            DbValue::Time((
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
                t.nanosecond(),
            ))
        })?,
        Type::TIMESTAMP => get(row, index, datetime)?,
        Type::TIMESTAMPTZ => get(row, index, |t: DateTime<Utc>| datetime(t.naive_utc()))?,
        _ => DbValue::Unsupported,
    };
    let bytes = match &value {
        DbValue::Str(s) => s.len(),
        DbValue::Binary(b) => b.len(),
        _ => 8,
    };
    Ok((value, bytes))
}

fn datetime(t: NaiveDateTime) -> DbValue {
    DbValue::Datetime((
        t.year(),
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.nanosecond(),
    ))
}

/// A nullable field as `wrap` says, NULL as `db-null`.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
    wrap: impl FnOnce(T) -> DbValue,
) -> Result<DbValue, String> {
    let value: Option<T> = row
        .try_get(index)
        .map_err(|e| format!("column {index}: {e}"))?;
    Ok(value.map_or(DbValue::DbNull, wrap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_that_do_not_exist_are_refused() {
        assert!(param(ParameterValue::Date((2024, 2, 30))).is_err());
        assert!(param(ParameterValue::Time((24, 0, 0, 0))).is_err());
        assert!(param(ParameterValue::Datetime((2024, 2, 29, 23, 59, 59, 0))).is_ok());
    }

    #[test]
    fn columns_name_their_wit_type() {
        assert!(matches!(data_type(&Type::INT4), DbDataType::Int32));
        assert!(matches!(
            data_type(&Type::TIMESTAMPTZ),
            DbDataType::Datetime
        ));
        assert!(matches!(data_type(&Type::JSONB), DbDataType::Other));
    }
}
