//! Worker unit tests on the in-memory backend, with tokio's clock paused: waits for leases,
//! backoffs and timeouts complete instantly and deterministically.

mod leases;
mod order;
mod outcomes;
mod services;
mod shutdown;
mod slots;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Context, Handler, WorkerBuilder};
use crate::test_util::mem::MemBackend;
use crate::{Client, Payload, SharedClock, TaskError, TokioClock, Worker};

type HandlerFuture = Pin<Box<dyn Future<Output = Result<Option<Payload>, TaskError>> + Send>>;

/// A raw handler from a closure.
struct FnHandler<F>(F);

#[async_trait]
impl<F> Handler for FnHandler<F>
where
    F: Fn(Context, Payload) -> HandlerFuture + Send + Sync + 'static,
{
    async fn run(&self, ctx: Context, payload: Payload) -> Result<Option<Payload>, TaskError> {
        (self.0)(ctx, payload).await
    }
}

fn handler<F, Fut>(f: F) -> Arc<dyn Handler>
where
    F: Fn(Context, Payload) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Payload>, TaskError>> + Send + 'static,
{
    Arc::new(FnHandler(move |ctx, p| {
        Box::pin(f(ctx, p)) as HandlerFuture
    }))
}

/// A backend, a client and a builder sharing one tokio-driven clock.
struct Env {
    backend: Arc<MemBackend>,
    client: Client,
    clock: SharedClock,
}

impl Env {
    fn new() -> Self {
        let clock: SharedClock = Arc::new(TokioClock::new());
        let backend = Arc::new(MemBackend::new(clock.clone()));
        let client = Client::new(backend.clone());
        Env {
            backend,
            client,
            clock,
        }
    }

    fn worker(&self) -> WorkerBuilder {
        Worker::builder(self.backend.clone())
            .clock(self.clock.clone())
            .id("test-worker")
    }

    fn now(&self) -> crate::Millis {
        self.clock.now_ms()
    }
}

/// Counts concurrent entries and remembers the maximum.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

const LONG: Duration = Duration::from_secs(3600);

/// Waits for every job to end and asserts that each succeeded.
async fn succeed_all(env: &Env, ids: impl IntoIterator<Item = crate::JobId>) {
    for id in ids {
        let job = env.client.wait(id, LONG).await.unwrap();
        assert_eq!(job.state, crate::JobState::Succeeded, "{job:?}");
    }
}
