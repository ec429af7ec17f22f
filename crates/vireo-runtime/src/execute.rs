//! Runs one invocation: a ready instance (fresh, pre-instantiated or reused), the request handed
//! to the guest's `wasi:http/incoming-handler`, the response streamed back while the guest keeps
//! running.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use http_body_util::BodyExt;
use tokio::sync::oneshot;
use tracing::Instrument as _;
use vireo_core::{Body, BoxError, InvocationStatus};
use wasmtime::{Engine, Trap};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::capability::{Invocation, KeyValueUse, ObjectUse, OutboundUse};
use crate::cpu::{CpuScheduler, GuestCpu, metered};
use crate::instances::{Instance, LoadedVersion};
use crate::lent;
use crate::logs::{CapturedLine, LogCapture};

/// How an invocation ended, known once the guest has finished (possibly after its response
/// headers were already sent).
#[derive(Debug, Clone)]
pub struct Completion {
    pub status: InvocationStatus,
    pub error: Option<String>,
    pub duration: Duration,
    /// Time spent instantiating (zero when a ready instance served the request).
    pub init: Duration,
    /// CPU time the invocation used on the server's threads: its guest code and the host
    /// calls made for it, instantiation included.
    pub cpu: Duration,
    pub logs: Vec<CapturedLine>,
    /// What it did with key-value stores.
    pub key_value: KeyValueUse,
    /// What it did with buckets.
    pub objects: ObjectUse,
    /// What it did over database and broker connections.
    pub outbound: OutboundUse,
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

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_log_bytes: usize,
    pub idle_ttl: Duration,
}

/// What the guest task saw of its instance, kept outside it so a failure can be explained
/// after the instance is gone.
#[derive(Default)]
struct Observed {
    capture: Option<LogCapture>,
    memory_exceeded: Option<Arc<AtomicBool>>,
    init: Duration,
}

pub(crate) async fn execute(
    engine: &Engine,
    version: Arc<LoadedVersion>,
    limits: Limits,
    scheduler: &Arc<CpuScheduler>,
    request: http::Request<Body>,
) -> Execution {
    let started = Instant::now();
    let timeout = Duration::from_millis(version.settings.timeout_ms);
    // The end of each slice of guest code checks the deadline, which stops guests spinning in
    // wasm; the tokio timeout below stops guests waiting in a host call (sleep, body read).
    let deadline = started + timeout;
    let cpu = version.cpu_share(scheduler);
    let ready = version.take_ready(limits.idle_ttl);
    let invocation = Invocation::of(&request);
    let (sender, receiver) = oneshot::channel();
    let engine = engine.clone();
    let share = cpu.clone();

    // In the invocation's span, so what the host does for the guest (a refused outgoing request)
    // is logged with the invocation it belongs to.
    let guest = async move {
        let mut observed = Observed::default();
        let outparam = Outparam::new(sender);
        let run = async {
            let instance = match ready {
                Some(instance) => instance,
                None => fresh(&version, &engine, limits, deadline, &share, &mut observed).await?,
            };
            if instance.served == 0 {
                return handle(
                    instance,
                    request,
                    &outparam,
                    (deadline, &share, &invocation),
                    &mut observed,
                )
                .await;
            }
            // A reused instance gets a request it can give back: one that cannot serve a second
            // request leaves it unanswered and unread, and a fresh instance serves it instead.
            let (request, lent) = lent::lend(request);
            let instance = handle(
                instance,
                request,
                &outparam,
                (deadline, &share, &invocation),
                &mut observed,
            )
            .await?;
            if outparam.answered() {
                return Ok(instance);
            }
            version.fall_back_to_fresh_instances();
            match lent.reclaim() {
                Some(request) => {
                    let instance =
                        fresh(&version, &engine, limits, deadline, &share, &mut observed).await?;
                    handle(
                        instance,
                        request,
                        &outparam,
                        (deadline, &share, &invocation),
                        &mut observed,
                    )
                    .await
                }
                None => Ok(instance),
            }
        };
        let outcome = tokio::time::timeout(timeout, run).await;
        let timed_out = || {
            (
                InvocationStatus::Timeout,
                Some(format!("timed out after {} ms", timeout.as_millis())),
            )
        };
        let (status, error) = match outcome {
            Ok(Ok(mut instance)) => {
                instance.served += 1;
                // Only an instance that answered, within its memory, serves again.
                let sound =
                    outparam.answered_ok() && !instance.memory_exceeded.load(Ordering::Relaxed);
                if sound && version.reuses_after(instance.served) {
                    version.keep(instance);
                }
                (InvocationStatus::Ok, None)
            }
            // Every failure drops the instance: a trapped or interrupted guest is never reused.
            Err(_) => timed_out(),
            Ok(Err(e)) if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) => timed_out(),
            Ok(Err(e)) => (InvocationStatus::Error, Some(describe_error(&e, &observed))),
        };
        Completion {
            status,
            error,
            duration: started.elapsed(),
            init: observed.init,
            cpu: Duration::ZERO,
            logs: observed.capture.map(|c| c.take_lines()).unwrap_or_default(),
            key_value: invocation.key_value.used(),
            objects: invocation.objects.used(),
            outbound: invocation.outbound.used(),
        }
    }
    .in_current_span();
    let guest = async move {
        let mut done = metered(guest, cpu.clone()).await;
        done.cpu = cpu.cpu_time();
        done
    };
    // A host panic fails this invocation, not the connection that carries it.
    let guest: CompletionFuture = Box::pin(
        AssertUnwindSafe(guest)
            .catch_unwind()
            .map(|ended| ended.unwrap_or_else(|_| task_failed("the invocation panicked"))),
    );

    let (answer, mut completion) = match until_answered(guest, receiver).await {
        (Answered::Finished(done), answer) => {
            let done: CompletionFuture = Box::pin(std::future::ready(done));
            (answer, done)
        }
        (Answered::Streaming(guest), answer) => {
            let task = tokio::spawn(guest);
            let rest: CompletionFuture = Box::pin(async move {
                task.await.unwrap_or_else(|join_error| {
                    task_failed(&format!("the invocation task failed: {join_error}"))
                })
            });
            (answer, rest)
        }
    };

    let response = match answer {
        Some(Ok(response)) => {
            Ok(response.map(|body| body.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
        }
        Some(Err(code)) => Err(Failure {
            status: InvocationStatus::Error,
            message: format!("the guest answered with an error: {code:?}"),
        }),
        None => {
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

/// A fresh store and instance of the version, its instantiation time noted.
async fn fresh(
    version: &LoadedVersion,
    engine: &Engine,
    limits: Limits,
    deadline: Instant,
    share: &Arc<GuestCpu>,
    observed: &mut Observed,
) -> wasmtime::Result<Instance> {
    let started = Instant::now();
    let instance = version
        .instantiate(engine, limits.max_log_bytes, deadline, share.clone())
        .await?;
    observed.init += started.elapsed();
    Ok(instance)
}

/// One call of the guest's handler on `instance`, armed for this invocation (its deadline, CPU
/// share and trace); the response it sets goes to `outparam`.
async fn handle(
    mut instance: Instance,
    request: http::Request<Body>,
    outparam: &Outparam,
    (deadline, share, invocation): (Instant, &Arc<GuestCpu>, &Invocation),
    observed: &mut Observed,
) -> wasmtime::Result<Instance> {
    instance.arm(deadline, share.clone(), invocation);
    observed.capture = Some(instance.capture.clone());
    observed.memory_exceeded = Some(instance.memory_exceeded.clone());
    let request = request.map(|body| {
        body.map_err(|e: BoxError| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
            .boxed_unsync()
    });
    let mut http = instance.store.data_mut().http();
    let guest_request = http.new_incoming_request(Scheme::Http, request)?;
    let guest_outparam = http.new_response_outparam_from_callback(outparam.callback())?;
    instance
        .proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut instance.store, guest_request, guest_outparam)
        .await?;
    Ok(instance)
}

type GuestResponse = Result<hyper::Response<HyperOutgoingBody>, ErrorCode>;

/// The caller's response channel, lent to the guest: it stays here until a guest sets a
/// response, so a guest that returns without one leaves it for another try.
struct Outparam {
    sender: Arc<Mutex<Option<oneshot::Sender<GuestResponse>>>>,
    answered_ok: Arc<AtomicBool>,
}

impl Outparam {
    fn new(sender: oneshot::Sender<GuestResponse>) -> Self {
        Self {
            sender: Arc::new(Mutex::new(Some(sender))),
            answered_ok: Arc::default(),
        }
    }

    /// What the guest's `response-outparam.set` calls.
    fn callback(&self) -> impl FnOnce(GuestResponse) + Send + Sync + 'static {
        let (sender, answered_ok) = (self.sender.clone(), self.answered_ok.clone());
        move |response| {
            let sender = sender.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(sender) = sender {
                answered_ok.store(response.is_ok(), Ordering::Relaxed);
                // The caller may have gone (its client disconnected): nothing to tell it then.
                let _ = sender.send(response);
            }
        }
    }

    /// Whether a guest set a response, a successful one or an error.
    fn answered(&self) -> bool {
        self.sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    fn answered_ok(&self) -> bool {
        self.answered_ok.load(Ordering::Relaxed)
    }
}

/// How far the guest got on the caller's task.
enum Answered {
    /// It ended, with or without setting a response.
    Finished(Completion),
    /// Its response is ready while it still runs (streaming a body): the rest of it.
    Streaming(CompletionFuture),
}

/// Polls the guest on the caller's task until it ends or its response is ready, whichever comes
/// first; returns that and the response, if the guest set one. Most guests answer and end within
/// a few polls, so running them here, rather than in a task of their own, saves a task and a
/// wake-up across threads per invocation. A caller that cannot wait for the answer hands the
/// whole execution to a task (the server does when its client disconnects).
async fn until_answered<T>(
    mut guest: CompletionFuture,
    mut response: oneshot::Receiver<T>,
) -> (Answered, Option<T>) {
    enum First<T> {
        Ended(Completion),
        Answer(Option<T>),
    }
    let first = std::future::poll_fn(|cx| {
        if let Poll::Ready(done) = guest.as_mut().poll(cx) {
            return Poll::Ready(First::Ended(done));
        }
        Pin::new(&mut response)
            .poll(cx)
            .map(|answer| First::Answer(answer.ok()))
    })
    .await;
    match first {
        First::Ended(done) => (Answered::Finished(done), response.try_recv().ok()),
        First::Answer(answer) => (Answered::Streaming(guest), answer),
    }
}

/// The completion of an invocation whose guest task failed before it could say how it ended.
fn task_failed(message: &str) -> Completion {
    Completion {
        status: InvocationStatus::Error,
        error: Some(message.to_string()),
        duration: Duration::ZERO,
        init: Duration::ZERO,
        cpu: Duration::ZERO,
        logs: Vec::new(),
        key_value: KeyValueUse::default(),
        objects: ObjectUse::default(),
        outbound: OutboundUse::default(),
    }
}

/// The trap or error in one line, with the memory-limit reason or the guest's panic message
/// when there is one (a Rust panic prints it to stderr, then traps with `unreachable`).
fn describe_error(error: &wasmtime::Error, observed: &Observed) -> String {
    let root = error.root_cause().to_string();
    if observed
        .memory_exceeded
        .as_ref()
        .is_some_and(|flag| flag.load(Ordering::Relaxed))
    {
        return root;
    }
    match observed
        .capture
        .as_ref()
        .and_then(LogCapture::panic_message)
    {
        Some(panic) => format!("{root}; the guest panicked: {panic}"),
        None => root,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended() -> Completion {
        Completion {
            status: InvocationStatus::Ok,
            error: None,
            duration: Duration::ZERO,
            init: Duration::ZERO,
            cpu: Duration::ZERO,
            logs: Vec::new(),
            key_value: KeyValueUse::default(),
            objects: ObjectUse::default(),
            outbound: OutboundUse::default(),
        }
    }

    #[tokio::test]
    async fn a_guest_that_answers_and_ends_at_once_never_leaves_the_caller() {
        let (sender, response) = oneshot::channel();
        let guest: CompletionFuture = Box::pin(async move {
            let _ = sender.send("hello");
            ended()
        });
        let (answered, answer) = until_answered(guest, response).await;
        assert!(matches!(answered, Answered::Finished(_)));
        assert_eq!(answer, Some("hello"));
    }

    #[test]
    fn the_outparam_tells_an_answer_an_error_answer_and_none_apart() {
        let (sender, mut receiver) = oneshot::channel();
        let outparam = Outparam::new(sender);
        assert!(!outparam.answered(), "nothing set yet");
        (outparam.callback())(Err(ErrorCode::InternalError(None)));
        assert!(outparam.answered());
        assert!(!outparam.answered_ok(), "an error code is not a response");
        assert!(
            matches!(receiver.try_recv(), Ok(Err(_))),
            "the caller got it"
        );

        let (sender, mut receiver) = oneshot::channel();
        let outparam = Outparam::new(sender);
        let response = hyper::Response::new(HyperOutgoingBody::default());
        (outparam.callback())(Ok(response));
        assert!(outparam.answered() && outparam.answered_ok());
        assert!(matches!(receiver.try_recv(), Ok(Ok(_))));

        let (sender, receiver) = oneshot::channel::<GuestResponse>();
        let outparam = Outparam::new(sender);
        drop(outparam.callback());
        assert!(
            !outparam.answered(),
            "a guest that drops its outparam leaves the channel here"
        );
        drop(receiver);
    }

    #[tokio::test]
    async fn a_guest_still_streaming_after_its_answer_is_handed_over_to_finish() {
        let (sender, response) = oneshot::channel();
        let (finish, finished) = oneshot::channel::<()>();
        let guest: CompletionFuture = Box::pin(async move {
            let _ = sender.send("headers");
            let _ = finished.await;
            ended()
        });
        let (answered, answer) = until_answered(guest, response).await;
        assert_eq!(answer, Some("headers"));
        let Answered::Streaming(rest) = answered else {
            panic!("the guest had not ended yet");
        };
        finish.send(()).unwrap();
        assert_eq!(rest.await.status, InvocationStatus::Ok);
    }
}
