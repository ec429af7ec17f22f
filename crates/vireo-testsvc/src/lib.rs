//! Services Vireo's tests start for themselves, never mocked and never shared with anything
//! else on the machine: each runs from the distribution's packages, on a free loopback port,
//! in a temporary directory, and stops when the test process ends, however it ends.
//!
//! Dev-only: the store's backend tests and (later) the end-to-end harness both need a real
//! PostgreSQL, and more services will follow (brokers, caches), none of which belong to the
//! store crate or ship in the binary.

pub mod postgres;

pub use postgres::{Postgres, StartError};
