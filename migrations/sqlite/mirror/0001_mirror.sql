-- 0001_mirror: the account mirror in a database of its own, shaped for reporting with plain
-- SQL. Every table is keyed by (account, remote id) so several accounts share one database.
-- The same tables as the state store's 0002_mirror and 0003_mirror_runs built up before the
-- mirror moved out; a store upgraded from then has its rows copied here.
-- Append-only: never edit a migration once released; add a new numbered file instead.

CREATE TABLE contacts (
    account            TEXT NOT NULL,
    contact_id         TEXT NOT NULL,
    email_address      TEXT,
    permission_to_send TEXT,       -- explicit | implicit | not_set | pending_confirmation | temp_hold | unsubscribed
    confirm_status     TEXT,
    opt_in_source      TEXT,
    opt_in_date        TEXT,
    opt_out_source     TEXT,
    opt_out_date       TEXT,
    opt_out_reason     TEXT,
    first_name         TEXT,
    last_name          TEXT,
    job_title          TEXT,
    company_name       TEXT,
    birthday_month     INTEGER,
    birthday_day       INTEGER,
    anniversary        TEXT,
    create_source      TEXT,
    update_source      TEXT,
    created_at         TEXT,
    updated_at         TEXT,
    deleted_at         TEXT,
    mirrored_at        TEXT NOT NULL,
    seen_run           INTEGER,    -- the full pass that last saw the row (mirror_runs.id)
    PRIMARY KEY (account, contact_id)
) STRICT;

CREATE INDEX contacts_by_email ON contacts (account, email_address);

-- Clustered on their primary key (WITHOUT ROWID): one B-tree per table, half the writes of a
-- full mirror (docs/performance.md, "Mirror").
-- custom_field_id refers to custom_fields (account, custom_field_id), documented rather than
-- enforced: contacts are mirrored on their own schedule and incrementally, so a contact page
-- can carry a value of a field created after the last custom-fields listing; an enforced key
-- would fail that page (and the whole pass behind it) until the next listing.
CREATE TABLE contact_custom_field_values (
    account         TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    custom_field_id TEXT NOT NULL,
    value           TEXT NOT NULL,
    PRIMARY KEY (account, contact_id, custom_field_id),
    FOREIGN KEY (account, contact_id) REFERENCES contacts (account, contact_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Reporting: "contacts whose <field> is …" without scanning every value.
CREATE INDEX contact_custom_field_values_by_field
    ON contact_custom_field_values (account, custom_field_id);

-- list_id refers to contact_lists (account, list_id), documented rather than enforced for the
-- same reason as custom_field_id above: a contact can join a list created after the last
-- lists listing.
CREATE TABLE contact_list_memberships (
    account    TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    list_id    TEXT NOT NULL,
    PRIMARY KEY (account, contact_id, list_id),
    FOREIGN KEY (account, contact_id) REFERENCES contacts (account, contact_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX contact_list_memberships_by_list ON contact_list_memberships (account, list_id);

CREATE TABLE custom_fields (
    account         TEXT NOT NULL,
    custom_field_id TEXT NOT NULL,
    name            TEXT NOT NULL,
    label           TEXT NOT NULL,
    type            TEXT,
    created_at      TEXT,
    updated_at      TEXT,
    mirrored_at     TEXT NOT NULL,
    seen_run        INTEGER,
    PRIMARY KEY (account, custom_field_id)
) STRICT;

CREATE TABLE contact_lists (
    account          TEXT NOT NULL,
    list_id          TEXT NOT NULL,
    name             TEXT NOT NULL,
    description      TEXT,
    favorite         INTEGER,
    membership_count INTEGER,
    created_at       TEXT,
    updated_at       TEXT,
    deleted_at       TEXT,
    mirrored_at      TEXT NOT NULL,
    seen_run         INTEGER,
    PRIMARY KEY (account, list_id)
) STRICT;

CREATE TABLE campaigns (
    account            TEXT NOT NULL,
    campaign_id        TEXT NOT NULL,
    name               TEXT NOT NULL,
    current_status     TEXT,       -- Draft | Scheduled | Executing | Done | Error | Removed
    type               TEXT,
    type_code          INTEGER,
    created_at         TEXT,
    updated_at         TEXT,
    mirrored_at        TEXT NOT NULL,
    seen_run           INTEGER,
    -- The campaign's updated_at when its details and activities were last fetched.
    details_updated_at TEXT,
    PRIMARY KEY (account, campaign_id)
) STRICT;

-- An activity is written only after the listing page that upserted its campaign, and removed
-- before its campaign is: the key holds.
CREATE TABLE campaign_activities (
    account              TEXT NOT NULL,
    campaign_activity_id TEXT NOT NULL,
    campaign_id          TEXT NOT NULL,
    role                 TEXT,     -- primary_email | permalink | resend
    current_status       TEXT,     -- DRAFT | SCHEDULED | EXECUTING | DONE | ERROR | REMOVED
    format_type          INTEGER,
    from_name            TEXT,
    from_email           TEXT,
    reply_to_email       TEXT,
    subject              TEXT,
    preheader            TEXT,
    contact_list_ids     TEXT,     -- JSON array of list ids
    segment_ids          TEXT,     -- JSON array of segment ids
    scheduled_date       TEXT,
    mirrored_at          TEXT NOT NULL,
    PRIMARY KEY (account, campaign_activity_id),
    FOREIGN KEY (account, campaign_id) REFERENCES campaigns (account, campaign_id)
        ON DELETE CASCADE
) STRICT;

CREATE INDEX campaign_activities_by_campaign ON campaign_activities (account, campaign_id);

-- Where the next run of each resource starts, the pass in progress, and who runs it now.
CREATE TABLE mirror_cursors (
    account            TEXT NOT NULL,
    resource           TEXT NOT NULL,   -- contacts | custom_fields | lists | campaigns
    updated_after      TEXT,            -- high-water mark of updated_at of the last complete pass
    next_href          TEXT,            -- page (or export file) to continue the pass from
    run_id             INTEGER,         -- the run that started the pass in progress
    updated_at         TEXT NOT NULL,
    pass_mode          TEXT CHECK (pass_mode IN ('full', 'incremental')),
    pass_path          TEXT CHECK (pass_path IN ('export', 'paging')),
    pass_started_at    TEXT,            -- becomes updated_after when the pass completes
    pass_updated_after TEXT,            -- the bound an incremental pass queries with
    export_activity_id TEXT,            -- the export being prepared or read
    rows_done          INTEGER NOT NULL DEFAULT 0, -- export rows already applied
    lease_owner        TEXT,            -- the process running the resource now
    lease_until        TEXT,            -- renewed with every page; a dead process's lapses
    PRIMARY KEY (account, resource)
) STRICT;

CREATE TABLE mirror_runs (
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

CREATE INDEX mirror_runs_by_resource ON mirror_runs (account, resource, started_at);

-- Contacts as the account shows them by default (deleted contacts left out).
CREATE VIEW live_contacts AS
    SELECT * FROM contacts WHERE deleted_at IS NULL;

-- Live contacts with their lists (`lists`: JSON array of list ids, sorted) and custom-field
-- values (`custom_fields`: JSON object custom_field_id → value); `[]` and `{}` when none.
CREATE VIEW live_contacts_detailed AS
    SELECT c.*,
           (SELECT json_group_array(list_id)
            FROM (SELECT m.list_id FROM contact_list_memberships AS m
                  WHERE m.account = c.account AND m.contact_id = c.contact_id
                  ORDER BY m.list_id)) AS lists,
           (SELECT json_group_object(v.custom_field_id, v.value)
            FROM contact_custom_field_values AS v
            WHERE v.account = c.account AND v.contact_id = c.contact_id) AS custom_fields
    FROM contacts AS c
    WHERE c.deleted_at IS NULL;

-- Every list that is not deleted, with how many live contacts the mirror holds on it.
CREATE VIEW list_sizes AS
    SELECT l.account, l.list_id, l.name,
           (SELECT count(*)
            FROM contact_list_memberships AS m
            JOIN contacts AS c ON c.account = m.account AND c.contact_id = m.contact_id
            WHERE m.account = l.account AND m.list_id = l.list_id AND c.deleted_at IS NULL)
               AS live_contacts
    FROM contact_lists AS l
    WHERE l.deleted_at IS NULL;
