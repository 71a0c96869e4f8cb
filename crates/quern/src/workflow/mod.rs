//! Workflows: DAGs of tasks described in a YAML or JSON file.

pub mod condition;
pub mod dag;
pub mod render;
mod source;
pub mod template;

pub use source::{Pos, SourceFormat};
