//! The backend conformance suite (behind the `testing` feature). Every backend runs it from
//! its `tests/` with [`conformance_suite!`](crate::conformance_suite), one `#[tokio::test]`
//! per case.
