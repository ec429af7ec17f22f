//! What a store can fail with. Callers need two things from a failure: the specific thing that
//! is missing or taken (the API names it), and the class of failure (what status to answer,
//! whether trying again can help). `StoreError` carries the first and may grow; `ErrorClass`
//! is the second, closed, so every caller that maps failures decides for every class and a new
//! variant cannot silently become "not found" somewhere.

use std::borrow::Cow;

use crate::invoke::BoxError;
use crate::names::{AliasName, Name};
use crate::secrets::SecretName;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("namespace {0} does not exist")]
    NamespaceNotFound(Name),
    #[error("namespace {0} already exists")]
    NamespaceExists(Name),
    #[error("namespace {namespace} still holds {what}; delete them first")]
    NamespaceNotEmpty { namespace: Name, what: String },
    #[error("API key {0} does not exist")]
    KeyNotFound(String),
    /// A namespace quota would be exceeded; the message names it and its value.
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("function {namespace}/{function} does not exist")]
    FunctionNotFound { namespace: Name, function: Name },
    #[error("function {namespace}/{function} has no version {version}")]
    VersionNotFound {
        namespace: Name,
        function: Name,
        version: u32,
    },
    #[error("function {namespace}/{function} has no alias {alias}")]
    AliasNotFound {
        namespace: Name,
        function: Name,
        alias: AliasName,
    },
    #[error("function {namespace}/{function} already exists")]
    FunctionExists { namespace: Name, function: Name },
    #[error("route {pattern} already goes to {namespace}/{function}; remove it first")]
    RouteExists {
        pattern: String,
        namespace: Name,
        function: Name,
    },
    #[error("namespace {namespace} has no route {pattern}")]
    RouteNotFound { namespace: Name, pattern: String },
    #[error(
        "namespace {namespace} may not route host {host}: an admin claims hosts for a namespace with `vireo hosts claim {host} --namespace {namespace}`"
    )]
    HostNotClaimed { namespace: Name, host: String },
    #[error("host {host} overlaps {claimed}, which another namespace claims")]
    HostTaken { host: String, claimed: String },
    #[error("host {host} is not claimed")]
    HostNotFound { host: String },
    #[error("routes of namespace {namespace} still use host {host}; remove them first")]
    HostInUse { namespace: Name, host: String },
    #[error("schedule {namespace}/{name} does not exist")]
    ScheduleNotFound { namespace: Name, name: Name },
    #[error("schedule {namespace}/{name} already exists; choose another name")]
    ScheduleExists { namespace: Name, name: Name },
    #[error("source {namespace}/{name} does not exist")]
    SourceNotFound { namespace: Name, name: Name },
    #[error("source {namespace}/{name} already exists; choose another name")]
    SourceExists { namespace: Name, name: Name },
    #[error("secret {namespace}/{name} does not exist")]
    SecretNotFound { namespace: Name, name: SecretName },
    #[error("key-value store {namespace}/{store} does not exist")]
    KvStoreNotFound { namespace: Name, store: Name },
    #[error("key-value store {namespace}/{store} already exists")]
    KvStoreExists { namespace: Name, store: Name },
    #[error(
        "the default key-value store of namespace {namespace} always exists and cannot be deleted; delete its keys instead"
    )]
    KvDefaultStore { namespace: Name },
    /// Nothing of the write was stored.
    #[error(
        "namespace {namespace} would hold more than its max_kv_bytes quota of {limit} bytes in key-value stores"
    )]
    KvQuotaExceeded { namespace: Name, limit: u64 },
    #[error(
        "the value of {key:?} in key-value store {namespace}/{store} is not a counter (a 64-bit integer as 8 little-endian bytes)"
    )]
    KvNotACounter {
        namespace: Name,
        store: Name,
        key: String,
    },
    #[error(
        "incrementing {key:?} in key-value store {namespace}/{store} would overflow a 64-bit integer"
    )]
    KvCounterOverflow {
        namespace: Name,
        store: Name,
        key: String,
    },
    #[error("SQLite database {namespace}/{database} does not exist")]
    SqliteDatabaseNotFound { namespace: Name, database: Name },
    #[error("SQLite database {namespace}/{database} already exists")]
    SqliteDatabaseExists { namespace: Name, database: Name },
    /// Functions' SQLite databases are files on one node; a server on a shared store has none.
    #[error(
        "SQLite databases are served only by a server on the embedded store: on a shared PostgreSQL store each node would have its own file; use outbound PostgreSQL instead"
    )]
    SqliteUnavailable,
    #[error("bucket {namespace}/{bucket} does not exist")]
    BucketNotFound { namespace: Name, bucket: Name },
    #[error("bucket {namespace}/{bucket} already exists")]
    BucketExists { namespace: Name, bucket: Name },
    #[error("bucket {namespace}/{bucket} still holds {objects} objects; delete them first")]
    BucketNotEmpty {
        namespace: Name,
        bucket: Name,
        objects: u64,
    },
    /// Nothing of the write was stored.
    #[error(
        "namespace {namespace} would hold more than its max_object_bytes quota of {limit} bytes in buckets"
    )]
    ObjectQuotaExceeded { namespace: Name, limit: u64 },
    /// Nothing of the write was stored.
    #[error("the object is larger than the limit of {limit} bytes")]
    ObjectTooLarge { limit: u64 },
    /// The body of a write failed before its end (the writer went away); nothing was stored.
    #[error("reading the object's body failed: {0}")]
    ObjectBodyFailed(#[source] std::io::Error),
    /// The write contradicts one that got there first (a unique key taken, a row it refers to
    /// gone); nothing of it was stored. Trying the whole operation again sees the other write.
    /// The message, which the API shows, leaves the database's own words to the source.
    #[error("another write got there first while {context}; try again")]
    Conflict {
        context: Cow<'static, str>,
        source: BoxError,
    },
    /// The store could not do it: it is unreachable, busy, out of space, or holds data this
    /// build cannot read. `retryable` says whether the same call may succeed later.
    #[error("storage failure while {context}: {source}")]
    Unavailable {
        context: Cow<'static, str>,
        retryable: bool,
        source: BoxError,
    },
}

/// The class of a [`StoreError`]: what a caller can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// What was named does not exist.
    NotFound,
    /// What was asked contradicts what is stored: a name taken, a namespace not empty, another
    /// write first.
    Conflict,
    /// A namespace quota refuses it.
    QuotaExceeded,
    /// The store could not do it; trying again may help when `retryable`.
    Unavailable { retryable: bool },
}

impl StoreError {
    /// A failure that trying again later may cure (the store is busy, restarting, full).
    pub fn unavailable(context: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            context: context.into(),
            retryable: true,
            source: source.into(),
        }
    }

    /// Stored data this build cannot read, or a value the store cannot take: trying again
    /// gives the same answer.
    pub fn permanent(context: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            context: context.into(),
            retryable: false,
            source: source.into(),
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            Self::NamespaceNotFound(_)
            | Self::KeyNotFound(_)
            | Self::FunctionNotFound { .. }
            | Self::VersionNotFound { .. }
            | Self::AliasNotFound { .. }
            | Self::ScheduleNotFound { .. }
            | Self::SourceNotFound { .. }
            | Self::SecretNotFound { .. }
            | Self::KvStoreNotFound { .. }
            | Self::SqliteDatabaseNotFound { .. }
            | Self::RouteNotFound { .. }
            | Self::HostNotFound { .. }
            | Self::BucketNotFound { .. } => ErrorClass::NotFound,
            Self::NamespaceExists(_)
            | Self::NamespaceNotEmpty { .. }
            | Self::FunctionExists { .. }
            | Self::ScheduleExists { .. }
            | Self::SourceExists { .. }
            | Self::KvStoreExists { .. }
            | Self::KvDefaultStore { .. }
            | Self::KvNotACounter { .. }
            | Self::KvCounterOverflow { .. }
            | Self::SqliteDatabaseExists { .. }
            | Self::SqliteUnavailable
            | Self::RouteExists { .. }
            | Self::HostNotClaimed { .. }
            | Self::HostTaken { .. }
            | Self::HostInUse { .. }
            | Self::BucketExists { .. }
            | Self::BucketNotEmpty { .. }
            | Self::Conflict { .. } => ErrorClass::Conflict,
            Self::QuotaExceeded(_)
            | Self::KvQuotaExceeded { .. }
            | Self::ObjectQuotaExceeded { .. }
            | Self::ObjectTooLarge { .. } => ErrorClass::QuotaExceeded,
            Self::ObjectBodyFailed(_) => ErrorClass::Unavailable { retryable: true },
            Self::Unavailable { retryable, .. } => ErrorClass::Unavailable {
                retryable: *retryable,
            },
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.class() == ErrorClass::NotFound
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn failures_keep_their_cause_and_say_whether_to_retry() {
        let busy = StoreError::unavailable("claiming", std::io::Error::other("database is locked"));
        assert_eq!(
            busy.to_string(),
            "storage failure while claiming: database is locked"
        );
        assert!(busy.source().is_some(), "the cause is kept, not flattened");
        assert_eq!(busy.class(), ErrorClass::Unavailable { retryable: true });
        assert!(!busy.is_not_found());

        let corrupt = StoreError::permanent("reading settings", "not JSON");
        assert_eq!(
            corrupt.class(),
            ErrorClass::Unavailable { retryable: false }
        );

        let raced = StoreError::Conflict {
            context: "adding version".into(),
            source: "UNIQUE constraint failed".into(),
        };
        assert_eq!(raced.class(), ErrorClass::Conflict);
        assert_eq!(
            raced.to_string(),
            "another write got there first while adding version; try again"
        );
        assert!(raced.source().is_some());
        assert!(StoreError::KeyNotFound("k".into()).is_not_found());
    }
}
