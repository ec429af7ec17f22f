//! Runs one invocation: a fresh store and instance, the request handed to the guest's
//! `wasi:http/incoming-handler`, the response streamed back while the guest keeps running.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use vireo_core::{Body, BoxError, InvocationStatus, VersionSettings};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use crate::host::{Host, MemoryLimiter};
use crate::logs::{CapturedLine, LogCapture};

/// How an invocation ended, known once the guest has finished (possibly after its response
/// headers were already sent).
#[derive(Debug, Clone)]
pub struct Completion {
    pub status: InvocationStatus,
    pub error: Option<String>,
    pub duration: Duration,
    pub logs: Vec<CapturedLine>,
}

/// Why the guest produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: InvocationStatus,
    pub message: String,
}

pub type CompletionFuture = Pin<Box<dyn Future<Output = Completion> + Send>>;

pub struct Execution {
    pub response: Result<http::Response<Body>, Failure>,
    /// Resolves when the guest has finished; the caller records it.
    pub completion: CompletionFuture,
}

pub(crate) struct Limits {
    pub epoch_tick: Duration,
    pub max_log_bytes: usize,
}

pub(crate) async fn execute(
    engine: &Engine,
    pre: Arc<ProxyPre<Host>>,
    settings: &VersionSettings,
    limits: &Limits,
    request: http::Request<Body>,
) -> Execution {
    let started = Instant::now();
    let capture = LogCapture::new(limits.max_log_bytes);
    let env: Vec<(String, String)> = settings
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (limiter, memory_exceeded) =
        MemoryLimiter::new(usize::try_from(settings.memory_mib).unwrap_or(usize::MAX) << 20);
    let mut store = Store::new(
        engine,
        Host::new(&env, capture.stdout(), capture.stderr(), limiter),
    );
    store.limiter(|host| &mut host.limiter);
    let timeout = Duration::from_millis(settings.timeout_ms);
    // The epoch deadline stops guests spinning in wasm; the tokio timeout below stops guests
    // waiting in a host call (sleep, body read), which never reach an epoch check.
    store.set_epoch_deadline(
        timeout
            .as_millis()
            .div_ceil(limits.epoch_tick.as_millis().max(1)) as u64
            + 1,
    );

    let (sender, receiver) = tokio::sync::oneshot::channel();
    let request = request.map(|body| {
        body.map_err(|e: BoxError| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
            .boxed_unsync()
    });
    let handles = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)
        .and_then(|req| Ok((req, store.data_mut().http().new_response_outparam(sender)?)));
    let (guest_request, outparam) = match handles {
        Ok(handles) => handles,
        Err(e) => {
            let failure = Failure {
                status: InvocationStatus::Error,
                message: format!("could not pass the request to the guest: {e}"),
            };
            let completion = Completion {
                status: failure.status,
                error: Some(failure.message.clone()),
                duration: started.elapsed(),
                logs: Vec::new(),
            };
            return Execution {
                response: Err(failure),
                completion: Box::pin(std::future::ready(completion)),
            };
        }
    };

    let guest = tokio::spawn(async move {
        let run = async {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, guest_request, outparam)
                .await
        };
        let outcome = tokio::time::timeout(timeout, run).await;
        // Dropping the store drops the response sender: a guest that never answered is noticed.
        drop(store);
        let (status, error) = match outcome {
            Ok(Ok(())) => (InvocationStatus::Ok, None),
            Err(_) => (
                InvocationStatus::Timeout,
                Some(format!("timed out after {} ms", timeout.as_millis())),
            ),
            Ok(Err(e)) if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) => (
                InvocationStatus::Timeout,
                Some(format!("timed out after {} ms", timeout.as_millis())),
            ),
            Ok(Err(e)) => (
                InvocationStatus::Error,
                Some(describe_error(
                    &e,
                    memory_exceeded.load(Ordering::Relaxed),
                    &capture,
                )),
            ),
        };
        Completion {
            status,
            error,
            duration: started.elapsed(),
            logs: capture.take_lines(),
        }
    });
    let mut completion: CompletionFuture = Box::pin(async move {
        guest.await.unwrap_or_else(|join_error| Completion {
            status: InvocationStatus::Error,
            error: Some(format!("the invocation task failed: {join_error}")),
            duration: Duration::ZERO,
            logs: Vec::new(),
        })
    });

    let response = match receiver.await {
        Ok(Ok(response)) => {
            Ok(response.map(|body| body.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
        }
        Ok(Err(code)) => Err(Failure {
            status: InvocationStatus::Error,
            message: format!("the guest answered with an error: {code:?}"),
        }),
        Err(_) => {
            // The guest finished (or failed) without setting a response: its outcome says why.
            let done = completion.as_mut().await;
            let failure = match done.status {
                InvocationStatus::Ok => Failure {
                    status: InvocationStatus::Error,
                    message: "the guest returned without sending a response".to_string(),
                },
                status => Failure {
                    status,
                    message: done.error.clone().unwrap_or_default(),
                },
            };
            let done = Completion {
                status: failure.status,
                error: Some(failure.message.clone()),
                ..done
            };
            completion = Box::pin(std::future::ready(done));
            Err(failure)
        }
    };
    Execution {
        response,
        completion,
    }
}

/// The trap or error in one line, with the memory-limit reason or the guest's panic message
/// when there is one (a Rust panic prints it to stderr, then traps with `unreachable`).
fn describe_error(error: &wasmtime::Error, memory_exceeded: bool, capture: &LogCapture) -> String {
    let root = error.root_cause().to_string();
    if memory_exceeded {
        return root;
    }
    match capture.panic_message() {
        Some(panic) => format!("{root}; the guest panicked: {panic}"),
        None => root,
    }
}
