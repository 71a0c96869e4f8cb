//! `quern bench`: the same measurements as the peers' scripts in `shared/bench/peers`
//! (see their RESULTS.md, "Method"), against any store URL.
//!
//! 1. enqueue one by one: N jobs, each call awaited, timed until the last call returns;
//! 2. enqueue in batches of `--batch-size`, timed the same way;
//! 3. drain at concurrency 1: the N jobs of (1) are already queued; a `quern::Worker` starts
//!    and the clock runs until the store shows the N-th job succeeded;
//! 4. drain at concurrency C, the same way, on the N jobs of (2);
//! 5. latency: a worker is started and settles, then jobs are enqueued at a fixed rate; each
//!    payload carries the wall-clock time just before its enqueue call, and the handler
//!    records the difference when it starts. The worker runs in the same process;
//! 6. lost and duplicated jobs: every handler call is recorded per job id.

mod phases;
mod recorder;

use std::time::Duration;

use serde::Serialize;

use crate::cli::BenchArgs;
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult};
use crate::log::out;
use crate::store::{Open, open_store};

/// The figures `quern bench` reports (`--json` prints exactly this).
#[derive(Debug, Serialize)]
pub struct Report {
    pub enqueue_single_per_s: f64,
    pub enqueue_batch_per_s: f64,
    pub drain_c1_per_s: f64,
    pub drain_per_s: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_p999_ms: f64,
    pub lost: u64,
    pub duplicates: u64,
    /// Store memory per queued job in bytes: Redis's `used_memory` after the two enqueue
    /// phases minus before, divided by the jobs then queued (2 × `jobs`). `null` for stores
    /// where it is not measured (SQLite, Redis Cluster).
    pub bytes_per_queued_job: Option<f64>,
    /// Cron tick lag (handler start − tick) with `--cron-ticks N`: p50 and p99 in ms and
    /// the ticks measured; `null` without it.
    pub cron_lag: Option<CronLag>,
    /// How the run was set up.
    pub setup: Setup,
}

/// `quern bench --cron-ticks N`: how late each tick's job started.
#[derive(Debug, Serialize)]
pub struct CronLag {
    pub ticks: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The run's parameters, printed with the figures so a number never travels without them.
#[derive(Debug, Serialize)]
pub struct Setup {
    pub store: String,
    pub backend: String,
    pub jobs: usize,
    pub batch_size: usize,
    pub concurrency: u32,
    pub payload_bytes: usize,
    pub latency_jobs: usize,
    pub latency_concurrency: u32,
    pub offered_rate_per_s: usize,
    pub achieved_rate_per_s: f64,
    pub worker_in_process: bool,
    pub version: &'static str,
}

pub async fn run(ctx: &Ctx, args: BenchArgs) -> CliResult<u8> {
    // Without an explicit store, use a throwaway SQLite file rather than the user's quern.db.
    let _tmp;
    let url = match &ctx.settings.store {
        Some(u) => u.clone(),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("quern-bench-")
                .tempdir()
                .map_err(|e| CliError::failed("io", format!("cannot create a temp dir: {e}")))?;
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            _tmp = dir;
            url
        }
    };
    let backend = open_store(&url, Open::Create, ctx.store_options()).await?;
    let run_id = format!(
        "bench-{}-{}",
        std::process::id(),
        quern::clock::system_now_ms()
    );
    // Progress bars go to stderr, and only when it is a terminal (so never into logs).
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bench = phases::Bench {
        backend: backend.clone(),
        args: &args,
        run_id,
        codec: ctx.codec(),
        progress,
        lease: ctx.settings.worker.lease,
        memory: crate::store::MemoryProbe::open(&url).await,
    };
    let report = bench.run_all(&url).await?;
    ctx.out.emit(&report, || print_report(&report));
    Ok(if report.lost > 0 || report.duplicates > 0 {
        1
    } else {
        0
    })
}

fn print_report(r: &Report) {
    let s = &r.setup;
    out!(
        "quern bench {} on {} ({}), {} jobs, payload ~{} B",
        s.version,
        s.store,
        s.backend,
        s.jobs,
        s.payload_bytes
    );
    let mut t = crate::output::table(&["metric", "value"]);
    let rows: Vec<(String, String)> = vec![
        (
            "enqueue, one by one".into(),
            format!("{:.0} jobs/s", r.enqueue_single_per_s),
        ),
        (
            format!("enqueue, batches of {}", s.batch_size),
            format!("{:.0} jobs/s", r.enqueue_batch_per_s),
        ),
        (
            "drain, concurrency 1".into(),
            format!("{:.0} jobs/s", r.drain_c1_per_s),
        ),
        (
            format!("drain, concurrency {}", s.concurrency),
            format!("{:.0} jobs/s", r.drain_per_s),
        ),
        (
            format!(
                "latency p50 / p99 / p99.9 @{}/s (achieved {:.0}/s, c{})",
                s.offered_rate_per_s, s.achieved_rate_per_s, s.latency_concurrency
            ),
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                r.latency_p50_ms, r.latency_p99_ms, r.latency_p999_ms
            ),
        ),
        (
            "lost / duplicated jobs".into(),
            format!("{} / {}", r.lost, r.duplicates),
        ),
        (
            "memory per queued job".into(),
            match r.bytes_per_queued_job {
                Some(b) => format!("{b:.0} B"),
                None => "not measured for this store".into(),
            },
        ),
    ];
    let mut rows = rows;
    if let Some(c) = &r.cron_lag {
        rows.push((
            format!("cron tick lag p50 / p99 / max ({} ticks)", c.ticks),
            format!("{:.2} / {:.2} / {:.2} ms", c.p50_ms, c.p99_ms, c.max_ms),
        ));
    }
    for (k, v) in rows {
        t.add_row(vec![k, v]);
    }
    out!("{t}");
}

/// Jobs per second, rounded to one decimal.
fn rate(n: usize, d: Duration) -> f64 {
    let r = n as f64 / d.as_secs_f64().max(1e-9);
    (r * 10.0).round() / 10.0
}
