-- 0004_replicas: the daemons sharing this store, and the scheduled jobs one of them ran
-- (SQLite's 0010_replicas). Append-only: never edit a migration once released.

-- One row per running pipeline. `owner` is its id in the ledger's claims. `liveness_key`:
-- while the process lives, its own session holds the advisory lock (1668574326,
-- liveness_key); a kill, a crash or a lost connection releases it at once, and a claim of an
-- owner whose lock is free is taken over without waiting for its lease. NULL: the process
-- holds no such lock (its claims lapse with their lease only). `role`: what the replica last
-- said of itself (`active` consumes the command queue, `standby` waits), at `seen_at` (the
-- database's clock). Rows of replicas not seen for a day are removed by the others.
CREATE TABLE replicas (
    owner text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    version text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now(),
    role text NOT NULL DEFAULT 'standby',
    liveness_key integer
);

-- A scheduled job's occurrence (`job`, `due_at`) is run by the one replica that inserts its
-- row; the others skip it. Rows older than a week are removed.
CREATE TABLE schedule_ticks (
    job text NOT NULL,
    due_at timestamptz NOT NULL,
    owner text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, due_at)
);
