//! Job transitions: enqueue, claim, heartbeat, complete, fail, release, cancel, retry.

use std::collections::HashSet;

use quern::backend::*;
use quern::model::ErrorRecord;
use quern::{Error, Job, JobId, JobState, Result, Trigger};
use redis::Value;

use crate::backend::{Args, RedisBackend, reply};
use crate::codec::{self, decode_job, encode_payload, encode_static, fields_from_value};
use crate::scripts;

/// Jobs per enqueue script call in best-effort mode (an atomic batch is always one call).
const ENQUEUE_CHUNK: usize = 2000;

fn trigger_code(t: Trigger) -> i64 {
    match t {
        Trigger::AllSuccess => 0,
        Trigger::AllDone => 1,
        Trigger::AnySuccess => 2,
    }
}

/// True when the jobs `idxs` can take the plain enqueue script (`enqueue_plain.lua`): no
/// unique key, no dependencies, no workflow, and no id twice.
fn all_plain(params: &EnqueueParams, idxs: &[usize]) -> bool {
    // A fast hasher: SipHash over every id of a batch showed in the client's profile.
    let mut ids =
        HashSet::with_capacity_and_hasher(idxs.len(), foldhash::fast::RandomState::default());
    idxs.iter().all(|i| {
        let j = &params.jobs[*i];
        j.unique_key.is_none()
            && j.depends_on.is_empty()
            && j.workflow_id.is_none()
            && ids.insert(j.id)
    })
}

/// What consecutive plain jobs must share to form one group of `enqueue_plain.lua`: queue,
/// run_at, priority, max attempts and chunk count.
type GroupKey<'a> = (&'a str, i64, u8, u32, usize);

/// The plain enqueue script's arguments for the jobs `idxs` (see `all_plain`): runs of
/// consecutive jobs that share queue, run_at, priority, max attempts and chunk count form a
/// group, whose shared values are sent once (see `enqueue_plain.lua`).
fn plain_args_for(params: &EnqueueParams, idxs: &[usize], atomic: bool, now: i64) -> Result<Args> {
    let mut args = Args::default();
    args.0.reserve(2 + 4 * idxs.len());
    args.s(if atomic { "a" } else { "b" }).n(idxs.len() as i64);
    // The current group's key and the index of its job-count argument.
    let mut group: Option<(GroupKey, usize)> = None;
    let mut count = 0i64;
    for i in idxs {
        let j = &params.jobs[*i];
        let run_at = j.due_at(now);
        let blob = encode_static(j)?;
        let chunks = codec::static_chunks(&blob);
        let key = (
            j.queue.as_str(),
            run_at,
            j.priority.get(),
            j.max_attempts,
            chunks.len(),
        );
        if group.map(|(k, _)| k) != Some(key) {
            if let Some((_, at)) = group {
                args.0[at] = count.to_string().into_bytes();
            }
            args.s(&j.queue);
            if run_at > now {
                args.s("");
            } else {
                args.n(codec::ready_score(j.priority.get(), run_at));
            }
            args.n(run_at)
                .n(i64::from(j.priority.get()))
                .n(i64::from(j.max_attempts))
                .n(chunks.len() as i64);
            group = Some((key, args.0.len()));
            args.s("");
            count = 0;
        }
        count += 1;
        args.b(j.id.to_string().into_bytes());
        for c in chunks {
            args.b(c.to_vec());
        }
    }
    if let Some((_, at)) = group {
        args.0[at] = count.to_string().into_bytes();
    }
    Ok(args)
}

/// An enqueue script call: the plain script, or `None` for the general one (which
/// `eval_enqueue` runs, adding workflow members), and its arguments.
struct EnqueueCall {
    script: Option<&'static redis::Script>,
    args: Args,
}

/// The enqueue script for the jobs `idxs` (the plain one when it can take them) and its
/// arguments.
fn enqueue_call_for(
    params: &EnqueueParams,
    idxs: &[usize],
    atomic: bool,
    now: i64,
) -> Result<EnqueueCall> {
    if all_plain(params, idxs) {
        return Ok(EnqueueCall {
            script: Some(&scripts::ENQUEUE_PLAIN),
            args: plain_args_for(params, idxs, atomic, now)?,
        });
    }
    Ok(EnqueueCall {
        script: None,
        args: args_for(params, idxs, atomic, now)?,
    })
}

/// The enqueue script's arguments for the jobs `idxs`.
pub(crate) fn args_for(
    params: &EnqueueParams,
    idxs: &[usize],
    atomic: bool,
    now: i64,
) -> Result<Args> {
    let mut args = Args::default();
    args.s(if atomic { "a" } else { "b" }).n(idxs.len() as i64);
    for i in idxs {
        let j = &params.jobs[*i];
        let mut seen = HashSet::new();
        let deps: Vec<&JobId> = j.depends_on.iter().filter(|d| seen.insert(*d)).collect();
        args.s(&j.id.to_string())
            .s(&j.queue)
            .n(i64::from(j.priority.get()))
            .n(i64::from(j.max_attempts))
            .n(j.due_at(now))
            .b(encode_static(j)?)
            .s(j.unique_key.as_deref().unwrap_or(""));
        match j.unique_for {
            Some(d) => args.n(d.as_millis() as i64),
            None => args.s(""),
        };
        args.n(trigger_code(j.trigger)).n(deps.len() as i64);
        for d in deps {
            args.s(&d.to_string());
        }
    }
    Ok(args)
}

/// Applies what `claim.lua` wrote to the job image it returned (taken before the claim):
/// running, epoch + 1, attempt + 1, started now, leased to `worker` until `until`.
fn apply_claim(f: &mut codec::Fields, now: i64, until: i64, worker: &str) {
    let bump = |f: &mut codec::Fields, k: &str| {
        let v = f
            .get(k)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        f.insert(k.into(), (v + 1).to_string().into_bytes());
    };
    bump(f, "e");
    bump(f, "a");
    f.insert(
        "s".into(),
        JobState::Running.as_i64().to_string().into_bytes(),
    );
    f.insert("k".into(), now.to_string().into_bytes());
    f.insert("lw".into(), worker.as_bytes().to_vec());
    f.insert("lx".into(), until.to_string().into_bytes());
}

/// Puts per-item refusals back at their input positions among the other items' results.
fn merge_refused<T>(done: Vec<Result<T>>, refused: Vec<(usize, Error)>) -> Vec<Result<T>> {
    let total = done.len() + refused.len();
    let mut refused = refused.into_iter().peekable();
    let mut done = done.into_iter();
    let mut out = Vec::with_capacity(total);
    for i in 0..total {
        match refused.peek() {
            Some((j, _)) if *j == i => {
                out.push(Err(refused.next().map(|r| r.1).unwrap_or(Error::Shutdown)))
            }
            _ => out.push(done.next().unwrap_or(Err(Error::Shutdown))),
        }
    }
    out
}

/// The claim script's reply: queue, id and the hash as it was, per job taken (see
/// `lua/claim.lua` and `packed.rs`).
fn claimed_images(v: Value) -> Result<Vec<(String, String, codec::Fields)>> {
    let buf = match v {
        Value::BulkString(b) => b,
        Value::Array(a) if a.is_empty() => return Ok(Vec::new()),
        Value::Nil => return Ok(Vec::new()),
        other => {
            return Err(Error::Storage(format!("unexpected claim reply {other:?}")));
        }
    };
    let mut r = crate::packed::Reader::new(&buf);
    let n = r.array()?;
    if n % 3 != 0 {
        return Err(Error::Storage("claim reply has the wrong length".into()));
    }
    let mut out = Vec::with_capacity(n / 3);
    for _ in 0..n / 3 {
        let q = r.text()?.to_string();
        let id = r.text()?.to_string();
        let m = r.array()?;
        let mut f = codec::fields_with_capacity(m / 2 + 6);
        for _ in 0..m / 2 {
            let k = r.text()?.to_string();
            f.insert(k, r.bytes()?.to_vec());
        }
        out.push((q, id, f));
    }
    if !r.done() {
        return Err(Error::Storage("claim reply has trailing bytes".into()));
    }
    Ok(out)
}

fn state_of(v: &Value) -> Result<JobState> {
    JobState::from_i64(reply::int(v)?).ok_or_else(|| Error::Storage("bad state".into()))
}

impl RedisBackend {
    pub(crate) async fn enqueue_impl(&self, params: EnqueueParams) -> Result<EnqueueResults> {
        let atomic = params.mode == BatchMode::Atomic;
        let n = params.jobs.len();
        let mut results: Vec<Option<Result<EnqueueOutcome>>> = (0..n).map(|_| None).collect();
        // Checks that need no store, before anything is written.
        let mut valid = Vec::with_capacity(n);
        for (i, job) in params.jobs.iter().enumerate() {
            match job.validate(&self.inner.limits) {
                Ok(()) => valid.push(i),
                Err(e) => {
                    let e = match e {
                        Error::InvalidJob { reason, .. } | Error::InvalidArgument(reason) => {
                            Error::InvalidJob {
                                index: Some(i),
                                reason,
                            }
                        }
                        other => other,
                    };
                    if atomic {
                        return Err(e);
                    }
                    results[i] = Some(Err(e));
                }
            }
        }
        if atomic && self.cluster() {
            let qs: HashSet<&str> = params.jobs.iter().map(|j| j.queue.as_str()).collect();
            if qs.len() > 1 {
                return Err(Error::InvalidArgument(
                    "an atomic batch must stay in one queue on Redis Cluster (each queue lives in its own hash slot); use best-effort mode or one batch per queue".into(),
                ));
            }
        }
        // Groups: all valid jobs in one script on a single node; one per queue on Cluster.
        let queues: Vec<String> = valid
            .iter()
            .map(|i| params.jobs[*i].queue.clone())
            .collect();
        let mut calls: Vec<(String, Vec<usize>)> = Vec::new();
        for (q, idxs) in self.group_by_queue(&queues) {
            let idxs: Vec<usize> = idxs.into_iter().map(|k| valid[k]).collect();
            if atomic {
                calls.push((q, idxs));
            } else {
                for c in idxs.chunks(ENQUEUE_CHUNK) {
                    calls.push((q.clone(), c.to_vec()));
                }
            }
        }
        let now = self.now();
        for (q, idxs) in calls {
            let args = enqueue_call_for(&params, &idxs, atomic, now)?;
            // On Cluster the registry and id index live in the global slot, outside the
            // script: written first, so a stored job is always findable. Ids already used
            // in another queue are refused here.
            let mut indexed: Vec<JobId> = Vec::new();
            if self.cluster() {
                self.query::<()>(redis::cmd("SADD").arg(self.gk("queues")).arg(&q).clone())
                    .await?;
                let mut ia = Args::default();
                ia.n(idxs.len() as i64);
                for i in &idxs {
                    ia.s(&params.jobs[*i].id.to_string()).s(&q);
                }
                let marks = reply::array(
                    self.eval_key(&scripts::INDEX, &self.gk("idx"), now, &ia)
                        .await?,
                )?;
                let mut clash = Vec::new();
                for (i, m) in idxs.iter().zip(marks) {
                    match reply::int(&m) {
                        Ok(1) => indexed.push(params.jobs[*i].id),
                        Ok(_) => {}
                        Err(_) => clash.push((*i, reply::string(m)?)),
                    }
                }
                if !clash.is_empty() {
                    let errs: Vec<(usize, Error)> = clash
                        .into_iter()
                        .map(|(i, other)| {
                            (
                                i,
                                Error::InvalidJob {
                                    index: Some(i),
                                    reason: format!(
                                        "job id {} is already used by a job in queue {other:?}",
                                        params.jobs[i].id
                                    ),
                                },
                            )
                        })
                        .collect();
                    if atomic {
                        self.unindex(&indexed).await;
                        return Err(errs
                            .into_iter()
                            .next()
                            .map(|e| e.1)
                            .unwrap_or(Error::Shutdown));
                    }
                    let bad: HashSet<usize> = errs.iter().map(|e| e.0).collect();
                    for (i, e) in errs {
                        results[i] = Some(Err(e));
                    }
                    let idxs: Vec<usize> =
                        idxs.iter().copied().filter(|i| !bad.contains(i)).collect();
                    if idxs.is_empty() {
                        continue;
                    }
                    self.enqueue_call(
                        &params,
                        &q,
                        &idxs,
                        &enqueue_call_for(&params, &idxs, atomic, now)?,
                        now,
                        atomic,
                        &indexed,
                        &mut results,
                    )
                    .await?;
                    continue;
                }
            }
            self.enqueue_call(
                &params,
                &q,
                &idxs,
                &args,
                now,
                atomic,
                &indexed,
                &mut results,
            )
            .await?;
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Storage("job not handled".into()))))
            .collect())
    }

    /// Runs the enqueue script for the jobs `idxs` of one call and records their outcomes.
    #[allow(clippy::too_many_arguments)]
    async fn enqueue_call(
        &self,
        params: &EnqueueParams,
        q: &str,
        idxs: &[usize],
        call: &EnqueueCall,
        now: i64,
        atomic: bool,
        indexed: &[JobId],
        results: &mut [Option<Result<EnqueueOutcome>>],
    ) -> Result<()> {
        // Jobs carrying a workflow id also join its member set (see workflows.rs); plain
        // batches carry none.
        let out = match call.script {
            Some(script) => self.eval(script, Some(q), now, &call.args, true).await?,
            None => self.eval_enqueue(params, idxs, q, now, &call.args).await?,
        };
        let out = reply::array(out)?;
        let mut it = out.into_iter();
        let codes = codec::bulk_bytes(it.next().unwrap_or(Value::Nil))?;
        if codes.len() != 2 * idxs.len() {
            return Err(Error::Storage(
                "enqueue script reply has the wrong length".into(),
            ));
        }
        let mut details = std::collections::HashMap::new();
        while let (Some(i), Some(v)) = (it.next(), it.next()) {
            details.insert(reply::int(&i)? as usize - 1, reply::string(v)?);
        }
        let mut rejected = Vec::new();
        for (k, i) in idxs.iter().enumerate() {
            let code = codes[2 * k] - b'0';
            let state = || {
                JobState::from_i64(i64::from(codes[2 * k + 1] - b'0'))
                    .ok_or_else(|| Error::Storage("bad state in enqueue reply".into()))
            };
            let own = params.jobs[*i].id;
            let r = match code {
                0 | 2 => Ok(EnqueueOutcome {
                    id: own,
                    state: state()?,
                    duplicate: false,
                }),
                1 => Ok(EnqueueOutcome {
                    id: details
                        .get(&k)
                        .ok_or_else(|| Error::Storage("missing duplicate id".into()))?
                        .parse()?,
                    state: state()?,
                    duplicate: true,
                }),
                _ => {
                    rejected.push(own);
                    Err(Error::InvalidJob {
                        index: Some(*i),
                        reason: details.remove(&k).unwrap_or_default(),
                    })
                }
            };
            if atomic && let Err(e) = r {
                self.unindex(indexed).await;
                return Err(e);
            }
            if code == 1 && indexed.contains(&own) {
                // Not stored (a unique-key duplicate): its id was never used.
                rejected.push(own);
            }
            results[*i] = Some(r);
        }
        if self.cluster() {
            let drop: Vec<JobId> = rejected
                .into_iter()
                .filter(|id| indexed.contains(id))
                .collect();
            self.unindex(&drop).await;
        }
        Ok(())
    }
    /// Drops ids from the Cluster id index (jobs that were not stored, or were pruned).
    pub(crate) async fn unindex(&self, ids: &[JobId]) {
        if ids.is_empty() {
            return;
        }
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(self.gk("idx"));
        for id in ids {
            cmd.arg(id.to_string());
        }
        if let Err(e) = self.query::<()>(cmd).await {
            tracing::warn!(error = %e, "could not clean the id index; stale entries are harmless");
        }
    }

    pub(crate) async fn claim_impl(&self, params: ClaimParams) -> Result<Vec<ClaimedJob>> {
        if params.limit == 0 || params.queues.is_empty() {
            return Ok(Vec::new());
        }
        for q in &params.queues {
            crate::backend::check_queue(&q.queue)?;
        }
        let now = self.now();
        let lease_ms = params.lease.as_millis() as i64;
        let mut claimed = Vec::new();
        // Each job goes to a queue drawn by weight among those that still have work (the
        // core's `ClaimSplit`); a queue that returns fewer jobs than asked is out, and its
        // share is drawn again.
        let split = ClaimSplit::new(&params.queues);
        let queues = split.queues();
        let mut open: Vec<usize> = (0..queues.len()).collect();
        let mut left = params.limit;
        for _round in 0..4 {
            if left == 0 || open.is_empty() {
                break;
            }
            let want = split.draw(&open, left, fastrand::f64);
            let names: Vec<String> = open.iter().map(|i| queues[*i].queue.clone()).collect();
            let mut got = vec![0usize; queues.len()];
            for (_, members) in self.group_by_queue(&names) {
                let mut args = Args::default();
                args.s(&params.worker_id)
                    .n(lease_ms)
                    .n(members.len() as i64);
                for m in &members {
                    let qi = open[*m];
                    args.s(&queues[qi].queue).n(want[qi] as i64);
                }
                args.s(&codec::score_bound(params.more_urgent_than));
                let slot = &queues[open[members[0]]].queue;
                let out = self
                    .eval(&scripts::CLAIM, Some(slot), now, &args, false)
                    .await?;
                for (q, id, mut f) in claimed_images(out)? {
                    apply_claim(&mut f, now, now + lease_ms, &params.worker_id);
                    let job = decode_job(&q, &id, &f, now)?;
                    if let Some(qi) = queues.iter().position(|w| w.queue == q) {
                        got[qi] += 1;
                    }
                    self.cache_queue(job.id, &q);
                    let token = LeaseToken {
                        job_id: job.id,
                        epoch: job.lease_epoch,
                        attempt: job.attempt,
                    };
                    claimed.push(ClaimedJob { job, token });
                }
            }
            let before = open.len();
            open.retain(|i| got[*i] >= want[*i]);
            let n: usize = got.iter().sum();
            left -= n.min(left);
            if open.len() == before {
                break;
            }
        }
        Ok(claimed)
    }

    /// Resolves the queue of each token's job; items whose job does not exist are `None`.
    async fn token_queues(&self, tokens: &[&LeaseToken]) -> Result<Vec<Option<String>>> {
        let ids: Vec<JobId> = tokens.iter().map(|t| t.job_id).collect();
        self.queues_of(&ids).await
    }

    /// Runs a per-item script over tokens grouped by queue; `push` appends one item's
    /// arguments. Returns each item's integer reply (items without a queue get `missing`).
    async fn per_item(
        &self,
        script: &redis::Script,
        tokens: Vec<&LeaseToken>,
        head: impl Fn(&mut Args),
        push: impl Fn(usize, &mut Args),
        wait: bool,
        missing: i64,
    ) -> Result<Vec<i64>> {
        let now = self.now();
        let queues = self.token_queues(&tokens).await?;
        let mut out = vec![missing; tokens.len()];
        let present: Vec<usize> = (0..tokens.len()).filter(|i| queues[*i].is_some()).collect();
        let names: Vec<String> = present
            .iter()
            .map(|i| queues[*i].clone().unwrap_or_default())
            .collect();
        for (q, members) in self.group_by_queue(&names) {
            let mut args = Args::default();
            head(&mut args);
            args.n(members.len() as i64);
            for m in &members {
                let i = present[*m];
                args.s(queues[i].as_deref().unwrap_or(""))
                    .s(&tokens[i].job_id.to_string())
                    .n(tokens[i].epoch as i64);
                push(i, &mut args);
            }
            let r = reply::array(self.eval(script, Some(&q), now, &args, wait).await?)?;
            for (m, v) in members.iter().zip(r) {
                out[present[*m]] = reply::int(&v)?;
            }
        }
        Ok(out)
    }

    /// `PayloadTooLarge` for a result or checkpoint over the limit (checked per item, so
    /// the other items of a batch go through).
    fn too_large(&self, p: Option<&quern::Payload>) -> Option<Error> {
        let size = p?.stored_bytes().len();
        let limit = self.inner.limits.max_payload_bytes;
        (size > limit).then_some(Error::PayloadTooLarge { size, limit })
    }

    pub(crate) async fn heartbeat_impl(
        &self,
        params: HeartbeatParams,
    ) -> Result<Vec<Result<quern::Millis>>> {
        let (refused, params) = {
            let mut refused = Vec::new();
            let mut keep = Vec::new();
            for (i, it) in params.items.into_iter().enumerate() {
                match self.too_large(it.checkpoint.as_ref()) {
                    Some(e) => refused.push((i, e)),
                    None => keep.push(it),
                }
            }
            (
                refused,
                HeartbeatParams {
                    items: keep,
                    lease: params.lease,
                },
            )
        };
        let r = self.heartbeat_checked(params).await?;
        Ok(merge_refused(r, refused))
    }

    async fn heartbeat_checked(
        &self,
        params: HeartbeatParams,
    ) -> Result<Vec<Result<quern::Millis>>> {
        if params.items.is_empty() {
            return Ok(Vec::new());
        }
        let lease_ms = params.lease.as_millis() as i64;
        let mut progress = Vec::with_capacity(params.items.len());
        for it in &params.items {
            progress.push(match &it.progress {
                Some(p) => serde_json::to_string(p).map_err(|e| Error::Codec(e.to_string()))?,
                None => String::new(),
            });
        }
        let tokens: Vec<&LeaseToken> = params.items.iter().map(|i| &i.token).collect();
        let items = &params.items;
        let r = self
            .per_item(
                &scripts::HEARTBEAT,
                tokens,
                |a| {
                    a.n(lease_ms);
                },
                |i, a| {
                    a.s(&progress[i]);
                    match &items[i].checkpoint {
                        Some(cp) => a.s("1").b(encode_payload(cp)),
                        None => a.s("0").s(""),
                    };
                },
                false,
                -1,
            )
            .await?;
        Ok(r.into_iter()
            .zip(&params.items)
            .map(|(v, it)| {
                if v < 0 {
                    Err(Error::LeaseLost {
                        job_id: it.token.job_id,
                    })
                } else {
                    Ok(v)
                }
            })
            .collect())
    }

    fn lost_or_ok(&self, r: Vec<i64>, tokens: &[&LeaseToken]) -> Vec<Result<()>> {
        r.into_iter()
            .zip(tokens)
            .map(|(v, t)| {
                if v == 1 {
                    self.forget_queue(&t.job_id);
                    Ok(())
                } else {
                    Err(Error::LeaseLost { job_id: t.job_id })
                }
            })
            .collect()
    }

    pub(crate) async fn complete_impl(&self, params: CompleteParams) -> Result<Vec<Result<()>>> {
        let mut refused = Vec::new();
        let mut keep = Vec::new();
        for (i, c) in params.items.into_iter().enumerate() {
            match self.too_large(c.result.as_ref()) {
                Some(e) => refused.push((i, e)),
                None => keep.push(c),
            }
        }
        let r = self
            .complete_checked(CompleteParams { items: keep })
            .await?;
        Ok(merge_refused(r, refused))
    }

    async fn complete_checked(&self, params: CompleteParams) -> Result<Vec<Result<()>>> {
        if params.items.is_empty() {
            return Ok(Vec::new());
        }
        let tokens: Vec<&LeaseToken> = params.items.iter().map(|c| &c.token).collect();
        let items = &params.items;
        let r = self
            .per_item(
                &scripts::COMPLETE,
                tokens.clone(),
                |_| {},
                |i, a| {
                    match &items[i].result {
                        Some(p) => a.b(encode_payload(p)),
                        None => a.s(""),
                    };
                    match items[i].result_ttl {
                        Some(d) => a.n(d.as_millis() as i64),
                        None => a.s(""),
                    };
                    match items[i].started_at {
                        Some(t) => a.n(t),
                        None => a.s(""),
                    };
                },
                true,
                0,
            )
            .await?;
        Ok(self.lost_or_ok(r, &tokens))
    }

    pub(crate) async fn fail_impl(&self, params: FailParams) -> Result<Vec<Result<()>>> {
        if params
            .items
            .iter()
            .any(|f| matches!(f.action, FailAction::Skip | FailAction::Spawn { .. }))
        {
            // Workflow actions have their own scripts (workflows.rs).
            return self.fail_with_workflow_actions(params).await;
        }
        let now = self.now();
        let tokens: Vec<&LeaseToken> = params.items.iter().map(|c| &c.token).collect();
        let items = &params.items;
        let r = self
            .per_item(
                &scripts::FAIL,
                tokens.clone(),
                |_| {},
                |i, a| {
                    let f = &items[i];
                    match &f.action {
                        FailAction::Retry { retry_at } => {
                            a.s("r");
                            match retry_at {
                                Some(t) => a.n(*t),
                                None => a.s(""),
                            };
                        }
                        FailAction::Dead => {
                            a.s("d").s("");
                        }
                        FailAction::Snooze { run_at } => {
                            a.s("s").n(*run_at);
                        }
                        FailAction::Cancel => {
                            a.s("c").s("");
                        }
                        FailAction::Skip | FailAction::Spawn { .. } => {
                            unreachable!("handled above")
                        }
                    }
                    a.s(&codec::error_line(&ErrorRecord {
                        attempt: f.token.attempt,
                        at: now,
                        kind: f.error_kind,
                        message: f.message.clone(),
                    }));
                    match f.started_at {
                        Some(t) => a.n(t),
                        None => a.s(""),
                    };
                },
                true,
                0,
            )
            .await?;
        Ok(self.lost_or_ok(r, &tokens))
    }

    pub(crate) async fn release_impl(&self, params: ReleaseParams) -> Result<Vec<Result<()>>> {
        let tokens: Vec<&LeaseToken> = params.tokens.iter().collect();
        let r = self
            .per_item(
                &scripts::RELEASE,
                tokens.clone(),
                |_| {},
                |_, _| {},
                false,
                0,
            )
            .await?;
        Ok(self.lost_or_ok(r, &tokens))
    }

    pub(crate) async fn cancel_impl(&self, params: CancelParams) -> Result<Job> {
        let now = self.now();
        let q = self.queues_of(&[params.id]).await?.pop().flatten();
        let Some(q) = q else {
            return Err(Error::JobNotFound(params.id));
        };
        let line = match &params.reason {
            Some(r) => {
                // The attempt is not known here; the script does not need it exactly, the
                // history records the attempt the job was at.
                let job = self.get_impl(params.id).await?;
                codec::error_line(&ErrorRecord {
                    attempt: job.map(|j| j.attempt).unwrap_or(0),
                    at: now,
                    kind: quern::model::ErrorKind::Cancelled,
                    message: r.clone(),
                })
            }
            None => String::new(),
        };
        let mut args = Args::default();
        args.s(&q).s(&params.id.to_string()).s(&line);
        let out = reply::array(
            self.eval(&scripts::CANCEL, Some(&q), now, &args, true)
                .await?,
        )?;
        match reply::int(&out[0])? {
            0 => {
                self.forget_queue(&params.id);
                let fields = fields_from_value(out.into_iter().nth(1).unwrap_or(Value::Nil))?;
                decode_job(&q, &params.id.to_string(), &fields, now)
            }
            1 => Err(Error::InvalidTransition {
                id: params.id,
                from: state_of(&out[1])?,
                action: "cancel",
            }),
            _ => Err(Error::JobNotFound(params.id)),
        }
    }

    pub(crate) async fn get_impl(&self, id: JobId) -> Result<Option<Job>> {
        let Some(q) = self.queues_of(&[id]).await?.pop().flatten() else {
            return Ok(None);
        };
        self.get_in(&q, id).await
    }

    pub(crate) async fn get_in(&self, q: &str, id: JobId) -> Result<Option<Job>> {
        let v: Value = self
            .query(
                redis::cmd("HGETALL")
                    .arg(self.qk(q, &format!("j:{id}")))
                    .clone(),
            )
            .await?;
        let fields = fields_from_value(v)?;
        if fields.is_empty() {
            return Ok(None);
        }
        decode_job(q, &id.to_string(), &fields, self.now()).map(Some)
    }

    pub(crate) async fn retry_impl(&self, params: RetryParams) -> Result<Vec<JobId>> {
        let ids: Vec<JobId> = match &params.target {
            RetryTarget::Ids(ids) => {
                let mut seen = HashSet::new();
                ids.iter().copied().filter(|i| seen.insert(*i)).collect()
            }
            RetryTarget::Dead { queue, kind } => {
                let mut out = Vec::new();
                let queues = match queue {
                    Some(q) => vec![q.clone()],
                    None => self.all_queues().await?,
                };
                'outer: for q in queues {
                    let mut cursor: Option<JobId> = None;
                    loop {
                        let page = self
                            .list_impl(ListParams {
                                filter: JobFilter {
                                    queue: Some(q.clone()),
                                    state: Some(JobState::Dead),
                                    kind: kind.clone(),
                                    workflow_id: None,
                                },
                                limit: 500,
                                before: cursor,
                            })
                            .await?;
                        for j in &page.jobs {
                            out.push(j.id);
                            if out.len() >= params.limit {
                                break 'outer;
                            }
                        }
                        match page.next {
                            Some(n) if !page.jobs.is_empty() => cursor = Some(n),
                            _ => break,
                        }
                    }
                }
                out
            }
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let queues = self.queues_of(&ids).await?;
        if let Some(i) = queues.iter().position(Option::is_none) {
            return Err(Error::JobNotFound(ids[i]));
        }
        let names: Vec<String> = queues.into_iter().map(Option::unwrap_or_default).collect();
        let now = self.now();
        let groups = self.group_by_queue(&names);
        // All or nothing: with several slot groups (Cluster), every group is checked before
        // any is moved.
        let phases: &[&str] = if groups.len() > 1 {
            &["1", "0"]
        } else {
            &["0"]
        };
        for phase in phases {
            for (q, members) in &groups {
                let mut args = Args::default();
                args.n(members.len() as i64).s(phase);
                for m in members {
                    args.s(&names[*m]).s(&ids[*m].to_string());
                }
                let out = reply::array(
                    self.eval(&scripts::RETRY, Some(q), now, &args, true)
                        .await?,
                )?;
                match reply::int(&out[0])? {
                    0 => {}
                    1 => {
                        let i = members[reply::int(&out[1])? as usize];
                        return Err(Error::InvalidTransition {
                            id: ids[i],
                            from: state_of(&out[2])?,
                            action: "retry",
                        });
                    }
                    2 => {
                        let i = members[reply::int(&out[1])? as usize];
                        return Err(Error::JobNotFound(ids[i]));
                    }
                    _ => {
                        let i = members[reply::int(&out[1])? as usize];
                        return Err(Error::InvalidArgument(format!(
                            "job {} cannot be retried: its dependencies can no longer meet its trigger (replay the failed dependency first)",
                            ids[i]
                        )));
                    }
                }
            }
        }
        Ok(ids)
    }
}
