//! The quern-sqlite integration tests: one binary, one module per area.

mod crash;
mod smoke;
