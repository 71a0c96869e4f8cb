//! Quern's embedded SQLite backend (`sqlite://path`, `sqlite::memory:`).
//!
//! One writer thread owns the read-write connection and commits many operations per
//! transaction (group commit, see `writer.rs`); reads use a small pool of read-only
//! connections. WAL mode, `busy_timeout`, versioned migrations (`migrate.rs`). Maintenance
//! of the file (checkpoint, analyze, vacuum, integrity check, stats) is in `maintain.rs`.
//!
//! ```no_run
//! # async fn demo() -> quern::Result<()> {
//! let backend = quern_sqlite::SqliteBackend::open("sqlite://quern.db").await?;
//! # let _ = backend; Ok(()) }
//! ```

mod copy;
mod error;
mod events;
mod maintain;
mod migrate;
mod ops;
mod reader;
mod rows;
mod url;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use quern::backend::*;
use quern::model::{Limits, ScheduleRun, StoredSchedule};
use quern::{Backend, Job, JobId, SharedClock, SystemClock};
use rusqlite::Connection;
use tokio::sync::Notify;

pub use maintain::{CheckpointMode, CheckpointReport, SqliteStats};
pub use migrate::SCHEMA_VERSION;
pub use url::{Durability, SqliteUrl};

use error::sql_err;
use reader::Readers;
use writer::Writer;

/// How often an idle `work_wait` checks whether another process committed.
const EXTERNAL_POLL: Duration = Duration::from_millis(20);

/// Options for [`SqliteBackend::open_with`].
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub url: SqliteUrl,
    pub clock: SharedClock,
    pub limits: Limits,
    /// Read-only connections in the pool (file databases only).
    pub read_connections: usize,
}

impl SqliteOptions {
    /// Options for a URL, with the system clock and default limits.
    pub fn new(url: &str) -> quern::Result<Self> {
        Ok(SqliteOptions {
            url: SqliteUrl::parse(url)?,
            clock: Arc::new(SystemClock),
            limits: Limits::default(),
            read_connections: 2,
        })
    }

    /// Uses this clock for every timestamp (tests inject a `ManualClock`).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the payload limit.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// The SQLite backend. Cheap to clone; all clones share one writer thread.
#[derive(Clone)]
pub struct SqliteBackend {
    shared: Arc<Shared>,
}

struct Shared {
    writer: Writer,
    readers: Readers,
    clock: SharedClock,
    /// Woken after a commit that may have made work claimable, and by the watcher when
    /// another process committed.
    wake: Arc<Notify>,
    /// `work_wait` calls in progress; the watcher only polls while there are some.
    waiters: AtomicUsize,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl SqliteBackend {
    /// Opens (creating and migrating if needed) the database at a `sqlite://` URL.
    pub async fn open(url: &str) -> quern::Result<Self> {
        Self::open_with(SqliteOptions::new(url)?).await
    }

    /// Opens with explicit options.
    pub async fn open_with(opts: SqliteOptions) -> quern::Result<Self> {
        tokio::task::spawn_blocking(move || Self::open_blocking(opts))
            .await
            .map_err(|e| quern::Error::Storage(format!("open task failed: {e}")))?
    }

    fn open_blocking(opts: SqliteOptions) -> quern::Result<Self> {
        let busy_ms = opts.url.busy_timeout.as_millis() as u64;
        let wake = Arc::new(Notify::new());
        let mut conn = match &opts.url.path {
            Some(p) => Connection::open(p).map_err(|e| {
                quern::Error::Unavailable(format!(
                    "cannot open sqlite database {}: {e}",
                    p.display()
                ))
            })?,
            None => Connection::open_in_memory().map_err(sql_err)?,
        };
        conn.busy_timeout(opts.url.busy_timeout).map_err(sql_err)?;
        conn.set_prepared_statement_cache_capacity(128);
        stable_plans(&conn)?;
        let sync = match opts.url.durability {
            Durability::Normal => "NORMAL",
            Durability::Fsync => "FULL",
        };
        if opts.url.path.is_some() {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(|e| {
                    quern::Error::Unavailable(format!(
                        "cannot use sqlite database (is it a database file?): {e}"
                    ))
                })?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(quern::Error::Storage(format!(
                    "could not switch to WAL mode (got {mode})"
                )));
            }
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; \
             PRAGMA foreign_keys = OFF;"
        ))
        .map_err(sql_err)?;
        if opts.url.path.is_some() {
            // The WAL is checkpointed by the checkpointer thread (`spawn_checkpointer`), not
            // by whichever commit crosses 1,000 pages.
            conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
                .map_err(sql_err)?;
        }
        migrate::migrate(&mut conn)?;
        let writer = Writer::start(conn, opts.clock.clone(), opts.limits, wake.clone());
        let readers = match &opts.url.path {
            Some(p) => Readers::pool(p, opts.read_connections.max(1), busy_ms)?,
            None => Readers::Writer(writer.clone()),
        };
        let shared = Arc::new(Shared {
            writer,
            readers,
            clock: opts.clock,
            wake,
            waiters: AtomicUsize::new(0),
            path: opts.url.path.clone(),
        });
        if let Some(p) = &opts.url.path {
            spawn_watcher(Arc::downgrade(&shared), reader::open_reader(p, busy_ms)?);
            let cp = Connection::open(p).map_err(sql_err)?;
            cp.busy_timeout(opts.url.busy_timeout).map_err(sql_err)?;
            spawn_checkpointer(Arc::downgrade(&shared), cp);
        }
        Ok(SqliteBackend { shared })
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.shared.path.as_deref()
    }

    async fn write<T, F>(&self, f: F) -> quern::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut writer::Tx<'_>) -> quern::Result<T> + Send + 'static,
    {
        self.shared.writer.write(f).await
    }

    /// For the hot-path operations whose refusals are per-item results (see `writer.rs`).
    async fn write_unguarded<T, F>(&self, f: F) -> quern::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut writer::Tx<'_>) -> quern::Result<T> + Send + 'static,
    {
        self.shared.writer.write_unguarded(f).await
    }

    async fn read<T, F>(&self, f: F) -> quern::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> quern::Result<T> + Send + 'static,
    {
        self.shared.readers.read(f).await
    }
}

/// Turns on SQLite's query planner stability guarantee. Without it SQLite re-parses a
/// prepared statement whenever a bound value might change its plan (`LIMIT ?`, comparisons
/// near partial indexes), which measured at 35% of the writer's instructions on the drain
/// path. Our statements are written for one plan each, so re-planning buys nothing.
pub(crate) fn stable_plans(conn: &Connection) -> quern::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map(|_| ())
    .map_err(sql_err)
}

/// Another process may commit to the same file; nothing tells us but `PRAGMA
/// data_version`. While someone waits for work, poll it and wake them when it moves.
fn spawn_watcher(shared: Weak<Shared>, conn: Connection) {
    let _ = std::thread::Builder::new()
        .name("quern-sqlite-watch".into())
        .spawn(move || {
            let mut last = ops::read::data_version(&conn).unwrap_or(0);
            loop {
                std::thread::sleep(EXTERNAL_POLL);
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                if shared.waiters.load(Ordering::Acquire) == 0 {
                    continue;
                }
                if let Ok(v) = ops::read::data_version(&conn)
                    && v != last
                {
                    last = v;
                    shared.wake.notify_waiters();
                }
            }
        });
}

/// Time between the checkpointer's passive WAL checkpoints.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// Checkpoints the WAL from a connection of its own, every [`CHECKPOINT_EVERY`]
/// (`PASSIVE`: it never waits for a reader or the writer). SQLite's own automatic
/// checkpoint runs inside the commit that takes the WAL past 1,000 pages, so that commit,
/// and every operation in the writer's queue behind it, waited for the copy of the pages
/// and its fsync: the tail of the enqueue→start latency. Here the writer only appends; the
/// WAL starts over at the first write after a checkpoint that copied everything, as before.
fn spawn_checkpointer(shared: Weak<Shared>, conn: Connection) {
    let _ = std::thread::Builder::new()
        .name("quern-sqlite-checkpoint".into())
        .spawn(move || {
            loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                if shared.strong_count() == 0 {
                    return;
                }
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        });
}

struct WaiterGuard<'a>(&'a AtomicUsize);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::full("sqlite");
        // Other processes are noticed by polling `data_version` every 20 ms.
        caps.cross_process_wakeup = false;
        caps
    }

    async fn job_enqueue(&self, params: EnqueueParams) -> quern::Result<EnqueueResults> {
        self.write(move |tx| ops::enqueue::enqueue(tx, params))
            .await
    }

    async fn job_claim(&self, params: ClaimParams) -> quern::Result<Vec<ClaimedJob>> {
        Ok(self.job_claim_outcome(params).await?.jobs)
    }

    async fn job_claim_outcome(&self, params: ClaimParams) -> quern::Result<ClaimOutcome> {
        self.write_unguarded(move |tx| ops::claim::claim(tx, params))
            .await
    }

    async fn job_heartbeat(
        &self,
        params: HeartbeatParams,
    ) -> quern::Result<Vec<quern::Result<quern::Millis>>> {
        self.write_unguarded(move |tx| ops::lease::heartbeat(tx, params))
            .await
    }

    async fn job_complete(&self, params: CompleteParams) -> quern::Result<Vec<quern::Result<()>>> {
        self.write_unguarded(move |tx| ops::lease::complete(tx, params))
            .await
    }

    async fn job_fail(&self, params: FailParams) -> quern::Result<Vec<quern::Result<()>>> {
        self.write_unguarded(move |tx| ops::lease::fail(tx, params))
            .await
    }

    async fn job_release(&self, params: ReleaseParams) -> quern::Result<Vec<quern::Result<()>>> {
        self.write_unguarded(move |tx| ops::lease::release(tx, params))
            .await
    }

    async fn job_cancel(&self, params: CancelParams) -> quern::Result<Job> {
        self.write(move |tx| ops::admin::cancel(tx, params)).await
    }

    async fn job_reprioritize(&self, params: JobReprioritizeParams) -> quern::Result<Job> {
        self.write(move |tx| ops::admin::reprioritize(tx, params))
            .await
    }

    async fn job_get(&self, params: JobGetParams) -> quern::Result<Option<Job>> {
        let id = params.id;
        self.read(move |c| ops::admin::get(c, id)).await
    }

    async fn job_get_many(&self, params: JobGetManyParams) -> quern::Result<Vec<Option<Job>>> {
        let ids = params.ids.as_slice();
        let ids = ids.to_vec();
        self.read(move |c| ids.iter().map(|id| ops::admin::get(c, *id)).collect())
            .await
    }

    async fn job_list(&self, params: ListParams) -> quern::Result<JobPage> {
        self.read(move |c| ops::read::list(c, params)).await
    }

    async fn job_retry(&self, params: RetryParams) -> quern::Result<Vec<JobId>> {
        self.write(move |tx| ops::admin::retry(tx, params)).await
    }

    async fn job_prune(&self, params: PruneParams) -> quern::Result<PruneReport> {
        self.write(move |tx| ops::admin::prune(tx, params)).await
    }

    async fn job_prune_bytes(&self, params: PruneBytesParams) -> quern::Result<PruneBytesReport> {
        self.write(move |tx| ops::prune_bytes::prune_bytes(tx, params))
            .await
    }

    async fn lease_rescue(&self, params: RescueParams) -> quern::Result<RescueReport> {
        self.write(move |tx| ops::admin::rescue(tx, params)).await
    }

    async fn work_wait(&self, params: WaitParams) -> quern::Result<()> {
        // Register for wake-ups before looking, so a commit between the look and the wait
        // is not missed.
        let notified = self.shared.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        self.shared.waiters.fetch_add(1, Ordering::AcqRel);
        let _guard = WaiterGuard(&self.shared.waiters);
        let queues = params.queues.clone();
        let below = ops::claim::priority_bound(params.more_urgent_than);
        let now = self.shared.clock.now_ms();
        let (r, due) = self
            .read(move |c| {
                Ok((
                    ops::read::readiness(c, &queues, below, now)?,
                    ops::read::next_due(c)?,
                ))
            })
            .await?;
        if r.ready {
            return Ok(());
        }
        let mut wait = params.timeout;
        // Due scheduled work, and a throttled queue's next token, end the wait on time; a
        // queue at its cap frees when a job ends, which another process's commit shows
        // only to the poll.
        for at in [due, r.next_at].into_iter().flatten() {
            if at <= now {
                return Ok(());
            }
            wait = wait.min(Duration::from_millis((at - now) as u64));
        }
        if r.capped {
            wait = wait.min(EXTERNAL_POLL);
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(wait) => {}
        }
        Ok(())
    }

    async fn queue_get(&self, params: QueueParams) -> quern::Result<quern::model::QueueUsage> {
        let now = self.shared.clock.now_ms();
        self.read(move |c| ops::limits::get(c, &params.queue, now))
            .await
    }

    async fn queue_update(
        &self,
        params: QueueUpdateParams,
    ) -> quern::Result<quern::model::QueueSettings> {
        self.write(move |tx| ops::limits::update(tx, params)).await
    }

    async fn job_log_append(&self, params: LogAppendParams) -> quern::Result<()> {
        self.write(move |tx| ops::logs::append(tx, params)).await
    }

    async fn job_logs(&self, params: JobLogsParams) -> quern::Result<JobLogPage> {
        self.read(move |c| ops::logs::read(c, params)).await
    }

    async fn alert_state_list(&self) -> quern::Result<Vec<AlertStateRecord>> {
        self.read(ops::alerts::alert_state_list).await
    }

    async fn alert_state_put(&self, params: AlertStatePutParams) -> quern::Result<Option<u64>> {
        self.write(move |tx| ops::alerts::alert_state_put(tx, params))
            .await
    }

    async fn job_delete(&self, params: JobDeleteParams) -> quern::Result<JobDeleteReport> {
        self.write(move |tx| ops::alerts::job_delete(tx, params))
            .await
    }

    async fn event_list(
        &self,
        params: EventListParams,
    ) -> quern::Result<Vec<quern::model::JobEvent>> {
        self.read(move |c| ops::events::list(c, params)).await
    }

    async fn event_read(&self, params: EventReadParams) -> quern::Result<EventPage> {
        self.read(move |c| ops::events::read(c, params)).await
    }

    async fn event_prune(&self, params: EventPruneParams) -> quern::Result<u64> {
        self.write(move |tx| ops::events::prune(tx, params)).await
    }

    async fn job_finished(&self, params: FinishedParams) -> quern::Result<Vec<FinishedJob>> {
        self.read(move |c| ops::read::finished(c, params)).await
    }

    async fn stats_minutes(&self, params: MinutesParams) -> quern::Result<Vec<MinuteCounts>> {
        self.read(move |c| ops::rollup::minutes(c, params)).await
    }

    async fn store_maintain(
        &self,
        params: StoreMaintainParams,
    ) -> quern::Result<StoreMaintainReport> {
        self.maintain(params).await
    }

    async fn schedule_upsert(
        &self,
        params: ScheduleUpsertParams,
    ) -> quern::Result<ScheduleUpserted> {
        self.write(move |tx| ops::schedule::upsert(tx, params.spec))
            .await
    }

    async fn schedule_get(&self, params: ScheduleParams) -> quern::Result<Option<StoredSchedule>> {
        self.read(move |c| ops::schedule::get(c, &params.name))
            .await
    }

    async fn schedule_list(&self) -> quern::Result<Vec<StoredSchedule>> {
        self.read(ops::schedule::list).await
    }

    async fn schedule_delete(
        &self,
        params: ScheduleParams,
    ) -> quern::Result<Option<StoredSchedule>> {
        self.write(move |tx| ops::schedule::delete(tx, &params.name))
            .await
    }

    async fn schedule_pause(&self, params: ScheduleParams) -> quern::Result<StoredSchedule> {
        self.write(move |tx| ops::schedule::set_paused(tx, &params.name, true))
            .await
    }

    async fn schedule_resume(&self, params: ScheduleParams) -> quern::Result<StoredSchedule> {
        self.write(move |tx| ops::schedule::set_paused(tx, &params.name, false))
            .await
    }

    async fn schedule_fire(&self, params: ScheduleFireParams) -> quern::Result<FireOutcome> {
        self.write(move |tx| ops::schedule::fire(tx, params)).await
    }

    async fn schedule_runs(&self, params: ScheduleRunsParams) -> quern::Result<Vec<ScheduleRun>> {
        self.read(move |c| ops::schedule::runs(c, params)).await
    }

    async fn workflow_create(
        &self,
        params: WorkflowCreateParams,
    ) -> quern::Result<quern::model::WorkflowRecord> {
        self.write(move |tx| ops::workflow::create(tx, params))
            .await
    }

    async fn workflow_get(
        &self,
        params: WorkflowParams,
    ) -> quern::Result<Option<quern::model::WorkflowRecord>> {
        let id = params.id.as_str();
        let id = id.to_string();
        self.read(move |c| ops::workflow::get(c, &id)).await
    }

    async fn workflow_list(&self, params: WorkflowListParams) -> quern::Result<WorkflowPage> {
        self.read(move |c| ops::workflow::list(c, params)).await
    }

    async fn workflow_update(
        &self,
        params: WorkflowUpdateParams,
    ) -> quern::Result<quern::model::WorkflowRecord> {
        self.write(move |tx| ops::workflow::update(tx, params))
            .await
    }

    async fn workflow_counts(
        &self,
        params: WorkflowParams,
    ) -> quern::Result<quern::model::StateCounts> {
        let id = params.id.as_str();
        let id = id.to_string();
        self.read(move |c| ops::workflow::counts(c, &id)).await
    }

    // --- import (backup, restore, migrate) -------------------------------------------------

    async fn store_import(&self, params: ImportParams) -> quern::Result<ImportReport> {
        self.write(move |tx| ops::import::import(tx, params)).await
    }

    async fn queue_list(&self) -> quern::Result<Vec<QueueInfo>> {
        self.read(|c| ops::read::queues(c, None)).await
    }

    async fn queue_stats(&self, params: QueueParams) -> quern::Result<QueueInfo> {
        let queue = params.queue.as_str();
        let q = queue.to_string();
        self.read(move |c| {
            ops::read::queues(c, Some(&q))?
                .pop()
                .ok_or(quern::Error::QueueNotFound(q))
        })
        .await
    }

    async fn queue_pause(&self, params: QueueParams) -> quern::Result<()> {
        let queue = params.queue.as_str();
        let q = queue.to_string();
        self.write(move |tx| ops::admin::set_paused(tx, &q, true))
            .await
    }

    async fn queue_resume(&self, params: QueueParams) -> quern::Result<()> {
        let queue = params.queue.as_str();
        let q = queue.to_string();
        self.write(move |tx| ops::admin::set_paused(tx, &q, false))
            .await
    }

    async fn worker_register(&self, info: WorkerInfo) -> quern::Result<()> {
        self.write(move |tx| ops::coord::worker_register(tx, info))
            .await
    }

    async fn worker_heartbeat(&self, params: WorkerHeartbeatParams) -> quern::Result<()> {
        self.write(move |tx| ops::coord::worker_heartbeat(tx, params))
            .await
    }

    async fn worker_deregister(&self, params: WorkerDeregisterParams) -> quern::Result<()> {
        let id = params.id.as_str();
        let id = id.to_string();
        self.write(move |tx| ops::coord::worker_deregister(tx, &id))
            .await
    }

    async fn worker_list(&self) -> quern::Result<Vec<WorkerInfo>> {
        self.read(ops::coord::worker_list).await
    }

    async fn leader_acquire(&self, params: LeaderParams) -> quern::Result<bool> {
        self.write(move |tx| ops::coord::leader_acquire(tx, params))
            .await
    }

    async fn leader_renew(&self, params: LeaderParams) -> quern::Result<bool> {
        self.write(move |tx| ops::coord::leader_renew(tx, params))
            .await
    }

    async fn leader_release(&self, params: LeaderParams) -> quern::Result<()> {
        self.write(move |tx| ops::coord::leader_release(tx, params))
            .await
    }

    async fn leader_get(&self, params: LeaderGetParams) -> quern::Result<Option<LeaderInfo>> {
        let name = params.name.as_str();
        let name = name.to_string();
        let now = self.shared.clock.now_ms();
        self.read(move |c| ops::coord::leader_get(c, &name, now))
            .await
    }
}
