//! Parsers for command-line values, each with an error that says what was expected. clap
//! calls them, so a bad value is reported as bad usage (exit 2) before anything runs.

use std::time::Duration;

use quern::{JobId, Priority};

/// A duration such as `250ms`, `30s`, `5m`, `1h30m`, `2d` (a bare number is seconds).
pub fn duration(s: &str) -> Result<Duration, String> {
    quern::model::parse_duration(s).map_err(|e| strip(e.to_string()))
}

/// A retry policy: `none`, `fixed:5s`, `linear:1s..1m`, `exponential:1s..5m[*2][~0.1]`,
/// `custom:1s,5s,30s` (see `quern::RetryPolicy`'s text form).
pub fn retry(s: &str) -> Result<quern::RetryPolicy, String> {
    s.parse().map_err(reason)
}

/// A WAL checkpoint mode: `passive`, `full` or `truncate`.
pub fn checkpoint_mode(s: &str) -> Result<quern_sqlite::CheckpointMode, String> {
    s.parse().map_err(reason)
}

/// The reason an invalid argument carries, without the error's prefix.
fn reason(e: quern::Error) -> String {
    match e {
        quern::Error::InvalidArgument(reason) => reason,
        other => other.to_string(),
    }
}

/// A `--retain-…` value: `Keep(None)` keeps for good. (A newtype: clap reads
/// `Option<Option<T>>` as a flag whose value may be left out.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keep(pub Option<Duration>);

/// A `--retain-…` flag's value (see [`retention`]).
pub fn keep(s: &str) -> Result<Keep, String> {
    retention(s).map(Keep)
}

/// How long to keep something: a duration, or `forever` (also `none`: no retention) to keep
/// it for good (`None`).
pub fn retention(s: &str) -> Result<Option<Duration>, String> {
    match s.trim() {
        "forever" | "none" => Ok(None),
        t => quern::model::parse_duration(t)
            .map(Some)
            .map_err(|e| format!("{}, or forever", strip(e.to_string()))),
    }
}

/// A priority: 0–9 or `critical`, `high`, `normal`, `low`, `batch`.
pub fn priority(s: &str) -> Result<Priority, String> {
    s.parse::<Priority>().map_err(|e| strip(e.to_string()))
}

/// A job id (a UUID).
pub fn job_id(s: &str) -> Result<JobId, String> {
    s.parse::<JobId>().map_err(|e| strip(e.to_string()))
}

/// An RFC 3339 instant (`2026-11-23T08:00:00Z`, `2026-11-23T09:00:00+01:00`), as Unix
/// milliseconds.
pub fn rfc3339(s: &str) -> Result<i64, String> {
    let ts: jiff::Timestamp = s
        .trim()
        .parse()
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-11-23T08:00:00Z ({e})"))?;
    Ok(ts.as_millisecond())
}

/// A queue name (letters, digits, `_ . : -`).
pub fn queue(s: &str) -> Result<String, String> {
    quern::model::validate_queue_name(s)
        .map(|()| s.to_string())
        .map_err(|e| strip(e.to_string()))
}

/// A worker's queue: `NAME` or `NAME=WEIGHT`.
pub fn queue_weighted(s: &str) -> Result<String, String> {
    let (name, w) = match s.split_once('=') {
        Some((n, w)) => (n, Some(w)),
        None => (s, None),
    };
    queue(name)?;
    if let Some(w) = w {
        w.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?}: the weight after '=' must be a whole number"))?;
    }
    Ok(s.to_string())
}

/// A queue weight (0 to `MAX_WEIGHT`), or `none`.
pub fn weight(s: &str) -> Result<Limit<u32>, String> {
    match s.trim() {
        "none" => Ok(Limit(None)),
        other => match other.parse::<u32>() {
            Ok(w) if w <= quern::model::MAX_WEIGHT => Ok(Limit(Some(w))),
            _ => Err(format!(
                "{s:?} is not a weight (0 to {}) or none",
                quern::model::MAX_WEIGHT
            )),
        },
    }
}

/// Queue settings as JSON, checked.
pub fn queue_settings(s: &str) -> Result<quern::model::QueueSettings, String> {
    let q: quern::model::QueueSettings =
        serde_json::from_str(s).map_err(|e| format!("not queue settings: {e}"))?;
    q.validate().map_err(|e| strip(e.to_string()))?;
    Ok(q)
}

/// A claim order name.
pub fn order(s: &str) -> Result<quern::model::ClaimOrder, String> {
    s.parse().map_err(|e: quern::Error| strip(e.to_string()))
}

/// An aging delay, or `none`.
pub fn aging_after(s: &str) -> Result<Limit<std::time::Duration>, String> {
    match s.trim() {
        "none" => Ok(Limit(None)),
        other => quern::model::parse_duration(other)
            .map(|d| Limit(Some(d)))
            .map_err(|e| strip(e.to_string())),
    }
}

/// A job state name.
pub fn state(s: &str) -> Result<quern::JobState, String> {
    s.parse::<quern::JobState>()
        .map_err(|e| strip(e.to_string()))
}

/// A workflow graph format: mermaid, dot or text.
pub fn graph_format(s: &str) -> Result<quern::workflow::GraphFormat, String> {
    s.parse().map_err(|e: quern::Error| strip(e.to_string()))
}

/// A workflow state name.
pub fn workflow_state(s: &str) -> Result<quern::model::WorkflowState, String> {
    s.parse().map_err(|e: quern::Error| strip(e.to_string()))
}

/// `NAME=VALUE` for `--var`: the value is JSON when it parses as JSON, else a string.
pub fn var(s: &str) -> Result<(String, serde_json::Value), String> {
    quern::workflow::parse_var(s).map_err(|e| strip(e.to_string()))
}

/// A size above 0 in bytes, with an optional unit (`4096`, `500MB`, `1GiB`).
pub fn size(s: &str) -> Result<u64, String> {
    match quern::model::parse_bytes(s) {
        Ok(n) if n > 0 => Ok(n),
        Ok(_) => Err(format!(
            "{s:?} is not a size above 0 (examples: 1GiB, 500MB)"
        )),
        Err(e) => Err(strip(e.to_string())),
    }
}

/// A positive whole number.
pub fn positive(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of at least 1")),
    }
}

/// A positive size, with an optional `k`/`m` suffix.
/// A count that may be 0 (an off switch such as `--cron-ticks 0`), otherwise as [`count`].
pub fn count_or_zero(s: &str) -> Result<usize, String> {
    if s.trim() == "0" { Ok(0) } else { count(s) }
}

pub fn count(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase().replace('_', "");
    let (num, mult) = if let Some(n) = t.strip_suffix('k') {
        (n, 1_000)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 1_000_000)
    } else {
        (t.as_str(), 1)
    };
    match num.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n * mult),
        _ => Err(format!("{s:?} is not a positive count (e.g. 20000 or 20k)")),
    }
}

/// Core errors start with "invalid argument: "; on the command line that is already implied.
fn strip(s: String) -> String {
    s.strip_prefix("invalid argument: ")
        .map(str::to_string)
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_rates_parse_or_explain() {
        let (p, r) = kind_rate("generate.*=10/m").unwrap();
        let r = r.0.unwrap();
        assert_eq!((p.as_str(), r.count, r.burst), ("generate.*", 10, 10));
        let (_, r) = kind_rate("thumbnail.*=100/m,burst=5").unwrap();
        assert_eq!(r.0.unwrap().burst, 5);
        assert_eq!(kind_rate("old.*=none").unwrap().1.0, None);
        for bad in [
            "generate.*",
            "=10/m",
            "a=fast",
            "a=10/m,burst=0",
            "a=none,burst=2",
        ] {
            assert!(kind_rate(bad).is_err(), "{bad}");
        }
        assert_eq!(rate_burst("5/s,burst=20").unwrap().0.unwrap().burst, 20);
    }

    #[test]
    fn values_parse_or_explain() {
        assert_eq!(duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(duration("10x").unwrap_err().contains("not a duration"));
        assert_eq!(priority("high").unwrap(), Priority::HIGH);
        assert!(priority("urgent").unwrap_err().contains("not a priority"));
        assert_eq!(rfc3339("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(rfc3339("1970-01-01T01:00:01+01:00").unwrap(), 1000);
        assert!(rfc3339("tomorrow").unwrap_err().contains("RFC 3339"));
        assert!(job_id("nope").unwrap_err().contains("not a job id"));
        assert!(queue("a b").is_err());
        assert_eq!(count("20k").unwrap(), 20_000);
        assert!(count("0").is_err());
        assert!(positive("0").is_err());
    }
}

/// A limit that may be cleared: the value, or `None` for `none` (a newtype, so clap does not
/// read `Option<Option<_>>` as a flag with an optional value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit<T>(pub Option<T>);

/// `--retain-STATE D|forever|default` of `quern queues set`: the queue's own retention, or
/// `default` to clear it (the store-wide `[retention]` applies again).
pub fn queue_keep(s: &str) -> Result<Limit<quern::model::Keep>, String> {
    match s.trim() {
        "default" => Ok(Limit(None)),
        t => Ok(Limit(Some(match retention(t) {
            Ok(Some(d)) => quern::model::Keep::For(d),
            Ok(None) => quern::model::Keep::Forever,
            Err(e) => return Err(format!("{e}, or default")),
        }))),
    }
}

/// `--retry POLICY|default` of `quern queues set`: the queue's default retry policy (the
/// text form of `quern enqueue --retry`, so `none` is "never retry"), or `default` to clear
/// it (the worker's default applies again).
pub fn queue_retry(s: &str) -> Result<Limit<quern::RetryPolicy>, String> {
    match s.trim() {
        "default" => Ok(Limit(None)),
        t => retry(t)
            .map(|p| Limit(Some(p)))
            .map_err(|e| format!("{e}, or default")),
    }
}

/// `--concurrency N|none`: a cap of at least 1, or `none` to clear it.
pub fn cap(s: &str) -> Result<Limit<u32>, String> {
    match s.trim() {
        "none" => Ok(Limit(None)),
        other => positive(other).map(|n| Limit(Some(n))),
    }
}

/// `--group-rate COUNT/PERIOD[,burst=N]|none`: a rate with an optional burst.
pub fn rate_burst(s: &str) -> Result<Limit<quern::model::RateLimit>, String> {
    let (r, burst) = match s.split_once(',') {
        None => (s, None),
        Some((r, b)) => {
            let n = b
                .trim()
                .strip_prefix("burst=")
                .ok_or_else(|| format!("{s:?}: after the rate, only `,burst=N`"))?;
            (r, Some(positive(n)?))
        }
    };
    let mut l = rate(r)?;
    match (l.0.as_mut(), burst) {
        (Some(r), Some(b)) => r.burst = b,
        (None, Some(_)) => return Err("`none` takes no burst".into()),
        _ => {}
    }
    Ok(l)
}

/// `--kind-rate PATTERN=RATE[,burst=N]|PATTERN=none`: a kind pattern's rate limit, or
/// `none` to remove the pattern.
pub fn kind_rate(s: &str) -> Result<(String, Limit<quern::model::RateLimit>), String> {
    let (pat, r) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not PATTERN=RATE (generate.*=10/m) or PATTERN=none"))?;
    quern::model::validate_kind_pattern(pat.trim()).map_err(|e| e.to_string())?;
    Ok((pat.trim().to_string(), rate_burst(r)?))
}

/// `--rate COUNT/PERIOD|none`: `20/s`, `600/m`, `5/30s`, or `none` to clear it.
pub fn rate(s: &str) -> Result<Limit<quern::model::RateLimit>, String> {
    match s.trim() {
        "none" => Ok(Limit(None)),
        other => other
            .parse()
            .map(|r| Limit(Some(r)))
            .map_err(|e: quern::Error| e.to_string()),
    }
}
