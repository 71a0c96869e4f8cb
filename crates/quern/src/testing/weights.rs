//! Queue weights: claims across queues follow the configured split among queues that have
//! ready jobs.

use super::*;
use crate::backend::QueueWeight;

/// With weights 3:1 and both queues always holding ready jobs, 4,000 single-job claims split
/// 3,000 : 1,000 within ±10% (binomial spread is about ±27, so the bound is far outside
/// noise but catches "always the first queue" or an even split).
pub async fn three_to_one_weights_split_three_to_one(h: Harness) {
    const CLAIMS: usize = 4_000;
    h.enqueue_many("heavy", CLAIMS).await;
    h.enqueue_many("light", CLAIMS).await;
    let queues = vec![QueueWeight::new("heavy", 3), QueueWeight::new("light", 1)];
    let (mut heavy, mut light) = (0usize, 0usize);
    for _ in 0..CLAIMS {
        let got = h.claim_from(queues.clone(), 1).await;
        assert_eq!(got.len(), 1, "{}: both queues still have work", h.case);
        match got[0].job.queue.as_str() {
            "heavy" => heavy += 1,
            "light" => light += 1,
            other => panic!("{}: claimed from unlisted queue {other:?}", h.case),
        }
    }
    eprintln!("{}: heavy {heavy}, light {light}", h.case);
    assert!(
        (2_700..=3_300).contains(&heavy) && (900..=1_100).contains(&light),
        "{}: expected about 3000:1000, got {heavy}:{light}",
        h.case
    );
}

/// A queue with a large weight but no ready jobs does not starve the others: every claim
/// goes to the queue that has work, up to the limit.
pub async fn empty_queue_does_not_starve_the_others(h: Harness) {
    // "big" has only a job that is not due yet.
    h.enqueue(job("later").queue("big").run_at(h.now() + 60_000))
        .await;
    h.enqueue_many("small", 5).await;
    let got = h
        .claim_from(
            vec![QueueWeight::new("big", 100), QueueWeight::new("small", 1)],
            5,
        )
        .await;
    assert_eq!(got.len(), 5, "{}: all five from the small queue", h.case);
    assert!(got.iter().all(|c| c.job.queue == "small"), "{}", h.case);
}
