//! Test helpers.
pub(crate) mod mem;
