//! What an invocation still owes once it has started: its admission ticket, held until the
//! guest ends, and its record. Both are paid even when the caller goes away before the answer.

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;
use vireo_core::{
    InvocationId, InvocationRecord, InvocationStatus, LogLine, RequestBodyError, Trigger,
    VersionInfo,
};
use vireo_runtime::{Completion, CompletionFuture, Execution};
use vireo_store::RecordWriter;

use crate::admission::Ticket;
use crate::metering::Meter;
use crate::telemetry;

/// What the record says besides the guest's own outcome.
pub struct Finished {
    pub id: InvocationId,
    pub trigger: Trigger,
    pub version: VersionInfo,
    pub started_at_us: i64,
    pub cold: bool,
    pub load_time: Duration,
    pub http_status: Option<u16>,
    pub meter: Meter,
}

impl Finished {
    fn into_record(self, done: Completion) -> (InvocationRecord, Vec<LogLine>) {
        let (status, error) = match client_fault(done.status, &self.meter) {
            Some(fault) => (InvocationStatus::ClientError, Some(fault.to_string())),
            None if done.status == InvocationStatus::Error && self.meter.response_abandoned() => (
                InvocationStatus::ClientError,
                Some(format!(
                    "the client went away before the answer was sent, then the guest failed: {}",
                    done.error.unwrap_or_default()
                )),
            ),
            None => (done.status, done.error),
        };
        let version = self.version;
        let logs = done
            .logs
            .into_iter()
            .map(|line| LogLine {
                seq: 0,
                invocation_id: self.id.clone(),
                namespace: version.namespace.clone(),
                function: version.function.clone(),
                version: version.version,
                at_us: line.at_us,
                stream: line.stream,
                line: line.line,
            })
            .collect();
        let duration_us = u64::try_from(done.duration.as_micros()).unwrap_or(u64::MAX);
        let record = InvocationRecord {
            id: self.id,
            namespace: version.namespace,
            function: version.function,
            version: version.version,
            trigger: self.trigger,
            started_at_us: self.started_at_us,
            duration_us,
            status,
            http_status: self.http_status,
            cold: self.cold,
            error,
            init_us: u64::try_from((self.load_time + done.init).as_micros()).unwrap_or(u64::MAX),
            cpu_us: u64::try_from(done.cpu.as_micros()).unwrap_or(u64::MAX),
            executions: 1,
            memory_mib: version.settings.memory_mib,
            billed_ms: vireo_core::usage::billed_ms(duration_us),
            request_bytes: self.meter.request_bytes(),
            response_bytes: self.meter.response_bytes(),
            kv_reads: done.key_value.reads,
            kv_writes: done.key_value.writes,
            kv_bytes: done.key_value.bytes,
            object_reads: done.objects.reads,
            object_writes: done.objects.writes,
            object_bytes: done.objects.bytes,
            outbound_calls: done.outbound.calls,
            outbound_bytes: done.outbound.bytes,
        };
        (record, logs)
    }
}

/// The client's fault, when the guest failed after the client broke its request body (a
/// malformed chunk, a trickle, too many bytes): the guest only saw its body fail.
pub fn client_fault(status: InvocationStatus, meter: &Meter) -> Option<&RequestBodyError> {
    meter
        .request_fault()
        .filter(|_| status == InvocationStatus::Error)
}

/// The status code a record keeps for an execution's answer.
pub fn http_status(execution: &Execution, meter: &Meter) -> u16 {
    match &execution.response {
        Ok(response) => response.status().as_u16(),
        Err(failure) => match client_fault(failure.status, meter) {
            Some(fault) => fault.status().as_u16(),
            None if failure.status == InvocationStatus::Timeout => 504,
            None => 500,
        },
    }
}

/// Everything an invocation holds from admission until its record is queued.
pub struct Tail {
    pub ticket: Ticket,
    pub in_flight: telemetry::InFlight,
    pub finished: Finished,
    pub records: RecordWriter,
}

impl Tail {
    /// Waits for the guest to end (releasing its ticket then) and for its response body to be
    /// sent, if one is (`response_sent`), then queues the record.
    pub async fn finish(
        self,
        completion: CompletionFuture,
        response_sent: Option<oneshot::Receiver<()>>,
    ) {
        let done = completion.await;
        drop(self.ticket);
        drop(self.in_flight);
        if let Some(sent) = response_sent {
            // An error only means the body was dropped: the count is final either way.
            let _ = sent.await;
        }
        let (record, logs) = self.finished.into_record(done);
        telemetry::invocation_finished(&record);
        self.records.submit(record, logs);
    }
}

type ExecutionFuture = Pin<Box<dyn Future<Output = Execution> + Send>>;

/// An execution its caller waits for. If the caller goes away first (its client disconnected),
/// the execution moves to the in-flight tracker and its tail is paid there: the guest keeps its
/// admission ticket until it ends, so disconnecting cannot exceed a concurrency limit, and the
/// invocation is recorded and metered like any other.
pub struct Awaited {
    execution: Option<ExecutionFuture>,
    tail: Option<Tail>,
    tracker: TaskTracker,
}

impl Awaited {
    pub fn new(
        execution: impl Future<Output = Execution> + Send + 'static,
        tail: Tail,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            execution: Some(Box::pin(execution)),
            tail: Some(tail),
            tracker,
        }
    }

    /// The execution and the tail still to pay, once the guest has answered.
    pub async fn answered(mut self) -> (Execution, Tail) {
        let Some(execution) = self.execution.as_mut() else {
            unreachable!("the execution is only taken here or when dropped");
        };
        let execution = execution.await;
        self.execution = None;
        match self.tail.take() {
            Some(tail) => (execution, tail),
            None => unreachable!("the tail is only taken here or when dropped"),
        }
    }
}

impl Drop for Awaited {
    fn drop(&mut self) {
        let (Some(execution), Some(mut tail)) = (self.execution.take(), self.tail.take()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let abandoned = async move {
            let execution = execution.await;
            tail.finished.http_status = Some(http_status(&execution, &tail.finished.meter));
            // Nobody reads the body: dropping it lets a streaming guest finish its writes.
            if execution.response.is_ok() {
                tail.finished.meter.abandon_response();
            }
            drop(execution.response);
            tail.finish(execution.completion, None).await;
        };
        self.tracker.spawn_on(abandoned.in_current_span(), &runtime);
    }
}
