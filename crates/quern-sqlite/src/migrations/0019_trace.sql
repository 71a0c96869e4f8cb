-- W3C trace context stored with a job at enqueue (`NewJob::trace`): the producer's
-- `traceparent` and optional `tracestate`, continued by the worker that runs the job.
-- Both NULL for jobs enqueued without one (and for every job written before this version).
ALTER TABLE jobs ADD COLUMN traceparent TEXT;
ALTER TABLE jobs ADD COLUMN tracestate TEXT;
