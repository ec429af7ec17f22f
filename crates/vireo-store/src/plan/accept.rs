//! The rules of accepting async invocations, apart from any database. A backend reads what the
//! rules need in the transaction that will store the batch ([`functions`] and [`keys`] say
//! what to look up), and [`plan`] decides each invocation's outcome and what to write:
//!
//! - an invocation of a function that no longer exists stores nothing;
//! - an idempotency key already used for the function within [`IDEMPOTENCY_WINDOW`], stored or
//!   earlier in the same batch, names the first invocation and stores nothing;
//! - a namespace takes no more once its queued and running invocations, this batch's counted,
//!   reach its own `max_queued` quota, or the server's default without one.

use std::collections::{BTreeMap, HashMap, HashSet};

use vireo_core::queue::IDEMPOTENCY_WINDOW;
use vireo_core::{Enqueued, InvocationId, NewAsyncInvocation};

/// A function as `(namespace, name)`.
pub(crate) type FunctionRef<'a> = (&'a str, &'a str);
/// An idempotency key of a function as `(namespace, function, key)`.
pub(crate) type KeyRef<'a> = (&'a str, &'a str, &'a str);

/// What the accepting transaction knows of a function a batch names, and of its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FunctionState {
    pub exists: bool,
    /// The namespace's async invocations queued or running.
    pub pending: u64,
    /// The namespace's own `max_queued` quota, if it has one.
    pub max_queued: Option<u64>,
}

/// An idempotency key as stored: the invocation it was first used for, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredKey {
    pub invocation: InvocationId,
    pub created_at_us: i64,
}

/// What to do with a batch.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    /// One outcome per invocation of the batch, in order.
    pub outcomes: Vec<Enqueued>,
    /// The invocations to store.
    pub insert: Vec<&'a NewAsyncInvocation>,
    /// Those of them whose idempotency key to store (taking over an expired one).
    pub keys: Vec<&'a NewAsyncInvocation>,
}

/// The distinct functions `batch` names, in the order it names them: look up each.
pub(crate) fn functions(batch: &[NewAsyncInvocation]) -> Vec<FunctionRef<'_>> {
    distinct(batch.iter().map(function_of))
}

/// The distinct idempotency keys to look up: those of invocations whose function exists.
pub(crate) fn keys<'a>(
    batch: &'a [NewAsyncInvocation],
    functions: &HashMap<FunctionRef<'a>, FunctionState>,
) -> Vec<KeyRef<'a>> {
    distinct(
        batch
            .iter()
            .filter(|item| exists(functions, item))
            .filter_map(key_of),
    )
}

/// Decides each invocation of `batch` from what was looked up: every function of
/// [`functions`], and those keys of [`keys`] that are stored. `max_pending` is the server's
/// default bound on a namespace's queued and running invocations.
pub(crate) fn plan<'a>(
    batch: &'a [NewAsyncInvocation],
    max_pending: u64,
    functions: &HashMap<FunctionRef<'a>, FunctionState>,
    stored_keys: &HashMap<KeyRef<'a>, StoredKey>,
) -> Plan<'a> {
    let window = i64::try_from(IDEMPOTENCY_WINDOW.as_micros()).unwrap_or(i64::MAX);
    let mut outcomes: Vec<Option<Enqueued>> = batch
        .iter()
        .map(|item| (!exists(functions, item)).then_some(Enqueued::FunctionNotFound))
        .collect();

    // A key names the first invocation it was used for: a stored one within the window, or
    // one earlier in this batch.
    let mut first_in_batch: HashMap<KeyRef<'a>, &InvocationId> = HashMap::new();
    for (item, outcome) in batch.iter().zip(&mut outcomes) {
        let Some(key) = key_of(item) else {
            continue;
        };
        if outcome.is_some() {
            continue;
        }
        if let Some(first) = first_in_batch.get(&key) {
            *outcome = Some(Enqueued::Duplicate((*first).clone()));
            continue;
        }
        let since_us = item.accepted_at_us.saturating_sub(window);
        match stored_keys.get(&key) {
            Some(stored) if stored.created_at_us >= since_us => {
                *outcome = Some(Enqueued::Duplicate(stored.invocation.clone()));
            }
            _ => {
                first_in_batch.insert(key, &item.id);
            }
        }
    }

    // The namespace quota, counting what this batch adds; every function of a namespace was
    // looked up in one snapshot, so any of them tells its namespace's count and quota.
    let mut namespaces: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (function, state) in functions {
        namespaces
            .entry(function.0)
            .or_insert((state.pending, state.max_queued.unwrap_or(max_pending)));
    }
    for (item, outcome) in batch.iter().zip(&mut outcomes) {
        if outcome.is_some() {
            continue;
        }
        let (count, limit) = namespaces
            .get_mut(item.namespace.as_str())
            .expect("looked up with its function");
        if *count >= *limit {
            *outcome = Some(Enqueued::QueueFull { limit: *limit });
        } else {
            *count += 1;
        }
    }

    let insert: Vec<&NewAsyncInvocation> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_none())
        .map(|(item, _)| item)
        .collect();
    let keys = insert
        .iter()
        .copied()
        .filter(|item| item.idempotency_key.is_some())
        .collect();
    Plan {
        outcomes: outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or(Enqueued::Accepted))
            .collect(),
        insert,
        keys,
    }
}

/// `items` without repeats, in their first order.
fn distinct<T: Copy + Eq + std::hash::Hash>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.filter(|item| seen.insert(*item)).collect()
}

fn function_of(item: &NewAsyncInvocation) -> FunctionRef<'_> {
    (item.namespace.as_str(), item.function.as_str())
}

fn key_of(item: &NewAsyncInvocation) -> Option<KeyRef<'_>> {
    let (namespace, function) = function_of(item);
    Some((namespace, function, item.idempotency_key.as_deref()?))
}

fn exists(functions: &HashMap<FunctionRef<'_>, FunctionState>, item: &NewAsyncInvocation) -> bool {
    functions
        .get(&function_of(item))
        .is_some_and(|state| state.exists)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::HeaderMap;
    use vireo_core::{AliasName, Name, StoredRequest, Trigger, VersionSelector};

    use super::*;

    const NOW: i64 = 100_000_000_000;
    const WINDOW: i64 = 24 * 60 * 60 * 1_000_000;

    fn id(n: u64) -> InvocationId {
        InvocationId::parse(&format!("01900000-0000-7000-8000-{n:012x}")).unwrap()
    }

    fn item(namespace: &str, function: &str, n: u64, key: Option<&str>) -> NewAsyncInvocation {
        NewAsyncInvocation {
            id: id(n),
            namespace: Name::parse("test", namespace).unwrap(),
            function: Name::parse("test", function).unwrap(),
            selector: VersionSelector::Alias(AliasName::latest()),
            trigger: Trigger::Async,
            source: String::new(),
            request: StoredRequest {
                method: "POST".into(),
                uri: "/".into(),
                headers: HeaderMap::new(),
                body: Bytes::new(),
            },
            idempotency_key: key.map(str::to_string),
            accepted_at_us: NOW,
            event_time_us: NOW,
        }
    }

    fn state(exists: bool, pending: u64, max_queued: Option<u64>) -> FunctionState {
        FunctionState {
            exists,
            pending,
            max_queued,
        }
    }

    /// Plans `batch` with every function in `known` and nothing stored under any key.
    fn plan_with<'a>(
        batch: &'a [NewAsyncInvocation],
        max_pending: u64,
        known: &[(&'a str, &'a str, FunctionState)],
        stored: &[(KeyRef<'a>, StoredKey)],
    ) -> Plan<'a> {
        let functions = known.iter().map(|(ns, f, s)| ((*ns, *f), *s)).collect();
        let stored = stored.iter().cloned().collect();
        plan(batch, max_pending, &functions, &stored)
    }

    fn ids(items: &[&NewAsyncInvocation]) -> Vec<InvocationId> {
        items.iter().map(|item| item.id.clone()).collect()
    }

    #[test]
    fn lookups_are_one_per_function_and_per_key_of_an_existing_function() {
        let batch = [
            item("a", "f", 1, Some("k")),
            item("a", "f", 2, Some("k")),
            item("a", "g", 3, Some("k")),
            item("b", "f", 4, None),
        ];
        assert_eq!(functions(&batch), [("a", "f"), ("a", "g"), ("b", "f")]);
        let known = HashMap::from([
            (("a", "f"), state(true, 0, None)),
            (("a", "g"), state(false, 0, None)),
            (("b", "f"), state(true, 0, None)),
        ]);
        assert_eq!(keys(&batch, &known), [("a", "f", "k")]);
    }

    #[test]
    fn a_missing_function_takes_nothing() {
        let batch = [item("a", "gone", 1, Some("k")), item("a", "f", 2, None)];
        let planned = plan_with(
            &batch,
            10,
            &[
                ("a", "gone", state(false, 0, None)),
                ("a", "f", state(true, 0, None)),
            ],
            &[],
        );
        assert_eq!(
            planned.outcomes,
            [Enqueued::FunctionNotFound, Enqueued::Accepted]
        );
        assert_eq!(ids(&planned.insert), [id(2)]);
        assert!(planned.keys.is_empty());
    }

    #[test]
    fn a_key_names_its_first_invocation_in_the_batch_or_within_the_window() {
        let batch = [
            item("a", "f", 1, Some("new")),
            item("a", "f", 2, Some("new")),
            item("a", "f", 3, Some("recent")),
            item("a", "f", 4, Some("expired")),
            item("a", "g", 5, Some("new")),
        ];
        let stored = [
            (
                ("a", "f", "recent"),
                StoredKey {
                    invocation: id(90),
                    created_at_us: NOW - WINDOW,
                },
            ),
            (
                ("a", "f", "expired"),
                StoredKey {
                    invocation: id(91),
                    created_at_us: NOW - WINDOW - 1,
                },
            ),
        ];
        let exists = state(true, 0, None);
        let planned = plan_with(
            &batch,
            10,
            &[("a", "f", exists), ("a", "g", exists)],
            &stored,
        );
        assert_eq!(
            planned.outcomes,
            [
                Enqueued::Accepted,
                Enqueued::Duplicate(id(1)),
                Enqueued::Duplicate(id(90)),
                Enqueued::Accepted,
                Enqueued::Accepted,
            ]
        );
        assert_eq!(ids(&planned.insert), [id(1), id(4), id(5)]);
        assert_eq!(
            ids(&planned.keys),
            [id(1), id(4), id(5)],
            "the expired key is taken over"
        );
    }

    #[test]
    fn the_namespace_quota_counts_what_is_pending_and_what_the_batch_adds() {
        let batch = [
            item("a", "f", 1, None),
            item("a", "g", 2, Some("k")),
            item("a", "f", 3, Some("k2")),
            item("b", "f", 4, None),
            item("b", "f", 5, None),
        ];
        let planned = plan_with(
            &batch,
            2,
            &[
                ("a", "f", state(true, 0, None)),
                ("a", "g", state(true, 0, None)),
                // Its own quota wins over the server's default, either way.
                ("b", "f", state(true, 2, Some(3))),
            ],
            &[],
        );
        assert_eq!(
            planned.outcomes,
            [
                Enqueued::Accepted,
                Enqueued::Accepted,
                Enqueued::QueueFull { limit: 2 },
                Enqueued::Accepted,
                Enqueued::QueueFull { limit: 3 },
            ]
        );
        assert_eq!(ids(&planned.insert), [id(1), id(2), id(4)]);
        assert_eq!(
            ids(&planned.keys),
            [id(2)],
            "a refused invocation's key is not stored, so a retry is not a duplicate"
        );
    }
}
