//! PostgreSQL wire encodings the WIT's values need and tokio-postgres does not bring: NULL of
//! any type, a UTC date-time for either timestamp type, JSON as its bytes, intervals, ranges
//! (without `postgres_range`, which panics on bounds at a type's maximum), and any field's raw
//! bytes.

use std::error::Error;

use bytes::{BufMut as _, BytesMut};
use chrono::NaiveDateTime;
use postgres_protocol::types as protocol;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn Error + Sync + Send>;

/// SQL NULL, for a parameter of any type.
#[derive(Debug)]
pub(super) struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut BytesMut) -> Result<IsNull, BoxError> {
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
pub(super) struct UtcDateTime(pub NaiveDateTime);

impl ToSql for UtcDateTime {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
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

/// `jsonb`'s binary format: a version byte, then the JSON text.
const JSONB_VERSION: u8 = 1;

/// JSON as the guest's bytes, for `json` and `jsonb`: the server parses it, so the host never
/// holds a second, parsed copy.
#[derive(Debug)]
pub(super) struct Json(pub Vec<u8>);

impl ToSql for Json {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty == Type::JSONB {
            out.put_u8(JSONB_VERSION);
        }
        out.put_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Json {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let text = if *ty == Type::JSONB {
            match raw.split_first() {
                Some((&JSONB_VERSION, text)) => text,
                _ => return Err("unknown jsonb format version".into()),
            }
        } else {
            raw
        };
        Ok(Self(text.to_vec()))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB)
    }
}

/// An `interval` as PostgreSQL keeps it: microseconds, days and months, each on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Interval {
    pub micros: i64,
    pub days: i32,
    pub months: i32,
}

impl ToSql for Interval {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_i64(self.micros);
        out.put_i32(self.days);
        out.put_i32(self.months);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Interval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let raw: [u8; 16] = raw.try_into().map_err(|_| "an interval is 16 bytes")?;
        let (micros, rest) = raw.split_at(8);
        let (days, months) = rest.split_at(4);
        Ok(Self {
            micros: i64::from_be_bytes(micros.try_into()?),
            days: i32::from_be_bytes(days.try_into()?),
            months: i32::from_be_bytes(months.try_into()?),
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

/// One end of a range: its value and whether the range includes it; `None` for no bound.
pub(super) type Bound<T> = Option<(T, bool)>;

/// A range of `T` (`int4range`, `int8range`, `numrange`). An empty range reads as `[z, z)`
/// for `z` the element's default: the WIT has no word for empty, and PostgreSQL reads that
/// pair back as empty.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Range<T> {
    pub lower: Bound<T>,
    pub upper: Bound<T>,
}

impl<T: ToSql> ToSql for Range<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let element = range_element(ty)?;
        let bound = |end: &Bound<T>, out: &mut BytesMut| {
            let Some((value, inclusive)) = end else {
                return Ok(protocol::RangeBound::Unbounded);
            };
            let null = match value.to_sql(element, out)? {
                IsNull::Yes => postgres_protocol::IsNull::Yes,
                IsNull::No => postgres_protocol::IsNull::No,
            };
            Ok(if *inclusive {
                protocol::RangeBound::Inclusive(null)
            } else {
                protocol::RangeBound::Exclusive(null)
            })
        };
        protocol::range_to_sql(
            |out| bound(&self.lower, out),
            |out| bound(&self.upper, out),
            out,
        )?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Range(element) if T::accepts(element))
    }

    to_sql_checked!();
}

impl<'a, T: FromSql<'a> + Default> FromSql<'a> for Range<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let element = range_element(ty)?;
        let bound = |end: protocol::RangeBound<Option<&'a [u8]>>| -> Result<Bound<T>, BoxError> {
            let (raw, inclusive) = match end {
                protocol::RangeBound::Inclusive(raw) => (raw, true),
                protocol::RangeBound::Exclusive(raw) => (raw, false),
                protocol::RangeBound::Unbounded => return Ok(None),
            };
            let raw = raw.ok_or("a range bound is NULL")?;
            Ok(Some((T::from_sql(element, raw)?, inclusive)))
        };
        match protocol::range_from_sql(raw)? {
            protocol::Range::Empty => Ok(Self {
                lower: Some((T::default(), true)),
                upper: Some((T::default(), false)),
            }),
            protocol::Range::Nonempty(lower, upper) => Ok(Self {
                lower: bound(lower)?,
                upper: bound(upper)?,
            }),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Range(element) if T::accepts(element))
    }
}

fn range_element(ty: &Type) -> Result<&Type, BoxError> {
    match ty.kind() {
        Kind::Range(element) => Ok(element),
        _ => Err(format!("{ty} is not a range type").into()),
    }
}

/// A field's bytes as the server sent them, for a type the WIT does not map.
#[derive(Debug)]
pub(super) struct Raw(pub Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Self(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(value: &T, ty: &Type) -> T
    where
        T: ToSql + for<'a> FromSql<'a>,
    {
        let mut out = BytesMut::new();
        assert!(matches!(value.to_sql(ty, &mut out).unwrap(), IsNull::No));
        T::from_sql(ty, &out).unwrap()
    }

    #[test]
    fn intervals_keep_months_days_and_microseconds_apart() {
        let interval = Interval {
            micros: -1,
            days: 40,
            months: -13,
        };
        assert_eq!(round_trip(&interval, &Type::INTERVAL), interval);
    }

    #[test]
    fn ranges_keep_their_bounds_even_at_the_type_maximum() {
        let range = Range {
            lower: None,
            upper: Some((i32::MAX, true)),
        };
        assert_eq!(round_trip(&range, &Type::INT4_RANGE), range);
        let empty = Range::<i64>::from_sql(&Type::INT8_RANGE, &[0x01]).unwrap();
        assert_eq!(
            (empty.lower, empty.upper),
            (Some((0, true)), Some((0, false)))
        );
    }

    #[test]
    fn jsonb_carries_its_version_byte() {
        let json = Json(b"{\"a\":1}".to_vec());
        let mut out = BytesMut::new();
        json.to_sql(&Type::JSONB, &mut out).unwrap();
        assert_eq!(out[0], JSONB_VERSION);
        assert_eq!(round_trip(&json, &Type::JSONB).0, json.0);
        assert!(Json::from_sql(&Type::JSONB, b"\x02{}").is_err());
    }
}
