-- 0001_core: what the daemon needs to act safely — tokens, the request budget, the ledger.
-- Append-only: never edit a migration once released; add a new numbered file instead.

-- Connected Constant Contact accounts and their OAuth2 tokens (one row per account name).
CREATE TABLE accounts (
    account             TEXT PRIMARY KEY,           -- our name for it: "default", "emea", …
    client_id           TEXT NOT NULL,              -- the API key the tokens were issued to
    state               TEXT NOT NULL DEFAULT 'active'
                        CHECK (state IN ('active', 'reauth_required')),
    state_reason        TEXT,                       -- why re-authorisation is needed
    refresh_token       TEXT,                       -- secret; rotates on every refresh
    access_token        TEXT,                       -- secret
    access_expires_at   TEXT,                       -- RFC 3339, UTC
    scopes              TEXT NOT NULL DEFAULT '',   -- space separated, as granted
    generation          INTEGER NOT NULL DEFAULT 0, -- bumped by every stored rotation
    last_refresh_at     TEXT,
    refresh_lease_owner TEXT,                       -- process holding the refresh lease
    refresh_lease_until TEXT,                       -- lease expiry (cross-process single refresh)
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
) STRICT;

-- Requests reserved against the API key's daily quota, per UTC day. Reserved before
-- sending, so a crash can only over-count, never under-count.
CREATE TABLE rate_budget (
    client_id    TEXT NOT NULL,
    day          TEXT NOT NULL,                     -- YYYY-MM-DD, UTC
    reserved     INTEGER NOT NULL DEFAULT 0,
    exhausted_at TEXT,                              -- when the API answered quota_exceeded
    PRIMARY KEY (client_id, day)
) STRICT;

-- The command ledger: one row per (account, command id). A redelivered command whose row
-- is done replays `result` instead of calling the API again.
CREATE TABLE command_ledger (
    account     TEXT NOT NULL,
    command_id  TEXT NOT NULL,
    type        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('in_progress', 'done')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    effect_ref  TEXT,                               -- id of what the command created or changed
    outcome     TEXT CHECK (outcome IN ('succeeded', 'failed', 'rejected')),
    result      TEXT,                               -- the final result message (JSON)
    received_at TEXT NOT NULL,
    finished_at TEXT,
    PRIMARY KEY (account, command_id)
) STRICT;

CREATE INDEX command_ledger_by_finished ON command_ledger (finished_at);
