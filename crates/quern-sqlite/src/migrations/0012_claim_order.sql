-- Claim order, priority aging and weight of a queue (quern::model::QueueSettings `order`,
-- `aging`, `weight`). No index: the orders other than `priority` read the head of each
-- priority level through jobs_claim (queue_id, state, priority, run_at, id) and merge them
-- (ops/order.rs), so no extra b-tree write is added to enqueue or claim.
ALTER TABLE queues ADD COLUMN weight INTEGER;
-- 0 priority, 1 fifo, 2 lifo, 3 weighted-random.
ALTER TABLE queues ADD COLUMN claim_order INTEGER NOT NULL DEFAULT 0;
-- Aging, all NULL when off: first promotion after `aging_after_ms` waiting since due, by
-- `aging_step` levels, then every `aging_every_ms` (NULL = aging_after_ms), up to `aging_bound`.
ALTER TABLE queues ADD COLUMN aging_after_ms INTEGER;
ALTER TABLE queues ADD COLUMN aging_step INTEGER;
ALTER TABLE queues ADD COLUMN aging_every_ms INTEGER;
ALTER TABLE queues ADD COLUMN aging_bound INTEGER;
