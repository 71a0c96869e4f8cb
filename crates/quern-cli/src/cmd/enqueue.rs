//! `quern enqueue`: one job from flags, or many from a JSON Lines file.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use quern::backend::{BatchMode, EnqueueOutcome, EnqueueParams};
use quern::{Codec, JobId, NewJob, Payload, Priority, RetryPolicy};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::cli::EnqueueArgs;
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult};
use crate::log::out;
use crate::store::Open;

pub async fn run(ctx: &Ctx, args: EnqueueArgs) -> CliResult<u8> {
    match &args.batch {
        Some(file) => batch(ctx, file, args.atomic).await,
        None => single(ctx, args).await,
    }
}

async fn single(ctx: &Ctx, args: EnqueueArgs) -> CliResult<u8> {
    let codec = ctx.codec();
    let payload_text = match (&args.payload, &args.payload_file) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(f)) => Some(read_input(f)?),
        (None, None) => None,
    };
    let payload = match payload_text {
        Some(t) => json_payload(&t, &codec)?,
        None => Payload::null(),
    };
    let kind = args.kind.clone().unwrap_or_default();
    let spec = JobSpec {
        kind,
        payload: None,
        queue: args.queue,
        priority: args.priority,
        delay: args.delay,
        at: args.at,
        unique: args.unique,
        unique_for: args.unique_for,
        max_attempts: args.max_attempts,
        timeout: args.timeout,
        retry: args.retry,
        result_ttl: args.result_ttl,
        depends_on: args.depends_on,
        payload_version: args.payload_version,
        traceparent: args.traceparent,
        tracestate: args.tracestate,
        group: args.group,
    };
    let mut job = spec.into_job(payload)?;
    ctx.settings.router()?.apply_defaults(&mut job);
    job.validate(&limits(&codec))?;

    let backend = ctx.open(Open::Create).await?;
    // The `quern.enqueue` span, as the library's Client makes it: with OTLP export on, the
    // job stores the span's trace context (unless --traceparent gave one), so the worker's
    // `quern.run` continues this trace.
    let span = tracing::info_span!(
        "quern.enqueue",
        job_id = %job.id,
        kind = %job.kind,
        queue = %job.queue,
    );
    let mut res = {
        span.in_scope(|| {
            if job.trace.is_none() {
                job.trace = quern::telemetry::current_trace();
            }
        });
        backend
            .job_enqueue(EnqueueParams {
                jobs: vec![job],
                mode: BatchMode::Atomic,
            })
            .instrument(span)
            .await
            .map_err(without_index)?
    };
    let outcome: EnqueueOutcome = res
        .pop()
        .ok_or_else(|| CliError::failed("storage", "the store returned no enqueue result"))?
        .map_err(without_index)?;
    ctx.out.emit(&outcome, || out!("{}", outcome.id));
    Ok(0)
}

/// One line of a `--batch` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobSpec {
    kind: String,
    #[serde(default)]
    payload: Option<serde_json::Value>,
    queue: Option<String>,
    priority: Option<Priority>,
    #[serde(default, with = "quern::model::serde_ms::option")]
    delay: Option<Duration>,
    /// RFC 3339 in files; already milliseconds when built from flags.
    #[serde(default, deserialize_with = "de_rfc3339")]
    at: Option<i64>,
    unique: Option<String>,
    #[serde(default, with = "quern::model::serde_ms::option")]
    unique_for: Option<Duration>,
    max_attempts: Option<u32>,
    #[serde(default, with = "quern::model::serde_ms::option")]
    timeout: Option<Duration>,
    /// The text form (`"fixed:5s"`), as `--retry` takes it.
    #[serde(default, deserialize_with = "de_retry")]
    retry: Option<RetryPolicy>,
    #[serde(default, with = "quern::model::serde_ms::option")]
    result_ttl: Option<Duration>,
    #[serde(default)]
    depends_on: Vec<JobId>,
    payload_version: Option<u32>,
    traceparent: Option<String>,
    tracestate: Option<String>,
    group: Option<String>,
}

fn de_retry<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<RetryPolicy>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| crate::parse::retry(&s).map_err(serde::de::Error::custom))
        .transpose()
}

fn de_rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| crate::parse::rfc3339(&s).map_err(serde::de::Error::custom))
        .transpose()
}

impl JobSpec {
    fn into_job(self, payload: Payload) -> CliResult<NewJob> {
        let bad = |m: String| CliError::usage("invalid_argument", m);
        if self.delay.is_some() && self.at.is_some() {
            return Err(bad("give either delay or at, not both".into()));
        }
        if self.unique_for.is_some() && self.unique.is_none() {
            return Err(bad("unique_for needs a unique key".into()));
        }
        let mut job = NewJob::new(self.kind, payload);
        if let Some(q) = self.queue {
            crate::parse::queue(&q).map_err(bad)?;
            job = job.queue(q);
        }
        if let Some(p) = self.priority {
            job = job.priority(p);
        }
        if let Some(d) = self.delay {
            i64::try_from(d.as_millis()).map_err(|_| bad("delay is too long".into()))?;
            // Counted by the store from the moment it stores the job (not from here, before
            // the store was even opened).
            job = job.delay(d);
        }
        if let Some(at) = self.at {
            job = job.run_at(at);
        }
        if let Some(k) = self.unique {
            job = job.unique(k, self.unique_for);
        }
        if let Some(n) = self.max_attempts {
            job = job.max_attempts(n);
        }
        if let Some(t) = self.timeout {
            job = job.timeout(t);
        }
        if let Some(p) = self.retry {
            job = job.retry(p);
        }
        if let Some(d) = self.result_ttl {
            job = job.result_ttl(d);
        }
        if let Some(v) = self.payload_version {
            job = job.version(v);
        }
        match (self.traceparent, self.tracestate) {
            (Some(tp), ts) => {
                let tc =
                    quern::model::TraceContext::new(&tp, ts.as_deref()).map_err(|e| match e {
                        quern::Error::InvalidArgument(m) => bad(m),
                        other => bad(other.to_string()),
                    })?;
                job = job.trace(tc);
            }
            (None, Some(_)) => return Err(bad("tracestate needs a traceparent".into())),
            (None, None) => {}
        }
        if let Some(g) = self.group {
            job = job.group(g);
        }
        Ok(job.depends_on(self.depends_on))
    }
}

/// What `--batch` prints per line.
#[derive(Debug, Serialize)]
struct LineResult {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<JobId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

async fn batch(ctx: &Ctx, file: &Path, atomic: bool) -> CliResult<u8> {
    let codec = ctx.codec();
    let router = ctx.settings.router()?;
    let text = read_input(file)?;
    // Every line is parsed and checked before anything is stored: a malformed file changes
    // nothing, in either mode.
    let mut jobs = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let at_line = |m: String| CliError::usage("invalid_argument", format!("line {n}: {m}"));
        let spec: JobSpec = serde_json::from_str(line).map_err(|e| at_line(e.to_string()))?;
        let payload = match &spec.payload {
            Some(v) => Payload::from_json_value(v, &codec).map_err(|e| at_line(e.to_string()))?,
            None => Payload::null(),
        };
        let mut job = spec.into_job(payload).map_err(|e| at_line(e.message))?;
        router.apply_defaults(&mut job);
        job.validate(&limits(&codec))
            .map_err(|e| at_line(e.to_string()))?;
        jobs.push(job);
        lines.push(n);
    }
    if jobs.is_empty() {
        return Err(CliError::usage(
            "invalid_argument",
            format!("{} has no jobs", file.display()),
        ));
    }
    let backend = ctx.open(Open::Create).await?;
    let mode = if atomic {
        BatchMode::Atomic
    } else {
        BatchMode::BestEffort
    };
    let results = backend
        .job_enqueue(EnqueueParams { jobs, mode })
        .await
        .map_err(|e| match e {
            // Point at the file's line rather than the batch index.
            quern::Error::InvalidJob {
                index: Some(i),
                reason,
            } if i < lines.len() => CliError::usage(
                "invalid_job",
                format!("line {}: {reason} (nothing was enqueued)", lines[i]),
            ),
            other => other.into(),
        })?;
    let mut out = Vec::with_capacity(results.len());
    let mut failed = 0;
    for (n, r) in lines.into_iter().zip(results) {
        out.push(match r {
            Ok(o) => LineResult {
                line: n,
                id: Some(o.id),
                duplicate: Some(o.duplicate),
                error: None,
            },
            Err(e) => {
                failed += 1;
                let e = without_index(e);
                LineResult {
                    line: n,
                    id: None,
                    duplicate: None,
                    error: Some(e.to_json()["error"].clone()),
                }
            }
        });
    }
    let doc = serde_json::json!({"jobs": out, "enqueued": out.len() - failed, "failed": failed});
    ctx.out.emit(&doc, || {
        for r in &out {
            match (&r.id, &r.error) {
                (Some(id), _) => out!("{id}"),
                (None, Some(e)) => crate::log::say!(
                    "line {}: {}",
                    r.line,
                    e["message"].as_str().unwrap_or("failed")
                ),
                _ => {}
            }
        }
    });
    Ok(if failed > 0 { 1 } else { 0 })
}

/// A refused job's error without the backend's "batch item N" (the position in the call):
/// the user gave one job, or the output already names the file's line.
fn without_index(e: quern::Error) -> CliError {
    match e {
        quern::Error::InvalidJob { reason, .. } => quern::Error::InvalidJob {
            index: None,
            reason,
        },
        other => other,
    }
    .into()
}

/// A JSON payload from text; malformed JSON and oversize payloads are usage errors.
fn json_payload(text: &str, codec: &Codec) -> CliResult<Payload> {
    Payload::from_json_str(text, codec).map_err(|e| match e {
        quern::Error::Codec(m) => CliError::usage("invalid_payload", m),
        other => other.into(),
    })
}

fn limits(codec: &Codec) -> quern::model::Limits {
    quern::model::Limits {
        max_payload_bytes: codec.max_bytes,
    }
}

/// Reads a file, or stdin for `-`.
fn read_input(path: &Path) -> CliResult<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::usage("io", format!("cannot read stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| CliError::usage("io", format!("cannot read {}: {e}", path.display())))
}
