//! The measurements themselves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quern::backend::{BatchMode, EnqueueParams};
use quern::{Backend, Codec, Format, JobId, NewJob, Payload};
use tokio_util::sync::CancellationToken;

use super::recorder::{BenchHandler, KIND, Recorder, now_ms_f64, quantile};
use super::{Report, Setup, rate};
use crate::cli::BenchArgs;
use crate::error::{CliError, CliResult};
use crate::runner::{PoolConfig, run_pool};

pub struct Bench<'a> {
    pub backend: Arc<dyn Backend>,
    pub args: &'a BenchArgs,
    pub run_id: String,
    pub codec: Codec,
    pub progress: bool,
    pub lease: Duration,
    /// Reads the store's memory use, where the store can tell (single-node Redis).
    pub memory: Option<crate::store::MemoryProbe>,
}

/// A drain's outcome.
struct Drained {
    elapsed: Duration,
    lost: u64,
    duplicates: u64,
}

impl Bench<'_> {
    pub async fn run_all(&self, url: &str) -> CliResult<Report> {
        let n = self.args.jobs;
        let q1 = format!("{}-c1", self.run_id);
        let qn = format!("{}-cn", self.run_id);
        let ql = format!("{}-lat", self.run_id);

        if let Some(s) = &self.args.queue_settings {
            for q in [&q1, &qn, &ql] {
                self.backend
                    .queue_update(quern::backend::QueueUpdateParams {
                        queue: q.clone(),
                        concurrency: Some(s.concurrency),
                        rate: Some(s.rate),
                        weight: Some(s.weight),
                        order: Some(s.order),
                        aging: Some(s.aging),
                        retention: s.retention.iter().map(|(st, k)| (*st, Some(*k))).collect(),
                        retry: Some(s.retry.clone()),
                        group_concurrency: Some(s.group_concurrency),
                        kinds: s.kinds.iter().map(|(p, l)| (p.clone(), Some(*l))).collect(),
                        group_rate: Some(s.group_rate),
                    })
                    .await?;
            }
        }
        let mem0 = self.used_memory().await;
        let (single, ids1) = self.enqueue_single(&q1, n).await?;
        let (batch, idsn) = self.enqueue_batch(&qn, n).await?;
        // Both enqueue phases' jobs are queued now, none drained.
        let mem1 = self.used_memory().await;
        let bytes_per_queued_job = match (mem0, mem1) {
            (Some(a), Some(b)) if n > 0 => Some(((b as f64 - a as f64) / (2 * n) as f64).round()),
            _ => None,
        };
        let d1 = self.drain(&q1, &ids1, 1).await?;
        let dn = self
            .drain(&qn, &idsn, self.args.concurrency as usize)
            .await?;
        let (lat, achieved, lat_lost, lat_dup) = self.latency(&ql).await?;
        let cron_lag = match self.args.cron_ticks {
            0 => None,
            ticks => Some(
                self.cron_lag(&format!("{}-cron", self.run_id), ticks)
                    .await?,
            ),
        };

        Ok(Report {
            enqueue_single_per_s: rate(n, single),
            enqueue_batch_per_s: rate(n, batch),
            drain_c1_per_s: rate(n, d1.elapsed),
            drain_per_s: rate(n, dn.elapsed),
            latency_p50_ms: round3(quantile(&lat, 0.5)),
            latency_p99_ms: round3(quantile(&lat, 0.99)),
            latency_p999_ms: round3(quantile(&lat, 0.999)),
            lost: d1.lost + dn.lost + lat_lost,
            duplicates: d1.duplicates + dn.duplicates + lat_dup,
            bytes_per_queued_job,
            cron_lag,
            setup: Setup {
                store: crate::store::redact(url),
                backend: self.backend.capabilities().name,
                jobs: n,
                batch_size: self.args.batch_size,
                concurrency: self.args.concurrency,
                payload_bytes: self.args.payload_bytes,
                latency_jobs: self.args.latency_jobs,
                latency_concurrency: self.args.latency_concurrency,
                offered_rate_per_s: self.args.rate,
                achieved_rate_per_s: (achieved * 10.0).round() / 10.0,
                worker_in_process: true,
                version: env!("CARGO_PKG_VERSION"),
            },
        })
    }

    async fn used_memory(&self) -> Option<u64> {
        match &self.memory {
            Some(m) => m.used().await,
            None => None,
        }
    }

    /// A job like the peers': ~100 bytes of JSON (padded to `--payload-bytes`), `ts` set for
    /// the latency run.
    fn job(&self, queue: &str, i: usize, ts: f64) -> CliResult<NewJob> {
        let mut text = format!(
            "{{\"user_id\":{},\"email\":\"user{i}@example.com\",\"action\":\"send_welcome_email\",\"ts\":{ts:.3}",
            100_000 + i
        );
        let want = self.args.payload_bytes;
        if text.len() + 1 < want {
            let pad = want.saturating_sub(text.len() + 10);
            text.push_str(",\"pad\":\"");
            text.extend(std::iter::repeat_n('x', pad));
            text.push('"');
        }
        text.push('}');
        let payload = Payload::from_encoded(Format::Json, text.into_bytes(), &self.codec)?;
        Ok(NewJob::new(KIND, payload).queue(queue))
    }

    fn bar(&self, msg: &str, len: usize) -> ProgressBar {
        let target = if self.progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let pb = ProgressBar::with_draw_target(Some(len as u64), target);
        pb.set_style(
            ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_message(msg.to_string());
        pb
    }

    async fn enqueue_single(&self, queue: &str, n: usize) -> CliResult<(Duration, Vec<JobId>)> {
        let pb = self.bar("enqueue one by one", n);
        let mut ids = Vec::with_capacity(n);
        let t0 = Instant::now();
        for i in 0..n {
            let job = self.job(queue, i, 0.0)?;
            ids.push(job.id);
            first_ok(
                self.backend
                    .job_enqueue(EnqueueParams {
                        jobs: vec![job],
                        mode: BatchMode::Atomic,
                    })
                    .await?,
            )?;
            if i % 256 == 0 {
                pb.set_position(i as u64);
            }
        }
        let elapsed = t0.elapsed();
        pb.finish_and_clear();
        self.expect_queued(queue, n).await?;
        Ok((elapsed, ids))
    }

    async fn enqueue_batch(&self, queue: &str, n: usize) -> CliResult<(Duration, Vec<JobId>)> {
        let pb = self.bar("enqueue in batches", n);
        let mut ids = Vec::with_capacity(n);
        let t0 = Instant::now();
        let mut i = 0;
        while i < n {
            let end = (i + self.args.batch_size).min(n);
            let mut jobs = Vec::with_capacity(end - i);
            for k in i..end {
                let job = self.job(queue, k, 0.0)?;
                ids.push(job.id);
                jobs.push(job);
            }
            let res = self
                .backend
                .job_enqueue(EnqueueParams {
                    jobs,
                    mode: BatchMode::Atomic,
                })
                .await?;
            for r in res {
                r?;
            }
            i = end;
            pb.set_position(i as u64);
        }
        let elapsed = t0.elapsed();
        pb.finish_and_clear();
        self.expect_queued(queue, n).await?;
        Ok((elapsed, ids))
    }

    /// Checks that the enqueue really stored `n` jobs (as the peers' scripts do).
    async fn expect_queued(&self, queue: &str, n: usize) -> CliResult<()> {
        let c = self.backend.queue_stats(queue.into()).await?.counts;
        if c.queued as usize != n {
            return Err(CliError::failed(
                "bench",
                format!("expected {n} queued jobs in {queue}, found {}", c.queued),
            ));
        }
        Ok(())
    }

    fn pool(&self, queue: &str, concurrency: usize, rec: &Arc<Recorder>) -> PoolConfig {
        PoolConfig {
            queues: vec![queue.to_string()],
            concurrency,
            lease: self.lease,
            heartbeat: Duration::from_secs(10),
            // The bench counts every job it enqueued: nothing may be pruned under it.
            pruner: None,
            forget_lost_workers_after: Some(Duration::from_secs(3600)),
            shutdown_grace: Duration::from_secs(10),
            handlers: vec![(KIND.to_string(), Arc::new(BenchHandler(rec.clone())))],
            codec: self.codec,
            workflow_env: Vec::new(),
            store_upkeep: None,
            capabilities: Vec::new(),
        }
    }

    async fn drain(&self, queue: &str, ids: &[JobId], concurrency: usize) -> CliResult<Drained> {
        let n = ids.len();
        let rec = Arc::new(Recorder::new(n, false));
        let pb = self.bar(&format!("drain, concurrency {concurrency}"), n);
        let stop = CancellationToken::new();
        let t0 = Instant::now();
        let worker = tokio::spawn(run_pool(
            self.backend.clone(),
            self.pool(queue, concurrency, &rec),
            stop.clone(),
        ));
        let ticker = spawn_ticker(pb.clone(), rec.clone());
        // The N-th handler call, then the N-th completion as the store records it.
        let finished = tokio::time::timeout(self.args.timeout, async {
            rec.wait_done().await;
            self.wait_succeeded(queue, n).await
        })
        .await;
        let elapsed = t0.elapsed();
        ticker.abort();
        pb.finish_and_clear();
        stop.cancel();
        join_pool(worker).await?;
        if let Ok(r) = finished {
            r?;
        }
        Ok(Drained {
            elapsed,
            lost: rec.missing(ids),
            duplicates: rec.duplicates(),
        })
    }

    /// Polls until `n` jobs of `queue` are succeeded.
    async fn wait_succeeded(&self, queue: &str, n: usize) -> CliResult<()> {
        loop {
            let c = self.backend.queue_stats(queue.into()).await?.counts;
            if c.succeeded as usize >= n {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Returns the sorted latencies, the achieved offered rate, lost and duplicates.
    async fn latency(&self, queue: &str) -> CliResult<(Vec<f64>, f64, u64, u64)> {
        let m = self.args.latency_jobs;
        let rec = Arc::new(Recorder::new(m, true));
        let stop = CancellationToken::new();
        let worker = tokio::spawn(run_pool(
            self.backend.clone(),
            self.pool(queue, self.args.latency_concurrency as usize, &rec),
            stop.clone(),
        ));
        // Let the worker reach its idle wait, as the peers' scripts do.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pb = self.bar(&format!("latency @{}/s", self.args.rate), m);
        let interval = Duration::from_secs_f64(1.0 / self.args.rate as f64);
        let mut ids = Vec::with_capacity(m);
        let t0 = tokio::time::Instant::now();
        for i in 0..m {
            tokio::time::sleep_until(t0 + interval * i as u32).await;
            let job = self.job(queue, i, now_ms_f64())?;
            ids.push(job.id);
            first_ok(
                self.backend
                    .job_enqueue(EnqueueParams {
                        jobs: vec![job],
                        mode: BatchMode::Atomic,
                    })
                    .await?,
            )?;
            if i % 64 == 0 {
                pb.set_position(i as u64);
            }
        }
        let achieved = m as f64 / t0.elapsed().as_secs_f64();
        let _ = tokio::time::timeout(self.args.timeout, rec.wait_done()).await;
        pb.finish_and_clear();
        stop.cancel();
        join_pool(worker).await?;
        let mut lat = rec.take_latencies();
        lat.sort_by(f64::total_cmp);
        Ok((lat, achieved, rec.missing(&ids), rec.duplicates()))
    }
}

impl Bench<'_> {
    /// An every-second schedule into `queue`, fired by the scheduler of an idle
    /// concurrency-1 worker in this process, for `ticks` ticks; each run's lateness is its
    /// job's `started_at` (when the handler started) minus its tick, as `cron show` reports.
    async fn cron_lag(&self, queue: &str, ticks: usize) -> CliResult<super::CronLag> {
        use quern::model::{JobTemplate, Misfire, ScheduleSpec};
        let schedules = quern::Client::new(self.backend.clone()).schedules();
        let name = queue.to_string();
        let mut job = JobTemplate::new(KIND);
        job.queue = queue.to_string();
        job.payload = serde_json::json!({ "ts": 0 });
        let mut spec = ScheduleSpec::new(&name, "@every 1s", job);
        spec.misfire = Misfire::Skip;
        let rec = Arc::new(Recorder::new(ticks, false));
        let stop = CancellationToken::new();
        let worker = tokio::spawn(run_pool(
            self.backend.clone(),
            self.pool(queue, 1, &rec),
            stop.clone(),
        ));
        // The worker settles first, so every measured tick finds it idle.
        tokio::time::sleep(Duration::from_millis(500)).await;
        schedules.upsert(spec).await?;
        let pb = self.bar("cron tick lag", ticks);
        let ticker = spawn_ticker(pb.clone(), rec.clone());
        let limit = Duration::from_secs(ticks as u64 + 30);
        let _ = tokio::time::timeout(limit, rec.wait_done()).await;
        ticker.abort();
        pb.finish_and_clear();
        schedules.pause(&name).await?;
        // Let the acker store the last outcomes.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
        join_pool(worker).await?;
        let runs = schedules
            .runs(&name, quern::model::ScheduleRun::HISTORY)
            .await?;
        schedules.remove(&name).await?;
        let ids: Vec<JobId> = runs.iter().filter_map(|r| r.job_id).collect();
        let jobs = self.backend.job_get_many(ids.into()).await?;
        let mut lag: Vec<f64> = runs
            .iter()
            .zip(jobs)
            .filter_map(|(r, j)| Some((j?.started_at? - r.tick) as f64))
            .collect();
        lag.sort_by(f64::total_cmp);
        // The runs enqueued ahead (up to the lookahead) that had not started when the
        // schedule was paused have no start; every other tick must have run.
        if lag.len() + 6 < ticks.min(quern::model::ScheduleRun::HISTORY) {
            return Err(CliError::failed(
                "bench",
                format!("only {} of {ticks} cron ticks ran", lag.len()),
            ));
        }
        Ok(super::CronLag {
            ticks: lag.len(),
            p50_ms: round3(quantile(&lag, 0.5)),
            p99_ms: round3(quantile(&lag, 0.99)),
            max_ms: round3(lag.last().copied().unwrap_or(0.0)),
        })
    }
}

fn first_ok(mut res: quern::backend::EnqueueResults) -> CliResult<()> {
    match res.pop() {
        Some(r) => r.map(|_| ()).map_err(Into::into),
        None => Err(CliError::failed("bench", "enqueue returned no result")),
    }
}

fn spawn_ticker(pb: ProgressBar, rec: Arc<Recorder>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            pb.set_position(rec.distinct() as u64);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

async fn join_pool(h: tokio::task::JoinHandle<CliResult<()>>) -> CliResult<()> {
    h.await
        .map_err(|e| CliError::failed("bench", format!("worker task failed: {e}")))?
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
