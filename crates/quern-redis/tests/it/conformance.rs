//! The shared conformance suite against the machine's Redis, a random prefix per case.

use std::sync::Arc;

use quern::SharedClock;

use crate::common;

async fn make(clock: SharedClock) -> Arc<dyn quern::Backend> {
    match common::connect(clock).await {
        Some(b) => {
            // Deletes the case's keys once the case and its backend are gone.
            quern::testing::hold(common::Cleanup(b.clone()));
            Arc::new(b)
        }
        None => {
            // Every test of this binary needs Redis and the suite has no skip hook for the
            // factory: end the whole run here, after the loud message `connect` printed.
            std::process::exit(0)
        }
    }
}

quern::conformance_suite!(make);
