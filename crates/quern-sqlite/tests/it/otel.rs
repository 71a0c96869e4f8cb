//! The trace crosses from the producer to the worker through a real SQLite file (the `otel`
//! feature: `cargo test -p quern-sqlite --features otel --test it otel`): an in-memory
//! OpenTelemetry exporter collects the spans of a producer span that enqueues a job and of
//! the worker that runs it, and the worker's `quern.run` must be a child of the producer's
//! `quern.enqueue`, in the producer's trace.

use std::future::IntoFuture;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use quern::{Client, Context, JobState, Task, TaskError};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

use crate::worker::{WAIT, open, worker};

struct Traced;
impl Task for Traced {
    const KIND: &'static str = "traced";
    type Input = u32;
    type Output = ();
    async fn run(&self, _: &Context, _: u32) -> Result<(), TaskError> {
        tracing::info_span!("handler.inner").in_scope(|| {});
        Ok(())
    }
}

fn span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
        panic!("no {name} span among {names:?}")
    })
}

#[test]
fn the_worker_run_span_is_a_child_of_the_producer() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("quern-test")));
    // A subscriber for this test only (the current thread and the runtime's threads).
    let dispatch = tracing::Dispatch::new(subscriber);
    let _guard = tracing::dispatcher::set_default(&dispatch);
    let rt = {
        let d = dispatch.clone();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                // Leaked on purpose: the guard must outlive the thread's tasks.
                std::mem::forget(tracing::dispatcher::set_default(&d));
            })
            .build()
            .unwrap()
    };
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let backend = open(&dir).await;
        let client = Client::new(backend.clone());
        let id = client
            .enqueue::<Traced>(&7)
            .into_future()
            .instrument(tracing::info_span!("producer.request"))
            .await
            .unwrap();
        let stored = client.get(id).await.unwrap().unwrap();
        let tc = stored
            .trace
            .expect("the enqueue stored the producer's trace context");

        let w = worker(&backend)
            .register(Traced)
            .build()
            .unwrap()
            .start()
            .await
            .unwrap();
        let job = client.wait(id, WAIT).await.unwrap();
        assert_eq!(job.state, JobState::Succeeded);
        w.shutdown().await.unwrap();

        let _ = provider.force_flush();
        let spans = exporter.get_finished_spans().unwrap();
        let producer = span(&spans, "producer.request");
        let enqueue = span(&spans, "quern.enqueue");
        let run = span(&spans, "quern.run");
        let complete = span(&spans, "quern.complete");
        let inner = span(&spans, "handler.inner");
        let trace = producer.span_context.trace_id();
        assert_eq!(enqueue.parent_span_id, producer.span_context.span_id());
        assert_eq!(tc.trace_id(), trace.to_string(), "stored trace id");
        assert_eq!(tc.parent_id(), enqueue.span_context.span_id().to_string());
        for s in [enqueue, run, complete, inner] {
            assert_eq!(
                s.span_context.trace_id(),
                trace,
                "{} is in the producer's trace",
                s.name
            );
        }
        assert_eq!(
            run.parent_span_id,
            enqueue.span_context.span_id(),
            "quern.run is a child of quern.enqueue"
        );
        assert!(
            run.parent_span_is_remote,
            "the parent came through the store"
        );
        assert_eq!(complete.parent_span_id, run.span_context.span_id());
        assert_eq!(inner.parent_span_id, run.span_context.span_id());
        let attr = |s: &SpanData, k: &str| {
            s.attributes
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(attr(run, "job_id"), Some(id.to_string()));
        assert_eq!(attr(run, "kind").as_deref(), Some("traced"));
        assert_eq!(attr(run, "attempt").as_deref(), Some("1"));
        assert_eq!(attr(complete, "stored").as_deref(), Some("ok"));
    });
}
