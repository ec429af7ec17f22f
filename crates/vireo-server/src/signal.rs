//! Resolves when the process is asked to stop (SIGINT or SIGTERM).

use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Starts listening at once, so a signal sent as soon as the server has announced itself is
/// not met by the default action (ending the process on the spot); the returned future
/// resolves when one arrives.
pub fn shutdown_requested() -> impl Future<Output = ()> {
    let interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            () = received(interrupt) => {}
            () = received(terminate) => {}
        }
    }
}

fn listen(kind: SignalKind, name: &str) -> Option<Signal> {
    signal(kind)
        .inspect_err(|error| tracing::warn!(%error, "cannot listen for {name}"))
        .ok()
}

/// Pending forever for a signal that could not be listened for.
async fn received(signal: Option<Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}
