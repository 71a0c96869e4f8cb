//! The quern-sqlite integration tests: one binary, one module per area.

mod conformance;
mod crash;
mod smoke;
mod worker;
mod worker_control;
mod worker_crash;
