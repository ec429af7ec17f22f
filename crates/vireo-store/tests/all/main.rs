//! The crate's one integration-test binary: the store conformance suites (functions, queue,
//! schedules, secrets) run against SQLite, the blob store and the record writer.

mod batch;
mod blobs;
mod conformance;
mod queue_conformance;
mod secrets_conformance;
mod support;
mod tenancy_conformance;

/// One `#[tokio::test]` per conformance case of `$suite`, each against a fresh SQLite file.
macro_rules! sqlite_conformance {
    ($tests:ident => $suite:ident: $($case:ident),* $(,)?) => {
        mod $tests {
            $(
                #[tokio::test]
                async fn $case() {
                    let (_dir, store) = crate::support::sqlite_store().await;
                    crate::$suite::$case(&store).await;
                }
            )*
        }
    };
}

sqlite_conformance!(sqlite_conformance => conformance:
    versions_number_from_one,
    latest_follows_the_newest_version,
    aliases_set_resolve_and_delete,
    create_function_refuses_duplicates,
    unknown_namespace_is_reported_everywhere,
    unknown_function_is_reported_everywhere,
    delete_function_cascades,
    component_hashes_are_distinct,
    invocations_list_newest_first_in_pages,
    invocations_of_missing_functions_are_skipped,
    logs_read_oldest_first_with_filters,
    usage_sums_records_per_group_and_retries_add_up,
    retention_deletes_by_age_and_keeps_the_newest_logs_within_the_size,
);

sqlite_conformance!(sqlite_queue_conformance => queue_conformance:
    enqueue_claim_settle_and_redrive,
    idempotency_keys_return_the_first_invocation,
    namespace_quota_counts_pending_invocations,
    one_cycle_settles_frees_quota_accepts_and_claims_what_it_accepted,
    expired_leases_are_reclaimed_and_stale_results_ignored,
    only_attempts_that_began_count,
    missing_functions_take_nothing_and_deletion_clears_the_queue,
    retry_policies_default_and_round_trip,
    schedules_fire_once_per_slot,
);

sqlite_conformance!(sqlite_tenancy_conformance => tenancy_conformance:
    namespaces_are_created_listed_changed_and_deleted_when_empty,
    max_functions_refuses_only_new_functions,
    keys_round_trip_and_revoke_once,
    deleting_a_namespace_revokes_its_keys,
    max_queued_overrides_the_server_default,
);

sqlite_conformance!(sqlite_secrets_conformance => secrets_conformance:
    secrets_are_created_replaced_listed_and_deleted,
    secrets_of_unknown_namespaces_are_reported,
    a_sample_shows_the_newest_secrets_of_every_namespace,
);

#[tokio::test]
async fn sqlite_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vireo.db");
    let store = vireo_store::SqliteStore::open(&path).await.unwrap();
    let (namespace, function) = support::default_function("hello");
    vireo_core::Store::add_version(&store, &namespace, &function, support::new_version("aa"))
        .await
        .unwrap();
    store.close().await;

    let store = vireo_store::SqliteStore::open(&path).await.unwrap();
    let info = vireo_core::Store::get_function(&store, &namespace, &function)
        .await
        .unwrap();
    assert_eq!(info.latest_version, Some(1));
}
