//! The one writer.
//!
//! A dedicated OS thread owns the only read-write connection. Callers send it operations
//! (closures) over a bounded channel and await a oneshot reply. The thread takes the first
//! waiting operation plus whatever else is already queued (up to [`MAX_GROUP`]), runs them all
//! in one `BEGIN IMMEDIATE … COMMIT`, and replies only after the commit: group commit. Under
//! load this turns thousands of tiny transactions into a few large ones; when idle, an
//! operation commits alone at once, so latency stays low.
//!
//! Savepoints: an operation that can fail logically (enqueue, cancel, retry, …: sent with
//! [`Writer::write`]) runs inside its own savepoint, so when it fails it rolls back alone and
//! the rest of the group commits. The hot-path operations (claim, complete, fail, heartbeat,
//! release: [`Writer::write_unguarded`]) run without one — their refusals are per-item
//! results, not errors, and a savepoint would copy every page they touch into the statement
//! journal — so a storage error in one of them rolls back the whole group, and every
//! operation in it gets that error.
//!
//! Queue counts: operations record how many job rows of each queue entered or left each
//! state (`ops/counts.rs`); the thread adds the group's changes to `queue_counts` with one
//! upsert per queue just before `COMMIT`, so a group of 256 completions into one queue
//! writes one row, not 256. A guarded operation rolled back to its savepoint drops the
//! changes it recorded; a failed group drops them all. Reads that run on the writer (an
//! in-memory database, [`Writer::read`]) get the pending changes written first.
//!
//! Outside a transaction: a few statements refuse to run inside one (`VACUUM`) or cannot do
//! their whole job there (`PRAGMA wal_checkpoint` cannot move the frames of the writer's own
//! open transaction). Those are sent with [`Writer::write_alone`]: the thread commits the
//! group gathered before it, runs the operation by itself on the bare connection with no
//! `BEGIN`, and only then starts the next group, so it never shares a transaction and no
//! other write runs beside it. An error it returns is its own; there is nothing to roll back
//! for it, so it must be a single statement (or leave the connection as it found it).
//!
//! Why a thread and not `spawn_blocking` per call: SQLite allows one writer at a time anyway,
//! and a long-lived thread keeps its prepared-statement cache warm and never blocks a runtime
//! worker thread (see rust-deps.md).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use quern::model::Limits;
use quern::{Millis, SharedClock};
use rusqlite::Connection;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::error::sql_err;

/// Most operations committed in one transaction.
const MAX_GROUP: usize = 256;
/// Operations that may wait for the writer before senders are back-pressured.
const CHANNEL_DEPTH: usize = 4096;

/// What an operation sees while it runs inside the group transaction.
pub(crate) struct Tx<'a> {
    pub conn: &'a Connection,
    /// The clock reading for this group (all operations of a group share it).
    pub now: Millis,
    pub st: &'a mut WriterState,
}

impl Tx<'_> {
    /// Records a job's move for the event stream (see `crate::events`); the caller also
    /// appends the job's timeline line in the statement that moves it.
    pub(crate) fn event(
        &self,
        queue_id: i64,
        job: quern::JobId,
        kind: &str,
        from: Option<quern::JobState>,
        to: Option<quern::JobState>,
        attempt: u32,
    ) {
        self.st
            .events
            .borrow_mut()
            .push(queue_id, job, kind, from, to, attempt);
    }

    /// The running operation's actor, as the timeline SQL binds it (`''` for none).
    pub(crate) fn actor_param(&self) -> String {
        crate::events::actor_param(self.st.actor.as_deref())
    }
}

/// State the writer keeps between transactions.
pub(crate) struct WriterState {
    /// Queue ids by name, so enqueue skips the `queues` lookup for queues it has seen.
    /// Cleared whenever a commit fails or an operation (or a savepoint inside one) is rolled
    /// back, since the rows it names may then not exist.
    pub known_queues: HashMap<String, i64>,
    /// Each queue's `grouped` flag as read in the current transaction (another process may
    /// flip it between transactions): cleared when a transaction begins and whenever
    /// `known_queues` is.
    pub grouped: HashMap<i64, bool>,
    /// Set by an operation that may have made work claimable; waiters are woken after the
    /// commit.
    pub wake: bool,
    pub limits: Limits,
    /// The day (of the store's clock) on which this writer last deleted old rollup rows
    /// (`ops/rollup.rs`): once a day is enough.
    pub rollups_pruned_day: Option<i64>,
    /// The job events of the running operation (`crate::events`): pushed by the operations,
    /// written when it returns. A `RefCell` so code holding only `&Tx` can push.
    pub events: std::cell::RefCell<crate::events::EventBuf>,
    /// The running operation's actor (`quern::model::with_actor` around the backend call).
    pub actor: Option<String>,
    /// The queue count changes of the group's operations so far (`ops/counts.rs`), written
    /// to `queue_counts` just before the commit (and before a read that runs on the
    /// writer). An operation rolled back to its savepoint takes its own changes with it;
    /// a group that fails clears them all.
    pub counts: crate::ops::counts::Counts,
}

/// How an operation is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// In the group transaction, inside its own savepoint.
    Guarded,
    /// In the group transaction, without a savepoint (see [`Op::mode`]).
    Unguarded,
    /// A read of an in-memory database (which has no reader pool): guarded, after the
    /// group's pending queue counts are written, so it sees them as a reader of a file
    /// sees committed ones.
    Read,
    /// By itself, between two groups, outside any transaction.
    Alone,
}

trait Op: Send {
    /// How the operation runs. A guarded operation runs inside its own savepoint, so when it
    /// fails it is rolled back alone. An unguarded one may only fail on a storage error, and
    /// then the whole group is rolled back and every operation in it gets the error; the
    /// hot-path operations (claim, complete, fail, heartbeat, release) are unguarded because
    /// their logical refusals are per-item results, and a savepoint costs every page they
    /// touch a copy into the statement journal. An alone operation runs by itself outside
    /// any transaction (see the module comment).
    fn mode(&self) -> Mode;
    /// Runs the operation; returns false if it failed.
    fn apply(&mut self, tx: &mut Tx<'_>) -> bool;
    /// Sends the reply once the transaction's fate is known.
    fn reply(self: Box<Self>, committed: Result<(), String>);
}

struct FnOp<T, F> {
    mode: Mode,
    /// Recorded on the events this operation appends (`crate::events`).
    actor: Option<String>,
    f: Option<F>,
    out: Option<quern::Result<T>>,
    reply: oneshot::Sender<quern::Result<T>>,
}

impl<T, F> Op for FnOp<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Tx<'_>) -> quern::Result<T> + Send + 'static,
{
    fn mode(&self) -> Mode {
        self.mode
    }

    fn apply(&mut self, tx: &mut Tx<'_>) -> bool {
        let f = self.f.take().expect("applied once");
        tx.st.actor = self.actor.take();
        tx.st.events.get_mut().clear();
        let out = catch_unwind(AssertUnwindSafe(|| f(tx))).unwrap_or_else(|_| {
            Err(quern::Error::Storage(
                "internal error: write operation panicked".into(),
            ))
        });
        // The operation's events, in its transaction (and its savepoint, when guarded).
        let out = match out {
            Ok(v) => crate::events::flush(
                tx.conn,
                tx.st.events.get_mut(),
                tx.now,
                tx.st.actor.as_deref(),
            )
            .map(|()| v),
            Err(e) => {
                tx.st.events.get_mut().clear();
                Err(e)
            }
        };
        tx.st.actor = None;
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn reply(self: Box<Self>, committed: Result<(), String>) {
        let msg = match committed {
            Ok(()) => self
                .out
                .unwrap_or_else(|| Err(quern::Error::Storage("operation not run".into()))),
            Err(e) => Err(quern::Error::Storage(format!("commit failed: {e}"))),
        };
        let _ = self.reply.send(msg);
    }
}

/// A handle to the writer thread. Cloning shares the thread; it stops when the last handle
/// is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn Op>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(
        conn: Connection,
        clock: SharedClock,
        limits: Limits,
        wake: Arc<Notify>,
    ) -> Writer {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let st = WriterState {
            known_queues: HashMap::new(),
            grouped: HashMap::new(),
            wake: false,
            limits,
            rollups_pruned_day: None,
            events: Default::default(),
            actor: None,
            counts: Default::default(),
        };
        std::thread::Builder::new()
            .name("quern-sqlite-writer".into())
            .spawn(move || run(conn, rx, clock, st, wake))
            .expect("spawn sqlite writer thread");
        Writer { tx }
    }

    /// Runs `f` inside a write transaction (possibly grouped with others), in its own
    /// savepoint, and returns its result after the commit.
    pub(crate) async fn write<T, F>(&self, f: F) -> quern::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> quern::Result<T> + Send + 'static,
    {
        self.submit(Mode::Guarded, f).await
    }

    /// Like [`Writer::write`] without a savepoint: for operations whose only possible `Err`
    /// is a storage failure (see [`Op::mode`]).
    pub(crate) async fn write_unguarded<T, F>(&self, f: F) -> quern::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> quern::Result<T> + Send + 'static,
    {
        self.submit(Mode::Unguarded, f).await
    }

    /// Runs the read-only `f` on the writer's connection, in the group transaction (for an
    /// in-memory database, see `reader.rs`).
    pub(crate) async fn read<T, F>(&self, f: F) -> quern::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> quern::Result<T> + Send + 'static,
    {
        self.submit(Mode::Read, f).await
    }

    /// Runs `f` on the writer's connection outside any transaction, after the operations
    /// sent before it have committed and before any sent after it start (see the module
    /// comment). For single statements that refuse a transaction, such as `VACUUM`.
    pub(crate) async fn write_alone<T, F>(&self, f: F) -> quern::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> quern::Result<T> + Send + 'static,
    {
        self.submit(Mode::Alone, f).await
    }

    async fn submit<T, F>(&self, mode: Mode, f: F) -> quern::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> quern::Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op: Box<dyn Op> = Box::new(FnOp {
            mode,
            // Read here, in the caller's task: `with_actor` is task-local.
            actor: quern::model::current_actor_stored(),
            f: Some(f),
            out: None,
            reply,
        });
        self.tx.send(op).await.map_err(|_| quern::Error::Shutdown)?;
        rx.await
            .map_err(|_| quern::Error::Storage("sqlite writer thread stopped".into()))?
    }
}

fn run(
    conn: Connection,
    mut rx: mpsc::Receiver<Box<dyn Op>>,
    clock: SharedClock,
    mut st: WriterState,
    wake: Arc<Notify>,
) {
    let mut batch: Vec<Box<dyn Op>> = Vec::with_capacity(MAX_GROUP);
    // An operation that must run alone, taken off the channel while a group was gathered;
    // it runs right after that group.
    let mut held: Option<Box<dyn Op>> = None;
    loop {
        let first = match held.take() {
            Some(op) => op,
            None => match rx.blocking_recv() {
                Some(op) => op,
                None => break,
            },
        };
        if first.mode() == Mode::Alone {
            run_alone(&conn, &clock, &mut st, first, &wake);
            continue;
        }
        batch.push(first);
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) if op.mode() == Mode::Alone => {
                    held = Some(op);
                    break;
                }
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let committed = run_group(&conn, &clock, &mut st, &mut batch);
        if committed.is_err() {
            st.counts.clear();
            st.known_queues.clear();
            st.grouped.clear();
            st.wake = false;
        } else if std::mem::take(&mut st.wake) {
            wake.notify_waiters();
        }
        for op in batch.drain(..) {
            op.reply(committed.clone());
        }
    }
    tracing::debug!("sqlite writer thread stopping");
}

/// Runs one operation outside any transaction. Its result is its reply: with no commit of
/// its own there is nothing else that can fail after it.
fn run_alone(
    conn: &Connection,
    clock: &SharedClock,
    st: &mut WriterState,
    mut op: Box<dyn Op>,
    wake: &Notify,
) {
    let now = clock.now_ms();
    op.apply(&mut Tx { conn, now, st });
    // Nothing run alone inserts, deletes or moves job rows.
    debug_assert!(
        st.counts.is_empty(),
        "an operation run alone changed queue counts"
    );
    st.counts.clear();
    // A rewrite such as `VACUUM` may renumber rows the queue cache names.
    st.known_queues.clear();
    st.grouped.clear();
    if std::mem::take(&mut st.wake) {
        wake.notify_waiters();
    }
    op.reply(Ok(()));
}

fn run_group(
    conn: &Connection,
    clock: &SharedClock,
    st: &mut WriterState,
    batch: &mut [Box<dyn Op>],
) -> Result<(), String> {
    exec(conn, "BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
    st.grouped.clear();
    let now = clock.now_ms();
    for op in batch.iter_mut() {
        if op.mode() == Mode::Unguarded {
            if !op.apply(&mut Tx { conn, now, st }) {
                let _ = exec(conn, "ROLLBACK");
                return Err(
                    "an operation in this group failed; nothing in it was committed".into(),
                );
            }
            continue;
        }
        if op.mode() == Mode::Read
            && let Err(e) = st.counts.flush(conn)
        {
            let _ = exec(conn, "ROLLBACK");
            return Err(e.to_string());
        }
        if let Err(e) = exec(conn, "SAVEPOINT op") {
            let _ = exec(conn, "ROLLBACK");
            return Err(e.to_string());
        }
        // The counts as they were before this operation, for when it is rolled back.
        let before = st.counts.clone();
        let ok = op.apply(&mut Tx { conn, now, st });
        let end = if ok {
            exec(conn, "RELEASE op")
        } else {
            st.counts = before;
            // The rolled-back operation may have created queues the cache now names.
            st.known_queues.clear();
            st.grouped.clear();
            exec(conn, "ROLLBACK TO op").and_then(|_| exec(conn, "RELEASE op"))
        };
        if let Err(e) = end {
            let _ = exec(conn, "ROLLBACK");
            return Err(e.to_string());
        }
    }
    if let Err(e) = st.counts.flush(conn) {
        let _ = exec(conn, "ROLLBACK");
        return Err(e.to_string());
    }
    if let Err(e) = exec(conn, "COMMIT") {
        let _ = exec(conn, "ROLLBACK");
        return Err(e.to_string());
    }
    Ok(())
}

fn exec(conn: &Connection, sql: &str) -> quern::Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(sql_err)
}
