-- `started_at` is when the handler started, reported by the worker with the attempt's
-- outcome; the claim's own time moves to `claimed_at` (a prefetching worker may hold a
-- claimed job for a while before it starts). Rows written before this version keep their
-- `started_at` (the claim time, as it was then) and have no `claimed_at`.
ALTER TABLE jobs ADD COLUMN claimed_at INTEGER;
