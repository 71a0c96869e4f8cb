//! Payload versions end to end on a real store (shared with quern-redis by path): jobs
//! written by an old task definition are upcast for the new one, and a job newer than the
//! worker knows fails as fatal without a retry.

use std::time::Duration;

use quern::model::ErrorKind;
use quern::{Client, Context, JobState, NewJob, Task, TaskError};
use serde::{Deserialize, Serialize};

use crate::worker::{WAIT, open, worker};

#[derive(Serialize, Deserialize)]
struct NameV1 {
    name: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct NameV2 {
    first: String,
    last: String,
}

/// The old definition: one `name` field (version 1).
struct GreetV1;
impl Task for GreetV1 {
    const KIND: &'static str = "greet";
    const VERSION: u32 = 1;
    type Input = NameV1;
    type Output = String;
    async fn run(&self, _: &Context, i: NameV1) -> Result<String, TaskError> {
        Ok(format!("old {}", i.name))
    }
}

/// The new definition: first and last name (version 2), with the upcaster from version 1.
struct GreetV2;
impl Task for GreetV2 {
    const KIND: &'static str = "greet";
    const VERSION: u32 = 2;
    type Input = NameV2;
    type Output = String;
    async fn run(&self, _: &Context, i: NameV2) -> Result<String, TaskError> {
        Ok(format!("hello {} / {}", i.first, i.last))
    }
    fn upcast(from: u32, p: serde_json::Value) -> Result<serde_json::Value, String> {
        match from {
            1 => {
                let name = p["name"].as_str().ok_or("no name")?;
                let (first, last) = name.split_once(' ').unwrap_or((name, ""));
                Ok(serde_json::json!({"first": first, "last": last}))
            }
            v => Err(format!("unknown version {v}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_payloads_are_upcast_and_newer_ones_fail_as_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(&dir).await;
    let client = Client::new(backend.clone());
    // Written by the old definition, before the new worker exists.
    let old = client
        .enqueue::<GreetV1>(&NameV1 {
            name: "Ada Lovelace".into(),
        })
        .queue("versions")
        .await
        .unwrap();
    let stored = client.get(old).await.unwrap().unwrap();
    assert_eq!(stored.version, 1, "the old definition's version is stored");
    let new = client
        .enqueue::<GreetV2>(&NameV2 {
            first: "Grace".into(),
            last: "Hopper".into(),
        })
        .queue("versions")
        .await
        .unwrap();
    assert_eq!(client.get(new).await.unwrap().unwrap().version, 2);
    // From a producer that already knows a version 3.
    let newer = client
        .enqueue_job(
            NewJob::json(
                "greet",
                serde_json::json!({"first": "A", "last": "B", "x": 1}),
            )
            .unwrap()
            .queue("versions")
            .version(3)
            .max_attempts(5)
            .retry(quern::RetryPolicy::Fixed {
                delay: Duration::from_millis(1),
            }),
        )
        .await
        .unwrap()
        .id;

    let w = worker(&backend)
        .register(GreetV2)
        .queues([("versions", 1)])
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let result = |j: &quern::Job| -> String {
        j.result
            .as_ref()
            .expect("a result")
            .decode::<String>()
            .unwrap()
    };
    let old_job = client.wait(old, WAIT).await.unwrap();
    assert_eq!(old_job.state, JobState::Succeeded, "{old_job:?}");
    assert_eq!(
        result(&old_job),
        "hello Ada / Lovelace",
        "upcast from version 1"
    );
    let new_job = client.wait(new, WAIT).await.unwrap();
    assert_eq!(result(&new_job), "hello Grace / Hopper");
    let newer_job = client.wait(newer, WAIT).await.unwrap();
    w.shutdown().await.unwrap();

    assert_eq!(newer_job.state, JobState::Dead, "{newer_job:?}");
    assert_eq!(newer_job.attempt, 1, "fatal: not retried");
    let err = &newer_job.errors[0];
    assert_eq!(err.kind, ErrorKind::Fatal);
    assert!(
        err.message.contains("payload version 3 is newer") && err.message.contains("(version 2)"),
        "{}",
        err.message
    );
}
