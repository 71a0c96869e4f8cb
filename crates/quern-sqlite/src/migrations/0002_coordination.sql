-- Workers and leader leases.
CREATE TABLE workers (
    id           TEXT    NOT NULL PRIMARY KEY,
    info         TEXT    NOT NULL,           -- WorkerInfo as JSON
    last_seen_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE leaders (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
