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

super::calls::row_set_from_v4!();

impl super::calls::IntoV4 for ParameterValue {
    fn into_v4(self) -> Result<v4::ParameterValue, String> {
        use super::calls::same_variants;
        Ok(same_variants!(
            self,
            ParameterValue => v4::ParameterValue,
            [Boolean, Int8, Int16, Int32, Int64, Floating32, Floating64, Str, Binary],
            [DbNull],
            return Err("PostgreSQL has no unsigned integers: pass a signed one".to_string())
        ))
    }
}

fn data_type(ty: v4::DbDataType) -> DbDataType {
    use super::calls::same_variants;
    same_variants!(
        ty,
        v4::DbDataType => DbDataType,
        [],
        [Boolean, Int8, Int16, Int32, Int64, Floating32, Floating64, Str, Binary],
        DbDataType::Other
    )
}

fn value(value: v4::DbValue) -> DbValue {
    use super::calls::same_variants;
    same_variants!(
        value,
        v4::DbValue => DbValue,
        [Boolean, Int8, Int16, Int32, Int64, Floating32, Floating64, Str, Binary],
        [DbNull],
        DbValue::Unsupported
    )
}
