//! The quern-sqlite integration tests: one binary, one module per area.

mod conformance;
mod crash;
mod maintain;
mod smoke;
mod views;
mod worker;
mod worker_control;
mod worker_crash;
mod workflow;
