//! From the expression text to a [`Kind`]: macros and `@every` here, cron fields by `croner`.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::Kind;
use crate::error::Error;
use crate::model::parse_duration;

/// The macros croner knows, plus `@midnight`, which it does not and which means `@daily`.
const MACROS: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

const FIELDS_5: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
const FIELDS_6: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];

pub(super) fn kind(expr: &str) -> Result<Kind, Error> {
    if expr.is_empty() {
        return Err(cron_error("the expression is empty".into()));
    }
    if let Some(interval) = expr.strip_prefix("@every") {
        return every(interval.trim());
    }
    let pattern = if expr.starts_with('@') {
        let name = expr.to_ascii_lowercase();
        match name.as_str() {
            "@midnight" => "@daily".to_string(),
            known if MACROS.contains(&known) => name,
            _ => {
                return Err(cron_error(format!(
                    "unknown macro {expr:?} (known: {}, @every DURATION)",
                    MACROS.join(", ")
                )));
            }
        }
    } else {
        expr.to_string()
    };
    let cron = cron(&pattern)?;
    Ok(if cron.pattern.hours.from_wildcard {
        Kind::RealTime(cron)
    } else {
        Kind::WallClock(cron)
    })
}

fn every(interval: &str) -> Result<Kind, Error> {
    let bad = |why: String| Error::InvalidArgument(format!("@every: {why}"));
    let d = parse_duration(interval).map_err(|e| match e {
        Error::InvalidArgument(why) => bad(why),
        other => other,
    })?;
    let ms = i64::try_from(d.as_millis()).map_err(|_| bad(format!("{interval:?} is too long")))?;
    if ms < 1_000 || ms % 1_000 != 0 {
        return Err(bad(format!(
            "the interval must be a whole number of seconds, at least 1s (got {interval:?})"
        )));
    }
    Ok(Kind::Every { interval_ms: ms })
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
}

fn cron(pattern: &str) -> Result<Cron, Error> {
    let fields: Vec<&str> = pattern.split_whitespace().collect();
    let names: &[&str] = match fields.len() {
        1 if pattern.starts_with('@') => &[],
        5 => &FIELDS_5,
        6 => &FIELDS_6,
        n => {
            return Err(cron_error(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with a \
                 leading second), got {n} in {pattern:?}"
            )));
        }
    };
    parser().parse(pattern).map_err(|whole| {
        // croner's messages do not say which field is wrong. Parse each field alone, the others
        // wildcards, to find the first one croner refuses.
        for (i, (field, name)) in fields.iter().zip(names).enumerate() {
            let mut probe = vec!["*"; fields.len()];
            probe[i] = field;
            if let Err(e) = parser().parse(&probe.join(" ")) {
                return cron_error(format!("{name} field {field:?}: {e}"));
            }
        }
        cron_error(format!("{pattern:?}: {whole}"))
    })
}

fn cron_error(why: String) -> Error {
    Error::InvalidArgument(format!("cron: {why}"))
}
