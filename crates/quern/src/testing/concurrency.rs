//! Races between real concurrent tasks (these cases run on a multi-threaded runtime): each
//! transition is one atomic step, so no job is claimed twice, lost, or left half-moved.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::backend::{
    BatchMode, ClaimParams, CompleteParams, Completion, EnqueueParams, QueueWeight,
};
use crate::model::{JobId, JobState};
use crate::{Error, LeaseToken};

/// 8 claimers drain 10,000 jobs while every lease stays valid: each job is claimed exactly
/// once (none twice, none missing); then all complete.
pub async fn eight_claimers_claim_each_job_once(h: Harness) {
    const JOBS: usize = 10_000;
    const CLAIMERS: usize = 8;
    let enqueued: HashSet<JobId> = h.enqueue_many("race", JOBS).await.into_iter().collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let mut tasks = Vec::new();
    for w in 0..CLAIMERS {
        let backend = h.backend.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut mine = Vec::new();
            loop {
                let got = backend
                    .job_claim(ClaimParams {
                        worker_id: format!("claimer-{w}"),
                        queues: vec![QueueWeight::new("race", 1)],
                        limit: 16,
                        lease: Duration::from_secs(3600),
                        more_urgent_than: None,
                    })
                    .await?;
                if got.is_empty() {
                    return Ok::<_, Error>(mine);
                }
                mine.extend(got.into_iter().map(|c| c.token));
            }
        }));
    }
    let mut tokens = Vec::with_capacity(JOBS);
    for t in tasks {
        let mine = t
            .await
            .expect("claimer task")
            .unwrap_or_else(|e| panic!("{}: claim failed: {e}", h.case));
        tokens.push(mine);
    }
    let per_claimer: Vec<usize> = tokens.iter().map(Vec::len).collect();
    eprintln!("{}: claims per claimer {per_claimer:?}", h.case);
    let tokens: Vec<LeaseToken> = tokens.into_iter().flatten().collect();
    let claimed: HashSet<JobId> = tokens.iter().map(|t| t.job_id).collect();
    assert_eq!(
        claimed.len(),
        tokens.len(),
        "{}: {} jobs were claimed more than once",
        h.case,
        tokens.len() - claimed.len()
    );
    assert_eq!(
        claimed,
        enqueued,
        "{}: claimed set differs from enqueued set ({} claimed of {JOBS})",
        h.case,
        claimed.len()
    );

    // Complete everything, concurrently, in batches.
    let mut tasks = Vec::new();
    for chunk in tokens.chunks(JOBS / CLAIMERS + 1) {
        let backend = h.backend.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            for part in chunk.chunks(100) {
                let res = backend
                    .job_complete(CompleteParams {
                        items: part
                            .iter()
                            .map(|t| Completion {
                                token: t.clone(),
                                result: None,
                                result_ttl: None,
                                started_at: None,
                            })
                            .collect(),
                    })
                    .await?;
                if let Some(e) = res.into_iter().find_map(Result::err) {
                    return Err(e);
                }
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await
            .expect("completer task")
            .unwrap_or_else(|e| panic!("{}: complete failed: {e}", h.case));
    }
    let counts = h.stats("race").await.counts;
    assert_eq!(
        counts.succeeded, JOBS as u64,
        "{}: all succeeded: {counts:?}",
        h.case
    );
    assert_eq!(
        counts.total(),
        JOBS as u64,
        "{}: nothing else: {counts:?}",
        h.case
    );
}

/// Cancel and complete race on the same running job: exactly one wins, and the stored state
/// matches the winner.
pub async fn cancel_races_complete(h: Harness) {
    const N: usize = 60;
    h.enqueue_many("default", N).await;
    let claimed = h.claim("default", N).await;
    assert_eq!(claimed.len(), N, "{}", h.case);
    let mut cancels = 0;
    for c in claimed {
        let (b1, b2) = (h.backend.clone(), h.backend.clone());
        let id = c.job.id;
        let token = c.token.clone();
        let cancel = tokio::spawn(async move {
            b1.job_cancel(crate::backend::CancelParams { id, reason: None })
                .await
        });
        let complete = tokio::spawn(async move {
            b2.job_complete(CompleteParams {
                items: vec![Completion {
                    token,
                    result: None,
                    result_ttl: None,
                    started_at: None,
                }],
            })
            .await
        });
        let cancel = cancel.await.expect("task");
        let complete = complete.await.expect("task").expect("call").remove(0);
        let state = h.get(id).await.state;
        match (&cancel, &complete) {
            (Ok(j), Err(Error::LeaseLost { .. })) => {
                assert_eq!(j.state, JobState::Cancelled, "{}", h.case);
                assert_eq!(state, JobState::Cancelled, "{}: cancel won", h.case);
                cancels += 1;
            }
            (
                Err(Error::InvalidTransition {
                    from: JobState::Succeeded,
                    ..
                }),
                Ok(()),
            ) => {
                assert_eq!(state, JobState::Succeeded, "{}: complete won", h.case);
            }
            other => panic!(
                "{}: exactly one of cancel/complete must win, got {other:?}",
                h.case
            ),
        }
    }
    eprintln!("{}: cancel won {cancels} of {N}", h.case);
}

/// After their leases expire, late completions race the rescuer: every job ends either
/// succeeded (its completion won, the rescuer skipped it) or queued again (the rescuer won,
/// the completion got `LeaseLost`), never both and never neither.
pub async fn rescue_races_late_completions(h: Harness) {
    const N: usize = 60;
    h.enqueue_many("default", N).await;
    let claimed = h.claim("default", N).await;
    assert_eq!(claimed.len(), N, "{}", h.case);
    h.advance(LEASE + Duration::from_secs(1));
    let backend = h.backend.clone();
    let tokens: Vec<LeaseToken> = claimed.iter().map(|c| c.token.clone()).collect();
    let completer = tokio::spawn(async move {
        let mut won = HashSet::new();
        for t in tokens {
            let res = backend
                .job_complete(CompleteParams {
                    items: vec![Completion {
                        token: t.clone(),
                        result: None,
                        result_ttl: None,
                        started_at: None,
                    }],
                })
                .await?
                .remove(0);
            match res {
                Ok(()) => {
                    won.insert(t.job_id);
                }
                Err(Error::LeaseLost { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok::<_, Error>(won)
    });
    let backend = h.backend.clone();
    let rescuer = tokio::spawn(async move {
        let mut rescued = HashSet::new();
        loop {
            let r = backend
                .lease_rescue(crate::backend::RescueParams {
                    limit: 1,
                    ..Default::default()
                })
                .await?;
            assert!(r.dead.is_empty(), "attempts remain, so nothing dies");
            if r.requeued.is_empty() {
                return Ok::<_, Error>(rescued);
            }
            rescued.extend(r.requeued);
        }
    });
    let completed = completer.await.expect("task").unwrap();
    let rescued = rescuer.await.expect("task").unwrap();
    eprintln!(
        "{}: {} completed, {} rescued",
        h.case,
        completed.len(),
        rescued.len()
    );
    for c in &claimed {
        let id = c.job.id;
        let state = h.get(id).await.state;
        match (completed.contains(&id), rescued.contains(&id)) {
            (true, false) => assert_eq!(state, JobState::Succeeded, "{}: {id}", h.case),
            (false, true) => assert_eq!(state, JobState::Queued, "{}: {id}", h.case),
            both => panic!(
                "{}: job {id}: (completed, rescued) = {both:?}, state {state}",
                h.case
            ),
        }
    }
}

/// Enqueuing a dependent while its dependency completes never strands it `blocked`: it ends
/// `queued` whichever step landed first.
pub async fn dependent_enqueued_while_dependency_completes(h: Harness) {
    const N: usize = 100;
    let deps = h.enqueue_many("deps", N).await;
    let claimed = h.claim("deps", N).await;
    assert_eq!(claimed.len(), N, "{}", h.case);
    let mut dependents = Vec::new();
    for c in claimed {
        let (b1, b2) = (h.backend.clone(), h.backend.clone());
        let dependent = job("after").queue("deps").depends_on([c.job.id]);
        dependents.push(dependent.id);
        let token = c.token.clone();
        let complete = tokio::spawn(async move {
            b1.job_complete(CompleteParams {
                items: vec![Completion {
                    token,
                    result: None,
                    result_ttl: None,
                    started_at: None,
                }],
            })
            .await
        });
        let enqueue = tokio::spawn(async move {
            b2.job_enqueue(EnqueueParams {
                jobs: vec![dependent],
                mode: BatchMode::Atomic,
            })
            .await
        });
        complete
            .await
            .expect("task")
            .expect("complete call")
            .remove(0)
            .unwrap();
        enqueue
            .await
            .expect("task")
            .expect("enqueue call")
            .remove(0)
            .unwrap();
    }
    assert_eq!(deps.len(), dependents.len(), "{}", h.case);
    for id in dependents {
        h.assert_state(id, JobState::Queued, "dependency succeeded")
            .await;
    }
}
