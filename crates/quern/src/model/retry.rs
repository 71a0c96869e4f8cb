use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::serde_ms;
use crate::Error;

/// How long to wait before the next attempt after a retryable failure.
///
/// `attempt` below is the attempt that just failed, counted from 1. A policy that returns
/// `None` means "do not retry"; the job then goes to `dead` whatever `max_attempts` says.
/// Serialized with a `type` tag, durations as milliseconds or strings like `"30s"`:
/// `{"type":"exponential","base":"1s","multiplier":2,"max":"1h","jitter":0.1}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RetryPolicy {
    /// Never retry.
    None,
    /// The same delay every time.
    Fixed {
        #[serde(with = "serde_ms")]
        delay: Duration,
    },
    /// `base * attempt`, capped at `max`.
    Linear {
        #[serde(with = "serde_ms")]
        base: Duration,
        #[serde(with = "serde_ms")]
        max: Duration,
    },
    /// `base * multiplier^(attempt-1)`, capped at `max`, then reduced by up to `jitter`
    /// (a fraction, 0.0–1.0) of itself at random, so it stays within `[d*(1-jitter), d]`
    /// and never above the cap.
    Exponential {
        #[serde(with = "serde_ms")]
        base: Duration,
        #[serde(default = "default_multiplier")]
        multiplier: f64,
        #[serde(with = "serde_ms")]
        max: Duration,
        #[serde(default)]
        jitter: f64,
    },
    /// An explicit list of delays; attempts past the end reuse the last one.
    Custom {
        #[serde(with = "serde_ms::vec")]
        delays: Vec<Duration>,
    },
}

fn default_multiplier() -> f64 {
    2.0
}

impl Default for RetryPolicy {
    /// Exponential from 1 s, doubling, capped at 1 h, with 10% jitter.
    fn default() -> Self {
        RetryPolicy::Exponential {
            base: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(3600),
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// Checks the numbers make sense (multiplier ≥ 1, jitter within 0..=1, a non-empty list).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::InvalidArgument(format!("retry policy: {m}")));
        match self {
            RetryPolicy::Exponential {
                multiplier, jitter, ..
            } => {
                if !multiplier.is_finite() || *multiplier < 1.0 {
                    return bad("multiplier must be a number >= 1");
                }
                if !jitter.is_finite() || !(0.0..=1.0).contains(jitter) {
                    return bad("jitter must be between 0 and 1");
                }
            }
            RetryPolicy::Custom { delays } if delays.is_empty() => {
                return bad("a custom schedule needs at least one delay");
            }
            _ => {}
        }
        Ok(())
    }

    /// The delay before the attempt after `attempt` (1-based), with jitter drawn at random.
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        self.delay_with(attempt, fastrand::f64())
    }

    /// The delay with the random draw given (`unit` in `[0, 1)`), for deterministic tests.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Option<Duration> {
        let attempt = attempt.max(1);
        match self {
            RetryPolicy::None => None,
            RetryPolicy::Fixed { delay } => Some(*delay),
            RetryPolicy::Linear { base, max } => Some(base.saturating_mul(attempt).min(*max)),
            RetryPolicy::Exponential {
                base,
                multiplier,
                max,
                jitter,
            } => {
                let exp = multiplier.powi(attempt.saturating_sub(1).min(1024) as i32);
                let ms = (base.as_millis() as f64 * exp).min(max.as_millis() as f64);
                let ms = if ms.is_finite() {
                    ms
                } else {
                    max.as_millis() as f64
                };
                let j = jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
                Some(Duration::from_millis((ms * (1.0 - j)).round().max(0.0) as u64).min(*max))
            }
            RetryPolicy::Custom { delays } => {
                let i = (attempt as usize - 1).min(delays.len().saturating_sub(1));
                delays.get(i).copied()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn exp(base: u64, mult: f64, max: u64, jitter: f64) -> RetryPolicy {
        RetryPolicy::Exponential {
            base: Duration::from_millis(base),
            multiplier: mult,
            max: Duration::from_millis(max),
            jitter,
        }
    }

    #[test]
    fn known_values() {
        let p = exp(1000, 2.0, 60_000, 0.0);
        let got: Vec<u64> = (1..=8)
            .map(|a| p.delay(a).unwrap().as_millis() as u64)
            .collect();
        assert_eq!(got, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
        let l = RetryPolicy::Linear {
            base: Duration::from_secs(5),
            max: Duration::from_secs(12),
        };
        assert_eq!(l.delay(2), Some(Duration::from_secs(10)));
        assert_eq!(l.delay(3), Some(Duration::from_secs(12)));
        let c = RetryPolicy::Custom {
            delays: vec![Duration::from_secs(1), Duration::from_secs(7)],
        };
        assert_eq!(c.delay(1), Some(Duration::from_secs(1)));
        assert_eq!(c.delay(5), Some(Duration::from_secs(7)));
        assert_eq!(RetryPolicy::None.delay(1), None);
    }

    #[test]
    fn serde_form_accepts_strings_and_rejects_unknown_fields() {
        let p: RetryPolicy = serde_json::from_str(
            r#"{"type":"exponential","base":"1s","multiplier":3,"max":"1h","jitter":0.2}"#,
        )
        .unwrap();
        assert_eq!(p, exp(1000, 3.0, 3_600_000, 0.2));
        let back: RetryPolicy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(
            serde_json::from_str::<RetryPolicy>(r#"{"type":"fixed","delay":1,"x":2}"#).is_err()
        );
        assert!(exp(1, 0.5, 10, 0.0).validate().is_err());
        assert!(exp(1, 2.0, 10, 1.5).validate().is_err());
        assert!(RetryPolicy::Custom { delays: vec![] }.validate().is_err());
    }

    fn any_policy() -> impl Strategy<Value = RetryPolicy> {
        prop_oneof![
            (0u64..100_000).prop_map(|d| RetryPolicy::Fixed {
                delay: Duration::from_millis(d)
            }),
            (0u64..100_000, 0u64..10_000_000).prop_map(|(b, m)| RetryPolicy::Linear {
                base: Duration::from_millis(b),
                max: Duration::from_millis(m)
            }),
            (0u64..100_000, 1.0f64..10.0, 0u64..10_000_000, 0.0f64..=1.0)
                .prop_map(|(b, mu, m, j)| exp(b, mu, m, j)),
        ]
    }

    fn cap(p: &RetryPolicy) -> Option<Duration> {
        match p {
            RetryPolicy::Linear { max, .. } | RetryPolicy::Exponential { max, .. } => Some(*max),
            _ => None,
        }
    }

    proptest! {
        #[test]
        fn never_above_the_cap(p in any_policy(), attempt in 1u32..2000, unit in 0.0f64..1.0) {
            if let (Some(cap), Some(d)) = (cap(&p), p.delay_with(attempt, unit)) {
                prop_assert!(d <= cap, "{d:?} > cap {cap:?}");
            }
        }

        #[test]
        fn jitter_stays_within_bounds(base in 1u64..100_000, mult in 1.0f64..4.0, max in 1u64..10_000_000,
                                      jitter in 0.0f64..=1.0, attempt in 1u32..64, unit in 0.0f64..1.0) {
            let plain = exp(base, mult, max, 0.0).delay_with(attempt, 0.0).unwrap().as_millis() as f64;
            let jittered = exp(base, mult, max, jitter).delay_with(attempt, unit).unwrap().as_millis() as f64;
            prop_assert!(jittered <= plain + 0.5, "{jittered} above un-jittered {plain}");
            prop_assert!(jittered >= plain * (1.0 - jitter) - 1.0, "{jittered} below {plain}*(1-{jitter})");
        }

        #[test]
        fn non_decreasing_without_jitter(p in any_policy(), attempt in 1u32..500) {
            let p = match p {
                RetryPolicy::Exponential { base, multiplier, max, .. } =>
                    RetryPolicy::Exponential { base, multiplier, max, jitter: 0.0 },
                other => other,
            };
            prop_assert!(p.delay_with(attempt, 0.7) <= p.delay_with(attempt + 1, 0.7));
        }
    }
}
