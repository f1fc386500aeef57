-- 0003_mirror_runs: what the mirror needs to resume a pass, reconcile it and report on it.
-- Append-only: never edit a migration once released; add a new numbered file instead.

-- The full pass that last saw a row (mirror_runs.id of the run that started that pass). At the
-- end of a complete full pass, rows that pass did not see no longer exist in the account and
-- are removed.
ALTER TABLE contacts ADD COLUMN seen_run INTEGER;
ALTER TABLE custom_fields ADD COLUMN seen_run INTEGER;
ALTER TABLE contact_lists ADD COLUMN seen_run INTEGER;
ALTER TABLE campaigns ADD COLUMN seen_run INTEGER;

-- The campaign's updated_at when its details and activities were last fetched: a campaign
-- whose listed updated_at differs has changed and is fetched again; the others cost nothing.
ALTER TABLE campaigns ADD COLUMN details_updated_at TEXT;

-- Custom-field values and list memberships again, as WITHOUT ROWID tables clustered on their
-- primary key: one B-tree per table instead of a rowid table plus a copy of every row in the
-- key's index, which halves the writes of a full mirror (docs/performance.md, "Mirror").
CREATE TABLE contact_custom_field_values_0003 (
    account         TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    custom_field_id TEXT NOT NULL,
    value           TEXT NOT NULL,
    PRIMARY KEY (account, contact_id, custom_field_id),
    FOREIGN KEY (account, contact_id) REFERENCES contacts (account, contact_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
INSERT INTO contact_custom_field_values_0003 SELECT account, contact_id, custom_field_id, value
    FROM contact_custom_field_values;
DROP TABLE contact_custom_field_values;
ALTER TABLE contact_custom_field_values_0003 RENAME TO contact_custom_field_values;
-- Reporting: "contacts whose <field> is …" without scanning every value.
CREATE INDEX contact_custom_field_values_by_field
    ON contact_custom_field_values (account, custom_field_id);

CREATE TABLE contact_list_memberships_0003 (
    account    TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    list_id    TEXT NOT NULL,
    PRIMARY KEY (account, contact_id, list_id),
    FOREIGN KEY (account, contact_id) REFERENCES contacts (account, contact_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
INSERT INTO contact_list_memberships_0003 SELECT account, contact_id, list_id
    FROM contact_list_memberships;
DROP TABLE contact_list_memberships;
ALTER TABLE contact_list_memberships_0003 RENAME TO contact_list_memberships;
CREATE INDEX contact_list_memberships_by_list ON contact_list_memberships (account, list_id);

-- Nothing reads contacts by updated_at but the mirror's own incremental pass, which asks the
-- API; the index only cost every contact write a random insert.
DROP INDEX contacts_by_updated;

-- The pass in progress of each resource. `run_id` (from 0002) is the run that started it and
-- `next_href` the page to continue from (the export file's href on the export path).
ALTER TABLE mirror_cursors ADD COLUMN pass_mode TEXT CHECK (pass_mode IN ('full', 'incremental'));
ALTER TABLE mirror_cursors ADD COLUMN pass_path TEXT CHECK (pass_path IN ('export', 'paging'));
ALTER TABLE mirror_cursors ADD COLUMN pass_started_at TEXT;   -- becomes updated_after when the pass completes
ALTER TABLE mirror_cursors ADD COLUMN pass_updated_after TEXT; -- the bound an incremental pass queries with
ALTER TABLE mirror_cursors ADD COLUMN export_activity_id TEXT; -- the export being prepared or read
ALTER TABLE mirror_cursors ADD COLUMN rows_done INTEGER NOT NULL DEFAULT 0; -- export rows already applied

-- Who is running the resource now: a lease renewed with every page, so two processes on one
-- store (the daemon and `ctct-sync mirror`) never run the same resource at once, and the lease
-- of a process that died expires.
ALTER TABLE mirror_cursors ADD COLUMN lease_owner TEXT;
ALTER TABLE mirror_cursors ADD COLUMN lease_until TEXT;

-- mirror_runs again, with runs skipped because another run of the resource was going, the
-- path a contacts run took, where it was triggered from and when a quota stop lifts.
CREATE TABLE mirror_runs_0003 (
    id            INTEGER PRIMARY KEY,
    account       TEXT NOT NULL,
    resource      TEXT NOT NULL CHECK (resource IN ('contacts', 'custom_fields', 'lists', 'campaigns')),
    mode          TEXT NOT NULL CHECK (mode IN ('full', 'incremental')),
    trigger       TEXT NOT NULL DEFAULT 'schedule' CHECK (trigger IN ('schedule', 'command', 'cli')),
    path          TEXT CHECK (path IN ('export', 'paging')),
    resumed_from  INTEGER,      -- the run that started the pass this run continued
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    pages         INTEGER NOT NULL DEFAULT 0,
    rows_upserted INTEGER NOT NULL DEFAULT 0,
    rows_deleted  INTEGER NOT NULL DEFAULT 0,
    api_requests  INTEGER NOT NULL DEFAULT 0,
    outcome       TEXT NOT NULL DEFAULT 'running'
                  CHECK (outcome IN ('running', 'succeeded', 'failed', 'interrupted', 'skipped')),
    error         TEXT,
    resets_at     TEXT          -- interrupted by the daily quota: when it resets
) STRICT;

INSERT INTO mirror_runs_0003 (id, account, resource, mode, started_at, finished_at, pages,
                              rows_upserted, rows_deleted, api_requests, outcome, error)
SELECT id, account, resource, mode, started_at, finished_at, pages, rows_upserted,
       rows_deleted, api_requests, outcome, error
FROM mirror_runs;

DROP TABLE mirror_runs;
ALTER TABLE mirror_runs_0003 RENAME TO mirror_runs;
CREATE INDEX mirror_runs_by_resource ON mirror_runs (account, resource, started_at);

-- Contacts as the account shows them by default (deleted contacts left out).
CREATE VIEW live_contacts AS
    SELECT * FROM contacts WHERE deleted_at IS NULL;
