//! How a job is stored: one Redis hash per job.
//!
//! Fields the scripts read or change are small separate fields (`s` state, `p` priority,
//! `m` max attempts, `r` run_at, `c` created_at, `e` epoch, `a` attempt, `k` claimed_at, `t` started_at,
//! `f` finished_at, `lw`/`lx` lease worker and deadline, `u`/`ux` unique key and window end,
//! `dt`/`dn`/`dk`/`db`/`dl` dependency trigger, count, successes, failures, list). What no
//! script needs is one opaque field `d`, written once at enqueue: a version byte, the
//! payload (tag + length + bytes) and a compact JSON of the remaining fields. Results and
//! checkpoints are `res` / `cp` (payload tag byte + bytes), progress `pg` (JSON), the error
//! history `er` (JSON lines). `sp` marks a job that spawned children: its `dl`/`dt` then
//! replace the dependencies and trigger of the static blob. `g` is the job's group (absent:
//! none).

use std::collections::HashMap;
use std::time::Duration;

use quern::model::{ErrorRecord, Lease, Progress, truncate_error_message};
use quern::{Error, Job, JobId, JobState, NewJob, Payload, Priority, RetryPolicy, Trigger};
use serde::{Deserialize, Serialize};

const STATIC_V1: u8 = 1;

/// The fields of a job kept as JSON (short names, defaults left out). `k` stays first:
/// `static_kind` in lua/lib.lua reads the kind in place.
#[derive(Serialize, Deserialize, Default)]
struct Rest {
    k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rt: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uf: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dp: Vec<JobId>,
    #[serde(default, skip_serializing_if = "is_default_trigger")]
    tr: Trigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wf: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tg: Vec<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    mt: serde_json::Value,
    #[serde(default, skip_serializing_if = "is_zero")]
    v: u32,
    /// The job's own result retention in ms (`NewJob::result_ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rl: Option<u64>,
    /// The W3C trace context (`NewJob::trace`): `traceparent` and `tracestate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ts: Option<String>,
}

fn is_default_trigger(t: &Trigger) -> bool {
    *t == Trigger::AllSuccess
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Encodes the `d` field of a new job.
pub(crate) fn encode_static(job: &NewJob) -> Result<Vec<u8>, Error> {
    let rest = Rest {
        k: job.kind.clone(),
        rt: job.retry.clone(),
        to: job.timeout.map(|d| d.as_millis() as u64),
        uk: job.unique_key.clone(),
        uf: job.unique_for.map(|d| d.as_millis() as u64),
        dp: job.depends_on.clone(),
        tr: job.trigger,
        wf: job.workflow_id.clone(),
        tg: job.tags.clone(),
        mt: job.meta.clone(),
        v: job.version,
        rl: job.result_ttl.map(|d| d.as_millis() as u64),
        tp: job.trace.as_ref().map(|t| t.traceparent.clone()),
        ts: job.trace.as_ref().and_then(|t| t.tracestate.clone()),
    };
    let json = serde_json::to_vec(&rest).map_err(|e| Error::Codec(e.to_string()))?;
    let p = job.payload.stored_bytes();
    let mut out = Vec::with_capacity(6 + p.len() + json.len());
    out.push(STATIC_V1);
    out.push(job.payload.tag());
    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
    out.extend_from_slice(p);
    out.extend_from_slice(&json);
    Ok(out)
}

/// A payload in its stored form: the tag byte, then the bytes.
pub(crate) fn encode_payload(p: &Payload) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + p.stored_bytes().len());
    out.push(p.tag());
    out.extend_from_slice(p.stored_bytes());
    out
}

fn decode_payload(b: &[u8]) -> Result<Payload, Error> {
    let (tag, rest) = b
        .split_first()
        .ok_or_else(|| Error::Storage("empty stored payload".into()))?;
    Payload::from_stored(*tag, rest.to_vec())
}

fn corrupt(what: &str) -> Error {
    Error::Storage(format!("corrupt job hash: {what}"))
}

/// The raw fields of a job hash (HGETALL). Keys are the short field names of this module, so
/// a fast non-cryptographic hash is enough (SipHash showed in profiles of a draining worker).
pub(crate) type Fields = HashMap<String, Vec<u8>, foldhash::fast::RandomState>;

/// An empty `Fields` with room for `n` fields.
pub(crate) fn fields_with_capacity(n: usize) -> Fields {
    Fields::with_capacity_and_hasher(n, Default::default())
}

/// Names of the blob chunk fields, `d0` to `d16` (a blob over 1 KiB is one field, `d0`).
const CHUNK_NAMES: [&str; 17] = [
    "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d11", "d12", "d13", "d14",
    "d15", "d16",
];

/// The static blob as the fields `d0…` hold it (the layout `hset_static` in `lua/lib.lua`
/// writes): 64-byte chunks, so the job hash stays a compact listpack (Redis's default
/// `hash-max-listpack-value`), or the whole blob in `d0` above 1 KiB. Never empty.
pub(crate) fn static_chunks(blob: &[u8]) -> Vec<&[u8]> {
    if blob.len() > 1024 || blob.is_empty() {
        vec![blob]
    } else {
        blob.chunks(64).collect()
    }
}

/// A queued job's score in its queue's ready set: priority in the high bits, then run_at
/// (ms, at least 0), so the set orders by (priority, run_at) and ties fall to the id. The
/// same as `score` in `lua/lib.lua`, which the other scripts use (a unit test checks the
/// constant).
pub(crate) fn ready_score(priority: u8, run_at: i64) -> i64 {
    (i64::from(priority) << 48) + run_at.max(0)
}

/// The ready-set score below which every job is more urgent than `p` (claim.lua and
/// peek.lua take only those), or `""` for no bound.
pub(crate) fn score_bound(p: Option<quern::Priority>) -> String {
    p.map(|p| ready_score(p.get(), 0).to_string())
        .unwrap_or_default()
}

fn text<'a>(f: &'a Fields, k: &str) -> Option<&'a str> {
    f.get(k).and_then(|v| std::str::from_utf8(v).ok())
}

fn num(f: &Fields, k: &str) -> Result<Option<i64>, Error> {
    match text(f, k) {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| corrupt(k)),
    }
}

/// Reassembles the static blob from its 64-byte fields `d0…`, up to the first missing one
/// (see `hset_static` in `lua/lib.lua`; the chunk count `dc` of older hashes is not needed).
fn static_blob(f: &Fields) -> Result<Vec<u8>, Error> {
    if !f.contains_key("d0") {
        return Err(corrupt("no d0"));
    }
    let mut out = Vec::with_capacity(256);
    for c in CHUNK_NAMES.iter().map_while(|name| f.get(*name)) {
        out.extend_from_slice(c);
    }
    Ok(out)
}

/// The dependencies of a job that spawned children: the ids of its `dl` list (`queue/id`
/// members) and the trigger of `dt`.
fn spawned_deps(f: &Fields) -> Result<(Vec<JobId>, Trigger), Error> {
    let ids = text(f, "dl")
        .unwrap_or("")
        .split_whitespace()
        .map(|m| {
            m.rsplit_once('/')
                .and_then(|(_, id)| id.parse().ok())
                .ok_or_else(|| corrupt("dl"))
        })
        .collect::<Result<Vec<JobId>, Error>>()?;
    // An unknown or missing code is corrupt data: guessing a trigger could run a job its
    // dependencies forbid.
    let trigger = Trigger::from_code(num(f, "dt")?.ok_or_else(|| corrupt("dt"))?)?;
    Ok((ids, trigger))
}

/// Rebuilds a job from its hash. `now` hides a result whose retention ended but which the
/// pruner has not dropped yet.
pub(crate) fn decode_job(queue: &str, id: &str, f: &Fields, now: i64) -> Result<Job, Error> {
    let id: JobId = id.parse().map_err(|_| corrupt("id"))?;
    let d = static_blob(f)?;
    let d = &d;
    if d.len() < 6 || d[0] != STATIC_V1 {
        return Err(corrupt("d version"));
    }
    let tag = d[1];
    let plen = u32::from_le_bytes([d[2], d[3], d[4], d[5]]) as usize;
    let pend = 6 + plen;
    if d.len() < pend {
        return Err(corrupt("d length"));
    }
    let payload = Payload::from_stored(tag, d[6..pend].to_vec())?;
    let rest: Rest = serde_json::from_slice(&d[pend..]).map_err(|e| corrupt(&e.to_string()))?;
    // A job that spawned children (`sp`) waits on them: `dl`/`dt` override its static
    // dependencies (see lua/wf_spawn.lua).
    let (depends_on, trigger) = if f.contains_key("sp") {
        spawned_deps(f)?
    } else {
        (rest.dp, rest.tr)
    };
    let state = num(f, "s")?
        .and_then(JobState::from_i64)
        .ok_or_else(|| corrupt("s"))?;
    // `p` and `m` are left out when they are the defaults (`DEF_P`, `DEF_M` in lua/lib.lua).
    let prio = match num(f, "p")? {
        None => Priority::NORMAL,
        Some(p) => u8::try_from(p)
            .ok()
            .and_then(Priority::new)
            .ok_or_else(|| corrupt("p"))?,
    };
    let lease = match (text(f, "lw"), num(f, "lx")?) {
        (Some(w), Some(x)) if state == JobState::Running => Some(Lease {
            worker_id: w.to_string(),
            expires_at: x,
        }),
        _ => None,
    };
    let rx = num(f, "rx")?;
    let result = match f.get("res") {
        Some(b) if rx.is_none_or(|x| x > now) => Some(decode_payload(b)?),
        _ => None,
    };
    let errors = match text(f, "er") {
        None => Vec::new(),
        Some(s) => s
            .lines()
            .map(|l| serde_json::from_str::<ErrorRecord>(l).map_err(|_| corrupt("er")))
            .collect::<Result<_, _>>()?,
    };
    let progress = match f.get("pg") {
        None => None,
        Some(b) => Some(serde_json::from_slice::<Progress>(b).map_err(|_| corrupt("pg"))?),
    };
    let checkpoint = match f.get("cp") {
        None => None,
        Some(b) => Some(decode_payload(b)?),
    };
    Ok(Job {
        id,
        kind: rest.k,
        queue: queue.to_string(),
        priority: prio,
        payload,
        state,
        attempt: num(f, "a")?.unwrap_or(0).max(0) as u32,
        max_attempts: num(f, "m")?.map_or(NewJob::DEFAULT_MAX_ATTEMPTS, |m| m as u32),
        retry: rest.rt,
        run_at: num(f, "r")?.ok_or_else(|| corrupt("r"))?,
        // Jobs to run at once are stored without `c`: they were created at their run_at
        // (enqueue_plain.lua; fail.lua writes `c` before it moves `r`).
        created_at: match num(f, "c")? {
            Some(c) => c,
            None => num(f, "r")?.ok_or_else(|| corrupt("c"))?,
        },
        // `t` is written with an attempt's outcome and `k` at each claim, so a `t` older
        // than `k` belongs to an earlier attempt: the current one has not reported yet.
        // (Jobs stored before `k` existed have only `t`, the claim time.)
        started_at: match (num(f, "t")?, num(f, "k")?) {
            (Some(t), Some(k)) if t < k => None,
            (t, _) => t,
        },
        claimed_at: num(f, "k")?,
        finished_at: num(f, "f")?,
        lease,
        lease_epoch: num(f, "e")?.unwrap_or(0) as u64,
        timeout: rest.to.map(Duration::from_millis),
        unique_key: rest.uk,
        unique_for: rest.uf.map(Duration::from_millis),
        depends_on,
        trigger,
        workflow_id: rest.wf,
        tags: rest.tg,
        meta: rest.mt,
        version: rest.v,
        result_expires_at: if result.is_some() { rx } else { None },
        result_ttl: rest.rl.map(Duration::from_millis),
        trace: rest.tp.map(|traceparent| quern::model::TraceContext {
            traceparent,
            tracestate: rest.ts,
        }),
        result,
        errors,
        progress,
        checkpoint,
        group: text(f, "g").filter(|g| !g.is_empty()).map(str::to_string),
    })
}

/// An error-history line: the JSON of one [`ErrorRecord`], its message cut as every backend
/// cuts it ([`truncate_error_message`]).
pub(crate) fn error_line(rec: &ErrorRecord) -> Result<String, Error> {
    let rec = ErrorRecord {
        message: truncate_error_message(&rec.message),
        ..rec.clone()
    };
    serde_json::to_string(&rec).map_err(|e| Error::Codec(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_blob_round_trips_every_field() {
        let mut nj = NewJob::json("send", serde_json::json!({"to": "a@b.c"}))
            .unwrap()
            .queue("mail")
            .priority(Priority::HIGH)
            .timeout(Duration::from_secs(9))
            .unique("k1", Some(Duration::from_secs(60)))
            .retry(RetryPolicy::Fixed {
                delay: Duration::from_secs(3),
            })
            .workflow("wf1")
            .trigger(Trigger::AnySuccess)
            .depends_on([JobId::new()]);
        nj.tags = vec!["t1".into()];
        nj.meta = serde_json::json!({"task": "x"});
        nj.version = 3;
        let mut f = fields_with_capacity(0);
        let d = encode_static(&nj).unwrap();
        let chunks: Vec<&[u8]> = d.chunks(64).collect();
        f.insert("dc".into(), chunks.len().to_string().into_bytes());
        for (i, c) in chunks.iter().enumerate() {
            f.insert(format!("d{i}"), c.to_vec());
        }
        for (k, v) in [
            ("s", "1"),
            ("p", "2"),
            ("m", "25"),
            ("r", "10"),
            ("c", "10"),
        ] {
            f.insert(k.into(), v.as_bytes().to_vec());
        }
        f.insert(
            "er".into(),
            format!(
                "{}\n{}",
                error_line(&ErrorRecord {
                    attempt: 1,
                    at: 5,
                    kind: quern::model::ErrorKind::Retryable,
                    message: "a\nb".into(),
                    claimed_at: None,
                    due_at: None,
                    retry_at: None,
                })
                .unwrap(),
                error_line(&ErrorRecord {
                    attempt: 2,
                    at: 6,
                    kind: quern::model::ErrorKind::Timeout,
                    message: "x".repeat(5000),
                    claimed_at: None,
                    due_at: None,
                    retry_at: None,
                })
                .unwrap()
            )
            .into_bytes(),
        );
        let id = nj.id.to_string();
        let job = decode_job("mail", &id, &f, 0).unwrap();
        assert_eq!(job.kind, "send");
        assert_eq!(job.payload, nj.payload);
        assert_eq!(job.timeout, nj.timeout);
        assert_eq!(job.unique_key, nj.unique_key);
        assert_eq!(job.unique_for, nj.unique_for);
        assert_eq!(job.retry, nj.retry);
        assert_eq!(job.depends_on, nj.depends_on);
        assert_eq!(job.trigger, nj.trigger);
        assert_eq!(job.workflow_id, nj.workflow_id);
        assert_eq!(job.tags, nj.tags);
        assert_eq!(job.meta, nj.meta);
        assert_eq!(job.version, 3);
        assert_eq!(job.priority, Priority::HIGH);
        assert_eq!(job.errors.len(), 2);
        assert_eq!(job.errors[0].message, "a\nb");
        assert!(job.errors[1].message.len() <= 4096 + 3);
    }

    /// Scripts compute ready scores in Lua (`score` in lib.lua) and the client computes them
    /// for plain enqueues: both must give the same number, or FIFO within a priority breaks
    /// between jobs that came in different ways.
    #[test]
    fn ready_score_is_the_lua_score() {
        let lib = include_str!("../lua/lib.lua");
        let unit: i64 = lib
            .lines()
            .find_map(|l| l.strip_prefix("local PRIO_UNIT = "))
            .expect("PRIO_UNIT in lib.lua")
            .trim()
            .parse()
            .unwrap();
        for (p, r) in [
            (0u8, 0i64),
            (5, 1_795_420_620_651),
            (9, -5),
            (9, (1 << 48) - 1),
        ] {
            assert_eq!(ready_score(p, r), i64::from(p) * unit + r.max(0));
        }
        // Exact as a double, as Redis stores it.
        let top = ready_score(9, (1 << 48) - 1);
        assert_eq!(top as f64 as i64, top);
    }

    /// Chunks as `hset_static` cuts them, and `static_blob` puts them back together.
    #[test]
    fn static_chunks_follow_hset_static() {
        for len in [1usize, 63, 64, 65, 128, 1024, 1025, 5000] {
            let blob: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let chunks = static_chunks(&blob);
            let want = if len > 1024 { 1 } else { len.div_ceil(64) };
            assert_eq!(chunks.len(), want, "len {len}");
            let mut f = fields_with_capacity(0);
            for (i, c) in chunks.iter().enumerate() {
                f.insert(CHUNK_NAMES[i].into(), c.to_vec());
            }
            assert_eq!(static_blob(&f).unwrap(), blob);
        }
    }

    /// The layout `enqueue_plain.lua` writes for a job to run now: no chunk count and no
    /// `c`, which reads as the run_at.
    #[test]
    fn a_hash_without_chunk_count_or_created_at_decodes() {
        let nj = NewJob::json(
            "send",
            serde_json::json!({"to": "a@b.c", "pad": "x".repeat(150)}),
        )
        .unwrap();
        let d = encode_static(&nj).unwrap();
        assert!(d.len() > 128, "the blob spans three chunks");
        let mut f = fields_with_capacity(0);
        for (i, c) in d.chunks(64).enumerate() {
            f.insert(CHUNK_NAMES[i].into(), c.to_vec());
        }
        for (k, v) in [("s", "1"), ("p", "5"), ("m", "3"), ("r", "1234")] {
            f.insert(k.into(), v.as_bytes().to_vec());
        }
        let job = decode_job("q", &nj.id.to_string(), &f, 0).unwrap();
        assert_eq!(job.payload, nj.payload);
        assert_eq!((job.created_at, job.run_at), (1234, 1234));
        // With `c` (a scheduled job, or one that was retried), `c` wins.
        f.insert("c".into(), b"1000".to_vec());
        assert_eq!(
            decode_job("q", &nj.id.to_string(), &f, 0)
                .unwrap()
                .created_at,
            1000
        );
        // A hash without its first chunk is corrupt, not an empty payload.
        f.remove("d0");
        assert!(decode_job("q", &nj.id.to_string(), &f, 0).is_err());
    }

    /// A spawned job's trigger code `dt` is read with the core's rule: an unknown or missing
    /// code is corrupt data, never a guessed trigger.
    #[test]
    fn an_unknown_spawn_trigger_code_is_a_storage_error() {
        let nj = NewJob::json("send", serde_json::json!({})).unwrap();
        let mut f = fields_with_capacity(0);
        f.insert("d0".into(), encode_static(&nj).unwrap());
        for (k, v) in [("s", "2"), ("r", "7"), ("sp", "1"), ("dl", "")] {
            f.insert(k.into(), v.as_bytes().to_vec());
        }
        let id = nj.id.to_string();
        for (code, want) in [
            ("0", Trigger::AllSuccess),
            ("1", Trigger::AllDone),
            ("2", Trigger::AnySuccess),
        ] {
            f.insert("dt".into(), code.as_bytes().to_vec());
            assert_eq!(decode_job("q", &id, &f, 0).unwrap().trigger, want);
        }
        f.insert("dt".into(), b"7".to_vec());
        assert!(matches!(
            decode_job("q", &id, &f, 0),
            Err(Error::Storage(_))
        ));
        f.remove("dt");
        assert!(matches!(
            decode_job("q", &id, &f, 0),
            Err(Error::Storage(_))
        ));
    }

    /// enqueue_plain.lua leaves out `p` and `m` when they are the defaults, and every script
    /// and `decode_job` fill them back in: the Lua constants must be the Rust defaults.
    #[test]
    fn lua_defaults_are_the_rust_defaults() {
        let lib = include_str!("../lua/lib.lua");
        let line = lib
            .lines()
            .find(|l| l.starts_with("local DEF_P, DEF_M = "))
            .expect("DEF_P, DEF_M in lib.lua");
        let want = format!(
            "local DEF_P, DEF_M = '{}', '{}'",
            Priority::NORMAL.get(),
            NewJob::DEFAULT_MAX_ATTEMPTS
        );
        assert_eq!(line, want);
        let nj = NewJob::json("send", serde_json::json!({})).unwrap();
        let mut f = fields_with_capacity(0);
        f.insert("d0".into(), encode_static(&nj).unwrap());
        f.insert("s".into(), b"1".to_vec());
        f.insert("r".into(), b"7".to_vec());
        let job = decode_job("q", &nj.id.to_string(), &f, 0).unwrap();
        assert_eq!(job.priority, Priority::NORMAL);
        assert_eq!(job.max_attempts, NewJob::DEFAULT_MAX_ATTEMPTS);
    }
}
