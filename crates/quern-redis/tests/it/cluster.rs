//! Redis Cluster: a real 3-master cluster of our own (`redis-server --cluster-enabled yes`
//! on free ports, `redis-cli --cluster create`), the suite's core cases against it, a drain
//! across several queues (which must spread over the masters), then shutdown.

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use quern::backend::*;
use quern::{Backend, NewJob, SharedClock};
use quern_redis::RedisBackend;

use crate::common::random_prefix;
use crate::procs::{RedisProc, redis_server_available};

/// The cluster URL for the case factory (set once the cluster is up).
static CLUSTER_URL: OnceLock<String> = OnceLock::new();

async fn make_cluster(clock: SharedClock) -> Arc<dyn Backend> {
    let url = format!(
        "{}?prefix={}",
        CLUSTER_URL.get().expect("cluster started"),
        random_prefix()
    );
    Arc::new(
        RedisBackend::connect(&url, clock)
            .await
            .expect("connect to the test cluster"),
    )
}

struct Cluster {
    nodes: Vec<RedisProc>,
}

impl Cluster {
    fn start() -> Cluster {
        let nodes: Vec<RedisProc> = (0..3)
            .map(|_| {
                RedisProc::start(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                    "--appendonly",
                    "no",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let start = Instant::now();
        while !nodes
            .iter()
            .all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok"))
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "cluster did not reach state ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Cluster { nodes }
    }

    fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}/", hosts.join(","))
    }
}

macro_rules! run_cases {
    ($( $(#[threads($n:literal)])? $area:ident :: $case:ident ),* $(,)?) => {
        $(
            quern::testing::run_case(
                concat!("cluster::", stringify!($area), "::", stringify!($case)),
                run_cases!(@threads $($n)?),
                make_cluster,
                quern::testing::$area::$case,
            );
        )*
    };
    (@threads) => { 1 };
    (@threads $n:literal) => { $n };
}

#[test]
fn three_master_cluster_runs_core_cases_and_a_multi_queue_drain() {
    if !redis_server_available() {
        return;
    }
    let cluster = Cluster::start();
    CLUSTER_URL.set(cluster.url()).expect("set once");

    run_cases!(
        enqueue::new_job_is_queued_with_fields_as_given,
        enqueue::future_run_at_is_scheduled,
        enqueue::delay_counts_from_the_store,
        enqueue::pending_dependency_is_blocked,
        enqueue::failed_dependency_is_skipped,
        enqueue::unknown_dependency_is_refused,
        enqueue::duplicate_id_is_refused,
        claim::claim_leases_the_job,
        claim::started_at_is_reported_with_the_outcome,
        claim::claim_respects_limit,
        claim::every_claim_gets_a_new_epoch,
        priority::more_urgent_first,
        priority::fifo_by_run_at_then_id,
        priority::claim_batch_takes_the_most_urgent,
        priority::bounded_claim_takes_only_more_urgent_jobs,
        weights::three_to_one_weights_split_three_to_one,
        weights::empty_queue_does_not_starve_the_others,
        weights::weight_zero_queue_is_never_claimed,
        weights::all_weights_zero_claim_nothing,
        weights::queue_named_twice_counts_once,
        pause::paused_queue_is_not_claimed,
        pause::paused_queue_is_skipped_in_multi_queue_claims,
        scheduled::claimable_exactly_at_run_at,
        scheduled::retry_backoff_is_respected,
        #[threads(4)]
        unique::concurrent_enqueues_make_one_job,
        unique::duplicate_of_live_job_returns_it,
        unique::window_holds_after_success_until_it_passes,
        unique::keys_are_per_queue,
        batch::atomic_unknown_dependency_inserts_nothing,
        batch::atomic_batch_across_queues_inserts_nothing,
        batch::best_effort_stores_the_valid_ones,
        batch::dependencies_within_a_batch,
        fencing::stale_token_changes_nothing,
        fencing::stale_item_does_not_fail_the_batch,
        lease::heartbeat_extends_the_lease,
        lease::expired_lease_is_rescued_attempt_counted,
        lease::rescue_of_last_attempt_is_dead_and_skips_dependents,
        retry::retryable_failure_is_scheduled,
        retry::out_of_attempts_goes_dead_with_history,
        retry::replay_by_filter,
        deps::complete_unblocks_in_the_same_call,
        deps::skip_propagates_transitively_at_once,
        deps::replayed_dependency_counts_as_pending_again,
        deps::dependencies_across_queues,
        cancel::cancel_running_revokes_the_lease,
        groups::group_is_stored_and_validated,
        groups::groups_are_served_round_robin,
        groups::every_path_back_to_ready_keeps_its_group,
        groups::the_group_cap_holds_across_workers,
        rates::kind_and_group_rates_are_stored_and_validated,
        rates::each_kind_pattern_has_its_own_bucket,
        rates::kinds_with_quotes_backslashes_and_unicode_are_limited,
        rates::work_wait_sees_kind_throttling,
        rates::each_group_has_its_own_rate,
        rates::rate_limited_holds_the_group,
        rates::rate_limited_without_group_holds_the_kind,
        reprioritize::raised_queued_job_is_claimed_first,
        reprioritize::lowered_queued_job_is_claimed_last,
        reprioritize::scheduled_job_is_ready_with_its_new_priority,
        reprioritize::blocked_job_is_ready_with_its_new_priority,
        reprioritize::running_and_finished_jobs_are_refused,
        reprioritize::unknown_id_is_not_found,
        reprioritize::same_priority_is_fine,
        transitions::snooze_does_not_count_an_attempt,
        transitions::release_gives_back_without_counting,
        prune::prune_deletes_old_finished_jobs,
        retention::queue_retention_and_retry_are_stored,
        retention::queue_retention_overrides_the_store_wide_one,
        retention::queue_default_retry_comes_after_the_job_and_handler,
        prune::result_expires_and_is_pruned,
        prune::prune_dry_run_counts_and_changes_nothing,
        prune::jobs_own_result_ttl_is_stored,
        retention_bytes::oldest_finished_go_until_within_the_budget,
        retention_bytes::retry_and_delete_keep_the_total,
        retention_bytes::pruner_applies_the_byte_budget_in_batches,
        logs::lines_read_back_in_order_after_a_cursor,
        logs::oldest_lines_are_dropped_past_the_line_cap,
        logs::oldest_lines_are_dropped_past_the_byte_cap,
        logs::unknown_jobs_drop_lines_and_are_not_found,
        logs::pruning_a_job_deletes_its_lines,
        events::timeline_of_a_retried_job,
        events::stream_resumes_after_a_cursor_and_filters,
        events::operator_changes_record_the_actor,
        events::retention_drops_the_oldest,
        events::dependencies_release_and_rescue_are_recorded,
        events::derived_timeline_of_a_job_failed_twice_then_completed,
        events::audited_cancel_shows_its_actor,
        alerts::put_is_compare_and_set,
        alerts::names_are_independent,
        delete::deletes_finished_jobs_with_their_logs_and_keys,
        delete::live_or_unknown_id_deletes_nothing,
        delete::dry_run_counts_and_changes_nothing,
        stats::finished_jobs_since_the_cutoff_with_their_times,
        stats::retries_count_and_a_retried_job_leaves_the_window,
        leader::lease_is_exclusive_until_it_expires,
        workers::register_list_deregister,
        workers::heartbeat_of_unknown_worker_is_refused,
        lost_workers::lost_after_three_missed_heartbeats,
        lost_workers::lost_worker_leases_are_rescued_early,
        lost_workers::rescuer_rescues_lost_workers_and_spares_live_ones,
        lost_workers::lost_workers_are_forgotten_after_retention,
        queues::counts_by_state,
        queues::list_has_every_queue,
        list::newest_first,
        list::paging_by_before,
        list::paging_by_state,
        #[threads(2)]
        concurrency::eight_claimers_claim_each_job_once,
        #[threads(2)]
        concurrency::cancel_races_complete,
        payload::ten_mib_payload_round_trips,
        wait::wait_returns_after_timeout,
        #[threads(2)]
        wait::enqueue_wakes_a_waiter,
        // Workflows whose jobs share one queue (the rule on Cluster).
        workflow::create_stores_the_record_and_its_jobs,
        workflow::create_is_all_or_nothing,
        workflow::unknown_workflow,
        workflow::update_is_compare_and_set,
        workflow::final_states_set_finished_at,
        workflow::counts_by_state,
        workflow::cancel_scopes,
        workflow::retry_reopens_failed_jobs,
        workflow::list_newest_first_by_state,
        workflow::enqueued_jobs_join_their_workflow,
        spawn::skip_ends_skipped_without_counting_the_attempt,
        spawn::skip_settles_dependents,
        spawn::spawn_blocks_the_parent_on_its_children,
        spawn::spawn_of_nothing_requeues_at_once,
        spawn::spawn_with_a_bad_child_changes_nothing,
        spawn::spawn_with_a_stale_token_changes_nothing,
        spawn::spawned_parent_forgets_its_old_dependencies,
        // Schedules: each in its template queue's slot, the name index in the global one.
        schedules::upsert_stores_and_get_reads_back,
        schedules::upsert_of_the_same_spec_changes_nothing,
        schedules::upsert_of_a_changed_spec_bumps_the_revision,
        schedules::invalid_spec_is_refused_and_stores_nothing,
        schedules::list_is_ordered_by_name,
        schedules::delete_removes_the_schedule_and_its_history,
        schedules::a_tick_fires_once,
        #[threads(4)]
        schedules::concurrent_fires_of_one_tick_store_one_job,
        schedules::fire_of_an_old_revision_is_stale,
        schedules::pause_stops_fires_and_resume_skips_the_paused_ticks,
        schedules::the_run_limit_ends_the_schedule,
        schedules::a_skipped_tick_is_recorded_without_a_job,
        schedules::a_manual_run_moves_nothing,
        schedules::a_held_unique_key_records_a_duplicate,
        schedules::history_is_newest_first_and_capped,
        schedules::bad_fires_are_refused_and_record_nothing,
        limits::settings_are_stored_and_patched,
        limits::invalid_settings_change_nothing,
        limits::the_concurrency_cap_holds_across_workers,
        limits::the_rate_limit_admits_the_burst_then_one_per_interval,
        limits::work_wait_sleeps_until_the_next_token,
        orders::each_order_claims_in_its_order,
        orders::weighted_random_follows_the_level_weights,
        orders::aging_makes_old_low_and_batch_jobs_normal,
        orders::aging_bounds_the_wait_of_a_low_job,
        orders::order_settings_are_stored_and_validated,
        orders::a_throttled_claim_says_when_the_next_admission_is,
        scheduler::racing_schedulers_enqueue_one_job_per_tick,
        scheduler::an_allow_tick_is_enqueued_ahead_and_claimable_at_the_tick,
        scheduler::overlap_skip_skips_while_the_previous_run_is_live,
        scheduler::overlap_cancel_previous_cancels_the_live_run,
        scheduler::misfire_policies_after_an_outage,
        scheduler::pause_and_remove_cancel_the_pending_tick,
        scheduler::pause_cancels_every_tick_enqueued_ahead,
        scheduler::trigger_runs_now_outside_the_schedule,
        // Import: every job of a call's run in one queue's slot, the id index and workflow
        // homes claimed in the global slot first.
        import::jobs_in_every_state_read_back_verbatim,
        import::imported_queued_job_is_claimed,
        import::imported_blocked_job_unblocks_when_its_dependency_completes,
        import::imported_blocked_job_is_skipped_when_its_dependency_dies,
        import::settled_blocked_job_is_released_on_import,
        import::imported_scheduled_job_becomes_due,
        import::running_job_is_imported_queued_with_its_attempt_counted,
        import::refuse_mode_writes_nothing_when_an_id_is_taken,
        import::skip_existing_never_overwrites,
        import::unknown_dependency_and_bad_jobs_are_refused,
        import::finished_job_with_a_pruned_dependency_is_imported,
        import::imported_unique_key_holds,
        import::paused_queue_is_imported_paused,
        import::workflow_records_and_their_jobs,
        import::schedules_read_back_with_their_history,
        rollups::outcomes_are_counted_per_queue_and_minute,
        rollups::refused_outcomes_count_nothing,
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(multi_queue_drain(&cluster));
    rt.block_on(workflows_stay_in_one_queue(&cluster));
    rt.block_on(schedule_moves_between_slots(&cluster));
    drop(cluster);
}

/// 8 queues × 500 jobs, drained by 8 concurrent claimers across all queues; every job ends
/// succeeded exactly once, and the queues sit on more than one master.
async fn multi_queue_drain(cluster: &Cluster) {
    let url = format!("{}?prefix={}", cluster.url(), random_prefix());
    let b = Arc::new(
        RedisBackend::connect(&url, Arc::new(quern::SystemClock))
            .await
            .unwrap(),
    );
    let queues: Vec<String> = (0..8).map(|i| format!("drain-{i}")).collect();
    let per = 500;
    for q in &queues {
        let jobs: Vec<NewJob> = (0..per)
            .map(|n| {
                NewJob::json("drain", serde_json::json!({ "n": n }))
                    .unwrap()
                    .queue(q.clone())
            })
            .collect();
        let r = b
            .job_enqueue(EnqueueParams {
                jobs,
                mode: BatchMode::Atomic,
            })
            .await
            .unwrap();
        assert!(r.iter().all(|o| o.is_ok()));
    }
    // The queues' hash tags spread over the masters.
    let mut owners = HashSet::new();
    for q in &queues {
        let slot = cluster.nodes[0].cli(&["cluster", "keyslot", &format!("x:{{{q}}}:ids")]);
        let slot: u16 = slot.trim().parse().unwrap();
        for (i, n) in cluster.nodes.iter().enumerate() {
            let owned = n.cli(&["cluster", "countkeysinslot", &slot.to_string()]);
            if owned.trim().parse::<u64>().unwrap_or(0) > 0 {
                owners.insert(i);
            }
        }
    }
    assert!(
        owners.len() > 1,
        "8 queues should spread over several masters, got {owners:?}"
    );
    let weights: Vec<QueueWeight> = queues.iter().map(|q| QueueWeight::new(q, 1)).collect();
    let seen = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let b = b.clone();
        let weights = weights.clone();
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let mut idle = 0;
            while idle < 3 {
                let claimed = b
                    .job_claim(ClaimParams {
                        worker_id: format!("w{w}"),
                        queues: weights.clone(),
                        limit: 16,
                        lease: Duration::from_secs(30),
                        more_urgent_than: None,
                    })
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    idle += 1;
                    continue;
                }
                idle = 0;
                {
                    let mut s = seen.lock().unwrap();
                    for c in &claimed {
                        assert!(s.insert(c.job.id), "job {} claimed twice", c.job.id);
                    }
                }
                let r = b
                    .job_complete(CompleteParams {
                        items: claimed
                            .into_iter()
                            .map(|c| Completion {
                                token: c.token,
                                result: None,
                                result_ttl: None,
                                started_at: None,
                            })
                            .collect(),
                    })
                    .await
                    .unwrap();
                assert!(r.iter().all(|x| x.is_ok()));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(seen.lock().unwrap().len(), queues.len() * per);
    for q in &queues {
        let s = b.queue_stats(q.into()).await.unwrap();
        assert_eq!(s.counts.succeeded, per as u64, "{q}: {:?}", s.counts);
        assert_eq!(s.counts.total(), per as u64, "{q}: {:?}", s.counts);
    }
}

/// A schedule whose template queue changes moves to that queue's slot (a different one
/// here), its run state and history with it; `destroy_all_keys` then finds every key.
async fn schedule_moves_between_slots(cluster: &Cluster) {
    let url = format!("{}?prefix={}", cluster.url(), random_prefix());
    let clock = quern::ManualClock::new(1_795_000_000_000);
    let b = RedisBackend::connect(&url, clock.clone()).await.unwrap();
    let slot = |q: &str| cluster.nodes[0].cli(&["cluster", "keyslot", &format!("x:{{{q}}}:ids")]);
    assert_ne!(
        slot("cron-a"),
        slot("cron-b"),
        "the two queues share a slot"
    );
    crate::schedules::queue_change_moves_the_schedule(&b, &clock).await;
    b.schedule_upsert(ScheduleUpsertParams {
        spec: quern::model::ScheduleSpec::new(
            "left",
            "@hourly",
            quern::model::JobTemplate::new("k"),
        ),
    })
    .await
    .unwrap();
    assert!(b.destroy_all_keys().await.unwrap() > 0);
    assert!(b.schedule_list().await.unwrap().is_empty());
    let pattern = format!("{}:*", b.prefix());
    for n in &cluster.nodes {
        let left = n.cli(&["--scan", "--pattern", &pattern]);
        assert_eq!(left.trim(), "", "keys left after destroy_all_keys");
    }
}

/// On Cluster a workflow lives in one queue (one slot): a workflow, a spawn or a compensation
/// that would put a job in another queue is refused with a clear error and stores nothing;
/// the workflow's records in several home queues still list as one.
async fn workflows_stay_in_one_queue(cluster: &Cluster) {
    use quern::model::{NewWorkflow, WorkflowState};
    use quern::{Error, JobState, LeaseToken};

    let url = format!("{}?prefix={}", cluster.url(), random_prefix());
    let b = RedisBackend::connect(&url, Arc::new(quern::SystemClock))
        .await
        .unwrap();
    let caps = b.capabilities();
    assert!(caps.workflows, "{caps:?}");
    assert!(!caps.atomic_batch_across_queues && !caps.dependencies_across_queues);

    let wf = |id: &str, jobs: &[NewJob]| NewWorkflow {
        id: id.into(),
        name: id.into(),
        spec: serde_json::json!({"name": id}),
        tasks: jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (format!("t{i}"), j.id))
            .collect(),
    };
    let task = |wf: &str, q: &str| {
        NewJob::json("t", serde_json::json!({}))
            .unwrap()
            .queue(q)
            .workflow(wf)
    };
    let one_queue_error =
        |e: &Error| matches!(e, Error::InvalidJob { reason, .. } if reason.contains("one queue"));

    // Tasks in two queues: refused, nothing stored.
    let a = task("split", "wf-a");
    let c = task("split", "wf-b").depends_on([a.id]);
    let ids = [a.id, c.id];
    let r = b
        .workflow_create(WorkflowCreateParams {
            workflow: wf("split", &[a.clone(), c.clone()]),
            jobs: vec![a, c],
        })
        .await;
    assert!(matches!(&r, Err(e) if one_queue_error(e)), "{r:?}");
    assert!(b.workflow_get("split".into()).await.unwrap().is_none());
    for id in ids {
        assert!(
            b.job_get(id.into()).await.unwrap().is_none(),
            "job {id} stored"
        );
    }

    // Two workflows in two home queues (two slots): both listed, newest first.
    let mut parents = Vec::new();
    for (id, q) in [("wf-1", "wf-a"), ("wf-2", "wf-b")] {
        let t = task(id, q);
        parents.push((t.id, q));
        b.workflow_create(WorkflowCreateParams {
            workflow: wf(id, std::slice::from_ref(&t)),
            jobs: vec![t],
        })
        .await
        .unwrap();
        assert_eq!(b.workflow_counts(id.into()).await.unwrap().queued, 1);
    }
    let page = b
        .workflow_list(WorkflowListParams {
            state: Some(WorkflowState::Running),
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    let got: Vec<&str> = page.workflows.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(got, ["wf-2", "wf-1"]);
    // The id is taken across homes.
    let again = task("wf-1", "wf-b");
    let r = b
        .workflow_create(WorkflowCreateParams {
            workflow: wf("wf-1", std::slice::from_ref(&again)),
            jobs: vec![again],
        })
        .await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");

    // A spawn whose child is in another queue: refused, the parent keeps its lease.
    let claimed = b
        .job_claim(ClaimParams {
            worker_id: "w".into(),
            queues: vec![QueueWeight::new("wf-a", 1)],
            limit: 1,
            lease: Duration::from_secs(30),
            more_urgent_than: None,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let token: LeaseToken = claimed[0].token.clone();
    let stray = task("wf-1", "wf-b");
    let stray_id = stray.id;
    let r = b
        .job_fail(FailParams {
            items: vec![Failure {
                token: token.clone(),
                action: FailAction::Spawn {
                    children: vec![stray],
                    checkpoint: None,
                },
                error_kind: quern::model::ErrorKind::Retryable,
                message: String::new(),
                started_at: None,
            }],
        })
        .await
        .unwrap();
    assert!(matches!(&r[0], Err(e) if one_queue_error(e)), "{r:?}");
    assert!(b.job_get(stray_id.into()).await.unwrap().is_none());
    assert_eq!(
        b.job_get(token.job_id.into()).await.unwrap().unwrap().state,
        JobState::Running
    );
    // In its own queue it spawns, and the child counts for the workflow.
    let child = task("wf-1", "wf-a");
    let r = b
        .job_fail(FailParams {
            items: vec![Failure {
                token,
                action: FailAction::Spawn {
                    children: vec![child],
                    checkpoint: None,
                },
                error_kind: quern::model::ErrorKind::Retryable,
                message: String::new(),
                started_at: None,
            }],
        })
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    let counts = b.workflow_counts("wf-1".into()).await.unwrap();
    assert_eq!((counts.blocked, counts.queued), (1, 1), "{counts:?}");

    // A compensation in another queue: refused, the record unchanged.
    let mut p = WorkflowUpdateParams::new("wf-1", 1);
    p.compensations = vec![task("wf-1", "undo")];
    let r = b.workflow_update(p).await;
    assert!(matches!(&r, Err(e) if one_queue_error(e)), "{r:?}");
    assert_eq!(
        b.workflow_get("wf-1".into())
            .await
            .unwrap()
            .unwrap()
            .revision,
        1
    );
    // A job enqueued by hand for the workflow, in another queue: refused too.
    let r = b
        .job_enqueue(EnqueueParams {
            jobs: vec![task("wf-1", "wf-b")],
            mode: BatchMode::Atomic,
        })
        .await;
    assert!(
        matches!(&r, Err(Error::InvalidJob { reason, .. }) if reason.contains("one queue")),
        "{r:?}"
    );

    b.destroy_all_keys().await.unwrap();
    assert!(b.workflow_get("wf-2".into()).await.unwrap().is_none());
}
