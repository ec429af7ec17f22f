//! The background record writer, against a real store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use vireo_core::{
    InvocationId, InvocationQuery, InvocationRecord, LogLine, LogQuery, Name, Records, Retained,
    Retention, StoreError, UsageQuery, UsageRow,
};
use vireo_store::RecordWriter;
use vireo_store::conformance::Fixture as _;
use vireo_store::conformance::support::{AT, default_function, log, new_version, record};

use crate::sqlite::SqliteFixture;

const DEADLINE: Duration = Duration::from_secs(10);

/// A store with one deployed function; its records are shared with a writer.
async fn deployed() -> (SqliteFixture, Arc<dyn Records>, Name) {
    let fixture = SqliteFixture::fresh().await;
    let (ns, function) = default_function("hello");
    fixture
        .stores()
        .catalog
        .add_version(&ns, &function, new_version("a"), AT)
        .await
        .unwrap();
    let records = fixture.stores().records.clone();
    (fixture, records, function)
}

async fn counts(store: &dyn Records, function: &Name) -> (usize, usize) {
    let records = InvocationQuery {
        namespace: Name::default_namespace(),
        function: function.clone(),
        before: None,
        limit: 1000,
    };
    let logs = LogQuery {
        namespace: Name::default_namespace(),
        function: function.clone(),
        invocation: None,
        since_us: None,
        after_seq: None,
        limit: 10_000,
        newest: false,
    };
    (
        store.list_invocations(&records).await.unwrap().len(),
        store.read_logs(&logs).await.unwrap().len(),
    )
}

#[tokio::test]
async fn flush_waits_for_everything_submitted() {
    let (_fixture, store, function) = deployed().await;
    let (writer, task) = RecordWriter::spawn(store.clone());
    let mut committed = writer.subscribe();

    for n in 0..1000 {
        let record = record(&function, n);
        let lines = vec![log(&record, 1, "one"), log(&record, 2, "two")];
        writer.submit(record, lines);
    }
    writer.flush().await;
    assert_eq!(counts(store.as_ref(), &function).await, (1000, 2000));
    assert!(committed.has_changed().unwrap(), "followers must be woken");
    assert!(
        *committed.borrow_and_update() >= 2,
        "1000 records take more than one batch"
    );

    drop(writer);
    task.finish(Instant::now() + DEADLINE).await;
}

#[tokio::test]
async fn dropping_every_writer_drains_the_queue() {
    let (_fixture, store, function) = deployed().await;
    let (writer, task) = RecordWriter::spawn(store.clone());
    let clone = writer.clone();
    for n in 0..300 {
        let submitter = if n % 2 == 0 { &writer } else { &clone };
        submitter.submit(record(&function, n), Vec::new());
    }
    drop(writer);
    drop(clone);
    tokio::time::timeout(DEADLINE, task.finish(Instant::now() + DEADLINE))
        .await
        .unwrap();
    assert_eq!(counts(store.as_ref(), &function).await, (300, 0));
}

#[tokio::test]
async fn failed_writes_are_retried() {
    let (_fixture, inner, function) = deployed().await;
    let store = Arc::new(Flaky {
        inner,
        failures_left: AtomicUsize::new(2),
        attempts: AtomicUsize::new(0),
    });
    let (writer, task) = RecordWriter::spawn(store.clone());

    writer.submit(record(&function, 1), Vec::new());
    tokio::time::timeout(Duration::from_secs(10), writer.flush())
        .await
        .unwrap();
    assert_eq!(counts(store.as_ref(), &function).await, (1, 0));
    assert_eq!(store.attempts.load(Ordering::SeqCst), 3);

    drop(writer);
    task.finish(Instant::now() + DEADLINE).await;
}

#[tokio::test]
async fn a_store_that_keeps_failing_is_given_up_at_the_deadline() {
    let (_fixture, inner, function) = deployed().await;
    let store = Arc::new(Flaky {
        inner,
        failures_left: AtomicUsize::new(usize::MAX),
        attempts: AtomicUsize::new(0),
    });
    let (writer, task) = RecordWriter::spawn(store.clone());
    writer.submit(record(&function, 1), Vec::new());

    // A writer still held elsewhere (an invocation that outlived the grace period) does not
    // keep the task alive past the deadline either.
    let begun = Instant::now();
    let within = Duration::from_millis(700);
    tokio::time::timeout(DEADLINE, task.finish(begun + within))
        .await
        .expect("finish returns once its deadline has passed");
    let took = begun.elapsed();
    assert!(
        took >= within && took < within + Duration::from_secs(1),
        "{took:?}"
    );
    // Backing off from 100 ms (100, 200, 400 ms): a few tries, not a spin.
    let attempts = store.attempts.load(Ordering::SeqCst);
    assert!((2..=5).contains(&attempts), "{attempts} attempts");
    assert_eq!(counts(store.as_ref(), &function).await, (0, 0));
    tokio::time::timeout(DEADLINE, writer.flush())
        .await
        .expect("a flush after the task ended returns at once");
}

/// Fails the first `failures_left` batch writes, as a briefly unavailable database would.
struct Flaky {
    inner: Arc<dyn Records>,
    failures_left: AtomicUsize,
    attempts: AtomicUsize,
}

#[async_trait::async_trait]
impl Records for Flaky {
    async fn record_invocations(
        &self,
        records: &[InvocationRecord],
        logs: &[LogLine],
    ) -> Result<(), StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let fail = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(StoreError::unavailable("recording", "injected failure"));
        }
        self.inner.record_invocations(records, logs).await
    }

    async fn get_invocation(
        &self,
        id: &InvocationId,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        self.inner.get_invocation(id).await
    }
    async fn list_invocations(
        &self,
        query: &InvocationQuery,
    ) -> Result<Vec<InvocationRecord>, StoreError> {
        self.inner.list_invocations(query).await
    }
    async fn read_logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, StoreError> {
        self.inner.read_logs(query).await
    }
    async fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        self.inner.usage(query).await
    }
    async fn apply_retention(&self, rules: &Retention) -> Result<Retained, StoreError> {
        self.inner.apply_retention(rules).await
    }
}
