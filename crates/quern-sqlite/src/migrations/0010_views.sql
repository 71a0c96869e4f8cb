-- Read-only views for people who query the database file directly (`sqlite3 quern.db`):
-- see docs/operations.md. Quern itself never reads them. Times are ms since the Unix epoch,
-- with an RFC 3339 text column beside the ones people read most. States:
-- 0 scheduled, 1 queued, 2 blocked, 3 running, 4 succeeded, 5 dead, 6 cancelled, 7 skipped.

-- Jobs per state of each queue: one count per state through the jobs_claim index.
CREATE VIEW quern_queue_status AS
SELECT
    q.name AS queue,
    q.paused AS paused,
    (SELECT count(*) FROM jobs j WHERE j.queue_id = q.id AND j.state = 0) AS scheduled,
    (SELECT count(*) FROM jobs j WHERE j.queue_id = q.id AND j.state = 1) AS queued,
    (SELECT count(*) FROM jobs j WHERE j.queue_id = q.id AND j.state = 2) AS blocked,
    (SELECT count(*) FROM jobs j WHERE j.queue_id = q.id AND j.state = 3) AS running,
    (SELECT count(*) FROM jobs j WHERE j.queue_id = q.id AND j.state = 4) AS succeeded,
    (SELECT count(*) FROM jobs j WHERE j.queue_id = q.id AND j.state = 5) AS dead,
    (SELECT count(*) FROM jobs j WHERE j.queue_id = q.id AND j.state = 6) AS cancelled,
    (SELECT count(*) FROM jobs j WHERE j.queue_id = q.id AND j.state = 7) AS skipped,
    (SELECT min(j.run_at) FROM jobs j WHERE j.queue_id = q.id AND j.state = 1) AS oldest_queued_run_at
FROM queues q;

-- Per queue and kind, over the finished jobs still kept: outcomes, retries, average and
-- longest wait (started_at - run_at) and run time (finished_at - started_at). Reads every
-- finished job (through jobs_finished); `quern stats` has percentiles over a window.
CREATE VIEW quern_kind_performance AS
SELECT
    q.name AS queue,
    j.kind AS kind,
    count(*) AS finished,
    sum(j.state = 4) AS succeeded,
    sum(j.state = 5) AS dead,
    sum(j.state = 6) AS cancelled,
    sum(j.state = 7) AS skipped,
    sum(max(j.attempt - 1, 0)) AS retries,
    avg(j.started_at - j.run_at) AS avg_wait_ms,
    max(j.started_at - j.run_at) AS max_wait_ms,
    avg(j.finished_at - j.started_at) AS avg_run_ms,
    max(j.finished_at - j.started_at) AS max_run_ms,
    max(j.finished_at) AS last_finished_at
FROM jobs j INDEXED BY jobs_finished JOIN queues q ON q.id = j.queue_id
WHERE j.finished_at IS NOT NULL
GROUP BY q.name, j.kind;

-- Registered workers, with `lost` as `quern workers list` decides it (not seen for three of
-- its heartbeat intervals, by this machine's clock).
CREATE VIEW quern_worker_status AS
SELECT
    w.id AS worker,
    json_extract(w.info, '$.hostname') AS hostname,
    json_extract(w.info, '$.pid') AS pid,
    json_extract(w.info, '$.queues') AS queues,
    json_extract(w.info, '$.concurrency') AS concurrency,
    json_extract(w.info, '$.running') AS running,
    json_extract(w.info, '$.started_at') AS started_at,
    w.last_seen_at AS last_seen_at,
    strftime('%Y-%m-%dT%H:%M:%fZ', w.last_seen_at / 1000.0, 'unixepoch') AS last_seen,
    CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - w.last_seen_at
        > 3 * coalesce(json_extract(w.info, '$.heartbeat_interval_ms'), 10000) AS lost
FROM workers w;

-- Jobs that failed for good (the dead-letter queue), newest first, with their last error.
CREATE VIEW quern_recent_failures AS
SELECT
    lower(substr(hex(j.id), 1, 8) || '-' || substr(hex(j.id), 9, 4) || '-' ||
          substr(hex(j.id), 13, 4) || '-' || substr(hex(j.id), 17, 4) || '-' ||
          substr(hex(j.id), 21)) AS id,
    q.name AS queue,
    j.kind AS kind,
    j.attempt AS attempt,
    j.max_attempts AS max_attempts,
    j.finished_at AS finished_at,
    strftime('%Y-%m-%dT%H:%M:%fZ', j.finished_at / 1000.0, 'unixepoch') AS finished,
    json_extract(j.errors, '$[#-1].message') AS last_error
FROM jobs j INDEXED BY jobs_finished JOIN queues q ON q.id = j.queue_id
WHERE j.finished_at IS NOT NULL AND j.state = 5
ORDER BY j.finished_at DESC;
