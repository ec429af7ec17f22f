//! The background record writer, against a real SQLite store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use vireo_core::{
    AliasName, FunctionInfo, InvocationId, InvocationQuery, InvocationRecord, LogLine, LogQuery,
    Name, NewVersion, Retained, Retention, Store, StoreError, UsageQuery, UsageRow, VersionInfo,
    VersionSelector,
};
use vireo_store::{RecordWriter, SqliteStore};

use crate::support::{default_function, log, new_version, record, sqlite_store};

const DEADLINE: Duration = Duration::from_secs(10);

/// A store with one deployed function, shared with a writer.
async fn deployed() -> (tempfile::TempDir, Arc<SqliteStore>, Name) {
    let (dir, store) = sqlite_store().await;
    let (ns, function) = default_function("hello");
    store
        .add_version(&ns, &function, new_version("a"))
        .await
        .unwrap();
    (dir, Arc::new(store), function)
}

async fn counts(store: &dyn Store, function: &Name) -> (usize, usize) {
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
    };
    (
        store.list_invocations(&records).await.unwrap().len(),
        store.read_logs(&logs).await.unwrap().len(),
    )
}

#[tokio::test]
async fn flush_waits_for_everything_submitted() {
    let (_dir, store, function) = deployed().await;
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
    let (_dir, store, function) = deployed().await;
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
    let (_dir, inner, function) = deployed().await;
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
    let (_dir, inner, function) = deployed().await;
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
    inner: Arc<SqliteStore>,
    failures_left: AtomicUsize,
    attempts: AtomicUsize,
}

#[async_trait::async_trait]
impl Store for Flaky {
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
            return Err(StoreError::Backend("injected failure".to_string()));
        }
        self.inner.record_invocations(records, logs).await
    }

    async fn namespace_exists(&self, namespace: &Name) -> Result<bool, StoreError> {
        self.inner.namespace_exists(namespace).await
    }
    async fn create_function(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<FunctionInfo, StoreError> {
        self.inner.create_function(namespace, function).await
    }
    async fn get_function(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<FunctionInfo, StoreError> {
        self.inner.get_function(namespace, function).await
    }
    async fn list_functions(&self, namespace: &Name) -> Result<Vec<FunctionInfo>, StoreError> {
        self.inner.list_functions(namespace).await
    }
    async fn delete_function(&self, namespace: &Name, function: &Name) -> Result<(), StoreError> {
        self.inner.delete_function(namespace, function).await
    }
    async fn add_version(
        &self,
        namespace: &Name,
        function: &Name,
        version: NewVersion,
    ) -> Result<VersionInfo, StoreError> {
        self.inner.add_version(namespace, function, version).await
    }
    async fn list_versions(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<Vec<VersionInfo>, StoreError> {
        self.inner.list_versions(namespace, function).await
    }
    async fn resolve_version(
        &self,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<VersionInfo, StoreError> {
        self.inner
            .resolve_version(namespace, function, selector)
            .await
    }
    async fn component_hashes(&self) -> Result<Vec<String>, StoreError> {
        self.inner.component_hashes().await
    }
    async fn set_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
        version: u32,
    ) -> Result<(), StoreError> {
        self.inner
            .set_alias(namespace, function, alias, version)
            .await
    }
    async fn delete_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
    ) -> Result<(), StoreError> {
        self.inner.delete_alias(namespace, function, alias).await
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
