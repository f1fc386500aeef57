-- 0001_state: the daemon's private state on PostgreSQL, as SQLite's state store stands after
-- its migrations 0001-0006 (tokens, the request budget and its holds, the command ledger,
-- bulk-import batches). Tables are created in the schema the connection's search_path names.
-- Append-only: never edit a migration once released; add a new numbered file instead.

-- Connected Constant Contact accounts and their OAuth2 tokens (one row per account name).
CREATE TABLE accounts (
    account             text PRIMARY KEY,              -- our name for it: "default", "emea", …
    client_id           text NOT NULL,                 -- the API key the tokens were issued to
    state               text NOT NULL DEFAULT 'active'
                        CHECK (state IN ('active', 'reauth_required')),
    state_reason        text,                          -- why re-authorisation is needed
    refresh_token       text,                          -- secret; rotates on every refresh
    access_token        text,                          -- secret
    access_expires_at   timestamptz,
    scopes              text NOT NULL DEFAULT '',      -- space separated, as granted
    generation          bigint NOT NULL DEFAULT 0,     -- bumped by every stored rotation
    last_refresh_at     timestamptz,
    refresh_lease_owner text,                          -- process holding the refresh lease
    refresh_lease_until timestamptz,                   -- lease expiry, in the database's clock
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);

-- Requests spent against the API key's daily quota, per UTC day (settled holds).
CREATE TABLE rate_budget (
    client_id    text NOT NULL,
    day          date NOT NULL,                        -- UTC
    spent        bigint NOT NULL DEFAULT 0,
    exhausted_at timestamptz,                          -- when the API answered quota_exceeded
    PRIMARY KEY (client_id, day)
);

-- Requests a running process may still send today without asking again. A hold past
-- `expires_at` (the database's clock) is not counted: its process was killed.
CREATE TABLE rate_budget_holds (
    client_id  text NOT NULL,
    day        date NOT NULL,                          -- UTC
    owner      text NOT NULL,                          -- one random id per running budget
    held       bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (client_id, day, owner)
);

-- The command ledger: one row per (account, command id). A redelivered command whose row
-- is done replays `result` instead of calling the API again.
CREATE TABLE command_ledger (
    account     text NOT NULL,
    command_id  text NOT NULL,
    type        text NOT NULL,
    status      text NOT NULL CHECK (status IN ('in_progress', 'done')),
    attempts    bigint NOT NULL DEFAULT 0,
    effect_ref  text,                                  -- id of what the command created or changed
    outcome     text CHECK (outcome IN ('succeeded', 'failed', 'rejected')),
    result      text,                                  -- the final result message (JSON)
    received_at timestamptz NOT NULL,
    finished_at timestamptz,
    fingerprint text,                                  -- SHA-256 (hex) of the command
    PRIMARY KEY (account, command_id)
);

CREATE INDEX command_ledger_by_finished ON command_ledger (finished_at);

-- One bulk import. status: 'importing', 'polling', 'done', 'failed', 'abandoned'.
CREATE TABLE bulk_batches (
    id          text PRIMARY KEY,
    account     text NOT NULL,
    list_ids    text NOT NULL,                         -- JSON array, sorted
    status      text NOT NULL,
    activity_id text,
    size        bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX bulk_batches_open ON bulk_batches (status) WHERE status IN ('importing', 'polling');

-- The commands of a batch, by 1-based row number in import_data (as activity_errors name them).
CREATE TABLE bulk_items (
    batch_id   text NOT NULL REFERENCES bulk_batches (id),
    row        bigint NOT NULL,
    command_id text NOT NULL,
    email      text NOT NULL,
    attempts   bigint NOT NULL,
    started_at timestamptz NOT NULL,
    PRIMARY KEY (batch_id, row)
);
