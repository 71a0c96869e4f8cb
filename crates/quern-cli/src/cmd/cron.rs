//! `quern cron …`: stored schedules through `quern::Schedules` (the ticks are fired by the
//! scheduler every `quern worker` runs), and `cron next`, a preview computed by
//! `quern::cron::Schedule` without a store (its only other input is the system clock when
//! `--from` is absent).

use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use quern::cron::Schedule;
use quern::model::{JobTemplate, Misfire, Overlap, RunKind, ScheduleSpec, StoredSchedule};
use quern::{Backend, Client, Job, Millis, Schedules};

use crate::cli::{CronAddArgs, CronCmd, CronNextArgs};
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult};
use crate::log::out;
use crate::output::{age, opt_time, table, time};
use crate::store::Open;

/// More ticks than anyone reads in a preview; a typo such as `--count 1m` stops here.
const MAX_COUNT: usize = 1_000;

pub async fn run(ctx: &Ctx, cmd: CronCmd) -> CliResult<u8> {
    if let CronCmd::Next(args) = cmd {
        return next(ctx, args);
    }
    let open = if matches!(cmd, CronCmd::Add(_)) {
        Open::Create
    } else {
        Open::Existing
    };
    let backend = ctx.open(open).await?;
    let schedules = Client::new(Arc::clone(&backend)).schedules();
    match cmd {
        CronCmd::Add(args) => add(ctx, &schedules, *args).await,
        CronCmd::List => list(ctx, &backend, &schedules).await,
        CronCmd::Show { name, runs } => show(ctx, &backend, &schedules, &name, runs).await,
        CronCmd::Remove { name } => {
            schedules.remove(&name).await?;
            done(ctx, &name, "removed");
            Ok(0)
        }
        CronCmd::Pause { name } => {
            schedules.pause(&name).await?;
            done(ctx, &name, "paused");
            Ok(0)
        }
        CronCmd::Resume { name } => {
            schedules.resume(&name).await?;
            done(ctx, &name, "resumed");
            Ok(0)
        }
        CronCmd::Trigger { name } => {
            let id = schedules.trigger(&name).await?;
            ctx.out.emit(
                &serde_json::json!({ "schedule": name, "job_id": id }),
                || out!("{id}"),
            );
            Ok(0)
        }
        CronCmd::Next(_) => unreachable!("handled above"),
    }
}

fn done(ctx: &Ctx, name: &str, what: &str) {
    ctx.out.emit(
        &serde_json::json!({ "schedule": name, "done": what }),
        || out!("schedule {name} {what}"),
    );
}

/// The spec `cron add` stores.
fn spec(ctx: &Ctx, a: CronAddArgs) -> CliResult<ScheduleSpec> {
    let cron = match (a.cron, a.every) {
        (Some(c), None) => c,
        (None, Some(e)) => format!("@every {e}"),
        _ => unreachable!("clap requires exactly one of --cron and --every"),
    };
    let mut job = JobTemplate::new(a.kind);
    if let Some(text) = a.payload {
        job.payload = serde_json::from_str(&text).map_err(|e| {
            CliError::usage("invalid_argument", format!("--payload is not JSON: {e}"))
        })?;
    }
    let size = serde_json::to_vec(&job.payload).map_or(0, |v| v.len());
    if size > ctx.settings.max_payload_bytes {
        return Err(quern::Error::PayloadTooLarge {
            size,
            limit: ctx.settings.max_payload_bytes,
        }
        .into());
    }
    if let Some(q) = a.queue {
        job.queue = q;
    }
    if let Some(p) = a.priority {
        job.priority = p;
    }
    if let Some(n) = a.max_attempts {
        job.max_attempts = n;
    }
    job.timeout = a.timeout;
    job.unique_key = a.unique;
    let mut spec = ScheduleSpec::new(a.name, cron, job);
    if let Some(tz) = a.tz {
        spec.tz = tz;
    }
    if let Some(m) = a.misfire {
        spec.misfire = Misfire::parse(&m)?;
    }
    if let Misfire::RunAll { max, window } = &mut spec.misfire {
        *max = a.misfire_max.unwrap_or(*max);
        *window = a.misfire_window.unwrap_or(*window);
    } else if a.misfire_max.is_some() || a.misfire_window.is_some() {
        return Err(CliError::usage(
            "usage",
            "--misfire-max and --misfire-window go with --misfire run-all",
        ));
    }
    if let Some(o) = a.overlap {
        spec.overlap = Overlap::parse(&o)?;
    }
    spec.start_at = a.start;
    spec.end_at = a.end;
    spec.limit = a.limit;
    spec.jitter = a.jitter;
    Ok(spec)
}

async fn add(ctx: &Ctx, schedules: &Schedules, args: CronAddArgs) -> CliResult<u8> {
    let spec = spec(ctx, args)?;
    let up = schedules.upsert(spec).await?;
    let s = &up.schedule;
    let what = match (up.created, up.changed) {
        (true, _) => "added",
        (false, true) => "changed",
        (false, false) => "unchanged",
    };
    let next = s.next_run(now());
    ctx.out.emit(
        &serde_json::json!({
            "schedule": s.spec.name,
            "done": what,
            "revision": s.revision,
            "next_run": next,
        }),
        || {
            out!(
                "schedule {} {what}; next run {}",
                s.spec.name,
                opt_time(next)
            )
        },
    );
    Ok(0)
}

fn now() -> Millis {
    quern::clock::system_now_ms()
}

/// Each schedule's last job, read in one call.
async fn last_jobs(
    backend: &Arc<dyn Backend>,
    list: &[StoredSchedule],
) -> CliResult<Vec<Option<Job>>> {
    let ids: Vec<_> = list.iter().filter_map(|s| s.last_job).collect();
    let mut found = backend.job_get_many(ids.into()).await?.into_iter();
    Ok(list
        .iter()
        .map(|s| s.last_job.and_then(|_| found.next().flatten()))
        .collect())
}

async fn list(ctx: &Ctx, backend: &Arc<dyn Backend>, schedules: &Schedules) -> CliResult<u8> {
    let list = schedules.list().await?;
    let jobs = last_jobs(backend, &list).await?;
    let now = now();
    let rows: Vec<serde_json::Value> = list
        .iter()
        .zip(&jobs)
        .map(|(s, job)| {
            serde_json::json!({
                "name": s.spec.name,
                "cron": s.spec.cron,
                "tz": s.spec.tz,
                "kind": s.spec.job.kind,
                "queue": s.spec.job.queue,
                "paused": s.paused,
                "next_run": s.next_run(now),
                "last_run": s.last_tick,
                "last_outcome": job.as_ref().map(|j| j.state),
                "runs": s.runs,
            })
        })
        .collect();
    ctx.out.emit(&serde_json::json!({ "schedules": rows }), || {
        if list.is_empty() {
            out!("no schedules");
            return;
        }
        let mut t = table(&[
            "NAME", "SCHEDULE", "TZ", "KIND", "QUEUE", "NEXT RUN", "LAST RUN", "OUTCOME", "RUNS",
            "PAUSED",
        ]);
        for (s, job) in list.iter().zip(&jobs) {
            t.add_row(vec![
                s.spec.name.clone(),
                s.spec.cron.clone(),
                s.spec.tz.clone(),
                s.spec.job.kind.clone(),
                s.spec.job.queue.clone(),
                s.next_run(now)
                    .map_or("-".into(), |t| format!("{} ({})", time(t), age(t, now))),
                opt_time(s.last_tick),
                job.as_ref().map_or("-".into(), |j| j.state.to_string()),
                s.runs.to_string(),
                if s.paused { "yes" } else { "no" }.into(),
            ]);
        }
        out!("{t}");
    });
    Ok(0)
}

async fn show(
    ctx: &Ctx,
    backend: &Arc<dyn Backend>,
    schedules: &Schedules,
    name: &str,
    n: usize,
) -> CliResult<u8> {
    let s = schedules.get(name).await?;
    let runs = schedules.runs(name, n).await?;
    let ids: Vec<_> = runs.iter().filter_map(|r| r.job_id).collect();
    let mut found = backend.job_get_many(ids.into()).await?.into_iter();
    let now = now();
    let rows: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            let job = r.job_id.and_then(|_| found.next().flatten());
            let outcome = match (r.kind, &job) {
                (RunKind::SkippedOverlap, _) => "skipped (overlap)".to_string(),
                (_, Some(j)) => j.state.to_string(),
                (_, None) => "pruned".to_string(),
            };
            serde_json::json!({
                "tick": r.tick,
                "kind": r.kind.as_str(),
                "enqueued_at": r.fired_at,
                "started_at": job.as_ref().and_then(|j| j.started_at),
                "lateness_ms": job.as_ref().and_then(|j| j.started_at).map(|st| st - r.tick),
                "job_id": r.job_id,
                "outcome": outcome,
            })
        })
        .collect();
    let json = serde_json::json!({
        "schedule": s,
        "next_run": s.next_run(now),
        "runs": rows,
    });
    ctx.out.emit(&json, || {
        out!("name:      {}", s.spec.name);
        out!("schedule:  {} ({})", s.spec.cron, s.spec.tz);
        out!(
            "job:       {} in queue {} (priority {}, {} attempts)",
            s.spec.job.kind,
            s.spec.job.queue,
            s.spec.job.priority,
            s.spec.job.max_attempts
        );
        out!(
            "policies:  misfire {}, overlap {}",
            s.spec.misfire.name(),
            s.spec.overlap.name()
        );
        out!("paused:    {}", if s.paused { "yes" } else { "no" });
        out!(
            "runs:      {}{}",
            s.runs,
            s.spec.limit.map(|l| format!(" of {l}")).unwrap_or_default()
        );
        out!("next run:  {}", opt_time(s.next_run(now)));
        if rows.is_empty() {
            out!("no runs yet");
            return;
        }
        let mut t = table(&["TICK", "KIND", "ENQUEUED", "LATENESS", "JOB", "OUTCOME"]);
        for r in &rows {
            t.add_row(vec![
                r["tick"].as_i64().map(time).unwrap_or_default(),
                r["kind"].as_str().unwrap_or_default().to_string(),
                r["enqueued_at"].as_i64().map(time).unwrap_or_default(),
                r["lateness_ms"]
                    .as_i64()
                    .map_or("-".into(), |ms| format!("{ms}ms")),
                r["job_id"].as_str().unwrap_or("-").to_string(),
                r["outcome"].as_str().unwrap_or_default().to_string(),
            ]);
        }
        out!("{t}");
    });
    Ok(0)
}

fn next(ctx: &Ctx, args: CronNextArgs) -> CliResult<u8> {
    if args.count > MAX_COUNT {
        return Err(CliError::usage(
            "usage",
            format!("--count {} is over the limit of {MAX_COUNT}", args.count),
        ));
    }
    let schedule = Schedule::parse(&args.expr, args.tz.as_deref())?;
    let from = args.from.unwrap_or_else(quern::clock::system_now_ms);
    let zone = schedule.time_zone();
    let ticks: Vec<(String, String)> = schedule
        .upcoming(from, args.count)
        .into_iter()
        .map(|t| (in_zone(t, zone), in_zone(t, &TimeZone::UTC)))
        .collect();
    let json = serde_json::json!({
        "expression": schedule.expression(),
        "tz": schedule.zone_name(),
        "from": in_zone(from, &TimeZone::UTC),
        "ticks": ticks
            .iter()
            .map(|(local, utc)| serde_json::json!({"local": local, "utc": utc}))
            .collect::<Vec<_>>(),
    });
    ctx.out.emit(&json, || {
        for (local, utc) in &ticks {
            out!("{local}  {utc}");
        }
    });
    Ok(0)
}

/// RFC 3339 with the zone's offset (`2026-03-08T03:00:00-04:00`; `Z` for UTC).
fn in_zone(at: Millis, zone: &TimeZone) -> String {
    let Ok(ts) = Timestamp::from_millisecond(at) else {
        return at.to_string();
    };
    if zone == &TimeZone::UTC {
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    ts.to_zoned(zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}
