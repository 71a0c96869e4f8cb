//! One archive line ⇄ one record. Jobs carry their payload, result and checkpoint in their
//! stored form (tag and bytes, base64), so they come back byte for byte; everything else is
//! the library's own JSON of the record.

use quern::backend::{QueueImport, ScheduleImport};
use quern::model::WorkflowRecord;
use quern::{Job, Payload};
use serde_json::{Map, Value};

use super::b64;

/// One line of an archive between the header and the manifest.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Queue(Box<QueueImport>),
    Job(Box<Job>),
    Workflow(Box<WorkflowRecord>),
    Schedule(Box<ScheduleImport>),
}

/// The fields of a job that hold payloads.
const PAYLOAD_FIELDS: [&str; 3] = ["payload", "result", "checkpoint"];

impl Record {
    /// The section the record belongs to (an index into [`super::SECTIONS`]).
    pub fn section(&self) -> usize {
        match self {
            Record::Queue(_) => 0,
            Record::Job(_) => 1,
            Record::Workflow(_) => 2,
            Record::Schedule(_) => 3,
        }
    }

    /// The line (without its newline).
    pub fn to_line(&self) -> Result<String, String> {
        let err = |e: serde_json::Error| e.to_string();
        let (key, value) = match self {
            Record::Queue(q) => ("queue", serde_json::to_value(q).map_err(err)?),
            Record::Job(j) => ("job", job_value(j)?),
            Record::Workflow(w) => ("workflow", serde_json::to_value(w).map_err(err)?),
            Record::Schedule(s) => ("schedule", serde_json::to_value(s).map_err(err)?),
        };
        let mut m = Map::new();
        m.insert(key.into(), value);
        serde_json::to_string(&Value::Object(m)).map_err(err)
    }

    /// Reads a line back. `Ok(None)` for the manifest line (the caller reads it).
    pub fn from_line(line: &str) -> Result<Option<Record>, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(m) = v else {
            return Err("not a JSON object".into());
        };
        if m.len() != 1 {
            return Err("a record line has exactly one key".into());
        }
        let (key, value) = m.into_iter().next().expect("one key");
        let err = |e: serde_json::Error| format!("bad {key}: {e}");
        Ok(Some(match key.as_str() {
            "queue" => Record::Queue(serde_json::from_value(value).map_err(err)?),
            "job" => Record::Job(Box::new(job_from_value(value)?)),
            "workflow" => Record::Workflow(Box::new(serde_json::from_value(value).map_err(err)?)),
            "schedule" => Record::Schedule(Box::new(serde_json::from_value(value).map_err(err)?)),
            "manifest" => return Ok(None),
            other => return Err(format!("unknown record type {other:?}")),
        }))
    }
}

fn stored(p: &Payload) -> Value {
    serde_json::json!({ "tag": p.tag(), "data": b64::encode(p.stored_bytes()) })
}

fn from_stored(v: &Value) -> Result<Payload, String> {
    let tag = v
        .get("tag")
        .and_then(Value::as_u64)
        .and_then(|t| u8::try_from(t).ok())
        .ok_or("a payload needs a tag 0-255")?;
    let data = v
        .get("data")
        .and_then(Value::as_str)
        .ok_or("a payload needs base64 data")?;
    Payload::from_stored(tag, b64::decode(data)?).map_err(|e| e.to_string())
}

fn job_value(j: &Job) -> Result<Value, String> {
    let mut v = serde_json::to_value(j).map_err(|e| e.to_string())?;
    let m = v.as_object_mut().ok_or("a job is an object")?;
    m.insert("payload".into(), stored(&j.payload));
    m.insert(
        "result".into(),
        j.result.as_ref().map_or(Value::Null, stored),
    );
    m.insert(
        "checkpoint".into(),
        j.checkpoint.as_ref().map_or(Value::Null, stored),
    );
    Ok(v)
}

fn job_from_value(mut v: Value) -> Result<Job, String> {
    let m = v.as_object_mut().ok_or("a job is an object")?;
    let mut payloads: Vec<Option<Payload>> = Vec::with_capacity(3);
    for f in PAYLOAD_FIELDS {
        let p = match m.get(f) {
            None | Some(Value::Null) => None,
            Some(x) => Some(from_stored(x).map_err(|e| format!("job {f}: {e}"))?),
        };
        payloads.push(p);
        // Placeholders the library's JSON of a job reads (they are replaced below).
        m.insert(f.into(), Value::Null);
    }
    let mut job: Job = serde_json::from_value(v).map_err(|e| format!("bad job: {e}"))?;
    let mut it = payloads.into_iter();
    job.payload = it.next().flatten().ok_or("a job needs a payload")?;
    job.result = it.next().flatten();
    job.checkpoint = it.next().flatten();
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quern::NewJob;
    use quern::model::{Codec, Format, JobState};

    #[test]
    fn a_msgpack_compressed_job_comes_back_byte_for_byte() {
        let codec = Codec {
            format: Format::MsgPack,
            compress_above: 16,
            ..Codec::default()
        };
        let p = Payload::encode(&serde_json::json!({"text": "x".repeat(500)}), &codec).unwrap();
        let mut j = Job::from_new(NewJob::new("k", p.clone()), JobState::Succeeded, 5);
        j.result = Some(p.clone());
        let line = Record::Job(Box::new(j.clone())).to_line().unwrap();
        match Record::from_line(&line).unwrap() {
            Some(Record::Job(back)) => {
                assert_eq!(*back, j);
                assert_eq!(back.payload.tag(), p.tag());
                assert_eq!(back.payload.stored_bytes(), p.stored_bytes());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_lines_are_refused_with_a_reason() {
        assert!(Record::from_line("{").unwrap_err().contains("JSON"));
        assert!(
            Record::from_line(r#"{"nope":1}"#)
                .unwrap_err()
                .contains("unknown")
        );
        assert!(Record::from_line(r#"{"job":{"id":1}}"#).is_err());
        assert_eq!(Record::from_line(r#"{"manifest":{}}"#).unwrap(), None);
    }
}
