-- A queue's own retention and default retry policy (quern::model::QueueSettings `retention`
-- and `retry`), as JSON (NULL when unset): read by `queue_get` (the pruner, the worker's
-- retry terms), never by the claim.
ALTER TABLE queues ADD COLUMN retention TEXT;
ALTER TABLE queues ADD COLUMN retry TEXT;
