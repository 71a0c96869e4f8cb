//! End-to-end tests of the `quern` binary: each runs the built binary in its own temp dir
//! against a real store: an SQLite file, or Redis under a random key prefix (tests defined
//! with `on_every_store!` run on both).

#[macro_use]
mod support;

mod admin;
mod alerts;
mod backup;
mod bench;
mod config;
mod crash;
mod cron;
mod dashboard;
mod enqueue;
mod events;
mod executors;
mod groups;
mod http;
mod jobs;
mod limits;
mod logs;
mod lost_workers;
mod maintain;
mod metrics;
mod orders;
mod otlp;
mod promises;
mod queue_retention;
mod readme;
mod redis;
mod redis_store;
mod retention;
mod retention_bytes;
mod robustness;
mod routing;
mod serve;
mod stats;
mod timing;
mod trace;
mod worker;
mod workflow;
