-- The insert side of the group bookkeeping moves from triggers to the two paths that insert
-- job rows (ops/enqueue.rs and ops/import.rs, through ops/groups.rs `group_for_insert` and
-- `count_inserted`). SQLite runs a row trigger's program for every inserted row even when
-- its WHEN clause is false, so `jobs_group_insert` and `jobs_group_default` made every
-- enqueue pay for groups: batch enqueue ran at about half its speed without them (measured,
-- docs/benchmarks.md "Groups: the insert triggers"). The update and delete triggers stay:
-- every path that changes a job's state still keeps the ready counts.
DROP TRIGGER IF EXISTS jobs_group_insert;
DROP TRIGGER IF EXISTS jobs_group_default;
