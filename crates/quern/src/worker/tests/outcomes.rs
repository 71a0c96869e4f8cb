//! Each handler outcome ends in the right state with the right error history.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Env, LONG, handler};
use crate::model::ErrorKind;
use crate::{Context, JobState, NewJob, Payload, RetryPolicy, Task, TaskError};

#[derive(Serialize, Deserialize)]
struct Sum {
    a: i64,
    b: i64,
}

struct Add;
impl Task for Add {
    const KIND: &'static str = "add";
    type Input = Sum;
    type Output = i64;
    async fn run(&self, _ctx: &Context, input: Sum) -> Result<i64, TaskError> {
        Ok(input.a + input.b)
    }
}

/// Fails with a retryable error until its `n`th call.
struct Flaky {
    calls: Arc<AtomicU32>,
    succeed_on: u32,
}
impl Task for Flaky {
    const KIND: &'static str = "flaky";
    type Input = ();
    type Output = ();
    async fn run(&self, _ctx: &Context, _: ()) -> Result<(), TaskError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n < self.succeed_on {
            Err(TaskError::retryable(format!("failure {n}")))
        } else {
            Ok(())
        }
    }
    fn retry_policy() -> RetryPolicy {
        RetryPolicy::Fixed {
            delay: Duration::from_secs(10),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn typed_round_trip_stores_the_result() {
    let env = Env::new();
    let w = env
        .worker()
        .register(Add)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let id = env
        .client
        .enqueue::<Add>(&Sum { a: 2, b: 40 })
        .await
        .unwrap();
    let job = env.client.wait(id, LONG).await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempt, 1);
    assert_eq!(job.result.unwrap().decode::<i64>().unwrap(), 42);
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_task_policy_then_succeed() {
    let env = Env::new();
    let calls = Arc::new(AtomicU32::new(0));
    let flaky = Flaky {
        calls: calls.clone(),
        succeed_on: 3,
    };
    let w = env
        .worker()
        .register(flaky)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let start = env.now();
    let id = env.client.enqueue::<Flaky>(&()).await.unwrap();
    let job = env.client.wait(id, LONG).await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempt, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let msgs: Vec<_> = job
        .errors
        .iter()
        .map(|e| (e.attempt, e.kind, e.message.as_str()))
        .collect();
    assert_eq!(
        msgs,
        [
            (1, ErrorKind::Retryable, "failure 1"),
            (2, ErrorKind::Retryable, "failure 2")
        ]
    );
    // Two fixed 10 s backoffs, and no more than a poll interval of slack each.
    let took = job.finished_at.unwrap() - start;
    assert!((20_000..23_000).contains(&took), "took {took} ms");
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn fatal_errors_go_straight_to_dead() {
    let env = Env::new();
    let h = handler(|_, _| async { Err(TaskError::fatal("bad input")) });
    let w = env
        .worker()
        .handler("f", h)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = env
        .client
        .enqueue_job(NewJob::json("f", serde_json::json!({})).unwrap())
        .await
        .unwrap();
    let job = env.client.wait(out.id, LONG).await.unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.attempt, 1);
    assert_eq!(job.errors[0].kind, ErrorKind::Fatal);
    assert_eq!(job.errors[0].message, "bad input");
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn snoozes_do_not_count_attempts() {
    let env = Env::new();
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let h = handler(move |ctx, _| {
        let n = r.fetch_add(1, Ordering::SeqCst);
        async move {
            assert_eq!(ctx.attempt(), 1, "a snooze must not count an attempt");
            if n < 2 {
                Err(TaskError::snooze(Duration::from_secs(30)))
            } else {
                Ok(None)
            }
        }
    });
    let w = env
        .worker()
        .handler("s", h)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let start = env.now();
    let out = env
        .client
        .enqueue_job(NewJob::json("s", serde_json::json!(1)).unwrap())
        .await
        .unwrap();
    let job = env.client.wait(out.id, LONG).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Succeeded, 1));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert!(job.errors.is_empty());
    assert!(job.finished_at.unwrap() - start >= 60_000);
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn handlers_can_cancel_their_job() {
    let env = Env::new();
    let h = handler(|_, _| async { Err(TaskError::cancel("not needed any more")) });
    let w = env
        .worker()
        .handler("c", h)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = env
        .client
        .enqueue_job(NewJob::json("c", serde_json::json!(1)).unwrap())
        .await
        .unwrap();
    let job = env.client.wait(out.id, LONG).await.unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert_eq!(job.errors[0].kind, ErrorKind::Cancelled);
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn timeouts_drop_the_handler_and_count_as_retryable() {
    let env = Env::new();
    let saw_cancel = Arc::new(AtomicU32::new(0));
    let finished = Arc::new(AtomicU32::new(0));
    let (c, f) = (saw_cancel.clone(), finished.clone());
    let h = handler(move |ctx, _| {
        let (c, f) = (c.clone(), f.clone());
        async move {
            // A child task that watches the context, as spawned work would.
            let token = ctx.cancellation().clone();
            tokio::spawn(async move {
                token.cancelled().await;
                c.fetch_add(1, Ordering::SeqCst);
            });
            tokio::time::sleep(LONG).await;
            f.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }
    });
    let w = env
        .worker()
        .handler("slow", h)
        .default_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    // The job's own timeout wins over the worker default.
    let job = NewJob::json("slow", serde_json::json!(1))
        .unwrap()
        .timeout(Duration::from_secs(2))
        .max_attempts(2)
        .retry(RetryPolicy::Fixed {
            delay: Duration::from_secs(1),
        });
    let start = env.now();
    let out = env.client.enqueue_job(job).await.unwrap();
    let job = env.client.wait(out.id, LONG).await.unwrap();
    assert_eq!(job.state, JobState::Dead);
    let kinds: Vec<_> = job.errors.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ErrorKind::Timeout, ErrorKind::Timeout]);
    assert_eq!(job.errors[0].message, "timed out after 2s");
    assert!(job.finished_at.unwrap() - start < 10_000);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        saw_cancel.load(Ordering::SeqCst),
        2,
        "the context is cancelled on timeout"
    );
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "the handler future was dropped"
    );
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn panics_fail_the_attempt_and_the_worker_carries_on() {
    let env = Env::new();
    let h = handler(|_, p: Payload| async move {
        if p.decode::<bool>().unwrap() {
            panic!("handler exploded");
        }
        Ok(None)
    });
    let w = env
        .worker()
        .handler("p", h)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let bad = env
        .client
        .enqueue_job(
            NewJob::json("p", serde_json::json!(true))
                .unwrap()
                .max_attempts(1),
        )
        .await
        .unwrap();
    let job = env.client.wait(bad.id, LONG).await.unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.errors[0].kind, ErrorKind::Panic);
    assert_eq!(job.errors[0].message, "panicked: handler exploded");
    let good = env
        .client
        .enqueue_job(NewJob::json("p", serde_json::json!(false)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        env.client.wait(good.id, LONG).await.unwrap().state,
        JobState::Succeeded
    );
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn unknown_kinds_are_retried_with_the_worker_default_policy() {
    let env = Env::new();
    let h = handler(|_, _| async { Ok(None) });
    let w = env
        .worker()
        .handler("known", h)
        .default_retry(RetryPolicy::Fixed {
            delay: Duration::from_secs(600),
        })
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = env
        .client
        .enqueue_job(NewJob::json("mystery", serde_json::json!(1)).unwrap())
        .await
        .unwrap();
    let job = loop {
        let j = env.client.get(out.id).await.unwrap().unwrap();
        if j.state == JobState::Scheduled {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(job.errors[0].kind, ErrorKind::UnknownKind);
    let wait = job.run_at - job.errors[0].at;
    assert_eq!(wait, 600_000, "the worker default policy applies");
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn job_policy_beats_handler_policy() {
    let env = Env::new();
    let calls = Arc::new(AtomicU32::new(0));
    let flaky = Flaky {
        calls,
        succeed_on: u32::MAX,
    };
    let w = env
        .worker()
        .register(flaky)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let id = env
        .client
        .enqueue::<Flaky>(&())
        .retry(RetryPolicy::Fixed {
            delay: Duration::from_secs(77),
        })
        .await
        .unwrap();
    let job = loop {
        let j = env.client.get(id).await.unwrap().unwrap();
        if j.state == JobState::Scheduled {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(job.run_at - job.errors[0].at, 77_000);
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn progress_and_checkpoints_are_stored_and_resumed() {
    let env = Env::new();
    let h = handler(|ctx: Context, _| async move {
        let start: u32 = ctx.last_checkpoint().unwrap().unwrap_or(0);
        ctx.progress(50.0, Some("half".into())).await.unwrap();
        ctx.checkpoint(&(start + 10)).await.unwrap();
        if start == 0 {
            return Err(TaskError::retryable(
                "first attempt stops after the checkpoint",
            ));
        }
        Ok(Some(Payload::encode(&start, &Default::default()).unwrap()))
    });
    let w = env
        .worker()
        .handler("cp", h)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out =
        env.client
            .enqueue_job(NewJob::json("cp", serde_json::json!(1)).unwrap().retry(
                RetryPolicy::Fixed {
                    delay: Duration::from_secs(1),
                },
            ))
            .await
            .unwrap();
    let job = env.client.wait(out.id, LONG).await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(
        job.result.unwrap().decode::<u32>().unwrap(),
        10,
        "resumed from the checkpoint"
    );
    assert_eq!(job.checkpoint.unwrap().decode::<u32>().unwrap(), 20);
    let p = job.progress.unwrap();
    assert_eq!((p.percent, p.message.as_deref()), (50.0, Some("half")));
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn unit_outputs_store_no_result_and_duplicates_return_the_live_id() {
    struct Nothing;
    impl Task for Nothing {
        const KIND: &'static str = "nothing";
        type Input = u8;
        type Output = ();
        async fn run(&self, _: &Context, _: u8) -> Result<(), TaskError> {
            Ok(())
        }
        fn queue() -> &'static str {
            "quiet"
        }
    }
    let env = Env::new();
    let first = env.client.enqueue::<Nothing>(&1).unique("k").await.unwrap();
    let again = env
        .client
        .enqueue::<Nothing>(&2)
        .unique("k")
        .outcome()
        .await
        .unwrap();
    assert_eq!((again.id, again.duplicate), (first, true));
    let w = env
        .worker()
        .register(Nothing)
        .queues([("quiet", 1)])
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let job = env.client.wait(first, LONG).await.unwrap();
    assert_eq!(
        (job.state, job.queue.as_str()),
        (JobState::Succeeded, "quiet")
    );
    assert!(job.result.is_none());
    w.shutdown().await.unwrap();
}
