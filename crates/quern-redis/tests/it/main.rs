//! The quern-redis integration tests: one binary, one module per area. They need a real
//! Redis: QUERN_TEST_REDIS_URL (default redis://127.0.0.1:6379). When it is unreachable they
//! skip with a loud message, unless QUERN_REQUIRE_REDIS=1, when they fail. Every test uses
//! its own random key prefix; the fault and cluster tests start their own redis-server
//! processes on free ports.

mod budget;
mod cluster;
mod common;
mod conformance;
mod enqueue;
mod faults;
mod procs;
mod schedules;
#[path = "../../../quern-sqlite/tests/it/versions.rs"]
mod versions;
mod worker;
mod workflow;
