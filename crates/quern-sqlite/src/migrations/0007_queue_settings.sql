-- Queue settings (quern::model::QueueSettings), applied in the claim: a global concurrency
-- cap (running jobs of the queue, counted through jobs_claim) and a GCRA rate limit whose
-- state is `rate_tat`, the theoretical arrival time in ms (0 = a full bucket).
ALTER TABLE queues ADD COLUMN concurrency INTEGER;
ALTER TABLE queues ADD COLUMN rate_count INTEGER;
ALTER TABLE queues ADD COLUMN rate_per_ms INTEGER;
ALTER TABLE queues ADD COLUMN rate_burst INTEGER;
ALTER TABLE queues ADD COLUMN rate_tat REAL NOT NULL DEFAULT 0;
