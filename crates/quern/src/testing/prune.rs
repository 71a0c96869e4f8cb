//! Results and retention: results are stored (with an optional expiry), and `job_prune`
//! deletes old finished jobs in the given states and drops expired results, never touching
//! live jobs.

use std::time::Duration;

use super::*;
use crate::backend::{Completion, FailAction, PruneParams, PruneReport};
use crate::model::{JobId, JobState};

async fn prune(
    h: &Harness,
    finished_before: crate::Millis,
    states: &[JobState],
    limit: usize,
) -> PruneReport {
    h.backend
        .job_prune(PruneParams {
            finished_before,
            states: states.to_vec(),
            limit,
            dry_run: false,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{}: prune: {e}", h.case))
}

async fn succeeded(h: &Harness) -> JobId {
    let c = h.enqueue_and_claim(job("done")).await;
    h.complete(&c.token).await;
    c.job.id
}

/// Jobs in the listed states that finished before the cutoff are deleted; later ones, ones
/// in other states, and live ones stay.
pub async fn prune_deletes_old_finished_jobs(h: Harness) {
    let old_ok = succeeded(&h).await;
    let old_dead = h.enqueue(job("dead")).await.id;
    h.claim_and_fail("default", old_dead, FailAction::Dead)
        .await;
    let old_cancelled = h.enqueue(job("gone")).await.id;
    h.cancel(old_cancelled).await.unwrap();
    let live = h.enqueue(job("live").queue("other")).await.id;
    let cutoff = h.now() + 5_000;
    h.advance(Duration::from_secs(10));
    let new_ok = succeeded(&h).await;

    let r = prune(&h, cutoff, &[JobState::Succeeded, JobState::Dead], 100).await;
    assert_eq!(r.jobs_deleted, 2, "{}: {r:?}", h.case);
    h.assert_absent(&[old_ok, old_dead], "pruned").await;
    h.assert_state(old_cancelled, JobState::Cancelled, "state not listed")
        .await;
    h.assert_state(new_ok, JobState::Succeeded, "finished after the cutoff")
        .await;
    h.assert_state(live, JobState::Queued, "live job").await;
    assert_eq!(
        h.stats("default").await.counts.succeeded,
        1,
        "{}: counts follow",
        h.case
    );
}

/// A dry run reports what the same call would delete and drop, within the same limit, and
/// changes nothing: the real call that follows reports the same numbers.
pub async fn prune_dry_run_counts_and_changes_nothing(h: Harness) {
    let ok = [
        succeeded(&h).await,
        succeeded(&h).await,
        succeeded(&h).await,
    ];
    let dead = h.enqueue(job("dead")).await.id;
    h.claim_and_fail("default", dead, FailAction::Dead).await;
    let c = h.enqueue_and_claim(job("ttl")).await;
    h.try_complete(Completion {
        token: c.token.clone(),
        result: Some(json_payload(serde_json::json!(1))),
        result_ttl: Some(Duration::from_secs(1)),
        started_at: None,
    })
    .await
    .unwrap();
    h.advance(Duration::from_secs(10));
    let cutoff = h.now();
    let fresh = succeeded(&h).await;
    let call = |dry_run, limit| PruneParams {
        finished_before: cutoff,
        states: vec![JobState::Succeeded],
        limit,
        dry_run,
        ..Default::default()
    };

    let counted = h.backend.job_prune(call(true, 100)).await.unwrap();
    assert_eq!(
        counted,
        PruneReport {
            jobs_deleted: 4,
            results_expired: 1
        },
        "{}: three old successes and the ttl job, its result",
        h.case
    );
    let capped = h.backend.job_prune(call(true, 2)).await.unwrap();
    assert_eq!(
        capped.jobs_deleted, 2,
        "{}: the limit holds: {capped:?}",
        h.case
    );
    for id in ok.iter().chain([&c.job.id, &fresh]) {
        h.assert_state(*id, JobState::Succeeded, "dry run deletes nothing")
            .await;
    }
    h.assert_state(dead, JobState::Dead, "state not listed")
        .await;
    assert_eq!(h.stats("default").await.counts.succeeded, 5, "{}", h.case);

    let done = h.backend.job_prune(call(false, 100)).await.unwrap();
    assert_eq!(
        done, counted,
        "{}: the real call does what was counted",
        h.case
    );
    h.assert_absent(&[ok[0], ok[1], ok[2], c.job.id], "pruned")
        .await;
    h.assert_state(fresh, JobState::Succeeded, "finished after the cutoff")
        .await;
}

/// At most `limit` jobs per call.
pub async fn prune_respects_limit(h: Harness) {
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(succeeded(&h).await);
    }
    h.advance(Duration::from_secs(1));
    let cutoff = h.now();
    let mut total = 0;
    for want in [2, 2, 1, 0] {
        let r = prune(&h, cutoff, &[JobState::Succeeded], 2).await;
        assert_eq!(r.jobs_deleted, want, "{}: {r:?}", h.case);
        total += r.jobs_deleted;
    }
    assert_eq!(total, 5, "{}", h.case);
    h.assert_absent(&ids, "all pruned").await;
}

/// Listing live states never deletes live jobs: the call is refused or deletes nothing live.
pub async fn prune_never_deletes_live_jobs(h: Harness) {
    let queued = h.enqueue(job("q")).await.id;
    let running = h.enqueue_and_claim(job("r").queue("r")).await.job.id;
    let scheduled = h.enqueue(job("s").run_at(h.now() + 1)).await.id;
    let a = h.enqueue(job("a").queue("x")).await.id;
    let blocked = h.enqueue(job("b").queue("x").depends_on([a])).await.id;
    h.advance(Duration::from_secs(3600));
    let res = h
        .backend
        .job_prune(PruneParams {
            finished_before: h.now(),
            states: JobState::ALL.to_vec(),
            limit: 100,
            dry_run: false,
            ..Default::default()
        })
        .await;
    if let Err(e) = &res {
        assert!(
            is_input_error(e),
            "{}: refused with an input error, got {e:?}",
            h.case
        );
    }
    for id in [queued, running, scheduled, a, blocked] {
        assert!(
            h.find(id).await.is_some(),
            "{}: live job {id} was deleted",
            h.case
        );
    }
}

/// A completion's result is stored with its expiry (now + ttl), or none without a ttl.
pub async fn result_is_stored(h: Harness) {
    let c = h.enqueue_and_claim(job("compute")).await;
    let result = json_payload(serde_json::json!({ "sum": 42 }));
    h.try_complete(Completion {
        token: c.token.clone(),
        result: Some(result.clone()),
        result_ttl: Some(Duration::from_secs(60)),
        started_at: None,
    })
    .await
    .unwrap();
    let j = h.get(c.job.id).await;
    assert_eq!(j.state, JobState::Succeeded, "{}", h.case);
    assert_eq!(j.result, Some(result.clone()), "{}: result", h.case);
    assert_eq!(
        j.result_expires_at,
        Some(h.now() + 60_000),
        "{}: expiry",
        h.case
    );
    assert_eq!(j.finished_at, Some(h.now()), "{}", h.case);

    let d = h.enqueue_and_claim(job("forever")).await;
    h.try_complete(Completion {
        token: d.token.clone(),
        result: Some(result.clone()),
        result_ttl: None,
        started_at: None,
    })
    .await
    .unwrap();
    let j = h.get(d.job.id).await;
    assert_eq!(j.result, Some(result), "{}", h.case);
    assert_eq!(j.result_expires_at, None, "{}: kept until pruned", h.case);
}

/// A job's own result retention (`NewJob::result_ttl`) is stored with it and comes back on
/// the claimed job and on `job_get`, so the worker can send it with the completion; a job
/// without one has `None` (the worker's default applies).
pub async fn jobs_own_result_ttl_is_stored(h: Harness) {
    let ttl = Duration::from_secs(90);
    let own = job("compute").result_ttl(ttl);
    let plain = job("compute");
    let ids = [own.id, plain.id];
    h.enqueue_all(vec![own, plain]).await;
    for (id, want) in ids.into_iter().zip([Some(ttl), None]) {
        assert_eq!(h.get(id).await.result_ttl, want, "{}: stored", h.case);
        let c = h.claim_id("default", id).await;
        assert_eq!(c.job.result_ttl, want, "{}: on the claimed job", h.case);
        h.try_complete(Completion {
            token: c.token.clone(),
            result: Some(json_payload(serde_json::json!(1))),
            result_ttl: c.job.result_ttl,
            started_at: None,
        })
        .await
        .unwrap();
        let j = h.get(id).await;
        assert_eq!(j.result_ttl, want, "{}: kept after success", h.case);
        assert_eq!(
            j.result_expires_at,
            want.map(|d| h.now() + ms(d)),
            "{}: expiry",
            h.case
        );
    }
}

/// An expired result is dropped by the pruner (the job stays); an unexpired one and one
/// without expiry are kept.
pub async fn result_expires_and_is_pruned(h: Harness) {
    let mut ids = Vec::new();
    for ttl in [Some(60u64), Some(3600), None] {
        let c = h.enqueue_and_claim(job("compute")).await;
        h.try_complete(Completion {
            token: c.token.clone(),
            result: Some(json_payload(serde_json::json!(ttl))),
            result_ttl: ttl.map(Duration::from_secs),
            started_at: None,
        })
        .await
        .unwrap();
        ids.push(c.job.id);
    }
    let r = prune(&h, h.now() - 1, &[JobState::Succeeded], 100).await;
    assert_eq!(r, PruneReport::default(), "{}: nothing expired yet", h.case);
    h.advance(Duration::from_secs(61));
    let r = prune(&h, h.now() - 3_600_000, &[JobState::Succeeded], 100).await;
    assert_eq!(r.results_expired, 1, "{}: {r:?}", h.case);
    assert_eq!(r.jobs_deleted, 0, "{}: {r:?}", h.case);
    let j = h.get(ids[0]).await;
    assert_eq!(j.state, JobState::Succeeded, "{}: job kept", h.case);
    assert!(j.result.is_none(), "{}: expired result dropped", h.case);
    assert!(
        h.get(ids[1]).await.result.is_some(),
        "{}: 1 h ttl kept",
        h.case
    );
    assert!(
        h.get(ids[2]).await.result.is_some(),
        "{}: no ttl kept",
        h.case
    );
}
