//! Values between the guest and PostgreSQL, as `spin:postgres/postgres@4.0.0` maps them (the
//! older interfaces convert through these): parameters become typed SQL parameters, and each
//! column's type decides the `db-value` its fields become (`unsupported`, with the field's raw
//! bytes, for types the WIT does not map).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use rust_decimal::Decimal;
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

use super::calls::IntoV4;
use super::wire::{self, Json, Null, Raw, UtcDateTime};
use crate::bindings::spin::postgres4_0_0::postgres::{
    DbDataType, DbValue, Interval, ParameterValue, RangeBoundKind,
};

/// A parameter ready to bind.
pub(super) type Param = Box<dyn ToSql + Send + Sync>;

/// The guest's parameters, of any version, as SQL parameters; the first that cannot be is
/// refused, with why (the interface's `bad-parameter`).
pub(super) fn params(values: Vec<impl IntoV4>) -> Result<Vec<Param>, String> {
    values
        .into_iter()
        .map(|value| param(value.into_v4()?))
        .collect()
}

/// Parameters as tokio-postgres takes them.
pub(super) fn borrowed(params: &[Param]) -> impl ExactSizeIterator<Item = &(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync))
}

/// The guest's parameter as a SQL parameter; a date, time, UUID or decimal that is not one is
/// refused.
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
        ParameterValue::Uuid(v) => {
            Box::new(uuid::Uuid::parse_str(&v).map_err(|e| format!("{v:?} is not a UUID: {e}"))?)
        }
        ParameterValue::Jsonb(v) => Box::new(Json(v)),
        ParameterValue::Decimal(v) => Box::new(decimal(&v)?),
        ParameterValue::RangeInt32((lower, upper)) => Box::new(range(lower, upper, Ok)?),
        ParameterValue::RangeInt64((lower, upper)) => Box::new(range(lower, upper, Ok)?),
        ParameterValue::RangeDecimal((lower, upper)) => {
            Box::new(range(lower, upper, |v| decimal(&v))?)
        }
        ParameterValue::ArrayInt32(v) => Box::new(v),
        ParameterValue::ArrayInt64(v) => Box::new(v),
        ParameterValue::ArrayDecimal(v) => Box::new(
            v.iter()
                .map(|v| v.as_deref().map(decimal).transpose())
                .collect::<Result<Vec<_>, _>>()?,
        ),
        ParameterValue::ArrayStr(v) => Box::new(v),
        ParameterValue::Interval(Interval {
            micros,
            days,
            months,
        }) => Box::new(wire::Interval {
            micros,
            days,
            months,
        }),
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

fn decimal(text: &str) -> Result<Decimal, String> {
    Decimal::from_str_exact(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|e| format!("{text:?} is not a decimal: {e}"))
}

/// A WIT range as a SQL range, each bound converted by `convert`.
fn range<W, T>(
    lower: Option<(W, RangeBoundKind)>,
    upper: Option<(W, RangeBoundKind)>,
    convert: impl Fn(W) -> Result<T, String>,
) -> Result<wire::Range<T>, String> {
    let bound = |end: Option<(W, RangeBoundKind)>| -> Result<wire::Bound<T>, String> {
        end.map(|(value, kind)| Ok((convert(value)?, matches!(kind, RangeBoundKind::Inclusive))))
            .transpose()
    };
    Ok(wire::Range {
        lower: bound(lower)?,
        upper: bound(upper)?,
    })
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
        Type::UUID => DbDataType::Uuid,
        Type::JSON | Type::JSONB => DbDataType::Jsonb,
        Type::NUMERIC => DbDataType::Decimal,
        Type::INT4_RANGE => DbDataType::RangeInt32,
        Type::INT8_RANGE => DbDataType::RangeInt64,
        Type::NUM_RANGE => DbDataType::RangeDecimal,
        Type::INT4_ARRAY => DbDataType::ArrayInt32,
        Type::INT8_ARRAY => DbDataType::ArrayInt64,
        Type::NUMERIC_ARRAY => DbDataType::ArrayDecimal,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => DbDataType::ArrayStr,
        Type::INTERVAL => DbDataType::Interval,
        _ => DbDataType::Other(ty.name().to_string()),
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
        Type::UUID => get(row, index, |u: uuid::Uuid| DbValue::Uuid(u.to_string()))?,
        Type::JSON | Type::JSONB => get(row, index, |j: Json| DbValue::Jsonb(j.0))?,
        Type::NUMERIC => get(row, index, |d: Decimal| DbValue::Decimal(d.to_string()))?,
        Type::INT4_RANGE => get(row, index, |r: wire::Range<i32>| {
            DbValue::RangeInt32(bounds(r, |v| v))
        })?,
        Type::INT8_RANGE => get(row, index, |r: wire::Range<i64>| {
            DbValue::RangeInt64(bounds(r, |v| v))
        })?,
        Type::NUM_RANGE => get(row, index, |r: wire::Range<Decimal>| {
            DbValue::RangeDecimal(bounds(r, |v| v.to_string()))
        })?,
        Type::INT4_ARRAY => get(row, index, DbValue::ArrayInt32)?,
        Type::INT8_ARRAY => get(row, index, DbValue::ArrayInt64)?,
        Type::NUMERIC_ARRAY => get(row, index, |v: Vec<Option<Decimal>>| {
            DbValue::ArrayDecimal(v.iter().map(|d| d.map(|d| d.to_string())).collect())
        })?,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => {
            get(row, index, DbValue::ArrayStr)?
        }
        Type::INTERVAL => get(row, index, |i: wire::Interval| {
            DbValue::Interval(Interval {
                micros: i.micros,
                days: i.days,
                months: i.months,
            })
        })?,
        _ => get(row, index, |raw: Raw| DbValue::Unsupported(raw.0))?,
    };
    let bytes = size(&value);
    Ok((value, bytes))
}

/// About what `value` holds, in bytes: its text and bytes, 8 for each number.
fn size(value: &DbValue) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(8, String::len);
    match value {
        DbValue::Str(s) | DbValue::Uuid(s) | DbValue::Decimal(s) => s.len(),
        DbValue::Binary(b) | DbValue::Jsonb(b) | DbValue::Unsupported(b) => b.len(),
        DbValue::ArrayInt32(v) => v.len() * 8,
        DbValue::ArrayInt64(v) => v.len() * 8,
        DbValue::ArrayDecimal(v) | DbValue::ArrayStr(v) => v.iter().map(text).sum(),
        _ => 8,
    }
}

/// A SQL range as the WIT's pair of bounds.
type Bounds<W> = (Option<(W, RangeBoundKind)>, Option<(W, RangeBoundKind)>);

fn bounds<T, W>(range: wire::Range<T>, convert: impl Fn(T) -> W) -> Bounds<W> {
    let bound = |end: wire::Bound<T>| {
        end.map(|(value, inclusive)| {
            let kind = if inclusive {
                RangeBoundKind::Inclusive
            } else {
                RangeBoundKind::Exclusive
            };
            (convert(value), kind)
        })
    };
    (bound(range.lower), bound(range.upper))
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
        assert!(param(ParameterValue::Uuid("not-a-uuid".into())).is_err());
        assert!(param(ParameterValue::Decimal("1.2.3".into())).is_err());
        assert!(param(ParameterValue::ArrayDecimal(vec![Some("x".into())])).is_err());
    }

    #[test]
    fn columns_name_their_wit_type() {
        assert!(matches!(data_type(&Type::INT4), DbDataType::Int32));
        assert!(matches!(
            data_type(&Type::TIMESTAMPTZ),
            DbDataType::Datetime
        ));
        assert!(matches!(data_type(&Type::JSONB), DbDataType::Jsonb));
        assert!(matches!(data_type(&Type::POINT), DbDataType::Other(name) if name == "point"));
    }
}
