//! The backend conformance suite (behind the `testing` feature).
//!
//! Every backend proves it has Quern's semantics by running this one suite from its
//! integration tests:
//!
//! ```ignore
//! // tests/it/conformance.rs of a backend crate
//! async fn make(clock: quern::SharedClock) -> std::sync::Arc<dyn quern::Backend> {
//!     // A fresh, isolated store (temp file, random key prefix) that reads time from
//!     // `clock`; whatever must outlive the factory goes to `quern::testing::hold`.
//!     let dir = tempfile::tempdir().unwrap();
//!     let backend = open_store(dir.path(), clock).await;
//!     quern::testing::hold(dir);
//!     std::sync::Arc::new(backend)
//! }
//! quern::conformance_suite!(make);
//! ```
//!
//! [`conformance_suite!`](crate::conformance_suite) expands to one `#[test]` per case, named
//! `<area>::<case>` (so `cargo test conformance::lease::` runs one area). Each test builds its
//! own tokio runtime (multi-threaded for the cases marked so), a
//! [`ManualClock`] at a fixed start, calls the factory with that clock and
//! runs the case with a [`Harness`].
//!
//! The factory must build a backend with the default [`Limits`](crate::model::Limits)
//! (16 MiB payloads): the payload cases check that limit. It may register a check of the
//! backend's own invariants to run after each case that passed ([`after_case`]; SQLite
//! compares its maintained queue counts with its rows).
//!
//! Rules for cases (STYLE.md §1, §2, §9):
//! - One file per area; each case is `pub async fn name(h: Harness)` and is listed once, in
//!   [`__quern_cases!`](crate::__quern_cases).
//! - Time moves only through the manual clock ([`Harness::advance`]); no case sleeps.
//! - A case that needs an optional ability checks [`Harness::lacks`], which prints
//!   `SKIP <case>: backend lacks <capability>`. Never branch on the backend's name.
//! - Assertions say what was expected and what came back, and name the case.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::{Backend, ManualClock, SharedClock};

/// Asserts that a `Result` is an `Err` matching a pattern, printing the case name and what
/// came back otherwise.
macro_rules! expect_err {
    ($h:expr, $res:expr, $pat:pat $(if $guard:expr)?, $what:expr) => {
        match $res {
            Err($pat) $(if $guard)? => {}
            other => panic!(
                "{}: {}: expected Err({}), got {:?}",
                $h.case,
                $what,
                stringify!($pat),
                other
            ),
        }
    };
}

mod harness;

pub mod alerts;
pub mod batch;
pub mod cancel;
pub mod claim;
pub mod concurrency;
pub mod delete;
pub mod deps;
pub mod enqueue;
pub mod events;
pub mod fencing;
pub mod groups;
pub mod import;
pub mod leader;
pub mod lease;
pub mod limits;
pub mod list;
pub mod logs;
pub mod lost_workers;
pub mod orders;
pub mod pause;
pub mod payload;
pub mod priority;
pub mod prune;
pub mod queues;
pub mod rates;
pub mod reprioritize;
pub mod retention;
pub mod retention_bytes;
pub mod retry;
pub mod rollups;
pub mod scheduled;
pub mod scheduler;
pub mod schedules;
pub mod spawn;
pub mod stats;
pub mod transitions;
pub mod unique;
pub mod wait;
pub mod weights;
pub mod workers;
pub mod workflow;
pub mod workflow_bench;

pub use harness::*;

thread_local! {
    /// Values a factory asked to keep alive for the current case (see [`hold`]).
    static HELD: std::cell::RefCell<Vec<Box<dyn std::any::Any>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Keeps `value` alive until the current case has finished and its backend is gone: for
/// what a factory creates beside the backend, such as the temp dir holding a SQLite file or a
/// guard that deletes a Redis key prefix. Call it from the factory itself (it runs on the
/// case's thread).
pub fn hold<T: 'static>(value: T) {
    HELD.with(|h| h.borrow_mut().push(Box::new(value)));
}

/// A check run after a case that passed.
type AfterCase = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn Future<Output = ()>>>>;

thread_local! {
    /// Checks a factory registered for the current case (see [`after_case`]).
    static AFTER: std::cell::RefCell<Vec<AfterCase>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `check` when the current case has finished without failing, on the case's runtime
/// and before its backend is dropped: for a backend's own invariants that every case must
/// leave intact (SQLite compares its maintained queue counts with the rows). The check
/// fails the case by panicking. Call it from the factory itself (it runs on the case's
/// thread).
pub fn after_case<F, Fut>(check: F)
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    AFTER.with(|a| {
        a.borrow_mut().push(Box::new(move || {
            Box::pin(check()) as std::pin::Pin<Box<dyn Future<Output = ()>>>
        }))
    });
}

/// How long one case may run (real time) before it fails as hung. Generous: the concurrency
/// cases push tens of thousands of operations through a debug build.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs one case: builds a runtime with `threads` worker threads (1 = current-thread), a
/// manual clock at its fixed start, the backend from `make`, and drives `case` to the end.
/// Called by the tests that [`conformance_suite!`](crate::conformance_suite) generates.
pub fn run_case<M, MF, C, CF>(name: &'static str, threads: usize, make: M, case: C)
where
    M: FnOnce(SharedClock) -> MF,
    MF: Future<Output = Arc<dyn Backend>>,
    C: FnOnce(Harness) -> CF,
    CF: Future<Output = ()>,
{
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let rt = builder
        .enable_all()
        .build()
        .expect("conformance: cannot build a tokio runtime");
    // Checks left over from a case that failed on this thread are not this case's.
    AFTER.with(|a| a.borrow_mut().clear());
    rt.block_on(async move {
        let clock = ManualClock::at_fixed_start();
        let backend = make(clock.clone()).await;
        let h = Harness::new(name, backend, clock);
        if tokio::time::timeout(CASE_TIMEOUT, case(h)).await.is_err() {
            panic!("{name}: did not finish within {CASE_TIMEOUT:?} (hung?)");
        }
        for check in AFTER.with(|a| std::mem::take(&mut *a.borrow_mut())) {
            check().await;
        }
    });
    // Give backend threads (a SQLite writer, a Redis connection task) a moment to notice the
    // backend was dropped, without letting a stuck one hang the test binary.
    rt.shutdown_timeout(Duration::from_secs(10));
    // Only now, with the backend dropped, release what the factory held (delete temp dirs).
    drop(HELD.with(|h| std::mem::take(&mut *h.borrow_mut())));
}

/// The list of every case, by area, in one place. Adding a case touches one line here.
///
/// `#[threads(n)]` runs the case on a multi-threaded runtime with `n` workers (for cases that
/// race real tasks); the rest run on a current-thread runtime.
///
/// It calls back into another exported macro (`$cb`, a name in this crate) with the list
/// appended, so the same list produces the tests ([`conformance_suite!`](crate::conformance_suite))
/// and [`CASES`].
#[doc(hidden)]
#[macro_export]
macro_rules! __quern_cases {
    ($cb:ident ! ( $($args:tt)* )) => {
        $crate::$cb! { ( $($args)* )
            enqueue {
                new_job_is_queued_with_fields_as_given,
                future_run_at_is_scheduled,
                delay_counts_from_the_store,
                past_run_at_is_queued,
                pending_dependency_is_blocked,
                succeeded_dependency_is_queued,
                failed_dependency_is_skipped,
                unknown_dependency_is_refused,
                duplicate_id_is_refused,
                invalid_jobs_are_refused,
            }
            claim {
                claim_leases_the_job,
                started_at_is_reported_with_the_outcome,
                claim_respects_limit,
                one_claim_takes_ten_thousand_jobs,
                running_job_is_not_claimed_again,
                unknown_or_unlisted_queue_claims_nothing,
                blocked_and_scheduled_jobs_are_not_claimed,
                every_claim_gets_a_new_epoch,
            }
            priority {
                more_urgent_first,
                fifo_by_run_at_then_id,
                urgent_job_enqueued_later_jumps_ahead,
                claim_batch_takes_the_most_urgent,
                bounded_claim_takes_only_more_urgent_jobs,
            }
            weights {
                three_to_one_weights_split_three_to_one,
                empty_queue_does_not_starve_the_others,
                weight_zero_queue_is_never_claimed,
                all_weights_zero_claim_nothing,
                queue_named_twice_counts_once,
            }
            pause {
                paused_queue_is_not_claimed,
                unknown_queue_cannot_be_paused_or_resumed,
                paused_queue_is_skipped_in_multi_queue_claims,
                enqueue_into_paused_queue_stays_queued,
            }
            scheduled {
                claimable_exactly_at_run_at,
                due_job_takes_its_priority_place,
                retry_backoff_is_respected,
            }
            schedules {
                upsert_stores_and_get_reads_back,
                upsert_of_the_same_spec_changes_nothing,
                upsert_of_a_changed_spec_bumps_the_revision,
                invalid_spec_is_refused_and_stores_nothing,
                list_is_ordered_by_name,
                delete_removes_the_schedule_and_its_history,
                a_tick_fires_once,
                #[threads(4)] concurrent_fires_of_one_tick_store_one_job,
                fire_of_an_old_revision_is_stale,
                pause_stops_fires_and_resume_skips_the_paused_ticks,
                the_run_limit_ends_the_schedule,
                a_skipped_tick_is_recorded_without_a_job,
                a_manual_run_moves_nothing,
                a_held_unique_key_records_a_duplicate,
                history_is_newest_first_and_capped,
                bad_fires_are_refused_and_record_nothing,
            }
            retention {
                queue_retention_and_retry_are_stored,
                queue_retention_overrides_the_store_wide_one,
                queue_default_retry_comes_after_the_job_and_handler,
            }
            limits {
                settings_are_stored_and_patched,
                invalid_settings_change_nothing,
                the_concurrency_cap_holds_across_workers,
                the_rate_limit_admits_the_burst_then_one_per_interval,
                a_throttled_queue_does_not_hold_back_the_others,
                work_wait_sleeps_until_the_next_token,
            }
            groups {
                group_is_stored_and_validated,
                groups_are_served_round_robin,
                every_path_back_to_ready_keeps_its_group,
                the_group_cap_holds_across_workers,
            }
            rates {
                kind_and_group_rates_are_stored_and_validated,
                each_kind_pattern_has_its_own_bucket,
                kinds_with_quotes_backslashes_and_unicode_are_limited,
                work_wait_sees_kind_throttling,
                each_group_has_its_own_rate,
                rate_limited_holds_the_group,
                rate_limited_without_group_holds_the_kind,
            }
            orders {
                each_order_claims_in_its_order,
                weighted_random_follows_the_level_weights,
                aging_makes_old_low_and_batch_jobs_normal,
                aging_bounds_the_wait_of_a_low_job,
                order_settings_are_stored_and_validated,
                a_throttled_claim_says_when_the_next_admission_is,
            }
            scheduler {
                racing_schedulers_enqueue_one_job_per_tick,
                an_allow_tick_is_enqueued_ahead_and_claimable_at_the_tick,
                overlap_skip_skips_while_the_previous_run_is_live,
                overlap_cancel_previous_cancels_the_live_run,
                misfire_policies_after_an_outage,
                pause_and_remove_cancel_the_pending_tick,
                pause_cancels_every_tick_enqueued_ahead,
                trigger_runs_now_outside_the_schedule,
            }
            unique {
                #[threads(4)] concurrent_enqueues_make_one_job,
                duplicate_of_live_job_returns_it,
                key_without_window_frees_when_job_finishes,
                window_holds_after_success_until_it_passes,
                window_never_frees_an_unfinished_job,
                window_does_not_hold_after_failure,
                keys_are_per_queue,
                duplicate_within_one_batch,
            }
            batch {
                atomic_bad_queue_inserts_nothing,
                atomic_unknown_dependency_inserts_nothing,
                atomic_oversized_payload_inserts_nothing,
                atomic_forward_dependency_inserts_nothing,
                atomic_batch_across_queues_inserts_nothing,
                best_effort_stores_the_valid_ones,
                dependencies_within_a_batch,
                outcomes_in_input_order,
                refused_batch_leaves_no_phantom_queue,
                mixed_batch_stores_each_job_as_given,
            }
            import {
                jobs_in_every_state_read_back_verbatim,
                imported_queued_job_is_claimed,
                events_of_an_imported_job_carry_its_kind,
                imported_blocked_job_unblocks_when_its_dependency_completes,
                imported_blocked_job_is_skipped_when_its_dependency_dies,
                settled_blocked_job_is_released_on_import,
                imported_scheduled_job_becomes_due,
                running_job_is_imported_queued_with_its_attempt_counted,
                refuse_mode_writes_nothing_when_an_id_is_taken,
                skip_existing_never_overwrites,
                unknown_dependency_and_bad_jobs_are_refused,
                finished_job_with_a_pruned_dependency_is_imported,
                imported_unique_key_holds,
                paused_queue_is_imported_paused,
                workflow_records_and_their_jobs,
                schedules_read_back_with_their_history,
            }
            fencing {
                stale_token_changes_nothing,
                forged_epoch_is_refused,
                token_of_finished_job_is_refused,
                released_token_is_refused,
                stale_item_does_not_fail_the_batch,
            }
            lease {
                heartbeat_extends_the_lease,
                heartbeat_stores_progress_and_checkpoint,
                expired_lease_is_rescued_attempt_counted,
                rescue_of_last_attempt_is_dead_and_skips_dependents,
                rescue_respects_limit,
                checkpoint_returned_after_rescue,
                checkpoint_returned_after_retry,
            }
            lost_workers {
                lost_after_three_missed_heartbeats,
                lost_worker_leases_are_rescued_early,
                rescuer_rescues_lost_workers_and_spares_live_ones,
                lost_workers_are_forgotten_after_retention,
            }
            retry {
                retryable_failure_is_scheduled,
                retry_keeps_default_priority_and_attempts,
                out_of_attempts_goes_dead_with_history,
                retry_without_time_goes_dead,
                fatal_goes_dead,
                replay_by_id_resets_attempts_keeps_errors,
                replay_by_filter,
                replay_filter_takes_only_dead_jobs,
                retry_refuses_live_jobs,
                retry_unknown_id_is_not_found,
                retry_with_one_bad_id_changes_nothing,
            }
            deps {
                complete_unblocks_in_the_same_call,
                unblocked_job_with_future_run_at_is_scheduled,
                all_success_waits_for_every_dependency,
                all_success_skips_on_failure,
                all_done_runs_after_failure,
                any_success_runs_on_first_success,
                any_success_skips_when_none_succeed,
                skip_propagates_transitively_at_once,
                all_done_runs_after_skipped_dependency,
                replayed_dependency_counts_as_pending_again,
                cancel_skips_dependents,
                handler_cancel_skips_dependents,
                dependencies_across_queues,
                wide_join_keeps_its_dependencies,
            }
            cancel {
                cancel_queued,
                cancel_scheduled,
                cancel_blocked,
                cancel_running_revokes_the_lease,
                cancel_terminal_is_refused,
                cancel_unknown_is_not_found,
            }
            reprioritize {
                raised_queued_job_is_claimed_first,
                lowered_queued_job_is_claimed_last,
                scheduled_job_is_ready_with_its_new_priority,
                blocked_job_is_ready_with_its_new_priority,
                running_and_finished_jobs_are_refused,
                unknown_id_is_not_found,
                same_priority_is_fine,
            }
            transitions {
                snooze_does_not_count_an_attempt,
                handler_cancel_ends_cancelled,
                release_gives_back_without_counting,
                retry_cancelled_with_pending_dependency_is_blocked,
                retry_skipped_with_pending_dependency_is_blocked,
                retry_dead_with_pending_dependency_is_blocked,
                retry_cancelled_and_skipped_are_queued,
                retry_skipped_with_failed_dependency_is_refused,
                illegal_moves_change_nothing,
            }
            prune {
                prune_deletes_old_finished_jobs,
                prune_respects_limit,
                prune_never_deletes_live_jobs,
                prune_dry_run_counts_and_changes_nothing,
                result_is_stored,
                result_expires_and_is_pruned,
                jobs_own_result_ttl_is_stored,
            }
            logs {
                lines_read_back_in_order_after_a_cursor,
                oldest_lines_are_dropped_past_the_line_cap,
                oldest_lines_are_dropped_past_the_byte_cap,
                unknown_jobs_drop_lines_and_are_not_found,
                pruning_a_job_deletes_its_lines,
            }
            events {
                timeline_of_a_retried_job,
                stream_resumes_after_a_cursor_and_filters,
                operator_changes_record_the_actor,
                retention_drops_the_oldest,
                dependencies_release_and_rescue_are_recorded,
                derived_timeline_of_a_job_failed_twice_then_completed,
                audited_cancel_shows_its_actor,
            }
            stats {
                finished_jobs_since_the_cutoff_with_their_times,
                retries_count_and_a_retried_job_leaves_the_window,
            }
            alerts {
                put_is_compare_and_set,
                names_are_independent,
            }
            delete {
                deletes_finished_jobs_with_their_logs_and_keys,
                live_or_unknown_id_deletes_nothing,
                dry_run_counts_and_changes_nothing,
            }
            leader {
                lease_is_exclusive_until_it_expires,
                renew_and_release,
                names_are_independent,
            }
            workers {
                register_list_deregister,
                heartbeat_updates_last_seen,
                list_is_most_recent_first,
                re_register_replaces,
                heartbeat_of_unknown_worker_is_refused,
            }
            queues {
                counts_by_state,
                list_has_every_queue,
                unknown_queue_is_not_found,
                oldest_queued_at,
            }
            list {
                newest_first,
                filters,
                paging_by_before,
                paging_by_state,
            }
            concurrency {
                #[threads(2)] eight_claimers_claim_each_job_once,
                #[threads(2)] cancel_races_complete,
                #[threads(2)] rescue_races_late_completions,
                #[threads(2)] dependent_enqueued_while_dependency_completes,
            }
            payload {
                ten_mib_payload_round_trips,
                over_limit_payload_is_refused,
                over_limit_result_is_refused,
                over_limit_checkpoint_is_refused,
                msgpack_payload_round_trips,
            }
            wait {
                wait_returns_after_timeout,
                #[threads(2)] enqueue_wakes_a_waiter,
            }
            spawn {
                skip_ends_skipped_without_counting_the_attempt,
                skip_settles_dependents,
                spawn_blocks_the_parent_on_its_children,
                spawn_of_nothing_requeues_at_once,
                spawn_with_a_bad_child_changes_nothing,
                spawn_with_a_stale_token_changes_nothing,
                spawned_parent_forgets_its_old_dependencies,
                ten_thousand_children,
            }
            workflow {
                create_stores_the_record_and_its_jobs,
                create_is_all_or_nothing,
                unknown_workflow,
                update_is_compare_and_set,
                final_states_set_finished_at,
                counts_by_state,
                cancel_scopes,
                retry_reopens_failed_jobs,
                compensations_are_stored_with_the_update,
                list_newest_first_by_state,
                enqueued_jobs_join_their_workflow,
            }
            rollups {
                outcomes_are_counted_per_queue_and_minute,
                refused_outcomes_count_nothing,
            }
            retention_bytes {
                oldest_finished_go_until_within_the_budget,
                retry_and_delete_keep_the_total,
                pruner_applies_the_byte_budget_in_batches,
            }
        }
    };
}

/// Runs the whole conformance suite against a backend.
///
/// `$make` names an `async fn(quern::SharedClock) -> std::sync::Arc<dyn quern::Backend>` in
/// scope that returns a fresh, isolated store reading time from the given clock. Expands to a
/// module per area with one `#[test]` per case; only `quern` (with the `testing` feature) is
/// needed by the calling crate.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::__quern_cases!(__quern_emit_tests!($make));
    };
}

/// Expands the case list into tests (see [`conformance_suite!`](crate::conformance_suite)).
#[doc(hidden)]
#[macro_export]
macro_rules! __quern_emit_tests {
    ( ($make:path) $( $area:ident { $( $(#[threads($n:literal)])? $case:ident ),* $(,)? } )* ) => {
        $(
            mod $area {
                #[allow(unused_imports)]
                use super::*;
                $(
                    #[test]
                    fn $case() {
                        $crate::testing::run_case(
                            concat!(stringify!($area), "::", stringify!($case)),
                            $crate::__quern_threads!($($n)?),
                            $make,
                            $crate::testing::$area::$case,
                        );
                    }
                )*
            }
        )*
    };
}

/// Expands the case list into the names of [`CASES`] (and a reference to each case function,
/// so a listed case that does not exist fails to compile even without a backend).
#[doc(hidden)]
#[macro_export]
macro_rules! __quern_case_names {
    ( () $( $area:ident { $( $(#[threads($n:literal)])? $case:ident ),* $(,)? } )* ) => {
        {
            $( $( let _ = $crate::testing::$area::$case; )* )*
            &[ $( $( concat!(stringify!($area), "::", stringify!($case)) ),* ),* ]
        }
    };
}

/// Worker threads for a case: 1 (a current-thread runtime) unless `#[threads(n)]` says more.
#[doc(hidden)]
#[macro_export]
macro_rules! __quern_threads {
    () => {
        1
    };
    ($n:literal) => {
        $n
    };
}

/// Every case name (`area::case`), in list order.
pub const CASES: &[&str] = __quern_cases!(__quern_case_names!());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in CASES {
            assert!(seen.insert(*c), "case {c} is listed twice");
        }
        assert!(CASES.len() > 50);
    }
}
