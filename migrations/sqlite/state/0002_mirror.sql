-- 0002_mirror: the account mirror, shaped for reporting with plain SQL.
-- Every table is keyed by (account, remote id) so several accounts share one database.

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
    PRIMARY KEY (account, contact_id)
) STRICT;

CREATE INDEX contacts_by_email ON contacts (account, email_address);
CREATE INDEX contacts_by_updated ON contacts (account, updated_at);

CREATE TABLE contact_custom_field_values (
    account         TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    custom_field_id TEXT NOT NULL,
    value           TEXT NOT NULL,
    PRIMARY KEY (account, contact_id, custom_field_id),
    FOREIGN KEY (account, contact_id) REFERENCES contacts (account, contact_id) ON DELETE CASCADE
) STRICT;

CREATE TABLE contact_list_memberships (
    account    TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    list_id    TEXT NOT NULL,
    PRIMARY KEY (account, contact_id, list_id),
    FOREIGN KEY (account, contact_id) REFERENCES contacts (account, contact_id) ON DELETE CASCADE
) STRICT;

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
    PRIMARY KEY (account, list_id)
) STRICT;

CREATE TABLE campaigns (
    account        TEXT NOT NULL,
    campaign_id    TEXT NOT NULL,
    name           TEXT NOT NULL,
    current_status TEXT,           -- Draft | Scheduled | Executing | Done | Error | Removed
    type           TEXT,
    type_code      INTEGER,
    created_at     TEXT,
    updated_at     TEXT,
    mirrored_at    TEXT NOT NULL,
    PRIMARY KEY (account, campaign_id)
) STRICT;

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
    PRIMARY KEY (account, campaign_activity_id)
) STRICT;

CREATE INDEX campaign_activities_by_campaign ON campaign_activities (account, campaign_id);

-- Where the next run of each resource starts (incremental cursor, resumable page link).
CREATE TABLE mirror_cursors (
    account       TEXT NOT NULL,
    resource      TEXT NOT NULL,   -- contacts | custom_fields | lists | campaigns
    updated_after TEXT,            -- high-water mark of updated_at seen by the last complete run
    next_href     TEXT,            -- page to resume from when a run was interrupted
    run_id        INTEGER,         -- the run that owns next_href
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (account, resource)
) STRICT;

CREATE TABLE mirror_runs (
    id            INTEGER PRIMARY KEY,
    account       TEXT NOT NULL,
    resource      TEXT NOT NULL,
    mode          TEXT NOT NULL CHECK (mode IN ('full', 'incremental')),
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    pages         INTEGER NOT NULL DEFAULT 0,
    rows_upserted INTEGER NOT NULL DEFAULT 0,
    rows_deleted  INTEGER NOT NULL DEFAULT 0,
    api_requests  INTEGER NOT NULL DEFAULT 0,
    outcome       TEXT NOT NULL DEFAULT 'running'
                  CHECK (outcome IN ('running', 'succeeded', 'failed', 'interrupted')),
    error         TEXT
) STRICT;

CREATE INDEX mirror_runs_by_resource ON mirror_runs (account, resource, started_at);
