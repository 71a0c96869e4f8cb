//! The jobs page's search language: `queue:` `kind:` `state:` `id:` `unique:` `error:`
//! qualifiers and free text, space-separated (a value may be quoted: `error:"timed out"`).
//!
//! `queue:`, `kind:` and `state:` go to the store's indexed list (newest first, paged by id);
//! `id:` is a single lookup. `unique:`, `error:`, `group:`, `payload.<field>:` and free text
//! are checked on the jobs the indexed list yields, at most [`SCAN_BUDGET`] per request: an
//! answer that stopped there says so and gives a cursor to go on. Neither store indexes
//! payload fields, and neither lists jobs by group (SQLite's `jobs_group` index and Redis's
//! per-group lists hold only what the claim needs), so those two are checked, not looked up.

use quern::JobId;
use quern::model::{Job, JobState};

/// The most jobs one search request reads from the store beyond the ones it returns.
pub const SCAN_BUDGET: usize = 2_000;

/// A parsed search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Search {
    pub queue: Option<String>,
    pub kind: Option<String>,
    pub state: Option<JobState>,
    pub id: Option<JobId>,
    pub unique: Option<String>,
    pub error: Option<String>,
    /// The job's group (`NewJob::group`), exactly.
    pub group: Option<String>,
    /// `payload.<path>:<value>`: the payload (JSON, or MessagePack read as JSON) has `value`
    /// at the dotted `path` (a string equal to it, or a number, boolean or null written
    /// that way). All must hold.
    pub payload: Vec<(Vec<String>, String)>,
    /// Free words, all of which must appear (case-insensitively) in the job's id, kind,
    /// queue, unique key, payload or error messages.
    pub text: Vec<String>,
}

fn words(q: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in q.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("a quote is not closed".into());
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn state(s: &str) -> Result<JobState, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        format!(
            "unknown state {s:?} (scheduled, queued, blocked, running, succeeded, dead, cancelled, skipped)"
        )
    })
}

impl Search {
    /// Parses a search; bad input gets a clear reason.
    pub fn parse(q: &str) -> Result<Search, String> {
        let mut s = Search::default();
        for w in words(q)? {
            let Some((key, value)) = w.split_once(':') else {
                s.text.push(w.to_lowercase());
                continue;
            };
            let slot = match key {
                "queue" => &mut s.queue,
                "kind" => &mut s.kind,
                "unique" => &mut s.unique,
                "error" => &mut s.error,
                "state" => {
                    s.state = Some(state(value)?);
                    continue;
                }
                "id" => {
                    s.id = Some(
                        value
                            .parse()
                            .map_err(|_| format!("id:{value} is not a job id"))?,
                    );
                    continue;
                }
                "group" => &mut s.group,
                k if k.starts_with("payload.") => {
                    let path: Vec<String> = k["payload.".len()..]
                        .split('.')
                        .map(str::to_string)
                        .collect();
                    if path.iter().any(String::is_empty) {
                        return Err(format!(
                            "{k}: needs a field name after each dot, as in payload.customer.id:42"
                        ));
                    }
                    s.payload.push((path, value.to_string()));
                    continue;
                }
                _ => {
                    s.text.push(w.to_lowercase());
                    continue;
                }
            };
            if value.is_empty() {
                return Err(format!("{key}: needs a value"));
            }
            *slot = Some(value.to_string());
        }
        Ok(s)
    }

    /// Whether the qualifiers the store cannot filter on need a look at each job.
    pub fn scans(&self) -> bool {
        self.unique.is_some()
            || self.error.is_some()
            || self.group.is_some()
            || !self.payload.is_empty()
            || !self.text.is_empty()
    }

    /// Whether `job` matches every part of the search.
    pub fn matches(&self, job: &Job) -> bool {
        if self.queue.as_ref().is_some_and(|q| *q != job.queue)
            || self.kind.as_ref().is_some_and(|k| *k != job.kind)
            || self.state.is_some_and(|s| s != job.state)
            || self.id.is_some_and(|id| id != job.id)
        {
            return false;
        }
        if let Some(u) = &self.unique
            && job.unique_key.as_deref() != Some(u.as_str())
        {
            return false;
        }
        if let Some(g) = &self.group
            && job.group.as_deref() != Some(g.as_str())
        {
            return false;
        }
        if !self.payload.is_empty() {
            let Ok(v) = job.payload.to_json_value() else {
                return false;
            };
            if !self
                .payload
                .iter()
                .all(|(path, want)| field_is(&v, path, want))
            {
                return false;
            }
        }
        if let Some(e) = &self.error {
            let e = e.to_lowercase();
            if !job
                .errors
                .iter()
                .any(|r| r.message.to_lowercase().contains(&e))
            {
                return false;
            }
        }
        if self.text.is_empty() {
            return true;
        }
        let mut hay = format!(
            "{} {} {} {}",
            job.id,
            job.kind,
            job.queue,
            job.unique_key.as_deref().unwrap_or("")
        );
        if let Ok(v) = job.payload.to_json_value() {
            hay.push(' ');
            hay.push_str(&v.to_string());
        }
        for r in &job.errors {
            hay.push(' ');
            hay.push_str(&r.message);
        }
        let hay = hay.to_lowercase();
        self.text.iter().all(|w| hay.contains(w.as_str()))
    }
}

/// Whether `v` has at the dotted `path` a string equal to `want`, or a number, boolean or
/// null whose JSON text is `want`. An array index is a path segment too (`items.0`).
fn field_is(v: &serde_json::Value, path: &[String], want: &str) -> bool {
    let mut cur = v;
    for seg in path {
        let next = match cur {
            serde_json::Value::Object(m) => m.get(seg),
            serde_json::Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        let Some(next) = next else { return false };
        cur = next;
    }
    match cur {
        serde_json::Value::String(s) => s == want,
        serde_json::Value::Number(n) => {
            n.to_string() == want || want.parse::<f64>().ok() == n.as_f64()
        }
        serde_json::Value::Bool(b) => want == if *b { "true" } else { "false" },
        serde_json::Value::Null => want == "null",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_and_text_parse() {
        let s = Search::parse(r#"queue:mail state:dead error:"timed out" Alice"#).unwrap();
        assert_eq!(s.queue.as_deref(), Some("mail"));
        assert_eq!(s.state, Some(JobState::Dead));
        assert_eq!(s.error.as_deref(), Some("timed out"));
        assert_eq!(s.text, vec!["alice".to_string()]);
        assert!(s.scans());
        assert!(!Search::parse("queue:a kind:b").unwrap().scans());
    }

    #[test]
    fn bad_searches_say_why() {
        for (q, want) in [
            ("state:nope", "unknown state"),
            ("id:xyz", "not a job id"),
            ("queue:", "needs a value"),
            ("payload.:42", "field name"),
            ("payload.a..b:1", "field name"),
            ("group:", "needs a value"),
            ("error:\"open", "quote"),
        ] {
            let e = Search::parse(q).unwrap_err();
            assert!(e.contains(want), "{q}: {e}");
        }
    }

    #[test]
    fn group_and_payload_fields_match() {
        let mut j = quern::model::Job::from_new(
            quern::NewJob::json(
                "mail",
                serde_json::json!({
                    "customer": 42, "plan": "pro", "tags": ["a", "b"], "vip": true,
                    "address": {"city": "Lyon"}
                }),
            )
            .unwrap()
            .group("acme"),
            JobState::Queued,
            0,
        );
        let yes = |q: &str, j: &quern::model::Job| Search::parse(q).unwrap().matches(j);
        assert!(yes("group:acme", &j));
        assert!(!yes("group:other", &j));
        assert!(yes("payload.customer:42", &j));
        assert!(yes("payload.customer:42.0", &j));
        assert!(!yes("payload.customer:43", &j));
        assert!(yes("payload.plan:pro payload.vip:true", &j));
        assert!(!yes("payload.plan:pro payload.vip:false", &j));
        assert!(yes("payload.address.city:Lyon", &j));
        assert!(yes("payload.tags.1:b", &j));
        assert!(!yes("payload.missing:1", &j));
        assert!(!yes("payload.address:Lyon", &j), "an object is not a value");
        assert!(Search::parse("payload.customer:42").unwrap().scans());
        j.group = None;
        assert!(!yes("group:acme", &j));
    }
}
