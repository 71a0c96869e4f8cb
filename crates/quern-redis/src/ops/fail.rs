//! `job_fail`. Each item is decided here: the ordinary actions (retry, dead, snooze,
//! cancel) go together through `fail.lua`; the workflow actions `Skip` and `Spawn` go one by
//! one through their own scripts (`wf_skip.lua`, `wf_spawn.lua`). The three paths are plain
//! functions that never call back into [`fail`], so the dependency goes one way.
//!
//! **Spawn** (`wf_spawn.lua`) stores the children, drops the parent from its old
//! dependencies' dependent sets, adds it to each child's, and rewrites the parent's
//! `dt dn dk db dl` to wait on them (`all_done`, counters counting children already
//! terminal); the field `sp` marks that `dl`/`dt` now override the dependencies in the job's
//! static blob (`codec.rs`). Settling a child is then the ordinary O(1) `finish()` step, so a
//! 10,000-wide fan-out or fan-in costs O(n) in total.

use quern::backend::*;
use quern::model::{ErrorKind, ErrorRecord};
use quern::{Error, Result};
use redis::Value;

use super::lease::{lost_or_ok, per_item};
use super::store;
use crate::backend::RedisBackend;
use crate::codec;
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// `job_fail`: the ordinary items in one batch, each workflow action on its own; results in
/// input order.
pub(crate) async fn fail(b: &RedisBackend, params: FailParams) -> Result<Vec<Result<()>>> {
    let mut plain = Vec::new();
    let mut plain_at = Vec::new();
    let mut out: Vec<Option<Result<()>>> = (0..params.items.len()).map(|_| None).collect();
    let mut actions = Vec::new();
    for (i, f) in params.items.into_iter().enumerate() {
        match script_action(&f.action) {
            Some(action) => {
                plain_at.push(i);
                plain.push((f, action));
            }
            None => actions.push((i, f)),
        }
    }
    if !plain.is_empty() {
        for (i, r) in plain_at.into_iter().zip(fail_plain(b, &plain).await?) {
            out[i] = Some(r);
        }
    }
    for (i, f) in actions {
        out[i] = Some(match f.action {
            FailAction::Spawn {
                children,
                checkpoint,
            } => spawn(b, &f.token, children, checkpoint).await?,
            _ => skip(b, f).await?,
        });
    }
    Ok(out
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Storage("item not handled".into()))))
        .collect())
}

/// The error-history line of a failure.
fn line_of(f: &Failure, kind: ErrorKind, now: i64) -> Result<String> {
    codec::error_line(&ErrorRecord {
        attempt: f.token.attempt,
        at: now,
        kind,
        message: f.message.clone(),
        claimed_at: None,
        due_at: None,
        retry_at: None,
    })
}

/// The action code and time `fail.lua` takes for an ordinary action (`r` retry at the time,
/// `''` meaning the policy gave up; `d` dead; `s` snooze until the time; `c` cancelled), or
/// `None` for a workflow action, which has a script of its own.
fn script_action(a: &FailAction) -> Option<(&'static str, Option<i64>)> {
    match a {
        FailAction::Retry { retry_at } => Some(("r", *retry_at)),
        FailAction::Dead => Some(("d", None)),
        FailAction::Snooze { run_at } => Some(("s", Some(*run_at))),
        FailAction::RateLimited { run_at } => Some(("l", Some(*run_at))),
        FailAction::Cancel => Some(("c", None)),
        FailAction::Skip | FailAction::Spawn { .. } => None,
    }
}

/// Retry, dead, snooze and cancel: all items in one `fail.lua` call per slot group, each
/// with its [`script_action`].
async fn fail_plain(
    b: &RedisBackend,
    items: &[(Failure, (&'static str, Option<i64>))],
) -> Result<Vec<Result<()>>> {
    let now = b.now();
    let lines = items
        .iter()
        .map(|(f, _)| line_of(f, f.error_kind, now))
        .collect::<Result<Vec<String>>>()?;
    let tokens: Vec<&LeaseToken> = items.iter().map(|(f, _)| &f.token).collect();
    let r = per_item(
        b,
        &scripts::FAIL,
        &tokens,
        |_| {},
        |i, a| {
            let (f, (code, at)) = &items[i];
            a.s(code);
            match at {
                Some(t) => a.n(*t),
                None => a.s(""),
            };
            a.s(&lines[i]);
            match f.started_at {
                Some(t) => a.n(t),
                None => a.s(""),
            };
        },
        Ack::Replicas,
    )
    .await?;
    Ok(lost_or_ok(b, r, &tokens))
}

/// One `Skip`: the job ends `skipped` and its dependents are settled as for a skip.
/// Outer `Err`: the call failed; inner: this item's answer.
async fn skip(b: &RedisBackend, f: Failure) -> Result<Result<()>> {
    let id = f.token.job_id;
    let Some(q) = b.queues_of(&[id]).await?.pop().flatten() else {
        return Ok(Err(Error::LeaseLost { job_id: id }));
    };
    let now = b.now();
    let mut head = Args::default();
    head.s(&q)
        .s(&id.to_string())
        .n(f.token.epoch as i64)
        .s(&line_of(&f, ErrorKind::Skipped, now)?);
    let v = b
        .eval(
            &scripts::WF_SKIP,
            Some(&q),
            now,
            &store::with_head(head, None),
            Ack::Replicas,
        )
        .await?;
    if reply::int(&v)? == 1 {
        b.forget_queue(&id);
        Ok(Ok(()))
    } else {
        Ok(Err(Error::LeaseLost { job_id: id }))
    }
}

/// One `Spawn`: the children are stored and the job waits for them in `blocked`.
/// Outer `Err`: the call failed; inner: this item's answer.
async fn spawn(
    b: &RedisBackend,
    token: &LeaseToken,
    children: Vec<quern::NewJob>,
    checkpoint: Option<quern::Payload>,
) -> Result<Result<()>> {
    let id = token.job_id;
    let lost = || Err(Error::LeaseLost { job_id: id });
    let Some(q) = b.queues_of(&[id]).await?.pop().flatten() else {
        return Ok(lost());
    };
    let now = b.now();
    if let Err(e) = b.inner.limits.check_stored(checkpoint.as_ref()) {
        return Ok(Err(e));
    }
    if let Err(e) = store::check_jobs(&children, &b.inner.limits) {
        return Ok(Err(e));
    }
    if let Some(i) = children.iter().position(|c| c.depends_on.contains(&id)) {
        return Ok(Err(Error::InvalidJob {
            index: Some(i),
            reason: format!("a child cannot depend on the job {id} that spawns it"),
        }));
    }
    if b.cluster()
        && let Err(e) = store::check_home(&q, &children, "a spawned child")
    {
        return Ok(Err(e));
    }
    let mut head = Args::default();
    head.s(&q).s(&id.to_string()).n(token.epoch as i64);
    match &checkpoint {
        Some(cp) => head.s("1").b(codec::encode_payload(cp)),
        None => head.s("0").s(""),
    };
    for c in &children {
        head.s(c.workflow_id.as_deref().unwrap_or(""));
    }
    let (out, indexed) = match store::eval_storing(
        b,
        &scripts::WF_SPAWN,
        Some(&q),
        &q,
        head,
        &children,
        now,
    )
    .await
    {
        Ok(r) => r,
        Err(e @ Error::InvalidJob { .. }) => return Ok(Err(e)),
        Err(e) => return Err(e),
    };
    let code = reply::int(&out[0])?;
    if code != 1 {
        store::unindex(b, &indexed).await;
    }
    let mut it = out.into_iter().skip(1);
    match code {
        1 => {
            b.forget_queue(&id);
            Ok(Ok(()))
        }
        0 => Ok(lost()),
        _ => {
            let idx = it.next().unwrap_or(Value::Nil);
            Ok(Err(store::refused_job(
                &idx,
                it.next().unwrap_or(Value::Nil),
            )?))
        }
    }
}
