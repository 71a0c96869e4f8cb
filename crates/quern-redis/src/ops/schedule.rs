//! Recurring schedules: upsert, get, list, delete, pause, resume, fire, runs.
//!
//! **Where a schedule lives.** `schedule_fire` enqueues the tick's job in the same atomic
//! step as its check-and-record, and a script stays in one slot on Cluster, so a schedule's
//! state sits in the slot of its template's queue: `{q}:cron:<name>` (hash: `sp` spec JSON,
//! `v` revision, `pa` paused, `c`/`u` created/updated, `w` watermark, `n` runs, `lt`/`lj`
//! last tick and job, `lim` the run limit, `hs` the history's sequence number; `mv`/`mvs`/`mk`
//! while it moves, see below), `{q}:cronh:<name>` (zset: the run history scored by tick) and
//! `{q}:crons` (set: the names stored in this slot, for `destroy_all_keys`). The global index
//! `{#}:cron` maps each name to its queue (get, list and delete find a schedule by name
//! through it) and `{#}:cronqs` lists the queues that ever held one.
//!
//! **Write order.** The index is in the global slot, so on Cluster it is written by its own
//! command; the index names the authoritative copy and every reader goes through it.
//! - Create: `HSETNX` the index entry first, then the upsert script (which starts afresh over
//!   a copy a crashed move left in that slot, still marked as moving). A crash between the two leaves
//!   an entry naming a queue that holds nothing: get and list read `None` there, delete drops
//!   the entry, the next upsert creates the schedule.
//! - Delete: the schedule's keys first, then the index entry (only if it still names that
//!   queue). A crash between them leaves the same harmless entry.
//! - A changed template queue moves the schedule (runs, watermark, `last_*`, history) to the
//!   new queue's slot in two steps, each atomic, with the index switched between them:
//!   1. *copy*: `cron_fence.lua` marks the old copy as moving (target, new spec, a move
//!      token) and returns its state — from then on it refuses fires ("moving", answered
//!      `Stale`), so the snapshot is final — and `cron_upsert.lua` writes the snapshot into
//!      the new slot with the token and applies the new spec (revision + 1);
//!   2. *switch*: the index entry is pointed at the new queue, then `cron_delete.lua` deletes
//!      the old copy if it is still moving with that token.
//!
//!   A crash after the fence leaves the old copy (still what the index names) marked as
//!   moving: whoever next reads it through the index (get, list, pause, resume, fire, delete)
//!   finishes the move from what the mark carries, and a copy the crashed move had written
//!   in the new slot is recognised by its token and kept. A crash after the switch leaves the
//!   old copy behind, still marked; nothing reads it (the index names the new queue) and
//!   `destroy_all_keys` finds it through `{q}:crons`. Movers that race share the first
//!   mover's token (the fence keeps it when target and spec agree).
//!
//! The same steps run on a single node (one code path for both).

use quern::backend::*;
use quern::model::{RunKind, ScheduleRun, ScheduleSpec, StoredSchedule};
use quern::{Error, JobId, Result};
use redis::Value;

use super::store::{self, Indexed};
use crate::backend::RedisBackend;
use crate::codec::Fields;
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// How often a call that finds a schedule moving (or its index entry changing under it)
/// reads the index again before giving up.
const ATTEMPTS: usize = 4;

/// The fields of a copy that belong to a move in progress, not to the schedule.
const MOVE_FIELDS: [&str; 3] = ["mv", "mvs", "mk"];

fn corrupt(name: &str, what: &str) -> Error {
    Error::Storage(format!("corrupt schedule {name:?}: {what}"))
}

/// The global index: schedule name → queue.
fn index_key(b: &RedisBackend) -> String {
    b.gk("cron")
}

/// The queue the index names for `name`.
async fn home(b: &RedisBackend, name: &str) -> Result<Option<String>> {
    b.query(redis::cmd("HGET").arg(index_key(b)).arg(name).clone())
        .await
}

/// The spec as stored (its JSON, compared as text for "the same spec changes nothing":
/// serde_json of the struct is deterministic) and its run limit.
fn spec_json(spec: &ScheduleSpec) -> Result<String> {
    serde_json::to_string(spec).map_err(|e| Error::Codec(e.to_string()))
}

fn text(f: &Fields, k: &str) -> Option<String> {
    f.get(k).map(|v| String::from_utf8_lossy(v).into_owned())
}

fn num(name: &str, f: &Fields, k: &str) -> Result<Option<i64>> {
    match text(f, k) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| corrupt(name, k)),
    }
}

fn need(name: &str, f: &Fields, k: &str) -> Result<i64> {
    num(name, f, k)?.ok_or_else(|| corrupt(name, k))
}

/// Rebuilds a schedule from its hash.
fn decode(name: &str, f: &Fields) -> Result<StoredSchedule> {
    let spec: ScheduleSpec = match f.get("sp") {
        Some(b) => serde_json::from_slice(b).map_err(|_| corrupt(name, "sp"))?,
        None => return Err(corrupt(name, "sp")),
    };
    let last_job = match text(f, "lj") {
        Some(s) => Some(s.parse::<JobId>().map_err(|_| corrupt(name, "lj"))?),
        None => None,
    };
    Ok(StoredSchedule {
        spec,
        paused: text(f, "pa").as_deref() == Some("1"),
        revision: need(name, f, "v")? as u64,
        created_at: need(name, f, "c")?,
        updated_at: need(name, f, "u")?,
        watermark: need(name, f, "w")?,
        runs: need(name, f, "n")? as u64,
        last_tick: num(name, f, "lt")?,
        last_job,
    })
}

/// One history member: `seq tick fired_at kind job` (see `cron_fire.lua`).
fn decode_run(name: &str, member: Value) -> Result<ScheduleRun> {
    let s = reply::string(member)?;
    let bad = || corrupt(name, "history");
    let mut it = s.split(' ').skip(1);
    let mut next = || it.next().ok_or_else(bad);
    let tick = next()?.parse().map_err(|_| bad())?;
    let fired_at = next()?.parse().map_err(|_| bad())?;
    let kind = RunKind::from_code(next()?.parse().map_err(|_| bad())?)?;
    let job_id = match next()? {
        "-" => None,
        id => Some(id.parse().map_err(|_| bad())?),
    };
    Ok(ScheduleRun {
        tick,
        fired_at,
        kind,
        job_id,
    })
}

/// A schedule's copy in one slot, as read by `cron_get.lua`.
struct Copy {
    fields: Fields,
    runs: Vec<Value>,
}

impl Copy {
    /// The move this copy is marked with: target queue, spec JSON and token.
    fn moving(&self) -> Option<(String, String, String)> {
        Some((
            text(&self.fields, "mv")?,
            text(&self.fields, "mvs")?,
            text(&self.fields, "mk")?,
        ))
    }
}

/// Reads the copy of `name` in queue `q`'s slot with up to `runs` history entries.
async fn read(b: &RedisBackend, q: &str, name: &str, runs: usize) -> Result<Option<Copy>> {
    let mut args = Args::default();
    args.s(q).s(name).n(runs as i64);
    let out = reply::array(
        b.eval(&scripts::CRON_GET, Some(q), b.now(), &args, Ack::Primary)
            .await?,
    )?;
    let mut it = out.into_iter();
    let Some(f) = it.next() else {
        return Ok(None);
    };
    Ok(Some(Copy {
        fields: reply::fields_from_value(f)?,
        runs: reply::array(it.next().unwrap_or(Value::Nil))?,
    }))
}

/// The copy the index names for `name` and its queue, finishing a move a crash left half
/// done first; `None` when there is no such schedule.
async fn find(b: &RedisBackend, name: &str, runs: usize) -> Result<Option<(String, Copy)>> {
    for _ in 0..ATTEMPTS {
        let Some(q) = home(b, name).await? else {
            return Ok(None);
        };
        let Some(copy) = read(b, &q, name, runs).await? else {
            return Ok(None);
        };
        match copy.moving() {
            None => return Ok(Some((q, copy))),
            Some((to, spec, token)) => {
                relocate(b, name, &q, &to, &spec, &token).await?;
            }
        }
    }
    Err(moving_too_long(name))
}

fn moving_too_long(name: &str) -> Error {
    Error::Conflict(format!(
        "schedule {name:?} kept moving between queues; try again"
    ))
}

/// `{code, HGETALL}` of the upsert and pause scripts.
fn coded(name: &str, out: Value) -> Result<(i64, StoredSchedule)> {
    let out = reply::array(out)?;
    let mut it = out.into_iter();
    let code = reply::int(&it.next().ok_or_else(|| corrupt(name, "reply"))?)?;
    let f = reply::fields_from_value(it.next().unwrap_or(Value::Nil))?;
    Ok((code, decode(name, &f)?))
}

/// What `cron_upsert.lua` is asked to write first: a move's snapshot, or nothing.
enum Base<'a> {
    /// Store the spec over what is there (`fresh`: the caller just created the index
    /// entry, so a copy in this slot still marked as moving is an orphan of a crash).
    Plain { fresh: bool },
    /// A move's snapshot (fields without the move marks, history members), with its token.
    Snapshot {
        token: &'a str,
        fields: Vec<(String, Vec<u8>)>,
        history: Vec<Value>,
    },
}

/// Runs `cron_upsert.lua` in `q`'s slot. Registers the slot in `{#}:cronqs` first (for
/// `destroy_all_keys` on Cluster).
async fn upsert_in(
    b: &RedisBackend,
    q: &str,
    name: &str,
    spec: &str,
    limit: Option<u64>,
    base: Base<'_>,
) -> Result<ScheduleUpserted> {
    b.query::<()>(redis::cmd("SADD").arg(b.gk("cronqs")).arg(q).clone())
        .await?;
    let mut args = Args::default();
    args.s(q).s(name).s(spec);
    match limit {
        Some(l) => args.n(l as i64),
        None => args.s(""),
    };
    match base {
        Base::Plain { fresh } => {
            args.s(if fresh { "1" } else { "0" }).s("").n(0);
        }
        Base::Snapshot {
            token,
            fields,
            history,
        } => {
            args.s("0").s(token).n(fields.len() as i64);
            for (k, v) in fields {
                args.s(&k).b(v);
            }
            for m in history {
                args.b(reply::bulk_bytes(m)?);
            }
        }
    }
    let out = b
        .eval(
            &scripts::CRON_UPSERT,
            Some(q),
            b.now(),
            &args,
            Ack::Replicas,
        )
        .await?;
    let (code, schedule) = coded(name, out)?;
    Ok(ScheduleUpserted {
        schedule,
        created: code == 1,
        changed: code != 0,
    })
}

/// Moves schedule `name` from queue `from` to `to` with the new spec `spec` (JSON), the
/// steps described in the module comment. `None` when `from` holds no copy (the index was
/// stale or another caller finished the move).
async fn relocate(
    b: &RedisBackend,
    name: &str,
    from: &str,
    to: &str,
    spec: &str,
    token: &str,
) -> Result<Option<ScheduleUpserted>> {
    let parsed: ScheduleSpec = serde_json::from_str(spec).map_err(|_| corrupt(name, "mvs"))?;
    let now = b.now();
    // 1. Copy: fence the old copy and take its snapshot, then write it in the new slot.
    let mut args = Args::default();
    args.s(from).s(name).s(to).s(spec).s(token);
    let out = reply::array(
        b.eval(&scripts::CRON_FENCE, Some(from), now, &args, Ack::Replicas)
            .await?,
    )?;
    let mut it = out.into_iter();
    let Some(token) = it.next() else {
        return Ok(None);
    };
    let token = reply::string(token)?;
    let fields: Vec<(String, Vec<u8>)> = reply::fields_from_value(it.next().unwrap_or(Value::Nil))?
        .into_iter()
        .filter(|(k, _)| !MOVE_FIELDS.contains(&k.as_str()))
        .collect();
    let history = reply::array(it.next().unwrap_or(Value::Nil))?;
    let up = upsert_in(
        b,
        to,
        name,
        spec,
        parsed.limit,
        Base::Snapshot {
            token: &token,
            fields,
            history,
        },
    )
    .await?;
    // 2. Switch: the index names the new copy, then the old one goes.
    b.query::<()>(
        redis::cmd("HSET")
            .arg(index_key(b))
            .arg(name)
            .arg(to)
            .clone(),
    )
    .await?;
    drop_copy(b, from, name, &token, true).await?;
    Ok(Some(up))
}

/// Runs `cron_delete.lua`: the copy of `name` in `q`'s slot (`token` non-empty: only one
/// carrying it; `moving_only`: and still marked as moving). Returns its fields if deleted.
async fn drop_copy(
    b: &RedisBackend,
    q: &str,
    name: &str,
    token: &str,
    moving_only: bool,
) -> Result<Option<Fields>> {
    let mut args = Args::default();
    args.s(q)
        .s(name)
        .s(token)
        .s(if moving_only { "1" } else { "0" });
    let out = reply::array(
        b.eval(
            &scripts::CRON_DELETE,
            Some(q),
            b.now(),
            &args,
            Ack::Replicas,
        )
        .await?,
    )?;
    match out.into_iter().next() {
        Some(f) => Ok(Some(reply::fields_from_value(f)?)),
        None => Ok(None),
    }
}

pub(crate) async fn upsert(b: &RedisBackend, p: ScheduleUpsertParams) -> Result<ScheduleUpserted> {
    p.spec.validate()?;
    let spec = spec_json(&p.spec)?;
    let q = p.spec.job.queue.as_str();
    let name = p.spec.name.as_str();
    for _ in 0..ATTEMPTS {
        match home(b, name).await? {
            None => {
                let fresh: bool = b
                    .query(
                        redis::cmd("HSETNX")
                            .arg(index_key(b))
                            .arg(name)
                            .arg(q)
                            .clone(),
                    )
                    .await?;
                if fresh {
                    return upsert_in(b, q, name, &spec, p.spec.limit, Base::Plain { fresh }).await;
                }
                // Another caller created it just now: read the index again.
            }
            Some(cur) if cur == q => {
                return upsert_in(
                    b,
                    q,
                    name,
                    &spec,
                    p.spec.limit,
                    Base::Plain { fresh: false },
                )
                .await;
            }
            Some(from) => {
                let token = format!("{:016x}", fastrand::u64(..));
                if let Some(up) = relocate(b, name, &from, q, &spec, &token).await? {
                    return Ok(up);
                }
                // Nothing in `from`: another mover finished first, or the entry was stale
                // (a crash after a create's index write). Point a stale entry here and go
                // round again (then the upsert creates the schedule).
                if home(b, name).await?.as_deref() == Some(from.as_str()) {
                    b.query::<()>(
                        redis::cmd("HSET")
                            .arg(index_key(b))
                            .arg(name)
                            .arg(q)
                            .clone(),
                    )
                    .await?;
                }
            }
        }
    }
    Err(moving_too_long(name))
}

pub(crate) async fn get(b: &RedisBackend, name: &str) -> Result<Option<StoredSchedule>> {
    match find(b, name, 0).await? {
        Some((_, copy)) => decode(name, &copy.fields).map(Some),
        None => Ok(None),
    }
}

pub(crate) async fn list(b: &RedisBackend) -> Result<Vec<StoredSchedule>> {
    let mut names: Vec<String> = b
        .query(redis::cmd("HKEYS").arg(index_key(b)).clone())
        .await?;
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if let Some(s) = get(b, &name).await? {
            out.push(s);
        }
    }
    Ok(out)
}

pub(crate) async fn delete(b: &RedisBackend, name: &str) -> Result<Option<StoredSchedule>> {
    let Some(q) = home(b, name).await? else {
        return Ok(None);
    };
    let gone = drop_copy(b, &q, name, "", false).await?;
    // The keys first, then the entry (only if it still names `q`): a crash between them
    // leaves an entry naming nothing, which every call treats as no schedule.
    let mut args = Args::default();
    args.s(name).s(&q);
    b.eval_key(&scripts::CRON_UNINDEX, &index_key(b), b.now(), &args)
        .await?;
    let Some(f) = gone else {
        return Ok(None);
    };
    if let (Some(to), Some(token)) = (text(&f, "mv"), text(&f, "mk")) {
        // It was moving: a copy the move wrote in the target slot goes too.
        drop_copy(b, &to, name, &token, false).await?;
    }
    decode(name, &f).map(Some)
}

/// `schedule_pause` (`pause`) and `schedule_resume`.
pub(crate) async fn pause(b: &RedisBackend, name: &str, pause: bool) -> Result<StoredSchedule> {
    for _ in 0..ATTEMPTS {
        let Some(q) = home(b, name).await? else {
            return Err(Error::ScheduleNotFound(name.into()));
        };
        let mut args = Args::default();
        args.s(&q).s(name).s(if pause { "1" } else { "0" });
        let out = reply::array(
            b.eval(
                &scripts::CRON_PAUSE,
                Some(&q),
                b.now(),
                &args,
                Ack::Replicas,
            )
            .await?,
        )?;
        match out.first() {
            None => return Err(Error::ScheduleNotFound(name.into())),
            Some(c) if reply::int(c)? == 2 => {
                // Moving: finish the move (from the mark), then pause the new copy.
                find(b, name, 0).await?;
            }
            Some(_) => return Ok(coded(name, Value::Array(out))?.1),
        }
    }
    Err(moving_too_long(name))
}

pub(crate) async fn runs(b: &RedisBackend, p: ScheduleRunsParams) -> Result<Vec<ScheduleRun>> {
    let n = p.limit.min(ScheduleRun::HISTORY);
    let Some((_, copy)) = find(b, &p.name, n).await? else {
        return Err(Error::ScheduleNotFound(p.name));
    };
    copy.runs
        .into_iter()
        .map(|m| decode_run(&p.name, m))
        .collect()
}

/// Checks a fire's arguments that need no store: the kind asked for and whether it carries
/// a job, and the job as the normal enqueue checks it.
fn check_fire(b: &RedisBackend, p: &ScheduleFireParams) -> Result<()> {
    let wants_job = match p.kind {
        RunKind::Scheduled | RunKind::Manual => true,
        RunKind::SkippedOverlap => false,
        RunKind::Duplicate => {
            return Err(Error::InvalidArgument(
                "a duplicate run is recorded by the store, not asked for".into(),
            ));
        }
    };
    match (&p.job, wants_job) {
        (None, true) => Err(Error::InvalidArgument(format!(
            "a {} run needs its job",
            p.kind.as_str()
        ))),
        (Some(_), false) => Err(Error::InvalidArgument(format!(
            "a {} run has no job",
            p.kind.as_str()
        ))),
        (Some(job), true) => store::check_job(0, job, &b.inner.limits),
        (None, false) => Ok(()),
    }
}

pub(crate) async fn fire(b: &RedisBackend, p: ScheduleFireParams) -> Result<FireOutcome> {
    check_fire(b, &p)?;
    let manual = p.kind == RunKind::Manual;
    for _ in 0..ATTEMPTS {
        let Some(q) = home(b, &p.name).await? else {
            return Err(Error::ScheduleNotFound(p.name));
        };
        match fire_in(b, &q, &p, manual).await? {
            Some(out) => return Ok(out),
            None if manual => {
                // Moving: finish the move, then record the manual run in the new copy.
                find(b, &p.name, 0).await?;
            }
            None => {
                // The caller's revision is that of the copy being moved: stale once moved.
                find(b, &p.name, 0).await?;
                return Ok(FireOutcome::Stale);
            }
        }
    }
    Err(moving_too_long(&p.name))
}

/// One `cron_fire.lua` call in `q`'s slot; `None` when the schedule is being moved.
async fn fire_in(
    b: &RedisBackend,
    q: &str,
    p: &ScheduleFireParams,
    manual: bool,
) -> Result<Option<FireOutcome>> {
    // A job outside the template's queue is refused; for a scheduled run the script checks
    // the revision first, so a caller that computed it before the queue changed hears
    // `Stale` (re-read and decide again), not a refusal.
    let elsewhere = p
        .job
        .as_ref()
        .filter(|j| j.queue != q)
        .map(|j| j.queue.clone());
    let refuse = |job_queue: &str| {
        Error::InvalidArgument(format!(
            "the job of schedule {:?} is in queue {job_queue:?}, not in its template's queue {q:?}",
            p.name
        ))
    };
    if let Some(jq) = &elsewhere
        && manual
    {
        return Err(refuse(jq));
    }
    let now = b.now();
    let mut head = Args::default();
    head.s(q)
        .s(&p.name)
        .n(p.revision as i64)
        .n(p.tick)
        .n(p.kind.code())
        .s(if manual { "0" } else { "1" })
        .n(ScheduleRun::HISTORY as i64)
        .s(if elsewhere.is_some() { "1" } else { "0" });
    let job = p.job.as_ref().filter(|_| elsewhere.is_none());
    let jobs: Vec<_> = job.into_iter().cloned().collect();
    // On Cluster the job's id is claimed in the global id index first, as for every stored
    // job, and dropped again when the script stores nothing under it.
    let mut indexed = Vec::new();
    if b.cluster()
        && let Some(job) = job
    {
        match store::index_ids(b, q, &[job.id], now).await?.pop() {
            Some(Indexed::New) => indexed.push(job.id),
            Some(Indexed::Elsewhere(other)) => return Err(store::id_taken(0, job.id, &other)),
            _ => {}
        }
    }
    let args = store::with_head(head, store::enqueue_part(&jobs, now)?);
    let out = b
        .eval(&scripts::CRON_FIRE, Some(q), now, &args, Ack::Replicas)
        .await;
    let out = match out.and_then(reply::array) {
        Ok(v) => v,
        // The script may have run: keep the index entry (a stale one is harmless).
        Err(e) => return Err(e),
    };
    let code = reply::int(out.first().ok_or_else(|| corrupt(&p.name, "fire reply"))?)?;
    let answer = match code {
        0 => {
            let id: JobId = reply::string(out.get(1).cloned().unwrap_or(Value::Nil))?.parse()?;
            let duplicate = reply::int(out.get(2).unwrap_or(&Value::Int(0)))? == 1;
            if !duplicate {
                indexed.clear();
            }
            Some(FireOutcome::Fired {
                job_id: id,
                duplicate,
            })
        }
        1 => Some(FireOutcome::Skipped),
        2 => Some(FireOutcome::AlreadyFired),
        3 => Some(FireOutcome::Paused),
        4 => Some(FireOutcome::Ended),
        5 => Some(FireOutcome::Stale),
        6 => {
            store::unindex(b, &indexed).await;
            return Err(Error::ScheduleNotFound(p.name.clone()));
        }
        7 => {
            store::unindex(b, &indexed).await;
            return Err(Error::InvalidJob {
                index: Some(0),
                reason: reply::string(out.get(1).cloned().unwrap_or(Value::Nil))?,
            });
        }
        8 => None,
        9 => return Err(refuse(elsewhere.as_deref().unwrap_or_default())),
        other => return Err(corrupt(&p.name, &format!("fire reply code {other}"))),
    };
    store::unindex(b, &indexed).await;
    Ok(answer)
}
