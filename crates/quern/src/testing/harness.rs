//! What every case gets: the backend under test, the manual clock that drives it, and short
//! helpers for the calls cases make most. Helpers that cannot fail in a correct backend panic
//! with the case name; cases that expect an error call the backend directly.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::{
    BatchMode, CancelParams, ClaimParams, ClaimedJob, CompleteParams, Completion, EnqueueOutcome,
    EnqueueParams, EnqueueResults, FailAction, FailParams, Failure, HeartbeatItem, HeartbeatParams,
    JobReprioritizeParams, QueueInfo, QueueWeight, ReleaseParams, RescueParams, RescueReport,
    RetryParams, RetryTarget,
};
use crate::model::{Codec, ErrorKind, Format, Job, JobId, JobState, NewJob, Payload, Priority};
use crate::{Backend, Capabilities, Error, LeaseToken, ManualClock, Millis, Result};

/// The lease length the helpers claim and heartbeat with.
pub const LEASE: Duration = Duration::from_secs(30);

/// The worker id the helpers claim as.
pub const WORKER: &str = "conformance-worker";

/// One case's world: the backend under test and the clock it reads.
#[derive(Clone, Debug)]
pub struct Harness {
    /// The backend under test, fresh and empty for this case.
    pub backend: Arc<dyn Backend>,
    /// The backend's clock. Only the case moves it.
    pub clock: Arc<ManualClock>,
    /// `area::case`, for messages.
    pub case: &'static str,
}

impl Harness {
    /// Wraps a fresh backend.
    pub fn new(case: &'static str, backend: Arc<dyn Backend>, clock: Arc<ManualClock>) -> Self {
        Harness {
            backend,
            clock,
            case,
        }
    }

    /// The backend's capabilities.
    pub fn caps(&self) -> Capabilities {
        self.backend.capabilities()
    }

    /// True (after printing a loud `SKIP` line) when the backend lacks a capability; the case
    /// then returns early.
    pub fn lacks(&self, capability: &str, has: bool) -> bool {
        if !has {
            eprintln!("SKIP {}: backend lacks {capability}", self.case);
        }
        !has
    }

    /// The current (manual) time.
    pub fn now(&self) -> Millis {
        use crate::Clock;
        self.clock.now_ms()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Moves the clock to `to` (never backwards: the suite only moves time forward).
    pub fn advance_to(&self, to: Millis) {
        let now = self.now();
        assert!(
            to >= now,
            "{}: advance_to({to}) is in the past ({now})",
            self.case
        );
        self.clock.set(to);
    }

    // --- enqueue --------------------------------------------------------------------------

    /// Enqueues in one call and returns the raw results.
    pub async fn try_enqueue(&self, jobs: Vec<NewJob>, mode: BatchMode) -> Result<EnqueueResults> {
        self.backend.job_enqueue(EnqueueParams { jobs, mode }).await
    }

    /// Enqueues one job that must be accepted.
    pub async fn enqueue(&self, job: NewJob) -> EnqueueOutcome {
        self.enqueue_all(vec![job]).await.remove(0)
    }

    /// Enqueues jobs atomically; every one must be accepted.
    pub async fn enqueue_all(&self, jobs: Vec<NewJob>) -> Vec<EnqueueOutcome> {
        let n = jobs.len();
        let res = self
            .try_enqueue(jobs, BatchMode::Atomic)
            .await
            .unwrap_or_else(|e| panic!("{}: enqueue failed: {e}", self.case));
        assert_eq!(res.len(), n, "{}: one outcome per job", self.case);
        res.into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|e| panic!("{}: enqueue item {i}: {e}", self.case)))
            .collect()
    }

    /// Enqueues `n` plain jobs into `queue` in batches; returns their ids in enqueue order.
    pub async fn enqueue_many(&self, queue: &str, n: usize) -> Vec<JobId> {
        let mut ids = Vec::with_capacity(n);
        let mut i = 0;
        while i < n {
            let m = (n - i).min(500);
            let jobs: Vec<NewJob> = (i..i + m).map(|k| job_n(queue, k)).collect();
            ids.extend(jobs.iter().map(|j| j.id));
            self.enqueue_all(jobs).await;
            i += m;
        }
        ids
    }

    // --- claim ----------------------------------------------------------------------------

    /// Claims from weighted queues.
    pub async fn claim_from(&self, queues: Vec<QueueWeight>, limit: usize) -> Vec<ClaimedJob> {
        self.backend
            .job_claim(ClaimParams {
                worker_id: WORKER.into(),
                queues,
                limit,
                lease: LEASE,
                more_urgent_than: None,
            })
            .await
            .unwrap_or_else(|e| panic!("{}: claim failed: {e}", self.case))
    }

    /// Claims up to `limit` jobs from one queue.
    pub async fn claim(&self, queue: &str, limit: usize) -> Vec<ClaimedJob> {
        self.claim_from(vec![QueueWeight::new(queue, 1)], limit)
            .await
    }

    /// Claims exactly one job from `queue` (panics if there is none).
    pub async fn claim_one(&self, queue: &str) -> ClaimedJob {
        let mut got = self.claim(queue, 1).await;
        assert_eq!(
            got.len(),
            1,
            "{}: expected to claim one job from {queue:?}, got {}",
            self.case,
            got.len()
        );
        got.remove(0)
    }

    /// Claims one job from `queue` and checks it is `id`.
    pub async fn claim_id(&self, queue: &str, id: JobId) -> ClaimedJob {
        let c = self.claim_one(queue).await;
        assert_eq!(c.job.id, id, "{}: claimed the wrong job", self.case);
        c
    }

    /// Asserts that nothing can be claimed from `queue` now.
    pub async fn claim_none(&self, queue: &str, why: &str) {
        let got = self.claim(queue, 10).await;
        assert!(
            got.is_empty(),
            "{}: {why}: expected no claimable job in {queue:?}, claimed {:?}",
            self.case,
            got.iter()
                .map(|c| (c.job.id, c.job.state))
                .collect::<Vec<_>>()
        );
    }

    /// Enqueues a plain job in `queue` and claims it.
    pub async fn enqueue_and_claim(&self, job: NewJob) -> ClaimedJob {
        let queue = job.queue.clone();
        let id = self.enqueue(job).await.id;
        self.claim_id(&queue, id).await
    }

    // --- running jobs ---------------------------------------------------------------------

    /// Completes one job; returns the item's result.
    pub async fn try_complete(&self, item: Completion) -> Result<()> {
        single(
            self,
            "complete",
            self.backend
                .job_complete(CompleteParams { items: vec![item] })
                .await,
        )
    }

    /// Completes one job with no result; it must succeed.
    pub async fn complete(&self, token: &LeaseToken) {
        self.try_complete(Completion {
            token: token.clone(),
            result: None,
            result_ttl: None,
            started_at: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: complete {}: {e}", self.case, token.job_id));
    }

    /// Records one failed attempt; returns the item's result.
    pub async fn try_fail(&self, token: &LeaseToken, action: FailAction) -> Result<()> {
        let error_kind = match action {
            FailAction::Dead => ErrorKind::Fatal,
            FailAction::Cancel => ErrorKind::Cancelled,
            _ => ErrorKind::Retryable,
        };
        let item = Failure {
            token: token.clone(),
            action,
            error_kind,
            message: format!("attempt {} failed", token.attempt),
            started_at: None,
        };
        single(
            self,
            "fail",
            self.backend
                .job_fail(FailParams { items: vec![item] })
                .await,
        )
    }

    /// Records one failed attempt; it must be accepted.
    pub async fn fail(&self, token: &LeaseToken, action: FailAction) {
        let what = format!("{action:?}");
        self.try_fail(token, action)
            .await
            .unwrap_or_else(|e| panic!("{}: fail {} ({what}): {e}", self.case, token.job_id));
    }

    /// Extends one lease (with optional progress / checkpoint); returns the item's result.
    pub async fn try_heartbeat(&self, item: HeartbeatItem) -> Result<Millis> {
        single(
            self,
            "heartbeat",
            self.backend
                .job_heartbeat(HeartbeatParams {
                    items: vec![item],
                    lease: LEASE,
                })
                .await,
        )
    }

    /// Extends one lease with nothing else.
    pub async fn heartbeat(&self, token: &LeaseToken) -> Result<Millis> {
        self.try_heartbeat(HeartbeatItem {
            token: token.clone(),
            progress: None,
            checkpoint: None,
        })
        .await
    }

    /// Gives one lease back; returns the item's result.
    pub async fn try_release(&self, token: &LeaseToken) -> Result<()> {
        single(
            self,
            "release",
            self.backend
                .job_release(ReleaseParams {
                    tokens: vec![token.clone()],
                })
                .await,
        )
    }

    /// Cancels a job.
    pub async fn cancel(&self, id: JobId) -> Result<Job> {
        self.backend
            .job_cancel(CancelParams {
                id,
                reason: Some("conformance".into()),
            })
            .await
    }

    /// Gives a job a new priority.
    pub async fn reprioritize(&self, id: JobId, priority: Priority) -> Result<Job> {
        self.backend
            .job_reprioritize(JobReprioritizeParams { id, priority })
            .await
    }

    /// Moves finished jobs back by id.
    pub async fn retry_ids(&self, ids: Vec<JobId>) -> Result<Vec<JobId>> {
        let limit = ids.len().max(1);
        self.backend
            .job_retry(RetryParams {
                target: RetryTarget::Ids(ids),
                limit,
            })
            .await
    }

    /// Rescues expired leases (up to 1000).
    pub async fn rescue(&self) -> RescueReport {
        self.backend
            .lease_rescue(RescueParams {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{}: rescue failed: {e}", self.case))
    }

    /// Claims a job and fails it with `action` (usually to make it dead).
    pub async fn claim_and_fail(&self, queue: &str, id: JobId, action: FailAction) {
        let c = self.claim_id(queue, id).await;
        self.fail(&c.token, action).await;
    }

    /// One job in each terminal state of `"default"` (succeeded, dead, cancelled, skipped:
    /// a dependent of the dead one), each checked to be in it, with that state.
    pub async fn finished_jobs(&self) -> Vec<(JobId, JobState)> {
        let ok = self.enqueue(job("ok")).await.id;
        let c = self.claim_id("default", ok).await;
        self.complete(&c.token).await;
        let dead = self.enqueue(job("dead")).await.id;
        self.claim_and_fail("default", dead, FailAction::Dead).await;
        let gone = self.enqueue(job("gone")).await.id;
        self.cancel(gone)
            .await
            .unwrap_or_else(|e| panic!("{}: cancel: {e}", self.case));
        let skipped = self.enqueue(job("skipped").depends_on([dead])).await.id;
        let out = vec![
            (ok, JobState::Succeeded),
            (dead, JobState::Dead),
            (gone, JobState::Cancelled),
            (skipped, JobState::Skipped),
        ];
        for (id, want) in &out {
            self.assert_state(*id, *want, "setup").await;
        }
        out
    }

    // --- reading --------------------------------------------------------------------------

    /// The stored job, which must exist.
    pub async fn get(&self, id: JobId) -> Job {
        self.backend
            .job_get(id.into())
            .await
            .unwrap_or_else(|e| panic!("{}: job_get {id}: {e}", self.case))
            .unwrap_or_else(|| panic!("{}: job {id} is missing", self.case))
    }

    /// The stored job, or `None`.
    pub async fn find(&self, id: JobId) -> Option<Job> {
        self.backend
            .job_get(id.into())
            .await
            .unwrap_or_else(|e| panic!("{}: job_get {id}: {e}", self.case))
    }

    /// Asserts a job's stored state.
    pub async fn assert_state(&self, id: JobId, want: JobState, why: &str) {
        let got = self.get(id).await.state;
        assert_eq!(got, want, "{}: {why}: job {id}", self.case);
    }

    /// Asserts that none of these jobs exists.
    pub async fn assert_absent(&self, ids: &[JobId], why: &str) {
        for id in ids {
            if let Some(j) = self.find(*id).await {
                panic!(
                    "{}: {why}: job {id} should not exist, found it {}",
                    self.case, j.state
                );
            }
        }
    }

    /// A queue's stats, which must exist.
    pub async fn stats(&self, queue: &str) -> QueueInfo {
        self.backend
            .queue_stats(queue.into())
            .await
            .unwrap_or_else(|e| panic!("{}: queue_stats {queue:?}: {e}", self.case))
    }
}

/// Unwraps a batch call that was given one item.
fn single<T>(h: &Harness, what: &str, res: Result<Vec<Result<T>>>) -> Result<T> {
    let mut v = res.unwrap_or_else(|e| panic!("{}: {what} call failed: {e}", h.case));
    assert_eq!(v.len(), 1, "{}: {what}: one result per item", h.case);
    v.remove(0)
}

/// A plain job of `kind` in queue `"default"` with a small JSON payload.
pub fn job(kind: &str) -> NewJob {
    NewJob::json(kind, serde_json::json!({ "kind": kind })).unwrap()
}

/// A plain job in `queue` whose payload carries `n`.
pub fn job_n(queue: &str, n: usize) -> NewJob {
    NewJob::json("conformance", serde_json::json!({ "n": n }))
        .unwrap()
        .queue(queue)
}

/// A JSON payload from a value.
pub fn json_payload(v: serde_json::Value) -> Payload {
    Payload::from_json_value(&v, &Codec::default()).expect("small JSON payload")
}

/// A JSON string payload of exactly `len` stored bytes (uncompressed), with varied content
/// so truncation or corruption shows.
pub fn raw_payload(len: usize, seed: u64) -> Payload {
    assert!(len >= 2);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut bytes = Vec::with_capacity(len);
    bytes.push(b'"');
    bytes.extend((0..len - 2).map(|_| b"0123456789abcdef"[rng.usize(..16)]));
    bytes.push(b'"');
    let codec = Codec {
        compress_above: usize::MAX,
        max_bytes: usize::MAX,
        ..Codec::default()
    };
    Payload::from_encoded(Format::Json, bytes, &codec).expect("raw payload")
}

/// Fresh ids in ascending order (ids are only time-ordered within one thread, so the suite
/// sorts them rather than trusting creation order).
pub fn sorted_ids(n: usize) -> Vec<JobId> {
    let mut v: Vec<JobId> = (0..n).map(|_| JobId::new()).collect();
    v.sort();
    v
}

/// A copy of a token with a different epoch (a forged or outdated fencing token).
pub fn with_epoch(t: &LeaseToken, epoch: u64) -> LeaseToken {
    LeaseToken { epoch, ..t.clone() }
}

/// Milliseconds of a duration, for timestamp arithmetic.
pub fn ms(d: Duration) -> Millis {
    d.as_millis() as Millis
}

/// True for errors that mean "your input was bad" (as opposed to a store failure).
pub fn is_input_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidJob { .. }
            | Error::InvalidArgument(_)
            | Error::JobNotFound(_)
            | Error::PayloadTooLarge { .. }
            | Error::InvalidTransition { .. }
    )
}
