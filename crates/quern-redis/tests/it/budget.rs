//! The memory budget (`max_memory`): at or over it, enqueue answers `StoreFull` and stores
//! nothing; under it, enqueue works and `store_budget` reports the use. Runs on the shared
//! test Redis with a random prefix and budgets set around its current `used_memory`.

use quern::backend::{BatchMode, EnqueueParams, ListParams};
use quern::{Backend, Error, ManualClock, NewJob};
use quern_redis::RedisBackend;

use crate::common;

async fn open(max_memory: &str) -> Option<RedisBackend> {
    let clock = ManualClock::new(1_795_000_000_000);
    common::connect(clock.clone()).await?;
    let url = format!(
        "{}&max_memory={max_memory}",
        common::with_prefix(&common::redis_url(), &common::random_prefix())
    );
    Some(RedisBackend::connect(&url, clock).await.expect("connect"))
}

#[tokio::test]
async fn over_the_budget_enqueue_is_refused_with_store_full_and_nothing_is_stored() {
    let Some(full) = open("1").await else {
        return;
    };
    let budget = full.store_budget().await.unwrap().expect("a budget is set");
    assert!(budget.full && budget.budget_bytes == 1, "{budget:?}");
    assert!(budget.used_bytes > 0, "{budget:?}");
    let job = NewJob::json("k", serde_json::json!(1)).unwrap();
    let r = full
        .job_enqueue(EnqueueParams {
            jobs: vec![job],
            mode: BatchMode::Atomic,
        })
        .await;
    match r {
        Err(Error::StoreFull { used, budget }) => {
            assert_eq!(budget, 1);
            assert!(used > 0);
        }
        other => panic!("expected StoreFull, got {other:?}"),
    }
    let e = Error::StoreFull {
        used: 2 << 20,
        budget: 1 << 20,
    };
    assert_eq!(e.code(), "store_full");
    assert!(
        e.to_string()
            .contains("2.0 MiB used of a budget of 1.0 MiB"),
        "{e}"
    );
    let page = full
        .job_list(ListParams {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.jobs.is_empty(), "nothing stored: {:?}", page.jobs);
    assert!(
        full.queue_list().await.unwrap().is_empty(),
        "no queue created"
    );

    // Far above the use: enqueue works, and the budget shows the use.
    let Some(roomy) = open("1TiB").await else {
        return;
    };
    let b = roomy.store_budget().await.unwrap().unwrap();
    assert!(
        !b.full && b.budget_bytes == 1 << 40 && b.used_bytes > 0,
        "{b:?}"
    );
    let job = NewJob::json("k", serde_json::json!(1)).unwrap();
    roomy
        .job_enqueue(EnqueueParams {
            jobs: vec![job],
            mode: BatchMode::Atomic,
        })
        .await
        .unwrap();
    // Without a budget there is none to report.
    let plain = common::connect(ManualClock::new(0)).await.unwrap();
    assert_eq!(plain.store_budget().await.unwrap(), None);
    roomy.destroy_all_keys().await.unwrap();
}

#[tokio::test]
async fn a_bad_budget_in_the_url_is_refused() {
    for bad in ["lots", "0"] {
        let url = format!("redis://127.0.0.1:1/?max_memory={bad}");
        let r = RedisBackend::connect(&url, ManualClock::new(0)).await;
        assert!(
            matches!(&r, Err(Error::InvalidArgument(m)) if m.contains("max_memory")),
            "{bad}: {r:?}"
        );
    }
}
