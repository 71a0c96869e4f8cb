//! `quern queues …`, `quern dlq …`, `quern workers list` (alive or lost, with held jobs).

use std::collections::HashMap;

use std::sync::Arc;

use quern::backend::{
    JobFilter, ListParams, QueueInfo, QueueUpdateParams, RetryParams, RetryTarget, dlq,
};
use quern::model::QueueUsage;
use quern::{Backend, JobState};

use crate::cli::{DlqCmd, QueuesCmd, WorkersCmd};
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult};
use crate::log::out;
use crate::output::{age, opt_time, table};
use crate::store::Open;

pub async fn queues(ctx: &Ctx, cmd: QueuesCmd) -> CliResult<u8> {
    // Limits may be set before the first job, so `set` may create the store.
    let mode = match cmd {
        QueuesCmd::Set { .. } => Open::Create,
        _ => Open::Existing,
    };
    let backend = ctx.open(mode).await?;
    match cmd {
        QueuesCmd::List => {
            let queues = backend.queue_list().await?;
            let mut usage = Vec::with_capacity(queues.len());
            for q in &queues {
                usage.push(queue_usage(&backend, &q.name).await?);
            }
            let rows: Vec<serde_json::Value> = queues
                .iter()
                .zip(&usage)
                .map(|(q, u)| queue_json(q, u.as_ref()))
                .collect();
            let budget = backend.store_budget().await?;
            let mut doc = serde_json::json!({ "queues": rows });
            if let Some(b) = &budget {
                doc["store_budget"] = serde_json::to_value(b).unwrap_or_default();
            }
            ctx.out.emit(&doc, || {
                if let Some(b) = &budget {
                    out!(
                        "store memory: {} used of a {} budget{}",
                        quern::model::format_bytes(b.used_bytes),
                        quern::model::format_bytes(b.budget_bytes),
                        if b.full {
                            " (FULL: enqueue is refused)"
                        } else {
                            ""
                        }
                    );
                }
                if queues.is_empty() {
                    out!("no queues");
                    return;
                }
                let mut header = vec!["QUEUE", "PAUSED"];
                header.extend(JobState::ALL.iter().map(|s| s.as_str()));
                header.extend([
                    "OLDEST QUEUED",
                    "RUNNING/CAP",
                    "RATE",
                    "TOKENS",
                    "WEIGHT",
                    "ORDER",
                    "AGING",
                ]);
                let mut t = table(&header);
                for (q, u) in queues.iter().zip(&usage) {
                    let mut row = vec![q.name.clone(), if q.paused { "yes" } else { "no" }.into()];
                    row.extend(JobState::ALL.iter().map(|s| q.counts.get(*s).to_string()));
                    row.push(opt_time(q.oldest_queued_at));
                    row.extend(limit_cells(u.as_ref()));
                    row.extend(order_cells(u.as_ref()));
                    t.add_row(row);
                }
                out!("{t}");
            });
        }
        QueuesCmd::Show { queue } => {
            let info = backend.queue_stats((&queue).into()).await?;
            let u = backend.queue_get((&queue).into()).await?;
            ctx.out.emit(&queue_json(&info, Some(&u)), || {
                out!("queue:        {}", info.name);
                out!("paused:       {}", if info.paused { "yes" } else { "no" });
                let counts: Vec<String> = JobState::ALL
                    .iter()
                    .map(|s| format!("{} {}", s.as_str(), info.counts.get(*s)))
                    .collect();
                out!("jobs:         {}", counts.join(", "));
                out!("oldest queued: {}", opt_time(info.oldest_queued_at));
                let [running, rate, tokens] = limit_cells(Some(&u));
                out!("running/cap:  {running}");
                out!("rate:         {rate}");
                out!("tokens left:  {tokens}");
                let [weight, order, aging] = order_cells(Some(&u));
                out!("weight:       {weight}");
                out!("order:        {order}");
                out!("aging:        {aging}");
                out!("retention:    {}", retention_cell(&u.settings));
                out!("retry:        {}", retry_cell(&u.settings));
                out!(
                    "group cap:    {}",
                    u.settings
                        .group_concurrency
                        .map_or("none".into(), |c| c.to_string())
                );
                out!(
                    "group rate:   {}",
                    u.settings
                        .group_rate
                        .map_or("none".into(), |r| r.to_string())
                );
                out!("kind rates:   {}", kinds_cell(&u.settings));
            });
        }
        QueuesCmd::Set {
            queue,
            concurrency,
            rate,
            burst,
            weight,
            order,
            aging_after,
            aging_step,
            aging_every,
            aging_bound,
            retain_succeeded,
            retain_dead,
            retain_cancelled,
            retain_skipped,
            retry,
            group_concurrency,
            group_rate,
            kind_rate,
        } => {
            let aging = aging_update(
                &backend,
                &queue,
                aging_after,
                aging_step,
                aging_every,
                aging_bound,
            )
            .await?;
            let mut rate = rate.map(|r| r.0);
            if let Some(b) = burst {
                let base = match rate {
                    Some(Some(r)) => r,
                    Some(None) => {
                        return Err(CliError::usage(
                            "usage",
                            "--burst needs a rate, not --rate none",
                        ));
                    }
                    None => match backend.queue_get((&queue).into()).await {
                        Ok(u) => u.settings.rate.ok_or_else(|| {
                            CliError::usage(
                                "usage",
                                format!(
                                    "queue {queue} has no rate limit; give --rate with --burst"
                                ),
                            )
                        })?,
                        Err(quern::Error::QueueNotFound(_)) => {
                            return Err(CliError::usage(
                                "usage",
                                "--burst needs --rate on a queue without a rate limit",
                            ));
                        }
                        Err(e) => return Err(e.into()),
                    },
                };
                let mut r = base;
                r.burst = b;
                rate = Some(Some(r));
            }
            let s = backend
                .queue_update(QueueUpdateParams {
                    queue: queue.clone(),
                    concurrency: concurrency.map(|c| c.0),
                    rate,
                    weight: weight.map(|w| w.0),
                    order,
                    aging,
                    retention: [
                        (JobState::Succeeded, retain_succeeded),
                        (JobState::Dead, retain_dead),
                        (JobState::Cancelled, retain_cancelled),
                        (JobState::Skipped, retain_skipped),
                    ]
                    .into_iter()
                    .filter_map(|(st, k)| k.map(|k| (st, k.0)))
                    .collect(),
                    retry: retry.map(|r| r.0),
                    group_concurrency: group_concurrency.map(|c| c.0),
                    kinds: kind_rate
                        .into_iter()
                        .map(|(p, r)| (p, r.0.map(|rate| quern::model::KindLimits { rate })))
                        .collect(),
                    group_rate: group_rate.map(|r| r.0),
                })
                .await?;
            ctx.out.emit(
                &serde_json::json!({ "queue": queue, "settings": s }),
                || {
                    out!(
                        "queue {queue}: concurrency {}, rate {}, weight {}, order {}, aging {}, retention {}, retry {}, group concurrency {}, group rate {}, kind rates {}",
                        s.concurrency.map_or("none".into(), |c| c.to_string()),
                        s.rate.map_or("none".into(), |r| r.to_string()),
                        s.weight.map_or("none".into(), |w| w.to_string()),
                        s.order,
                        s.aging.map_or("none".into(), |a| a.to_string()),
                        retention_cell(&s),
                        retry_cell(&s),
                        s.group_concurrency.map_or("none".into(), |c| c.to_string()),
                        s.group_rate.map_or("none".into(), |r| r.to_string()),
                        kinds_cell(&s)
                    )
                },
            );
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

/// A queue's limits and their use, or `None` where the store has no queue settings.
async fn queue_usage(backend: &Arc<dyn Backend>, queue: &str) -> CliResult<Option<QueueUsage>> {
    if !backend.capabilities().queue_limits {
        return Ok(None);
    }
    match backend.queue_get(queue.into()).await {
        Ok(u) => Ok(Some(u)),
        Err(quern::Error::QueueNotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn queue_json(q: &QueueInfo, u: Option<&QueueUsage>) -> serde_json::Value {
    let mut v = serde_json::to_value(q).unwrap_or_default();
    if let (Some(u), Some(m)) = (u, v.as_object_mut()) {
        m.insert(
            "settings".into(),
            serde_json::to_value(&u.settings).unwrap_or_default(),
        );
        m.insert("running".into(), u.running.into());
        m.insert(
            "tokens".into(),
            serde_json::to_value(u.tokens).unwrap_or_default(),
        );
    }
    v
}

/// The queue's kind rates (`generate.*=10/m, thumbnail.*=100/m`), or `none`.
fn kinds_cell(s: &quern::model::QueueSettings) -> String {
    if s.kinds.is_empty() {
        return "none".into();
    }
    s.kinds
        .iter()
        .map(|(p, l)| format!("{p}={}", l.rate))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The queue's own retention (`succeeded 1h, dead forever`), or `default` (`[retention]`).
fn retention_cell(s: &quern::model::QueueSettings) -> String {
    if s.retention.is_empty() {
        return "default".into();
    }
    s.retention
        .iter()
        .map(|(st, k)| format!("{st} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The queue's default retry policy, or `default` (the worker's).
fn retry_cell(s: &quern::model::QueueSettings) -> String {
    s.retry.as_ref().map_or("default".into(), |p| p.to_string())
}

/// WEIGHT, ORDER, AGING cells.
fn order_cells(u: Option<&QueueUsage>) -> [String; 3] {
    let Some(u) = u else {
        return ["-".into(), "-".into(), "-".into()];
    };
    let s = &u.settings;
    [
        s.weight.map_or("-".into(), |w| w.to_string()),
        s.order.to_string(),
        s.aging.map_or("none".into(), |a| a.to_string()),
    ]
}

/// The aging change `quern queues set` asks for: `--aging-after none` turns it off;
/// `--aging-after D` sets it (step 1, every D and bound critical unless given); the other
/// flags alone change the stored aging.
async fn aging_update(
    backend: &Arc<dyn Backend>,
    queue: &str,
    after: Option<crate::parse::Limit<std::time::Duration>>,
    step: Option<u8>,
    every: Option<std::time::Duration>,
    bound: Option<quern::Priority>,
) -> CliResult<Option<Option<quern::model::Aging>>> {
    let others = step.is_some() || every.is_some() || bound.is_some();
    let base = match after {
        Some(crate::parse::Limit(None)) if others => {
            return Err(CliError::usage(
                "usage",
                "--aging-after none turns aging off; it takes no --aging-step, --aging-every or --aging-bound",
            ));
        }
        Some(crate::parse::Limit(None)) => return Ok(Some(None)),
        Some(crate::parse::Limit(Some(d))) => quern::model::Aging::new(d, 1),
        None if !others => return Ok(None),
        None => {
            let stored = match backend.queue_get(queue.into()).await {
                Ok(u) => u.settings.aging,
                Err(quern::Error::QueueNotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
            stored.ok_or_else(|| {
                CliError::usage(
                    "usage",
                    format!("queue {queue} has no aging; give --aging-after with --aging-step"),
                )
            })?
        }
    };
    let mut a = base;
    if let Some(s) = step {
        a.step = s;
    }
    if every.is_some() {
        a.every = every;
    }
    if let Some(b) = bound {
        a.bound = b;
    }
    Ok(Some(Some(a)))
}

/// RUNNING/CAP, RATE, TOKENS cells.
fn limit_cells(u: Option<&QueueUsage>) -> [String; 3] {
    let Some(u) = u else {
        return ["-".into(), "-".into(), "-".into()];
    };
    let cap = u.settings.concurrency.map_or("-".into(), |c| c.to_string());
    [
        format!("{}/{cap}", u.running),
        u.settings.rate.map_or("none".into(), |r| r.to_string()),
        u.tokens.map_or("-".into(), |t| format!("{t:.1}")),
    ]
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
                    RetryTarget::Ids(dlq::require_dead(&*backend, &[id], "replay").await?)
                }
                None => RetryTarget::Dead { queue, kind },
            };
            let ids = backend.job_retry(RetryParams { target, limit }).await?;
            ctx.out.emit(
                &serde_json::json!({"replayed": ids.len(), "ids": ids}),
                || out!("replayed {} job(s)", ids.len()),
            );
        }
        DlqCmd::Delete {
            ids,
            queue,
            kind,
            all: _,
            dry_run,
            limit,
        } => {
            let ids = if ids.is_empty() {
                dlq::select_dead(&*backend, queue.as_deref(), kind.as_deref(), limit, |_| {
                    true
                })
                .await?
            } else {
                // Only dead jobs are in the DLQ: every id is checked before anything goes.
                dlq::require_dead(&*backend, &ids, "delete").await?
            };
            let deleted = if ids.is_empty() {
                0
            } else {
                backend
                    .job_delete(quern::backend::JobDeleteParams {
                        ids: ids.clone(),
                        dry_run,
                    })
                    .await?
                    .deleted
            };
            ctx.out.emit(
                &serde_json::json!({"dry_run": dry_run, "deleted": deleted, "ids": ids}),
                || {
                    if dry_run {
                        out!("would delete {deleted} job(s)")
                    } else {
                        out!("deleted {deleted} job(s)")
                    }
                },
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
                    "CAPABILITIES",
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
                        if w.capabilities.is_empty() {
                            "-".to_string()
                        } else {
                            w.capabilities.join(",")
                        },
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
