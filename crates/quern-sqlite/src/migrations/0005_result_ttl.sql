-- A job's own result retention (NewJob::result_ttl), in milliseconds; NULL means the
-- worker's default. The worker reads it with the claimed job and sends the expiry with
-- its completion, so nothing else in the schema changes.
ALTER TABLE jobs ADD COLUMN result_ttl_ms INTEGER;
