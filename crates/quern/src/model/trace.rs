//! W3C trace context (<https://www.w3.org/TR/trace-context/>) stored with a job, so a trace
//! crosses from the producer that enqueued it to the worker that runs it.

use serde::{Deserialize, Serialize};

use crate::Error;

/// A job's trace context: the producer's `traceparent` and optional `tracestate`, stored at
/// enqueue and handed to whoever runs the job (the Rust worker makes its `quern.run` span a
/// child of it; the HTTP worker protocol returns it with the leased job).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TraceContext {
    /// `version-traceid-parentid-flags`, e.g. `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
    pub traceparent: String,
    /// Vendor entries (`key=value,…`), passed on as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// Longest `tracestate` kept, in bytes (the W3C's propagation minimum).
pub const MAX_TRACESTATE_BYTES: usize = 512;

impl TraceContext {
    /// A checked trace context: a malformed `traceparent` or `tracestate` is
    /// [`Error::InvalidArgument`] saying what is wrong. An empty `tracestate` counts as none.
    pub fn new(traceparent: &str, tracestate: Option<&str>) -> Result<Self, Error> {
        let tc = TraceContext {
            traceparent: traceparent.trim().to_string(),
            tracestate: tracestate
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        };
        tc.problem()
            .map_or(Ok(tc), |m| Err(Error::InvalidArgument(m)))
    }

    /// What is wrong with this context, if anything.
    pub fn problem(&self) -> Option<String> {
        traceparent_problem(&self.traceparent)
            .or_else(|| self.tracestate.as_deref().and_then(tracestate_problem))
    }

    /// The 32-hex-digit trace id.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The 16-hex-digit id of the producer's span (the parent of the worker's).
    pub fn parent_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// Whether the producer sampled the trace (flag bit 0).
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.traceparent[53..55], 16).is_ok_and(|f| f & 1 == 1)
    }
}

fn lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What is wrong with a `traceparent` header value, if anything.
pub fn traceparent_problem(tp: &str) -> Option<String> {
    let bad = |why: &str| Some(format!("traceparent {tp:?} is malformed: {why}"));
    let b = tp.as_bytes();
    if b.len() < 55 || !tp.is_ascii() {
        return bad("expected version-traceid-parentid-flags, like 00-<32 hex>-<16 hex>-01");
    }
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return bad(
            "expected '-' after the 2-digit version, 32-digit trace id and 16-digit parent id",
        );
    }
    let (version, trace, parent, flags) = (&tp[..2], &tp[3..35], &tp[36..52], &tp[53..55]);
    if ![version, trace, parent, flags].iter().all(|p| lower_hex(p)) {
        return bad("fields must be lowercase hex digits");
    }
    if version == "ff" {
        return bad("version ff is invalid");
    }
    if version == "00" && b.len() != 55 {
        return bad("version 00 has exactly 55 characters");
    }
    if b.len() > 55 && b[55] != b'-' {
        return bad("expected '-' after the flags");
    }
    if trace.bytes().all(|c| c == b'0') {
        return bad("the trace id is all zeros");
    }
    if parent.bytes().all(|c| c == b'0') {
        return bad("the parent id is all zeros");
    }
    None
}

/// What is wrong with a `tracestate` header value, if anything: at most 32 `key=value`
/// members and [`MAX_TRACESTATE_BYTES`], keys of `a-z 0-9 _ - * / @`, values of printable
/// ASCII without `,` and `=`.
pub fn tracestate_problem(ts: &str) -> Option<String> {
    let bad = |why: String| Some(format!("tracestate is malformed: {why}"));
    if ts.len() > MAX_TRACESTATE_BYTES {
        return bad(format!("longer than {MAX_TRACESTATE_BYTES} bytes"));
    }
    let members: Vec<&str> = ts
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if members.len() > 32 {
        return bad("more than 32 members".into());
    }
    for m in members {
        let Some((k, v)) = m.split_once('=') else {
            return bad(format!("member {m:?} is not key=value"));
        };
        let key_ok = !k.is_empty()
            && k.len() <= 256
            && k.bytes()
                .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@'));
        if !key_ok {
            return bad(format!("key {k:?} must be 1-256 of a-z 0-9 _ - * / @"));
        }
        let value_ok = !v.is_empty()
            && v.len() <= 256
            && v.bytes()
                .all(|c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=');
        if !value_ok {
            return bad(format!(
                "value {v:?} must be 1-256 printable characters without ',' and '='"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn valid_contexts_parse_and_expose_their_parts() {
        let tc = TraceContext::new(TP, Some("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE")).unwrap();
        assert_eq!(tc.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tc.parent_id(), "00f067aa0ba902b7");
        assert!(tc.sampled());
        let unsampled = TraceContext::new(&TP.replace("-01", "-00"), Some("  ")).unwrap();
        assert!(!unsampled.sampled());
        assert_eq!(unsampled.tracestate, None);
        // A future version may carry more fields after a '-'.
        TraceContext::new(&format!("{}-extra", TP.replacen("00", "01", 1)), None).unwrap();
    }

    #[test]
    fn malformed_contexts_are_refused_with_the_reason() {
        let cases = [
            ("", "expected version-traceid"),
            (&TP[..54], "expected version-traceid"),
            (&TP.to_uppercase(), "lowercase hex"),
            (&TP.replacen("00", "ff", 1), "version ff"),
            (&format!("{TP}-x"), "exactly 55"),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "trace id is all zeros",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "parent id is all zeros",
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "expected '-'",
            ),
        ];
        for (tp, why) in cases {
            match TraceContext::new(tp, None) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains(why), "{tp:?}: {m}"),
                other => panic!("{tp:?}: expected an error, got {other:?}"),
            }
        }
        for (ts, why) in [
            ("novalue", "not key=value"),
            ("Upper=1", "key"),
            ("k=a,b=", "value"),
            (&"k=v,".repeat(33), "more than 32"),
            (&format!("k={}", "v".repeat(600)), "longer than 512"),
        ] {
            match TraceContext::new(TP, Some(ts)) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains(why), "{ts:?}: {m}"),
                other => panic!("{ts:?}: expected an error, got {other:?}"),
            }
        }
    }
}
