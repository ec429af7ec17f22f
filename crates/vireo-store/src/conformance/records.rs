//! The records: invocation records and log lines, usage summed from them, and retention.

use vireo_core::{InvocationMatch, InvocationStatus, LogQuery, LogStream, Name};

use super::support::{
    AT, add_version, default_function, invocation_id, invocations, log, logs, name, record,
};
use crate::Stores;

pub(super) async fn invocations_list_newest_first_in_pages(stores: &Stores) {
    let (ns, function) = default_function("hello");
    let (_, other) = default_function("other");
    add_version(stores, &ns, &function, "a").await;
    add_version(stores, &ns, &other, "a").await;

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
    stores
        .records
        .record_invocations(&records, &[])
        .await
        .unwrap();
    // Writing a record again (a retried batch) changes nothing.
    stores
        .records
        .record_invocations(&records[..1], &[])
        .await
        .unwrap();

    assert_eq!(
        stores.records.get_invocation(&failed.id).await.unwrap(),
        Some(failed)
    );
    assert!(
        stores
            .records
            .get_invocation(&invocation_id(99))
            .await
            .unwrap()
            .is_none()
    );

    let ids = |page: Vec<vireo_core::InvocationRecord>| {
        page.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    let all = stores
        .records
        .list_invocations(&invocations(&function, None, 10))
        .await
        .unwrap();
    assert_eq!(ids(all), [4, 3, 2, 1].map(invocation_id));
    let first = stores
        .records
        .list_invocations(&invocations(&function, None, 2))
        .await
        .unwrap();
    assert_eq!(ids(first), [4, 3].map(invocation_id));
    let second = stores
        .records
        .list_invocations(&invocations(&function, Some(3), 2))
        .await
        .unwrap();
    assert_eq!(ids(second), [2, 1].map(invocation_id));
    assert!(
        stores
            .records
            .list_invocations(&invocations(&function, Some(1), 2))
            .await
            .unwrap()
            .is_empty()
    );

    // Pages hold at most 1000 records whatever the limit asks for.
    let many: Vec<_> = (100..1101).map(|n| record(&function, n)).collect();
    stores.records.record_invocations(&many, &[]).await.unwrap();
    let page = stores
        .records
        .list_invocations(&invocations(&function, None, 5000))
        .await
        .unwrap();
    assert_eq!(page.len(), 1000);
    assert_eq!(page[0].id, invocation_id(1100));
}

/// Records and logs of a function deleted while they were queued must not resurrect it.
pub(super) async fn invocations_of_missing_functions_are_skipped(stores: &Stores) {
    let (ns, function) = default_function("hello");
    let (_, ghost) = default_function("ghost");
    add_version(stores, &ns, &function, "a").await;
    let (kept, skipped) = (record(&function, 1), record(&ghost, 2));
    stores
        .records
        .record_invocations(
            &[kept.clone(), skipped.clone()],
            &[log(&kept, 1, "kept"), log(&skipped, 2, "lost")],
        )
        .await
        .unwrap();
    assert_eq!(
        stores.records.get_invocation(&kept.id).await.unwrap(),
        Some(kept)
    );
    assert!(
        stores
            .records
            .get_invocation(&skipped.id)
            .await
            .unwrap()
            .is_none()
    );
    stores
        .catalog
        .create_function(&ns, &ghost, AT)
        .await
        .unwrap();
    assert!(
        stores
            .records
            .read_logs(&logs(&ghost))
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn logs_read_oldest_first_with_filters(stores: &Stores) {
    let (ns, function) = default_function("hello");
    let (_, other) = default_function("other");
    add_version(stores, &ns, &function, "a").await;
    add_version(stores, &ns, &other, "a").await;
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
    stores
        .records
        .record_invocations(&[first.clone(), second, elsewhere], &lines)
        .await
        .unwrap();

    let text =
        |read: &[vireo_core::LogLine]| read.iter().map(|l| l.line.clone()).collect::<Vec<_>>();
    let all = stores.records.read_logs(&logs(&function)).await.unwrap();
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
        invocation: Some(InvocationMatch::Id(first.id.clone())),
        ..logs(&function)
    };
    assert_eq!(
        text(&stores.records.read_logs(&only_first).await.unwrap()),
        ["a1", "a2"]
    );
    let id = first.id.as_str();
    let by_its_end = LogQuery {
        invocation: InvocationMatch::parse(&id[id.len() - InvocationMatch::SHORTEST_END..]),
        ..logs(&function)
    };
    assert_eq!(
        text(&stores.records.read_logs(&by_its_end).await.unwrap()),
        ["a1", "a2"],
        "the end of an id `vireo logs` shows finds its lines"
    );
    let since = LogQuery {
        since_us: Some(30),
        ..logs(&function)
    };
    assert_eq!(
        text(&stores.records.read_logs(&since).await.unwrap()),
        ["a2", "b2"]
    );
    let after = LogQuery {
        after_seq: Some(all[1].seq),
        ..logs(&function)
    };
    assert_eq!(
        text(&stores.records.read_logs(&after).await.unwrap()),
        ["a2", "b2"]
    );
    let limited = LogQuery {
        limit: 3,
        ..logs(&function)
    };
    assert_eq!(
        text(&stores.records.read_logs(&limited).await.unwrap()),
        ["a1", "b1", "a2"]
    );
    // The last lines instead, as `tail` shows them: still oldest first.
    let tail = LogQuery {
        limit: 3,
        newest: true,
        ..logs(&function)
    };
    assert_eq!(
        text(&stores.records.read_logs(&tail).await.unwrap()),
        ["b1", "a2", "b2"]
    );
    let combined = LogQuery {
        invocation: Some(InvocationMatch::Id(first.id)),
        since_us: Some(5),
        after_seq: Some(all[0].seq),
        ..logs(&function)
    };
    assert_eq!(
        text(&stores.records.read_logs(&combined).await.unwrap()),
        ["a2"]
    );
    assert_eq!(
        text(&stores.records.read_logs(&logs(&other)).await.unwrap()),
        ["x1"]
    );
}

pub(super) async fn usage_sums_records_per_group_and_retries_add_up(stores: &Stores) {
    let (namespace, hello) = default_function("hello");
    let other = name("other");
    for function in [&hello, &other] {
        add_version(stores, &namespace, function, "ab").await;
    }
    let mut first = record(&hello, 1);
    first.billed_ms = 3;
    let second = record(&hello, 2);
    let mut elsewhere = record(&other, 3);
    // A day later (the records start at 1 s after the epoch).
    elsewhere.started_at_us += 86_400_000_000;
    stores
        .records
        .record_invocations(&[first.clone(), second, elsewhere], &[])
        .await
        .unwrap();
    // The retried attempt of invocation 1 adds its run to the same record.
    stores
        .records
        .record_invocations(&[first], &[])
        .await
        .unwrap();
    let stored = stores
        .records
        .get_invocation(&invocation_id(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.executions, stored.billed_ms), (2, 6));
    assert_eq!((stored.request_bytes, stored.response_bytes), (20, 40));
    assert_eq!(
        (stored.kv_reads, stored.kv_writes, stored.kv_bytes),
        (6, 4, 100),
        "key-value operations add up over attempts"
    );

    let query = |group_by, function: Option<&Name>| vireo_core::UsageQuery {
        namespace: namespace.clone(),
        function: function.cloned(),
        from_us: 0,
        to_us: i64::MAX,
        group_by,
    };
    let by_function = stores
        .records
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
    assert_eq!(
        (
            by_function[0].kv_reads,
            by_function[0].kv_writes,
            by_function[0].kv_bytes
        ),
        (9, 6, 150)
    );
    let mut later = record(&hello, 4);
    later.version = 2;
    stores
        .records
        .record_invocations(&[later], &[])
        .await
        .unwrap();
    let by_version = stores
        .records
        .usage(&query(vireo_core::UsageGrouping::Version, None))
        .await
        .unwrap();
    let versions: Vec<(&str, u64)> = by_version
        .iter()
        .map(|row| (row.key.as_str(), row.requests))
        .collect();
    assert_eq!(versions, [("hello@1", 3), ("hello@2", 1), ("other@1", 1)]);
    let by_day = stores
        .records
        .usage(&query(vireo_core::UsageGrouping::Day, None))
        .await
        .unwrap();
    let days: Vec<&str> = by_day.iter().map(|row| row.key.as_str()).collect();
    assert_eq!(days, ["1970-01-01", "1970-01-02"]);
    let only_other = stores
        .records
        .usage(&query(vireo_core::UsageGrouping::Hour, Some(&other)))
        .await
        .unwrap();
    assert_eq!(only_other.len(), 1);
    assert_eq!(only_other[0].key, "1970-01-02T00");
}

pub(super) async fn retention_deletes_by_age_and_keeps_the_newest_logs_within_the_size(
    stores: &Stores,
) {
    let (namespace, function) = default_function("hello");
    add_version(stores, &namespace, &function, "ab").await;
    let (first, second) = (record(&function, 1), record(&function, 2));
    let lines = [
        log(&first, 100, "old line"),
        log(&second, 10_000, "0123456789"),
        log(&second, 10_001, "0123456789"),
        log(&second, 10_002, "0123456789"),
    ];
    stores
        .records
        .record_invocations(&[first, second], &lines)
        .await
        .unwrap();
    let keep_everything = vireo_core::Retention {
        logs_before_us: 0,
        records_before_us: 0,
        max_log_bytes: u64::MAX,
    };
    let by_age = stores
        .records
        .apply_retention(&vireo_core::Retention {
            logs_before_us: 1000,
            ..keep_everything
        })
        .await
        .unwrap();
    assert_eq!(by_age.log_lines_deleted, 1);
    let by_size = stores
        .records
        .apply_retention(&vireo_core::Retention {
            max_log_bytes: 15,
            ..keep_everything
        })
        .await
        .unwrap();
    assert_eq!(by_size.log_lines_deleted, 2);
    let left = stores.records.read_logs(&logs(&function)).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].at_us, 10_002, "the newest line stays");

    let records = stores
        .records
        .apply_retention(&vireo_core::Retention {
            records_before_us: 1_000_002,
            ..keep_everything
        })
        .await
        .unwrap();
    assert_eq!(records.records_deleted, 1);
    assert!(
        stores
            .records
            .get_invocation(&invocation_id(1))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        stores
            .records
            .get_invocation(&invocation_id(2))
            .await
            .unwrap()
            .is_some()
    );
}

/// A batch may hold several attempts of one async invocation (retried quickly, written
/// together): they add up in one record, and the last one's outcome stays.
pub(super) async fn attempts_of_one_invocation_in_one_batch_add_up(stores: &Stores) {
    let (namespace, function) = default_function("retried");
    add_version(stores, &namespace, &function, "ab").await;
    let mut failed = record(&function, 1);
    failed.status = InvocationStatus::Error;
    failed.http_status = None;
    let mut timed_out = record(&function, 1);
    timed_out.status = InvocationStatus::Timeout;
    let succeeded = record(&function, 1);
    let other = record(&function, 2);
    stores
        .records
        .record_invocations(&[failed, other, timed_out, succeeded], &[])
        .await
        .unwrap();
    let stored = stores
        .records
        .get_invocation(&invocation_id(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.status,
        InvocationStatus::Ok,
        "the last attempt's outcome"
    );
    assert_eq!(stored.http_status, Some(200));
    assert_eq!((stored.executions, stored.request_bytes), (3, 30));
    assert!(
        stores
            .records
            .get_invocation(&invocation_id(2))
            .await
            .unwrap()
            .is_some()
    );
}
