//! How commands and scripts are sent: [`RedisBackend::query`] for one command,
//! [`RedisBackend::eval`] for a script in a queue's slot (or the global one),
//! [`RedisBackend::eval_key`] for a script on one named key. Every call retries transient
//! failures; a script is called by SHA and loaded again after `NOSCRIPT` (a restarted or
//! failed-over server has an empty script cache).

use quern::{Error, Result};
use redis::{ErrorKind, RedisError, Script, ServerErrorKind, Value};

use crate::backend::RedisBackend;
use crate::config::Durability;
use crate::conn::{Conn, retrying};

/// Which copies must have a script's writes before the call answers.
///
/// With `durability=replicated`, a transition a caller acts on once it is answered (enqueue,
/// complete, fail, cancel, retry, rescue, the workflow changes) waits for the configured
/// replicas with `WAIT`. Reads, and writes whose loss in a failover only repeats work (a
/// claim: its job is rescued; a heartbeat; a release; prune, pause), answer as soon as the
/// primary has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ack {
    /// Wait for the replicas when the URL asks for `durability=replicated`.
    Replicas,
    /// The primary's copy is enough.
    Primary,
}

impl RedisBackend {
    /// Runs one command, retrying transient failures.
    pub(crate) async fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T> {
        retrying(&self.inner.conn, self.inner.cfg.retry_for, async |mut c| {
            cmd.query_async::<T>(&mut c).await
        })
        .await
    }

    /// Runs a pipeline, retrying transient failures.
    pub(crate) async fn pipeline<T: redis::FromRedisValue>(
        &self,
        p: &redis::Pipeline,
    ) -> Result<T> {
        retrying(&self.inner.conn, self.inner.cfg.retry_for, async |mut c| {
            p.query_async::<T>(&mut c).await
        })
        .await
    }

    /// Calls a script. `queue` names the queue whose slot the script runs in (`None`: the
    /// global slot). With `durability = replicated` and [`Ack::Replicas`], the call also
    /// waits for the configured replicas to have the write.
    pub(crate) async fn eval(
        &self,
        script: &Script,
        queue: Option<&str>,
        now: i64,
        args: &Args,
        ack: Ack,
    ) -> Result<Value> {
        let slot_key = match queue {
            Some(q) => self.qk(q, "ids"),
            None => self.gk("queues"),
        };
        // Sized up front: a batch enqueue's command is hundreds of KiB, and growing it by
        // doubling copied it several times (a tenth of the client's time in a profile).
        let data: usize = args.0.iter().map(Vec::len).sum::<usize>() + slot_key.len() + 128;
        let mut cmd = redis::Cmd::with_capacity(args.0.len() + 7, data);
        let now = now_arg(now);
        cmd.arg("EVALSHA")
            .arg(script.get_hash())
            .arg(1)
            .arg(&slot_key)
            .arg(&self.inner.cfg.prefix)
            .arg(if self.cluster() { "1" } else { "0" })
            .arg(now);
        for a in &args.0 {
            cmd.arg(a.as_slice());
        }
        let wait = ack == Ack::Replicas && self.inner.cfg.durability == Durability::Replicated;
        let (replicas, timeout) = (
            self.inner.cfg.replicas,
            self.inner.cfg.wait_timeout.as_millis() as u64,
        );
        let single = !self.cluster();
        let (value, acked) = retrying(&self.inner.conn, self.inner.cfg.retry_for, async |mut c| {
            let run = async |c: &mut Conn| -> Result<(Value, i64), RedisError> {
                if wait && single {
                    // One round trip, on the connection that wrote: WAIT counts this
                    // client's writes.
                    let mut p = redis::pipe();
                    p.add_command(cmd.clone())
                        .cmd("WAIT")
                        .arg(replicas)
                        .arg(timeout);
                    let (v, n): (Value, i64) = p.query_async(c).await?;
                    Ok((v, n))
                } else {
                    let v: Value = cmd.query_async(c).await?;
                    if wait {
                        let n: i64 = redis::cmd("WAIT")
                            .arg(replicas)
                            .arg(timeout)
                            .query_async(c)
                            .await?;
                        Ok((v, n))
                    } else {
                        Ok((v, i64::MAX))
                    }
                }
            };
            match run(&mut c).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    script.load_async(&mut c).await?;
                    run(&mut c).await
                }
                other => other,
            }
        })
        .await?;
        if let Value::ServerError(e) = &value {
            return Err(Error::Storage(format!("redis script failed: {e:?}")));
        }
        if acked < i64::from(replicas) {
            return Err(Error::Unavailable(format!(
                "the write was applied on the primary but only {acked} of {replicas} replica(s) confirmed it within {timeout} ms"
            )));
        }
        Ok(value)
    }

    /// Like `eval` but with an explicit KEYS[1] (for scripts on a global key).
    pub(crate) async fn eval_key(
        &self,
        script: &redis::Script,
        key: &str,
        now: i64,
        args: &Args,
    ) -> Result<Value> {
        let mut inv = script.prepare_invoke();
        let now = now_arg(now);
        inv.key(key)
            .arg(&self.inner.cfg.prefix)
            .arg(if self.cluster() { "1" } else { "0" })
            .arg(now);
        for a in &args.0 {
            inv.arg(a.as_slice());
        }
        retrying(&self.inner.conn, self.inner.cfg.retry_for, async |mut c| {
            inv.invoke_async::<Value>(&mut c).await
        })
        .await
    }
}

/// The `now` argument of every script: the time, then `|` and the actor of the job events
/// the call appends when one is set (`quern::model::with_actor`; `lua/lib.lua` splits it),
/// so no script needs an argument of its own for it.
fn now_arg(now: i64) -> String {
    match quern::model::current_actor_stored() {
        Some(a) => format!("{now}|{a}"),
        None => now.to_string(),
    }
}

/// Script arguments after the common prefix / cluster / now.
#[derive(Default, Debug)]
pub(crate) struct Args(pub(crate) Vec<Vec<u8>>);

impl Args {
    pub(crate) fn s(&mut self, v: &str) -> &mut Self {
        self.0.push(v.as_bytes().to_vec());
        self
    }
    pub(crate) fn n(&mut self, v: i64) -> &mut Self {
        self.0.push(v.to_string().into_bytes());
        self
    }
    pub(crate) fn b(&mut self, v: Vec<u8>) -> &mut Self {
        self.0.push(v);
        self
    }
}
