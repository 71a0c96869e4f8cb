//! Versioned schema migrations, tracked in `PRAGMA user_version`.
//!
//! Each migration runs once, in order, inside one `BEGIN IMMEDIATE` transaction together with
//! the version bump, so a crash mid-migration leaves the previous version intact. A database
//! written by a newer Quern (a higher version than we know) is refused rather than guessed at.

use rusqlite::Connection;

use crate::error::sql_err;

/// The migrations, in order. Index `i` upgrades from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    ("jobs", include_str!("migrations/0001_jobs.sql")),
    (
        "coordination",
        include_str!("migrations/0002_coordination.sql"),
    ),
    ("workflows", include_str!("migrations/0003_workflows.sql")),
    ("claimed_at", include_str!("migrations/0004_claimed_at.sql")),
    ("result_ttl", include_str!("migrations/0005_result_ttl.sql")),
    ("schedules", include_str!("migrations/0006_schedules.sql")),
    (
        "queue_settings",
        include_str!("migrations/0007_queue_settings.sql"),
    ),
    ("job_logs", include_str!("migrations/0008_job_logs.sql")),
    (
        "jobs_finished",
        include_str!("migrations/0009_jobs_finished.sql"),
    ),
    ("views", include_str!("migrations/0010_views.sql")),
    (
        "claim_order",
        include_str!("migrations/0012_claim_order.sql"),
    ),
    (
        "alert_state",
        include_str!("migrations/0015_alert_state.sql"),
    ),
    (
        "queue_retention",
        include_str!("migrations/0018_queue_retention.sql"),
    ),
    ("trace", include_str!("migrations/0019_trace.sql")),
    ("groups", include_str!("migrations/0016_groups.sql")),
    (
        "group_insert",
        include_str!("migrations/0024_group_insert.sql"),
    ),
    ("kind_rates", include_str!("migrations/0021_kind_rates.sql")),
    ("rollups", include_str!("migrations/0023_rollups.sql")),
    (
        "retention_bytes",
        include_str!("migrations/0022_retention_bytes.sql"),
    ),
    (
        "queue_counts",
        include_str!("migrations/0025_queue_counts.sql"),
    ),
    ("events", include_str!("migrations/0020_events.sql")),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> quern::Result<()> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Brings the database up to `target` (tests use this to build an old-version file).
pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> quern::Result<()> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err)?;
    if current > SCHEMA_VERSION {
        return Err(quern::Error::Storage(format!(
            "database schema version {current} is newer than this build supports ({SCHEMA_VERSION}); upgrade Quern"
        )));
    }
    for (i, (name, sql)) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(current as usize)
    {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        // Re-check under the write lock: another process may have migrated meanwhile.
        let v: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_err)?;
        if v > i as i64 {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| {
            quern::Error::Storage(format!("migration {} ({name}) failed: {e}", i + 1))
        })?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
        tracing::info!(version = i + 1, name, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database written by the first release (schema version 1, before workers and leaders
    /// existed) opens with this build: it is upgraded in place and its jobs survive.
    #[tokio::test]
    async fn an_old_database_opens_and_upgrades() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
            migrate_to(&mut conn, 1).unwrap();
            let id = quern::JobId::new();
            conn.execute(
                "INSERT INTO jobs (id, queue_id, state, priority, run_at, kind, payload, payload_tag, \
                 max_attempts, created_at) VALUES (?1, 1, 1, 5, 0, 'old_kind', CAST('{\"a\":1}' AS BLOB), 0, 3, 0)",
                [id.as_bytes()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO queues (name, paused, created_at) VALUES ('default', 0, 0)",
                [],
            )
            .unwrap();
            let v: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, 1);
        }
        let url = format!("sqlite://{}", path.display());
        let backend = crate::SqliteBackend::open(&url).await.unwrap();
        use quern::Backend;
        let page = backend
            .job_list(quern::backend::ListParams {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.jobs.len(), 1);
        assert_eq!(page.jobs[0].kind, "old_kind");
        assert_eq!(page.jobs[0].payload.to_json_value().unwrap()["a"], 1);
        // The tables added by migration 2 now exist and work.
        assert!(backend.worker_list().await.unwrap().is_empty());
        drop(backend);
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
