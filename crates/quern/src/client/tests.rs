use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::*;
use crate::backend::BatchMode;
use crate::test_util::mem::MemBackend;
use crate::{Context, JobState, Priority, RetryPolicy, TaskError, TokioClock};

#[derive(Serialize, Deserialize)]
struct Mail {
    to: String,
}

struct SendMail;
impl Task for SendMail {
    const KIND: &'static str = "send_mail";
    type Input = Mail;
    type Output = ();
    async fn run(&self, _: &Context, _: Mail) -> Result<(), TaskError> {
        Ok(())
    }
    fn queue() -> &'static str {
        "mail"
    }
    fn priority() -> Priority {
        Priority::HIGH
    }
    fn max_attempts() -> u32 {
        3
    }
}

fn client() -> Client {
    Client::new(Arc::new(MemBackend::new(Arc::new(TokioClock::new()))))
}

fn mail() -> Mail {
    Mail {
        to: "ada@example.com".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn typed_enqueue_uses_task_defaults_and_overrides() {
    let c = client();
    let id = c.enqueue::<SendMail>(&mail()).await.unwrap();
    let j = c.get(id).await.unwrap().unwrap();
    assert_eq!((j.kind.as_str(), j.queue.as_str()), ("send_mail", "mail"));
    assert_eq!((j.priority, j.max_attempts), (Priority::HIGH, 3));
    assert_eq!(
        (j.retry.clone(), j.timeout),
        (None, None),
        "left to the worker"
    );
    assert_eq!(
        j.payload.decode::<serde_json::Value>().unwrap()["to"],
        "ada@example.com"
    );

    let dep = id;
    let id = c
        .enqueue::<SendMail>(&mail())
        .queue("urgent")
        .priority(Priority::CRITICAL)
        .delay(Duration::from_secs(90))
        .max_attempts(9)
        .timeout(Duration::from_secs(5))
        .retry(RetryPolicy::None)
        .depends_on(dep)
        .tag("welcome")
        .await
        .unwrap();
    let j = c.get(id).await.unwrap().unwrap();
    assert_eq!(
        (j.queue.as_str(), j.priority, j.max_attempts),
        ("urgent", Priority::CRITICAL, 9)
    );
    // The delay counts from the store: exactly 90 s after `created_at`.
    assert_eq!(j.run_at, j.created_at + 90_000);
    assert_eq!(j.timeout, Some(Duration::from_secs(5)));
    assert_eq!(j.retry, Some(RetryPolicy::None));
    assert_eq!(
        (j.depends_on.clone(), j.tags.clone()),
        (vec![dep], vec!["welcome".to_string()])
    );
    assert_eq!(j.state, JobState::Blocked);
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_a_clear_error_and_stores_nothing() {
    let c = client();
    let err = c
        .enqueue::<SendMail>(&mail())
        .queue("no spaces")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("queue name"), "{err}");
    let err = c
        .enqueue::<SendMail>(&mail())
        .unique_for(Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unique_for needs a unique key"),
        "{err}"
    );
    let page = c.list(Default::default()).await.unwrap();
    assert!(page.jobs.is_empty());
}

#[tokio::test(start_paused = true)]
async fn batches_are_atomic_or_best_effort() {
    let c = client();
    let good = || NewJob::json("k", serde_json::json!(1)).unwrap();
    let bad = || {
        NewJob::json("k", serde_json::json!(1))
            .unwrap()
            .max_attempts(0)
    };
    assert!(
        c.enqueue_batch(vec![good(), bad()], BatchMode::Atomic)
            .await
            .is_err()
    );
    assert!(c.list(Default::default()).await.unwrap().jobs.is_empty());
    let r = c
        .enqueue_batch(vec![good(), bad(), good()], BatchMode::BestEffort)
        .await
        .unwrap();
    assert_eq!(
        r.iter().map(Result::is_ok).collect::<Vec<_>>(),
        [true, false, true]
    );
    assert_eq!(c.list(Default::default()).await.unwrap().jobs.len(), 2);
    assert!(
        c.enqueue_batch(vec![], BatchMode::Atomic)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn wait_times_out_on_live_jobs_and_fails_on_missing_ones() {
    let c = client();
    let id = c.enqueue::<SendMail>(&mail()).await.unwrap();
    let started = tokio::time::Instant::now();
    let err = c.wait(id, Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    assert!(err.to_string().contains("still queued"), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert!(matches!(
        c.wait(JobId::new(), Duration::from_secs(1)).await,
        Err(Error::JobNotFound(_))
    ));
    let j = c.cancel(id, None).await.unwrap();
    assert_eq!(j.state, JobState::Cancelled);
    assert_eq!(
        c.wait(id, Duration::from_secs(1)).await.unwrap().state,
        JobState::Cancelled
    );
}

/// A task that leaves its queue and priority to the routes.
struct Resize;
impl Task for Resize {
    const KIND: &'static str = "resize.thumbnail";
    type Input = Mail;
    type Output = ();
    async fn run(&self, _: &Context, _: Mail) -> Result<(), TaskError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn routes_place_jobs_that_did_not_choose_a_queue() {
    use crate::routing::{Route, Router};
    let router = Router::new(vec![
        Route {
            kind: "resize.*".into(),
            queue: "cpu.thumbnail".into(),
            priority: Some(Priority::new(2).unwrap()),
            requires: vec![],
        },
        Route {
            kind: "*".into(),
            queue: "cpu.analysis".into(),
            priority: None,
            requires: vec![],
        },
    ])
    .unwrap();
    let c = client().with_router(router);
    // Typed, leaving queue and priority to the routes.
    let id = c.enqueue::<Resize>(&mail()).await.unwrap();
    let j = c.get(id).await.unwrap().unwrap();
    assert_eq!((j.queue.as_str(), j.priority.get()), ("cpu.thumbnail", 2));
    // A task with its own queue and priority keeps them.
    let id = c.enqueue::<SendMail>(&mail()).await.unwrap();
    let j = c.get(id).await.unwrap().unwrap();
    assert_eq!((j.queue.as_str(), j.priority), ("mail", Priority::HIGH));
    // Raw and batch jobs are routed the same way.
    let raw = NewJob::new("anything", crate::Payload::null());
    let id = c.enqueue_job(raw).await.unwrap().id;
    assert_eq!(c.get(id).await.unwrap().unwrap().queue, "cpu.analysis");
    let batch = vec![
        NewJob::new("resize.big", crate::Payload::null()),
        NewJob::new("resize.big", crate::Payload::null()).queue("pinned"),
    ];
    let res = c.enqueue_batch(batch, BatchMode::Atomic).await.unwrap();
    let ids: Vec<JobId> = res.into_iter().map(|r| r.unwrap().id).collect();
    let queues: Vec<String> = c
        .backend()
        .job_get_many(crate::backend::JobGetManyParams { ids })
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.unwrap().queue)
        .collect();
    assert_eq!(queues, ["cpu.thumbnail", "pinned"]);
}
