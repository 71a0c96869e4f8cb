//! The library-level workflow tests of quern-sqlite (`quern-sqlite/tests/it/workflow/`), run
//! unchanged on Redis: submit, a real `Worker` preparing and running the tasks, the workflow
//! monitor, the example workflows. Shared by path, so the two backends run the same tests;
//! only `checkpoint.rs` stays SQLite-only (it kills a child process holding a SQLite file).

#[path = "../../../../quern-sqlite/tests/it/workflow/control.rs"]
mod control;
#[path = "../../../../quern-sqlite/tests/it/workflow/examples.rs"]
mod examples;
#[path = "../../../../quern-sqlite/tests/it/workflow/fanout.rs"]
mod fanout;
#[path = "../../../../quern-sqlite/tests/it/workflow/harness.rs"]
mod harness;
#[path = "../../../../quern-sqlite/tests/it/workflow/passing.rs"]
mod passing;
#[path = "../../../../quern-sqlite/tests/it/workflow/saga.rs"]
mod saga;
