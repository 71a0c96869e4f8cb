//! The command tree (clap derive). Values are parsed and checked here, so bad input is
//! reported as usage (exit 2) before any store is opened.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use quern::{JobId, JobState, Priority};

use crate::parse;

/// Quern: a task queue and workflow engine. Jobs live in a store (an SQLite file by
/// default); `quern worker` runs them.
#[derive(Debug, Parser)]
#[command(
    name = "quern",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Store URL: sqlite://PATH, sqlite::memory:, redis://HOST:PORT, rediss://… (TLS) or
    /// redis+cluster://HOST:PORT,… (?prefix=NAME) [env: QUERN_STORE] [default: sqlite://quern.db]
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,

    /// Print machine-readable JSON on stdout (errors as {"error":{"code","message"}})
    #[arg(long, global = true)]
    pub json: bool,

    /// Log lines on stderr as text, or as one JSON object per line (for log shippers)
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        env = "QUERN_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    /// Export spans over OTLP/HTTP to this collector (`http://127.0.0.1:4318`; also
    /// OTEL_EXPORTER_OTLP_ENDPOINT). Needs a build with the `otlp` feature
    #[arg(long, global = true, value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// Settings file (TOML) [default: ./quern.toml if present]
    #[arg(long, global = true, value_name = "FILE", env = "QUERN_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (with `message`), `span`s.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add a job (prints its id), or many from a JSON Lines file with --batch
    Enqueue(Box<EnqueueArgs>),
    /// Run a worker with the built-in executors until SIGINT/SIGTERM
    Worker(WorkerArgs),
    /// Serve the REST API and the HTTP worker protocol (with the maintenance services, and
    /// optionally in-process workers) until SIGINT/SIGTERM
    Serve(ServeArgs),
    /// Inspect and manage jobs
    #[command(subcommand)]
    Jobs(JobsCmd),
    /// List, pause and resume queues
    #[command(subcommand)]
    Queues(QueuesCmd),
    /// The dead-letter queue: jobs that failed for good
    #[command(subcommand)]
    Dlq(DlqCmd),
    /// Registered workers, alive or lost
    #[command(subcommand)]
    Workers(WorkersCmd),
    /// Delete finished jobs older than their retention now (every `quern worker` also does
    /// this in the background) and print how many of each state
    Prune(PruneArgs),
    /// Run, inspect and control workflows: DAGs of tasks in a YAML or JSON file
    #[command(subcommand)]
    Workflow(WorkflowCmd),
    /// Measure enqueue and drain rates, latency, and lost or duplicated jobs on a store
    Bench(BenchArgs),
    /// Recurring schedules: add, list, show, pause, resume, trigger and remove them (every
    /// `quern worker` fires their ticks), or preview when an expression fires
    #[command(subcommand)]
    Cron(CronCmd),
    /// Throughput, outcomes, retries, and wait and run-time percentiles of the jobs that
    /// finished recently, per queue and kind
    Stats(StatsArgs),
    /// Look after an SQLite store's file: WAL checkpoint, ANALYZE, VACUUM, integrity check,
    /// sizes (SQLite stores only)
    #[command(subcommand)]
    Maintain(MaintainCmd),
    /// Write a portable archive of the store (every job, workflow, schedule and queue) to
    /// FILE, check one with `backup verify FILE`, or copy an SQLite file with --sqlite
    Backup(BackupArgs),
    /// Load an archive written by `quern backup` into an empty store (or, with --merge, add
    /// what is not there yet)
    Restore(RestoreArgs),
    /// Copy every job, workflow, schedule and queue of one store into another, while
    /// workers run (jobs running during the copy arrive queued, their attempt counted)
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub verify: Option<BackupCmd>,

    /// The archive to write (zstd-compressed JSON Lines); with --sqlite, the copy of the
    /// database file, or a folder to put a timestamped copy in
    #[arg(value_name = "FILE", required = true)]
    pub file: Option<PathBuf>,

    /// Copy the SQLite database file itself (VACUUM INTO, online), checked with
    /// PRAGMA integrity_check (SQLite stores only)
    #[arg(long)]
    pub sqlite: bool,

    /// With --sqlite and a folder: keep only the newest N copies there
    #[arg(long, value_name = "N", requires = "sqlite", value_parser = parse::count)]
    pub keep: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Check an archive without a store: header, every line, counts and checksums
    Verify {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive written by `quern backup`
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Restore into a store that is not empty: records whose id (job, workflow, schedule
    /// name) is already there are skipped and listed, never overwritten
    #[arg(long)]
    pub merge: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The store to copy from
    #[arg(long, value_name = "URL")]
    pub from: String,

    /// The store to copy into (must be empty unless --merge)
    #[arg(long, value_name = "URL")]
    pub to: String,

    /// Copy into a store that is not empty, skipping ids already there
    #[arg(long)]
    pub merge: bool,
}

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// Job kind (the handler name): shell, http, quern.noop, quern.sleep, quern.fail, or your own
    #[arg(required_unless_present = "batch")]
    pub kind: Option<String>,

    /// Payload as JSON text
    #[arg(long, value_name = "JSON", conflicts_with = "payload_file")]
    pub payload: Option<String>,

    /// Read the JSON payload from a file ('-' for stdin)
    #[arg(long, value_name = "FILE")]
    pub payload_file: Option<PathBuf>,

    /// Queue [default: default]
    #[arg(long, value_name = "Q", value_parser = parse::queue)]
    pub queue: Option<String>,

    /// Priority: 0-9 (0 most urgent) or critical, high, normal, low, batch [default: normal]
    #[arg(long, value_name = "P", value_parser = parse::priority)]
    pub priority: Option<Priority>,

    /// Run after this delay (e.g. 30s, 5m, 1h30m)
    #[arg(long, value_name = "DURATION", value_parser = parse::duration, conflicts_with = "at")]
    pub delay: Option<Duration>,

    /// Run at this time (RFC 3339, e.g. 2026-11-23T08:00:00Z)
    #[arg(long, value_name = "RFC3339", value_parser = parse::rfc3339)]
    pub at: Option<i64>,

    /// Unique key: while a live job with this key exists in the queue, its id is returned instead
    #[arg(long, value_name = "KEY")]
    pub unique: Option<String>,

    /// After the job succeeded, the key still holds until this long after it was created (it
    /// always holds while the job waits or runs)
    #[arg(long, value_name = "DURATION", value_parser = parse::duration, requires = "unique")]
    pub unique_for: Option<Duration>,

    /// Attempts before the job goes to the dead-letter queue [default: 25]
    #[arg(long, value_name = "N", value_parser = parse::positive)]
    pub max_attempts: Option<u32>,

    /// Per-attempt time limit
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub timeout: Option<Duration>,

    /// Delay before each retry: none, fixed:5s, linear:1s..1m, exponential:1s..5m (optional
    /// *MULTIPLIER ~JITTER: exponential:1s..5m*3~10%), custom:1s,5s,30s [default: the
    /// worker's, exponential:1s..1h~0.1]
    #[arg(long, value_name = "POLICY", value_parser = parse::retry)]
    pub retry: Option<quern::RetryPolicy>,

    /// Keep the job's result this long after it succeeded [default: until the job is pruned]
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub result_ttl: Option<Duration>,

    /// Run only after this job succeeded (repeatable)
    #[arg(long = "depends-on", value_name = "ID", value_parser = parse::job_id)]
    pub depends_on: Vec<JobId>,

    /// The payload's schema version (a worker whose task is newer upcasts it; one that knows
    /// only older versions fails the job) [default: 0, none stated]
    #[arg(long, value_name = "N")]
    pub payload_version: Option<u32>,

    /// W3C trace context to store with the job (`00-<trace id>-<span id>-<flags>`); the worker
    /// that runs it continues the trace
    #[arg(long, value_name = "TRACEPARENT")]
    pub traceparent: Option<String>,

    /// W3C tracestate to go with --traceparent
    #[arg(long, value_name = "TRACESTATE", requires = "traceparent")]
    pub tracestate: Option<String>,

    /// The job's group in its queue (a tenant, an account): groups are served round-robin
    /// and may be capped (`quern queues set --group-concurrency`)
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Enqueue every line of a JSON Lines file ('-' for stdin); each line is
    /// {"kind", "payload", "queue", "priority", "delay", "at", "unique", "unique_for",
    /// "max_attempts", "timeout", "retry", "result_ttl", "depends_on", "payload_version",
    /// "traceparent", "tracestate", "group"}
    #[arg(long, value_name = "FILE.jsonl", conflicts_with_all = [
        "kind", "payload", "payload_file", "queue", "priority", "delay", "at", "unique",
        "unique_for", "max_attempts", "timeout", "retry", "result_ttl", "depends_on",
        "payload_version", "traceparent", "tracestate", "group"])]
    pub batch: Option<PathBuf>,

    /// With --batch: all lines or none (default: each line on its own)
    #[arg(long, requires = "batch")]
    pub atomic: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Queues to work on, comma-separated, each `NAME` (the weight stored with the queue,
    /// `quern queues set NAME --weight N`) or `NAME=WEIGHT` (this worker's own weight)
    /// [default: `[worker] queues`, else the queues of the `[[routes]]` this worker's
    /// capabilities satisfy, else default]
    #[arg(long, value_name = "Q1,Q2=W", value_delimiter = ',', value_parser = parse::queue_weighted)]
    pub queues: Vec<String>,

    /// What this worker offers, comma-separated: `gpu` or `vram_gb=24` [default: `[worker]
    /// capabilities`]
    #[arg(long, value_name = "CAP,NAME=VALUE", value_delimiter = ',')]
    pub capabilities: Vec<String>,

    /// Jobs run at once [default: 16]
    #[arg(long, value_name = "N", value_parser = parse::positive)]
    pub concurrency: Option<u32>,

    /// Let the shell executor run any program (otherwise only those in `[shell] allow`)
    #[arg(long)]
    pub allow_shell: bool,

    /// Exit once the queues have no queued, scheduled, blocked or running jobs (and no
    /// workflow waits for its final step)
    #[arg(long)]
    pub exit_when_idle: bool,

    /// Lease length: jobs of a worker that died are re-delivered after this at the latest
    /// [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub lease: Option<Duration>,

    /// How often the worker records that it is alive; after three missed beats it counts as
    /// lost and its jobs are re-delivered before their leases expire [default: 2s]
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub heartbeat: Option<Duration>,

    #[command(flatten)]
    pub retention: RetentionArgs,

    /// Time between pruning passes [default: 1m]
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub prune_interval: Option<Duration>,

    /// Forget a lost worker this long after it was last seen (or `forever`) [default: 1h]
    #[arg(long, value_name = "DURATION", value_parser = parse::keep)]
    pub retain_lost_workers: Option<parse::Keep>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; a non-loopback one needs a token configured
    /// [default: 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,

    /// Also run in-process workers with the built-in executors, N jobs at once [default: 0]
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,

    /// Queues the in-process workers work on, comma-separated [default: default]
    #[arg(long, value_name = "Q1,Q2", value_delimiter = ',', value_parser = parse::queue)]
    pub queues: Vec<String>,

    /// Let the in-process workers' shell executor run any program
    #[arg(long)]
    pub allow_shell: bool,
}

/// `--retain-<state>`: how long finished jobs are kept (overrides `[retention]`).
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Keep succeeded jobs this long after they finished, or `forever` [default: 24h]
    #[arg(long, value_name = "DURATION", value_parser = parse::keep)]
    pub retain_succeeded: Option<parse::Keep>,
    /// Keep dead jobs (the dead-letter queue) this long, or `forever` [default: 7d]
    #[arg(long, value_name = "DURATION", value_parser = parse::keep)]
    pub retain_dead: Option<parse::Keep>,
    /// Keep cancelled jobs this long, or `forever` [default: 7d]
    #[arg(long, value_name = "DURATION", value_parser = parse::keep)]
    pub retain_cancelled: Option<parse::Keep>,
    /// Keep skipped jobs this long, or `forever` [default: 7d]
    #[arg(long, value_name = "DURATION", value_parser = parse::keep)]
    pub retain_skipped: Option<parse::Keep>,
    /// A budget for finished jobs (`1GiB`, `500MB`): delete the oldest finished jobs while
    /// their payloads, results and checkpoints take more [default: none]
    #[arg(long, value_name = "SIZE", value_parser = parse::size)]
    pub retain_max_bytes: Option<u64>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only this queue
    #[arg(long, value_name = "Q", value_parser = parse::queue)]
    pub queue: Option<String>,
    /// Only this kind
    #[arg(long, value_name = "K")]
    pub kind: Option<String>,
    /// The window: jobs that finished in the last DURATION
    #[arg(long, value_name = "DURATION", value_parser = parse::duration, default_value = "1h")]
    pub since: Duration,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Count what would be deleted; delete nothing
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub retention: RetentionArgs,
}

#[derive(Debug, Subcommand)]
pub enum JobsCmd {
    /// List jobs, newest first
    List(JobsListArgs),
    /// Show one job: state, attempts, result, error history, progress
    Show {
        #[arg(value_parser = parse::job_id)]
        id: JobId,
    },
    /// Cancel a job that has not finished
    Cancel {
        #[arg(value_parser = parse::job_id)]
        id: JobId,
    },
    /// Give a scheduled, queued or blocked job a new priority (0-9 or a name)
    Reprioritize {
        #[arg(value_parser = parse::job_id)]
        id: JobId,
        /// 0 (most urgent) to 9, or critical, high, normal, low, batch
        #[arg(value_parser = parse::priority)]
        priority: Priority,
    },
    /// Run a dead, cancelled or skipped job again
    Retry {
        #[arg(value_parser = parse::job_id)]
        id: JobId,
    },
    /// Print a job's log: its handler's `ctx.log` lines and a shell job's stderr lines
    Logs(JobsLogsArgs),
    /// Print a job's timeline: every state change, when, at which attempt, and who asked
    Events {
        #[arg(value_parser = parse::job_id)]
        id: JobId,
    },
    /// Wait until a job finishes; exit 0 if it succeeded, 1 otherwise
    Wait {
        #[arg(value_parser = parse::job_id)]
        id: JobId,
        /// Give up after this long (exit 1)
        #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
        timeout: Option<Duration>,
    },
}

#[derive(Debug, Args)]
pub struct JobsLogsArgs {
    #[arg(value_parser = parse::job_id)]
    pub id: JobId,
    /// Keep printing new lines until the job has finished (polls the store)
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How often --follow polls
    #[arg(long, value_name = "DURATION", value_parser = parse::duration, default_value = "500ms")]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct JobsListArgs {
    #[arg(long, value_name = "Q", value_parser = parse::queue)]
    pub queue: Option<String>,
    /// scheduled, queued, blocked, running, succeeded, dead, cancelled or skipped
    #[arg(long, value_name = "S", value_parser = parse::state)]
    pub state: Option<JobState>,
    #[arg(long, value_name = "K")]
    pub kind: Option<String>,
    /// At most this many
    #[arg(long, value_name = "N", default_value = "50", value_parser = parse::count)]
    pub limit: usize,
}

// Parsed once per run: the size of `Set` (every settings flag) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum QueuesCmd {
    /// Every queue with its job counts by state, its limits and their use now
    List,
    /// One queue: counts, settings, running jobs against its cap, rate tokens left
    Show {
        #[arg(value_parser = parse::queue)]
        queue: String,
    },
    /// Change a queue's limits, for every worker on the store, at once
    #[command(group = clap::ArgGroup::new("change").required(true).multiple(true).args(["concurrency", "rate", "burst", "weight", "order", "aging_after", "aging_step", "aging_every", "aging_bound", "retain_succeeded", "retain_dead", "retain_cancelled", "retain_skipped", "retry", "group_concurrency", "group_rate", "kind_rate"]))]
    Set {
        #[arg(value_parser = parse::queue)]
        queue: String,
        /// Most jobs of the queue running at once across all workers, or `none`
        #[arg(long, value_name = "N|none", value_parser = parse::cap)]
        concurrency: Option<parse::Limit<u32>>,
        /// Most jobs leased per period across all workers (20/s, 600/m, 5/30s), or `none`
        #[arg(long, value_name = "RATE|none", value_parser = parse::rate)]
        rate: Option<parse::Limit<quern::model::RateLimit>>,
        /// Jobs the rate limit lets through at once after a quiet spell [default: the count]
        #[arg(long, value_name = "N", value_parser = parse::positive)]
        burst: Option<u32>,
        /// The queue's share when a worker serves several queues and gives it no weight of
        /// its own, or `none` (1)
        #[arg(long, value_name = "N|none", value_parser = parse::weight)]
        weight: Option<parse::Limit<u32>>,
        /// Claim order: priority (default), fifo, lifo or weighted-random
        #[arg(long, value_name = "ORDER", value_parser = parse::order)]
        order: Option<quern::model::ClaimOrder>,
        /// Priority aging: a job waiting this long since it was due is promoted (with
        /// --aging-step), or `none` to turn aging off
        #[arg(long, value_name = "DURATION|none", value_parser = parse::aging_after)]
        aging_after: Option<parse::Limit<std::time::Duration>>,
        /// Levels per promotion (1-9) [default: 1]
        #[arg(long, value_name = "N")]
        aging_step: Option<u8>,
        /// Time between promotions after the first [default: --aging-after]
        #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
        aging_every: Option<std::time::Duration>,
        /// The most urgent level aging reaches [default: critical]
        #[arg(long, value_name = "PRIORITY", value_parser = parse::priority)]
        aging_bound: Option<quern::Priority>,
        /// Keep the queue's succeeded jobs this long after they finish (or `forever`), over
        /// `[retention]`; `default` goes back to `[retention]`
        #[arg(long, value_name = "DURATION|forever|default", value_parser = parse::queue_keep)]
        retain_succeeded: Option<parse::Limit<quern::model::Keep>>,
        /// The same for dead jobs (the queue's dead-letter queue)
        #[arg(long, value_name = "DURATION|forever|default", value_parser = parse::queue_keep)]
        retain_dead: Option<parse::Limit<quern::model::Keep>>,
        /// The same for cancelled jobs
        #[arg(long, value_name = "DURATION|forever|default", value_parser = parse::queue_keep)]
        retain_cancelled: Option<parse::Limit<quern::model::Keep>>,
        /// The same for skipped jobs
        #[arg(long, value_name = "DURATION|forever|default", value_parser = parse::queue_keep)]
        retain_skipped: Option<parse::Limit<quern::model::Keep>>,
        /// The retry policy of the queue's jobs that carry none and whose handler declares
        /// none (as `quern enqueue --retry`: `exponential:1s..1h`, `fixed:5s`, `none` = never
        /// retry); `default` goes back to the worker's default
        #[arg(long, value_name = "POLICY|default", value_parser = parse::queue_retry)]
        retry: Option<parse::Limit<quern::RetryPolicy>>,
        /// Most jobs of one group running at once across all workers, or `none`
        #[arg(long, value_name = "N|none", value_parser = parse::cap)]
        group_concurrency: Option<parse::Limit<u32>>,
        /// Each group's own rate limit (10/s, 600/m; `,burst=N` for a burst), or `none`
        #[arg(long, value_name = "RATE|none", value_parser = parse::rate_burst)]
        group_rate: Option<parse::Limit<quern::model::RateLimit>>,
        /// A rate limit for the queue's jobs whose kind matches a pattern (`*` any run, `?`
        /// one character): `generate.*=10/m`, `thumbnail.*=100/m,burst=10`;
        /// `PATTERN=none` removes it. Repeat for several patterns
        #[arg(long, value_name = "PATTERN=RATE|PATTERN=none", value_parser = parse::kind_rate)]
        kind_rate: Vec<(String, parse::Limit<quern::model::RateLimit>)>,
    },
    /// Stop workers from taking jobs from a queue (its jobs stay queued)
    Pause {
        #[arg(value_parser = parse::queue)]
        queue: String,
    },
    /// Let workers take jobs from a paused queue again
    Resume {
        #[arg(value_parser = parse::queue)]
        queue: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCmd {
    /// Dead jobs, newest first
    List {
        #[arg(long, value_name = "Q", value_parser = parse::queue)]
        queue: Option<String>,
        #[arg(long, value_name = "N", default_value = "50", value_parser = parse::count)]
        limit: usize,
    },
    /// Move dead jobs back to their queue: one by id, or all matching --queue/--kind, or --all
    #[command(group = clap::ArgGroup::new("target").required(true).multiple(true).args(["id", "queue", "kind", "all"]))]
    Replay {
        #[arg(value_parser = parse::job_id, conflicts_with_all = ["queue", "kind", "all"])]
        id: Option<JobId>,
        #[arg(long, value_name = "Q", value_parser = parse::queue)]
        queue: Option<String>,
        #[arg(long, value_name = "K")]
        kind: Option<String>,
        /// Every dead job
        #[arg(long, conflicts_with_all = ["queue", "kind"])]
        all: bool,
        /// At most this many
        #[arg(long, value_name = "N", default_value = "100000", value_parser = parse::count)]
        limit: usize,
    },
    /// Delete dead jobs for good (with their logs): these ids (all or nothing), or all
    /// matching --queue/--kind, or --all
    #[command(group = clap::ArgGroup::new("target").required(true).multiple(true).args(["ids", "queue", "kind", "all"]))]
    Delete {
        #[arg(value_parser = parse::job_id, conflicts_with_all = ["queue", "kind", "all"])]
        ids: Vec<JobId>,
        #[arg(long, value_name = "Q", value_parser = parse::queue)]
        queue: Option<String>,
        #[arg(long, value_name = "K")]
        kind: Option<String>,
        /// Every dead job
        #[arg(long, conflicts_with_all = ["queue", "kind"])]
        all: bool,
        /// Count what would be deleted and change nothing
        #[arg(long)]
        dry_run: bool,
        /// At most this many (for a filter)
        #[arg(long, value_name = "N", default_value = "100000", value_parser = parse::count)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkersCmd {
    /// Registered workers, most recently seen first
    List,
}

#[derive(Debug, Subcommand)]
pub enum MaintainCmd {
    /// Copy the WAL into the database file: passive (never waits), full (waits for readers
    /// on old snapshots) or truncate (full, then empties the WAL file)
    Checkpoint {
        #[arg(default_value = "passive", value_parser = parse::checkpoint_mode)]
        mode: quern_sqlite::CheckpointMode,
    },
    /// Refresh the statistics SQLite's query planner uses (ANALYZE)
    Analyze,
    /// Rewrite the file without its free pages (VACUUM); needs free disk space about the
    /// file's size, and writes wait until it is done
    Vacuum,
    /// Check the file's structure (PRAGMA integrity_check); exit 1 with each problem found
    Integrity,
    /// File and WAL sizes, free pages, page size, schema version and jobs per state
    Stats,
}

#[derive(Debug, Subcommand)]
pub enum CronCmd {
    /// Store a schedule, or change the one with this name
    Add(Box<CronAddArgs>),
    /// Every schedule with its next run, last run and last outcome
    List,
    /// One schedule with its latest runs (tick, enqueued at, lateness, job, outcome)
    Show {
        #[arg(value_name = "NAME")]
        name: String,
        /// How many runs to show
        #[arg(long, value_name = "N", default_value = "20", value_parser = parse::count)]
        runs: usize,
    },
    /// Remove a schedule and its history (a tick's job enqueued ahead is cancelled)
    Remove {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Stop a schedule's ticks until it is resumed
    Pause {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Resume a paused schedule (ticks missed while paused do not run)
    Resume {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Enqueue the schedule's job now, outside the schedule
    Trigger {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Print the next ticks of an expression, in its zone and in UTC (needs no store)
    Next(CronNextArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("when").required(true).args(["cron", "every"]))]
pub struct CronAddArgs {
    /// The schedule's name: 1-128 letters, digits, '_', '.', ':' or '-'
    #[arg(value_name = "NAME")]
    pub name: String,

    /// A cron expression with 5 or 6 fields, or a macro (@hourly, @daily, ...)
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,

    /// An interval instead of an expression (90s, 5m, 1h30m)
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,

    /// IANA time zone the expression is read in [default: UTC]
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,

    /// The job's kind (handler name)
    #[arg(long, value_name = "KIND")]
    pub kind: String,

    /// The job's payload as JSON text
    #[arg(long, value_name = "JSON")]
    pub payload: Option<String>,

    /// The job's queue [default: default]
    #[arg(long, value_name = "Q", value_parser = parse::queue)]
    pub queue: Option<String>,

    /// The job's priority: 0-9 or critical, high, normal, low, batch [default: normal]
    #[arg(long, value_name = "P", value_parser = parse::priority)]
    pub priority: Option<Priority>,

    /// Attempts before the job goes dead [default: 25]
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,

    /// Per-attempt time limit of the job
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub timeout: Option<Duration>,

    /// Unique key of the job: a tick while a job with it is live records that job instead
    #[arg(long, value_name = "KEY")]
    pub unique: Option<String>,

    /// Ticks missed while no worker ran: skip, run-once (one job for the latest) or run-all
    /// [default: run-once]
    #[arg(long, value_name = "POLICY")]
    pub misfire: Option<String>,

    /// With --misfire run-all: at most this many missed ticks [default: 100]
    #[arg(long, value_name = "N", requires = "misfire")]
    pub misfire_max: Option<u32>,

    /// With --misfire run-all: only ticks missed within this long [default: 1d]
    #[arg(long, value_name = "DURATION", value_parser = parse::duration, requires = "misfire")]
    pub misfire_window: Option<Duration>,

    /// A tick while the previous run is still waiting or running: allow, skip or
    /// cancel-previous [default: allow]
    #[arg(long, value_name = "POLICY")]
    pub overlap: Option<String>,

    /// No tick before this time (RFC 3339)
    #[arg(long, value_name = "RFC3339", value_parser = parse::rfc3339)]
    pub start: Option<i64>,

    /// No tick after this time (RFC 3339)
    #[arg(long, value_name = "RFC3339", value_parser = parse::rfc3339)]
    pub end: Option<i64>,

    /// At most this many runs in all
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    /// Each tick's job is due up to this long after the tick (a fixed offset per tick)
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub jitter: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct CronNextArgs {
    /// A cron expression with 5 or 6 fields ("30 9 * * MON-FRI", "*/10 * * * * *"), a macro
    /// (@hourly, @daily, @weekly, @monthly, @yearly) or an interval ("@every 90s")
    #[arg(value_name = "EXPR")]
    pub expr: String,

    /// IANA time zone the expression is read in, e.g. Europe/Berlin [default: UTC]
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,

    /// Start after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z) [default: now]
    #[arg(long, value_name = "RFC3339", value_parser = parse::rfc3339)]
    pub from: Option<i64>,

    /// How many ticks to print
    #[arg(long, value_name = "N", default_value = "5", value_parser = parse::count)]
    pub count: usize,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Jobs per enqueue and drain measurement
    #[arg(long, value_name = "N", default_value = "20000", value_parser = parse::count)]
    pub jobs: usize,
    /// Concurrency of the second drain
    #[arg(long, value_name = "C", default_value = "16", value_parser = parse::positive)]
    pub concurrency: u32,
    /// Offered rate (jobs/s) of the latency measurement
    #[arg(long, value_name = "R", default_value = "1000", value_parser = parse::count)]
    pub rate: usize,
    /// Jobs in the latency measurement
    #[arg(long, value_name = "N", default_value = "5000", value_parser = parse::count)]
    pub latency_jobs: usize,
    /// Worker concurrency in the latency measurement
    #[arg(long, value_name = "C", default_value = "1", value_parser = parse::positive)]
    pub latency_concurrency: u32,
    /// Approximate size of each job's JSON payload
    #[arg(long, value_name = "B", default_value = "100", value_parser = parse::count)]
    pub payload_bytes: usize,
    /// Jobs per call in the batch enqueue
    #[arg(long, value_name = "N", default_value = "1000", value_parser = parse::count)]
    pub batch_size: usize,
    /// Give up on a measurement after this long
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse::duration)]
    pub timeout: Duration,

    /// Also measure cron tick lag: an every-second schedule runs this many ticks on an idle
    /// worker, and each tick's lateness (handler start − tick) is reported as p50 / p99.
    /// 0 (the default) skips it
    #[arg(long, value_name = "N", default_value = "0", value_parser = parse::count_or_zero)]
    pub cron_ticks: usize,
    /// Queue settings set on every bench queue before its jobs are enqueued, as JSON
    /// (`quern queues show --json` prints the shape), e.g.
    /// '{"concurrency":1000,"rate":{"count":1000000,"per":1000,"burst":1000000}}' or
    /// '{"order":"fifo"}'
    #[arg(long, value_name = "JSON", value_parser = parse::queue_settings)]
    pub queue_settings: Option<quern::model::QueueSettings>,
}

#[derive(Debug, Subcommand)]
pub enum WorkflowCmd {
    /// Check a workflow file and print its execution levels (exit 1 with every problem found)
    Validate {
        /// The workflow file (.yaml, .yml or .json)
        file: PathBuf,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Submit a workflow and follow it to the end with in-process workers for its built-in
    /// kinds; exit 0 only if it succeeded
    Run(WorkflowRunArgs),
    /// Draw a workflow file's DAG, or a stored workflow's with the state of each task
    Graph {
        /// A workflow file, or the id of a stored workflow
        target: String,
        /// mermaid, dot or text
        #[arg(long, default_value = "text", value_parser = parse::graph_format)]
        format: quern::workflow::GraphFormat,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Show a stored workflow: its state, job counts and each task
    #[command(alias = "get")]
    Status { id: String },
    /// Stored workflows, newest first
    List {
        /// running, succeeded, failed, cancelled or compensated
        #[arg(long, value_name = "S", value_parser = parse::workflow_state)]
        state: Option<quern::model::WorkflowState>,
        /// At most this many
        #[arg(long, value_name = "N", default_value = "50", value_parser = parse::count)]
        limit: usize,
    },
    /// Cancel a running workflow: waiting tasks are cancelled, running ones told to stop
    Cancel {
        id: String,
        /// Recorded as the workflow's error
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Run a failed or cancelled workflow again from where it failed (succeeded tasks keep
    /// their results), and follow it like `run`
    Retry {
        id: String,
        #[command(flatten)]
        follow: FollowArgs,
    },
}

/// `--var NAME=VALUE`, repeatable.
#[derive(Debug, Args)]
pub struct VarArgs {
    /// Set a variable the file declares; VALUE is JSON when it parses as JSON, else a string
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse::var)]
    pub vars: Vec<(String, serde_json::Value)>,
}

#[derive(Debug, Args)]
pub struct WorkflowRunArgs {
    /// The workflow file (.yaml, .yml or .json)
    pub file: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub follow: FollowArgs,
}

/// How `run` and `retry` follow the workflow.
#[derive(Debug, Args)]
pub struct FollowArgs {
    /// Print the workflow id and return at once (workers elsewhere run the tasks)
    #[arg(long)]
    pub detach: bool,
    /// Tasks run at once by the in-process workers [default: worker.concurrency]
    #[arg(long, value_name = "N", value_parser = parse::positive)]
    pub concurrency: Option<u32>,
    /// Do not start in-process workers: only follow (workers elsewhere run the tasks)
    #[arg(long, conflicts_with = "detach")]
    pub no_workers: bool,
}
