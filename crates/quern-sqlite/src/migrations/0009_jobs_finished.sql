-- Finished jobs by time, for `job_finished` (`quern stats --since`): a job has `finished_at`
-- exactly while it is in a terminal state, so this partial index holds the finished jobs and
-- a window `finished_at >= ?` reads only the jobs that finished in it. Costs each completion,
-- failure to dead, cancel and skip one b-tree insert, and each prune one delete (measured with
-- `quern bench`: see docs/operations.md).
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
