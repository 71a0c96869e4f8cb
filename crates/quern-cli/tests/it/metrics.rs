//! `GET /metrics` of the built `quern serve`, on SQLite and Redis, parsed by a real
//! Prometheus parser: the OpenMetrics parser of the `prometheus-client` Python package
//! (pinned, installed by `.ci/prometheus-client`). Jobs are enqueued, leased, completed,
//! failed, retried, let die and rescued over HTTP, and the parsed counters, label sets,
//! histogram buckets and the store's gauges are checked against what was done.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::Http;
use crate::support::{Env, eventually};

/// One parsed sample: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One parsed family: name, type and samples.
#[derive(Debug, Clone)]
struct Family {
    name: String,
    kind: String,
    samples: Vec<Sample>,
}

/// The Python with `prometheus_client`, from `.ci/prometheus-client` (which installs it
/// into a virtualenv under the target dir when missing).
fn python() -> &'static str {
    static PY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/prometheus-client");
        let out = std::process::Command::new("bash")
            .arg(script)
            .output()
            .expect("run .ci/prometheus-client");
        assert!(
            out.status.success(),
            ".ci/prometheus-client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type,
                "samples": [[s.name, s.labels, s.value] for s in f.samples]})
print(json.dumps(out))
"#;

/// Parses an exposition with the OpenMetrics parser (strict: a malformed line, a missing
/// `# EOF`, a bad histogram fails it).
fn parse(text: &str) -> Vec<Family> {
    use std::io::Write;
    let mut child = std::process::Command::new(python())
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| Family {
            name: f["name"].as_str().unwrap().to_string(),
            kind: f["type"].as_str().unwrap().to_string(),
            samples: f["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| Sample {
                    name: s[0].as_str().unwrap().to_string(),
                    labels: serde_json::from_value(s[1].clone()).unwrap(),
                    value: s[2].as_f64().unwrap(),
                })
                .collect(),
        })
        .collect()
}

struct Scrape {
    families: Vec<Family>,
}

impl Scrape {
    fn take(h: &Http) -> Scrape {
        let r = h.get("/metrics");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/openmetrics-text")),
            "{:?}",
            r.header("content-type")
        );
        Scrape {
            families: parse(&String::from_utf8(r.body).unwrap()),
        }
    }

    fn family(&self, name: &str) -> &Family {
        self.families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    /// The value of the one sample `name` whose labels include `labels`; 0 when none.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self
            .families
            .iter()
            .flat_map(|f| &f.samples)
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
        found.first().map_or(0.0, |s| s.value)
    }

    /// A histogram's buckets (upper bound, cumulative count) for labels, checked: bounds
    /// ascend, counts never fall, the `+Inf` bucket equals `_count`.
    fn buckets(&self, family: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let f = self.family(family);
        assert_eq!(f.kind, "histogram", "{family}");
        let matches = |s: &Sample| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        };
        let mut b: Vec<(f64, f64)> = f
            .samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket") && matches(s))
            .map(|s| {
                let le = &s.labels["le"];
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (bound, s.value)
            })
            .collect();
        b.sort_by(|x, y| x.0.total_cmp(&y.0));
        assert!(!b.is_empty(), "{family} {labels:?} has no buckets");
        assert!(b.windows(2).all(|w| w[0].1 <= w[1].1), "{family}: {b:?}");
        assert_eq!(b.last().unwrap().0, f64::INFINITY);
        assert_eq!(
            b.last().unwrap().1,
            self.value(&format!("{family}_count"), labels),
            "{family}"
        );
        b
    }
}

fn enqueue(h: &Http, body: Value) -> String {
    let r = h.post("/v1/jobs", &body);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_string()
}

fn register(h: &Http, queues: &[&str], concurrency: u32) -> String {
    let r = h.post(
        "/v1/workers",
        &json!({"queues": queues, "concurrency": concurrency, "hostname": "metrics-test"}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["worker_id"].as_str().unwrap().to_string()
}

fn lease(h: &Http, worker: &str, queue: &str, max: usize, extra: Value) -> Vec<Value> {
    let mut b = json!({"worker_id": worker, "queues": [queue], "max": max, "wait_ms": 2000});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    let r = h.post("/v1/lease", &b);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["jobs"].as_array().unwrap().clone()
}

fn ack(h: &Http, job: &Value, call: &str, body: Value) {
    let mut b = json!({"token": job["token"]});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    let r = h.post(
        &format!("/v1/jobs/{}/{call}", job["id"].as_str().unwrap()),
        &b,
    );
    assert_eq!(
        r.status,
        200,
        "{call}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

on_every_store!(counters_histograms_and_gauges);

fn counters_histograms_and_gauges(mut env: Env) {
    env.var("QUERN_SERVER__INSTANCE", "metrics-a");
    let srv = env.serve(&[]);
    let h = srv.http();
    let me = [("instance", "metrics-a")];
    let qa = [("queue", "mq"), ("kind", "a")];
    let qb = [("queue", "mq"), ("kind", "b")];

    // Nothing done yet: no worker, no job series; the exposition parses.
    let s = Scrape::take(&h);
    assert_eq!(s.family("quern_workers").kind, "gauge");
    assert_eq!(s.value("quern_workers", &[("state", "alive")]), 0.0);

    // Three `a` jobs: two complete, one fails for good (not retryable → dead).
    for i in 0..3 {
        enqueue(&h, json!({"kind": "a", "queue": "mq", "payload": {"i": i}}));
    }
    // A duplicate of a unique key is not counted as enqueued.
    let b = json!({"kind": "b", "queue": "mq", "payload": {}, "max_attempts": 2, "unique_key": "only-one"});
    enqueue(&h, b.clone());
    let dup = h.post("/v1/jobs", &b);
    assert_eq!((dup.status, &dup.json()["duplicate"]), (200, &json!(true)));
    let w = register(&h, &["mq", "slow", "later"], 4);
    let a_jobs = lease(&h, &w, "mq", 10, json!({}));
    assert_eq!(a_jobs.len(), 4, "{a_jobs:?}");
    let (b_job, a_jobs): (Vec<Value>, Vec<Value>) =
        a_jobs.into_iter().partition(|j| j["kind"] == "b");
    ack(&h, &a_jobs[0], "complete", json!({"result": 1}));
    ack(&h, &a_jobs[1], "complete", json!({"result": 2}));
    ack(
        &h,
        &a_jobs[2],
        "fail",
        json!({"error": "bad input", "retryable": false}),
    );
    // `b` fails, is retried, fails again on its last attempt: dead.
    ack(
        &h,
        &b_job[0],
        "fail",
        json!({"error": "flaky", "retry_after_ms": 50}),
    );
    let again = {
        let mut got = Vec::new();
        eventually(Duration::from_secs(10), "the retry is due", || {
            got = lease(&h, &w, "mq", 1, json!({"wait_ms": 200}));
            !got.is_empty()
        });
        got
    };
    assert_eq!(again[0]["attempt"], 2);
    ack(
        &h,
        &again[0],
        "fail",
        json!({"error": "flaky again", "retry_after_ms": 50}),
    );

    // A delayed job, leased when due: delayed lateness.
    enqueue(
        &h,
        json!({"kind": "d", "queue": "later", "payload": {}, "delay_ms": 1500}),
    );
    let s = Scrape::take(&h);
    assert_eq!(
        s.value(
            "quern_queue_jobs",
            &[("queue", "later"), ("state", "scheduled")]
        ),
        1.0
    );
    let mut delayed = Vec::new();
    eventually(Duration::from_secs(10), "the delayed job is due", || {
        delayed = lease(&h, &w, "later", 1, json!({"wait_ms": 500}));
        !delayed.is_empty()
    });
    ack(&h, &delayed[0], "complete", json!({}));

    // A lease left to expire: the server's rescuer takes it back (attempts remain).
    enqueue(
        &h,
        json!({"kind": "c", "queue": "slow", "payload": {}, "max_attempts": 3}),
    );
    let lost = lease(&h, &w, "slow", 1, json!({"lease_ms": 200}));
    assert_eq!(lost.len(), 1);
    eventually(Duration::from_secs(15), "the rescue", || {
        Scrape::take(&h).value(
            "quern_jobs_rescued_total",
            &[("queue", "slow"), ("kind", "c")],
        ) == 1.0
    });

    // Limits: a capped, rate-limited queue reports its use (the rescued job, leased again,
    // runs under them).
    let r = h.json_request(
        "PATCH",
        "/v1/queues/slow/settings",
        &json!({"concurrency": 5, "rate": "600/h", "burst": 10}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let back = lease(&h, &w, "slow", 1, json!({}));
    assert_eq!(back[0]["attempt"], 2, "{back:?}");

    let s = Scrape::take(&h);
    let v = |name: &str, labels: &[(&str, &str)]| {
        let mut l = labels.to_vec();
        l.extend(me);
        s.value(name, &l)
    };
    assert_eq!(s.family("quern_jobs_enqueued").kind, "counter");
    assert_eq!(s.family("quern_queue_jobs").kind, "gauge");
    assert_eq!(v("quern_jobs_enqueued_total", &qa), 3.0);
    assert_eq!(v("quern_jobs_enqueued_total", &qb), 1.0);
    assert_eq!(v("quern_jobs_completed_total", &qa), 2.0);
    assert_eq!(v("quern_jobs_failed_total", &qa), 1.0);
    assert_eq!(v("quern_jobs_dead_total", &qa), 1.0);
    assert_eq!(v("quern_jobs_retried_total", &qa), 0.0);
    assert_eq!(v("quern_jobs_failed_total", &qb), 2.0);
    assert_eq!(v("quern_jobs_retried_total", &qb), 1.0);
    assert_eq!(v("quern_jobs_dead_total", &qb), 1.0);
    assert_eq!(v("quern_jobs_completed_total", &qb), 0.0);
    let c = [("queue", "slow"), ("kind", "c")];
    assert_eq!(v("quern_jobs_rescued_total", &c), 1.0);
    assert_eq!(v("quern_jobs_dead_total", &c), 0.0);

    // Every counter sample carries the instance label; the label sets are exactly these.
    for f in s.families.iter().filter(|f| f.kind == "counter") {
        for smp in &f.samples {
            let keys: Vec<&str> = smp.labels.keys().map(String::as_str).collect();
            assert_eq!(keys, ["instance", "kind", "queue"], "{smp:?}");
            assert_eq!(smp.labels["instance"], "metrics-a");
        }
    }

    // Histograms: `a` waited three times (one claim each), ran three times (two
    // completions, one failure); `b` was claimed twice and ran twice.
    let wait = s.buckets("quern_job_wait_seconds", &qa);
    assert_eq!(wait.last().unwrap().1, 3.0);
    assert_eq!(
        wait.iter().map(|b| b.0).collect::<Vec<_>>()[..3],
        [0.001, 0.0025, 0.005]
    );
    assert_eq!(
        s.buckets("quern_job_run_seconds", &qa).last().unwrap().1,
        3.0
    );
    assert_eq!(
        s.buckets("quern_job_wait_seconds", &qb).last().unwrap().1,
        2.0
    );
    assert_eq!(
        s.buckets("quern_job_run_seconds", &qb).last().unwrap().1,
        2.0
    );
    // The delayed job and the retry of `b` (due later than enqueued) count as delayed.
    let late = [("queue", "later"), ("kind", "d")];
    assert_eq!(
        s.buckets("quern_delayed_job_lateness_seconds", &late)
            .last()
            .unwrap()
            .1,
        1.0
    );
    assert_eq!(
        s.buckets("quern_delayed_job_lateness_seconds", &qb)
            .last()
            .unwrap()
            .1,
        1.0
    );
    // Waits are short here: every one was under 10 s.
    let under_10s = wait.iter().find(|b| b.0 == 10.0).unwrap().1;
    assert_eq!(under_10s, 3.0);

    // The store's gauges: no instance label, counts by state.
    let q = |state: &str| s.value("quern_queue_jobs", &[("queue", "mq"), ("state", state)]);
    assert_eq!((q("succeeded"), q("dead"), q("queued")), (2.0, 2.0, 0.0));
    assert_eq!(
        s.value(
            "quern_queue_jobs",
            &[("queue", "later"), ("state", "succeeded")]
        ),
        1.0
    );
    for smp in &s.family("quern_queue_jobs").samples {
        assert!(!smp.labels.contains_key("instance"), "{smp:?}");
    }
    assert_eq!(s.value("quern_queue_paused", &[("queue", "mq")]), 0.0);
    assert_eq!(s.value("quern_workers", &[("state", "alive")]), 1.0);
    assert_eq!(s.value("quern_worker_slots", &[]), 4.0);
    assert_eq!(s.value("quern_queue_workers", &[("queue", "mq")]), 1.0);
    let slow = [("queue", "slow")];
    assert_eq!(s.value("quern_queue_concurrency_limit", &slow), 5.0);
    let per_s = s.value("quern_queue_rate_limit_per_second", &slow);
    assert!((per_s - 1.0 / 6.0).abs() < 1e-9, "{per_s}");
    // A burst of 10, one token taken, one back every 6 s.
    let tokens = s.value("quern_queue_rate_tokens", &slow);
    assert!((8.0..10.0).contains(&tokens), "one token taken: {tokens}");
    assert_eq!(s.value("quern_queue_running", &slow), 1.0);
    assert_eq!(
        s.value(
            "quern_queue_jobs",
            &[("queue", "slow"), ("state", "running")]
        ),
        1.0
    );
    // No cap on `mq`: no limit sample at all.
    assert!(
        !s.family("quern_queue_concurrency_limit")
            .samples
            .iter()
            .any(|x| x.labels["queue"] == "mq")
    );
}

/// A cron run leased over HTTP: its lateness is reported by schedule.
#[test]
fn cron_lateness_by_schedule() {
    let mut env = Env::new();
    let srv = env.serve(&[]);
    let h = srv.http();
    let r = h.json_request(
        "PUT",
        "/v1/schedules/beat",
        &json!({"cron": "@every 1s", "job": {"kind": "tick", "queue": "cronq", "payload": {}}}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let w = register(&h, &["cronq"], 1);
    let mut got = Vec::new();
    eventually(Duration::from_secs(10), "a cron job", || {
        got = lease(&h, &w, "cronq", 1, json!({"wait_ms": 1000}));
        !got.is_empty()
    });
    let s = Scrape::take(&h);
    let b = s.buckets("quern_cron_lateness_seconds", &[("schedule", "beat")]);
    assert_eq!(b.last().unwrap().1, 1.0);
    // Enqueued by the server's scheduler, so counted as enqueued by this process.
    assert!(
        s.value(
            "quern_jobs_enqueued_total",
            &[("queue", "cronq"), ("kind", "tick")]
        ) >= 1.0
    );
}

/// `/metrics` needs a `read` token once tokens exist (any role that reads), unless
/// `metrics_public`; the default instance label is `hostname:port`.
#[test]
fn metrics_token_and_default_instance() {
    let mut env = Env::new();
    env.var(
        "QUERN_SERVER__TOKENS",
        "ops:read:read-secret-0123456789,w:work:work-secret-0123456789",
    );
    let srv = env.serve(&[]);
    let h = srv.http();
    assert_eq!(h.get("/metrics").status, 401);
    assert_eq!(
        h.with_token("work-secret-0123456789")
            .get("/metrics")
            .status,
        403
    );
    Scrape::take(&h.with_token("read-secret-0123456789"));
    let r = h
        .with_token("read-secret-0123456789")
        .post("/v1/jobs", &json!({"kind": "k", "payload": {}}));
    assert_eq!(r.status, 403, "a read token cannot enqueue");
    {
        let mut e2 = Env::new();
        e2.var("QUERN_SERVER__TOKENS", "a:admin:admin-secret-0123456789");
        e2.var("QUERN_SERVER__METRICS_PUBLIC", "true");
        let srv2 = e2.serve(&[]);
        let h2 = srv2.http();
        let r = h2
            .with_token("admin-secret-0123456789")
            .post("/v1/jobs", &json!({"kind": "k", "payload": {}}));
        assert_eq!(r.status, 201);
        // Public: no token needed.
        let s = Scrape::take(&h2);
        let port2 = srv2.addr.rsplit(':').next().unwrap().to_string();
        let instance = s
            .family("quern_jobs_enqueued")
            .samples
            .first()
            .map(|x| x.labels["instance"].clone())
            .unwrap();
        assert!(
            instance.ends_with(&format!(":{port2}")) && instance.len() > port2.len() + 1,
            "{instance}"
        );
        // The API itself still needs its token.
        assert_eq!(h2.get("/v1/jobs").status, 401);
    }
}
