//! `[[alerts]]` rules as written in `quern.toml`, and their checks. A rule that cannot work
//! is refused when `quern serve` starts, with a message naming the rule and the field.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a rule watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Ready (queued) jobs in `queue` (every queue when left out) above `above`.
    QueueDepth,
    /// The oldest ready job of `queue` (every queue) has waited longer than `older_than`.
    OldestReady,
    /// Of the jobs of `queue` (every queue) that finished within `window`, more than
    /// `percent` % ended dead.
    FailureRate,
    /// More than `above` (default 0) jobs of `queue` (every queue) entered the DLQ within
    /// `window`.
    DlqGrowth,
    /// Fewer than `below` (default 1) live workers serve `queue`.
    NoWorkers,
    /// A tick of `schedule` (every schedule that is not paused) is overdue by more than
    /// `grace` (default 1m): nothing fired it.
    CronMissed,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::QueueDepth => "queue_depth",
            Condition::OldestReady => "oldest_ready",
            Condition::FailureRate => "failure_rate",
            Condition::DlqGrowth => "dlq_growth",
            Condition::NoWorkers => "no_workers",
            Condition::CronMissed => "cron_missed",
        }
    }
}

/// One `[[alerts]]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Unique among the rules; names the rule in notices, logs and `GET /v1/alerts`.
    pub name: String,
    #[serde(alias = "kind")]
    pub condition: Condition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// `queue_depth` (required), `dlq_growth` (default 0): a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// `no_workers`: the fewest live workers that is fine (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// `oldest_ready` (required).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration"
    )]
    pub older_than: Option<Duration>,
    /// `failure_rate` (required): 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// `failure_rate`, `dlq_growth`: how far back finished jobs count (default 5m).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration"
    )]
    pub window: Option<Duration>,
    /// `cron_missed`: how late a tick may be (default 1m).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration"
    )]
    pub grace: Option<Duration>,
    /// `cron_missed`: only this schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The condition must hold this long before the rule fires (default 0: at once).
    #[serde(
        default,
        rename = "for",
        skip_serializing_if = "Option::is_none",
        with = "opt_duration"
    )]
    pub hold: Option<Duration>,
    /// Where notices are POSTed (`http://` or `https://`). Without one, notices only go
    /// to the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// The HMAC-SHA256 key of the `X-Quern-Signature` header. A webhook needs this or
    /// `secret_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The environment variable holding the key (read when the server starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
}

/// The default `window` of `failure_rate` and `dlq_growth`.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
/// The default `grace` of `cron_missed`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);
/// The shortest key accepted for signing.
pub const MIN_SECRET_LEN: usize = 16;

impl AlertRule {
    /// The number the value is compared with (in the value's unit: jobs, seconds, percent,
    /// workers).
    pub fn threshold(&self) -> f64 {
        match self.condition {
            Condition::QueueDepth => self.above.unwrap_or(0.0),
            Condition::DlqGrowth => self.above.unwrap_or(0.0),
            Condition::OldestReady => self.older_than.unwrap_or_default().as_secs_f64(),
            Condition::FailureRate => self.percent.unwrap_or(0.0),
            Condition::NoWorkers => self.below.unwrap_or(1.0),
            Condition::CronMissed => self.grace.unwrap_or(DEFAULT_GRACE).as_secs_f64(),
        }
    }

    /// Whether `value` breaches the threshold.
    pub fn breached(&self, value: f64) -> bool {
        match self.condition {
            Condition::NoWorkers => value < self.threshold(),
            _ => value > self.threshold(),
        }
    }

    pub fn window(&self) -> Duration {
        self.window.unwrap_or(DEFAULT_WINDOW)
    }

    /// Checks the rule and resolves `secret_env` (through `env`) into `secret`.
    pub fn resolve(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        let who = format!("alerts {:?}", self.name);
        if self.name.trim().is_empty() {
            return Err("alerts: a rule has an empty name".into());
        }
        if self.name.len() > 100 || self.name.chars().any(char::is_control) {
            return Err(format!(
                "{who}: name must be at most 100 characters, none of them control characters"
            ));
        }
        let c = self.condition.as_str();
        let need = |field: &str, have: bool| {
            if have {
                Ok(())
            } else {
                Err(format!("{who}: condition {c} needs `{field}`"))
            }
        };
        let refuse = |field: &str, have: bool| {
            if have {
                Err(format!("{who}: `{field}` does not apply to condition {c}"))
            } else {
                Ok(())
            }
        };
        use Condition::*;
        let cond = self.condition;
        need("above", self.above.is_some() || cond != QueueDepth)?;
        need(
            "older_than",
            self.older_than.is_some() || cond != OldestReady,
        )?;
        need("percent", self.percent.is_some() || cond != FailureRate)?;
        need("queue", self.queue.is_some() || cond != NoWorkers)?;
        refuse(
            "above",
            self.above.is_some() && !matches!(cond, QueueDepth | DlqGrowth),
        )?;
        refuse("below", self.below.is_some() && cond != NoWorkers)?;
        refuse(
            "older_than",
            self.older_than.is_some() && cond != OldestReady,
        )?;
        refuse("percent", self.percent.is_some() && cond != FailureRate)?;
        refuse(
            "window",
            self.window.is_some() && !matches!(cond, FailureRate | DlqGrowth),
        )?;
        refuse("grace", self.grace.is_some() && cond != CronMissed)?;
        refuse("schedule", self.schedule.is_some() && cond != CronMissed)?;
        refuse("queue", self.queue.is_some() && cond == CronMissed)?;
        for (field, v) in [("above", self.above), ("below", self.below)] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(format!(
                    "{who}: `{field}` must be a number of at least 0, not {v}"
                ));
            }
        }
        if let Some(p) = self.percent
            && !(p.is_finite() && (0.0..100.0).contains(&p))
        {
            return Err(format!(
                "{who}: `percent` must be at least 0 and below 100, not {p}"
            ));
        }
        if let Some(q) = &self.queue
            && q.trim().is_empty()
        {
            return Err(format!("{who}: `queue` is empty"));
        }
        for (field, d) in [("window", self.window), ("older_than", self.older_than)] {
            if d.is_some_and(|d| d < Duration::from_secs(1)) {
                return Err(format!("{who}: `{field}` must be at least 1s"));
            }
        }
        if let Some(url) = &self.webhook
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "{who}: `webhook` must be an http:// or https:// URL, not {url:?}"
            ));
        }
        if let Some(var) = &self.secret_env {
            if self.secret.is_some() {
                return Err(format!("{who}: give `secret` or `secret_env`, not both"));
            }
            match env(var) {
                Some(v) => self.secret = Some(v),
                None => {
                    return Err(format!(
                        "{who}: `secret_env` names {var:?}, which is not set"
                    ));
                }
            }
        }
        match (&self.webhook, &self.secret) {
            (Some(_), None) => {
                return Err(format!(
                    "{who}: `webhook` needs `secret` or `secret_env` (notices are signed)"
                ));
            }
            (None, Some(_)) => return Err(format!("{who}: `secret` without a `webhook`")),
            (_, Some(s)) if s.len() < MIN_SECRET_LEN => {
                return Err(format!(
                    "{who}: the secret is shorter than {MIN_SECRET_LEN} characters"
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Checks every rule (and that names are unique), resolving `secret_env`.
pub fn resolve_rules(
    rules: &mut [AlertRule],
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for r in rules.iter_mut() {
        r.resolve(&env)?;
        if !seen.insert(r.name.clone()) {
            return Err(format!("alerts: the name {:?} is used twice", r.name));
        }
    }
    Ok(())
}

/// Durations written like `"30s"` or `"5m"`; a bare number is refused (seconds?
/// milliseconds?).
mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&quern::model::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(i64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => quern::model::parse_duration(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
            Raw::N(n) => Err(serde::de::Error::custom(format!(
                "write durations as strings with a unit, like \"{n}s\" or \"{n}m\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_text: &str) -> AlertRule {
        let v: serde_json::Value = serde_json::from_str(toml_text).unwrap();
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn good_rules_resolve_and_bad_ones_name_the_field() {
        let mut r = rule(
            r#"{"name":"d","condition":"queue_depth","queue":"q","above":10,"webhook":"http://127.0.0.1:1/x","secret_env":"S"}"#,
        );
        r.resolve(|v| (v == "S").then(|| "0123456789abcdef".into()))
            .unwrap();
        assert_eq!(r.secret.as_deref(), Some("0123456789abcdef"));
        assert!(r.breached(11.0) && !r.breached(10.0));

        let cases = [
            (r#"{"name":"d","condition":"queue_depth"}"#, "needs `above`"),
            (
                r#"{"name":"d","condition":"oldest_ready"}"#,
                "needs `older_than`",
            ),
            (
                r#"{"name":"d","condition":"failure_rate"}"#,
                "needs `percent`",
            ),
            (r#"{"name":"d","condition":"no_workers"}"#, "needs `queue`"),
            (
                r#"{"name":"d","condition":"no_workers","queue":"q","above":1}"#,
                "`above` does not apply",
            ),
            (
                r#"{"name":"d","condition":"failure_rate","percent":120}"#,
                "`percent` must be",
            ),
            (
                r#"{"name":"d","condition":"queue_depth","above":-1}"#,
                "`above` must be",
            ),
            (
                r#"{"name":"d","condition":"queue_depth","above":1,"webhook":"ftp://x"}"#,
                "`webhook` must be",
            ),
            (
                r#"{"name":"d","condition":"queue_depth","above":1,"webhook":"http://x"}"#,
                "needs `secret`",
            ),
            (
                r#"{"name":"d","condition":"queue_depth","above":1,"webhook":"http://x","secret":"short"}"#,
                "shorter than",
            ),
            (
                r#"{"name":"d","condition":"queue_depth","above":1,"webhook":"http://x","secret_env":"NOPE"}"#,
                "not set",
            ),
            (
                r#"{"name":"d","condition":"cron_missed","queue":"q"}"#,
                "`queue` does not apply",
            ),
        ];
        for (text, want) in cases {
            let err = rule(text).resolve(|_| None).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
            assert!(
                err.contains("alerts \"d\""),
                "{text}: names the rule: {err}"
            );
        }
        let mut two = vec![
            rule(r#"{"name":"d","condition":"dlq_growth"}"#),
            rule(r#"{"name":"d","condition":"dlq_growth"}"#),
        ];
        assert!(
            resolve_rules(&mut two, |_| None)
                .unwrap_err()
                .contains("used twice")
        );
    }

    #[test]
    fn no_workers_fires_below_and_the_others_above() {
        let r = rule(r#"{"name":"w","condition":"no_workers","queue":"q"}"#);
        assert!(r.breached(0.0) && !r.breached(1.0));
        let r = rule(r#"{"name":"g","condition":"dlq_growth"}"#);
        assert!(r.breached(1.0) && !r.breached(0.0));
    }
}
