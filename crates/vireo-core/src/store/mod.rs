//! The storage seams: the catalog of what is deployed, the append-only records of what ran, the
//! feed of changes between nodes, and the errors they share. The async queue, schedules,
//! tenants and secrets have their seams beside their domain types. Implemented in
//! `vireo-store`; every backend passes its conformance suite.

mod catalog;
mod changes;
mod error;
mod records;

pub use catalog::{Catalog, FunctionInfo, NewVersion, VersionInfo};
pub use changes::{Change, ChangeFeed, Missed, Subscription};
pub use error::{ErrorClass, StoreError};
pub use records::{InvocationQuery, LogQuery, Records, Retained, Retention};
