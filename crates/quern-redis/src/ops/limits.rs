//! `queue_get` and `queue_update`: a queue's limits in its meta hash (`lua/queue_settings.lua`).
//! They are applied by `admit` in `lua/lib.lua`, which both the claim and the peek of
//! `work_wait` call.

use std::time::Duration;

use quern::backend::QueueUpdateParams;
use quern::model::{
    Aging, ClaimOrder, JobState, Keep, Priority, QueueSettings, QueueUsage, RateLimit,
    validate_queue_name,
};
use quern::{Error, Result};

use crate::backend::RedisBackend;

/// The states a queue may keep for its own time, in the script's field order.
const KEPT: [JobState; 4] = [
    JobState::Succeeded,
    JobState::Dead,
    JobState::Cancelled,
    JobState::Skipped,
];
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// The script's reply: cc, rc, rp, rb, rt ('' when absent), the running jobs, then w, o,
/// aa, as, ae, ab, then the retention of each of [`KEPT`] the default retry policy, gc.
fn usage(b: &RedisBackend, v: redis::Value) -> Result<QueueUsage> {
    let r = reply::array(v)?;
    if r.len() != 22 {
        return Err(Error::Storage(
            "queue settings reply has the wrong length".into(),
        ));
    }
    let mut f = Vec::with_capacity(5);
    for x in r.iter().take(5) {
        f.push(reply::string(x.clone())?);
    }
    let num = |s: &str| -> Result<Option<u64>> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| Error::Storage(format!("stored queue setting {s:?} is not a number")))
    };
    let rate = match (num(&f[1])?, num(&f[2])?, num(&f[3])?) {
        (Some(count), Some(per), Some(burst)) => Some(RateLimit {
            count: count as u32,
            per: Duration::from_millis(per),
            burst: burst as u32,
        }),
        _ => None,
    };
    let tat: f64 = if f[4].is_empty() {
        0.0
    } else {
        f[4].parse()
            .map_err(|_| Error::Storage(format!("stored rate state {:?} is not a number", f[4])))?
    };
    let mut g = Vec::with_capacity(16);
    for x in r.iter().skip(6) {
        g.push(reply::string(x.clone())?);
    }
    let order = match g[1].as_str() {
        "f" => ClaimOrder::Fifo,
        "l" => ClaimOrder::Lifo,
        "r" => ClaimOrder::WeightedRandom,
        _ => ClaimOrder::Priority,
    };
    let aging = match num(&g[2])? {
        None => None,
        Some(after) => Some(Aging {
            after: Duration::from_millis(after),
            step: num(&g[3])?.unwrap_or(1) as u8,
            every: num(&g[4])?.map(Duration::from_millis),
            bound: Priority::new(num(&g[5])?.unwrap_or(0) as u8).unwrap_or(Priority::CRITICAL),
        }),
    };
    let bad = |e: serde_json::Error| Error::Storage(format!("stored queue setting: {e}"));
    let mut retention = std::collections::BTreeMap::new();
    for (state, v) in KEPT.iter().zip(&g[6..10]) {
        match v.as_str() {
            "" => {}
            "f" => {
                retention.insert(*state, Keep::Forever);
            }
            ms => {
                let ms = num(ms)?.unwrap_or_default();
                retention.insert(*state, Keep::For(Duration::from_millis(ms)));
            }
        }
    }
    let retry = if g[10].is_empty() {
        None
    } else {
        Some(serde_json::from_str(&g[10]).map_err(bad)?)
    };
    Ok(QueueUsage {
        settings: QueueSettings {
            concurrency: num(&f[0])?.map(|c| c as u32),
            rate,
            weight: num(&g[0])?.map(|w| w as u32),
            order,
            aging,
            retention,
            retry,
            group_concurrency: num(&g[11])?.map(|c| c as u32),
            kinds: if g[12].is_empty() {
                Default::default()
            } else {
                serde_json::from_str(&g[12]).map_err(bad)?
            },
            group_rate: match (num(&g[13])?, num(&g[14])?, num(&g[15])?) {
                (Some(count), Some(per), Some(burst)) => Some(RateLimit {
                    count: count as u32,
                    per: Duration::from_millis(per),
                    burst: burst as u32,
                }),
                _ => None,
            },
        },
        running: reply::int(&r[5])? as u64,
        tokens: rate.map(|r| r.tokens(tat, b.now())),
    })
}

pub(crate) async fn get(b: &RedisBackend, queue: &str) -> Result<QueueUsage> {
    validate_queue_name(queue)?;
    if !b.queue_exists(queue).await? {
        return Err(Error::QueueNotFound(queue.to_string()));
    }
    let mut args = Args::default();
    args.s(queue).s("get");
    let v = b
        .eval(
            &scripts::QUEUE_SETTINGS,
            Some(queue),
            b.now(),
            &args,
            Ack::Primary,
        )
        .await?;
    usage(b, v)
}

pub(crate) async fn update(b: &RedisBackend, p: QueueUpdateParams) -> Result<QueueSettings> {
    validate_queue_name(&p.queue)?;
    // Each given value is checked on its own (no rule spans two fields), so the script can
    // apply the change atomically to whatever is stored.
    p.apply(&QueueSettings::default()).validate()?;
    if !p.kinds.is_empty() && b.queue_exists(&p.queue).await? {
        // The count of patterns spans the stored ones: checked against what is stored now.
        p.apply(&get(b, &p.queue).await?.settings).validate()?;
    }
    if b.cluster() {
        // The registry is in the global slot; register first, as an enqueue does.
        b.query::<()>(redis::cmd("SADD").arg(b.gk("queues")).arg(&p.queue).clone())
            .await?;
    }
    let keep_or = |v: Option<Option<String>>| match v {
        None => "-".to_string(),
        Some(None) => String::new(),
        Some(Some(s)) => s,
    };
    let mut args = Args::default();
    args.s(&p.queue)
        .s("set")
        .s(&keep_or(p.concurrency.map(|c| c.map(|n| n.to_string()))));
    rate_args(&mut args, p.rate);
    args.s(&keep_or(p.weight.map(|w| w.map(|n| n.to_string()))));
    args.s(match p.order {
        None => "-",
        Some(ClaimOrder::Priority) => "",
        Some(ClaimOrder::Fifo) => "f",
        Some(ClaimOrder::Lifo) => "l",
        Some(ClaimOrder::WeightedRandom) => "r",
    });
    match p.aging {
        None => {
            args.s("-").s("-").s("-").s("-");
        }
        Some(None) => {
            args.s("").s("").s("").s("");
        }
        Some(Some(a)) => {
            args.s(&(a.after.as_millis() as u64).to_string())
                .s(&a.step.to_string())
                .s(&a
                    .every
                    .map_or(String::new(), |e| (e.as_millis() as u64).to_string()))
                .s(&a.bound.get().to_string());
        }
    }
    for state in KEPT {
        match p.retention.get(&state) {
            None => args.s("-"),
            Some(None) => args.s(""),
            Some(Some(Keep::Forever)) => args.s("f"),
            Some(Some(Keep::For(d))) => args.s(&(d.as_millis() as u64).to_string()),
        };
    }
    match &p.retry {
        None => args.s("-"),
        Some(None) => args.s(""),
        Some(Some(r)) => {
            args.s(&serde_json::to_string(r).map_err(|e| Error::Codec(e.to_string()))?)
        }
    };
    args.s(&keep_or(
        p.group_concurrency.map(|c| c.map(|n| n.to_string())),
    ));
    if p.kinds.is_empty() {
        args.s("-");
    } else {
        args.s(&serde_json::to_string(&p.kinds).map_err(|e| Error::Codec(e.to_string()))?);
    }
    rate_args(&mut args, p.group_rate);
    let v = b
        .eval(
            &scripts::QUEUE_SETTINGS,
            Some(&p.queue),
            b.now(),
            &args,
            Ack::Replicas,
        )
        .await?;
    Ok(usage(b, v)?.settings)
}

/// A rate change as queue_settings.lua reads it: three arguments (count, period in ms,
/// burst), `-` each to keep the stored rate, empty each to clear it.
fn rate_args(args: &mut Args, change: Option<Option<RateLimit>>) {
    match change {
        None => {
            args.s("-").s("-").s("-");
        }
        Some(None) => {
            args.s("").s("").s("");
        }
        Some(Some(r)) => {
            args.s(&r.count.to_string())
                .s(&(r.per.as_millis() as u64).to_string())
                .s(&r.burst.to_string());
        }
    }
}
