//! The durable async queue's moving parts: accepting (group commit), delivering under leases,
//! and deciding retries.

mod backoff;
pub mod delivery;
pub mod submit;
pub mod worker;
