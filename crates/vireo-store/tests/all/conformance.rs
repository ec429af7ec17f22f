//! The behaviour every `Store` implementation must have. Each case takes `&dyn Store` on an
//! empty store (only the `default` namespace), so another backend can run the same suite.

use vireo_core::{
    AliasName, InvocationQuery, InvocationStatus, LogQuery, LogStream, Name, Store, StoreError,
    VersionSelector,
};

use crate::support::{default_function, invocation_id, log, name, new_version, record};

/// Asserts that `$result` is an `Err` matching `$pattern` (and the guard, if given).
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!("expected {}, got {other:?}", stringify!($pattern)),
        }
    };
}

fn alias(value: &str) -> AliasName {
    AliasName::parse(value).unwrap()
}

fn latest() -> VersionSelector {
    VersionSelector::Alias(AliasName::latest())
}

fn invocations(function: &Name, before: Option<u64>, limit: u32) -> InvocationQuery {
    InvocationQuery {
        namespace: Name::default_namespace(),
        function: function.clone(),
        before: before.map(invocation_id),
        limit,
    }
}

fn logs(function: &Name) -> LogQuery {
    LogQuery {
        namespace: Name::default_namespace(),
        function: function.clone(),
        invocation: None,
        since_us: None,
        after_seq: None,
        limit: 100,
    }
}

pub async fn versions_number_from_one(store: &dyn Store) {
    let (ns, function) = default_function("hello");
    for (expected, sha) in [(1, "a"), (2, "b"), (3, "c")] {
        let added = store
            .add_version(&ns, &function, new_version(sha))
            .await
            .unwrap();
        assert_eq!(added.version, expected);
        assert_eq!(added.component_sha256, sha.repeat(64));
    }
    let versions = store.list_versions(&ns, &function).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let expected = new_version("b");
    assert_eq!(versions[1].settings, expected.settings);
    assert_eq!(versions[1].component_size, expected.component_size);

    let info = store.get_function(&ns, &function).await.unwrap();
    assert_eq!(info.latest_version, Some(3));
    assert_eq!(info.aliases, [("latest".to_string(), 3)].into());
}

pub async fn latest_follows_the_newest_version(store: &dyn Store) {
    let (ns, function) = default_function("hello");
    store.create_function(&ns, &function).await.unwrap();
    let info = store.get_function(&ns, &function).await.unwrap();
    assert_eq!((info.latest_version, info.aliases.len()), (None, 0));
    assert_err!(
        store.resolve_version(&ns, &function, &latest()).await,
        StoreError::AliasNotFound { alias, .. } if alias.is_latest()
    );

    for expected in 1..=3 {
        store
            .add_version(&ns, &function, new_version("a"))
            .await
            .unwrap();
        assert_eq!(
            store
                .resolve_version(&ns, &function, &latest())
                .await
                .unwrap()
                .version,
            expected
        );
    }
    let second = store
        .resolve_version(&ns, &function, &VersionSelector::Number(2))
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    assert_err!(
        store
            .resolve_version(&ns, &function, &VersionSelector::Number(9))
            .await,
        StoreError::VersionNotFound { version: 9, .. }
    );
}

pub async fn aliases_set_resolve_and_delete(store: &dyn Store) {
    let (ns, function) = default_function("hello");
    for sha in ["a", "b", "c"] {
        store
            .add_version(&ns, &function, new_version(sha))
            .await
            .unwrap();
    }
    let prod = alias("prod");
    let by_prod = VersionSelector::Alias(prod.clone());

    store.set_alias(&ns, &function, &prod, 1).await.unwrap();
    assert_eq!(
        store
            .resolve_version(&ns, &function, &by_prod)
            .await
            .unwrap()
            .version,
        1
    );
    store.set_alias(&ns, &function, &prod, 2).await.unwrap();
    let resolved = store
        .resolve_version(&ns, &function, &by_prod)
        .await
        .unwrap();
    assert_eq!(
        (resolved.version, resolved.component_sha256),
        (2, "b".repeat(64))
    );
    let info = store.get_function(&ns, &function).await.unwrap();
    assert_eq!(
        info.aliases,
        [("latest".to_string(), 3), ("prod".to_string(), 2)].into()
    );

    assert_err!(
        store.set_alias(&ns, &function, &prod, 7).await,
        StoreError::VersionNotFound { version: 7, .. }
    );
    assert_eq!(
        store
            .resolve_version(&ns, &function, &by_prod)
            .await
            .unwrap()
            .version,
        2
    );

    store.delete_alias(&ns, &function, &prod).await.unwrap();
    assert_err!(
        store.resolve_version(&ns, &function, &by_prod).await,
        StoreError::AliasNotFound { alias, .. } if alias == prod
    );
    assert_err!(
        store.delete_alias(&ns, &function, &prod).await,
        StoreError::AliasNotFound { .. }
    );
    let info = store.get_function(&ns, &function).await.unwrap();
    assert_eq!(info.aliases, [("latest".to_string(), 3)].into());
}

pub async fn create_function_refuses_duplicates(store: &dyn Store) {
    let ns = Name::default_namespace();
    let created = store.create_function(&ns, &name("b-func")).await.unwrap();
    assert_eq!(
        (created.name.as_str(), created.latest_version),
        ("b-func", None)
    );
    assert_err!(
        store.create_function(&ns, &name("b-func")).await,
        StoreError::FunctionExists { .. }
    );
    store
        .add_version(&ns, &name("a-func"), new_version("a"))
        .await
        .unwrap();
    assert_err!(
        store.create_function(&ns, &name("a-func")).await,
        StoreError::FunctionExists { .. }
    );

    let listed = store.list_functions(&ns).await.unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|f| (f.name.as_str(), f.latest_version))
        .collect();
    assert_eq!(summary, [("a-func", Some(1)), ("b-func", None)]);
    // An explicitly created function still starts at version 1.
    assert_eq!(
        store
            .add_version(&ns, &name("b-func"), new_version("a"))
            .await
            .unwrap()
            .version,
        1
    );
}

pub async fn unknown_namespace_is_reported_everywhere(store: &dyn Store) {
    let (ns, function) = (name("nowhere"), name("hello"));
    assert!(
        store
            .namespace_exists(&Name::default_namespace())
            .await
            .unwrap()
    );
    assert!(!store.namespace_exists(&ns).await.unwrap());

    assert_err!(
        store.create_function(&ns, &function).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        store.get_function(&ns, &function).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        store.list_functions(&ns).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        store.delete_function(&ns, &function).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        store.add_version(&ns, &function, new_version("a")).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        store.list_versions(&ns, &function).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        store.resolve_version(&ns, &function, &latest()).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        store.set_alias(&ns, &function, &alias("prod"), 1).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        store.delete_alias(&ns, &function, &alias("prod")).await,
        StoreError::NamespaceNotFound(_)
    );
    let mut query = invocations(&function, None, 10);
    query.namespace = ns.clone();
    assert_err!(
        store.list_invocations(&query).await,
        StoreError::NamespaceNotFound(_)
    );
    let mut query = logs(&function);
    query.namespace = ns.clone();
    assert_err!(
        store.read_logs(&query).await,
        StoreError::NamespaceNotFound(_)
    );
}

pub async fn unknown_function_is_reported_everywhere(store: &dyn Store) {
    let (ns, function) = default_function("ghost");
    store
        .add_version(&ns, &name("other"), new_version("a"))
        .await
        .unwrap();
    let missing = |result: Result<(), StoreError>| match result {
        Err(StoreError::FunctionNotFound { function: f, .. }) => assert_eq!(f, function),
        other => panic!("expected FunctionNotFound, got {other:?}"),
    };

    missing(store.get_function(&ns, &function).await.map(drop));
    missing(store.delete_function(&ns, &function).await);
    missing(store.list_versions(&ns, &function).await.map(drop));
    missing(
        store
            .resolve_version(&ns, &function, &latest())
            .await
            .map(drop),
    );
    missing(
        store
            .resolve_version(&ns, &function, &VersionSelector::Number(1))
            .await
            .map(drop),
    );
    missing(store.set_alias(&ns, &function, &alias("prod"), 1).await);
    missing(store.delete_alias(&ns, &function, &alias("prod")).await);
    missing(
        store
            .list_invocations(&invocations(&function, None, 10))
            .await
            .map(drop),
    );
    missing(store.read_logs(&logs(&function)).await.map(drop));
    assert!(
        store
            .get_invocation(&invocation_id(1))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn delete_function_cascades(store: &dyn Store) {
    let (ns, function) = default_function("hello");
    let (_, other) = default_function("other");
    store
        .add_version(&ns, &function, new_version("a"))
        .await
        .unwrap();
    store
        .add_version(&ns, &function, new_version("b"))
        .await
        .unwrap();
    store
        .add_version(&ns, &other, new_version("c"))
        .await
        .unwrap();
    store
        .set_alias(&ns, &function, &alias("prod"), 1)
        .await
        .unwrap();
    let (mine, theirs) = (record(&function, 1), record(&other, 2));
    store
        .record_invocations(
            &[mine.clone(), theirs.clone()],
            &[log(&mine, 1, "mine"), log(&theirs, 2, "theirs")],
        )
        .await
        .unwrap();

    store.delete_function(&ns, &function).await.unwrap();
    assert_err!(
        store.get_function(&ns, &function).await,
        StoreError::FunctionNotFound { .. }
    );
    assert!(store.get_invocation(&mine.id).await.unwrap().is_none());
    assert_eq!(store.component_hashes().await.unwrap(), ["c".repeat(64)]);

    // Re-created, it starts over: version 1, no aliases, no history.
    assert_eq!(
        store
            .add_version(&ns, &function, new_version("d"))
            .await
            .unwrap()
            .version,
        1
    );
    let info = store.get_function(&ns, &function).await.unwrap();
    assert_eq!(info.aliases, [("latest".to_string(), 1)].into());
    assert!(
        store
            .list_invocations(&invocations(&function, None, 10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.read_logs(&logs(&function)).await.unwrap().is_empty());

    // The other function keeps everything.
    assert_eq!(
        store.get_invocation(&theirs.id).await.unwrap(),
        Some(theirs)
    );
    assert_eq!(store.read_logs(&logs(&other)).await.unwrap().len(), 1);
}

pub async fn component_hashes_are_distinct(store: &dyn Store) {
    assert!(store.component_hashes().await.unwrap().is_empty());
    let ns = Name::default_namespace();
    for (function, sha) in [("one", "a"), ("one", "b"), ("two", "a"), ("two", "a")] {
        store
            .add_version(&ns, &name(function), new_version(sha))
            .await
            .unwrap();
    }
    let mut hashes = store.component_hashes().await.unwrap();
    hashes.sort();
    assert_eq!(hashes, ["a".repeat(64), "b".repeat(64)]);
}

pub async fn invocations_list_newest_first_in_pages(store: &dyn Store) {
    let (ns, function) = default_function("hello");
    let (_, other) = default_function("other");
    store
        .add_version(&ns, &function, new_version("a"))
        .await
        .unwrap();
    store
        .add_version(&ns, &other, new_version("a"))
        .await
        .unwrap();

    let mut failed = record(&function, 3);
    failed.status = InvocationStatus::Timeout;
    failed.http_status = None;
    failed.cold = true;
    failed.error = Some("deadline exceeded".to_string());
    failed.duration_us = u64::try_from(i64::MAX).unwrap();
    let records = [
        record(&function, 1),
        record(&function, 2),
        failed.clone(),
        record(&function, 4),
        record(&other, 5),
    ];
    store.record_invocations(&records, &[]).await.unwrap();
    // Writing a record again (a retried batch) changes nothing.
    store.record_invocations(&records[..1], &[]).await.unwrap();

    assert_eq!(
        store.get_invocation(&failed.id).await.unwrap(),
        Some(failed)
    );
    assert!(
        store
            .get_invocation(&invocation_id(99))
            .await
            .unwrap()
            .is_none()
    );

    let ids = |page: Vec<vireo_core::InvocationRecord>| {
        page.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    let all = store
        .list_invocations(&invocations(&function, None, 10))
        .await
        .unwrap();
    assert_eq!(ids(all), [4, 3, 2, 1].map(invocation_id));
    let first = store
        .list_invocations(&invocations(&function, None, 2))
        .await
        .unwrap();
    assert_eq!(ids(first), [4, 3].map(invocation_id));
    let second = store
        .list_invocations(&invocations(&function, Some(3), 2))
        .await
        .unwrap();
    assert_eq!(ids(second), [2, 1].map(invocation_id));
    assert!(
        store
            .list_invocations(&invocations(&function, Some(1), 2))
            .await
            .unwrap()
            .is_empty()
    );

    // Pages hold at most 1000 records whatever the limit asks for.
    let many: Vec<_> = (100..1101).map(|n| record(&function, n)).collect();
    store.record_invocations(&many, &[]).await.unwrap();
    let page = store
        .list_invocations(&invocations(&function, None, 5000))
        .await
        .unwrap();
    assert_eq!(page.len(), 1000);
    assert_eq!(page[0].id, invocation_id(1100));
}

/// Records and logs of a function deleted while they were queued must not resurrect it.
pub async fn invocations_of_missing_functions_are_skipped(store: &dyn Store) {
    let (ns, function) = default_function("hello");
    let (_, ghost) = default_function("ghost");
    store
        .add_version(&ns, &function, new_version("a"))
        .await
        .unwrap();
    let (kept, skipped) = (record(&function, 1), record(&ghost, 2));
    store
        .record_invocations(
            &[kept.clone(), skipped.clone()],
            &[log(&kept, 1, "kept"), log(&skipped, 2, "lost")],
        )
        .await
        .unwrap();
    assert_eq!(store.get_invocation(&kept.id).await.unwrap(), Some(kept));
    assert!(store.get_invocation(&skipped.id).await.unwrap().is_none());
    store.create_function(&ns, &ghost).await.unwrap();
    assert!(store.read_logs(&logs(&ghost)).await.unwrap().is_empty());
}

pub async fn logs_read_oldest_first_with_filters(store: &dyn Store) {
    let (ns, function) = default_function("hello");
    let (_, other) = default_function("other");
    store
        .add_version(&ns, &function, new_version("a"))
        .await
        .unwrap();
    store
        .add_version(&ns, &other, new_version("a"))
        .await
        .unwrap();
    let (first, second, elsewhere) = (
        record(&function, 1),
        record(&function, 2),
        record(&other, 3),
    );
    let mut stderr = log(&second, 20, "b1");
    stderr.stream = LogStream::Stderr;
    let lines = [
        log(&first, 10, "a1"),
        stderr,
        log(&elsewhere, 15, "x1"),
        log(&first, 30, "a2"),
        log(&second, 40, "b2"),
    ];
    store
        .record_invocations(&[first.clone(), second, elsewhere], &lines)
        .await
        .unwrap();

    let text =
        |read: &[vireo_core::LogLine]| read.iter().map(|l| l.line.clone()).collect::<Vec<_>>();
    let all = store.read_logs(&logs(&function)).await.unwrap();
    assert_eq!(text(&all), ["a1", "b1", "a2", "b2"]);
    assert!(
        all.windows(2).all(|pair| pair[0].seq < pair[1].seq),
        "seq must increase: {all:?}"
    );
    assert_eq!(all[1].stream, LogStream::Stderr);
    assert_eq!(
        (all[0].invocation_id.clone(), all[0].at_us, all[0].version),
        (first.id.clone(), 10, 1)
    );

    let only_first = LogQuery {
        invocation: Some(first.id.clone()),
        ..logs(&function)
    };
    assert_eq!(
        text(&store.read_logs(&only_first).await.unwrap()),
        ["a1", "a2"]
    );
    let since = LogQuery {
        since_us: Some(30),
        ..logs(&function)
    };
    assert_eq!(text(&store.read_logs(&since).await.unwrap()), ["a2", "b2"]);
    let after = LogQuery {
        after_seq: Some(all[1].seq),
        ..logs(&function)
    };
    assert_eq!(text(&store.read_logs(&after).await.unwrap()), ["a2", "b2"]);
    let limited = LogQuery {
        limit: 3,
        ..logs(&function)
    };
    assert_eq!(
        text(&store.read_logs(&limited).await.unwrap()),
        ["a1", "b1", "a2"]
    );
    let combined = LogQuery {
        invocation: Some(first.id),
        since_us: Some(5),
        after_seq: Some(all[0].seq),
        ..logs(&function)
    };
    assert_eq!(text(&store.read_logs(&combined).await.unwrap()), ["a2"]);
    assert_eq!(text(&store.read_logs(&logs(&other)).await.unwrap()), ["x1"]);
}

pub async fn usage_sums_records_per_group_and_retries_add_up(store: &dyn Store) {
    let (namespace, hello) = default_function("hello");
    let other = name("other");
    for function in [&hello, &other] {
        store
            .add_version(&namespace, function, new_version("ab"))
            .await
            .unwrap();
    }
    let mut first = record(&hello, 1);
    first.billed_ms = 3;
    let second = record(&hello, 2);
    let mut elsewhere = record(&other, 3);
    // A day later (the records start at 1 s after the epoch).
    elsewhere.started_at_us += 86_400_000_000;
    store
        .record_invocations(&[first.clone(), second, elsewhere], &[])
        .await
        .unwrap();
    // The retried attempt of invocation 1 adds its run to the same record.
    store.record_invocations(&[first], &[]).await.unwrap();
    let stored = store
        .get_invocation(&invocation_id(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.executions, stored.billed_ms), (2, 6));
    assert_eq!((stored.request_bytes, stored.response_bytes), (20, 40));

    let query = |group_by, function: Option<&Name>| vireo_core::UsageQuery {
        namespace: namespace.clone(),
        function: function.cloned(),
        from_us: 0,
        to_us: i64::MAX,
        group_by,
    };
    let by_function = store
        .usage(&query(vireo_core::UsageGrouping::Function, None))
        .await
        .unwrap();
    assert_eq!(by_function.len(), 2);
    assert_eq!(by_function[0].key, "hello");
    assert_eq!(
        (
            by_function[0].requests,
            by_function[0].billed_ms,
            by_function[0].mib_ms
        ),
        (3, 7, 7 * 128)
    );
    let by_day = store
        .usage(&query(vireo_core::UsageGrouping::Day, None))
        .await
        .unwrap();
    let days: Vec<&str> = by_day.iter().map(|row| row.key.as_str()).collect();
    assert_eq!(days, ["1970-01-01", "1970-01-02"]);
    let only_other = store
        .usage(&query(vireo_core::UsageGrouping::Hour, Some(&other)))
        .await
        .unwrap();
    assert_eq!(only_other.len(), 1);
    assert_eq!(only_other[0].key, "1970-01-02T00");
}

pub async fn retention_deletes_by_age_and_keeps_the_newest_logs_within_the_size(store: &dyn Store) {
    let (namespace, function) = default_function("hello");
    store
        .add_version(&namespace, &function, new_version("ab"))
        .await
        .unwrap();
    let (first, second) = (record(&function, 1), record(&function, 2));
    let lines = [
        log(&first, 100, "old line"),
        log(&second, 10_000, "0123456789"),
        log(&second, 10_001, "0123456789"),
        log(&second, 10_002, "0123456789"),
    ];
    store
        .record_invocations(&[first, second], &lines)
        .await
        .unwrap();
    let keep_everything = vireo_core::Retention {
        logs_before_us: 0,
        records_before_us: 0,
        max_log_bytes: u64::MAX,
    };
    let by_age = store
        .apply_retention(&vireo_core::Retention {
            logs_before_us: 1000,
            ..keep_everything
        })
        .await
        .unwrap();
    assert_eq!(by_age.log_lines_deleted, 1);
    let by_size = store
        .apply_retention(&vireo_core::Retention {
            max_log_bytes: 15,
            ..keep_everything
        })
        .await
        .unwrap();
    assert_eq!(by_size.log_lines_deleted, 2);
    let left = store.read_logs(&logs(&function)).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].at_us, 10_002, "the newest line stays");

    let records = store
        .apply_retention(&vireo_core::Retention {
            records_before_us: 1_000_002,
            ..keep_everything
        })
        .await
        .unwrap();
    assert_eq!(records.records_deleted, 1);
    assert!(
        store
            .get_invocation(&invocation_id(1))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_invocation(&invocation_id(2))
            .await
            .unwrap()
            .is_some()
    );
}
