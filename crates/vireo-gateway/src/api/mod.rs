//! The `/v1` admin API: one module per resource; handlers take typed paths and bodies and the
//! narrow state they use, call the store, deployer or secret manager, and shape the answer.
//! Each handler's `#[utoipa::path]` says where it answers; `routes.rs` lists them with who may
//! call them.

pub mod aliases;
pub mod buckets;
pub mod functions;
pub mod http_routes;
pub mod inherit;
pub mod invocations;
pub mod key_value;
pub mod keys;
pub mod logs;
pub mod metrics;
pub mod namespaces;
pub mod nodes;
pub mod objects;
pub mod queue;
pub mod schedules;
pub mod secrets;
pub mod usage;
pub mod versions;
