//! `quern serve` end to end: the built binary serving real HTTP on a free loopback port, on
//! an SQLite file and on Redis (`on_every_store!`): the REST API, its errors and limits, the
//! OpenAPI document, tokens and roles, health probes, the HTTP worker protocol, two servers
//! on one Redis, and the refusal to serve a non-loopback address without a token.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::Http;
use crate::support::{Env, Server, eventually};

fn enqueue(h: &Http, body: Value) -> String {
    let r = h.post("/v1/jobs", &body);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_string()
}

fn jobs(h: &Http, query: &str) -> Vec<Value> {
    let r = h.get(&format!("/v1/jobs?limit=1000{query}"));
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()["jobs"].as_array().unwrap().clone()
}

fn job(h: &Http, id: &str) -> Value {
    let r = h.get(&format!("/v1/jobs/{id}"));
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

on_every_store!(
    jobs_api,
    bad_input_changes_nothing,
    body_limit,
    queues_and_dlq,
    workflows_api,
    worker_protocol,
    expired_lease_late_complete,
    batch_protocol,
    schedules_api,
    queue_settings_api,
    rate_limited_over_http,
);

fn schedules_api(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let body = json!({"cron": "@every 1s", "job": {"kind": "quern.noop", "queue": "ticks",
        "payload": {"from": "api"}}, "misfire": "skip", "overlap": "skip"});
    let r = h.json_request("PUT", "/v1/schedules/beat", &body);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["done"], "added");
    assert_eq!(r.json()["schedule"]["overlap"], "skip");
    let again = h.json_request("PUT", "/v1/schedules/beat", &body);
    assert_eq!(
        (again.status, again.json()["done"].clone()),
        (200, json!("unchanged"))
    );
    // The server's own scheduler fires it: runs appear with their jobs.
    eventually(Duration::from_secs(10), "two runs", || {
        h.get("/v1/schedules/beat").json()["runs"]
            .as_array()
            .is_some_and(|r| r.len() >= 2)
    });
    // No worker runs here, so the first tick's job stays queued and, with overlap "skip",
    // the ticks after it are recorded as skipped.
    let detail = h.get("/v1/schedules/beat?runs=5").json();
    let runs = detail["runs"].as_array().unwrap();
    let (first, later) = runs.split_last().unwrap();
    assert_eq!(first["kind"], "scheduled", "{detail}");
    assert!(
        later.iter().all(|r| r["kind"] == "skipped_overlap"),
        "{detail}"
    );
    let jid = first["job_id"].as_str().unwrap();
    assert_eq!(job(&h, jid)["queue"], "ticks");
    let list = h.get("/v1/schedules").json();
    assert_eq!(list["schedules"][0]["name"], "beat", "{list}");

    let p = h.post("/v1/schedules/beat/pause", &json!({}));
    assert_eq!((p.status, p.json()["paused"].clone()), (200, json!(true)));
    let t = h.post("/v1/schedules/beat/trigger", &json!({}));
    assert_eq!(t.status, 201, "{:?}", String::from_utf8_lossy(&t.body));
    let tid = t.json()["job_id"].as_str().unwrap().to_string();
    assert_eq!(job(&h, &tid)["state"], "queued");
    let newest = &h.get("/v1/schedules/beat?runs=1").json()["runs"][0];
    assert_eq!(
        (&newest["kind"], &newest["job_id"]),
        (&json!("manual"), &json!(tid))
    );
    assert_eq!(
        h.post("/v1/schedules/beat/resume", &json!({})).json()["paused"],
        false
    );

    // Bad input: 422 naming the field, nothing stored or changed.
    for (bad, want) in [
        (
            json!({"cron": "61 * * * *", "job": {"kind": "k"}}),
            "minute",
        ),
        (
            json!({"cron": "@daily", "tz": "Mars/Base", "job": {"kind": "k"}}),
            "Mars/Base",
        ),
        (
            json!({"cron": "@daily", "job": {"kind": "k", "colour": 1}}),
            "colour",
        ),
        (
            json!({"cron": "@daily", "job": {"kind": "k"}, "misfire": "later"}),
            "misfire",
        ),
    ] {
        let r = h.json_request("PUT", "/v1/schedules/bad", &bad);
        assert!(matches!(r.status, 400 | 422), "{bad}: {}", r.status);
        assert!(
            String::from_utf8_lossy(&r.body).contains(want),
            "{bad}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let r = h.json_request(
        "PUT",
        "/v1/schedules/beat",
        &json!({"cron": "0 25 * * *", "job": {"kind": "k"}}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(
        h.get("/v1/schedules/beat").json()["schedule"]["cron"],
        "@every 1s"
    );
    assert_eq!(
        h.get("/v1/schedules").json()["schedules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = h.get("/v1/schedules/nope");
    assert_eq!(
        (r.status, r.code()),
        (404, "schedule_not_found".to_string())
    );

    let d = h.json_request("DELETE", "/v1/schedules/beat", &json!({}));
    assert_eq!(d.status, 200, "{:?}", String::from_utf8_lossy(&d.body));
    assert_eq!(h.get("/v1/schedules/beat").status, 404);
    assert_eq!(
        h.json_request("DELETE", "/v1/schedules/beat", &json!({}))
            .status,
        404
    );
}

fn queue_settings_api(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let r = h.get("/v1/queues/mail/settings");
    assert_eq!((r.status, r.code()), (404, "queue_not_found".to_string()));
    let r = h.json_request(
        "PATCH",
        "/v1/queues/mail/settings",
        &json!({"concurrency": 2, "rate": "10/s", "burst": 3}),
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(
        (
            &v["concurrency"],
            &v["rate"]["text"],
            &v["rate"]["burst"],
            &v["running"]
        ),
        (&json!(2), &json!("10/s (burst 3)"), &json!(3), &json!(0)),
        "{v}"
    );
    // Left out: kept; null: cleared.
    let v = h
        .json_request("PATCH", "/v1/queues/mail/settings", &json!({"rate": null}))
        .json();
    assert_eq!(
        (&v["concurrency"], &v["rate"]),
        (&json!(2), &Value::Null),
        "{v}"
    );
    // Weight, order and aging, over the same route.
    let v = h
        .json_request(
            "PATCH",
            "/v1/queues/mail/settings",
            &json!({"weight": 5, "order": "lifo",
                    "aging": {"after": "30m", "step": 2, "bound": "normal"}}),
        )
        .json();
    assert_eq!(
        (&v["weight"], &v["order"], &v["aging"]["after_ms"]),
        (&json!(5), &json!("lifo"), &json!(1_800_000)),
        "{v}"
    );
    assert_eq!(
        (
            &v["aging"]["step"],
            &v["aging"]["every_ms"],
            &v["concurrency"]
        ),
        (&json!(2), &json!(1_800_000), &json!(2)),
        "{v}"
    );
    let v = h
        .json_request(
            "PATCH",
            "/v1/queues/mail/settings",
            &json!({"aging": null, "weight": null}),
        )
        .json();
    assert_eq!(
        (&v["aging"], &v["weight"], &v["order"]),
        (&Value::Null, &Value::Null, &json!("lifo")),
        "{v}"
    );
    for bad in [
        json!({"concurrency": 0}),
        json!({"rate": "fast"}),
        json!({"burst": 2}),
        json!({"speed": 1}),
        json!({"order": "random"}),
        json!({"weight": 2_000_000}),
        json!({"aging": {"after": "soon"}}),
        json!({"aging": {"after": "1m", "step": 0}}),
        json!({"aging": {"after": "1m", "bound": "urgent"}}),
        json!({"aging": {"after": "1m", "colour": 1}}),
    ] {
        let r = h.json_request("PATCH", "/v1/queues/mail/settings", &bad);
        assert!(matches!(r.status, 400 | 422), "{bad}: {}", r.status);
    }
    let v = h.get("/v1/queues/mail/settings").json();
    assert_eq!(
        (&v["concurrency"], &v["order"], &v["aging"]),
        (&json!(2), &json!("lifo"), &Value::Null),
        "unchanged: {v}"
    );
    // The cap holds for the worker protocol's lease too.
    for _ in 0..3 {
        enqueue(&h, json!({"kind": "k", "queue": "mail"}));
    }
    let w = register(&h, &["mail"]);
    let got = lease(&h, &w, &["mail"], json!({"max": 3, "wait_ms": 0}));
    assert_eq!(got.len(), 2, "the cap of 2");
    assert_eq!(h.get("/v1/queues/mail/settings").json()["running"], 2);
}

/// Kind and group rates over `PATCH /v1/queues/{name}/settings`, and a worker's
/// `rate_limited` failure: the job is snoozed without counting the attempt and its group is
/// held, so the next lease gets only the other group's jobs.
fn rate_limited_over_http(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    for (g, n) in [("acme", 2), ("beta", 2)] {
        for _ in 0..n {
            enqueue(
                &h,
                json!({"kind": "call.api", "queue": "up", "group": g, "payload": {}}),
            );
        }
    }
    let r = h.json_request(
        "PATCH",
        "/v1/queues/up/settings",
        &json!({"kinds": {"call.*": {"rate": "100/s", "burst": 50}, "x.*": {"rate": "1/m"}},
                "group_rate": "50/s"}),
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(
        (
            &v["kinds"]["call.*"]["rate"]["text"],
            &v["kinds"]["x.*"]["rate"]["text"],
            &v["group_rate"]["text"]
        ),
        (&json!("100/s (burst 50)"), &json!("1/m"), &json!("50/s")),
        "{v}"
    );
    let v = h
        .json_request(
            "PATCH",
            "/v1/queues/up/settings",
            &json!({"kinds": {"x.*": null}}),
        )
        .json();
    assert!(v["kinds"].get("x.*").is_none(), "removed: {v}");
    for bad in [
        json!({"kinds": {"call.*": {"rate": "fast"}}}),
        json!({"kinds": {"": {"rate": "1/s"}}}),
        json!({"group_rate": "0/s"}),
        json!({"group_burst": 3}),
    ] {
        let r = h.json_request("PATCH", "/v1/queues/up/settings", &bad);
        assert!(matches!(r.status, 400 | 422), "{bad}: {}", r.status);
    }
    assert_eq!(
        h.get("/v1/queues/up/settings").json()["group_rate"]["text"],
        json!("50/s"),
        "refused changes change nothing"
    );
    let w = register(&h, &["up"]);
    let first = lease(&h, &w, &["up"], json!({"max": 1, "wait_ms": 0}));
    assert_eq!(first.len(), 1);
    let id = first[0]["id"].as_str().unwrap().to_string();
    let held = job(&h, &id)["group"].as_str().unwrap().to_string();
    let token = first[0]["token"].as_str().unwrap().to_string();
    for bad in [
        json!({"token": token, "error": "429", "rate_limited": true}),
        json!({"token": token, "error": "429", "rate_limited": true, "retryable": false, "retry_after_ms": 1000}),
    ] {
        let r = h.post(&format!("/v1/jobs/{id}/fail"), &bad);
        assert_eq!(r.status, 422, "{bad}");
    }
    let r = h.post(
        &format!("/v1/jobs/{id}/fail"),
        &json!({"token": token, "error": "upstream said 429", "rate_limited": true, "retry_after_ms": 60000}),
    );
    assert_eq!((r.status, &r.json()["state"]), (200, &json!("scheduled")));
    let j = job(&h, &id);
    assert_eq!(
        (&j["attempt"], j["errors"].as_array().map_or(0, Vec::len)),
        (&json!(0), 0),
        "not counted, nothing recorded: {j}"
    );
    let rest = lease(&h, &w, &["up"], json!({"max": 10, "wait_ms": 0}));
    let groups: Vec<String> = rest
        .iter()
        .map(|l| {
            job(&h, l["id"].as_str().unwrap())["group"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(groups.len(), 2, "the other group's two jobs: {groups:?}");
    assert!(
        groups.iter().all(|g| *g != held),
        "the held group {held} waits: {groups:?}"
    );
}

fn jobs_api(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let id = enqueue(
        &h,
        json!({"kind": "quern.noop", "payload": {"n": 1}, "queue": "mail", "priority": 2,
               "unique_key": "u1", "max_attempts": 3, "retry": "fixed:5s", "timeout_ms": 5000}),
    );
    let j = job(&h, &id);
    assert_eq!(
        (
            &j["kind"],
            &j["queue"],
            &j["priority"],
            &j["state"],
            &j["payload"]
        ),
        (
            &json!("quern.noop"),
            &json!("mail"),
            &json!(2),
            &json!("queued"),
            &json!({"n": 1})
        )
    );
    assert_eq!(
        (&j["max_attempts"], &j["retry"], &j["timeout_ms"]),
        (&json!(3), &json!("fixed:5s"), &json!(5000))
    );
    // The same unique key: 200 and the live job's id, nothing new stored.
    let dup = h.post(
        "/v1/jobs",
        &json!({"kind": "quern.noop", "queue": "mail", "unique_key": "u1"}),
    );
    assert_eq!(dup.status, 200);
    assert_eq!(
        (dup.json()["id"].as_str(), &dup.json()["duplicate"]),
        (Some(id.as_str()), &json!(true))
    );

    // Filters and cursor paging.
    for i in 0..5 {
        enqueue(&h, json!({"kind": "k2", "payload": i}));
    }
    assert_eq!(jobs(&h, "&queue=mail").len(), 1);
    assert_eq!(jobs(&h, "&kind=k2").len(), 5);
    assert_eq!(jobs(&h, "&state=queued").len(), 6);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/jobs?kind=k2&limit=2&cursor={c}"),
            None => "/v1/jobs?kind=k2&limit=2".into(),
        };
        let page = h.get(&q).json();
        let ids: Vec<String> = page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect();
        assert!(ids.len() <= 2);
        seen.extend(ids);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "paging saw every job once");

    // Reprioritize, cancel, retry, and the refusals.
    let r = h.post(
        &format!("/v1/jobs/{id}/reprioritize"),
        &json!({"priority": 7}),
    );
    assert_eq!((r.status, &r.json()["priority"]), (200, &json!(7)));
    let r = h.post(&format!("/v1/jobs/{id}/cancel"), &json!({}));
    assert_eq!((r.status, &r.json()["state"]), (200, &json!("cancelled")));
    let r = h.post(&format!("/v1/jobs/{id}/cancel"), &json!({}));
    assert_eq!((r.status, r.code().as_str()), (409, "invalid_transition"));
    let r = h.post(
        &format!("/v1/jobs/{id}/reprioritize"),
        &json!({"priority": 1}),
    );
    assert_eq!(r.status, 409);
    assert_eq!(
        job(&h, &id)["priority"],
        json!(7),
        "a refused change changes nothing"
    );
    let r = h.post(&format!("/v1/jobs/{id}/retry"), &json!({}));
    assert_eq!((r.status, &r.json()["state"]), (200, &json!("queued")));
    let r = h.post(&format!("/v1/jobs/{id}/retry"), &json!({}));
    assert_eq!(r.status, 409, "a queued job is not retried");

    // Unknown ids and routes: 404 with the JSON error body.
    let unknown = "01900000-0000-7000-8000-000000000000";
    assert_eq!(
        h.get(&format!("/v1/jobs/{unknown}")).code(),
        "job_not_found"
    );
    assert_eq!(h.get("/v1/jobs/not-an-id").status, 404);
    assert_eq!(
        h.post(&format!("/v1/jobs/{unknown}/cancel"), &json!({}))
            .status,
        404
    );
    let r = h.get("/v1/nothing-here");
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
    let r = h.send("DELETE", "/v1/jobs", None, None);
    assert_eq!((r.status, r.code().as_str()), (405, "method_not_allowed"));
}

fn bad_input_changes_nothing(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let cases: Vec<(u16, &str, Vec<u8>)> = vec![
        (
            422,
            "invalid_request",
            br#"{"kind":"k","bogus":1}"#.to_vec(),
        ),
        (400, "malformed_json", br#"{"kind":"k","#.to_vec()),
        (422, "invalid_request", br#"{"payload":{}}"#.to_vec()),
        (
            422,
            "invalid_request",
            br#"{"kind":"k","priority":12}"#.to_vec(),
        ),
        (
            422,
            "invalid_request",
            br#"{"kind":"k","priority":"high"}"#.to_vec(),
        ),
        (
            422,
            "invalid_request",
            br#"{"kind":"k","retry":"sometimes"}"#.to_vec(),
        ),
        (
            422,
            "invalid_request",
            br#"{"kind":"k","delay_ms":5,"run_at":5}"#.to_vec(),
        ),
        (
            422,
            "invalid_request",
            br#"{"kind":"k","depends_on":["nope"]}"#.to_vec(),
        ),
        (
            422,
            "invalid_job",
            br#"{"kind":"k","queue":"bad queue!"}"#.to_vec(),
        ),
        (422, "invalid_job", br#"{"kind":""}"#.to_vec()),
    ];
    for (status, code, body) in cases {
        let r = h.post_raw("/v1/jobs", body.clone());
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let r = h.send(
        "POST",
        "/v1/jobs",
        Some("text/plain"),
        Some(br#"{"kind":"k"}"#.to_vec()),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (415, "unsupported_media_type")
    );
    let r = h.get("/v1/jobs?bogus=1");
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_query"));
    let r = h.get("/v1/jobs?state=sleeping");
    assert_eq!(r.status, 400);
    assert!(jobs(&h, "").is_empty(), "refused input stored nothing");

    // A batch: atomic refuses the whole batch for one bad job; best effort stores the rest.
    let batch = |mode: &str| {
        json!({"mode": mode, "jobs": [
            {"kind": "a"}, {"kind": "b", "queue": "no spaces allowed"}, {"kind": "c"}
        ]})
    };
    let r = h.post("/v1/jobs/batch", &batch("atomic"));
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("jobs[1]")
    );
    assert!(
        jobs(&h, "").is_empty(),
        "an atomic batch with a bad job stored nothing"
    );
    let r = h.post(
        "/v1/jobs/batch",
        &json!({"mode": "atomic", "jobs": [{"kind": "a"}, {"kind": "b", "extra": 1}]}),
    );
    assert_eq!(r.status, 422);
    assert!(jobs(&h, "").is_empty());
    let r = h.post("/v1/jobs/batch", &batch("best_effort"));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!((&v["enqueued"], &v["failed"]), (&json!(2), &json!(1)));
    assert_eq!(v["results"][1]["error"]["code"], json!("invalid_job"));
    assert!(v["results"][0]["job"]["id"].is_string() && v["results"][2]["job"]["id"].is_string());
    let mut kinds: Vec<String> = jobs(&h, "")
        .iter()
        .map(|j| j["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["a", "c"]);
    let r = h.post(
        "/v1/jobs/batch",
        &json!({"mode": "atomic", "jobs": [{"kind": "x"}, {"kind": "y"}]}),
    );
    assert_eq!((r.status, &r.json()["enqueued"]), (200, &json!(2)));
    assert_eq!(jobs(&h, "").len(), 4);
}

fn body_limit(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let blob = "x".repeat(10 * 1024 * 1024);
    let id = enqueue(&h, json!({"kind": "k", "payload": {"blob": blob}}));
    let back = job(&h, &id);
    assert_eq!(
        back["payload"]["blob"].as_str().map(str::len),
        Some(blob.len()),
        "10 MiB round-trips"
    );
    let big = serde_json::to_vec(
        &json!({"kind": "k", "payload": {"blob": "y".repeat(17 * 1024 * 1024)}}),
    )
    .unwrap();
    let r = h.post_raw("/v1/jobs", big);
    assert_eq!((r.status, r.code().as_str()), (413, "body_too_large"));
    assert_eq!(jobs(&h, "").len(), 1, "the 17 MiB job was not stored");

    // The limit is configurable.
    let mut small = Env::new();
    small.var("QUERN_STORE", &env.store_url());
    small.var("QUERN_SERVER__BODY_LIMIT", "1000");
    let srv2 = small.serve(&[]);
    let r = srv2.http().post(
        "/v1/jobs",
        &json!({"kind": "k", "payload": "z".repeat(2000)}),
    );
    assert_eq!(r.status, 413);
    let r = srv2.http().post(
        "/v1/jobs",
        &json!({"kind": "k", "payload": "z".repeat(100)}),
    );
    assert_eq!(r.status, 201);
}

/// Registers an HTTP worker and returns its id.
fn register(h: &Http, queues: &[&str]) -> String {
    let r = h.post(
        "/v1/workers",
        &json!({"queues": queues, "concurrency": 2, "hostname": "test"}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["worker_id"].as_str().unwrap().to_string()
}

fn lease(h: &Http, worker: &str, queues: &[&str], body: Value) -> Vec<Value> {
    let mut b = json!({"worker_id": worker, "queues": queues});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    let r = h.post("/v1/lease", &b);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["jobs"].as_array().unwrap().clone()
}

fn queues_and_dlq(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let a = enqueue(&h, json!({"kind": "k", "queue": "q1"}));
    let b = enqueue(&h, json!({"kind": "k", "queue": "q1"}));
    enqueue(&h, json!({"kind": "k", "queue": "q2"}));
    let list = h.get("/v1/queues").json();
    let names: Vec<&str> = list["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"q1") && names.contains(&"q2"), "{list}");
    let q = h.get("/v1/queues/q1").json();
    assert_eq!(
        (&q["counts"]["queued"], &q["paused"]),
        (&json!(2), &json!(false))
    );
    assert_eq!(h.get("/v1/queues/nope").code(), "queue_not_found");
    assert_eq!(h.post("/v1/queues/nope/pause", &json!({})).status, 404);
    assert_eq!(
        h.post("/v1/queues/q1/pause", &json!({})).json()["paused"],
        json!(true)
    );
    // A paused queue is not leased from.
    let w = register(&h, &["q1"]);
    assert!(lease(&h, &w, &["q1"], json!({"max": 10})).is_empty());
    assert_eq!(
        h.post("/v1/queues/q1/resume", &json!({})).json()["paused"],
        json!(false)
    );

    // Two jobs end dead through the worker protocol (fail, not retryable).
    let leased = lease(&h, &w, &["q1"], json!({"max": 10}));
    assert_eq!(leased.len(), 2);
    for j in &leased {
        let r = h.post(
            &format!("/v1/jobs/{}/fail", j["id"].as_str().unwrap()),
            &json!({"token": j["token"], "error": "broken", "retryable": false}),
        );
        assert_eq!((r.status, &r.json()["state"]), (200, &json!("dead")));
    }
    let dlq = h.get("/v1/dlq?queue=q1").json();
    assert_eq!(dlq["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(dlq["jobs"][0]["errors"][0]["message"], json!("broken"));

    // Dry run: counts, changes nothing.
    let r = h.post("/v1/dlq/replay", &json!({"queue": "q1", "dry_run": true}));
    assert_eq!(
        (&r.json()["count"], &r.json()["dry_run"]),
        (&json!(2), &json!(true))
    );
    assert_eq!(job(&h, &a)["state"], json!("dead"));
    // By ids: one that is not dead refuses the whole call.
    let queued = enqueue(&h, json!({"kind": "k", "queue": "q3"}));
    let r = h.post("/v1/dlq/replay", &json!({"ids": [a, queued]}));
    assert_eq!((r.status, r.code().as_str()), (409, "invalid_transition"));
    assert_eq!(job(&h, &a)["state"], json!("dead"), "nothing replayed");
    let r = h.post("/v1/dlq/replay", &json!({"ids": [a]}));
    assert_eq!((r.status, &r.json()["count"]), (200, &json!(1)));
    assert_eq!(job(&h, &a)["state"], json!("queued"));
    // By filter.
    let r = h.post("/v1/dlq/replay", &json!({"queue": "q1"}));
    assert_eq!(r.json()["count"], json!(1));
    assert_eq!(job(&h, &b)["state"], json!("queued"));
    assert_eq!(
        h.post("/v1/dlq/replay", &json!({"ids": [a], "queue": "q1"}))
            .status,
        422
    );

    let workers = h.get("/v1/workers").json();
    let ws = workers["workers"].as_array().unwrap();
    assert!(
        ws.iter()
            .any(|x| x["id"] == json!(w) && x["state"] == json!("alive")),
        "{workers}"
    );
}

const WORKFLOW: &str = r#"
name: served
tasks:
  - id: first
    kind: quern.noop
  - id: second
    kind: quern.noop
    depends_on: [first]
"#;

const FAILING: &str = r#"
name: failing
tasks:
  - id: only
    kind: quern.fail
    retry: 0
    params: {fatal: true}
"#;

fn wait_workflow(h: &Http, id: &str, state: &str) -> Value {
    let mut last = Value::Null;
    eventually(
        Duration::from_secs(30),
        &format!("workflow {state}"),
        || {
            last = h.get(&format!("/v1/workflows/{id}/status")).json();
            last["workflow"]["state"] == json!(state)
        },
    );
    last
}

fn workflows_api(mut env: Env) {
    let srv = env.serve(&["--workers", "4"]);
    let h = srv.http();
    let r = h.post("/v1/workflows", &json!({"source": WORKFLOW}));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let st = wait_workflow(&h, &id, "succeeded");
    let tasks: Vec<(&str, &str)> = st["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert_eq!(tasks, [("first", "succeeded"), ("second", "succeeded")]);
    assert_eq!(
        h.get(&format!("/v1/workflows/{id}")).json()["counts"]["succeeded"],
        json!(2)
    );
    let list = h.get("/v1/workflows?state=succeeded").json();
    assert!(
        list["workflows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == json!(id))
    );
    let g = h
        .get(&format!("/v1/workflows/{id}/graph?format=mermaid"))
        .json();
    assert!(g["graph"].as_str().unwrap().contains("first"), "{g}");
    let r = h.post(&format!("/v1/workflows/{id}/cancel"), &json!({}));
    assert_eq!((r.status, r.code().as_str()), (409, "invalid_state"));

    // JSON works too; an invalid file is refused with every problem and stores nothing.
    let json_src = json!({"name": "j", "tasks": [{"id": "t", "kind": "quern.noop"}]}).to_string();
    assert_eq!(
        h.post(
            "/v1/workflows",
            &json!({"source": json_src, "format": "json"})
        )
        .status,
        201
    );
    let before = h.get("/v1/workflows").json()["workflows"]
        .as_array()
        .unwrap()
        .len();
    let r = h.post("/v1/workflows", &json!({"source": "name: bad\ntasks:\n  - id: a\n    kind: quern.noop\n    depends_on: [missing]\n"}));
    assert_eq!((r.status, r.code().as_str()), (422, "invalid_workflow"));
    assert!(
        r.json()["error"]["details"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        r.json()
    );
    assert_eq!(
        h.get("/v1/workflows").json()["workflows"]
            .as_array()
            .unwrap()
            .len(),
        before
    );
    assert_eq!(h.get("/v1/workflows/nope").code(), "workflow_not_found");

    // A failed workflow is retried from its failed task.
    let r = h.post("/v1/workflows", &json!({"source": FAILING}));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let fid = r.json()["id"].as_str().unwrap().to_string();
    wait_workflow(&h, &fid, "failed");
    let r = h.post(&format!("/v1/workflows/{fid}/retry"), &json!({}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["tasks"], json!(["only"]));
    wait_workflow(&h, &fid, "failed");
}

fn worker_protocol(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let w = register(&h, &["jobs"]);
    // An unregistered worker is told to register.
    let r = h.post(
        "/v1/lease",
        &json!({"worker_id": "ghost", "queues": ["jobs"]}),
    );
    assert_eq!((r.status, r.code().as_str()), (404, "worker_not_found"));

    // Long poll: a lease waiting on an empty queue returns the job enqueued meanwhile.
    let h2 = h.clone();
    let w2 = w.clone();
    let poll = std::thread::spawn(move || {
        let start = Instant::now();
        let jobs = lease(&h2, &w2, &["jobs"], json!({"wait_ms": 10000, "max": 5}));
        (jobs, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300)); // let the poll start waiting (not a sync point: the assertions hold either way)
    let id = enqueue(
        &h,
        json!({"kind": "k", "queue": "jobs", "payload": {"x": 1}, "max_attempts": 3}),
    );
    let (leased, took) = poll.join().unwrap();
    assert_eq!(leased.len(), 1);
    assert!(
        took < Duration::from_secs(8),
        "the long poll returned when the job came ({took:?})"
    );
    let j = &leased[0];
    assert_eq!(
        (j["id"].as_str(), &j["attempt"], &j["payload"]),
        (Some(id.as_str()), &json!(1), &json!({"x": 1}))
    );
    let token = j["token"].as_str().unwrap().to_string();
    assert_eq!(job(&h, &id)["state"], json!("running"));

    // Heartbeat with progress.
    let r = h.post(&format!("/v1/jobs/{id}/heartbeat"), &json!({"token": token, "progress": {"percent": 50.0, "message": "half"}, "lease_ms": 60000}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["deadline"].as_i64().unwrap() > j["deadline"].as_i64().unwrap());
    assert_eq!(job(&h, &id)["progress"]["message"], json!("half"));

    // Fail with retry_after: scheduled, the attempt counted.
    let r = h.post(
        &format!("/v1/jobs/{id}/fail"),
        &json!({"token": token, "error": "flaky", "retry_after_ms": 100}),
    );
    assert_eq!((r.status, &r.json()["state"]), (200, &json!("scheduled")));
    // The same token again: 409 lease_lost, nothing changes.
    let before = job(&h, &id);
    for (call, body) in [
        ("complete", json!({"token": token, "result": 1})),
        ("fail", json!({"token": token, "error": "late"})),
        ("heartbeat", json!({"token": token})),
        ("release", json!({"token": token})),
    ] {
        let r = h.post(&format!("/v1/jobs/{id}/{call}"), &body);
        assert_eq!((r.status, r.code().as_str()), (409, "lease_lost"), "{call}");
    }
    assert_eq!(job(&h, &id)["errors"], before["errors"]);
    assert_eq!(job(&h, &id)["state"], json!("scheduled"));

    // Leased again after the delay (attempt 2); released: queued, no attempt counted.
    let mut again = Vec::new();
    eventually(Duration::from_secs(10), "the retry is due", || {
        again = lease(&h, &w, &["jobs"], json!({"wait_ms": 500}));
        !again.is_empty()
    });
    assert_eq!(again[0]["attempt"], json!(2));
    let t2 = again[0]["token"].as_str().unwrap().to_string();
    let r = h.post(&format!("/v1/jobs/{id}/release"), &json!({"token": t2}));
    assert_eq!((r.status, &r.json()["state"]), (200, &json!("queued")));
    // Complete with a result.
    let third = lease(&h, &w, &["jobs"], json!({}));
    let t3 = third[0]["token"].as_str().unwrap().to_string();
    assert_eq!(
        third[0]["attempt"],
        json!(2),
        "a release does not count an attempt"
    );
    let r = h.post(
        &format!("/v1/jobs/{id}/complete"),
        &json!({"token": t3, "result": {"ok": true}}),
    );
    assert_eq!((r.status, &r.json()["state"]), (200, &json!("succeeded")));
    assert_eq!(job(&h, &id)["result"], json!({"ok": true}));

    // A token for another job, and a malformed one.
    let other = enqueue(&h, json!({"kind": "k", "queue": "jobs"}));
    let r = h.post(&format!("/v1/jobs/{other}/complete"), &json!({"token": t3}));
    assert_eq!(r.status, 422);
    let r = h.post(
        &format!("/v1/jobs/{other}/complete"),
        &json!({"token": "nonsense"}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(job(&h, &other)["state"], json!("queued"));
}

fn expired_lease_late_complete(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let w1 = register(&h, &["slow"]);
    let w2 = register(&h, &["slow"]);
    let id = enqueue(&h, json!({"kind": "k", "queue": "slow"}));
    let first = lease(&h, &w1, &["slow"], json!({"lease_ms": 300}));
    let t1 = first[0]["token"].as_str().unwrap().to_string();
    // The lease runs out; the server's rescuer puts the job back; the second worker takes it.
    let mut second = Vec::new();
    eventually(Duration::from_secs(20), "the job re-delivered", || {
        second = lease(&h, &w2, &["slow"], json!({"wait_ms": 500}));
        !second.is_empty()
    });
    let t2 = second[0]["token"].as_str().unwrap().to_string();
    assert_ne!(t1, t2);
    let late = h.post(
        &format!("/v1/jobs/{id}/complete"),
        &json!({"token": t1, "result": "late"}),
    );
    assert_eq!((late.status, late.code().as_str()), (409, "lease_lost"));
    assert_eq!(
        job(&h, &id)["state"],
        json!("running"),
        "the late complete changed nothing"
    );
    let ok = h.post(
        &format!("/v1/jobs/{id}/complete"),
        &json!({"token": t2, "result": "second"}),
    );
    assert_eq!(ok.status, 200);
    assert_eq!(job(&h, &id)["result"], json!("second"));
}

/// Two servers on one Redis prefix serve the same jobs: the servers hold no job state.
#[test]
fn two_servers_share_one_redis() {
    let Some(mut env) = Env::redis() else { return };
    let a = env.serve(&[]);
    let b = env.serve(&[]);
    let (ha, hb) = (a.http(), b.http());
    let id = enqueue(
        &ha,
        json!({"kind": "k", "queue": "shared", "payload": "from a"}),
    );
    assert_eq!(job(&hb, &id)["payload"], json!("from a"));
    let w = register(&hb, &["shared"]);
    let leased = lease(&hb, &w, &["shared"], json!({}));
    assert_eq!(leased[0]["id"].as_str(), Some(id.as_str()));
    // Leased through B, completed through A.
    let r = ha.post(
        &format!("/v1/jobs/{id}/complete"),
        &json!({"token": leased[0]["token"], "result": 42}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(job(&hb, &id)["state"], json!("succeeded"));
    assert_eq!(jobs(&ha, "").len(), jobs(&hb, "").len());
    assert!(
        hb.get("/v1/workers").json()["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == json!(w))
    );
    assert_eq!(
        ha.get("/v1/queues/shared").json()["counts"]["succeeded"],
        json!(1)
    );
}

const READER: &str = "reader-secret-0123456789";
const OPERATOR: &str = "operator-secret-0123456789";
const WORKER: &str = "worker-secret-0123456789";
const ADMIN: &str = "admin-secret-0123456789";

fn tokens_env() -> String {
    format!("ci-read:read:{READER},ops:operate:{OPERATOR},w:work:{WORKER},root:admin:{ADMIN}")
}

#[test]
fn tokens_and_roles() {
    let mut env = Env::new();
    env.var("QUERN_SERVER__TOKENS", &tokens_env());
    env.var("QUERN_LOG", "warn,quern_audit=info");
    let srv = env.serve(&[]);
    let open = srv.http();
    let read = open.with_token(READER);
    let ops = open.with_token(OPERATOR);
    let work = open.with_token(WORKER);
    let admin = open.with_token(ADMIN);

    let r = open.get("/v1/jobs");
    assert_eq!((r.status, r.code().as_str()), (401, "unauthorized"));
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        open.with_token("wrong-token-0123456789")
            .get("/v1/jobs")
            .status,
        401
    );
    assert_eq!(
        open.with_token(&READER[..READER.len() - 1])
            .get("/v1/jobs")
            .status,
        401
    );
    // Probes and the OpenAPI document need no token.
    assert_eq!(open.get("/healthz").status, 200);
    assert_eq!(open.get("/readyz").status, 200);
    assert_eq!(open.get("/v1/openapi.json").status, 200);

    // read: GET only.
    assert_eq!(read.get("/v1/jobs").status, 200);
    let r = read.post("/v1/jobs", &json!({"kind": "k"}));
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    assert!(
        jobs(&admin, "").is_empty(),
        "the refused POST stored nothing"
    );
    assert_eq!(
        read.post(
            "/v1/lease",
            &json!({"worker_id": "x", "queues": ["default"]})
        )
        .status,
        403
    );

    // operate: the REST API, not the worker protocol.
    let id = enqueue(&ops, json!({"kind": "k"}));
    assert_eq!(ops.get(&format!("/v1/jobs/{id}")).status, 200);
    assert_eq!(ops.post("/v1/queues/default/pause", &json!({})).status, 200);
    assert_eq!(
        ops.post("/v1/queues/default/resume", &json!({})).status,
        200
    );
    assert_eq!(
        ops.post("/v1/workers", &json!({"queues": ["default"]}))
            .status,
        403
    );

    // work: the worker protocol only.
    let r = work.post("/v1/workers", &json!({"queues": ["default"]}));
    assert_eq!(r.status, 201);
    let wid = r.json()["worker_id"].as_str().unwrap().to_string();
    let leased = lease(&work, &wid, &["default"], json!({}));
    assert_eq!(leased.len(), 1);
    assert_eq!(work.get("/v1/jobs").status, 403);
    assert_eq!(work.post("/v1/jobs", &json!({"kind": "k"})).status, 403);
    let r = work.post(
        &format!("/v1/jobs/{id}/complete"),
        &json!({"token": leased[0]["token"]}),
    );
    assert_eq!(r.status, 200);

    // admin: everything.
    assert_eq!(admin.get("/v1/workers").status, 200);
    enqueue(&admin, json!({"kind": "k"}));
    assert_eq!(
        admin
            .post("/v1/workers", &json!({"queues": ["default"]}))
            .status,
        201
    );

    // Changes are in the audit log with the token's name and the peer; no secret ever
    // reaches the log.
    let mut log = String::new();
    eventually(Duration::from_secs(5), "the audit lines", || {
        log = srv.log();
        log.contains("token=\"root\"") || log.contains("token=root")
    });
    assert!(
        log.contains("path=/v1/jobs")
            && log.contains("status=201")
            && log.contains("peer=127.0.0.1:"),
        "{log}"
    );
    assert!(
        log.contains("status=403"),
        "refusals by role are audited too: {log}"
    );
    for secret in [READER, OPERATOR, WORKER, ADMIN] {
        assert!(!log.contains(secret), "a token was logged: {log}");
    }
}

#[test]
fn tokens_from_the_config_file() {
    let mut env = Env::new();
    std::fs::write(
        env.path("quern.toml"),
        format!("[[server.tokens]]\nname = \"ops\"\nrole = \"operate\"\ntoken = \"{OPERATOR}\"\n"),
    )
    .unwrap();
    let srv = env.serve(&[]);
    assert_eq!(srv.http().get("/v1/jobs").status, 401);
    assert_eq!(srv.http().with_token(OPERATOR).get("/v1/jobs").status, 200);
    // A bad token entry is refused at start (exit 2).
    std::fs::write(
        env.path("quern.toml"),
        "[[server.tokens]]\nname = \"x\"\nrole = \"boss\"\ntoken = \"0123456789abcdefgh\"\n",
    )
    .unwrap();
    let err = env.fails(2, &["serve", "--addr", "127.0.0.1:0"]);
    assert!(err.contains("boss"), "{err}");
    std::fs::write(
        env.path("quern.toml"),
        "[[server.tokens]]\nname = \"x\"\nrole = \"read\"\ntoken = \"short\"\n",
    )
    .unwrap();
    let err = env.fails(2, &["serve", "--addr", "127.0.0.1:0"]);
    assert!(err.contains("shorter than 16"), "{err}");
}

#[test]
fn non_loopback_without_a_token_is_refused() {
    let env = Env::new();
    let err = env.fails(2, &["serve", "--addr", "0.0.0.0:0"]);
    assert!(
        err.contains("without authentication") && err.contains("QUERN_SERVER__TOKENS"),
        "{err}"
    );
    assert!(!env.path("quern.db").exists(), "nothing was opened");
    // With a token it starts.
    let mut env = Env::new();
    env.var("QUERN_SERVER__TOKENS", &tokens_env());
    let srv = env.serve(&["--addr", "0.0.0.0:0"]);
    let port = srv.addr.rsplit(':').next().unwrap();
    let h = Http::new(&format!("127.0.0.1:{port}")).with_token(READER);
    assert_eq!(h.get("/v1/jobs").status, 200);
}

#[test]
fn openapi_lists_every_route_with_its_errors() {
    let mut env = Env::new();
    let srv = env.serve(&[]);
    let doc = srv.http().get("/v1/openapi.json").json();
    assert_eq!(doc["openapi"], json!("3.1.0"));
    let expected = [
        ("/v1/jobs", "get"),
        ("/v1/jobs", "post"),
        ("/v1/jobs/batch", "post"),
        ("/v1/jobs/{id}", "get"),
        ("/v1/jobs/{id}/cancel", "post"),
        ("/v1/jobs/{id}/retry", "post"),
        ("/v1/jobs/{id}/reprioritize", "post"),
        ("/v1/jobs/{id}/events", "get"),
        ("/v1/events", "get"),
        ("/v1/jobs/{id}/logs", "get"),
        ("/v1/queues", "get"),
        ("/v1/queues/{name}", "get"),
        ("/v1/queues/{name}/pause", "post"),
        ("/v1/queues/{name}/resume", "post"),
        ("/v1/queues/{name}/settings", "get"),
        ("/v1/queues/{name}/settings", "patch"),
        ("/v1/schedules", "get"),
        ("/v1/schedules/{name}", "get"),
        ("/v1/schedules/{name}", "put"),
        ("/v1/schedules/{name}", "delete"),
        ("/v1/schedules/{name}/pause", "post"),
        ("/v1/schedules/{name}/resume", "post"),
        ("/v1/schedules/{name}/trigger", "post"),
        ("/v1/dlq", "get"),
        ("/v1/dlq/replay", "post"),
        ("/v1/dlq/delete", "post"),
        ("/v1/alerts", "get"),
        ("/v1/stats/minutes", "get"),
        ("/v1/workflows", "get"),
        ("/v1/workflows", "post"),
        ("/v1/workflows/{id}", "get"),
        ("/v1/workflows/{id}/status", "get"),
        ("/v1/workflows/{id}/graph", "get"),
        ("/v1/workflows/{id}/cancel", "post"),
        ("/v1/workflows/{id}/retry", "post"),
        ("/v1/workers", "get"),
        ("/v1/workers", "post"),
        ("/v1/lease", "post"),
        ("/v1/jobs/{id}/heartbeat", "post"),
        ("/v1/jobs/{id}/complete", "post"),
        ("/v1/jobs/{id}/fail", "post"),
        ("/v1/jobs/{id}/release", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/v1/batch/heartbeat", "post"),
        ("/v1/batch/complete", "post"),
        ("/v1/batch/fail", "post"),
        ("/v1/batch/release", "post"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let mut count = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            count += 1;
            assert!(
                expected.contains(&(path.as_str(), method.as_str())),
                "unexpected {method} {path}"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("503"), "{method} {path}");
            if !path.ends_with("z") {
                for code in ["400", "401", "403", "422"] {
                    assert!(responses.contains_key(code), "{method} {path} lacks {code}");
                }
            }
        }
    }
    assert_eq!(count, expected.len(), "every route is in the document");
    // Each documented route answers (none is a 404 from the router).
    let h = srv.http();
    for (path, method) in expected {
        let p = path
            .replace("{id}", "01900000-0000-7000-8000-000000000000")
            .replace("{name}", "q");
        let r = if method == "get" {
            h.get(&p)
        } else {
            h.post(&p, &json!({}))
        };
        assert!(
            r.status != 404 || r.code() != "not_found",
            "{method} {path} is not routed"
        );
        assert!(r.status < 500, "{method} {path}: {}", r.status);
    }
}

/// Starts a private redis-server on a free port; killed on drop.
struct OwnRedis {
    child: std::process::Child,
    port: u16,
}

impl OwnRedis {
    fn start(dir: &std::path::Path) -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server");
        eventually(Duration::from_secs(10), "redis-server up", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        OwnRedis { child, port }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        crate::support::signal(self.child.id(), libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Over its memory budget (`[redis] max_memory`) a Redis store is not ready for producers:
/// `/readyz` says 503 `store_full`, and an enqueue is refused with 507 and stores nothing.
#[test]
fn readyz_fails_when_redis_is_over_its_memory_budget() {
    let Some(mut env) = Env::redis() else {
        return;
    };
    env.var("QUERN_REDIS__MAX_MEMORY", "1");
    let srv = env.serve(&[]);
    let h = srv.http();
    let r = h.get("/readyz");
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "store_full"),
        "{}",
        r.json()
    );
    let r = h.post("/v1/jobs", &json!({"kind": "quern.noop", "queue": "full"}));
    assert_eq!((r.status, r.code().as_str()), (507, "store_full"));
    assert!(jobs(&h, "&queue=full").is_empty(), "nothing stored");
    assert_eq!(h.get("/healthz").status, 200, "the process is up");
}

#[test]
fn readyz_fails_when_the_store_stops_answering() {
    if crate::redis::redis_url().is_none() {
        return;
    }
    let mut env = Env::new();
    let redis = OwnRedis::start(env.dir.path());
    env.var("QUERN_STORE", &format!("redis://127.0.0.1:{}", redis.port));
    let srv = env.serve(&[]);
    let h = srv.http();
    assert_eq!(h.get("/readyz").json()["status"], json!("ready"));
    crate::support::signal(redis.child.id(), libc::SIGSTOP);
    let start = Instant::now();
    let r = h.get("/readyz");
    let took = start.elapsed();
    assert_eq!((r.status, r.code().as_str()), (503, "store_unavailable"));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1s"),
        "{}",
        r.json()
    );
    assert!(
        took < Duration::from_secs(3),
        "answered within the timeout ({took:?})"
    );
    assert_eq!(h.get("/healthz").status, 200, "the process is still up");
    crate::support::signal(redis.child.id(), libc::SIGCONT);
    eventually(Duration::from_secs(10), "ready again", || {
        h.get("/readyz").status == 200
    });
}

#[test]
fn sigterm_stops_gracefully_and_ends_long_polls() {
    let mut env = Env::new();
    let srv: Server = env.serve(&["--workers", "2"]);
    let h = srv.http();
    let w = register(&h, &["idle"]);
    let h2 = h.clone();
    let poll = std::thread::spawn(move || {
        h2.post(
            "/v1/lease",
            &json!({"worker_id": w, "queues": ["idle"], "wait_ms": 30000}),
        )
    });
    // The poll is in flight once the server has seen the worker's lease call refresh it.
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    crate::support::signal(srv.pid, libc::SIGTERM);
    let r = poll.join().unwrap();
    assert_eq!(
        (r.status, r.json()["jobs"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let mut child = env.take_child(srv.pid);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "quern serve did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{}", srv.log());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

fn python_worker() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/workers/python_worker.py")
        .display()
        .to_string()
}

/// Runs the Python worker (standard library only) until it has been idle for `idle` seconds;
/// returns its stdout, one line per reported outcome.
fn run_python(srv: &Server, queues: &str, extra: &[&str], idle: &str) -> std::process::Child {
    std::process::Command::new("python3")
        .arg(python_worker())
        .args([
            "--server",
            &format!("http://{}", srv.addr),
            "--queues",
            queues,
        ])
        .args(["--exit-when-idle", idle])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3")
}

fn python_output(child: std::process::Child) -> String {
    let out = crate::support::wait_output(child, Duration::from_secs(60), &["python_worker.py"]);
    assert!(
        out.status.success(),
        "python worker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const PY_WORKFLOW: &str = r#"
name: py
tasks:
  - id: split
    kind: py.echo
    queue: py
    params: {items: [1, 2, 3], go: false}
  - id: each
    kind: py.echo
    queue: py
    depends_on: [split]
    for_each: ${split.result.items}
    params: {n: "${item}"}
  - id: never
    kind: py.echo
    queue: py
    depends_on: [split]
    when: ${split.result.go}
  - id: total
    kind: py.echo
    queue: py
    depends_on: [each]
    params: {all: "${each.result}"}
"#;

/// The example Python worker (examples/workers/python_worker.py) leases, heartbeats,
/// completes, fails and retries jobs, and runs a workflow's tasks: templates rendered, a
/// `when:` skip and a `for_each` fan-out decided by the server's pipeline.
fn python_worker_runs_jobs_and_workflows(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let flaky = enqueue(
        &h,
        json!({"kind": "py.flaky", "queue": "py", "max_attempts": 3}),
    );
    let fatal = enqueue(&h, json!({"kind": "py.fatal", "queue": "py"}));
    let r = h.post("/v1/workflows", &json!({"source": PY_WORKFLOW}));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let wf = r.json()["id"].as_str().unwrap().to_string();
    let out = python_output(run_python(&srv, "py", &[], "4"));
    assert!(out.contains(&format!("{fatal} fail 200")), "{out}");
    let j = job(&h, &flaky);
    assert_eq!(
        (&j["state"], &j["attempt"]),
        (&json!("succeeded"), &json!(2)),
        "{out}"
    );
    assert_eq!(
        j["errors"][0]["message"],
        json!("flaky: first attempt fails")
    );
    assert_eq!(job(&h, &fatal)["state"], json!("dead"));
    let st = wait_workflow(&h, &wf, "succeeded");
    let state = |t: &str| {
        st["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == json!(t))
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state("never"), json!("skipped"));
    assert_eq!(state("each"), json!("succeeded"));
    let total_id = st["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == json!("total"))
        .unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        job(&h, &total_id)["result"],
        json!({"all": [{"n": 1}, {"n": 2}, {"n": 3}]}),
        "the fan-in collected the instances' results in order"
    );
}

on_every_store!(
    python_worker_runs_jobs_and_workflows,
    python_worker_lease_expires,
    python_worker_reports_an_upstream_rate_limit
);

/// The Python worker's `py.upstream` handler answers `rate_limited` with `retry_after_ms`
/// while its upstream says 429: the job is snoozed without counting an attempt, and its
/// group is held, so the group's next job is not leased before the hold ends either.
fn python_worker_reports_an_upstream_rate_limit(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let until = now + 1500;
    let limited = enqueue(
        &h,
        json!({"kind": "py.upstream", "queue": "pyup", "group": "acct",
               "payload": {"limited_until_ms": until}}),
    );
    let next = enqueue(
        &h,
        json!({"kind": "py.echo", "queue": "pyup", "group": "acct", "payload": {"n": 1}}),
    );
    let other = enqueue(
        &h,
        json!({"kind": "py.echo", "queue": "pyup", "group": "other", "payload": {"n": 2}}),
    );
    let out = python_output(run_python(&srv, "pyup", &[], "3"));
    assert!(out.contains(&format!("{limited} fail 200")), "{out}");
    let j = job(&h, &limited);
    assert_eq!(
        (&j["state"], &j["attempt"]),
        (&json!("succeeded"), &json!(1)),
        "the rate-limited attempt is not counted: {j}\n{out}"
    );
    let claimed = |id: &str| job(&h, id)["claimed_at"].as_i64().unwrap();
    assert!(
        claimed(&limited) >= until - 50,
        "leased again only after retry_after: {} < {until}",
        claimed(&limited)
    );
    assert!(
        claimed(&next) >= until - 50,
        "the held group's next job waited for the hold: {} < {until}",
        claimed(&next)
    );
    assert!(
        claimed(&other) < until - 500,
        "another group is not held: {} vs {until}",
        claimed(&other)
    );
    assert_eq!(job(&h, &next)["state"], json!("succeeded"));
    assert_eq!(job(&h, &other)["state"], json!("succeeded"));
}

/// A Python worker whose lease runs out while it works: a second one takes the job over and
/// completes it; the first one's late complete gets 409 `lease_lost` and changes nothing.
fn python_worker_lease_expires(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let id = enqueue(
        &h,
        json!({"kind": "py.slow", "queue": "slowpy", "payload": {"sleep_ms": 4000}}),
    );
    let slow = run_python(&srv, "slowpy", &["--lease-ms", "500"], "2");
    eventually(
        Duration::from_secs(10),
        "the first worker holds the job",
        || job(&h, &id)["state"] == json!("running"),
    );
    let second = run_python(&srv, "slowpy", &[], "6");
    let second_out = python_output(second);
    let first_out = python_output(slow);
    assert!(
        second_out.contains(&format!("{id} complete 200")),
        "{second_out}"
    );
    assert!(
        first_out.contains(&format!("{id} complete 409 lease_lost")),
        "{first_out}"
    );
    let j = job(&h, &id);
    assert_eq!(
        (&j["state"], &j["result"]),
        (&json!("succeeded"), &json!({"attempt": 2}))
    );
}

fn batch_protocol(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let w = register(&h, &["b"]);
    let ids: Vec<String> = (0..5)
        .map(|i| enqueue(&h, json!({"kind": "k", "queue": "b", "payload": i})))
        .collect();
    let leased = lease(&h, &w, &["b"], json!({"max": 5}));
    assert_eq!(leased.len(), 5);
    let tok = |i: usize| leased[i]["token"].clone();
    let idx = |i: usize| leased[i]["id"].as_str().unwrap().to_string();
    // One job's lease is lost (cancelled): its items fail, the others stand.
    let cancelled = idx(4);
    assert_eq!(
        h.post(&format!("/v1/jobs/{cancelled}/cancel"), &json!({}))
            .status,
        200
    );
    let r = h.post("/v1/batch/heartbeat", &json!({"worker_id": w, "lease_ms": 60000, "items": (0..5).map(|i| json!({"token": tok(i)})).collect::<Vec<_>>()}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let res = r.json()["results"].as_array().unwrap().clone();
    assert!(
        res[..4]
            .iter()
            .all(|x| x["ok"] == json!(true) && x["deadline"].is_i64()),
        "{res:?}"
    );
    assert_eq!(res[4]["error"]["code"], json!("lease_lost"));
    let r = h.post("/v1/batch/complete", &json!({"items": [
        {"token": tok(0), "result": "r0"}, {"token": tok(1), "result": "r1"}, {"token": tok(4), "result": "late"}
    ]}));
    let res = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(
        (&res[0]["ok"], &res[1]["ok"], &res[2]["error"]["code"]),
        (&json!(true), &json!(true), &json!("lease_lost"))
    );
    assert_eq!(job(&h, &idx(1))["result"], json!("r1"));
    assert_eq!(
        job(&h, &cancelled)["state"],
        json!("cancelled"),
        "the stale item changed nothing"
    );
    let r = h.post("/v1/batch/fail", &json!({"items": [{"token": tok(2), "error": "no", "retryable": false}, {"token": tok(0), "error": "again"}]}));
    let res = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(
        (&res[0]["ok"], &res[1]["error"]["code"]),
        (&json!(true), &json!("lease_lost"))
    );
    assert_eq!(job(&h, &idx(2))["state"], json!("dead"));
    assert_eq!(job(&h, &idx(0))["state"], json!("succeeded"));
    let r = h.post("/v1/batch/release", &json!({"tokens": [tok(3)]}));
    assert_eq!(r.json()["results"][0]["ok"], json!(true));
    assert_eq!(job(&h, &idx(3))["state"], json!("queued"));
    assert_eq!(
        h.post("/v1/batch/complete", &json!({"items": []})).status,
        422
    );
    assert_eq!(
        h.post("/v1/batch/complete", &json!({"items": [{"token": "junk"}]}))
            .status,
        422
    );
    assert!(ids.contains(&idx(0)));
}

/// `/readyz` reports wedged work: a ready job waiting past `[server] wedged_after` in a queue
/// that a live worker serves.
#[test]
fn readyz_fails_when_ready_work_waits_beside_live_workers() {
    let mut env = Env::new();
    env.var("QUERN_SERVER__WEDGED_AFTER", "1s");
    let srv = env.serve(&[]);
    let h = srv.http();
    // Enqueued first: older than the stuck job below, and no worker serves its queue.
    enqueue(&h, json!({"kind": "k", "queue": "orphan"}));
    let id = enqueue(&h, json!({"kind": "k", "queue": "stuck"}));
    let w = register(&h, &["stuck"]);
    assert_eq!(h.get("/readyz").status, 200, "young work is not wedged");
    let mut r = h.get("/readyz");
    eventually(Duration::from_secs(10), "readyz reports the wedge", || {
        r = h.get("/readyz");
        r.status == 503
    });
    assert_eq!(r.code(), "wedged", "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"stuck\"")
    );
    // Once the job is claimed the server is ready again, though the older orphan job still
    // waits: with no worker for its queue, that is not the server's fault.
    let leased = lease(&h, &w, &["stuck"], json!({}));
    assert_eq!(leased[0]["id"].as_str(), Some(id.as_str()));
    assert_eq!(h.get("/readyz").status, 200);
}
