//! What one invocation did with a store it reaches (key-value stores, buckets), counted as it
//! goes: the operations that read, those that write, and the bytes they moved.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Tally {
    reads: AtomicU64,
    writes: AtomicU64,
    bytes: AtomicU64,
}

/// What an invocation did with one kind of store: each capability says what counts as a read,
/// a write and a byte moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreUse {
    pub reads: u64,
    pub writes: u64,
    pub bytes: u64,
}

impl Tally {
    pub(crate) fn used(&self) -> StoreUse {
        StoreUse {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn moved(&self, bytes: usize) {
        self.bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}
