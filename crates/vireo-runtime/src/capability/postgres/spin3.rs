//! Spin's `spin:postgres/postgres@3.0.0` (`spin_sdk::pg3`): its values are a subset of
//! @4.0.0's; what only @4.0.0 maps (UUID, JSON, decimals, ranges, arrays, intervals) reads as
//! `unsupported`, as it does in Spin.

use crate::bindings::spin::postgres3_0_0::postgres::{
    self, Column, DbDataType, DbValue, Error, ParameterValue, RowSet,
};
use crate::bindings::spin::postgres4_0_0::postgres as v4;

super::calls::serve!(postgres);

super::calls::flat_error!(Error);

super::calls::row_set_from_v4!();

impl super::calls::IntoV4 for ParameterValue {
    fn into_v4(self) -> Result<v4::ParameterValue, String> {
        use super::calls::same_variants;
        Ok(same_variants!(
            self,
            ParameterValue => v4::ParameterValue,
            [
                Boolean, Int8, Int16, Int32, Int64, Floating32, Floating64, Str, Binary, Date, Time,
                Datetime, Timestamp
            ],
            [DbNull]
        ))
    }
}

fn data_type(ty: v4::DbDataType) -> DbDataType {
    use super::calls::same_variants;
    same_variants!(
        ty,
        v4::DbDataType => DbDataType,
        [],
        [
            Boolean, Int8, Int16, Int32, Int64, Floating32, Floating64, Str, Binary, Date, Time,
            Datetime, Timestamp
        ],
        DbDataType::Other
    )
}

fn value(value: v4::DbValue) -> DbValue {
    use super::calls::same_variants;
    same_variants!(
        value,
        v4::DbValue => DbValue,
        [
            Boolean, Int8, Int16, Int32, Int64, Floating32, Floating64, Str, Binary, Date, Time,
            Datetime, Timestamp
        ],
        [DbNull],
        DbValue::Unsupported
    )
}
