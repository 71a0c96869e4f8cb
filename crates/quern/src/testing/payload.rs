//! Payload size: 10 MiB round-trips byte for byte; over the limit (default 16 MiB) a payload,
//! result or checkpoint is refused with `PayloadTooLarge` and nothing changes.

use super::*;
use crate::Error;
use crate::backend::{BatchMode, Completion, HeartbeatItem};
use crate::model::{Codec, Format, JobState, NewJob, Payload};

/// One byte over the default limit.
fn over_limit() -> Payload {
    raw_payload(Codec::DEFAULT_MAX_BYTES + 1, 99)
}

/// A 10 MiB payload comes back identical from `job_get` and from a claim.
pub async fn ten_mib_payload_round_trips(h: Harness) {
    let p = raw_payload(10 * 1024 * 1024, 1);
    let id = h.enqueue(NewJob::new("big", p.clone())).await.id;
    let j = h.get(id).await;
    assert!(
        j.payload == p,
        "{}: stored payload differs (len {} vs {})",
        h.case,
        j.payload.stored_bytes().len(),
        p.stored_bytes().len()
    );
    let c = h.claim_id("default", id).await;
    assert!(c.job.payload == p, "{}: claimed payload differs", h.case);
    let s: String = c.job.payload.decode().unwrap();
    assert_eq!(s.len(), 10 * 1024 * 1024 - 2, "{}", h.case);
}

/// An over-limit payload is refused with `PayloadTooLarge`; nothing is stored.
pub async fn over_limit_payload_is_refused(h: Harness) {
    let new = NewJob::new("huge", over_limit()).queue("huge");
    let id = new.id;
    let res = h.try_enqueue(vec![new], BatchMode::Atomic).await;
    expect_err!(h, res, Error::PayloadTooLarge { size, limit } if size > limit, "over-limit payload");
    h.assert_absent(&[id], "refused").await;
    let queues = h.backend.queue_list().await.unwrap();
    assert!(
        queues.iter().all(|q| q.counts.total() == 0),
        "{}: nothing counted: {queues:?}",
        h.case
    );
}

/// An over-limit result is refused; the job stays running under its lease and can still
/// complete normally.
pub async fn over_limit_result_is_refused(h: Harness) {
    let c = h.enqueue_and_claim(job("x")).await;
    let before = h.get(c.job.id).await;
    let res = h
        .try_complete(Completion {
            token: c.token.clone(),
            result: Some(over_limit()),
            result_ttl: None,
            started_at: None,
        })
        .await;
    expect_err!(h, res, Error::PayloadTooLarge { .. }, "over-limit result");
    assert_eq!(h.get(c.job.id).await, before, "{}: job unchanged", h.case);
    h.complete(&c.token).await;
    h.assert_state(c.job.id, JobState::Succeeded, "completed after")
        .await;
}

/// An over-limit checkpoint is refused and the previous checkpoint stays.
pub async fn over_limit_checkpoint_is_refused(h: Harness) {
    let c = h.enqueue_and_claim(job("x")).await;
    let small = json_payload(serde_json::json!({ "at": 1 }));
    h.try_heartbeat(HeartbeatItem {
        token: c.token.clone(),
        progress: None,
        checkpoint: Some(small.clone()),
    })
    .await
    .unwrap();
    let before = h.get(c.job.id).await;
    let res = h
        .try_heartbeat(HeartbeatItem {
            token: c.token.clone(),
            progress: None,
            checkpoint: Some(over_limit()),
        })
        .await;
    expect_err!(
        h,
        res,
        Error::PayloadTooLarge { .. },
        "over-limit checkpoint"
    );
    let after = h.get(c.job.id).await;
    assert_eq!(after, before, "{}: job unchanged", h.case);
    assert_eq!(after.checkpoint, Some(small), "{}", h.case);
}

/// A MessagePack payload (and a compressed one) keeps its format and bytes.
pub async fn msgpack_payload_round_trips(h: Harness) {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Input {
        user: u64,
        tags: Vec<String>,
    }
    let v = Input {
        user: 7,
        tags: vec!["a".repeat(100_000)],
    };
    let mp = Payload::encode(
        &v,
        &Codec {
            format: Format::MsgPack,
            ..Codec::default()
        },
    )
    .unwrap();
    assert!(mp.is_compressed(), "setup: big enough to compress");
    let id = h.enqueue(NewJob::new("mp", mp.clone())).await.id;
    let got = h.claim_id("default", id).await.job.payload;
    assert_eq!(got, mp, "{}: same bytes and tag", h.case);
    assert_eq!(got.format(), Format::MsgPack, "{}", h.case);
    assert_eq!(got.decode::<Input>().unwrap(), v, "{}", h.case);
}
