//! The `/v1` admin API: one module per resource; handlers parse, call the store, deployer or
//! secret manager, and shape the answer.

pub mod aliases;
pub mod functions;
pub mod invocations;
pub mod keys;
pub mod logs;
pub mod namespaces;
pub mod queue;
pub mod schedules;
pub mod secrets;
pub mod usage;
pub mod versions;

use vireo_core::Name;

use crate::error::ApiError;

fn namespace(value: &str) -> Result<Name, ApiError> {
    Ok(Name::parse("namespace", value)?)
}

fn function(value: &str) -> Result<Name, ApiError> {
    Ok(Name::parse("function", value)?)
}

/// Parses the `{namespace}/{function}` pair every function route carries.
fn function_path((ns, f): &(String, String)) -> Result<(Name, Name), ApiError> {
    Ok((namespace(ns)?, function(f)?))
}
