//! Workflows end to end through the library on a real SQLite file: submit, a `Worker` that
//! prepares and runs the tasks, and the workflow monitor that applies the failure policy,
//! runs the saga and sets the final state. Real time, short steps, every wait bounded.

mod checkpoint;
mod control;
mod examples;
mod fanout;
mod harness;
mod passing;
mod saga;
