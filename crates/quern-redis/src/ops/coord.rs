//! Coordination between processes: the worker registry (`{#}:workers`, one `{#}:w:<id>`
//! hash each, which the rescuer reads to find lost workers) and named leader leases
//! (`{#}:leader:<name>`, expiry by the injected clock, never by Redis key expiry).

use quern::backend::*;
use quern::{Error, Result};

use crate::backend::RedisBackend;
use crate::eval::Args;
use crate::{reply, scripts};

pub(crate) async fn worker_register(b: &RedisBackend, info: WorkerInfo) -> Result<()> {
    let json = serde_json::to_string(&info).map_err(|e| Error::Codec(e.to_string()))?;
    let key = b.gk(&format!("w:{}", info.id));
    let mut p = redis::pipe();
    p.cmd("HSET")
        .arg(&key)
        .arg("info")
        .arg(json)
        .arg("seen")
        .arg(info.last_seen_at)
        .arg("running")
        .arg(info.running)
        .ignore()
        .cmd("ZADD")
        .arg(b.gk("workers"))
        .arg(info.last_seen_at)
        .arg(&info.id)
        .ignore();
    b.pipeline::<()>(&p).await
}

pub(crate) async fn worker_heartbeat(
    b: &RedisBackend,
    params: WorkerHeartbeatParams,
) -> Result<()> {
    let key = b.gk(&format!("w:{}", params.id));
    let now = b.now();
    let exists: bool = b.query(redis::cmd("EXISTS").arg(&key).clone()).await?;
    if !exists {
        // As on SQLite: the worker then registers again (its record was removed as lost,
        // or the store lost it).
        return Err(Error::InvalidArgument(format!(
            "worker {:?} is not registered",
            params.id
        )));
    }
    let mut p = redis::pipe();
    p.cmd("HSET")
        .arg(&key)
        .arg("seen")
        .arg(now)
        .arg("running")
        .arg(params.running)
        .ignore()
        .cmd("ZADD")
        .arg(b.gk("workers"))
        .arg(now)
        .arg(&params.id)
        .ignore();
    b.pipeline::<()>(&p).await
}

pub(crate) async fn worker_deregister(b: &RedisBackend, id: &str) -> Result<()> {
    let mut p = redis::pipe();
    p.cmd("DEL")
        .arg(b.gk(&format!("w:{id}")))
        .ignore()
        .cmd("ZREM")
        .arg(b.gk("workers"))
        .arg(id)
        .ignore();
    b.pipeline::<()>(&p).await
}

/// The registered workers' ids, last seen first.
pub(crate) async fn worker_ids(b: &RedisBackend) -> Result<Vec<String>> {
    b.query(
        redis::cmd("ZREVRANGE")
            .arg(b.gk("workers"))
            .arg(0)
            .arg(-1)
            .clone(),
    )
    .await
}

pub(crate) async fn worker_list(b: &RedisBackend) -> Result<Vec<WorkerInfo>> {
    let ids = worker_ids(b).await?;
    // One pipeline for all records: every node's rescuer lists the workers each pass.
    let mut p = redis::pipe();
    for id in &ids {
        p.cmd("HMGET")
            .arg(b.gk(&format!("w:{id}")))
            .arg("info")
            .arg("seen")
            .arg("running");
    }
    let rows: Vec<Vec<Option<String>>> = if ids.is_empty() {
        Vec::new()
    } else {
        b.pipeline(&p).await?
    };
    let mut out = Vec::with_capacity(ids.len());
    for f in rows {
        let Some(json) = &f[0] else { continue };
        let mut info: WorkerInfo =
            serde_json::from_str(json).map_err(|e| Error::Storage(e.to_string()))?;
        if let Some(s) = f[1].as_ref().and_then(|s| s.parse().ok()) {
            info.last_seen_at = s;
        }
        if let Some(r) = f[2].as_ref().and_then(|s| s.parse().ok()) {
            info.running = r;
        }
        out.push(info);
    }
    out.sort_by_key(|w| std::cmp::Reverse(w.last_seen_at));
    Ok(out)
}

async fn leader_op(b: &RedisBackend, params: &LeaderParams, op: &str) -> Result<bool> {
    let key = b.gk(&format!("leader:{}", params.name));
    let mut args = Args::default();
    args.s(op)
        .s(&params.holder)
        .n(params.ttl.as_millis() as i64);
    // The leader script's KEYS[1] is the lease key itself (global slot).
    let v = b.eval_key(&scripts::LEADER, &key, b.now(), &args).await?;
    if op == "a" {
        b.query::<()>(
            redis::cmd("SADD")
                .arg(b.gk("leaders"))
                .arg(&params.name)
                .clone(),
        )
        .await?;
    }
    Ok(reply::int(&v)? == 1)
}

pub(crate) async fn leader_acquire(b: &RedisBackend, params: LeaderParams) -> Result<bool> {
    leader_op(b, &params, "a").await
}

pub(crate) async fn leader_renew(b: &RedisBackend, params: LeaderParams) -> Result<bool> {
    leader_op(b, &params, "n").await
}

pub(crate) async fn leader_release(b: &RedisBackend, params: LeaderParams) -> Result<()> {
    leader_op(b, &params, "r").await.map(|_| ())
}

pub(crate) async fn leader_get(b: &RedisBackend, name: &str) -> Result<Option<LeaderInfo>> {
    let f: Vec<Option<String>> = b
        .query(
            redis::cmd("HMGET")
                .arg(b.gk(&format!("leader:{name}")))
                .arg("h")
                .arg("x")
                .clone(),
        )
        .await?;
    match (&f[0], f[1].as_ref().and_then(|x| x.parse::<i64>().ok())) {
        (Some(h), Some(x)) if x > b.now() => Ok(Some(LeaderInfo {
            name: name.to_string(),
            holder: h.clone(),
            expires_at: x,
        })),
        _ => Ok(None),
    }
}
