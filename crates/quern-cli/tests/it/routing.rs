//! `[[routes]]` and worker capabilities through the built binary, on both stores: the
//! distributed-worker seed's router placing jobs enqueued by `quern enqueue` (one and a
//! batch file) and by `POST /v1/jobs`; workers started without `--queues` serving the
//! queues whose routes their capabilities satisfy; bad routes and capabilities refused.

use std::time::Duration;

use serde_json::json;

use crate::support::{Env, eventually, state};

on_every_store!(
    the_seed_router_places_jobs_from_the_cli_and_the_api,
    workers_without_queues_serve_the_routes_they_satisfy,
    bad_routes_and_capabilities_are_refused,
);

/// The seed's router: `generate_image` needs a GPU with more than 8 GB, `run_upscaling` a
/// GPU, thumbnails and unknown kinds go to CPU queues, `priority_task` to `priority` at
/// priority 1.
const SEED: &str = r#"
[[routes]]
kind = "generate_image"
queue = "gpu.generation"
requires = ["gpu", "vram_gb > 8"]

[[routes]]
kind = "run_upscaling"
queue = "gpu.processing"
requires = ["gpu = true"]

[[routes]]
kind = "generate_thumbnail"
queue = "cpu.thumbnail"

[[routes]]
kind = "priority_task"
queue = "priority"
priority = 1

[[routes]]
kind = "*"
queue = "cpu.analysis"
"#;

fn placed(env: &Env, id: &str) -> (String, u64) {
    let j = env.job(id);
    (
        j["queue"].as_str().unwrap().to_string(),
        j["priority"].as_u64().unwrap(),
    )
}

fn the_seed_router_places_jobs_from_the_cli_and_the_api(mut env: Env) {
    std::fs::write(env.path("quern.toml"), SEED).unwrap();
    for (kind, queue, priority) in [
        ("generate_image", "gpu.generation", 5),
        ("run_upscaling", "gpu.processing", 5),
        ("generate_thumbnail", "cpu.thumbnail", 5),
        ("summarize_text", "cpu.analysis", 5),
        ("priority_task", "priority", 1),
    ] {
        let id = env.enqueue(&[kind]);
        assert_eq!(placed(&env, &id), (queue.to_string(), priority), "{kind}");
    }
    // What the caller chose is kept.
    let id = env.enqueue(&["priority_task", "--queue", "mine", "--priority", "7"]);
    assert_eq!(placed(&env, &id), ("mine".to_string(), 7));
    // Batch lines are routed one by one.
    std::fs::write(
        env.path("jobs.jsonl"),
        "{\"kind\":\"generate_image\"}\n{\"kind\":\"generate_thumbnail\",\"queue\":\"pinned\"}\n",
    )
    .unwrap();
    let out = env.ok(&["enqueue", "--batch", "jobs.jsonl"]);
    let ids: Vec<&str> = out.split_whitespace().filter(|w| w.len() == 36).collect();
    assert_eq!(ids.len(), 2, "{out}");
    assert_eq!(placed(&env, ids[0]).0, "gpu.generation");
    assert_eq!(placed(&env, ids[1]).0, "pinned");
    // And over REST.
    let server = env.serve(&[]);
    let h = server.http();
    let r = h.post("/v1/jobs", &json!({"kind": "run_upscaling"}));
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(placed(&env, &id), ("gpu.processing".to_string(), 5));
    let r = h.post(
        "/v1/jobs/batch",
        &json!({"jobs": [{"kind": "priority_task"}, {"kind": "x", "queue": "kept"}]}),
    );
    assert!(r.status < 300, "{:?}", String::from_utf8_lossy(&r.body));
    let queues: Vec<String> = r.json()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|it| {
            let id = it["job"]["id"].as_str().expect("an id").to_string();
            placed(&env, &id).0
        })
        .collect();
    assert_eq!(queues, ["priority", "kept"]);
}

fn workers_without_queues_serve_the_routes_they_satisfy(mut env: Env) {
    std::fs::write(env.path("quern.toml"), SEED).unwrap();
    let image = env.enqueue(&["quern.noop", "--queue", "gpu.generation"]);
    let thumb = env.enqueue(&["generate_thumbnail"]);
    // A CPU worker: no capabilities, so no GPU queue.
    env.spawn(&["worker", "--lease", "2s"]);
    eventually(Duration::from_secs(20), "a CPU worker registered", || {
        env.json(&["workers", "list"])["workers"]
            .as_array()
            .is_some_and(|w| w.len() == 1)
    });
    let workers = env.json(&["workers", "list"]);
    let cpu = &workers["workers"][0];
    assert_eq!(
        cpu["queues"],
        json!(["cpu.thumbnail", "priority", "cpu.analysis"]),
        "{workers}"
    );
    // `generate_thumbnail` has no handler: it fails on the CPU worker, which shows it took
    // the job; the GPU queue's job is not taken.
    eventually(Duration::from_secs(20), "the thumbnail job taken", || {
        state(&env.job(&thumb)) != "queued"
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(state(&env.job(&image)), "queued", "no CPU worker takes it");
    // A GPU worker with enough memory serves the GPU queues too.
    env.spawn(&[
        "worker",
        "--lease",
        "2s",
        "--capabilities",
        "gpu,vram_gb=24",
    ]);
    eventually(Duration::from_secs(20), "the GPU job ran", || {
        state(&env.job(&image)) == "succeeded"
    });
    let workers = env.json(&["workers", "list"]);
    let gpu = workers["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["capabilities"] == json!(["gpu", "vram_gb=24"]))
        .unwrap_or_else(|| panic!("the GPU worker: {workers}"));
    assert_eq!(
        gpu["queues"],
        json!([
            "gpu.generation",
            "gpu.processing",
            "cpu.thumbnail",
            "priority",
            "cpu.analysis"
        ]),
        "{workers}"
    );
    let table = env.ok(&["workers", "list"]);
    assert!(
        table.contains("CAPABILITIES") && table.contains("gpu,vram_gb=24"),
        "{table}"
    );
}

fn bad_routes_and_capabilities_are_refused(env: Env) {
    env.enqueue(&["quern.noop"]);
    for (toml, want) in [
        (
            "[[routes]]\nkind = \"x\"\nqueue = \"no spaces\"\n",
            "routes[0].queue",
        ),
        (
            "[[routes]]\nkind = \"x\"\nqueue = \"q\"\nrequires = [\"vram_gb > lots\"]\n",
            "compares numbers",
        ),
        (
            "[[routes]]\nkind = \"x\"\nqueue = \"q\"\ncolour = \"red\"\n",
            "colour",
        ),
        (
            "[worker]\ncapabilities = [\"gpu\", \"gpu=false\"]\n",
            "twice",
        ),
    ] {
        std::fs::write(env.path("bad.toml"), toml).unwrap();
        let err = env.fails(2, &["--config", "bad.toml", "enqueue", "x"]);
        assert!(err.contains(want), "{toml}: {err}");
    }
    assert_eq!(env.jobs(&[]).len(), 1, "nothing more was enqueued");
    let err = env.fails(
        2,
        &["worker", "--exit-when-idle", "--capabilities", "vram_gb="],
    );
    assert!(err.contains("--capabilities"), "{err}");
    // Routes that all need a GPU leave a worker without one nothing to serve.
    std::fs::write(
        env.path("gpu.toml"),
        "[[routes]]\nkind = \"*\"\nqueue = \"gpu\"\nrequires = [\"gpu\"]\n",
    )
    .unwrap();
    let err = env.fails(2, &["--config", "gpu.toml", "worker", "--exit-when-idle"]);
    assert!(err.contains("no route's requirements"), "{err}");
}
