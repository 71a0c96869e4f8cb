//! `quern queues …`, `quern dlq …`, `quern workers list` (alive or lost, with held jobs).

use std::collections::HashMap;

use quern::backend::{JobFilter, ListParams, RetryParams, RetryTarget};
use quern::{Backend, JobState};

use crate::cli::{DlqCmd, QueuesCmd, WorkersCmd};
use crate::cmd::Ctx;
use crate::error::CliResult;
use crate::log::out;
use crate::output::{age, opt_time, table};
use crate::store::Open;

pub async fn queues(ctx: &Ctx, cmd: QueuesCmd) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    match cmd {
        QueuesCmd::List => {
            let queues = backend.queue_list().await?;
            ctx.out.emit(&serde_json::json!({ "queues": queues }), || {
                if queues.is_empty() {
                    out!("no queues");
                    return;
                }
                let mut header = vec!["QUEUE", "PAUSED"];
                header.extend(JobState::ALL.iter().map(|s| s.as_str()));
                header.push("OLDEST QUEUED");
                let mut t = table(&header);
                for q in &queues {
                    let mut row = vec![q.name.clone(), if q.paused { "yes" } else { "no" }.into()];
                    row.extend(JobState::ALL.iter().map(|s| q.counts.get(*s).to_string()));
                    row.push(opt_time(q.oldest_queued_at));
                    t.add_row(row);
                }
                out!("{t}");
            });
        }
        QueuesCmd::Pause { queue } => {
            backend.queue_pause((&queue).into()).await?;
            ctx.out
                .emit(&serde_json::json!({"queue": queue, "paused": true}), || {
                    out!("queue {queue} paused")
                });
        }
        QueuesCmd::Resume { queue } => {
            backend.queue_resume((&queue).into()).await?;
            ctx.out.emit(
                &serde_json::json!({"queue": queue, "paused": false}),
                || out!("queue {queue} resumed"),
            );
        }
    }
    Ok(0)
}

pub async fn dlq(ctx: &Ctx, cmd: DlqCmd) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    match cmd {
        DlqCmd::List { queue, limit } => {
            let page = backend
                .job_list(ListParams {
                    filter: JobFilter {
                        queue,
                        state: Some(JobState::Dead),
                        kind: None,
                        workflow_id: None,
                    },
                    limit,
                    before: None,
                })
                .await?;
            crate::cmd::jobs::print_jobs(ctx, &page.jobs);
        }
        DlqCmd::Replay {
            id,
            queue,
            kind,
            all: _,
            limit,
        } => {
            let target = match id {
                Some(id) => {
                    // Only dead jobs are in the DLQ; `jobs retry` is for cancelled or skipped.
                    let job = backend
                        .job_get(id.into())
                        .await?
                        .ok_or(quern::Error::JobNotFound(id))?;
                    if job.state != JobState::Dead {
                        return Err(quern::Error::InvalidTransition {
                            id,
                            from: job.state,
                            action: "replay",
                        }
                        .into());
                    }
                    RetryTarget::Ids(vec![id])
                }
                None => RetryTarget::Dead { queue, kind },
            };
            let ids = backend.job_retry(RetryParams { target, limit }).await?;
            ctx.out.emit(
                &serde_json::json!({"replayed": ids.len(), "ids": ids}),
                || out!("replayed {} job(s)", ids.len()),
            );
        }
    }
    Ok(0)
}

pub async fn workers(ctx: &Ctx, cmd: WorkersCmd) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    match cmd {
        WorkersCmd::List => {
            let workers = backend.worker_list().await?;
            let now = quern::clock::system_now_ms();
            let held = held_jobs(&*backend).await?;
            let rows: Vec<serde_json::Value> = workers
                .iter()
                .map(|w| {
                    let mut v = serde_json::to_value(w).unwrap_or_default();
                    v["state"] = w.state(now).as_str().into();
                    v["held_jobs"] = held.get(&w.id).cloned().unwrap_or_default().into();
                    v
                })
                .collect();
            ctx.out.emit(&serde_json::json!({ "workers": rows }), || {
                if workers.is_empty() {
                    out!("no workers");
                    return;
                }
                let mut t = table(&[
                    "ID",
                    "STATE",
                    "HOST",
                    "PID",
                    "QUEUES",
                    "CONCURRENCY",
                    "RUNNING",
                    "HELD JOBS",
                    "STARTED",
                    "LAST SEEN",
                ]);
                for w in &workers {
                    let held = held.get(&w.id).map_or(0, Vec::len);
                    t.add_row(vec![
                        w.id.clone(),
                        w.state(now).to_string(),
                        w.hostname.clone(),
                        w.pid.to_string(),
                        w.queues.join(","),
                        w.concurrency.to_string(),
                        w.running.to_string(),
                        held.to_string(),
                        age(w.started_at, now),
                        age(w.last_seen_at, now),
                    ]);
                }
                out!("{t}");
            });
        }
    }
    Ok(0)
}

/// The most running jobs `workers list` reads to find who holds what.
const HELD_SCAN: usize = 10_000;

/// Ids of running jobs by the worker holding their lease (oldest first per worker).
async fn held_jobs(backend: &dyn Backend) -> quern::Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut before = None;
    let mut seen = 0;
    loop {
        let page = backend
            .job_list(ListParams {
                filter: JobFilter {
                    state: Some(JobState::Running),
                    ..Default::default()
                },
                limit: 1000,
                before,
            })
            .await?;
        seen += page.jobs.len();
        for j in page.jobs.iter().rev() {
            if let Some(l) = &j.lease {
                out.entry(l.worker_id.clone())
                    .or_default()
                    .push(j.id.to_string());
            }
        }
        match page.next {
            Some(n) if seen < HELD_SCAN => before = Some(n),
            _ => return Ok(out),
        }
    }
}
