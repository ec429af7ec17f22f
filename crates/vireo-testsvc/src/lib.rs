//! Services Vireo's tests start for themselves, never mocked and never shared with anything
//! else on the machine: each runs from the distribution's packages, on a free loopback port,
//! in a temporary directory, and stops when the test process ends, however it ends.
//!
//! Dev-only: the store's backend tests and the end-to-end harness need a real PostgreSQL, and
//! functions' outbound connections a real Redis; more services will follow (brokers), none of
//! which belong to the store crate or ship in the binary.

pub mod postgres;
pub mod redis;

pub use postgres::{Postgres, StartError};
pub use redis::Redis;

use std::net::TcpListener;

pub(crate) fn free_port() -> Result<u16, StartError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port();
    Ok(port)
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Io { what, source }
}
