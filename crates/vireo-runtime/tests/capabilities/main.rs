//! One fixture test per capability, on the real runtime: guest components built from source,
//! deployed and loaded as the server does, invoked in process.

mod config;
mod network;
mod registry;
mod support;
mod wasi;
