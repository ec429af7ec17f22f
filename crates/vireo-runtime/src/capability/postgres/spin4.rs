//! Spin's `spin:postgres/postgres@4.0.0` (`spin_sdk::pg4`): the host's own values.

use crate::bindings::spin::postgres4_0_0::postgres;

super::calls::serve!(postgres);
