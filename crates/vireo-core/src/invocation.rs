//! What Vireo remembers about each invocation: its record and the log lines the guest wrote.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::Name;

/// The form of the ids Vireo hands out (hyphenated UUIDs), as the OpenAPI document gives it.
pub const INVOCATION_ID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// A time-ordered unique invocation id (UUID v7), so ids sort by start time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InvocationId(String);

impl InvocationId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Accepts only well-formed ids, so lookups never see arbitrary strings.
    pub fn parse(value: &str) -> Option<Self> {
        uuid::Uuid::parse_str(value)
            .ok()
            .map(|id| Self(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which invocation's log lines to read: a whole id, or the end of one as `vireo logs` shows
/// it (at least its last 8 hex digits, which are random, so they tell invocations apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvocationMatch {
    Id(InvocationId),
    EndsWith(String),
}

impl InvocationMatch {
    /// The fewest characters of an id's end accepted.
    pub const SHORTEST_END: usize = 8;

    pub fn parse(value: &str) -> Option<Self> {
        if let Some(id) = InvocationId::parse(value) {
            return Some(Self::Id(id));
        }
        let end = value.to_ascii_lowercase();
        let plausible = (Self::SHORTEST_END..36).contains(&end.len())
            && end.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        plausible.then_some(Self::EndsWith(end))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Id(id) => id.as_str(),
            Self::EndsWith(end) => end,
        }
    }
}

/// What started an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// A request to `/fn/...` answered directly.
    Http,
    /// A request to `/fn/...` accepted with `Prefer: respond-async` and delivered from the queue.
    Async,
    /// A cron schedule's slot, delivered from the queue.
    Cron,
    /// A change to an object in a bucket with a notification, delivered from the queue.
    Bucket,
    /// A broker's message read by an event source, delivered from the queue.
    Source,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Async => "async",
            Trigger::Cron => "cron",
            Trigger::Bucket => "bucket",
            Trigger::Source => "source",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Http,
            Self::Async,
            Self::Cron,
            Self::Bucket,
            Self::Source,
        ]
        .into_iter()
        .find(|trigger| trigger.as_str() == value)
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvocationStatus {
    /// The guest answered (whatever HTTP status it chose) and finished cleanly.
    Ok,
    /// The guest trapped, panicked, ran out of memory or never answered.
    Error,
    /// The guest ran past its deadline and was interrupted.
    Timeout,
    /// The guest failed because the client's request body could not be read (malformed,
    /// too slow or too large): the caller's fault, not the function's.
    #[serde(rename = "client_error")]
    ClientError,
}

impl InvocationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationStatus::Ok => "ok",
            InvocationStatus::Error => "error",
            InvocationStatus::Timeout => "timeout",
            InvocationStatus::ClientError => "client_error",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "ok" => Some(Self::Ok),
            "error" => Some(Self::Error),
            "timeout" => Some(Self::Timeout),
            "client_error" => Some(Self::ClientError),
            _ => None,
        }
    }
}

/// One finished invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationRecord {
    pub id: InvocationId,
    pub namespace: Name,
    pub function: Name,
    pub version: u32,
    pub trigger: Trigger,
    /// Start, in microseconds since the Unix epoch.
    pub started_at_us: i64,
    pub duration_us: u64,
    pub status: InvocationStatus,
    /// The HTTP status the caller received, if an answer was sent.
    pub http_status: Option<u16>,
    /// The version's compiled state had to be loaded first (first use in this process, or
    /// the first use after it was evicted for idling).
    pub cold: bool,
    /// Why it failed, for `error` and `timeout`.
    pub error: Option<String>,
    /// Time to get an instance ready: loading the version when cold, plus instantiation (zero
    /// when a pre-instantiated or reused instance served it).
    pub init_us: u64,
    /// CPU time used on the server's threads by the guest and the host calls made for it,
    /// microseconds, summed over executions like the metering fields below.
    pub cpu_us: u64,
    /// Runs under this id: 1, or the attempts of a retried async invocation, whose metering
    /// fields below add up every attempt.
    pub executions: u32,
    /// The version's configured memory.
    pub memory_mib: u32,
    /// Billed time: each execution's duration rounded up to the millisecond, at least 1 ms.
    pub billed_ms: u64,
    /// Request body bytes the function read, and response body bytes it sent.
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Key-value operations the function made: reads (get, exists, listings, swap reads),
    /// writes (set, delete, increment, swap) and the key and value bytes they moved.
    pub kv_reads: u64,
    pub kv_writes: u64,
    pub kv_bytes: u64,
    /// Bucket operations the function made: reads (object reads, infos, listings, existence
    /// checks), writes (objects written, copied, moved or deleted, buckets created) and the
    /// object bytes it read and wrote.
    pub object_reads: u64,
    pub object_writes: u64,
    pub object_bytes: u64,
    /// Calls the function made over database and broker connections (queries, statements,
    /// commands, publishes), and the bytes of the results it read and messages it published.
    pub outbound_calls: u64,
    pub outbound_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "stdout" => Some(Self::Stdout),
            "stderr" => Some(Self::Stderr),
            _ => None,
        }
    }
}

/// One line a guest wrote. `seq` is assigned by the store and orders all lines of a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: i64,
    pub invocation_id: InvocationId,
    pub namespace: Name,
    pub function: Name,
    pub version: u32,
    pub at_us: i64,
    pub stream: LogStream,
    pub line: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocations_match_by_id_or_by_the_end_logs_show() {
        let id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(
            InvocationMatch::parse(id),
            Some(InvocationMatch::Id(InvocationId::parse(id).unwrap()))
        );
        assert_eq!(
            InvocationMatch::parse("2E3F4A5B"),
            Some(InvocationMatch::EndsWith("2e3f4a5b".into()))
        );
        assert_eq!(
            InvocationMatch::parse("8a9b-0c1d2e3f4a5b"),
            Some(InvocationMatch::EndsWith("8a9b-0c1d2e3f4a5b".into()))
        );
        for bad in ["", "4a5b", "2e3f4a5g", "2e3f%a5b", "x".repeat(40).as_str()] {
            assert_eq!(InvocationMatch::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn generated_ids_match_the_pattern_and_parse() {
        let pattern = regex::Regex::new(INVOCATION_ID_PATTERN).unwrap();
        let id = InvocationId::generate();
        assert!(pattern.is_match(id.as_str()), "{id}");
        assert_eq!(InvocationId::parse(id.as_str()), Some(id));
        assert!(!pattern.is_match("not-an-id"));
        assert_eq!(InvocationId::parse("not-an-id"), None);
    }

    #[test]
    fn statuses_round_trip() {
        use InvocationStatus::*;
        for status in [Ok, Error, Timeout, ClientError] {
            assert_eq!(InvocationStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
        }
    }
}
