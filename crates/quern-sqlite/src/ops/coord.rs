//! Workers and leader leases.

use quern::Error;
use quern::backend::{LeaderInfo, LeaderParams, WorkerHeartbeatParams, WorkerInfo};
use rusqlite::{Connection, OptionalExtension};

use crate::error::sql_err;
use crate::writer::Tx;

fn codec(e: serde_json::Error) -> Error {
    Error::Codec(e.to_string())
}

pub(crate) fn worker_register(tx: &mut Tx<'_>, mut info: WorkerInfo) -> quern::Result<()> {
    info.last_seen_at = tx.now;
    let json = serde_json::to_string(&info).map_err(codec)?;
    tx.conn
        .prepare_cached(
            "INSERT INTO workers (id, info, last_seen_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET info = excluded.info, last_seen_at = excluded.last_seen_at",
        )
        .and_then(|mut s| s.execute(rusqlite::params![info.id, json, tx.now]))
        .map_err(sql_err)?;
    Ok(())
}

pub(crate) fn worker_heartbeat(tx: &mut Tx<'_>, p: WorkerHeartbeatParams) -> quern::Result<()> {
    let info: Option<String> = tx
        .conn
        .prepare_cached("SELECT info FROM workers WHERE id = ?1")
        .and_then(|mut s| s.query_row([&p.id], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    let Some(info) = info else {
        return Err(Error::InvalidArgument(format!(
            "worker {:?} is not registered",
            p.id
        )));
    };
    let mut info: WorkerInfo = serde_json::from_str(&info).map_err(codec)?;
    info.last_seen_at = tx.now;
    info.running = p.running;
    let json = serde_json::to_string(&info).map_err(codec)?;
    tx.conn
        .prepare_cached("UPDATE workers SET info = ?2, last_seen_at = ?3 WHERE id = ?1")
        .and_then(|mut s| s.execute(rusqlite::params![p.id, json, tx.now]))
        .map_err(sql_err)?;
    Ok(())
}

pub(crate) fn worker_deregister(tx: &mut Tx<'_>, id: &str) -> quern::Result<()> {
    tx.conn
        .prepare_cached("DELETE FROM workers WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(sql_err)?;
    Ok(())
}

pub(crate) fn worker_list(conn: &Connection) -> quern::Result<Vec<WorkerInfo>> {
    let rows: Vec<String> = conn
        .prepare_cached("SELECT info FROM workers ORDER BY last_seen_at DESC, id")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_err)?;
    rows.iter()
        .map(|s| serde_json::from_str(s).map_err(codec))
        .collect()
}

pub(crate) fn leader_acquire(tx: &mut Tx<'_>, p: LeaderParams) -> quern::Result<bool> {
    let expires = tx.now + p.ttl.as_millis() as i64;
    tx.conn
        .prepare_cached(
            "INSERT INTO leaders (name, holder, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leaders.holder = excluded.holder OR leaders.expires_at <= ?4",
        )
        .and_then(|mut s| s.execute(rusqlite::params![p.name, p.holder, expires, tx.now]))
        .map_err(sql_err)?;
    holder_is(tx.conn, &p.name, &p.holder, tx.now)
}

pub(crate) fn leader_renew(tx: &mut Tx<'_>, p: LeaderParams) -> quern::Result<bool> {
    let expires = tx.now + p.ttl.as_millis() as i64;
    let n = tx
        .conn
        .prepare_cached("UPDATE leaders SET expires_at = ?3 WHERE name = ?1 AND holder = ?2 AND expires_at > ?4")
        .and_then(|mut s| s.execute(rusqlite::params![p.name, p.holder, expires, tx.now]))
        .map_err(sql_err)?;
    Ok(n == 1)
}

pub(crate) fn leader_release(tx: &mut Tx<'_>, p: LeaderParams) -> quern::Result<()> {
    tx.conn
        .prepare_cached("DELETE FROM leaders WHERE name = ?1 AND holder = ?2")
        .and_then(|mut s| s.execute(rusqlite::params![p.name, p.holder]))
        .map_err(sql_err)?;
    Ok(())
}

fn holder_is(conn: &Connection, name: &str, holder: &str, now: i64) -> quern::Result<bool> {
    Ok(leader_get(conn, name, now)?.is_some_and(|l| l.holder == holder))
}

pub(crate) fn leader_get(
    conn: &Connection,
    name: &str,
    now: i64,
) -> quern::Result<Option<LeaderInfo>> {
    conn.prepare_cached(
        "SELECT holder, expires_at FROM leaders WHERE name = ?1 AND expires_at > ?2",
    )
    .and_then(|mut s| {
        s.query_row(rusqlite::params![name, now], |r| {
            Ok(LeaderInfo {
                name: name.to_string(),
                holder: r.get(0)?,
                expires_at: r.get(1)?,
            })
        })
        .optional()
    })
    .map_err(sql_err)
}
