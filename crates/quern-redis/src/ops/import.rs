//! `store_import`: records written back verbatim (restore, migrate).
//!
//! Jobs go through `import_jobs.lua`, one call per run of consecutive jobs of one queue (one
//! slot on Cluster), which checks every job of the call (id taken, dependencies known and,
//! on Cluster, in the job's queue) before it writes anything, then stores each job's hash
//! with every field as given and puts it in the structures of its state (ready, sched,
//! blocked or its terminal set; ids, uniq, rexp, dn edges and counters, the workflow member
//! sets): an imported job is claimed, promoted and settled by the ordinary scripts. Workflow
//! records go through `import_wf.lua` (in the home slot), schedules through
//! `import_cron.lua` (in the template queue's slot) after their name is claimed in the
//! global index, as a create does. In `Refuse` mode every id of the call is looked up before
//! the first write, so a taken id refuses the call with nothing written; what no lookup can
//! see (an unknown dependency) refuses only its script's run.

use std::collections::HashSet;

use quern::backend::{
    ImportItem, ImportMode, ImportParams, ImportReport, ImportSkip, ScheduleImport, check_import,
    import_image, import_taken,
};
use quern::model::{ScheduleRun, WorkflowRecord};
use quern::{Error, Job, JobId, Result};
use redis::Value;

use super::store::{self, Indexed};
use crate::backend::RedisBackend;
use crate::codec::{encode_payload, encode_static, error_line};
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// Most jobs sent in one script call.
const CHUNK: usize = 500;

fn codec_err(e: serde_json::Error) -> Error {
    Error::Codec(e.to_string())
}

fn with_index(e: Error, i: usize) -> Error {
    match e {
        Error::InvalidJob { reason, .. } | Error::InvalidArgument(reason)
            if !reason.contains("already stored") =>
        {
            Error::InvalidJob {
                index: Some(i),
                reason,
            }
        }
        other => other,
    }
}

pub(crate) async fn import(b: &RedisBackend, p: ImportParams) -> Result<ImportReport> {
    let now = b.now();
    for (i, job) in p.jobs.iter().enumerate() {
        check_import(job, &b.inner.limits).map_err(|e| with_index(e, i))?;
    }
    for s in &p.schedules {
        s.schedule.spec.validate()?;
    }
    for w in &p.workflows {
        quern::model::validate_workflow_id(&w.id)?;
    }
    for q in &p.queues {
        quern::model::validate_queue_name(&q.name)?;
    }
    if p.mode == ImportMode::Refuse {
        refuse_taken(b, &p).await?;
    }
    let mut report = ImportReport::default();
    for q in &p.queues {
        if !b.queue_exists(&q.name).await? {
            b.query::<()>(redis::cmd("SADD").arg(b.gk("queues")).arg(&q.name).clone())
                .await?;
            if q.paused {
                b.query::<()>(
                    redis::cmd("HSET")
                        .arg(b.qk(&q.name, "meta"))
                        .arg("paused")
                        .arg("1")
                        .clone(),
                )
                .await?;
            }
            report.queues += 1;
        }
    }
    let jobs: Vec<Job> = p.jobs.into_iter().map(|j| import_image(j, now)).collect();
    let mut start = 0;
    while start < jobs.len() {
        let q = &jobs[start].queue;
        let mut end = start + 1;
        while end < jobs.len() && end - start < CHUNK && jobs[end].queue == *q {
            end += 1;
        }
        import_run(b, &jobs[start..end], start, p.mode, now, &mut report).await?;
        start = end;
    }
    for rec in &p.workflows {
        if import_workflow(b, rec, p.mode, now).await? {
            report.workflows += 1;
        } else {
            report.skipped.push(ImportSkip {
                item: ImportItem::Workflow,
                id: rec.id.clone(),
            });
        }
    }
    for s in &p.schedules {
        if import_schedule(b, s, p.mode, now).await? {
            report.schedules += 1;
        } else {
            report.skipped.push(ImportSkip {
                item: ImportItem::Schedule,
                id: s.schedule.spec.name.clone(),
            });
        }
    }
    Ok(report)
}

/// `Refuse` mode: looks up every id of the call before anything is written.
async fn refuse_taken(b: &RedisBackend, p: &ImportParams) -> Result<()> {
    if !p.jobs.is_empty() {
        let ids: Vec<JobId> = p.jobs.iter().map(|j| j.id).collect();
        let found = quern::Backend::job_get_many(b, ids.clone().into()).await?;
        if let Some(i) = found.iter().position(Option::is_some) {
            return Err(import_taken(ImportItem::Job, &ids[i].to_string()));
        }
    }
    for w in &p.workflows {
        if super::workflow::get(b, &w.id).await?.is_some() {
            return Err(import_taken(ImportItem::Workflow, &w.id));
        }
    }
    for s in &p.schedules {
        let name = &s.schedule.spec.name;
        let known: bool = b
            .query(redis::cmd("HEXISTS").arg(b.gk("cron")).arg(name).clone())
            .await?;
        if known {
            return Err(import_taken(ImportItem::Schedule, name));
        }
    }
    Ok(())
}

/// One `import_jobs.lua` call for consecutive jobs of one queue (`base` is the index of the
/// first in the whole call, for error messages).
async fn import_run(
    b: &RedisBackend,
    jobs: &[Job],
    base: usize,
    mode: ImportMode,
    now: i64,
    report: &mut ImportReport,
) -> Result<()> {
    let q = jobs[0].queue.as_str();
    let mut send: Vec<&Job> = Vec::with_capacity(jobs.len());
    if b.cluster() {
        // The id index and the workflow homes are in the global slot: claimed before the
        // script, as every store of new jobs does (store.rs).
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
        let marks = store::index_ids(b, q, &ids, now).await?;
        for (i, (job, mark)) in jobs.iter().zip(marks).enumerate() {
            if let Indexed::Elsewhere(other) = mark {
                match mode {
                    ImportMode::Refuse => return Err(store::id_taken(base + i, job.id, &other)),
                    ImportMode::SkipExisting => {
                        report.skipped.push(ImportSkip {
                            item: ImportItem::Job,
                            id: job.id.to_string(),
                        });
                        continue;
                    }
                }
            }
            if let Some(w) = &job.workflow_id {
                claim_home(b, w, q, base + i).await?;
            }
            send.push(job);
        }
    } else {
        send.extend(jobs.iter());
    }
    if send.is_empty() {
        return Ok(());
    }
    let mut args = Args::default();
    args.s(match mode {
        ImportMode::Refuse => "r",
        ImportMode::SkipExisting => "s",
    })
    .n(send.len() as i64);
    for job in &send {
        push_job(&mut args, job)?;
    }
    let out = reply::array(
        b.eval(&scripts::IMPORT_JOBS, Some(q), now, &args, Ack::Replicas)
            .await?,
    )?;
    let mut it = out.into_iter();
    let first = reply::string(it.next().unwrap_or(Value::Nil))?;
    if first == "e" {
        let idx = (reply::int(&it.next().unwrap_or(Value::Nil))? - 1).max(0) as usize;
        let msg = reply::string(it.next().unwrap_or(Value::Nil))?;
        let at = jobs
            .iter()
            .position(|j| j.id == send[idx].id)
            .unwrap_or(idx)
            + base;
        if msg.contains("already stored") {
            return Err(Error::InvalidArgument(msg));
        }
        return Err(Error::InvalidJob {
            index: Some(at),
            reason: msg,
        });
    }
    for (job, code) in send.iter().zip(first.bytes()) {
        if code == b'1' {
            report.skipped.push(ImportSkip {
                item: ImportItem::Job,
                id: job.id.to_string(),
            });
        } else {
            report.jobs += 1;
        }
    }
    Ok(())
}

/// Cluster: a workflow's home is the queue of its jobs; an imported job in another queue
/// than its workflow's home is refused (a script stays in one slot).
async fn claim_home(b: &RedisBackend, wid: &str, q: &str, index: usize) -> Result<()> {
    b.query::<()>(
        redis::cmd("HSETNX")
            .arg(b.gk("wfq"))
            .arg(wid)
            .arg(q)
            .clone(),
    )
    .await?;
    b.query::<()>(redis::cmd("SADD").arg(b.gk("wfhomes")).arg(q).clone())
        .await?;
    let home: Option<String> = b
        .query(redis::cmd("HGET").arg(b.gk("wfq")).arg(wid).clone())
        .await?;
    match home {
        Some(h) if h != q => Err(Error::InvalidJob {
            index: Some(index),
            reason: format!(
                "a job of workflow {wid} is in queue {q:?}, but on Redis Cluster every job of a workflow must be in one queue (here {h:?})"
            ),
        }),
        _ => Ok(()),
    }
}

fn opt_n(args: &mut Args, v: Option<i64>) {
    match v {
        Some(n) => args.n(n),
        None => args.s(""),
    };
}

/// The 25 fields and the dependencies `import_jobs.lua` reads per job.
fn push_job(args: &mut Args, job: &Job) -> Result<()> {
    let mut seen = HashSet::new();
    let deps: Vec<&JobId> = job.depends_on.iter().filter(|d| seen.insert(*d)).collect();
    args.s(&job.id.to_string())
        .s(&job.queue)
        .n(job.state.as_i64())
        .n(i64::from(job.priority.get()))
        .n(i64::from(job.max_attempts))
        .n(job.run_at)
        .n(job.created_at)
        .n(job.lease_epoch as i64)
        .n(i64::from(job.attempt));
    opt_n(args, job.claimed_at);
    opt_n(args, job.started_at);
    opt_n(args, job.finished_at);
    args.s(job.unique_key.as_deref().unwrap_or(""));
    opt_n(
        args,
        job.unique_for
            .map(|d| job.created_at + d.as_millis() as i64),
    );
    args.n(job.trigger.code())
        .b(encode_static(&quern::backend::as_new_job(job))?);
    match &job.result {
        Some(r) => args.b(encode_payload(r)),
        None => args.s(""),
    };
    opt_n(args, job.result.as_ref().and(job.result_expires_at));
    match &job.checkpoint {
        Some(c) => args.b(encode_payload(c)),
        None => args.s(""),
    };
    match &job.progress {
        Some(pg) => args.b(serde_json::to_vec(pg).map_err(codec_err)?),
        None => args.s(""),
    };
    let er = job
        .errors
        .iter()
        .map(error_line)
        .collect::<Result<Vec<String>>>()?
        .join("\n");
    args.s(&er)
        .s(job.workflow_id.as_deref().unwrap_or(""))
        .s(job.group.as_deref().unwrap_or(""))
        .s(&job.kind)
        .n(deps.len() as i64);
    for d in deps {
        args.s(&d.to_string());
    }
    Ok(())
}

/// Stores one workflow record; `false` when its id is taken (`SkipExisting`).
async fn import_workflow(
    b: &RedisBackend,
    rec: &WorkflowRecord,
    mode: ImportMode,
    now: i64,
) -> Result<bool> {
    let home = if b.cluster() {
        match store::home_of(b, &rec.id).await? {
            Some(h) => h,
            None => {
                // No job of it was imported: home it with its first task's job, if stored,
                // else in "default".
                let first = rec.tasks.values().next().copied();
                let q = match first {
                    Some(id) => b.queues_of(&[id]).await?.pop().flatten(),
                    None => None,
                };
                let q = q.unwrap_or_else(|| "default".into());
                b.query::<()>(
                    redis::cmd("HSETNX")
                        .arg(b.gk("wfq"))
                        .arg(&rec.id)
                        .arg(&q)
                        .clone(),
                )
                .await?;
                b.query::<()>(redis::cmd("SADD").arg(b.gk("wfhomes")).arg(&q).clone())
                    .await?;
                store::home_of(b, &rec.id).await?.unwrap_or(q)
            }
        }
    } else {
        String::new()
    };
    let tasks = serde_json::to_string(&rec.tasks).map_err(codec_err)?;
    let comp = rec
        .compensations
        .iter()
        .map(|j| j.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let mut args = Args::default();
    args.s(&home)
        .s(&rec.id)
        .s(&rec.name)
        .n(rec.state.as_i64())
        .n(rec.phase.as_i64())
        .n(rec.revision as i64)
        .s(&rec.spec.to_string())
        .s(&tasks)
        .s(&comp)
        .s(rec.error.as_deref().unwrap_or(""))
        .n(rec.created_at)
        .n(rec.updated_at);
    opt_n(&mut args, rec.finished_at);
    let code = reply::int(
        &b.eval(
            &scripts::IMPORT_WF,
            store::home_slot(b, &home),
            now,
            &args,
            Ack::Replicas,
        )
        .await?,
    )?;
    match (code, mode) {
        (0, _) => Ok(true),
        (_, ImportMode::SkipExisting) => Ok(false),
        (_, ImportMode::Refuse) => Err(import_taken(ImportItem::Workflow, &rec.id)),
    }
}

/// Stores one schedule and its history in its template queue's slot, after claiming its
/// name in the global index (as a create does); `false` when the name is taken.
async fn import_schedule(
    b: &RedisBackend,
    s: &ScheduleImport,
    mode: ImportMode,
    now: i64,
) -> Result<bool> {
    let sc = &s.schedule;
    let name = sc.spec.name.as_str();
    let q = sc.spec.job.queue.as_str();
    let fresh: bool = b
        .query(
            redis::cmd("HSETNX")
                .arg(b.gk("cron"))
                .arg(name)
                .arg(q)
                .clone(),
        )
        .await?;
    if !fresh {
        return match mode {
            ImportMode::SkipExisting => Ok(false),
            ImportMode::Refuse => Err(import_taken(ImportItem::Schedule, name)),
        };
    }
    b.query::<()>(redis::cmd("SADD").arg(b.gk("cronqs")).arg(q).clone())
        .await?;
    let spec = serde_json::to_string(&sc.spec).map_err(codec_err)?;
    let runs: Vec<&ScheduleRun> = s.runs.iter().take(ScheduleRun::HISTORY).rev().collect();
    let mut fields: Vec<(&str, String)> = vec![
        ("sp", spec),
        ("v", sc.revision.to_string()),
        ("pa", if sc.paused { "1" } else { "0" }.into()),
        ("c", sc.created_at.to_string()),
        ("u", sc.updated_at.to_string()),
        ("w", sc.watermark.to_string()),
        ("n", sc.runs.to_string()),
        ("hs", runs.len().to_string()),
    ];
    if let Some(t) = sc.last_tick {
        fields.push(("lt", t.to_string()));
    }
    if let Some(j) = sc.last_job {
        fields.push(("lj", j.to_string()));
    }
    if let Some(l) = sc.spec.limit {
        fields.push(("lim", l.to_string()));
    }
    let mut args = Args::default();
    args.s(q).s(name).n(fields.len() as i64);
    for (k, v) in &fields {
        args.s(k).s(v);
    }
    for (seq, r) in runs.iter().enumerate() {
        let job = r.job_id.map_or_else(|| "-".to_string(), |j| j.to_string());
        args.s(&format!(
            "{:012} {} {} {} {}",
            seq + 1,
            r.tick,
            r.fired_at,
            r.kind.code(),
            job
        ));
    }
    let code = reply::int(
        &b.eval(&scripts::IMPORT_CRON, Some(q), now, &args, Ack::Replicas)
            .await?,
    )?;
    match (code, mode) {
        (0, _) => Ok(true),
        (_, ImportMode::SkipExisting) => Ok(false),
        (_, ImportMode::Refuse) => Err(import_taken(ImportItem::Schedule, name)),
    }
}
