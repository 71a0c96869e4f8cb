//! Recurring schedules as stored: what a user declares ([`ScheduleSpec`] with its
//! [`JobTemplate`] and policies), what the store keeps beside it ([`StoredSchedule`]) and the
//! run history ([`ScheduleRun`]).
//!
//! The tick arithmetic is [`crate::cron::Schedule`]; the service that enqueues a job per tick
//! is [`crate::maintenance::Scheduler`]. A backend stores these records and decides one thing
//! atomically: whether a tick fires ([`crate::backend::ScheduleFireParams`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::serde_ms;
use super::{JobId, NewJob, Payload, Priority, queue_name_problem};
use crate::Error;
use crate::clock::Millis;
use crate::cron::Schedule;

/// What to do with ticks that passed while no scheduler ran (every `quern` process was
/// down, or the schedule's store was unreachable).
///
/// Written as a name (`"skip"`, `"run-once"`, `"run-all"`, with `_` for `-` accepted) or,
/// for `run_all` with its bounds, a table `{ policy = "run_all", max = 10, window = "1h" }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum Misfire {
    /// Drop them; the schedule goes on with its next tick.
    Skip,
    /// Run one job for the latest missed tick, then go on. The default (what a Kubernetes
    /// CronJob does).
    #[default]
    RunOnce,
    /// Run one job per missed tick, oldest first, but only ticks within `window` of now and
    /// at most the `max` latest of those.
    RunAll {
        max: u32,
        #[serde(with = "serde_ms")]
        window: Duration,
    },
}

impl<'de> Deserialize<'de> for Misfire {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case", tag = "policy", deny_unknown_fields)]
        enum Tagged {
            Skip,
            RunOnce,
            RunAll {
                #[serde(default = "run_all_max")]
                max: u32,
                #[serde(with = "serde_ms", default = "run_all_window")]
                window: Duration,
            },
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Table(Tagged),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Name(n)) => Misfire::parse(&n).map_err(serde::de::Error::custom),
            Ok(Raw::Table(Tagged::Skip)) => Ok(Misfire::Skip),
            Ok(Raw::Table(Tagged::RunOnce)) => Ok(Misfire::RunOnce),
            Ok(Raw::Table(Tagged::RunAll { max, window })) => Ok(Misfire::RunAll { max, window }),
            Err(_) => Err(serde::de::Error::custom(
                "misfire: expected \"skip\", \"run-once\", \"run-all\" or \
                 { policy = \"run_all\", max = N, window = \"1h\" }",
            )),
        }
    }
}

fn run_all_max() -> u32 {
    Misfire::RUN_ALL_MAX
}

fn run_all_window() -> Duration {
    Misfire::RUN_ALL_WINDOW
}

impl Misfire {
    /// `run_all`'s defaults: up to 100 ticks of the last day.
    pub const RUN_ALL_MAX: u32 = 100;
    pub const RUN_ALL_WINDOW: Duration = Duration::from_secs(86_400);

    /// The CLI's and `quern.toml`'s name: `skip`, `run-once`, `run-all`.
    pub fn name(&self) -> &'static str {
        match self {
            Misfire::Skip => "skip",
            Misfire::RunOnce => "run-once",
            Misfire::RunAll { .. } => "run-all",
        }
    }

    /// Reads [`Misfire::name`] (`_` is accepted for `-`); `run-all` gets its defaults.
    pub fn parse(s: &str) -> Result<Misfire, Error> {
        match s.replace('_', "-").as_str() {
            "skip" => Ok(Misfire::Skip),
            "run-once" => Ok(Misfire::RunOnce),
            "run-all" => Ok(Misfire::RunAll {
                max: Self::RUN_ALL_MAX,
                window: Self::RUN_ALL_WINDOW,
            }),
            other => Err(Error::InvalidArgument(format!(
                "misfire: {other:?} is not one of skip, run-once, run-all"
            ))),
        }
    }
}

/// What to do at a tick while the job of the schedule's previous run is still waiting or
/// running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Enqueue anyway; runs may overlap. The default.
    #[default]
    Allow,
    /// Do not enqueue; the tick is recorded as skipped.
    Skip,
    /// Cancel the previous run (a running job's lease is revoked), then enqueue.
    #[serde(alias = "cancel-previous")]
    CancelPrevious,
}

impl Overlap {
    /// The CLI's and `quern.toml`'s name: `allow`, `skip`, `cancel-previous`.
    pub fn name(self) -> &'static str {
        match self {
            Overlap::Allow => "allow",
            Overlap::Skip => "skip",
            Overlap::CancelPrevious => "cancel-previous",
        }
    }

    /// Reads [`Overlap::name`] (`_` is accepted for `-`).
    pub fn parse(s: &str) -> Result<Overlap, Error> {
        match s.replace('_', "-").as_str() {
            "allow" => Ok(Overlap::Allow),
            "skip" => Ok(Overlap::Skip),
            "cancel-previous" => Ok(Overlap::CancelPrevious),
            other => Err(Error::InvalidArgument(format!(
                "overlap: {other:?} is not one of allow, skip, cancel-previous"
            ))),
        }
    }
}

/// The job a schedule enqueues at each tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobTemplate {
    /// The handler name.
    pub kind: String,
    /// The payload, as JSON (encoded with the default codec when the job is built).
    #[serde(default)]
    pub payload: serde_json::Value,
    #[serde(default = "default_queue")]
    pub queue: String,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Per-attempt time limit; `None` means the worker's default.
    #[serde(
        default,
        with = "serde_ms::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// A unique key for the tick's job (see [`NewJob::unique_key`]): while a job with it is
    /// live in the queue, the tick records the live job instead of storing another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

fn default_queue() -> String {
    "default".into()
}

fn default_attempts() -> u32 {
    NewJob::DEFAULT_MAX_ATTEMPTS
}

impl JobTemplate {
    /// A template for `kind` with every other field at its default.
    pub fn new(kind: impl Into<String>) -> JobTemplate {
        JobTemplate {
            kind: kind.into(),
            payload: serde_json::Value::Null,
            queue: default_queue(),
            priority: Priority::default(),
            max_attempts: default_attempts(),
            timeout: None,
            unique_key: None,
            tags: Vec::new(),
        }
    }

    /// The job for one tick of `schedule`, due at `due` (the tick plus its jitter). Its
    /// `meta.cron` names the schedule and the tick, so a job says which run it is.
    pub fn build(&self, schedule: &str, tick: Millis, due: Millis) -> Result<NewJob, Error> {
        let payload = Payload::from_json_value(&self.payload, &Default::default())?;
        let mut job = NewJob::new(self.kind.clone(), payload)
            .queue(self.queue.clone())
            .priority(self.priority)
            .max_attempts(self.max_attempts)
            .run_at(due);
        job.timeout = self.timeout;
        job.unique_key = self.unique_key.clone();
        job.tags = self.tags.clone();
        job.meta = serde_json::json!({ "cron": { "schedule": schedule, "tick": tick } });
        Ok(job)
    }
}

/// A recurring schedule as declared (the CLI's `cron add`, `quern.toml`'s `[[cron]]`, the
/// API). [`ScheduleSpec::validate`] is the one check every entry point and every backend
/// applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// 1–128 characters of letters, digits and `_ . : -`, unique in the store.
    pub name: String,
    /// A cron expression (5 or 6 fields), a macro (`@daily`) or an interval (`@every 90s`);
    /// see [`crate::cron`].
    pub cron: String,
    /// The IANA zone the expression is read in.
    #[serde(default = "default_tz")]
    pub tz: String,
    pub job: JobTemplate,
    /// No tick before this instant (ms since the Unix epoch; read from a number or an
    /// RFC 3339 string).
    #[serde(default, with = "instant", skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Millis>,
    /// No tick after this instant.
    #[serde(default, with = "instant", skip_serializing_if = "Option::is_none")]
    pub end_at: Option<Millis>,
    /// At most this many scheduled runs in all (manual triggers do not count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Each tick's job is due up to this long after the tick: a fixed offset per (schedule,
    /// tick), the same on every node, that spreads schedules sharing a tick.
    #[serde(
        default,
        with = "serde_ms::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub jitter: Option<Duration>,
    #[serde(default)]
    pub misfire: Misfire,
    #[serde(default)]
    pub overlap: Overlap,
}

/// `Option<Millis>` written as milliseconds, read from milliseconds or an RFC 3339 string
/// (`2027-01-01T00:00:00Z`), so `quern.toml` can say when a schedule starts.
mod instant {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::clock::Millis;

    pub fn serialize<S: Serializer>(v: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => s.serialize_some(ms),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(Millis),
            S(String),
        }
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::N(n)) => Ok(Some(n)),
            Some(Raw::S(text)) => text
                .parse::<jiff::Timestamp>()
                .map(|t| Some(t.as_millisecond()))
                .map_err(|e| {
                    serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time: {e}"))
                }),
        }
    }
}

fn default_tz() -> String {
    "UTC".into()
}

impl ScheduleSpec {
    /// A schedule with every optional field at its default.
    pub fn new(name: impl Into<String>, cron: impl Into<String>, job: JobTemplate) -> Self {
        ScheduleSpec {
            name: name.into(),
            cron: cron.into(),
            tz: default_tz(),
            job,
            start_at: None,
            end_at: None,
            limit: None,
            jitter: None,
            misfire: Misfire::default(),
            overlap: Overlap::default(),
        }
    }

    /// Checks every field and returns the parsed schedule. Errors are
    /// [`Error::InvalidArgument`] naming the field first (`cron: …`, `tz: …`, `job.queue: …`).
    pub fn validate(&self) -> Result<Schedule, Error> {
        let bad = |field: &str, why: String| Err(Error::InvalidArgument(format!("{field}: {why}")));
        if let Some(why) = schedule_name_problem(&self.name) {
            return bad("name", why);
        }
        let schedule = Schedule::parse(&self.cron, Some(&self.tz))?;
        if self.job.kind.is_empty() || self.job.kind.len() > 256 {
            return bad("job.kind", "must be 1-256 bytes".into());
        }
        if let Some(why) = queue_name_problem(&self.job.queue) {
            return bad("job.queue", why);
        }
        if self.job.max_attempts == 0 {
            return bad("job.max_attempts", "must be at least 1".into());
        }
        if let Some(k) = &self.job.unique_key
            && (k.is_empty() || k.len() > 1024)
        {
            return bad("job.unique_key", "must be 1-1024 bytes".into());
        }
        if let (Some(s), Some(e)) = (self.start_at, self.end_at)
            && e <= s
        {
            return bad("end_at", "must be after start_at".into());
        }
        if self.limit == Some(0) {
            return bad("limit", "must be at least 1".into());
        }
        if let Some(j) = self.jitter
            && j > Duration::from_secs(86_400)
        {
            return bad("jitter", "must be at most 1d".into());
        }
        if let Misfire::RunAll { max, window } = self.misfire
            && (max == 0 || window.is_zero())
        {
            return bad("misfire", "run-all needs max >= 1 and a window > 0".into());
        }
        // The job itself must be storable (kind, payload, tags) before anything is stored.
        let job = self.job.build(&self.name, 0, 0)?;
        job.validate(&Default::default())
            .map_err(|e| Error::InvalidArgument(format!("job: {e}")))?;
        Ok(schedule)
    }

    /// The rule a backend applies to the job of a fire: it goes to the template's queue
    /// (where the schedule's state lives on Redis Cluster). The job itself is validated by
    /// the enqueue.
    pub fn check_tick_job(&self, job: &NewJob) -> Result<(), Error> {
        if job.queue != self.job.queue {
            return Err(Error::InvalidArgument(format!(
                "schedule {:?} enqueues into queue {:?}, not {:?}",
                self.name, self.job.queue, job.queue
            )));
        }
        Ok(())
    }

    /// The jitter offset of `tick`: a deterministic value in `[0, jitter)` from the schedule's
    /// name and the tick, so every node computes the same due time.
    pub fn jitter_ms(&self, tick: Millis) -> Millis {
        let Some(j) = self.jitter.map(|d| d.as_millis() as u64).filter(|j| *j > 0) else {
            return 0;
        };
        // FNV-1a over the name and the tick: stable across builds and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.name.bytes().chain(tick.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % j) as Millis
    }
}

/// What is wrong with a schedule name, if anything: the same rule as queue names.
pub fn schedule_name_problem(name: &str) -> Option<String> {
    queue_name_problem(name).map(|why| why.replacen("queue name", "schedule name", 1))
}

/// A schedule as stored: the spec and what the store keeps beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredSchedule {
    pub spec: ScheduleSpec,
    pub paused: bool,
    /// Starts at 1 and grows with every change of the spec or of `paused`; a fire names the
    /// revision it was computed from and is refused once it moved.
    pub revision: u64,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// No tick at or before this instant fires: the last tick fired (or skipped), or the time
    /// of the last change of the spec or resume, whichever is later. This is what makes a
    /// tick fire once however many schedulers run.
    pub watermark: Millis,
    /// Scheduled runs so far (fired or skipped by overlap; manual triggers not counted).
    pub runs: u64,
    /// The latest tick that fired or was skipped, and the job it enqueued.
    pub last_tick: Option<Millis>,
    pub last_job: Option<JobId>,
}

/// How a run came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A tick of the schedule enqueued a job.
    Scheduled,
    /// A tick found a live job with the template's unique key; `job_id` is that job.
    Duplicate,
    /// A tick was skipped because the previous run was still waiting or running.
    SkippedOverlap,
    /// `cron trigger`: run now, outside the schedule.
    Manual,
}

impl RunKind {
    /// The stored number (SQLite's `kind`, Redis's run record).
    pub fn code(self) -> i64 {
        match self {
            RunKind::Scheduled => 0,
            RunKind::Duplicate => 1,
            RunKind::SkippedOverlap => 2,
            RunKind::Manual => 3,
        }
    }

    /// Reads [`RunKind::code`] back.
    pub fn from_code(n: i64) -> Result<RunKind, Error> {
        Ok(match n {
            0 => RunKind::Scheduled,
            1 => RunKind::Duplicate,
            2 => RunKind::SkippedOverlap,
            3 => RunKind::Manual,
            other => return Err(Error::Storage(format!("unknown stored run kind {other}"))),
        })
    }

    /// A lowercase name for output.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Scheduled => "scheduled",
            RunKind::Duplicate => "duplicate",
            RunKind::SkippedOverlap => "skipped_overlap",
            RunKind::Manual => "manual",
        }
    }
}

/// One entry of a schedule's run history (the store keeps the latest
/// [`ScheduleRun::HISTORY`] per schedule).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRun {
    /// The tick (for a manual run: when it was triggered).
    pub tick: Millis,
    /// When the store recorded it (for a tick enqueued ahead, before the tick).
    pub fired_at: Millis,
    pub kind: RunKind,
    /// The job enqueued (or found, for a duplicate); `None` when skipped.
    pub job_id: Option<JobId>,
}

impl ScheduleRun {
    /// Runs kept per schedule; older ones are dropped as new ones are recorded.
    pub const HISTORY: usize = 100;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ScheduleSpec {
        ScheduleSpec::new("nightly", "0 3 * * *", JobTemplate::new("report"))
    }

    #[test]
    fn a_valid_spec_parses() {
        let s = spec().validate().unwrap();
        assert_eq!(s.zone_name(), "UTC");
    }

    #[test]
    fn each_bad_field_is_named() {
        type Change = Box<dyn Fn(&mut ScheduleSpec)>;
        let cases: Vec<(&str, Change)> = vec![
            ("name:", Box::new(|s| s.name = "a b".into())),
            ("cron:", Box::new(|s| s.cron = "0 25 * * *".into())),
            ("tz:", Box::new(|s| s.tz = "Mars/Base".into())),
            ("job.kind:", Box::new(|s| s.job.kind = String::new())),
            ("job.queue:", Box::new(|s| s.job.queue = "{x}".into())),
            ("job.max_attempts:", Box::new(|s| s.job.max_attempts = 0)),
            (
                "end_at:",
                Box::new(|s| {
                    s.start_at = Some(10);
                    s.end_at = Some(10);
                }),
            ),
            ("limit:", Box::new(|s| s.limit = Some(0))),
            (
                "misfire:",
                Box::new(|s| {
                    s.misfire = Misfire::RunAll {
                        max: 0,
                        window: Duration::from_secs(1),
                    }
                }),
            ),
        ];
        for (want, change) in cases {
            let mut s = spec();
            change(&mut s);
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(want), "expected {want:?} in {e:?}");
        }
    }

    #[test]
    fn unknown_template_fields_are_refused() {
        let text = r#"{"name":"a","cron":"@hourly","job":{"kind":"k","colour":"red"}}"#;
        let e = serde_json::from_str::<ScheduleSpec>(text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn a_spec_round_trips_through_json_with_defaults() {
        let s: ScheduleSpec =
            serde_json::from_str(r#"{"name":"a","cron":"@hourly","job":{"kind":"k"}}"#).unwrap();
        assert_eq!(s, ScheduleSpec::new("a", "@hourly", JobTemplate::new("k")));
        let back: ScheduleSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let mut all = s.clone();
        all.misfire = Misfire::RunAll {
            max: 3,
            window: Duration::from_secs(60),
        };
        all.overlap = Overlap::CancelPrevious;
        all.jitter = Some(Duration::from_secs(5));
        let back: ScheduleSpec =
            serde_json::from_str(&serde_json::to_string(&all).unwrap()).unwrap();
        assert_eq!(back, all);
    }

    #[test]
    fn jitter_is_deterministic_and_bounded() {
        let mut s = spec();
        assert_eq!(s.jitter_ms(1000), 0);
        s.jitter = Some(Duration::from_secs(10));
        let offsets: Vec<Millis> = (0..200).map(|i| s.jitter_ms(i * 60_000)).collect();
        assert!(offsets.iter().all(|o| (0..10_000).contains(o)));
        assert_eq!(
            offsets,
            (0..200)
                .map(|i| s.jitter_ms(i * 60_000))
                .collect::<Vec<_>>()
        );
        // Spread: not all the same.
        assert!(offsets.iter().any(|o| *o != offsets[0]));
    }

    #[test]
    fn a_tick_job_names_its_schedule_and_tick() {
        let j = spec().job.build("nightly", 5_000, 6_000).unwrap();
        assert_eq!(j.run_at, Some(6_000));
        assert_eq!(j.meta["cron"]["schedule"], "nightly");
        assert_eq!(j.meta["cron"]["tick"], 5_000);
    }

    #[test]
    fn toml_style_forms_are_read() {
        let s: ScheduleSpec = serde_json::from_str(
            r#"{"name":"a","cron":"@hourly","job":{"kind":"k"},"misfire":"run-all",
               "overlap":"cancel-previous","start_at":"2027-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(s.misfire, Misfire::parse("run-all").unwrap());
        assert_eq!(s.overlap, Overlap::CancelPrevious);
        assert_eq!(s.start_at, Some(1_798_761_600_000));
        let s: ScheduleSpec = serde_json::from_str(
            r#"{"name":"a","cron":"@hourly","job":{"kind":"k"},
               "misfire":{"policy":"run_all","max":3,"window":"1h"}}"#,
        )
        .unwrap();
        assert_eq!(
            s.misfire,
            Misfire::RunAll {
                max: 3,
                window: Duration::from_secs(3600)
            }
        );
        for bad in [r#""later""#, r#"{"policy":"run_all","colour":1}"#] {
            let text =
                format!(r#"{{"name":"a","cron":"@hourly","job":{{"kind":"k"}},"misfire":{bad}}}"#);
            let e = serde_json::from_str::<ScheduleSpec>(&text)
                .unwrap_err()
                .to_string();
            assert!(e.contains("misfire"), "{bad}: {e}");
        }
    }

    #[test]
    fn policy_names_parse() {
        for m in ["skip", "run-once", "run_all"] {
            assert_eq!(Misfire::parse(m).unwrap().name(), m.replace('_', "-"));
        }
        for o in ["allow", "skip", "cancel-previous"] {
            assert_eq!(Overlap::parse(o).unwrap().name(), o);
        }
        assert!(Misfire::parse("later").is_err());
        assert!(Overlap::parse("both").is_err());
    }
}
