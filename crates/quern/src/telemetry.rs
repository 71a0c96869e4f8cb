//! Tracing spans around a job's life, and the W3C trace context that links them across
//! processes.
//!
//! Spans (all carry `job_id`, `kind`, `queue`; the worker's also `attempt`):
//! - `quern.enqueue` (info): [`Client::enqueue_job`](crate::Client::enqueue_job) and
//!   batches (a batch's span has `jobs`, the count, instead of one job's fields).
//! - `quern.claim` (debug): one claim call of a worker; records `claimed` (how many jobs),
//!   and the job's fields when it took exactly one.
//! - `quern.run` (info): one attempt on a worker, from its run slot to its outcome. A child
//!   of the job's stored trace context, so the trace continues from the producer.
//! - `quern.complete` (info): a child of `quern.run`, from the outcome (`outcome`:
//!   succeeded, failed, snoozed, released) until the store has recorded it (`stored`: ok,
//!   lease_lost, error).
//!
//! With the `otel` feature, the enqueue stores the current span's context with a job that
//! carries none, and `quern.run` gets the stored context as its OpenTelemetry parent.
//! Without it, a job's stored context is still shown: `quern.run` records its `trace_id`.

use crate::model::{Job, TraceContext};

/// The W3C context of the current span, when OpenTelemetry is on and the span is in a
/// trace; `None` otherwise.
pub fn current_trace() -> Option<TraceContext> {
    #[cfg(feature = "otel")]
    {
        otel::current()
    }
    #[cfg(not(feature = "otel"))]
    {
        None
    }
}

/// The `quern.run` span of one attempt of `job`, a child of the job's trace context.
pub(crate) fn run_span(job: &Job, attempt: u32) -> tracing::Span {
    let span = tracing::info_span!(
        "quern.run",
        job_id = %job.id,
        kind = %job.kind,
        queue = %job.queue,
        attempt,
        trace_id = tracing::field::Empty,
    );
    if let Some(tc) = &job.trace {
        span.record("trace_id", tc.trace_id());
        #[cfg(feature = "otel")]
        otel::set_parent(&span, tc);
    }
    span
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::model::TraceContext;

    pub(super) fn current() -> Option<TraceContext> {
        let cx = tracing::Span::current().context();
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return None;
        }
        let state = sc.trace_state().header();
        Some(TraceContext {
            traceparent: format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            ),
            tracestate: (!state.is_empty()).then_some(state),
        })
    }

    pub(super) fn set_parent(span: &tracing::Span, tc: &TraceContext) {
        let (Ok(trace), Ok(parent), Ok(flags)) = (
            TraceId::from_hex(tc.trace_id()),
            SpanId::from_hex(tc.parent_id()),
            u8::from_str_radix(&tc.traceparent[53..55], 16),
        ) else {
            return;
        };
        let state = tc
            .tracestate
            .as_deref()
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        let sc = SpanContext::new(trace, parent, TraceFlags::new(flags), true, state);
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
    }
}
