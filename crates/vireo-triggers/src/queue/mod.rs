//! The durable async queue's moving parts: writing (one group commit for accepts, claims and results), delivering
//! under leases,
//! and deciding retries.

pub mod delivery;
pub mod worker;
pub mod writer;
