pub use quern;
