//! OTLP export of the spans (`--otlp-endpoint URL`, or `OTEL_EXPORTER_OTLP_ENDPOINT`), with
//! the `otlp` cargo feature (off by default).
//!
//! The exporter is small and our own: it encodes each batch as an OTLP
//! `ExportTraceServiceRequest` in protobuf (the few messages it needs, by hand, from the
//! field numbers of `opentelemetry/proto/trace/v1/trace.proto`) and POSTs it over HTTP/1.1 to
//! `<endpoint>/v1/traces` (OTLP/HTTP, `application/x-protobuf`). So the feature adds only
//! the OpenTelemetry SDK and its tracing bridge to a build, no gRPC or HTTP client stack. It
//! speaks plain `http://` (a local collector or agent, the usual set-up); `https://` is
//! refused with a clear error. Spans go out in batches from the SDK's own thread, so an
//! export never blocks a job; what is still queued is flushed when the command ends.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

/// How long one export may take (connect, write, answer).
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where the spans go: host, port and path of an `http://` URL.
#[derive(Clone, Debug)]
pub struct Endpoint {
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    /// `http://host[:port][/path]`; the signal path `/v1/traces` is appended unless the URL
    /// already ends with it (as the OTLP exporter settings say of the base endpoint).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = match url.strip_prefix("http://") {
            Some(r) => r,
            None if url.starts_with("https://") => {
                return Err(format!(
                    "--otlp-endpoint {url:?}: this build exports over plain http:// only (point it at a local collector)"
                ));
            }
            None => {
                return Err(format!(
                    "--otlp-endpoint {url:?} is not an http:// URL (example: http://127.0.0.1:4318)"
                ));
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("--otlp-endpoint {url:?}: bad port {p:?}"))?,
            ),
            None => (authority, 4318),
        };
        if host.is_empty() {
            return Err(format!("--otlp-endpoint {url:?}: no host"));
        }
        let path = path.trim_end_matches('/');
        let path = if path.ends_with("/v1/traces") {
            path.to_string()
        } else {
            format!("{path}/v1/traces")
        };
        Ok(Endpoint {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            path,
        })
    }

    /// One POST; `Ok` on a 2xx answer.
    fn post(&self, body: &[u8]) -> Result<(), String> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or_else(|| format!("{}: no address", self.host))?;
        let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.path,
            self.host,
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        s.write_all(body).map_err(|e| e.to_string())?;
        let mut answer = [0u8; 32];
        let n = s.read(&mut answer).map_err(|e| e.to_string())?;
        let line = String::from_utf8_lossy(&answer[..n]);
        match line.split(' ').nth(1) {
            Some(code) if code.starts_with('2') => Ok(()),
            _ => Err(format!(
                "the collector answered {:?}",
                line.lines().next().unwrap_or("")
            )),
        }
    }
}

/// The span exporter: OTLP protobuf over HTTP/1.1.
#[derive(Debug)]
struct Exporter {
    endpoint: Endpoint,
    resource: Vec<KeyValue>,
}

impl SpanExporter for Exporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        // Runs on the batch processor's own thread: blocking I/O is fine there.
        let body = encode_request(&self.resource, &batch);
        let r = self
            .endpoint
            .post(&body)
            .map_err(|e| OTelSdkError::InternalFailure(format!("OTLP export: {e}")));
        std::future::ready(r)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
    }
}

/// Flushes and stops the exporter when dropped (at the end of the command).
pub struct Guard(SdkTracerProvider);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.force_flush();
        let _ = self.0.shutdown();
    }
}

/// The tracing layer that sends spans to `endpoint`, and the guard that flushes them.
pub fn layer<S>(endpoint: &str) -> Result<(impl tracing_subscriber::Layer<S>, Guard), String>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let endpoint = Endpoint::parse(endpoint)?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "quern".into());
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_batch_exporter(Exporter {
            endpoint,
            resource: Vec::new(),
        })
        .build();
    let tracer = provider.tracer("quern");
    Ok((
        tracing_opentelemetry::layer().with_tracer(tracer),
        Guard(provider),
    ))
}

// --- protobuf ------------------------------------------------------------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn message(out: &mut Vec<u8>, field: u32, build: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    build(&mut inner);
    bytes_field(out, field, &inner);
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        tag(out, field, 0);
        varint(out, v);
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `KeyValue { key = 1; AnyValue value = 2 }`, `AnyValue { string 1, bool 2, int 3,
/// double 4 }` (arrays are sent as their text).
fn key_value(out: &mut Vec<u8>, field: u32, kv: &KeyValue) {
    message(out, field, |m| {
        bytes_field(m, 1, kv.key.as_str().as_bytes());
        message(m, 2, |v| match &kv.value {
            Value::Bool(b) => {
                tag(v, 2, 0);
                varint(v, u64::from(*b));
            }
            Value::I64(i) => {
                tag(v, 3, 0);
                varint(v, *i as u64);
            }
            Value::F64(f) => {
                tag(v, 4, 1);
                v.extend_from_slice(&f.to_le_bytes());
            }
            other => {
                let s: Cow<'_, str> = match other {
                    Value::String(s) => Cow::Borrowed(s.as_str()),
                    o => Cow::Owned(o.to_string()),
                };
                bytes_field(v, 1, s.as_bytes());
            }
        });
    });
}

/// `ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1 }` with one
/// resource and one scope per instrumentation scope name.
pub fn encode_request(resource: &[KeyValue], spans: &[SpanData]) -> Vec<u8> {
    let mut out = Vec::new();
    message(&mut out, 1, |rs| {
        // ResourceSpans.resource = 1: Resource { repeated KeyValue attributes = 1 }.
        message(rs, 1, |r| {
            for kv in resource {
                key_value(r, 1, kv);
            }
        });
        // ResourceSpans.scope_spans = 2, one per scope.
        let mut scopes: Vec<&str> = spans
            .iter()
            .map(|s| s.instrumentation_scope.name())
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        for scope in scopes {
            message(rs, 2, |ss| {
                // ScopeSpans.scope = 1: InstrumentationScope { name = 1 }.
                message(ss, 1, |sc| bytes_field(sc, 1, scope.as_bytes()));
                for s in spans
                    .iter()
                    .filter(|s| s.instrumentation_scope.name() == scope)
                {
                    message(ss, 2, |m| span(m, s));
                }
            });
        }
    });
    out
}

/// `Span`: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6,
/// start 7, end 8, attributes 9, events 11, status 15.
fn span(m: &mut Vec<u8>, s: &SpanData) {
    let sc = &s.span_context;
    bytes_field(m, 1, &sc.trace_id().to_bytes());
    bytes_field(m, 2, &sc.span_id().to_bytes());
    let state = sc.trace_state().header();
    if !state.is_empty() {
        bytes_field(m, 3, state.as_bytes());
    }
    if s.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        bytes_field(m, 4, &s.parent_span_id.to_bytes());
    }
    bytes_field(m, 5, s.name.as_bytes());
    let kind = match s.span_kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    };
    uint(m, 6, kind);
    fixed64(m, 7, nanos(s.start_time));
    fixed64(m, 8, nanos(s.end_time));
    for kv in &s.attributes {
        key_value(m, 9, kv);
    }
    for e in s.events.iter() {
        // Event { time 1 (fixed64), name 2, attributes 3 }.
        message(m, 11, |ev| {
            fixed64(ev, 1, nanos(e.timestamp));
            bytes_field(ev, 2, e.name.as_bytes());
            for kv in &e.attributes {
                key_value(ev, 3, kv);
            }
        });
    }
    // Status { message 2, code 3 (0 unset, 1 ok, 2 error) }.
    match &s.status {
        Status::Unset => {}
        Status::Ok => message(m, 15, |st| uint(st, 3, 1)),
        Status::Error { description } => message(m, 15, |st| {
            bytes_field(st, 2, description.as_bytes());
            uint(st, 3, 2);
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:4318").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 4318, "/v1/traces")
        );
        let e = Endpoint::parse("http://collector/v1/traces").unwrap();
        assert_eq!((e.port, e.path.as_str()), (4318, "/v1/traces"));
        let e = Endpoint::parse("http://h:9/otlp/").unwrap();
        assert_eq!(e.path, "/otlp/v1/traces");
        assert!(
            Endpoint::parse("https://h")
                .unwrap_err()
                .contains("plain http://")
        );
        assert!(Endpoint::parse("h:4318").is_err());
        assert!(Endpoint::parse("http://h:x").is_err());
    }

    #[test]
    fn varints_are_little_endian_base_128() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
    }
}
