//! `quern jobs list|show|cancel|reprioritize|retry|logs|events|wait`.

use std::time::{Duration, Instant};

use quern::backend::{
    CancelParams, JobFilter, JobLogsParams, JobReprioritizeParams, ListParams, LogLine,
    RetryParams, RetryTarget,
};
use quern::{Job, JobId, JobState, Priority};

use crate::cli::{JobsCmd, JobsListArgs, JobsLogsArgs};
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult};
use crate::log::out;
use crate::output::{opt_time, short_text, table, time};
use crate::store::Open;

pub async fn run(ctx: &Ctx, cmd: JobsCmd) -> CliResult<u8> {
    match cmd {
        JobsCmd::List(a) => list(ctx, a).await,
        JobsCmd::Show { id } => show(ctx, id).await,
        JobsCmd::Cancel { id } => cancel(ctx, id).await,
        JobsCmd::Reprioritize { id, priority } => reprioritize(ctx, id, priority).await,
        JobsCmd::Retry { id } => retry(ctx, id).await,
        JobsCmd::Logs(a) => logs(ctx, a).await,
        JobsCmd::Events { id } => events(ctx, id).await,
        JobsCmd::Wait { id, timeout } => wait(ctx, id, timeout).await,
    }
}

async fn list(ctx: &Ctx, a: JobsListArgs) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    let page = backend
        .job_list(ListParams {
            filter: JobFilter {
                queue: a.queue,
                state: a.state,
                kind: a.kind,
                workflow_id: None,
            },
            limit: a.limit,
            before: None,
        })
        .await?;
    print_jobs(ctx, &page.jobs);
    Ok(0)
}

/// Prints jobs as a table or `{"jobs":[…]}`.
pub fn print_jobs(ctx: &Ctx, jobs: &[Job]) {
    ctx.out.emit(&serde_json::json!({ "jobs": jobs }), || {
        if jobs.is_empty() {
            out!("no jobs");
            return;
        }
        let mut t = table(&[
            "ID",
            "KIND",
            "QUEUE",
            "STATE",
            "PRIORITY",
            "ATTEMPT",
            "CREATED",
            "LAST ERROR",
        ]);
        for j in jobs {
            t.add_row(vec![
                j.id.to_string(),
                j.kind.clone(),
                j.queue.clone(),
                j.state.to_string(),
                j.priority.to_string(),
                format!("{}/{}", j.attempt, j.max_attempts),
                time(j.created_at),
                j.errors
                    .last()
                    .map(|e| short_text(&e.message, 40))
                    .unwrap_or_default(),
            ]);
        }
        out!("{t}");
    });
}

async fn get(ctx: &Ctx, id: JobId) -> CliResult<(std::sync::Arc<dyn quern::Backend>, Job)> {
    let backend = ctx.open(Open::Existing).await?;
    let job = backend
        .job_get(id.into())
        .await?
        .ok_or(quern::Error::JobNotFound(id))?;
    Ok((backend, job))
}

async fn show(ctx: &Ctx, id: JobId) -> CliResult<u8> {
    let (_, job) = get(ctx, id).await?;
    ctx.out.emit(&job, || print_job(&job));
    Ok(0)
}

fn print_job(j: &Job) {
    let payload = j.payload.to_json_value().map(|v| v.to_string());
    let rows: Vec<(&str, String)> = vec![
        ("id", j.id.to_string()),
        ("kind", j.kind.clone()),
        ("queue", j.queue.clone()),
        ("group", j.group.clone().unwrap_or_else(|| "-".into())),
        ("state", j.state.to_string()),
        ("attempt", format!("{} of {}", j.attempt, j.max_attempts)),
        ("priority", j.priority.to_string()),
        ("created", time(j.created_at)),
        ("run at", time(j.run_at)),
        ("started", opt_time(j.started_at)),
        ("finished", opt_time(j.finished_at)),
        (
            "retry",
            j.retry
                .as_ref()
                .map_or_else(|| "worker default".into(), |p| p.to_string()),
        ),
        (
            "lease",
            j.lease
                .as_ref()
                .map(|l| format!("{} until {}", l.worker_id, time(l.expires_at)))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "depends on",
            if j.depends_on.is_empty() {
                "-".into()
            } else {
                j.depends_on
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        (
            "progress",
            j.progress
                .as_ref()
                .map(|p| match &p.message {
                    Some(m) => format!("{:.0}% {m}", p.percent),
                    None => format!("{:.0}%", p.percent),
                })
                .unwrap_or_else(|| "-".into()),
        ),
        ("payload", payload.unwrap_or_else(|e| format!("<{e}>"))),
        ("version", j.version.to_string()),
        (
            "trace",
            j.trace.as_ref().map_or_else(
                || "-".into(),
                |t| match &t.tracestate {
                    Some(ts) => format!("{} ({ts})", t.traceparent),
                    None => t.traceparent.clone(),
                },
            ),
        ),
        (
            "result",
            j.result
                .as_ref()
                .map(|r| {
                    r.to_json_value()
                        .map(|v| v.to_string())
                        .unwrap_or_else(|e| format!("<{e}>"))
                })
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "result ttl",
            match (j.result_ttl, j.result_expires_at) {
                (ttl, Some(at)) => format!(
                    "{} (kept until {})",
                    ttl.map_or_else(|| "worker's".into(), quern::model::format_duration),
                    time(at)
                ),
                (Some(ttl), None) => quern::model::format_duration(ttl),
                (None, None) => "worker default".into(),
            },
        ),
    ];
    for (k, v) in rows {
        out!("{k:<11} {v}");
    }
    if j.errors.is_empty() {
        out!("{:<11} -", "errors");
    } else {
        out!("errors");
        for e in &j.errors {
            let kind = serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            out!(
                "  #{:<3} {} {kind:<13} {}",
                e.attempt,
                time(e.at),
                e.message
            );
        }
    }
}

async fn cancel(ctx: &Ctx, id: JobId) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    let job = backend
        .job_cancel(CancelParams {
            id,
            reason: Some("cancelled with quern jobs cancel".into()),
        })
        .await?;
    ctx.out.emit(
        &serde_json::json!({"id": job.id, "state": job.state}),
        || out!("{} {}", job.id, job.state),
    );
    Ok(0)
}

/// Prints `<id> priority <new priority>`, or with `--json` the job as `jobs show` does.
async fn reprioritize(ctx: &Ctx, id: JobId, priority: Priority) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    let job = backend
        .job_reprioritize(JobReprioritizeParams { id, priority })
        .await?;
    ctx.out
        .emit(&job, || out!("{} priority {}", job.id, job.priority));
    Ok(0)
}

async fn retry(ctx: &Ctx, id: JobId) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    let moved = backend
        .job_retry(RetryParams {
            target: RetryTarget::Ids(vec![id]),
            limit: 1,
        })
        .await?;
    if moved.is_empty() {
        return Err(CliError::failed(
            "invalid_transition",
            format!("job {id} was not retried"),
        ));
    }
    let job = backend
        .job_get(id.into())
        .await?
        .ok_or(quern::Error::JobNotFound(id))?;
    ctx.out.emit(
        &serde_json::json!({"id": job.id, "state": job.state}),
        || out!("{} {}", job.id, job.state),
    );
    Ok(0)
}

async fn wait(ctx: &Ctx, id: JobId, timeout: Option<Duration>) -> CliResult<u8> {
    let (backend, mut job) = get(ctx, id).await?;
    let start = Instant::now();
    // Short polls first so a fast job returns quickly, then back off to spare the store.
    let mut pause = Duration::from_millis(20);
    while !job.state.is_terminal() {
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            let e = CliError::failed(
                "timeout",
                format!(
                    "job {id} is still {} after {}",
                    job.state,
                    quern::model::format_duration(timeout.unwrap_or_default())
                ),
            );
            return Err(e);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
        job = backend
            .job_get(id.into())
            .await?
            .ok_or(quern::Error::JobNotFound(id))?;
    }
    let result = job.result.as_ref().and_then(|r| r.to_json_value().ok());
    let error = job.errors.last().map(|e| e.message.clone());
    ctx.out.emit(
        &serde_json::json!({"id": job.id, "state": job.state, "result": result, "error": error}),
        || match (&job.state, &result, &error) {
            (JobState::Succeeded, Some(r), _) => out!("{} succeeded: {r}", job.id),
            (JobState::Succeeded, None, _) => out!("{} succeeded", job.id),
            (s, _, Some(e)) => out!("{} {s}: {e}", job.id),
            (s, _, None) => out!("{} {s}", job.id),
        },
    );
    Ok(if job.state == JobState::Succeeded {
        0
    } else {
        1
    })
}

/// Lines read per `job_logs` call.
const LOG_PAGE: usize = 1000;

/// `quern jobs logs ID [--follow]`: every kept line; with `--follow`, then new lines as they
/// are stored, until the job is terminal (the worker stores a job's lines before its
/// outcome, so the read after the terminal state has them all). With `--json`: one
/// `{"lines":[…],"dropped":n}` document, or with `--follow` one JSON object per line.
async fn logs(ctx: &Ctx, a: JobsLogsArgs) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    let mut after = 0;
    let mut dropped_said = 0;
    loop {
        // The state is read before the lines: lines stored before a terminal state are then
        // all in the read that follows it.
        let finished = if a.follow {
            backend
                .job_get(a.id.into())
                .await?
                .ok_or(quern::Error::JobNotFound(a.id))?
                .state
                .is_terminal()
        } else {
            true
        };
        let mut all = Vec::new();
        let mut dropped;
        loop {
            let page = backend
                .job_logs(JobLogsParams {
                    id: a.id,
                    after,
                    limit: LOG_PAGE,
                })
                .await?;
            after = page.next_after(after);
            dropped = page.dropped;
            let full = page.lines.len() == LOG_PAGE;
            all.extend(page.lines);
            if !full {
                break;
            }
        }
        if !a.follow {
            ctx.out.emit(
                &serde_json::json!({"id": a.id, "lines": all, "dropped": dropped}),
                || print_log(&all, dropped),
            );
            return Ok(0);
        }
        if dropped > dropped_said && !ctx.out.json {
            out!(
                "… {} earlier line(s) dropped by the per-job cap",
                dropped - dropped_said
            );
        }
        dropped_said = dropped;
        for l in &all {
            ctx.out.emit(l, || out!("{}", log_line(l)));
        }
        if finished {
            return Ok(0);
        }
        tokio::time::sleep(a.interval).await;
    }
}

/// `quern jobs events ID`: the job's timeline, oldest first; `{"id":…,"events":[…]}` with
/// `--json`. An unknown job is an error (exit 1).
async fn events(ctx: &Ctx, id: JobId) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    if backend.job_get(id.into()).await?.is_none() {
        return Err(quern::Error::JobNotFound(id).into());
    }
    let events = backend
        .event_list(quern::backend::EventListParams { job: id })
        .await?;
    ctx.out
        .emit(&serde_json::json!({ "id": id, "events": events }), || {
            let mut t = table(&["AT", "FROM", "TO", "ATTEMPT", "ACTOR"]);
            let name =
                |s: Option<JobState>, none: &str| s.map_or(none.to_string(), |s| s.to_string());
            for e in &events {
                t.add_row(vec![
                    time(e.at),
                    name(e.from, "-"),
                    name(e.to, "deleted"),
                    e.attempt.to_string(),
                    e.actor.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            out!("{t}");
        });
    Ok(0)
}

fn print_log(lines: &[LogLine], dropped: u64) {
    if dropped > 0 {
        out!("… {dropped} earlier line(s) dropped by the per-job cap");
    }
    for l in lines {
        out!("{}", log_line(l));
    }
}

/// `TIME LEVEL #ATTEMPT MESSAGE`.
fn log_line(l: &LogLine) -> String {
    format!("{} {:<5} #{} {}", time(l.at), l.level, l.attempt, l.message)
}
