//! `work_wait`: block until a queue may have work.
//!
//! Each queue has a wake stream (`<prefix>:{<queue>}:wake`, trimmed to about 100 entries) that every
//! script adding claimable or scheduled work appends to. A wait first runs the peek script,
//! which atomically says whether work is ready and returns each stream's last id and the
//! next due scheduled job; then it blocks in `XREAD` from those ids on a dedicated
//! connection. An enqueue after the peek has a larger stream id, so it wakes the reader at
//! once: no wake-up is lost between "nothing to claim" and "start waiting", and every
//! waiting process wakes (a stream read does not consume).

use std::time::Duration;

use quern::backend::WaitParams;
use quern::model::validate_queue_name;
use quern::{Error, Result};
use redis::Value;

use crate::backend::RedisBackend;
use crate::conn::{self, Conn};
use crate::eval::{Ack, Args};
use crate::{codec, reply, scripts};

/// Longest single block; longer waits return early (a spurious wake-up is allowed).
const MAX_BLOCK: Duration = Duration::from_secs(30);

/// `work_wait`: returns when a listed queue may have work, or after the timeout.
pub(crate) async fn wait(b: &RedisBackend, params: WaitParams) -> Result<()> {
    if params.queues.is_empty() {
        tokio::time::sleep(params.timeout).await;
        return Ok(());
    }
    for q in &params.queues {
        validate_queue_name(q)?;
    }
    let now = b.now();
    let mut block = params.timeout.min(MAX_BLOCK);
    // Peek: per slot group on Cluster, all at once on a single node.
    let mut streams: Vec<(String, String)> = Vec::new();
    for (q, members) in b.group_by_queue(&params.queues) {
        let mut args = Args::default();
        args.s(&codec::score_bound(params.more_urgent_than));
        for m in &members {
            args.s(&params.queues[*m]);
        }
        let r = reply::array(
            b.eval(&scripts::PEEK, Some(&q), now, &args, Ack::Primary)
                .await?,
        )?;
        if reply::int(&r[0])? == 1 {
            return Ok(());
        }
        let due = reply::string(r[1].clone())?;
        if let Ok(due) = due.parse::<i64>() {
            let until = Duration::from_millis((due - now).max(1) as u64);
            block = block.min(until);
        }
        for (m, id) in members.iter().zip(r.into_iter().skip(2)) {
            streams.push((params.queues[*m].clone(), reply::string(id)?));
        }
    }
    let block = block.max(Duration::from_millis(1));
    // Redis checks blocked clients' timeouts when its event loop wakes, which an idle server
    // does `hz` times a second (10 by default): an `XREAD BLOCK 50` returns after up to
    // 100 ms. A throttled queue's next token is a known time, so the wait ends on a local
    // timer; the read goes on in its own task and gives its connection back when Redis
    // answers, so a wake-up that comes first still ends the wait at once.
    let reader = {
        let b = b.clone();
        tokio::spawn(async move {
            if b.cluster() {
                // Streams of different queues live in different slots: one reader each.
                let reads = streams
                    .into_iter()
                    .map(|s| Box::pin(b.block_read(vec![s], block)));
                futures_select_ok(reads).await.0
            } else {
                b.block_read(streams, block).await
            }
        })
    };
    tokio::select! {
        r = reader => r.unwrap_or(Ok(())),
        _ = tokio::time::sleep(block) => Ok(()),
    }
}

impl RedisBackend {
    async fn block_read(&self, streams: Vec<(String, String)>, block: Duration) -> Result<()> {
        let idle = self.inner.blockers.lock().unwrap().pop();
        let mut conn = match idle {
            Some(c) => c,
            None => conn::dedicated(&self.inner.cfg, MAX_BLOCK).await?,
        };
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS");
        for (q, _) in &streams {
            cmd.arg(self.qk(q, "wake"));
        }
        for (_, id) in &streams {
            cmd.arg(id);
        }
        let r: std::result::Result<Value, _> = cmd.query_async(&mut conn).await;
        match r {
            Ok(_) => {
                self.give_back(conn);
                Ok(())
            }
            Err(e) => {
                // The connection reconnects on its next use; keep it unless it is broken.
                if !conn::is_transient(&e) {
                    self.give_back(conn);
                }
                let err = conn::map_err(e);
                // Do not spin while Redis is away: a short pause, then let the caller
                // retry its claim (which reports the outage if it lasts).
                tokio::time::sleep(block.min(Duration::from_millis(100))).await;
                match err {
                    Error::Unavailable(_) => Ok(()),
                    other => Err(other),
                }
            }
        }
    }

    fn give_back(&self, conn: Conn) {
        let mut b = self.inner.blockers.lock().unwrap();
        if b.len() < 64 {
            b.push(conn);
        }
    }
}

/// The first of several waits to finish (all are cancelled then).
async fn futures_select_ok<F>(futs: impl Iterator<Item = F>) -> (Result<()>, (), ())
where
    F: std::future::Future<Output = Result<()>> + Unpin,
{
    let futs: Vec<F> = futs.collect();
    if futs.is_empty() {
        return (Ok(()), (), ());
    }
    let (r, _, _) = futures::future::select_all(futs).await;
    (r, (), ())
}
