//! Reading replies: the shapes scripts and commands answer with, turned into Rust values or
//! a `Storage` error (a reply of the wrong shape means the scripts and this crate disagree).

use quern::{Error, JobState, Result};
use redis::Value;

use crate::codec::{Fields, fields_with_capacity};

pub(crate) fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        other => Err(Error::Storage(format!("expected an array, got {other:?}"))),
    }
}

pub(crate) fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::Storage("expected a number".into())),
        other => Err(Error::Storage(format!("expected a number, got {other:?}"))),
    }
}

pub(crate) fn string(v: Value) -> Result<String> {
    bulk_string(v)
}

/// A job state a script answered with (a refusal names the state it found).
pub(crate) fn state(v: &Value) -> Result<JobState> {
    JobState::from_i64(int(v)?).ok_or_else(|| Error::Storage("bad state".into()))
}

/// Converts the flat `[field, value, field, value…]` reply of HGETALL inside a script.
pub(crate) fn fields_from_value(v: Value) -> Result<Fields> {
    let items = match v {
        Value::Array(items) => items,
        Value::Map(pairs) => {
            let mut out = fields_with_capacity(pairs.len());
            for (k, v) in pairs {
                out.insert(bulk_string(k)?, bulk_bytes(v)?);
            }
            return Ok(out);
        }
        Value::Nil => Vec::new(),
        other => return Err(Error::Storage(format!("unexpected reply {other:?}"))),
    };
    let mut out = fields_with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.insert(bulk_string(k)?, bulk_bytes(v)?);
    }
    Ok(out)
}

/// The bytes of a bulk-string (or simple-string / integer) reply.
pub(crate) fn bulk_bytes(v: Value) -> Result<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        other => Err(Error::Storage(format!("unexpected reply {other:?}"))),
    }
}

/// The text of a bulk-string reply.
pub(crate) fn bulk_string(v: Value) -> Result<String> {
    String::from_utf8(bulk_bytes(v)?).map_err(|_| Error::Storage("non-UTF-8 reply".into()))
}
