//! `quern stats [--queue Q] [--kind K] [--since D]`: figures of the jobs that finished in the
//! window, from their stored timestamps (`Backend::job_finished`, `quern::stats`).

use quern::backend::FinishedParams;
use quern::stats::{GroupStats, Percentiles, summarize};

use crate::cli::StatsArgs;
use crate::cmd::Ctx;
use crate::error::CliResult;
use crate::log::out;
use crate::output::{table, time};
use crate::store::Open;

pub async fn run(ctx: &Ctx, a: StatsArgs) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    let until = quern::Clock::now_ms(&quern::SystemClock);
    let since = until.saturating_sub(i64::try_from(a.since.as_millis()).unwrap_or(i64::MAX));
    let jobs = backend
        .job_finished(FinishedParams {
            since,
            queue: a.queue,
            kind: a.kind,
        })
        .await?;
    let report = summarize(&jobs, since, until);
    ctx.out.emit(&report, || {
        out!(
            "jobs finished from {} to {} ({})",
            time(since),
            time(until),
            quern::model::format_duration(a.since)
        );
        if report.groups.is_empty() {
            out!("no finished jobs");
            return;
        }
        let mut t = table(&[
            "QUEUE",
            "KIND",
            "FINISHED",
            "OK",
            "DEAD",
            "CANCELLED",
            "SKIPPED",
            "JOBS/S",
            "SUCCESS",
            "RETRIES",
            "WAIT p50/p95/p99",
            "RUN p50/p95/p99",
        ]);
        for g in report.groups.iter().chain(std::iter::once(&report.total)) {
            t.add_row(row(g));
        }
        out!("{t}");
    });
    Ok(0)
}

fn row(g: &GroupStats) -> Vec<String> {
    vec![
        g.queue.clone().unwrap_or_else(|| "(all)".into()),
        g.kind.clone().unwrap_or_else(|| "(all)".into()),
        g.finished.to_string(),
        g.succeeded.to_string(),
        g.dead.to_string(),
        g.cancelled.to_string(),
        g.skipped.to_string(),
        format!("{:.2}", g.throughput_per_s),
        g.success_rate
            .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0)),
        g.retries.to_string(),
        pct(g.wait_ms),
        pct(g.run_ms),
    ]
}

/// `12ms / 40ms / 2.1s`, or `-` without samples.
fn pct(p: Option<Percentiles>) -> String {
    p.map_or_else(
        || "-".into(),
        |p| format!("{} / {} / {}", ms(p.p50), ms(p.p95), ms(p.p99)),
    )
}

fn ms(v: i64) -> String {
    if v < 1000 {
        format!("{v}ms")
    } else {
        format!("{:.1}s", v as f64 / 1000.0)
    }
}
