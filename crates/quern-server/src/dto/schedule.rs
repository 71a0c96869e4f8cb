//! Recurring schedules and queue limits: `/v1/schedules` and `/v1/queues/{name}/settings`.

use std::time::Duration;

use quern::Priority;
use quern::model::{
    Aging, ClaimOrder, JobTemplate, Misfire, Overlap, QueueUsage, RateLimit, ScheduleRun,
    ScheduleSpec, StoredSchedule, parse_duration,
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// The job a schedule enqueues at each tick.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobTemplateDto {
    pub kind: String,
    /// JSON payload (default null).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Default `default`.
    pub queue: Option<String>,
    /// 0 (most urgent) to 9; default 5.
    #[schema(minimum = 0, maximum = 9)]
    pub priority: Option<u8>,
    /// Default 25.
    #[schema(minimum = 1)]
    pub max_attempts: Option<u32>,
    #[schema(minimum = 1)]
    pub timeout_ms: Option<u64>,
    /// While a job with this key is live, a tick records it instead of a new one.
    pub unique_key: Option<String>,
}

/// `PUT /v1/schedules/{name}`: the schedule's fields (the name is the path's).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// A cron expression (5 or 6 fields), a macro such as `@daily`, or `@every 90s`.
    pub cron: String,
    /// IANA time zone; default `UTC`.
    pub tz: Option<String>,
    pub job: JobTemplateDto,
    /// No tick before this time (ms since the Unix epoch).
    pub start_at: Option<i64>,
    /// No tick after this time.
    pub end_at: Option<i64>,
    /// At most this many scheduled runs.
    #[schema(minimum = 1)]
    pub limit: Option<u64>,
    #[schema(minimum = 0)]
    pub jitter_ms: Option<u64>,
    /// `skip`, `run-once` (default) or `run-all`.
    pub misfire: Option<String>,
    /// With `run-all`: at most this many missed ticks (default 100).
    #[schema(minimum = 1)]
    pub misfire_max: Option<u32>,
    /// With `run-all`: only ticks missed within this long (default one day).
    #[schema(minimum = 1)]
    pub misfire_window_ms: Option<u64>,
    /// `allow` (default), `skip` or `cancel-previous`.
    pub overlap: Option<String>,
}

impl ScheduleRequest {
    pub fn into_spec(self, name: String) -> Result<ScheduleSpec, ApiError> {
        let invalid = |e: quern::Error| ApiError::from(e);
        let t = self.job;
        let mut job = JobTemplate::new(t.kind);
        job.payload = t.payload;
        if let Some(q) = t.queue {
            job.queue = q;
        }
        if let Some(p) = t.priority {
            job.priority = Priority::new(p)
                .ok_or_else(|| ApiError::invalid(format!("job.priority {p} is not 0 to 9")))?;
        }
        if let Some(n) = t.max_attempts {
            job.max_attempts = n;
        }
        job.timeout = t.timeout_ms.map(Duration::from_millis);
        job.unique_key = t.unique_key;
        let mut spec = ScheduleSpec::new(name, self.cron, job);
        if let Some(tz) = self.tz {
            spec.tz = tz;
        }
        spec.start_at = self.start_at;
        spec.end_at = self.end_at;
        spec.limit = self.limit;
        spec.jitter = self.jitter_ms.map(Duration::from_millis);
        if let Some(m) = &self.misfire {
            spec.misfire = Misfire::parse(m).map_err(invalid)?;
        }
        match &mut spec.misfire {
            Misfire::RunAll { max, window } => {
                *max = self.misfire_max.unwrap_or(*max);
                if let Some(w) = self.misfire_window_ms {
                    *window = Duration::from_millis(w);
                }
            }
            _ if self.misfire_max.is_some() || self.misfire_window_ms.is_some() => {
                return Err(ApiError::invalid(
                    "misfire_max and misfire_window_ms go with misfire run-all",
                ));
            }
            _ => {}
        }
        if let Some(o) = &self.overlap {
            spec.overlap = Overlap::parse(o).map_err(invalid)?;
        }
        spec.validate().map_err(invalid)?;
        Ok(spec)
    }
}

/// A stored schedule.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScheduleDto {
    pub name: String,
    pub cron: String,
    pub tz: String,
    pub job: JobTemplateDto,
    pub start_at: Option<i64>,
    pub end_at: Option<i64>,
    pub limit: Option<u64>,
    pub jitter_ms: Option<u64>,
    /// `skip`, `run-once` or `run-all`.
    pub misfire: String,
    pub misfire_max: Option<u32>,
    pub misfire_window_ms: Option<u64>,
    /// `allow`, `skip` or `cancel-previous`.
    pub overlap: String,
    pub paused: bool,
    /// Grows with every change of the spec or of `paused`.
    pub revision: u64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Scheduled runs so far.
    pub runs: u64,
    pub last_tick: Option<i64>,
    pub last_job_id: Option<String>,
    /// The next tick after now, unless paused or ended.
    pub next_run: Option<i64>,
}

impl ScheduleDto {
    pub fn new(s: StoredSchedule, now: i64) -> ScheduleDto {
        let next_run = s.next_run(now);
        let spec = s.spec;
        let (misfire_max, misfire_window_ms) = match spec.misfire {
            Misfire::RunAll { max, window } => (Some(max), Some(window.as_millis() as u64)),
            _ => (None, None),
        };
        ScheduleDto {
            name: spec.name,
            cron: spec.cron,
            tz: spec.tz,
            job: JobTemplateDto {
                kind: spec.job.kind,
                payload: spec.job.payload,
                queue: Some(spec.job.queue),
                priority: Some(spec.job.priority.get()),
                max_attempts: Some(spec.job.max_attempts),
                timeout_ms: spec.job.timeout.map(|d| d.as_millis() as u64),
                unique_key: spec.job.unique_key,
            },
            start_at: spec.start_at,
            end_at: spec.end_at,
            limit: spec.limit,
            jitter_ms: spec.jitter.map(|d| d.as_millis() as u64),
            misfire: spec.misfire.name().to_string(),
            misfire_max,
            misfire_window_ms,
            overlap: spec.overlap.name().to_string(),
            paused: s.paused,
            revision: s.revision,
            created_at: s.created_at,
            updated_at: s.updated_at,
            runs: s.runs,
            last_tick: s.last_tick,
            last_job_id: s.last_job.map(|id| id.to_string()),
            next_run,
        }
    }
}

/// Every schedule.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScheduleListDto {
    pub schedules: Vec<ScheduleDto>,
}

/// What `PUT /v1/schedules/{name}` did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScheduleUpsertDto {
    /// `added`, `changed` or `unchanged`.
    pub done: String,
    pub schedule: ScheduleDto,
}

/// One run of a schedule.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScheduleRunDto {
    pub tick: i64,
    /// When the store recorded it.
    pub fired_at: i64,
    /// `scheduled`, `duplicate`, `skipped_overlap` or `manual`.
    pub kind: String,
    pub job_id: Option<String>,
}

impl From<ScheduleRun> for ScheduleRunDto {
    fn from(r: ScheduleRun) -> Self {
        ScheduleRunDto {
            tick: r.tick,
            fired_at: r.fired_at,
            kind: r.kind.as_str().to_string(),
            job_id: r.job_id.map(|id| id.to_string()),
        }
    }
}

/// A schedule with its latest runs, newest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScheduleDetailDto {
    pub schedule: ScheduleDto,
    pub runs: Vec<ScheduleRunDto>,
}

/// `POST /v1/schedules/{name}/trigger`: the job enqueued now.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TriggerDto {
    pub job_id: String,
}

/// A rate limit: `count` jobs per `per_ms`, bursts of up to `burst`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct RateDto {
    pub count: u32,
    pub per_ms: u64,
    pub burst: u32,
    /// The same as text (`20/s`).
    #[schema(value_type = String)]
    pub text: RateText,
}

/// [`RateLimit`]'s text form, serialized with `Display`.
#[derive(Clone, Copy, Debug)]
pub struct RateText(RateLimit);

impl Serialize for RateText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A queue's limits and their use now.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QueueSettingsDto {
    pub queue: String,
    /// Most jobs of the queue running at once across all workers.
    pub concurrency: Option<u32>,
    pub rate: Option<RateDto>,
    /// Jobs of the queue running now.
    pub running: u64,
    /// Rate tokens left now.
    pub tokens: Option<f64>,
    /// The queue's share when a worker serves several (`None`: the worker's own weights).
    pub weight: Option<u32>,
    /// The claim order: `priority`, `fifo`, `lifo` or `weighted-random`.
    #[schema(value_type = String)]
    pub order: ClaimOrder,
    /// Priority aging, when on.
    pub aging: Option<AgingDto>,
    // Groups (docs/queues.md#groups).
    /// Most jobs of one group running at once across all workers.
    pub group_concurrency: Option<u32>,
    /// Each group's own rate limit.
    pub group_rate: Option<RateDto>,
    /// Rate limits per kind pattern within the queue (docs/queues.md#kind-rates).
    pub kinds: std::collections::BTreeMap<String, KindLimitsDto>,
}

/// One kind pattern's limits.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct KindLimitsDto {
    pub rate: RateDto,
}

impl From<RateLimit> for RateDto {
    fn from(r: RateLimit) -> RateDto {
        RateDto {
            count: r.count,
            per_ms: r.per.as_millis() as u64,
            burst: r.burst,
            text: RateText(r),
        }
    }
}

/// Priority aging as stored: a job waiting `after_ms` since it was due is promoted by `step`
/// levels, then again every `every_ms`, never above `bound`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AgingDto {
    pub after_ms: u64,
    pub step: u8,
    pub every_ms: u64,
    /// A priority name (`critical`, `high`, `normal`, `low`, `batch`) or level.
    pub bound: String,
}

impl From<Aging> for AgingDto {
    fn from(a: Aging) -> AgingDto {
        AgingDto {
            after_ms: a.after.as_millis() as u64,
            step: a.step,
            every_ms: a.every.unwrap_or(a.after).as_millis() as u64,
            bound: a.bound.to_string(),
        }
    }
}

impl QueueSettingsDto {
    pub fn new(queue: String, u: QueueUsage) -> QueueSettingsDto {
        QueueSettingsDto {
            queue,
            concurrency: u.settings.concurrency,
            rate: u.settings.rate.map(|r| RateDto {
                count: r.count,
                per_ms: r.per.as_millis() as u64,
                burst: r.burst,
                text: RateText(r),
            }),
            running: u.running,
            tokens: u.tokens,
            weight: u.settings.weight,
            order: u.settings.order,
            aging: u.settings.aging.map(AgingDto::from),
            group_concurrency: u.settings.group_concurrency,
            group_rate: u.settings.group_rate.map(RateDto::from),
            kinds: u
                .settings
                .kinds
                .iter()
                .map(|(p, l)| {
                    (
                        p.clone(),
                        KindLimitsDto {
                            rate: l.rate.into(),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// A field that may be absent (keep), `null` (clear) or a value (set).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /v1/queues/{name}/settings`: fields left out are kept, `null` clears a limit.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueSettingsPatch {
    /// Most jobs running at once across all workers (at least 1), or null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1)]
    pub concurrency: Option<Option<u32>>,
    /// `20/s`, `600/m`, `5/30s`, or null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub rate: Option<Option<String>>,
    /// The rate limit's burst (default: its count); needs a rate.
    #[schema(minimum = 1)]
    pub burst: Option<u32>,
    /// The queue's share when a worker serves several (0, never claimed, to 1,000,000), or null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, maximum = 1_000_000)]
    pub weight: Option<Option<u32>>,
    /// `priority`, `fifo`, `lifo` or `weighted-random`.
    pub order: Option<String>,
    /// Priority aging (replaces the stored one whole), or null to turn it off.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<AgingPatch>)]
    pub aging: Option<Option<AgingPatch>>,
    // Groups (docs/queues.md#groups).
    /// Most jobs of one group running at once across all workers (at least 1), or null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1)]
    pub group_concurrency: Option<Option<u32>>,
    /// Each group's own rate limit (`10/s`), or null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub group_rate: Option<Option<String>>,
    /// The group rate's burst (default: its count); needs a group rate.
    #[schema(minimum = 1)]
    pub group_burst: Option<u32>,
    /// Per kind pattern (`generate.*`): its limits, or null to remove the pattern; patterns
    /// left out keep theirs.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::BTreeMap<String, KindPatch>>)]
    pub kinds: std::collections::BTreeMap<String, Option<KindPatch>>,
}

/// One kind pattern's limits in a settings change.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KindPatch {
    /// `10/m`, `100/m`, `5/30s`.
    pub rate: String,
    /// The burst (default: the rate's count).
    #[schema(minimum = 1)]
    pub burst: Option<u32>,
}

impl KindPatch {
    /// The stored form, or a clear error naming the pattern (nothing is changed then).
    pub fn parse(&self, pattern: &str) -> quern::Result<quern::model::KindLimits> {
        quern::model::validate_kind_pattern(pattern)?;
        let field = format!("kinds.{pattern:?}.rate");
        let mut rate: RateLimit = self.rate.parse().map_err(|_| {
            quern::Error::InvalidArgument(format!(
                "{field}: {:?} is not COUNT/PERIOD (examples: 10/m, 100/m, 5/30s)",
                self.rate
            ))
        })?;
        if let Some(b) = self.burst {
            rate.burst = b;
        }
        rate.validate_as(&field)?;
        Ok(quern::model::KindLimits { rate })
    }
}

/// Priority aging in a settings change: durations as text (`30m`, `90s`).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgingPatch {
    /// How long a job waits since it was due before its first promotion.
    pub after: String,
    /// Levels per promotion, 1 to 9 (default 1).
    #[schema(minimum = 1, maximum = 9)]
    pub step: Option<u8>,
    /// Time between promotions after the first (default: `after`).
    pub every: Option<String>,
    /// The most urgent level reached (default `critical`).
    pub bound: Option<String>,
}

impl AgingPatch {
    /// The stored form, or a clear error (nothing is changed then).
    pub fn parse(&self) -> quern::Result<Aging> {
        let mut a = Aging::new(parse_duration(&self.after)?, self.step.unwrap_or(1));
        a.every = self.every.as_deref().map(parse_duration).transpose()?;
        if let Some(b) = &self.bound {
            a.bound = b.parse()?;
        }
        Ok(a)
    }
}
