//! Job events through the built binary: `GET /v1/jobs/{id}/events`, the `GET /v1/events`
//! Server-Sent Events stream (live, resumed with `Last-Event-ID`, filtered, and the
//! backlog-only form), the audit actor of API requests and of the CLI, and
//! `quern jobs events`, on every store.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::Http;
use crate::support::Env;

on_every_store!(
    sse_delivers_live_events_and_resumes,
    timeline_and_audit_actor,
    cli_prints_the_timeline,
    batch_is_one_message_per_job_and_resumes_mid_batch,
);

/// One `event: job` message.
#[derive(Debug)]
struct Msg {
    id: String,
    data: Value,
}

/// An open, following event stream.
struct Stream {
    r: BufReader<TcpStream>,
}

impl Stream {
    fn open(addr: &str, path: &str, token: Option<&str>, last_id: Option<&str>) -> Stream {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut head = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nConnection: close\r\n"
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(id) = last_id {
            head.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        let mut chunked = false;
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if l == "transfer-encoding: chunked" {
                chunked = true;
            }
            if l.starts_with("content-type:") {
                assert!(l.contains("text/event-stream"), "{l}");
            }
        }
        assert!(chunked, "a stream is chunked");
        Stream { r }
    }

    /// The next message (chunk-size lines and keep-alive comments skipped).
    fn next(&mut self) -> Msg {
        let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.r.read_line(&mut line).expect("read the stream");
            assert!(n > 0, "the stream ended");
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = l.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = l.strip_prefix("id:") {
                id = v.trim().to_string();
            } else if let Some(v) = l.strip_prefix("data:") {
                data.push_str(v.trim());
            } else if l.is_empty() && !data.is_empty() {
                assert_eq!(event, "job");
                return Msg {
                    id,
                    data: serde_json::from_str(&data).expect("data is JSON"),
                };
            }
        }
    }

    /// The next message about job `id`.
    fn next_of(&mut self, job: &str) -> Msg {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < until, "no event of {job}");
            let m = self.next();
            if m.data["job"] == json!(job) {
                return m;
            }
        }
    }
}

/// The messages of a response that does not follow: the whole body, parsed.
fn backlog(h: &Http, path: &str, last_id: Option<&str>) -> Vec<Msg> {
    let mut s = TcpStream::connect(&h.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        h.addr
    );
    if let Some(t) = &h.token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(id) = last_id {
        head.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut stream = Stream {
        r: BufReader::new(s),
    };
    // Skip the head.
    let mut line = String::new();
    loop {
        line.clear();
        stream.r.read_line(&mut line).unwrap();
        if line.trim_end().is_empty() {
            break;
        }
    }
    let mut out = Vec::new();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stream.r, &mut rest).expect("the response ends");
    let mut cur = (String::new(), String::new());
    for l in rest.lines() {
        if let Some(v) = l.strip_prefix("id:") {
            cur.0 = v.trim().to_string();
        } else if let Some(v) = l.strip_prefix("data:") {
            cur.1 = v.trim().to_string();
        } else if l.is_empty() && !cur.1.is_empty() {
            let (id, data) = std::mem::take(&mut cur);
            out.push(Msg {
                id,
                data: serde_json::from_str(&data).unwrap(),
            });
        }
    }
    out
}

fn enqueue(h: &Http, body: Value) -> String {
    let r = h.post("/v1/jobs", &body);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_string()
}

fn sse_delivers_live_events_and_resumes(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let mut live = Stream::open(&srv.addr, "/v1/events", None, None);
    // A job enqueued after connecting arrives, in the documented shape.
    let a = enqueue(&h, json!({"kind": "ev.a", "queue": "qa"}));
    let m = live.next_of(&a);
    assert_eq!(m.data["queue"], json!("qa"));
    assert_eq!(m.data["kind"], json!("ev.a"));
    assert_eq!(m.data["from"], Value::Null);
    assert_eq!(m.data["to"], json!("queued"));
    assert_eq!(m.data["attempt"], json!(0));
    assert!(m.data["at"].as_i64().unwrap() > 1_600_000_000_000);
    assert!(m.data["actor"].as_str().unwrap().starts_with("127.0.0.1:"));
    let keys: Vec<&String> = m.data.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 8, "exactly the contract's fields: {keys:?}");
    assert!(!m.id.is_empty());
    drop(live);
    // Missed while disconnected: a resume gets exactly those, in order.
    let b = enqueue(&h, json!({"kind": "ev.b", "queue": "qb"}));
    let c = enqueue(&h, json!({"kind": "ev.a", "queue": "qa"}));
    let missed = backlog(&h, "/v1/events?follow=false", Some(&m.id));
    let got: Vec<_> = missed
        .iter()
        .map(|m| m.data["job"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, vec![b.clone(), c.clone()]);
    // `?after=` does the same; a live resume continues after its id.
    let after = backlog(&h, &format!("/v1/events?follow=false&after={}", m.id), None);
    assert_eq!(after.len(), 2);
    let mut resumed = Stream::open(&srv.addr, "/v1/events", None, Some(&missed[0].id));
    assert_eq!(resumed.next().data["job"], json!(c));
    let r = h.post(&format!("/v1/jobs/{a}/cancel"), &json!({}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let m = resumed.next();
    assert_eq!(
        (m.data["job"].clone(), m.data["to"].clone()),
        (json!(a), json!("cancelled"))
    );
    // Filters.
    let by_queue = backlog(&h, "/v1/events?follow=false&queue=qb", None);
    assert_eq!(by_queue.len(), 1);
    assert_eq!(by_queue[0].data["job"], json!(b));
    let by_kind = backlog(&h, "/v1/events?follow=false&kind=ev.a", None);
    assert_eq!(by_kind.len(), 3, "a queued and cancelled, c queued");
    let by_state = backlog(&h, "/v1/events?follow=false&state=cancelled", None);
    assert_eq!(by_state.len(), 1);
    assert_eq!(by_state[0].data["job"], json!(a));
    // Without Accept: text/event-stream the backlog is sent and the answer ends.
    let r = h.get("/v1/events");
    assert_eq!(r.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&r.body)
            .matches("event: job")
            .count(),
        4
    );
    // A bad cursor is refused before streaming.
    let r = h.get("/v1/events?after=garbage");
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_cursor"));
}

fn timeline_and_audit_actor(mut env: Env) {
    env.var(
        "QUERN_SERVER__TOKENS",
        "ops:operate:ops-secret-0123456789abcdef",
    );
    let srv = env.serve(&[]);
    let ops = srv.http().with_token("ops-secret-0123456789abcdef");
    let id = enqueue(&ops, json!({"kind": "audited"}));
    let r = ops.post(&format!("/v1/jobs/{id}/cancel"), &json!({}));
    assert_eq!(r.status, 200);
    let r = ops.post(&format!("/v1/jobs/{id}/retry"), &json!({}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = ops.get(&format!("/v1/jobs/{id}/events"));
    assert_eq!(r.status, 200);
    let t = r.json();
    assert_eq!(t["job"], json!(id));
    let ev = t["events"].as_array().unwrap();
    let moves: Vec<(Value, Value)> = ev
        .iter()
        .map(|e| (e["from"].clone(), e["to"].clone()))
        .collect();
    assert_eq!(
        moves,
        vec![
            (Value::Null, json!("queued")),
            (json!("queued"), json!("cancelled")),
            (json!("cancelled"), json!("queued")),
        ]
    );
    for e in ev {
        let actor = e["actor"].as_str().unwrap();
        assert!(actor.starts_with("ops@127.0.0.1:"), "{actor}");
        // A timeline is the job's own list: no stream cursor.
        assert!(e.get("cursor").is_none(), "{e}");
    }
    let r = ops.get("/v1/jobs/01900000-0000-7000-8000-000000000000/events");
    assert_eq!((r.status, r.code().as_str()), (404, "job_not_found"));
}

fn cli_prints_the_timeline(env: Env) {
    let id = env.enqueue(&["cli.kind", "--queue", "qc"]);
    env.ok(&["jobs", "cancel", &id]);
    let v = env.json(&["jobs", "events", &id]);
    let ev = v["events"].as_array().unwrap();
    assert_eq!(ev.len(), 2, "{v}");
    assert_eq!(ev[0]["to"], json!("queued"));
    assert_eq!(ev[1]["from"], json!("queued"));
    assert_eq!(ev[1]["to"], json!("cancelled"));
    assert!(
        ev.iter()
            .all(|e| e["actor"] == json!("cli") && e["kind"] == json!("cli.kind"))
    );
    let table = env.ok(&["jobs", "events", &id]);
    assert!(
        table.contains("cancelled") && table.contains("cli"),
        "{table}"
    );
    env.fails(
        1,
        &["jobs", "events", "01900000-0000-7000-8000-000000000000"],
    );
}

/// A batch enqueue is stored as one stream entry per queue, and the stream still sends one
/// message per job, each with its own id: resuming after any of them (mid-entry) gives
/// exactly the jobs after it, with no gap and no repeat.
fn batch_is_one_message_per_job_and_resumes_mid_batch(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let start = backlog(&h, "/v1/events?follow=false", None);
    let from = start.last().map(|m| m.id.clone());
    let jobs: Vec<Value> = (0..50)
        .map(|i| json!({"kind": format!("b.{}", i % 2)}))
        .collect();
    let r = h.post("/v1/jobs/batch", &json!({"mode": "atomic", "jobs": jobs}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let stored: Vec<String> = r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["job"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored.len(), 50);
    let all = backlog(&h, "/v1/events?follow=false", from.as_deref());
    let got: Vec<String> = all
        .iter()
        .map(|m| m.data["job"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, stored, "one message per job, in batch order");
    let ids: std::collections::HashSet<&str> = all.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), 50, "each message has its own id");
    for cut in [0, 1, 24, 48, 49] {
        let rest = backlog(&h, "/v1/events?follow=false", Some(&all[cut].id));
        let rest: Vec<String> = rest
            .iter()
            .map(|m| m.data["job"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            rest,
            stored[cut + 1..].to_vec(),
            "resumed after message {cut}"
        );
    }
    // A kind filter inside the entry.
    let odd = backlog(&h, "/v1/events?follow=false&kind=b.1", from.as_deref());
    assert_eq!(odd.len(), 25);
}
