//! Test harness: the real `vireo` binary on a free port (`server.rs`), guest components built
//! from source (`guests.rs`), the admin API (`api.rs`), the CLI (`cli.rs`) and raw sockets
//! (`raw.rs`). No sleeps as synchronisation: everything polls with a deadline.

mod api;
mod cli;
mod guests;
mod raw;
mod server;

use std::time::{Duration, Instant};

pub use api::{invocation_id, metered, start_holding_the_only_slot, submit_async};
pub use cli::stdout_json;
pub use guests::{guest, guests, js_guest, workspace_root};
pub use raw::{raw_response, raw_status, read_answer};
pub use server::{Server, ServerBuilder, Store};

pub const DEADLINE: Duration = Duration::from_secs(60);

/// Every test that starts a server talks to it with reqwest, which is built without a crypto
/// provider of its own (as in the `vireo` binary): ring is installed before, once.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Polls `check` until it answers `Ok`, pausing briefly between tries. After `within` it
/// panics with the last `Err`, which says what state things were stuck in.
pub async fn eventually<T, Fut>(within: Duration, mut check: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) => assert!(Instant::now() < deadline, "not within {within:?}: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
