//! Queue settings stored in the backend and applied in its claim: a global concurrency cap
//! and a rate limit, across every worker process on the store.
//!
//! Both are admission rules, decided inside the backend's atomic claim, so a job over a
//! limit never takes a worker slot. The rate limit is a GCRA token bucket
//! ([`RateLimit::admit`]); every backend calls (or mirrors exactly) that one function, for
//! the claim and for `work_wait`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::serde_ms;
use super::{Aging, ClaimOrder, JobState, RetryPolicy};
use crate::Error;
use crate::clock::Millis;

/// At most `count` jobs per `per`, with bursts of up to `burst` at once.
///
/// Counted at lease grant: each job a claim leases takes one token. Written `20/s`, `600/m`,
/// `10/h` or `5/30s` (a count per a duration); the burst defaults to the count, so `20/s`
/// admits 20 at once after a quiet second, then one every 50 ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub count: u32,
    #[serde(with = "serde_ms")]
    pub per: Duration,
    pub burst: u32,
}

/// What one admission decision allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Admitted {
    /// Jobs that may be leased now (at most the number asked for).
    pub take: usize,
    /// The limiter's new state after taking them (the theoretical arrival time, ms).
    pub tat: f64,
    /// When `take` is smaller than asked: the earliest time one more job is admitted.
    pub next_at: Option<Millis>,
}

impl RateLimit {
    /// `count` per `per` with the default burst (`count`).
    pub fn new(count: u32, per: Duration) -> RateLimit {
        RateLimit {
            count,
            per,
            burst: count,
        }
    }

    /// Checks the numbers: a count and a burst of at least 1, a period of at least 1 ms.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_as("rate")
    }

    /// [`validate`](RateLimit::validate), the error naming the setting `field`.
    pub fn validate_as(&self, field: &str) -> Result<(), Error> {
        if self.count == 0 || self.burst == 0 || self.per < Duration::from_millis(1) {
            return Err(Error::InvalidArgument(format!(
                "{field}: {self} needs a count and burst of at least 1 and a period of at least 1ms"
            )));
        }
        Ok(())
    }

    /// Milliseconds between tokens.
    pub fn interval_ms(&self) -> f64 {
        self.per.as_millis() as f64 / f64::from(self.count)
    }

    /// GCRA: how many of `want` jobs may be leased at `now` given the stored theoretical
    /// arrival time `tat` (0 for a fresh limiter), and the state after taking them.
    ///
    /// The bucket holds `burst` tokens; one comes back every [`interval_ms`]. A job is
    /// admitted while `max(tat, now) + interval − now ≤ burst · interval`.
    ///
    /// [`interval_ms`]: RateLimit::interval_ms
    pub fn admit(&self, tat: f64, now: Millis, want: usize) -> Admitted {
        let i = self.interval_ms();
        let now_f = now as f64;
        let base = tat.max(now_f);
        let room = f64::from(self.burst) * i - (base - now_f);
        // Tokens available now; a hair of slack so float rounding never loses a whole token.
        let avail = ((room + 1e-6) / i).floor().max(0.0) as usize;
        let take = avail.min(want);
        let tat = base + take as f64 * i;
        let next_at = (take < want).then(|| {
            // One more token once `tat + i − t ≤ burst · i`.
            let t = tat + i - f64::from(self.burst) * i;
            (t.ceil() as Millis).max(now + 1)
        });
        Admitted { take, tat, next_at }
    }

    /// Tokens left at `now` (for `quern queues list`).
    pub fn tokens(&self, tat: f64, now: Millis) -> f64 {
        let i = self.interval_ms();
        let room = f64::from(self.burst) * i - (tat.max(now as f64) - now as f64);
        (room / i).clamp(0.0, f64::from(self.burst))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = match self.per.as_millis() {
            1_000 => "s".to_string(),
            60_000 => "m".to_string(),
            3_600_000 => "h".to_string(),
            86_400_000 => "d".to_string(),
            _ => super::format_duration(self.per),
        };
        write!(f, "{}/{per}", self.count)?;
        if self.burst != self.count {
            write!(f, " (burst {})", self.burst)?;
        }
        Ok(())
    }
}

impl FromStr for RateLimit {
    type Err = Error;

    /// `COUNT/PERIOD`: `20/s`, `600/m`, `10/h`, `1/d`, `5/30s`.
    fn from_str(s: &str) -> Result<RateLimit, Error> {
        let bad = || {
            Error::InvalidArgument(format!(
                "rate: {s:?} is not COUNT/PERIOD (examples: 20/s, 600/m, 10/h, 5/30s)"
            ))
        };
        let (count, per) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = match per.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            other => super::parse_duration(other).map_err(|_| bad())?,
        };
        let r = RateLimit::new(count, per);
        r.validate()?;
        Ok(r)
    }
}

/// The largest queue weight.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// Most kind patterns one queue may limit (`QueueSettings::kinds`).
pub const MAX_KIND_RULES: usize = 64;

/// Limits for the jobs of a queue whose kind matches one pattern
/// (`[queues.NAME.kinds."generate.*"]` in `quern.toml`).
///
/// The pattern's bucket is shared by every kind it governs: `generate.*` at `10/m` admits
/// ten `generate.*` jobs a minute in all, whichever kinds they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindLimits {
    /// Most jobs of the matching kinds leased per period across every worker (counted at
    /// lease grant, like the queue's rate).
    pub rate: RateLimit,
}

/// The pattern of `kinds` that governs jobs of `kind`, if any: a pattern without wildcards
/// equal to the kind first, otherwise the longest matching pattern (`*` any run of
/// characters, `?` one byte), ties to the first in byte order. Each job is governed by at
/// most one pattern, so it takes at most one kind token. The Redis claim (`kind_rule` in
/// `lua/lib.lua`) applies the same rule.
pub fn kind_rule<'a>(
    kinds: &'a std::collections::BTreeMap<String, KindLimits>,
    kind: &str,
) -> Option<(&'a str, &'a KindLimits)> {
    if let Some((p, l)) = kinds.get_key_value(kind) {
        return Some((p.as_str(), l));
    }
    let mut best: Option<(&'a str, &'a KindLimits)> = None;
    for (p, l) in kinds {
        if crate::routing::glob(p.as_bytes(), kind.as_bytes())
            && best.is_none_or(|(b, _)| p.len() > b.len())
        {
            best = Some((p.as_str(), l));
        }
    }
    best
}

/// Checks a kind pattern: 1-255 printable characters.
pub fn validate_kind_pattern(p: &str) -> Result<(), Error> {
    if p.is_empty() || p.len() > 255 || p.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "kinds: pattern {p:?} must be 1-255 printable characters (`*` any run, `?` one character)"
        )));
    }
    Ok(())
}

/// How long a queue keeps its finished jobs of one state, over the store-wide `[retention]`
/// (the pruner's [`PrunerConfig`](crate::maintenance::PrunerConfig)).
///
/// Serialized as milliseconds, or the string `"forever"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Deleted once this long has passed since the job finished.
    For(Duration),
    /// Never pruned by age (the store-wide byte budget may still delete it).
    Forever,
}

impl Keep {
    /// The retention as the pruner's config writes it: `None` for forever.
    pub fn as_duration(self) -> Option<Duration> {
        match self {
            Keep::For(d) => Some(d),
            Keep::Forever => None,
        }
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::For(d) => f.write_str(&super::format_duration(*d)),
            Keep::Forever => f.write_str("forever"),
        }
    }
}

impl Serialize for Keep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Keep::For(d) => s.serialize_u64(d.as_millis() as u64),
            Keep::Forever => s.serialize_str("forever"),
        }
    }
}

impl<'de> Deserialize<'de> for Keep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Keep, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Ms(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Ms(ms) => Ok(Keep::For(Duration::from_millis(ms))),
            Raw::Text(t) if t == "forever" => Ok(Keep::Forever),
            Raw::Text(t) => super::parse_duration(&t).map(Keep::For).map_err(|_| {
                serde::de::Error::custom(format!(
                    "retention {t:?}: milliseconds, a duration like \"30d\", or \"forever\""
                ))
            }),
        }
    }
}

/// A queue's stored settings. Every field is optional; `None` means no limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// Most jobs of the queue running at once across every worker on the store (counted as
    /// active leases).
    pub concurrency: Option<u32>,
    /// Most jobs leased per period across every worker.
    pub rate: Option<RateLimit>,
    /// The queue's share when a worker serves several queues and did not give this one a
    /// weight of its own (a weight the worker sets wins); `None` means 1. Read by workers
    /// at start and again every few seconds, so it can be changed at run time.
    pub weight: Option<u32>,
    /// Which ready job is claimed next ([`ClaimOrder`]; default `priority`).
    pub order: ClaimOrder,
    /// Priority aging ([`Aging`]), opt-in; applies to the `priority` order (and to the
    /// urgency bound of a claim, `ClaimParams::more_urgent_than`).
    pub aging: Option<Aging>,
    /// How long the queue keeps its finished jobs, per terminal state, over the store-wide
    /// retention (states not listed use that). Applied by the pruner.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub retention: std::collections::BTreeMap<JobState, Keep>,
    /// The retry policy of the queue's jobs that carry none and whose handler declares
    /// none; the worker's default applies when this is `None` too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Most jobs of one group ([`crate::NewJob::group`]) running at once across every
    /// worker (active leases per queue and group; jobs without a group form the "" group).
    pub group_concurrency: Option<u32>,
    /// Rate limits per kind pattern within the queue ([`KindLimits`], [`kind_rule`]): a job
    /// is leased only while its pattern's bucket has a token, and a throttled pattern's jobs
    /// are passed over for the queue's other kinds.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub kinds: std::collections::BTreeMap<String, KindLimits>,
    /// A rate limit for each group of the queue on its own (every group its own bucket;
    /// jobs without a group share the "" group's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_rate: Option<RateLimit>,
}

impl QueueSettings {
    /// Checks every field; errors name it (`concurrency: …`, `rate: …`).
    pub fn validate(&self) -> Result<(), Error> {
        if self.concurrency == Some(0) {
            return Err(Error::InvalidArgument(
                "concurrency: must be at least 1 (pause the queue to stop it)".into(),
            ));
        }
        if let Some(r) = &self.rate {
            r.validate()?;
        }
        if self.group_concurrency == Some(0) {
            return Err(Error::InvalidArgument(
                "group_concurrency: must be at least 1".into(),
            ));
        }
        if let Some(w) = self.weight
            && w > MAX_WEIGHT
        {
            return Err(Error::InvalidArgument(format!(
                "weight: {w} is above the most, {MAX_WEIGHT}"
            )));
        }
        if let Some(a) = &self.aging {
            a.validate()?;
        }
        if let Some(s) = self.retention.keys().find(|s| !s.is_terminal()) {
            return Err(Error::InvalidArgument(format!(
                "retention: {s} jobs are not finished; only succeeded, dead, cancelled and skipped jobs are pruned"
            )));
        }
        if let Some(p) = &self.retry {
            p.validate()?;
        }
        if self.kinds.len() > MAX_KIND_RULES {
            return Err(Error::InvalidArgument(format!(
                "kinds: {} patterns, the most is {MAX_KIND_RULES}",
                self.kinds.len()
            )));
        }
        for (p, l) in &self.kinds {
            validate_kind_pattern(p)?;
            l.rate.validate_as(&format!("kinds.{p:?}.rate"))?;
        }
        if let Some(r) = &self.group_rate {
            r.validate_as("group_rate")?;
        }
        Ok(())
    }
}

/// A queue's settings and what its limits use now (`queue_get`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueUsage {
    pub settings: QueueSettings,
    /// Jobs of the queue running now (active leases).
    pub running: u64,
    /// Rate tokens left now, when the queue has a rate limit.
    pub tokens: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> RateLimit {
        s.parse().unwrap()
    }

    #[test]
    fn rates_parse_and_print() {
        assert_eq!(r("20/s"), RateLimit::new(20, Duration::from_secs(1)));
        assert_eq!(r("600/m").per, Duration::from_secs(60));
        assert_eq!(r("5/30s").per, Duration::from_secs(30));
        assert_eq!(r("20/s").to_string(), "20/s");
        let mut b = r("10/m");
        b.burst = 1;
        assert_eq!(b.to_string(), "10/m (burst 1)");
        for bad in ["", "20", "x/s", "0/s", "20/fortnight", "-1/s"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_full_bucket_admits_the_burst_then_one_per_interval() {
        let l = r("20/s");
        let a = l.admit(0.0, 10_000, 50);
        assert_eq!(a.take, 20);
        assert_eq!(a.next_at, Some(10_050));
        // 49 ms later: nothing; at 50 ms one more.
        let b = l.admit(a.tat, 10_049, 5);
        assert_eq!((b.take, b.next_at), (0, Some(10_050)));
        let c = l.admit(a.tat, 10_050, 5);
        assert_eq!(c.take, 1);
        // A quiet second refills the bucket, never beyond the burst.
        let d = l.admit(c.tat, 20_000, 100);
        assert_eq!(d.take, 20);
    }

    #[test]
    fn over_any_window_at_most_burst_plus_rate() {
        // 10/m with burst 2, asked every 100 ms for 10 minutes.
        let mut l = r("10/m");
        l.burst = 2;
        let (mut tat, mut admitted) = (0.0, Vec::new());
        for t in (0..600_000).step_by(100) {
            let a = l.admit(tat, t, 3);
            tat = a.tat;
            admitted.extend(std::iter::repeat_n(t, a.take));
        }
        assert_eq!(admitted.len(), 2 + 99, "burst, then one per 6 s");
        for (i, t) in admitted.iter().enumerate() {
            let in_minute = admitted[i..].iter().filter(|u| **u < t + 60_000).count();
            assert!(in_minute <= 12, "window from {t}: {in_minute}");
        }
    }

    #[test]
    fn tokens_count_down_and_refill() {
        let l = r("4/s");
        assert_eq!(l.tokens(0.0, 1_000), 4.0);
        let a = l.admit(0.0, 1_000, 3);
        assert_eq!(l.tokens(a.tat, 1_000), 1.0);
        assert_eq!(l.tokens(a.tat, 1_500), 3.0);
    }

    #[test]
    fn settings_are_validated_and_unknown_fields_refused() {
        let s = QueueSettings {
            concurrency: Some(0),
            ..Default::default()
        };
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("concurrency")
        );
        let e = serde_json::from_str::<QueueSettings>(r#"{"speed":1}"#).unwrap_err();
        assert!(e.to_string().contains("speed"), "{e}");
        let live = QueueSettings {
            retention: [(JobState::Queued, Keep::Forever)].into(),
            ..Default::default()
        };
        assert!(
            live.validate()
                .unwrap_err()
                .to_string()
                .contains("retention")
        );
    }

    #[test]
    fn a_kind_takes_the_most_specific_pattern() {
        let l = |t: &str| KindLimits { rate: r(t) };
        let kinds: std::collections::BTreeMap<String, KindLimits> = [
            ("generate.*".to_string(), l("10/m")),
            ("generate.video*".to_string(), l("1/m")),
            ("generate.image".to_string(), l("5/m")),
            ("thumb?".to_string(), l("100/m")),
            ("*".to_string(), l("1000/m")),
        ]
        .into();
        let rule = |k: &str| kind_rule(&kinds, k).map(|(p, _)| p.to_string());
        assert_eq!(rule("generate.image").as_deref(), Some("generate.image"));
        assert_eq!(
            rule("generate.video.4k").as_deref(),
            Some("generate.video*")
        );
        assert_eq!(rule("generate.text").as_deref(), Some("generate.*"));
        assert_eq!(rule("thumbs").as_deref(), Some("thumb?"));
        assert_eq!(rule("thumbnail").as_deref(), Some("*"));
        assert_eq!(kind_rule(&Default::default(), "x"), None);
    }

    #[test]
    fn kind_and_group_rates_are_validated() {
        let mut zero = r("10/m");
        zero.burst = 0;
        let bad = QueueSettings {
            kinds: [("gen.*".to_string(), KindLimits { rate: zero })].into(),
            ..Default::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("kinds.\"gen.*\".rate"), "{e}");
        let bad = QueueSettings {
            kinds: [(String::new(), KindLimits { rate: r("1/s") })].into(),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = QueueSettings {
            group_rate: Some(zero),
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("group_rate")
        );
        let many = QueueSettings {
            kinds: (0..=MAX_KIND_RULES)
                .map(|i| (format!("k{i}.*"), KindLimits { rate: r("1/s") }))
                .collect(),
            ..Default::default()
        };
        assert!(many.validate().is_err());
        let text = serde_json::to_string(&QueueSettings {
            kinds: [("a.*".to_string(), KindLimits { rate: r("10/m") })].into(),
            group_rate: Some(r("5/s")),
            ..Default::default()
        })
        .unwrap();
        let back: QueueSettings = serde_json::from_str(&text).unwrap();
        assert_eq!(back.kinds["a.*"].rate, r("10/m"), "{text}");
    }

    #[test]
    fn retention_and_retry_round_trip_as_json() {
        let s = QueueSettings {
            retention: [
                (JobState::Succeeded, Keep::For(Duration::from_secs(3600))),
                (JobState::Dead, Keep::Forever),
            ]
            .into(),
            retry: Some("fixed:5s".parse().unwrap()),
            ..Default::default()
        };
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains(r#""retention":{"succeeded":3600000,"dead":"forever"}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<QueueSettings>(&text).unwrap(), s);
        let plain = serde_json::to_string(&QueueSettings::default()).unwrap();
        assert!(
            !plain.contains("retention") && !plain.contains("retry"),
            "{plain}"
        );
    }
}
