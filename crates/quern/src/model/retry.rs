use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::{format_duration, parse_duration, serde_ms};
use crate::Error;

/// How long to wait before the next attempt after a retryable failure.
///
/// `attempt` below is the attempt that just failed, counted from 1. A policy that returns
/// `None` means "do not retry"; the job then goes to `dead` whatever `max_attempts` says.
/// Serialized with a `type` tag, durations as milliseconds or strings like `"30s"`:
/// `{"type":"exponential","base":"1s","multiplier":2,"max":"1h","jitter":0.1}`.
///
/// It also has a one-line text form ([`FromStr`] and [`Display`](fmt::Display) agree), the
/// one `quern enqueue --retry` takes:
///
/// | Text | Policy |
/// |---|---|
/// | `none` | [`RetryPolicy::None`] |
/// | `fixed:5s` | [`RetryPolicy::Fixed`], 5 s every time |
/// | `linear:10s..5m` | [`RetryPolicy::Linear`], base 10 s, capped at 5 min |
/// | `exponential:1s..1h` | [`RetryPolicy::Exponential`], base 1 s, doubling, cap 1 h, no jitter |
/// | `exponential:1s..1h*3~0.1` | the same tripling, with 10 % jitter (`~10%` also works) |
/// | `custom:1s,5s,30s` | [`RetryPolicy::Custom`] |
///
/// Durations are written as everywhere in Quern (`250ms`, `30s`, `1h30m`; a bare number is
/// seconds).
///
/// ```
/// use quern::RetryPolicy;
/// use std::time::Duration;
///
/// let p: RetryPolicy = "exponential:1s..5m~10%".parse().unwrap();
/// assert_eq!(p.delay_with(3, 0.0), Some(Duration::from_secs(4)));
/// assert_eq!(p.to_string(), "exponential:1s..5m~0.1");
/// assert!("exponential:1s".parse::<RetryPolicy>().is_err()); // the cap is required
/// ```
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
        match self.problem() {
            Some(m) => Err(Error::InvalidArgument(format!("retry policy: {m}"))),
            None => Ok(()),
        }
    }

    /// What [`RetryPolicy::validate`] refuses, as a reason.
    fn problem(&self) -> Option<&'static str> {
        match self {
            RetryPolicy::Exponential {
                multiplier, jitter, ..
            } => {
                if !multiplier.is_finite() || *multiplier < 1.0 {
                    return Some("multiplier must be a number >= 1");
                }
                if !jitter.is_finite() || !(0.0..=1.0).contains(jitter) {
                    return Some("jitter must be between 0 and 1");
                }
                None
            }
            RetryPolicy::Custom { delays } if delays.is_empty() => {
                Some("a custom schedule needs at least one delay")
            }
            _ => None,
        }
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

/// The forms [`RetryPolicy`]'s text takes, for error messages.
const FORMS: &str = "none, fixed:5s, linear:1s..1m, exponential:1s..5m[*2][~0.1], custom:1s,5s,30s";

impl FromStr for RetryPolicy {
    type Err = Error;

    /// Parses the text form (see [`RetryPolicy`]) and checks it with [`RetryPolicy::validate`].
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: String| {
            Error::InvalidArgument(format!("retry policy {s:?}: {why} (forms: {FORMS})"))
        };
        let duration = |what: &str, t: &str| {
            parse_duration(t).map_err(|_| bad(format!("{what} {:?} is not a duration", t.trim())))
        };
        // `BASE..MAX`, both required.
        let range = |name: &str, t: &str| -> Result<(Duration, Duration), Error> {
            let (base, max) = t
                .split_once("..")
                .ok_or_else(|| bad(format!("{name} needs BASE..MAX, e.g. {name}:1s..5m")))?;
            Ok((duration("base", base)?, duration("max", max)?))
        };
        let t = s.trim();
        let (name, arg) = match t.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a)),
            None => (t, None),
        };
        let policy = match (name.to_ascii_lowercase().as_str(), arg) {
            ("none", None) => RetryPolicy::None,
            ("fixed", Some(a)) => RetryPolicy::Fixed {
                delay: duration("delay", a)?,
            },
            ("linear", Some(a)) => {
                let (base, max) = range("linear", a)?;
                RetryPolicy::Linear { base, max }
            }
            ("exponential", Some(a)) => {
                let (a, jitter) = match a.split_once('~') {
                    Some((a, j)) => (
                        a,
                        parse_fraction(j).ok_or_else(|| {
                            bad(format!(
                                "jitter {:?} is not a fraction such as 0.1 or 10%",
                                j.trim()
                            ))
                        })?,
                    ),
                    None => (a, 0.0),
                };
                let (a, multiplier) = match a.split_once('*') {
                    Some((a, m)) => (
                        a,
                        m.trim().parse::<f64>().map_err(|_| {
                            bad(format!("multiplier {:?} is not a number", m.trim()))
                        })?,
                    ),
                    None => (a, default_multiplier()),
                };
                let (base, max) = range("exponential", a)?;
                RetryPolicy::Exponential {
                    base,
                    multiplier,
                    max,
                    jitter,
                }
            }
            ("custom", Some(a)) => RetryPolicy::Custom {
                delays: a
                    .split(',')
                    .map(|d| duration("delay", d))
                    .collect::<Result<_, _>>()?,
            },
            ("none", Some(_)) => return Err(bad("none takes no value".into())),
            ("fixed" | "linear" | "exponential" | "custom", None) => {
                return Err(bad(format!("{name} needs a value after ':'")));
            }
            _ => return Err(bad(format!("unknown policy {name:?}"))),
        };
        match policy.problem() {
            Some(why) => Err(bad(why.into())),
            None => Ok(policy),
        }
    }
}

/// `0.1` or `10%`.
fn parse_fraction(t: &str) -> Option<f64> {
    let t = t.trim();
    match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok().map(|p| p / 100.0),
        None => t.parse::<f64>().ok(),
    }
}

impl fmt::Display for RetryPolicy {
    /// The text form [`FromStr`] reads back (see [`RetryPolicy`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &Duration| format_duration(*d);
        match self {
            RetryPolicy::None => f.write_str("none"),
            RetryPolicy::Fixed { delay } => write!(f, "fixed:{}", d(delay)),
            RetryPolicy::Linear { base, max } => write!(f, "linear:{}..{}", d(base), d(max)),
            // The fields in the order the text writes them: `exponential:BASE..MAX*M~J`.
            RetryPolicy::Exponential {
                base,
                max,
                multiplier,
                jitter,
            } => {
                write!(f, "exponential:{}..{}", d(base), d(max))?;
                if *multiplier != default_multiplier() {
                    write!(f, "*{multiplier}")?;
                }
                if *jitter != 0.0 {
                    write!(f, "~{jitter}")?;
                }
                Ok(())
            }
            RetryPolicy::Custom { delays } => {
                let all: Vec<String> = delays.iter().map(d).collect();
                write!(f, "custom:{}", all.join(","))
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

    #[test]
    fn text_form_parses_every_variant() {
        let s = Duration::from_secs;
        let cases = [
            ("none", RetryPolicy::None),
            ("fixed:5s", RetryPolicy::Fixed { delay: s(5) }),
            (
                "linear:10s..5m",
                RetryPolicy::Linear {
                    base: s(10),
                    max: s(300),
                },
            ),
            ("exponential:1s..1h", exp(1000, 2.0, 3_600_000, 0.0)),
            ("exponential:250ms..1m*3", exp(250, 3.0, 60_000, 0.0)),
            ("exponential:1s..1h~0.25", exp(1000, 2.0, 3_600_000, 0.25)),
            ("exponential:1s..1h*1.5~10%", exp(1000, 1.5, 3_600_000, 0.1)),
            (
                "custom:1s,5s,30s",
                RetryPolicy::Custom {
                    delays: vec![s(1), s(5), s(30)],
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<RetryPolicy>().unwrap(), want, "{text}");
        }
        // Spaces around the parts and upper-case names are accepted.
        assert_eq!(
            " Fixed: 2m ".parse::<RetryPolicy>().unwrap(),
            RetryPolicy::Fixed { delay: s(120) }
        );
        assert_eq!(
            "custom:1s, 2s".parse::<RetryPolicy>().unwrap(),
            RetryPolicy::Custom {
                delays: vec![s(1), s(2)]
            }
        );
    }

    #[test]
    fn text_form_refuses_what_it_cannot_read_and_says_why() {
        for (text, why) in [
            ("", "unknown policy"),
            ("sometimes", "unknown policy"),
            ("none:1s", "none takes no value"),
            ("fixed", "needs a value"),
            ("fixed:soon", "not a duration"),
            ("linear:1s", "needs BASE..MAX"),
            ("exponential:1s", "needs BASE..MAX"),
            ("exponential:1s..x", "max \"x\" is not a duration"),
            ("exponential:1s..1m*0.5", "multiplier must be a number >= 1"),
            (
                "exponential:1s..1m*two",
                "multiplier \"two\" is not a number",
            ),
            ("exponential:1s..1m~2", "jitter must be between 0 and 1"),
            ("exponential:1s..1m~150%", "jitter must be between 0 and 1"),
            ("exponential:1s..1m~lots", "not a fraction"),
            ("custom:", "not a duration"),
            ("custom:1s,,2s", "not a duration"),
        ] {
            let e = text.parse::<RetryPolicy>().unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
            assert!(e.contains("forms: none, fixed:5s"), "{text:?}: {e}");
        }
    }

    #[test]
    fn text_form_round_trips() {
        for text in [
            "none",
            "fixed:1m30s",
            "linear:1s..1m",
            "exponential:1s..5m",
            "exponential:100ms..1h*3~0.2",
            "custom:1s,5s,30s",
        ] {
            let p: RetryPolicy = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
        }
        assert_eq!(RetryPolicy::default().to_string(), "exponential:1s..1h~0.1");
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
        fn display_then_parse_is_the_same_policy(p in any_policy()) {
            prop_assert_eq!(p.to_string().parse::<RetryPolicy>().unwrap(), p);
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
