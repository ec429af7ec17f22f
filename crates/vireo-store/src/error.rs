//! sqlx's errors classified as [`StoreError`]s, in one place for every sqlx backend. What sqlx
//! says the same way for every database (a pool timing out or closed, I/O, an integrity
//! violation) is decided here; which of a database's own error codes mean "busy, try again"
//! only its backend knows, so it passes that test in.

use std::borrow::Cow;

use sqlx::error::ErrorKind;
use vireo_core::StoreError;

/// Whether a database error code (`DatabaseError::code`) reports a passing condition: a lock,
/// a busy or full store, an I/O failure.
pub(crate) type IsTransient = fn(&str) -> bool;

/// The [`StoreError`] for `error`, which happened while doing `context`.
pub(crate) fn classify(
    context: impl Into<Cow<'static, str>>,
    error: sqlx::Error,
    is_transient: IsTransient,
) -> StoreError {
    let retryable = match &error {
        sqlx::Error::Database(database) => match database.kind() {
            // Another write took the key or removed the row this one refers to (PostgreSQL's
            // class 23, integrity constraints, whichever constraint caught it).
            ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation => {
                return StoreError::Conflict {
                    context: context.into(),
                    source: Box::new(error),
                };
            }
            _ => database.code().is_some_and(|code| is_transient(&code)),
        },
        // The database unreachable or busy, or this node shutting down (a closed pool): the
        // same call may succeed later, or on another node.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Misuse, or rows this build cannot decode: the same call fails the same way again.
        _ => false,
    };
    StoreError::Unavailable {
        context: context.into(),
        retryable,
        source: Box::new(error),
    }
}
