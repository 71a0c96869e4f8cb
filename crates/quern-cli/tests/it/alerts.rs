//! `[[alerts]]` under `quern serve`, against a webhook receiver on 127.0.0.1 run by the test:
//! one firing and one resolved notice per episode while two servers share the store, each
//! signed (HMAC-SHA256, checked here with `ring`); a receiver that fails twice still gets
//! its notice; a bad rule stops `quern serve` at start. And the DLQ delete, over REST and
//! the CLI.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::Http;
use crate::support::{Env, eventually};

const SECRET: &str = "alerts-test-secret-0123456789";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    at: Instant,
    signature: Option<String>,
    timestamp: Option<String>,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("notice is JSON")
    }
}

/// A webhook receiver on a free loopback port: answers the given statuses in turn, then
/// 200, and records every request.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn start(statuses: Vec<u16>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&got);
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let (mut len, mut signature, mut timestamp) = (0usize, None, None);
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':') {
                        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                        match k.as_str() {
                            "content-length" => len = v.parse().unwrap_or(0),
                            "x-quern-signature" => signature = Some(v),
                            "x-quern-timestamp" => timestamp = Some(v),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    continue;
                }
                keep.lock().unwrap().push(Got {
                    at: Instant::now(),
                    signature,
                    timestamp,
                    body,
                });
                let status = statuses.next().unwrap_or(200);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, got }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

/// The signature header a correct sender puts on `body`.
fn expected_signature(body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn write_rules(env: &Env, url: &str) {
    std::fs::write(
        env.path("quern.toml"),
        format!(
            r#"
[[alerts]]
name = "backlog"
condition = "queue_depth"
queue = "q"
above = 2
webhook = "{url}"
secret_env = "ALERT_SECRET"
"#
        ),
    )
    .unwrap();
}

fn enqueue(h: &Http, body: Value) -> String {
    let r = h.post("/v1/jobs", &body);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_string()
}

on_every_store!(
    two_servers_send_one_notice_per_episode,
    failing_receiver_gets_the_notice_on_retry,
    dlq_delete_by_ids_filter_and_dry_run,
);

/// Two servers on one store: the queue passes its depth threshold, the receiver gets one
/// signed firing notice within about a second, and after the queue drains one resolved
/// notice; `GET /v1/alerts` says the same on both servers.
fn two_servers_send_one_notice_per_episode(mut env: Env) {
    let rx = Receiver::start(Vec::new());
    write_rules(&env, &rx.url);
    env.var("ALERT_SECRET", SECRET);
    let a = env.serve(&[]);
    let b = env.serve(&[]);
    let (ha, hb) = (a.http(), b.http());
    let list = ha.get("/v1/alerts").json();
    assert_eq!(list["alerts"][0]["state"], "ok", "{list}");
    assert_eq!(list["alerts"][0]["threshold"], json!(2.0), "{list}");

    let ids: Vec<String> = (0..3)
        .map(|_| enqueue(&hb, json!({"kind": "k", "queue": "q"})))
        .collect();
    let crossed = Instant::now();
    eventually(Duration::from_secs(5), "a firing notice", || {
        !rx.got().is_empty()
    });
    let first = rx.got()[0].clone();
    let latency = first.at - crossed;
    eprintln!("firing notice {latency:?} after the threshold was crossed");
    assert!(latency < Duration::from_millis(1500), "took {latency:?}");
    let n = first.json();
    assert_eq!(
        (
            &n["alert"],
            &n["state"],
            &n["queue"],
            &n["value"],
            &n["episode"]
        ),
        (
            &json!("backlog"),
            &json!("firing"),
            &json!("q"),
            &json!(3.0),
            &json!(1)
        ),
        "{n}"
    );
    assert_eq!(
        first.signature.as_deref(),
        Some(expected_signature(&first.body).as_str())
    );
    assert_eq!(first.timestamp, Some(n["sent_at"].to_string()), "{n}");
    for h in [&ha, &hb] {
        let v = h.get("/v1/alerts").json();
        let r = &v["alerts"][0];
        assert_eq!(
            (&r["state"], &r["value"]),
            (&json!("firing"), &json!(3.0)),
            "{v}"
        );
        assert!(r["since"].is_i64(), "{v}");
        assert_eq!(r["last_notification"]["state"], "firing", "{v}");
    }
    // Still firing a while later (several evaluations on two servers): nothing new.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rx.got().len(), 1, "one firing notice: {:?}", rx.got());

    for id in &ids {
        let r = ha.post(&format!("/v1/jobs/{id}/cancel"), &json!({}));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    eventually(Duration::from_secs(5), "a resolved notice", || {
        rx.got().len() >= 2
    });
    std::thread::sleep(Duration::from_millis(1500));
    let got = rx.got();
    assert_eq!(got.len(), 2, "one firing, one resolved: {got:?}");
    let r = got[1].json();
    assert_eq!(
        (&r["state"], &r["episode"]),
        (&json!("resolved"), &json!(1)),
        "{r}"
    );
    // Resolved by the first reading at or below the threshold (the cancels race it).
    assert!(r["value"].as_f64().unwrap() <= 2.0, "{r}");
    assert_eq!(
        got[1].signature.as_deref(),
        Some(expected_signature(&got[1].body).as_str())
    );
    assert_eq!(hb.get("/v1/alerts").json()["alerts"][0]["state"], "ok");
}

/// A receiver that answers 500 twice then 200 gets the same notice three times: the last
/// delivery succeeds and nothing more is sent.
fn failing_receiver_gets_the_notice_on_retry(mut env: Env) {
    let rx = Receiver::start(vec![500, 500]);
    write_rules(&env, &rx.url);
    env.var("ALERT_SECRET", SECRET);
    let srv = env.serve(&[]);
    let h = srv.http();
    for _ in 0..3 {
        enqueue(&h, json!({"kind": "k", "queue": "q"}));
    }
    eventually(Duration::from_secs(10), "three attempts", || {
        rx.got().len() >= 3
    });
    std::thread::sleep(Duration::from_millis(1500));
    let got = rx.got();
    assert_eq!(got.len(), 3, "{got:?}");
    for g in &got {
        assert_eq!(g.body, got[0].body, "every retry sends the same notice");
        assert_eq!(
            g.signature.as_deref(),
            Some(expected_signature(&g.body).as_str())
        );
    }
    assert_eq!(got[0].json()["state"], "firing");
    assert!(
        got[2].at - got[0].at >= Duration::from_millis(500),
        "backoff between attempts: {:?}",
        got[2].at - got[0].at
    );
    assert!(srv.log().contains("retrying"), "{}", srv.log());
}

/// A rule missing its threshold, or naming an unset secret variable, stops `quern serve`
/// at start (exit 2) with a message naming the rule and the field.
#[test]
fn bad_rule_is_refused_at_start() {
    let env = Env::new();
    std::fs::write(
        env.path("quern.toml"),
        "[[alerts]]\nname = \"backlog\"\ncondition = \"queue_depth\"\nqueue = \"q\"\n",
    )
    .unwrap();
    let err = env.fails(2, &["serve", "--addr", "127.0.0.1:0"]);
    assert!(
        err.contains("alerts \"backlog\"") && err.contains("`above`"),
        "{err}"
    );
    std::fs::write(
        env.path("quern.toml"),
        "[[alerts]]\nname = \"w\"\ncondition = \"no_workers\"\nqueue = \"q\"\nwebhook = \"http://127.0.0.1:9/x\"\nsecret_env = \"QUERN_TEST_UNSET_SECRET\"\n",
    )
    .unwrap();
    let err = env.fails(2, &["serve", "--addr", "127.0.0.1:0"]);
    assert!(
        err.contains("QUERN_TEST_UNSET_SECRET") && err.contains("not set"),
        "{err}"
    );
    std::fs::write(
        env.path("quern.toml"),
        "[[alerts]]\nname = \"x\"\ncondition = \"queue_depht\"\nabove = 1\n",
    )
    .unwrap();
    let err = env.fails(2, &["serve", "--addr", "127.0.0.1:0"]);
    assert!(err.contains("queue_depht"), "{err}");
}

/// Ends `n` jobs of `queue` dead through the worker protocol with `error`.
fn dead(h: &Http, queue: &str, n: usize, error: &str) -> Vec<String> {
    let ids: Vec<String> = (0..n)
        .map(|_| enqueue(h, json!({"kind": "k", "queue": queue})))
        .collect();
    let w = h.post(
        "/v1/workers",
        &json!({"queues": [queue], "concurrency": 10, "hostname": "test"}),
    );
    let w = w.json()["worker_id"].as_str().unwrap().to_string();
    let leased = h.post(
        "/v1/lease",
        &json!({"worker_id": w, "queues": [queue], "max": n}),
    );
    let leased = leased.json()["jobs"].as_array().unwrap().clone();
    assert_eq!(leased.len(), n);
    for j in &leased {
        let r = h.post(
            &format!("/v1/jobs/{}/fail", j["id"].as_str().unwrap()),
            &json!({"token": j["token"], "error": error, "retryable": false}),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    ids
}

fn status(h: &Http, id: &str) -> u16 {
    h.get(&format!("/v1/jobs/{id}")).status
}

/// DLQ delete over REST (ids, filter with error text, dry run; a live id refused with
/// nothing deleted) and `quern dlq delete` (filter, dry run, a live id refused).
fn dlq_delete_by_ids_filter_and_dry_run(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let boom = dead(&h, "q1", 2, "boom: disk full");
    let other = dead(&h, "q1", 1, "timeout")[0].clone();
    let q2 = dead(&h, "q2", 1, "boom")[0].clone();
    let live = enqueue(&h, json!({"kind": "k", "queue": "q1"}));

    let r = h.post("/v1/dlq/delete", &json!({"ids": [boom[0], live]}));
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    let r = h.post("/v1/dlq/delete", &json!({"ids": [boom[0]], "queue": "q1"}));
    assert_eq!(
        r.status,
        422,
        "ids and a filter: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(status(&h, &boom[0]), 200, "nothing deleted");

    let r = h.post(
        "/v1/dlq/delete",
        &json!({"queue": "q1", "error": "boom", "dry_run": true}),
    );
    let v = r.json();
    assert_eq!(
        (&v["dry_run"], &v["count"]),
        (&json!(true), &json!(2)),
        "{v}"
    );
    for id in &boom {
        assert_eq!(status(&h, id), 200, "a dry run deletes nothing");
    }
    let v = h
        .post("/v1/dlq/delete", &json!({"queue": "q1", "error": "boom"}))
        .json();
    assert_eq!(v["count"], json!(2), "{v}");
    for id in &boom {
        assert_eq!(status(&h, id), 404, "deleted");
    }
    assert_eq!(status(&h, &other), 200, "another error stays");
    assert_eq!(status(&h, &live), 200, "the live job stays");
    let v = h.post("/v1/dlq/delete", &json!({"ids": [other]})).json();
    assert_eq!(v["count"], json!(1), "{v}");
    assert_eq!(status(&h, &other), 404);

    // The CLI, on the same store.
    let err = env.fails(1, &["dlq", "delete", &live]);
    assert!(err.contains("delete"), "{err}");
    assert_eq!(status(&h, &live), 200, "a live job is never deleted");
    let v = env.json(&["dlq", "delete", "--queue", "q2", "--dry-run"]);
    assert_eq!(
        (&v["dry_run"], &v["deleted"]),
        (&json!(true), &json!(1)),
        "{v}"
    );
    assert_eq!(status(&h, &q2), 200, "a dry run deletes nothing");
    let v = env.json(&["dlq", "delete", "--queue", "q2"]);
    assert_eq!(v["deleted"], json!(1), "{v}");
    assert_eq!(status(&h, &q2), 404);
    assert!(
        h.get("/v1/dlq").json()["jobs"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the DLQ is empty"
    );
}

on_every_store!(
    leader_killed_mid_episode_is_not_announced_twice,
    conditions_read_back_in_get_alerts
);

/// The evaluating server is killed (SIGKILL) while the rule fires: the other takes the lease
/// over, continues the stored episode without a second firing notice, and sends the one
/// resolved notice when the queue drains.
fn leader_killed_mid_episode_is_not_announced_twice(mut env: Env) {
    let rx = Receiver::start(Vec::new());
    write_rules(&env, &rx.url);
    env.var("ALERT_SECRET", SECRET);
    // The first server takes the free lease at once; the second waits for it.
    let a = env.serve(&[]);
    let ha = a.http();
    let ids: Vec<String> = (0..3)
        .map(|_| enqueue(&ha, json!({"kind": "k", "queue": "q"})))
        .collect();
    eventually(Duration::from_secs(5), "a firing notice", || {
        !rx.got().is_empty()
    });
    let b = env.serve(&[]);
    let hb = b.http();
    crate::support::signal(a.pid, libc::SIGKILL);
    // The lease (3 s) runs out and b evaluates: the episode is stored as announced.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(rx.got().len(), 1, "no second firing notice: {:?}", rx.got());
    assert_eq!(hb.get("/v1/alerts").json()["alerts"][0]["state"], "firing");
    for id in &ids {
        assert_eq!(
            hb.post(&format!("/v1/jobs/{id}/cancel"), &json!({})).status,
            200
        );
    }
    eventually(Duration::from_secs(5), "a resolved notice", || {
        rx.got().len() >= 2
    });
    std::thread::sleep(Duration::from_millis(1000));
    let got = rx.got();
    assert_eq!(got.len(), 2, "{got:?}");
    let r = got[1].json();
    assert_eq!(
        (&r["state"], &r["episode"]),
        (&json!("resolved"), &json!(1)),
        "{r}"
    );
}

/// Each condition reads what it says: `GET /v1/alerts` after a dead job, with no worker, a
/// job waiting, and a schedule whose tick nobody fired.
fn conditions_read_back_in_get_alerts(mut env: Env) {
    std::fs::write(
        env.path("quern.toml"),
        r#"
[[alerts]]
name = "nobody"
condition = "no_workers"
queue = "q"

[[alerts]]
name = "dlq"
condition = "dlq_growth"
queue = "q"

[[alerts]]
name = "failing"
condition = "failure_rate"
queue = "q"
percent = 40

[[alerts]]
name = "waiting"
condition = "oldest_ready"
queue = "w"
older_than = "1s"

[[alerts]]
name = "deep"
condition = "queue_depth"
above = 5
for = "1h"
"#,
    )
    .unwrap();
    let srv = env.serve(&[]);
    let h = srv.http();
    dead(&h, "q", 1, "boom");
    enqueue(&h, json!({"kind": "k", "queue": "w"}));
    let by_name = |v: &Value, name: &str| {
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {v}"))
            .clone()
    };
    // `dead` registered a worker on q; it is live for three heartbeats (15 s default), so
    // `no_workers` reads 1 and stays ok.
    eventually(Duration::from_secs(5), "the waiting job passes 1s", || {
        let v = h.get("/v1/alerts").json();
        by_name(&v, "waiting")["state"] == "firing"
    });
    let v = h.get("/v1/alerts").json();
    let get = |n: &str| by_name(&v, n);
    assert_eq!(
        (&get("nobody")["state"], &get("nobody")["value"]),
        (&json!("ok"), &json!(1.0)),
        "{v}"
    );
    assert_eq!(
        (&get("dlq")["state"], &get("dlq")["value"]),
        (&json!("firing"), &json!(1.0)),
        "{v}"
    );
    assert_eq!(
        (&get("failing")["state"], &get("failing")["value"]),
        (&json!("firing"), &json!(100.0)),
        "{v}"
    );
    assert!(get("waiting")["value"].as_f64().unwrap() > 1.0, "{v}");
    assert_eq!(get("waiting")["queue"], "w", "{v}");
    // Depth 1 is not above 5: ok, nothing pending.
    assert_eq!(
        (&get("deep")["state"], &get("deep")["value"]),
        (&json!("ok"), &json!(1.0)),
        "{v}"
    );
    assert!(get("deep")["pending_since"].is_null(), "{v}");
    assert_eq!(get("dlq")["last_notification"]["state"], "firing", "{v}");
}
