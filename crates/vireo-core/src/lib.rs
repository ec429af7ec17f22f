//! Vireo's domain: validated names, version settings, invocation records, and the traits the
//! other crates plug into. No wasmtime, no SQL, no HTTP server here.

pub mod invocation;
pub mod invoke;
pub mod names;
pub mod settings;
pub mod store;
pub mod time;

pub use invocation::{
    InvocationId, InvocationRecord, InvocationStatus, LogLine, LogStream, Trigger,
};
pub use invoke::{Body, BoxError, Call, DeployError, Deployed, Deployer, InvokeError, Invoker};
pub use names::{AliasName, InvalidName, Name, VersionSelector};
pub use settings::{InvalidSettings, SettingsLimits, VersionSettings};
pub use store::{
    FunctionInfo, InvocationQuery, LogQuery, NewVersion, Store, StoreError, VersionInfo,
};
