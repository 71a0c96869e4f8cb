//! Trace context and payload versions through the built binary and `quern serve`, on both
//! stores: `quern enqueue --traceparent/--tracestate/--payload-version` (and batch lines),
//! `quern jobs show`, REST `POST /v1/jobs` (body fields and the `traceparent` header), the
//! job DTO and the leased job of the HTTP worker protocol; malformed values are refused and
//! store nothing.

use serde_json::json;

use crate::support::Env;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TP2: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";

on_every_store!(
    cli_stores_and_shows_trace_and_version,
    rest_takes_trace_from_body_or_header
);

fn cli_stores_and_shows_trace_and_version(env: Env) {
    let id = env.enqueue(&[
        "quern.noop",
        "--traceparent",
        TP,
        "--tracestate",
        "vendor=abc,other=1",
        "--payload-version",
        "4",
    ]);
    let job = env.job(&id);
    assert_eq!(job["trace"]["traceparent"], TP);
    assert_eq!(job["trace"]["tracestate"], "vendor=abc,other=1");
    assert_eq!(job["version"], 4);
    let text = env.ok(&["jobs", "show", &id]);
    assert!(
        text.contains(&format!("trace       {TP} (vendor=abc,other=1)")),
        "{text}"
    );
    assert!(text.contains("version     4"), "{text}");

    // A job without them shows none.
    let plain = env.enqueue(&["quern.noop"]);
    let job = env.job(&plain);
    assert!(job.get("trace").is_none(), "{job}");
    assert_eq!(job["version"], 0);

    // Batch lines carry them too.
    let file = env.path("jobs.jsonl");
    std::fs::write(
        &file,
        format!(
            "{}\n",
            json!({"kind": "quern.noop", "traceparent": TP2, "payload_version": 2})
        ),
    )
    .unwrap();
    let out = env.json(&["enqueue", "--batch", file.to_str().unwrap()]);
    let id = out["jobs"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let job = env.job(&id);
    assert_eq!(job["trace"]["traceparent"], TP2);
    assert_eq!(job["version"], 2);

    // Malformed values are usage errors that store nothing.
    let before = env.jobs(&[]).len();
    let err = env.fails(2, &["enqueue", "quern.noop", "--traceparent", "00-abc-01"]);
    assert!(
        err.contains("traceparent") && err.contains("malformed"),
        "{err}"
    );
    let upper = TP.to_uppercase();
    let err = env.fails(2, &["enqueue", "quern.noop", "--traceparent", &upper]);
    assert!(err.contains("lowercase hex"), "{err}");
    let err = env.fails(
        2,
        &[
            "enqueue",
            "quern.noop",
            "--traceparent",
            TP,
            "--tracestate",
            "NOPE",
        ],
    );
    assert!(err.contains("tracestate is malformed"), "{err}");
    assert_eq!(env.jobs(&[]).len(), before, "nothing stored");
}

fn rest_takes_trace_from_body_or_header(mut env: Env) {
    let srv = env.serve(&[]);
    let h = srv.http();
    let enqueue = |h: &crate::http::Http, body: serde_json::Value| {
        let r = h.post("/v1/jobs", &body);
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        r.json()["id"].as_str().unwrap().to_string()
    };
    let get = |id: &str| {
        let r = h.get(&format!("/v1/jobs/{id}"));
        assert_eq!(r.status, 200);
        r.json()
    };

    let a = enqueue(
        &h,
        json!({"kind": "k", "queue": "tr", "traceparent": TP, "tracestate": "a=1", "payload_version": 3}),
    );
    let j = get(&a);
    assert_eq!(
        (&j["traceparent"], &j["tracestate"], &j["payload_version"]),
        (&json!(TP), &json!("a=1"), &json!(3))
    );

    // The header, when the body has none; the body wins over it.
    let with_header = h
        .with_header("traceparent", TP2)
        .with_header("tracestate", "h=2");
    let b = enqueue(&with_header, json!({"kind": "k", "queue": "tr"}));
    let j = get(&b);
    assert_eq!(
        (&j["traceparent"], &j["tracestate"]),
        (&json!(TP2), &json!("h=2"))
    );
    assert_eq!(j["payload_version"], 0);
    let c = enqueue(
        &with_header,
        json!({"kind": "k", "queue": "tr", "traceparent": TP}),
    );
    assert_eq!(get(&c)["traceparent"], TP);
    let d = enqueue(&h, json!({"kind": "k", "queue": "tr"}));
    assert_eq!(get(&d)["traceparent"], json!(null));

    // Malformed: 422 naming the problem, nothing stored.
    let count = || {
        let r = h.get("/v1/jobs?queue=tr&limit=1000");
        r.json()["jobs"].as_array().unwrap().len()
    };
    let before = count();
    let bad_header = h.with_header("traceparent", "00-xyz");
    let r = bad_header.post("/v1/jobs", &json!({"kind": "k", "queue": "tr"}));
    assert_eq!((r.status, r.code().as_str()), (422, "invalid_request"));
    assert!(String::from_utf8_lossy(&r.body).contains("traceparent"));
    let r = h.post(
        "/v1/jobs",
        &json!({"kind": "k", "queue": "tr", "traceparent": TP, "tracestate": "x"}),
    );
    assert_eq!((r.status, r.code().as_str()), (422, "invalid_request"));
    let r = h.post(
        "/v1/jobs",
        &json!({"kind": "k", "queue": "tr", "tracestate": "a=1"}),
    );
    assert_eq!((r.status, r.code().as_str()), (422, "invalid_request"));
    assert_eq!(count(), before, "nothing stored");

    // The HTTP worker protocol hands the context and version to the worker.
    let r = h.post("/v1/workers", &json!({"queues": ["tr"]}));
    let w = r.json()["worker_id"].as_str().unwrap().to_string();
    let r = h.post(
        "/v1/lease",
        &json!({"worker_id": w, "queues": ["tr"], "max": 100}),
    );
    assert_eq!(r.status, 200);
    let leased = r.json()["jobs"].as_array().unwrap().clone();
    let first = leased
        .iter()
        .find(|j| j["id"] == a.as_str())
        .unwrap_or_else(|| panic!("{leased:?}"));
    assert_eq!(
        (
            &first["traceparent"],
            &first["tracestate"],
            &first["payload_version"]
        ),
        (&json!(TP), &json!("a=1"), &json!(3))
    );
}
