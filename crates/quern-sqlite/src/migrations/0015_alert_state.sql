-- Alert rule states (`alert_state_list`, `alert_state_put`): one row per `[[alerts]]` rule,
-- written by compare-and-set on `version` so two servers never both announce an episode.
CREATE TABLE alert_state (
    name    TEXT    NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL,           -- 1 after the first write, +1 per write
    state   TEXT    NOT NULL            -- the evaluator's JSON, opaque to the store
) WITHOUT ROWID;
