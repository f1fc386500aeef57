-- 0004_bulk: batches of contact.upsert commands coalesced into one bulk JSON import.
-- Append-only: never edit a migration once released; add a new numbered file instead.

-- One import. status: 'importing' (stored, request not yet answered), 'polling' (the activity
-- id is known; a restart resumes polling it), 'done' (results stored in the ledger), 'failed'
-- (the activity or the request failed; its commands were retried), 'abandoned' (the answer
-- to the import request was lost or the batch outlived its bound; its commands import again).
CREATE TABLE bulk_batches (
    id          TEXT PRIMARY KEY,
    account     TEXT NOT NULL,
    list_ids    TEXT NOT NULL,          -- JSON array, sorted
    status      TEXT NOT NULL,
    activity_id TEXT,
    size        INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX bulk_batches_open ON bulk_batches (status) WHERE status IN ('importing', 'polling');

-- The commands of a batch, by 1-based row number in import_data (as activity_errors name them).
CREATE TABLE bulk_items (
    batch_id   TEXT NOT NULL REFERENCES bulk_batches (id),
    row        INTEGER NOT NULL,
    command_id TEXT NOT NULL,
    email      TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    PRIMARY KEY (batch_id, row)
);
