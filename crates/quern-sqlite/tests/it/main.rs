//! The quern-sqlite integration tests: one binary, one module per area.

mod conformance;
mod counts;
mod crash;
mod events;
mod maintain;
#[cfg(feature = "otel")]
mod otel;
mod smoke;
mod versions;
mod views;
mod worker;
mod worker_control;
mod worker_crash;
mod workflow;
