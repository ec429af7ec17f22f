//! The store conformance suite: the behaviour every backend must have, split by concern. A
//! backend runs all of it with one line in its tests, `vireo_store::conformance_suite!(F)`,
//! where `F` implements [`Fixture`]; that expands to one `#[tokio::test]` per case (the test
//! crate depends on tokio).
//!
//! Every case is listed once, in `__conformance_cases!`; the library builds a runner for each
//! case from that list, and the tests come from the same list. A case missing from it is never
//! called, which `dead_code` (denied here) turns into a compile error: a case cannot be
//! written and silently not run.
//!
//! Cases take the [`Stores`] of a fresh store (only the `default` namespace exists), except
//! the `cluster` ones, which take the fixture and open a second node on the same store.
#![deny(dead_code)]

mod catalog;
mod changes;
mod cluster;
mod components;
mod http_routes;
pub mod key_value;
mod master_key;
mod nodes;
mod objects;
mod queue;
mod records;
mod schedules;
mod secrets;
mod sources;
pub mod support;
mod tenants;

use crate::Stores;

/// How a backend's tests give the suite stores.
#[async_trait::async_trait]
pub trait Fixture: Send + Sync + 'static {
    /// A fresh, empty store (only the `default` namespace), opened as one node would.
    async fn fresh() -> Self
    where
        Self: Sized;

    /// The first node's handles on the store.
    fn stores(&self) -> &Stores;

    /// Handles on the same store as a second node opens them: its own connections, the same
    /// data and the same change feed.
    async fn second_node(&self) -> Stores;
}

/// One `#[tokio::test]` per conformance case, each on a fresh store of the fixture `$fixture`.
#[macro_export]
macro_rules! conformance_suite {
    ($fixture:ty) => {
        $crate::__conformance_cases!(__conformance_tests $fixture);
    };
}

/// The one list of cases, by concern; each concern is a module of this suite. It hands the
/// list to `$crate::$expand!`, with `$args` in front.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($expand:ident $($args:tt)*) => {
        $crate::$expand! {
            ($($args)*)
            catalog: [
                versions_number_from_one,
                latest_follows_the_newest_version,
                aliases_set_resolve_and_delete,
                split_aliases_keep_their_weights,
                create_function_refuses_duplicates,
                unknown_namespace_is_reported_everywhere,
                unknown_function_is_reported_everywhere,
                delete_function_cascades,
                component_hashes_are_distinct,
                writes_are_stamped_with_the_time_they_are_given,
            ],
            records: [
                invocations_list_newest_first_in_pages,
                invocations_of_missing_functions_are_skipped,
                logs_read_oldest_first_with_filters,
                usage_sums_records_per_group_and_retries_add_up,
                retention_deletes_by_age_and_keeps_the_newest_logs_within_the_size,
                attempts_of_one_invocation_in_one_batch_add_up,
            ],
            queue: [
                enqueue_claim_settle_and_redrive,
                idempotency_keys_return_the_first_invocation,
                namespace_quota_counts_pending_invocations,
                one_cycle_settles_frees_quota_accepts_and_claims_what_it_accepted,
                expired_leases_are_reclaimed_and_stale_results_ignored,
                only_attempts_that_began_count,
                missing_functions_take_nothing_and_deletion_clears_the_queue,
                retry_policies_default_and_round_trip,
            ],
            schedules: [
                schedules_fire_once_per_slot,
            ],
            sources: [
                sources_round_trip_pause_and_go_with_their_function,
            ],
            http_routes: [
                routes_are_added_listed_refused_on_conflict_and_removed,
                hosts_are_routed_only_by_the_namespace_that_claims_them,
            ],
            tenants: [
                namespaces_are_created_listed_changed_and_deleted_when_empty,
                max_functions_refuses_only_new_functions,
                keys_round_trip_and_revoke_once,
                deleting_a_namespace_revokes_its_keys,
                max_queued_overrides_the_server_default,
                namespace_writes_are_stamped_with_the_time_they_are_given,
            ],
            secrets: [
                secrets_are_created_replaced_listed_and_deleted,
                secrets_of_unknown_namespaces_are_reported,
                a_sample_shows_the_newest_secrets_of_every_namespace,
            ],
            key_value: [
                keys_are_set_read_checked_and_deleted,
                stores_are_created_listed_and_deleted_with_their_keys,
                unknown_stores_and_namespaces_are_reported_by_every_operation,
                keys_list_in_byte_order_by_prefix_in_pages,
                a_listing_pages_each_lasting_key_once_under_concurrent_writes,
                concurrent_increments_never_lose_one,
                writes_at_once_succeed_or_fail_each_on_its_own,
                increments_read_counters_as_spin_stores_them,
                of_two_racing_swaps_exactly_one_wins,
                a_swap_fails_after_any_write_even_back_to_the_same_value,
                batches_read_and_write_many_keys_at_once,
                a_batch_of_thousands_of_keys_is_written_whole,
                store_totals_count_keys_and_bytes_exactly,
                the_namespace_quota_refuses_growth_and_deleting_frees_it,
                namespaces_never_see_each_others_keys,
                deleting_a_namespace_deletes_its_stores_and_keys,
            ],
            objects: [
                buckets_are_created_listed_and_deleted_when_empty,
                objects_round_trip_whole_and_by_range_with_their_sha256,
                listings_page_by_prefix_delimiter_and_cursor,
                limits_and_the_quota_refuse_and_store_nothing,
                other_namespaces_and_unknown_buckets_are_unreachable,
                matching_changes_queue_one_invocation_each_with_the_write,
                a_full_queue_refuses_the_write_and_stores_nothing,
            ],
            changes: [
                published_changes_reach_every_subscriber_in_order,
                writes_publish_what_they_change,
            ],
            components: [
                components_round_trip_once_per_hash,
                components_refuse_names_that_are_not_a_sha256,
            ],
            nodes: [
                heartbeats_list_live_nodes_and_forget_silent_ones,
                live_nodes_hold_distinct_slots_and_silent_ones_give_theirs_up,
            ],
            master_key: [
                the_first_master_key_fingerprint_stays,
            ],
            ;
            cluster: [
                what_one_node_writes_the_other_reads,
                a_closed_store_reopens_with_its_data,
                a_claim_through_one_node_is_not_claimable_through_the_other,
                an_expired_lease_reclaimed_by_one_node_ignores_the_other_nodes_late_result,
                a_live_lease_keeps_the_invocation_from_the_other_node_an_expired_one_does_not,
                a_queue_quota_holds_across_nodes_accepting_at_once,
                an_idempotency_key_used_through_one_node_is_a_duplicate_through_the_other,
                a_slot_advanced_by_one_node_is_not_advanced_by_the_other,
                racing_schedulers_advance_each_slot_exactly_once,
                changes_published_on_one_node_reach_the_other,
                a_key_revoked_on_one_node_is_refused_by_the_other_once_it_hears,
                writes_through_one_node_reach_the_other_nodes_subscribers,
                a_component_stored_through_one_node_is_read_through_the_other,
                each_node_sees_the_others_heartbeat,
                nodes_starting_at_once_get_distinct_slots,
                a_master_key_recorded_through_one_node_binds_the_other,
                increments_through_two_nodes_never_lose_one,
                of_two_swaps_through_two_nodes_exactly_one_wins,
                of_two_overlapping_host_claims_through_two_nodes_exactly_one_wins,
            ],
        }
    };
}

/// The runner of every case: opens a fresh store of a fixture and runs the case on it.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_runners {
    (
        ()
        $($concern:ident: [$($case:ident),* $(,)?],)*
        ;
        cluster: [$($cluster_case:ident),* $(,)?],
    ) => {
        $(
            pub mod $concern {
                $(
                    pub async fn $case<F: $crate::conformance::Fixture>() {
                        let fixture = F::fresh().await;
                        super::super::$concern::$case(fixture.stores()).await;
                    }
                )*
            }
        )*
        pub mod cluster {
            $(
                pub async fn $cluster_case<F: $crate::conformance::Fixture>() {
                    let fixture = F::fresh().await;
                    super::super::cluster::$cluster_case(&fixture).await;
                }
            )*
        }
    };
}

/// The tests of a fixture: one per case, in a module per concern.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (
        ($fixture:ty)
        $($concern:ident: [$($case:ident),* $(,)?],)*
        ;
        cluster: [$($cluster_case:ident),* $(,)?],
    ) => {
        $(
            mod $concern {
                #[allow(unused_imports, reason = "the fixture may be named from the parent")]
                use super::*;
                $(
                    #[tokio::test]
                    async fn $case() {
                        $crate::conformance::runners::$concern::$case::<$fixture>().await;
                    }
                )*
            }
        )*
        mod cluster {
            #[allow(unused_imports, reason = "the fixture may be named from the parent")]
            use super::*;
            $(
                #[tokio::test]
                async fn $cluster_case() {
                    $crate::conformance::runners::cluster::$cluster_case::<$fixture>().await;
                }
            )*
        }
    };
}

/// One runner per listed case; not for direct use.
#[doc(hidden)]
pub mod runners {
    crate::__conformance_cases!(__conformance_runners);
}
