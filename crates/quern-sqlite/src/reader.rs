//! Read connections.
//!
//! A file database gets a small pool of read-only connections used from `spawn_blocking`;
//! in WAL mode they read a consistent snapshot without blocking the writer. An in-memory
//! database has no second connection to read from, so its reads go through the writer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::sql_err;
use crate::writer::Writer;

pub(crate) enum Readers {
    Pool(Arc<Pool>),
    Writer(Writer),
}

pub(crate) struct Pool {
    conns: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

/// Opens a read-only connection with the settings every reader uses.
pub(crate) fn open_reader(path: &PathBuf, busy_ms: u64) -> quern::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(sql_err)?;
    conn.busy_timeout(std::time::Duration::from_millis(busy_ms))
        .map_err(sql_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    crate::stable_plans(&conn)?;
    Ok(conn)
}

impl Readers {
    pub(crate) fn pool(path: &PathBuf, size: usize, busy_ms: u64) -> quern::Result<Readers> {
        let conns = (0..size)
            .map(|_| open_reader(path, busy_ms))
            .collect::<quern::Result<Vec<_>>>()?;
        Ok(Readers::Pool(Arc::new(Pool {
            conns: Mutex::new(conns),
            permits: Semaphore::new(size),
        })))
    }

    /// Runs a read-only closure on some connection.
    pub(crate) async fn read<T, F>(&self, f: F) -> quern::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> quern::Result<T> + Send + 'static,
    {
        match self {
            Readers::Writer(w) => w.read(move |tx| f(tx.conn)).await,
            Readers::Pool(pool) => {
                let permit = pool
                    .permits
                    .acquire()
                    .await
                    .map_err(|_| quern::Error::Shutdown)?;
                // The permit is handed back by the blocking task together with the
                // connection (see below), not when this future is dropped.
                permit.forget();
                let conn = pool
                    .conns
                    .lock()
                    .expect("reader pool lock")
                    .pop()
                    .expect("a connection per permit");
                let pool2 = pool.clone();
                // The connection (and then its permit) goes back to the pool inside the
                // blocking task, so neither is lost when the caller drops this future
                // mid-read (a `select!` that picked another branch): futures must be
                // cancel-safe.
                tokio::task::spawn_blocking(move || {
                    // Keep the connection even if the closure panics.
                    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&conn)))
                        .unwrap_or_else(|_| {
                            Err(quern::Error::Storage(
                                "internal error: read panicked".into(),
                            ))
                        });
                    pool2
                        .conns
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(conn);
                    pool2.permits.add_permits(1);
                    out
                })
                .await
                .map_err(|e| quern::Error::Storage(format!("read task failed: {e}")))?
            }
        }
    }
}
