use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::serde_ms;
use super::{JobId, JobState, Payload, Priority, RetryPolicy, TraceContext};
use crate::Error;
use crate::clock::Millis;

/// When a job with dependencies may run, given how its dependencies ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Run once every dependency succeeded; skipped as soon as one ends dead, cancelled or
    /// skipped. The default.
    #[default]
    AllSuccess,
    /// Run once every dependency is terminal, however it ended.
    AllDone,
    /// Run as soon as one dependency succeeded; skipped once all are terminal and none
    /// succeeded.
    AnySuccess,
}

impl Trigger {
    /// The lowercase name used in storage and files.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::AllSuccess => "all_success",
            Trigger::AllDone => "all_done",
            Trigger::AnySuccess => "any_success",
        }
    }

    /// The number stored for this trigger (SQLite's `trigger_rule`, Redis's `dt`): 0, 1, 2.
    pub fn code(self) -> i64 {
        match self {
            Trigger::AllSuccess => 0,
            Trigger::AllDone => 1,
            Trigger::AnySuccess => 2,
        }
    }

    /// Reads [`Trigger::code`] back. An unknown stored code is corrupt data, an error (it
    /// was read as `AllSuccess` before, which could run a job its dependencies forbid).
    pub fn from_code(n: i64) -> Result<Trigger, Error> {
        match n {
            0 => Ok(Trigger::AllSuccess),
            1 => Ok(Trigger::AllDone),
            2 => Ok(Trigger::AnySuccess),
            other => Err(Error::Storage(format!(
                "unknown stored trigger code {other}"
            ))),
        }
    }

    /// Parses [`Trigger::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Trigger> {
        match s {
            "all_success" => Some(Trigger::AllSuccess),
            "all_done" => Some(Trigger::AllDone),
            "any_success" => Some(Trigger::AnySuccess),
            _ => None,
        }
    }

    /// Decides what a `blocked` job becomes given its dependencies' states:
    /// `Some(Queued)` when it may run (the caller turns that into `scheduled` if its
    /// `run_at` is in the future), `Some(Skipped)` when it never can, `None` to keep waiting.
    /// Every backend calls this (or mirrors it exactly) so dependency semantics agree.
    pub fn resolve(self, deps: &[JobState]) -> Option<JobState> {
        let done = deps.iter().filter(|s| s.is_terminal()).count();
        let ok = deps.iter().filter(|s| **s == JobState::Succeeded).count();
        self.resolve_counts(deps.len(), done, ok)
    }

    /// The same decision from counts: `total` dependencies, `done` of them terminal, `ok` of
    /// them succeeded. Backends keep these counts on blocked jobs so that finishing one of
    /// 10,000 fan-out jobs costs O(1) per waiting dependent, not O(10,000).
    pub fn resolve_counts(self, total: usize, done: usize, ok: usize) -> Option<JobState> {
        let failed = done - ok.min(done);
        match self {
            Trigger::AllSuccess => {
                if failed > 0 {
                    Some(JobState::Skipped)
                } else if ok >= total {
                    Some(JobState::Queued)
                } else {
                    None
                }
            }
            Trigger::AllDone => (done >= total).then_some(JobState::Queued),
            Trigger::AnySuccess => {
                if ok > 0 || total == 0 {
                    Some(JobState::Queued)
                } else if done >= total {
                    Some(JobState::Skipped)
                } else {
                    None
                }
            }
        }
    }
}

/// Why an attempt failed, as recorded in the job's error history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The handler returned a retryable error.
    Retryable,
    /// The handler returned a fatal error.
    Fatal,
    /// The handler ran past the job's timeout.
    Timeout,
    /// The handler panicked.
    Panic,
    /// The worker stopped heartbeating and the lease expired (the rescuer recorded this).
    LeaseExpired,
    /// The worker holding the lease was found lost (its registry heartbeat stopped for three
    /// intervals), so the rescuer re-delivered the job before the lease ran out.
    WorkerLost,
    /// The handler or an operator cancelled the job.
    Cancelled,
    /// No handler is registered for this kind on the worker that claimed it.
    UnknownKind,
    /// Not a failure: the job was skipped when it came to run (a workflow condition was
    /// false); the message says why.
    Skipped,
}

/// One entry of a job's error history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// The attempt that failed (1-based).
    pub attempt: u32,
    /// When it failed.
    pub at: Millis,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The message (truncated to a few KiB by the backend).
    pub message: String,
    /// When the failed attempt was claimed (its lease granted), if it was running: the
    /// start of its `running` span in the job's timeline ([`crate::model::job_timeline`]),
    /// which the next claim's `claimed_at` overwrites. Written by the fail path from the
    /// row it updates anyway, so it costs no extra write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<Millis>,
    /// The `run_at` the failed attempt was due at (the retry overwrites the job's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Millis>,
    /// When the job is due again, if this failure retried it (running → scheduled); `None`
    /// when it ended the job (dead, cancelled) or put it straight back (a rescue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Millis>,
}

/// A running job's reported progress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Percent done, 0–100.
    pub percent: f32,
    /// Optional human text ("42 of 100 files").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The lease a running job is held under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The worker holding it.
    pub worker_id: String,
    /// When it expires unless heartbeated; the rescuer re-delivers the job after this.
    pub expires_at: Millis,
}

/// Longest error message kept in a job's error history, in bytes; longer ones are cut by
/// [`truncate_error_message`].
pub const MAX_ERROR_MESSAGE_BYTES: usize = 4096;

/// An error message as every backend stores it: at most [`MAX_ERROR_MESSAGE_BYTES`], cut at
/// a character boundary and marked with `…` when cut.
pub fn truncate_error_message(msg: &str) -> String {
    if msg.len() <= MAX_ERROR_MESSAGE_BYTES {
        return msg.to_string();
    }
    let mut end = MAX_ERROR_MESSAGE_BYTES;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &msg[..end])
}

/// Limits every backend enforces on what it stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload (and result, and checkpoint) in stored bytes. Default 16 MiB.
    pub max_payload_bytes: usize,
}

impl Limits {
    /// A result or checkpoint obeys the payload limit: `PayloadTooLarge` when its stored
    /// form is larger (`None` passes).
    pub fn check_stored(&self, p: Option<&Payload>) -> Result<(), Error> {
        match p.map(|p| p.stored_bytes().len()) {
            Some(size) if size > self.max_payload_bytes => Err(Error::PayloadTooLarge {
                size,
                limit: self.max_payload_bytes,
            }),
            _ => Ok(()),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: super::Codec::DEFAULT_MAX_BYTES,
        }
    }
}

/// The queue of a job that did not choose one (a route may send such a job elsewhere; see
/// [`crate::routing`]).
pub const DEFAULT_QUEUE: &str = "default";

/// A job to enqueue. Build it with [`NewJob::new`] and the chained setters; every field has
/// a sensible default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// Chosen by the caller so that jobs in one batch can depend on each other.
    pub id: JobId,
    /// The handler name.
    pub kind: String,
    /// Queue name (`[A-Za-z0-9_.:-]`, 1–128 characters). Default `"default"`.
    pub queue: String,
    pub priority: Priority,
    pub payload: Payload,
    /// Attempts before the job goes dead. Default 25.
    pub max_attempts: u32,
    /// Retry policy; `None` means the worker's default for the kind.
    pub retry: Option<RetryPolicy>,
    /// Not before this time; `None` means now (or `delay` after the job is stored).
    pub run_at: Option<Millis>,
    /// Not before this long after the job is stored: the backend adds it to its own clock
    /// at the moment it stores the job (the same instant it records as `created_at`), so
    /// the delay counts from the store, not from when the caller built the job. Setting it
    /// clears `run_at` and the other way round; see [`NewJob::due_at`].
    #[serde(
        default,
        with = "serde_ms::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
    /// Per-attempt time limit; `None` means the worker's default.
    #[serde(default, with = "serde_ms::option")]
    pub timeout: Option<Duration>,
    /// A key that makes the enqueue idempotent within the queue: while a live job with the
    /// same key exists, enqueue returns that job's id instead of storing a new one.
    ///
    /// A job is live for its key while it is scheduled, queued, blocked or running. After it
    /// succeeds it stays live until `created_at + unique_for` (if `unique_for` is set; the
    /// window of the *stored* job counts). A job that ended dead, cancelled or skipped never
    /// holds its key.
    pub unique_key: Option<String>,
    /// Keeps the key held after success until this long after the job was created (see
    /// `unique_key`).
    #[serde(default, with = "serde_ms::option")]
    pub unique_for: Option<Duration>,
    /// Jobs that must finish first (see `trigger`). They must already exist or come earlier
    /// in the same batch.
    pub depends_on: Vec<JobId>,
    pub trigger: Trigger,
    /// The workflow this job belongs to, if any.
    pub workflow_id: Option<String>,
    pub tags: Vec<String>,
    /// Free-form metadata for engines built on jobs (the workflow engine keeps its task id
    /// and templates here).
    pub meta: serde_json::Value,
    /// Payload schema version ([`Task::VERSION`](crate::Task::VERSION)): a worker upcasts
    /// a payload stored with an older version before its handler sees it. 0 states none
    /// (decoded as the handler's current version).
    pub version: u32,
    /// How long the result is kept after success; `None` means the worker's own
    /// `result_ttl` (by default: until the job is pruned). 1 ms to 100 years.
    #[serde(default, with = "serde_ms::option")]
    pub result_ttl: Option<Duration>,
    /// The producer's W3C trace context, continued by the worker that runs the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    /// The job's group within its queue (a tenant, an upstream account): a queue serves its
    /// groups round-robin and may cap running jobs per group (`group_concurrency`). `None`
    /// is the queue's "" group. 1–128 characters of letters, digits and `_ . : @ / + = -`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl NewJob {
    /// The default number of attempts.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 25;
    /// The longest [`NewJob::result_ttl`]: 100 years (36,500 days).
    pub const MAX_RESULT_TTL: Duration = Duration::from_secs(36_500 * 86_400);

    /// A job of `kind` with `payload`, every other field at its default.
    pub fn new(kind: impl Into<String>, payload: Payload) -> Self {
        NewJob {
            id: JobId::new(),
            kind: kind.into(),
            queue: DEFAULT_QUEUE.into(),
            priority: Priority::NORMAL,
            payload,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            retry: None,
            run_at: None,
            delay: None,
            timeout: None,
            unique_key: None,
            unique_for: None,
            depends_on: Vec::new(),
            trigger: Trigger::AllSuccess,
            workflow_id: None,
            tags: Vec::new(),
            meta: serde_json::Value::Null,
            group: None,
            version: 0,
            result_ttl: None,
            trace: None,
        }
    }

    /// A job of `kind` whose payload is this JSON value. An encoding failure is returned,
    /// never stored as some other payload.
    pub fn json(kind: impl Into<String>, payload: serde_json::Value) -> Result<Self, Error> {
        let p = Payload::from_json_value(
            &payload,
            &super::Codec {
                max_bytes: usize::MAX,
                ..Default::default()
            },
        )?;
        Ok(Self::new(kind, p))
    }

    pub fn queue(mut self, q: impl Into<String>) -> Self {
        self.queue = q.into();
        self
    }
    pub fn priority(mut self, p: Priority) -> Self {
        self.priority = p;
        self
    }
    /// Due at this time (clears a `delay`).
    pub fn run_at(mut self, at: Millis) -> Self {
        self.run_at = Some(at);
        self.delay = None;
        self
    }
    /// Due this long after the backend stores the job (clears a `run_at`).
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self.run_at = None;
        self
    }

    /// When the job is due if it is stored at `now` (the backend's clock at the store):
    /// `now + delay`, else `run_at`, else `now`. Every backend computes the stored `run_at`
    /// with this.
    pub fn due_at(&self, now: Millis) -> Millis {
        match self.delay {
            Some(d) => now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            None => self.run_at.unwrap_or(now),
        }
    }
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }
    pub fn retry(mut self, p: RetryPolicy) -> Self {
        self.retry = Some(p);
        self
    }
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Keeps this job's result for `d` after success, whatever the worker's default.
    pub fn result_ttl(mut self, d: Duration) -> Self {
        self.result_ttl = Some(d);
        self
    }
    pub fn unique(mut self, key: impl Into<String>, window: Option<Duration>) -> Self {
        self.unique_key = Some(key.into());
        self.unique_for = window;
        self
    }
    pub fn depends_on(mut self, ids: impl IntoIterator<Item = JobId>) -> Self {
        self.depends_on.extend(ids);
        self
    }
    pub fn trigger(mut self, t: Trigger) -> Self {
        self.trigger = t;
        self
    }
    pub fn workflow(mut self, id: impl Into<String>) -> Self {
        self.workflow_id = Some(id.into());
        self
    }
    pub fn id(mut self, id: JobId) -> Self {
        self.id = id;
        self
    }
    /// Carries this W3C trace context (see [`TraceContext`]).
    pub fn trace(mut self, tc: TraceContext) -> Self {
        self.trace = Some(tc);
        self
    }
    /// The payload schema version ([`Task::VERSION`](crate::Task::VERSION); 0 states none).
    pub fn version(mut self, v: u32) -> Self {
        self.version = v;
        self
    }
    /// Puts the job in a group of its queue (see [`NewJob::group`]).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Checks everything that can be checked without the store. Backends call this for every
    /// job before writing anything, so a bad job never reaches storage.
    pub fn validate(&self, limits: &Limits) -> Result<(), Error> {
        let bad = |reason: String| {
            Err(Error::InvalidJob {
                index: None,
                reason,
            })
        };
        if self.kind.is_empty() || self.kind.len() > 255 || self.kind.chars().any(char::is_control)
        {
            return bad(format!(
                "kind {:?} must be 1-255 printable characters",
                self.kind
            ));
        }
        // Reported as an invalid job (not a bare invalid argument) so a batch names the item.
        if let Some(reason) = queue_name_problem(&self.queue) {
            return bad(reason);
        }
        if self.payload.stored_bytes().len() > limits.max_payload_bytes {
            return Err(Error::PayloadTooLarge {
                size: self.payload.stored_bytes().len(),
                limit: limits.max_payload_bytes,
            });
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1".into());
        }
        if self.delay.is_some() && self.run_at.is_some() {
            return bad("give either run_at or delay, not both".into());
        }
        if let Some(Err(e)) = self.retry.as_ref().map(RetryPolicy::validate) {
            return bad(e.to_string());
        }
        if self
            .result_ttl
            .is_some_and(|d| d.is_zero() || d > Self::MAX_RESULT_TTL)
        {
            return bad("result_ttl must be between 1ms and 100 years".into());
        }
        if let Some(k) = &self.unique_key {
            if k.is_empty() || k.len() > 1024 {
                return bad("unique key must be 1-1024 bytes".into());
            }
        } else if self.unique_for.is_some() {
            return bad("unique_for needs a unique key".into());
        }
        if self.depends_on.contains(&self.id) {
            return bad("a job cannot depend on itself".into());
        }
        if self.depends_on.len() > 10_000 {
            return bad("at most 10000 dependencies".into());
        }
        if self
            .workflow_id
            .as_ref()
            .is_some_and(|w| w.is_empty() || w.len() > 128)
        {
            return bad("workflow id must be 1-128 bytes".into());
        }
        if self.tags.iter().any(|t| t.is_empty() || t.len() > 128) || self.tags.len() > 64 {
            return bad("at most 64 tags of 1-128 bytes".into());
        }
        if let Some(why) = self.trace.as_ref().and_then(TraceContext::problem) {
            return bad(why);
        }
        if let Some(reason) = self.group.as_deref().and_then(group_name_problem) {
            return bad(reason);
        }
        Ok(())
    }
}

/// What is wrong with a group key, if anything: 1–128 characters of ASCII letters, digits
/// and `_ . : @ / + = -` (no braces, spaces or control characters, so it is safe in a Redis
/// key and in a log line).
pub fn group_name_problem(g: &str) -> Option<String> {
    let ok = !g.is_empty()
        && g.len() <= 128
        && g.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '/' | '+' | '=' | '-')
        });
    (!ok).then(|| {
        format!("group {g:?} must be 1-128 characters of letters, digits and _ . : @ / + = -")
    })
}

/// Checks a queue name: 1–128 characters of letters, digits and `_ . : -`. Braces are not
/// allowed because Redis Cluster uses `{…}` as the hash tag.
pub fn validate_queue_name(q: &str) -> Result<(), Error> {
    match queue_name_problem(q) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidArgument(reason)),
    }
}

/// What is wrong with a queue name, if anything (the reason [`validate_queue_name`] gives).
pub fn queue_name_problem(q: &str) -> Option<String> {
    let ok = !q.is_empty()
        && q.len() <= 128
        && q.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    (!ok).then(|| {
        format!(
            "queue name {q:?} must be 1-128 characters of letters, digits, '_', '.', ':' or '-'"
        )
    })
}

/// A stored job, as read back from a backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub queue: String,
    pub priority: Priority,
    pub payload: Payload,
    pub state: JobState,
    /// Attempts started so far, including a running one. A snooze or a graceful give-back
    /// does not count.
    pub attempt: u32,
    pub max_attempts: u32,
    pub retry: Option<RetryPolicy>,
    /// When the job is (or was) due.
    pub run_at: Millis,
    pub created_at: Millis,
    /// When the handler of the current or last attempt started, as the worker reported it
    /// with the attempt's outcome. `None` while a claimed job has not reported yet (it may
    /// still wait in the worker's local buffer), and for attempts that ran no handler.
    /// Wait time is `started_at − run_at`; run time is `finished_at − started_at` (see
    /// [`Job::wait_ms`], [`Job::run_ms`]).
    pub started_at: Option<Millis>,
    /// When the current or last attempt was claimed (its lease granted). A prefetching
    /// worker may hold a claimed job a while before its handler starts.
    #[serde(default)]
    pub claimed_at: Option<Millis>,
    /// When the job reached a terminal state.
    pub finished_at: Option<Millis>,
    /// The lease, while running.
    pub lease: Option<Lease>,
    /// The fencing epoch: incremented by every claim. Only a lease token carrying the current
    /// epoch may change a running job.
    pub lease_epoch: u64,
    #[serde(default, with = "serde_ms::option")]
    pub timeout: Option<Duration>,
    pub unique_key: Option<String>,
    #[serde(default, with = "serde_ms::option")]
    pub unique_for: Option<Duration>,
    pub depends_on: Vec<JobId>,
    pub trigger: Trigger,
    pub workflow_id: Option<String>,
    pub tags: Vec<String>,
    pub meta: serde_json::Value,
    pub version: u32,
    /// The handler's result once succeeded (until it expires).
    pub result: Option<Payload>,
    pub result_expires_at: Option<Millis>,
    /// The job's own result retention ([`NewJob::result_ttl`]); `None` uses the worker's.
    #[serde(default, with = "serde_ms::option")]
    pub result_ttl: Option<Duration>,
    /// Every failed attempt, oldest first.
    pub errors: Vec<ErrorRecord>,
    pub progress: Option<Progress>,
    /// The last checkpoint the handler saved; a re-delivered attempt resumes from it.
    pub checkpoint: Option<Payload>,
    /// The W3C trace context stored at enqueue ([`NewJob::trace`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    /// The job's group in its queue ([`NewJob::group`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Job {
    /// How long the last attempt waited from when it was due to when its handler started
    /// (enqueue → start for a job that ran at once), if it has started.
    pub fn wait_ms(&self) -> Option<Millis> {
        self.started_at.map(|s| (s - self.run_at).max(0))
    }

    /// How long the last attempt's handler ran, once the job is finished.
    pub fn run_ms(&self) -> Option<Millis> {
        match (self.started_at, self.finished_at) {
            (Some(s), Some(f)) => Some((f - s).max(0)),
            _ => None,
        }
    }

    /// Builds the stored form of a freshly enqueued job. Backends use this so that every
    /// field gets the same initial value everywhere.
    pub fn from_new(new: NewJob, state: JobState, now: Millis) -> Job {
        let run_at = new.due_at(now);
        Job {
            id: new.id,
            kind: new.kind,
            queue: new.queue,
            priority: new.priority,
            payload: new.payload,
            state,
            attempt: 0,
            max_attempts: new.max_attempts,
            retry: new.retry,
            run_at,
            created_at: now,
            started_at: None,
            claimed_at: None,
            finished_at: None,
            lease: None,
            lease_epoch: 0,
            timeout: new.timeout,
            unique_key: new.unique_key,
            unique_for: new.unique_for,
            depends_on: new.depends_on,
            trigger: new.trigger,
            workflow_id: new.workflow_id,
            tags: new.tags,
            meta: new.meta,
            version: new.version,
            result: None,
            result_expires_at: None,
            result_ttl: new.result_ttl,
            errors: Vec::new(),
            progress: None,
            checkpoint: None,
            trace: new.trace,
            group: new.group,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Codec;

    #[test]
    fn trigger_resolution() {
        use JobState::*;
        assert_eq!(
            Trigger::AllSuccess.resolve(&[Succeeded, Succeeded]),
            Some(Queued)
        );
        assert_eq!(Trigger::AllSuccess.resolve(&[Succeeded, Running]), None);
        assert_eq!(Trigger::AllSuccess.resolve(&[Running, Dead]), Some(Skipped));
        assert_eq!(Trigger::AllDone.resolve(&[Dead, Succeeded]), Some(Queued));
        assert_eq!(Trigger::AllDone.resolve(&[Dead, Queued]), None);
        assert_eq!(
            Trigger::AnySuccess.resolve(&[Queued, Succeeded]),
            Some(Queued)
        );
        assert_eq!(Trigger::AnySuccess.resolve(&[Dead, Running]), None);
        assert_eq!(
            Trigger::AnySuccess.resolve(&[Dead, Cancelled]),
            Some(Skipped)
        );
    }

    #[test]
    fn validation_catches_bad_jobs() {
        let l = Limits::default();
        let ok = NewJob::json("k", serde_json::json!({"a": 1})).unwrap();
        ok.validate(&l).unwrap();
        assert!(ok.clone().queue("bad queue").validate(&l).is_err());
        assert!(ok.clone().queue("{tag}").validate(&l).is_err());
        assert!(ok.clone().max_attempts(0).validate(&l).is_err());
        let me = ok.id;
        assert!(ok.clone().depends_on([me]).validate(&l).is_err());
        let mut nk = ok.clone();
        nk.kind = String::new();
        assert!(nk.validate(&l).is_err());
        let big = Payload::encode(
            &"x".repeat(2000),
            &Codec {
                compress_above: usize::MAX,
                ..Codec::default()
            },
        )
        .unwrap();
        let small = Limits {
            max_payload_bytes: 1000,
        };
        assert!(matches!(
            NewJob::new("k", big).validate(&small),
            Err(Error::PayloadTooLarge { .. })
        ));
    }

    #[test]
    fn trigger_codes_round_trip_and_unknown_codes_are_errors() {
        for t in [Trigger::AllSuccess, Trigger::AllDone, Trigger::AnySuccess] {
            assert_eq!(Trigger::from_code(t.code()).unwrap(), t);
        }
        assert!(matches!(Trigger::from_code(3), Err(Error::Storage(_))));
        assert!(matches!(Trigger::from_code(-1), Err(Error::Storage(_))));
    }

    #[test]
    fn error_messages_are_cut_at_a_char_boundary() {
        assert_eq!(truncate_error_message("short"), "short");
        let long = "é".repeat(3000); // 6000 bytes, 2-byte chars
        let cut = truncate_error_message(&long);
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= MAX_ERROR_MESSAGE_BYTES + '…'.len_utf8());
        assert_eq!(cut.trim_end_matches('…').len(), MAX_ERROR_MESSAGE_BYTES);
    }

    #[test]
    fn stored_results_obey_the_payload_limit() {
        let limits = Limits {
            max_payload_bytes: 8,
        };
        assert!(limits.check_stored(None).is_ok());
        let small = Payload::from_json_value(&serde_json::json!(1), &Default::default()).unwrap();
        assert!(limits.check_stored(Some(&small)).is_ok());
        let big = Payload::from_json_value(&serde_json::json!("0123456789"), &Default::default())
            .unwrap();
        assert!(matches!(
            limits.check_stored(Some(&big)),
            Err(Error::PayloadTooLarge { limit: 8, .. })
        ));
    }

    #[test]
    fn queue_name_problems_are_values() {
        assert_eq!(queue_name_problem("mail.high"), None);
        let why = queue_name_problem("{bad}").unwrap();
        assert!(why.contains("queue name"), "{why}");
        match NewJob::new("k", Payload::default())
            .queue("{bad}")
            .validate(&Limits::default())
        {
            Err(Error::InvalidJob { reason, .. }) => assert_eq!(reason, why),
            other => panic!("{other:?}"),
        }
    }
}
