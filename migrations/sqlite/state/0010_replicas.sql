-- 0010_replicas: the daemons sharing this store, and the scheduled jobs one of them ran
-- (PostgreSQL's 0004_replicas). Append-only: never edit a migration once released.

-- One row per running pipeline; times are Unix milliseconds. `owner` is its id in the
-- ledger's claims. `liveness_key` is always NULL on SQLite (there is no session lock that a
-- killed process releases): a claim lapses with its lease. `role`: what the replica last said
-- of itself (`active` consumes the command queue, `standby` waits), at `seen_at`. Rows of
-- replicas not seen for a day are removed by the others.
CREATE TABLE replicas (
    owner TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    version TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    role TEXT NOT NULL DEFAULT 'standby',
    liveness_key INTEGER
);

-- A scheduled job's occurrence (`job`, `due_at` in Unix milliseconds) is run by the one
-- replica that inserts its row; the others skip it. Rows older than a week are removed.
CREATE TABLE schedule_ticks (
    job TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    owner TEXT NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (job, due_at)
);
