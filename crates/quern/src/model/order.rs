//! A queue's claim order and priority aging: which ready job of a queue a claim takes next.
//!
//! Both are queue settings ([`QueueSettings`](super::QueueSettings)) applied inside the
//! backend's atomic claim. Every backend follows the rules written here (SQLite calls these
//! functions; Redis's `lua/order.lua` mirrors them), and the conformance cases in
//! `testing/orders.rs` hold them to it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Priority;
use super::duration::serde_ms;
use crate::Error;
use crate::clock::Millis;

/// Which ready job of a queue is claimed next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClaimOrder {
    /// The most urgent priority first, then the earliest due time, then the id (the
    /// default). With [`Aging`], by the effective priority.
    #[default]
    Priority,
    /// The earliest due time first, whatever the priority, then the id.
    Fifo,
    /// The latest due time first (for a job enqueued to run now, the newest), then the
    /// greatest id.
    Lifo,
    /// A random ready job: a priority level is drawn with a chance proportional to its
    /// ready jobs times [`ClaimOrder::level_weight`], so each ready job's chance is
    /// proportional to its priority's weight; within the level drawn, the earliest due first.
    WeightedRandom,
}

impl ClaimOrder {
    /// All orders, in the order the docs list them.
    pub const ALL: [ClaimOrder; 4] = [
        ClaimOrder::Priority,
        ClaimOrder::Fifo,
        ClaimOrder::Lifo,
        ClaimOrder::WeightedRandom,
    ];

    /// The name in settings, the CLI and `quern.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimOrder::Priority => "priority",
            ClaimOrder::Fifo => "fifo",
            ClaimOrder::Lifo => "lifo",
            ClaimOrder::WeightedRandom => "weighted-random",
        }
    }

    /// The weight of a priority level under `weighted-random`: `10 − priority`, so critical
    /// (0) weighs 10, high 8, normal 5, low 3 and batch (9) 1: a critical job is ten times
    /// as likely to be drawn as a batch job.
    pub fn level_weight(priority: u8) -> u64 {
        u64::from(10u8.saturating_sub(priority.min(9)))
    }
}

impl fmt::Display for ClaimOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClaimOrder {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        ClaimOrder::ALL
            .into_iter()
            .find(|o| o.as_str() == s.trim())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "order: {s:?} is not a claim order (priority, fifo, lifo, weighted-random)"
                ))
            })
    }
}

/// Priority aging: a ready job that has waited at least `after` since it was due is
/// promoted by `step` levels, and by `step` more every `every` after that, never above
/// `bound` (and never demoted: a job already at or above the bound keeps its priority).
/// Computed at claim time from the due time; nothing is rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aging {
    /// How long a job waits (from its due time) before its first promotion.
    #[serde(with = "serde_ms")]
    pub after: Duration,
    /// Levels per promotion, 1 to 9.
    pub step: u8,
    /// Time between promotions after the first; `None` means `after`.
    #[serde(default, with = "serde_ms_opt")]
    pub every: Option<Duration>,
    /// The most urgent level aging reaches (default `critical`, 0: a job waiting long
    /// enough overtakes any stream of new jobs, so none starves).
    #[serde(default = "critical")]
    pub bound: Priority,
}

fn critical() -> Priority {
    Priority::CRITICAL
}

mod serde_ms_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

impl Aging {
    /// Aging after `after` by `step` levels per `after`, up to critical.
    pub fn new(after: Duration, step: u8) -> Aging {
        Aging {
            after,
            step,
            every: None,
            bound: Priority::CRITICAL,
        }
    }

    /// Checks the numbers; errors name the field (`aging.after: …`).
    pub fn validate(&self) -> Result<(), Error> {
        if self.after < Duration::from_millis(1) {
            return Err(Error::InvalidArgument(
                "aging.after: must be at least 1ms".into(),
            ));
        }
        if !(1..=9).contains(&self.step) {
            return Err(Error::InvalidArgument(format!(
                "aging.step: {} is not 1 to 9 levels",
                self.step
            )));
        }
        if self.every.is_some_and(|e| e < Duration::from_millis(1)) {
            return Err(Error::InvalidArgument(
                "aging.every: must be at least 1ms".into(),
            ));
        }
        Ok(())
    }

    /// Milliseconds between promotions after the first.
    pub fn every_ms(&self) -> i64 {
        (self.every.unwrap_or(self.after).as_millis() as i64).max(1)
    }

    /// The priority a job of `priority` due at `due` is claimed with at `now`:
    /// `max(bound, priority − step × (1 + ⌊(now − due − after) / every⌋))` once
    /// `now − due ≥ after`, else `priority`; never less urgent than `priority`.
    pub fn effective(&self, priority: u8, due: Millis, now: Millis) -> u8 {
        let after = self.after.as_millis() as i64;
        let waited = now - due;
        let bound = self.bound.get();
        if waited < after || priority <= bound {
            return priority;
        }
        let promotions = 1 + (waited - after) / self.every_ms();
        let lift = promotions.saturating_mul(i64::from(self.step));
        (i64::from(priority) - lift).max(i64::from(bound)) as u8
    }

    /// How long a job of `priority` waits at most before it is claimed as `bound` (the
    /// starvation bound, as time since it was due; zero when already there).
    pub fn time_to_bound(&self, priority: u8) -> Duration {
        let gap = priority.saturating_sub(self.bound.get());
        if gap == 0 {
            return Duration::ZERO;
        }
        let promotions = u64::from(gap.div_ceil(self.step));
        self.after + Duration::from_millis(self.every_ms() as u64 * (promotions - 1))
    }
}

impl fmt::Display for Aging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "after {}, {} level{}",
            super::format_duration(self.after),
            self.step,
            if self.step == 1 { "" } else { "s" }
        )?;
        if let Some(e) = self.every {
            write!(f, " every {}", super::format_duration(e))?;
        }
        write!(f, ", up to {}", self.bound)
    }
}

/// A ready job as a claim order sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate<K> {
    pub priority: u8,
    /// Due time (`run_at`), ms.
    pub due: Millis,
    /// The job id's bytes, or any key that orders like them.
    pub id: K,
}

/// A queue's order rule at one instant: its order, its aging and the claim's time.
#[derive(Clone, Copy, Debug)]
pub struct OrderRule<'a> {
    pub order: ClaimOrder,
    pub aging: Option<&'a Aging>,
    pub now: Millis,
}

/// Orders candidates gathered from the heads of each priority level (the first `n` of
/// each level in that level's own order: due time ascending, or descending for `lifo`) and
/// returns the first `n` jobs of the queue in `order`, skipping those whose (effective)
/// priority is not below `below`. `counts[p]` is the number of ready jobs at level `p`
/// (used by `weighted-random` only); `unit` yields numbers in [0, 1).
///
/// The heads suffice: within one level every order (and aging, which promotes older jobs
/// at least as far as newer ones) ranks the jobs in the level's own order, so the first `n`
/// of the queue are among the first `n` of each level.
pub fn pick<K: Ord + Copy>(
    rule: OrderRule<'_>,
    levels: &[Vec<Candidate<K>>; 10],
    counts: &[u64; 10],
    n: usize,
    below: u8,
    mut unit: impl FnMut() -> f64,
) -> Vec<Candidate<K>> {
    let OrderRule { order, aging, now } = rule;
    let eff = |c: &Candidate<K>| aging.map_or(c.priority, |a| a.effective(c.priority, c.due, now));
    let mut all: Vec<Candidate<K>> = levels
        .iter()
        .flatten()
        .filter(|c| eff(c) < below)
        .copied()
        .collect();
    match order {
        ClaimOrder::Priority => all.sort_by_key(|c| (eff(c), c.due, c.id)),
        ClaimOrder::Fifo => all.sort_by_key(|c| (c.due, c.id)),
        ClaimOrder::Lifo => {
            all.sort_by_key(|c| (std::cmp::Reverse(c.due), std::cmp::Reverse(c.id)))
        }
        ClaimOrder::WeightedRandom => {
            let mut heads: Vec<std::collections::VecDeque<Candidate<K>>> = levels
                .iter()
                .map(|l| l.iter().filter(|c| eff(c) < below).copied().collect())
                .collect();
            let mut left: Vec<u64> = (0..10)
                .map(|p| {
                    if heads[p].is_empty() {
                        0
                    } else {
                        counts[p].max(heads[p].len() as u64)
                    }
                })
                .collect();
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                let total: u64 = (0..10)
                    .map(|p| left[p] * ClaimOrder::level_weight(p as u8))
                    .sum();
                if total == 0 {
                    break;
                }
                let mut ticket = ((unit() * total as f64) as u64).min(total - 1);
                let mut level = 0;
                for (p, l) in left.iter().enumerate() {
                    let w = l * ClaimOrder::level_weight(p as u8);
                    if ticket < w {
                        level = p;
                        break;
                    }
                    ticket -= w;
                }
                match heads[level].pop_front() {
                    Some(c) => {
                        out.push(c);
                        left[level] -= 1;
                        if heads[level].is_empty() {
                            left[level] = 0;
                        }
                    }
                    None => left[level] = 0,
                }
            }
            return out;
        }
    }
    all.truncate(n);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn orders_parse_and_print() {
        for o in ClaimOrder::ALL {
            assert_eq!(o.as_str().parse::<ClaimOrder>().unwrap(), o);
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
        let e = "random".parse::<ClaimOrder>().unwrap_err().to_string();
        assert!(e.contains("order"), "{e}");
        assert_eq!(ClaimOrder::level_weight(0), 10);
        assert_eq!(ClaimOrder::level_weight(9), 1);
    }

    #[test]
    fn the_seed_example_low_and_batch_become_normal_after_30_minutes() {
        let a = Aging {
            after: Duration::from_secs(1800),
            step: 5,
            every: None,
            bound: Priority::NORMAL,
        };
        assert_eq!(a.effective(7, 0, 29 * MIN), 7);
        assert_eq!(a.effective(7, 0, 30 * MIN), 5);
        assert_eq!(a.effective(9, 0, 30 * MIN), 5);
        assert_eq!(a.effective(9, 0, 300 * MIN), 5, "never above the bound");
        assert_eq!(a.effective(2, 0, 300 * MIN), 2, "never demoted");
    }

    #[test]
    fn aging_steps_per_interval_and_bounds_the_wait() {
        let a = Aging {
            after: Duration::from_secs(600),
            step: 2,
            every: Some(Duration::from_secs(300)),
            bound: Priority::CRITICAL,
        };
        assert_eq!(a.effective(7, 0, 10 * MIN), 5);
        assert_eq!(a.effective(7, 0, 15 * MIN - 1), 5);
        assert_eq!(a.effective(7, 0, 15 * MIN), 3);
        assert_eq!(a.effective(7, 0, 25 * MIN), 0);
        // 7 levels at 2 per promotion: 4 promotions, at 10, 15, 20, 25 minutes.
        assert_eq!(a.time_to_bound(7), Duration::from_secs(25 * 60));
        assert_eq!(a.effective(7, 0, 25 * MIN - 1), 1);
        assert_eq!(a.time_to_bound(0), Duration::ZERO);
    }

    #[test]
    fn aging_is_validated_by_field() {
        let mut a = Aging::new(Duration::from_secs(60), 0);
        assert!(a.validate().unwrap_err().to_string().contains("aging.step"));
        a.step = 10;
        assert!(a.validate().is_err());
        a.step = 1;
        a.after = Duration::ZERO;
        assert!(
            a.validate()
                .unwrap_err()
                .to_string()
                .contains("aging.after")
        );
        a.after = Duration::from_secs(1);
        a.every = Some(Duration::ZERO);
        assert!(
            a.validate()
                .unwrap_err()
                .to_string()
                .contains("aging.every")
        );
        a.every = None;
        a.validate().unwrap();
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Aging>(&j).unwrap(), a);
        let short: Aging = serde_json::from_str(r#"{"after":1000,"step":1}"#).unwrap();
        assert_eq!(short.bound, Priority::CRITICAL);
    }

    fn c(priority: u8, due: Millis, id: u32) -> Candidate<u32> {
        Candidate { priority, due, id }
    }

    fn levels(cs: &[Candidate<u32>], desc: bool) -> [Vec<Candidate<u32>>; 10] {
        let mut l: [Vec<Candidate<u32>>; 10] = Default::default();
        for x in cs {
            l[x.priority as usize].push(*x);
        }
        for v in &mut l {
            v.sort_by_key(|c| (c.due, c.id));
            if desc {
                v.reverse();
            }
        }
        l
    }

    #[test]
    fn pick_orders_the_heads() {
        let jobs = [c(5, 30, 1), c(0, 20, 2), c(9, 10, 3), c(5, 40, 4)];
        let ids = |o, desc, aging: Option<&Aging>, now| {
            pick(
                OrderRule {
                    order: o,
                    aging,
                    now,
                },
                &levels(&jobs, desc),
                &[1; 10],
                4,
                10,
                || 0.0,
            )
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>()
        };
        assert_eq!(ids(ClaimOrder::Priority, false, None, 0), [2, 1, 4, 3]);
        assert_eq!(ids(ClaimOrder::Fifo, false, None, 0), [3, 2, 1, 4]);
        assert_eq!(ids(ClaimOrder::Lifo, true, None, 0), [4, 1, 2, 3]);
        let a = Aging::new(Duration::from_millis(100), 9);
        // At 110 ms job 3 (due 10) has waited 100 ms: critical, and the oldest.
        assert_eq!(
            ids(ClaimOrder::Priority, false, Some(&a), 110),
            [3, 2, 1, 4]
        );
        // The bound filters by the effective priority.
        let got = pick(
            OrderRule {
                order: ClaimOrder::Priority,
                aging: Some(&a),
                now: 110,
            },
            &levels(&jobs, false),
            &[1; 10],
            4,
            1,
            || 0.0,
        );
        assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), [3, 2]);
    }

    #[test]
    fn weighted_random_draws_levels_by_count_times_weight() {
        // One critical job (weight 10) and ten batch jobs (weight 1 each): even odds.
        let mut jobs = vec![c(0, 0, 0)];
        jobs.extend((1..=10).map(|i| c(9, i, i as u32)));
        let l = levels(&jobs, false);
        let mut counts = [0u64; 10];
        counts[0] = 1;
        counts[9] = 10;
        let wr = OrderRule {
            order: ClaimOrder::WeightedRandom,
            aging: None,
            now: 0,
        };
        let first = |u: f64| pick(wr, &l, &counts, 1, 10, || u)[0].id;
        assert_eq!(first(0.49), 0);
        assert_eq!(first(0.51), 1, "the oldest batch job");
        // Drawing all takes each once.
        let mut x = 0.3;
        let all = pick(wr, &l, &counts, 20, 10, || {
            x = (x + 0.618_033_988_75) % 1.0;
            x
        });
        assert_eq!(all.len(), 11);
    }
}
