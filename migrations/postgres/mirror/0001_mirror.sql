-- 0001_mirror: the account mirror in a PostgreSQL schema of its own (the connection's
-- search_path names it; nothing here is schema-qualified), shaped for reporting with plain
-- SQL. The same tables, views and relationships as migrations/sqlite/mirror/0001_mirror.sql,
-- typed the PostgreSQL way: timestamptz for instants, bigint for integers, boolean for flags,
-- jsonb for JSON arrays. PostgreSQL 13+ (no MERGE, no NULLS NOT DISTINCT).
-- Every table is keyed by (account, remote id) so several accounts share one schema.
-- Append-only: never edit a migration once released; add a new numbered file instead.

CREATE TABLE contacts (
    account            text NOT NULL,
    contact_id         text NOT NULL,
    email_address      text,
    permission_to_send text,       -- explicit | implicit | not_set | pending_confirmation | temp_hold | unsubscribed
    confirm_status     text,
    opt_in_source      text,
    opt_in_date        timestamptz,
    opt_out_source     text,
    opt_out_date       timestamptz,
    opt_out_reason     text,
    first_name         text,
    last_name          text,
    job_title          text,
    company_name       text,
    birthday_month     bigint,
    birthday_day       bigint,
    anniversary        text,       -- as the account holds it (free-form in the API)
    create_source      text,
    update_source      text,
    created_at         timestamptz,
    updated_at         timestamptz,
    deleted_at         date,       -- the API gives the day a contact was deleted
    mirrored_at        timestamptz NOT NULL,
    seen_run           bigint,     -- the full pass that last saw the row (mirror_runs.id)
    PRIMARY KEY (account, contact_id)
);

CREATE INDEX contacts_by_email ON contacts (account, email_address);

CREATE TABLE custom_fields (
    account         text NOT NULL,
    custom_field_id text NOT NULL,
    name            text NOT NULL,
    label           text NOT NULL,
    type            text,
    created_at      timestamptz,
    updated_at      timestamptz,
    mirrored_at     timestamptz NOT NULL,
    seen_run        bigint,
    PRIMARY KEY (account, custom_field_id)
);

-- custom_field_id refers to custom_fields (account, custom_field_id), documented rather than
-- enforced: contacts are mirrored on their own schedule and incrementally, so a contact page
-- can carry a value of a field created after the last custom-fields listing; an enforced key
-- would fail that page (and the whole pass behind it) until the next listing.
CREATE TABLE contact_custom_field_values (
    account         text NOT NULL,
    contact_id      text NOT NULL,
    custom_field_id text NOT NULL,
    value           text NOT NULL,
    PRIMARY KEY (account, contact_id, custom_field_id),
    FOREIGN KEY (account, contact_id) REFERENCES contacts (account, contact_id) ON DELETE CASCADE
);

-- Reporting: "contacts whose <field> is …" without scanning every value.
CREATE INDEX contact_custom_field_values_by_field
    ON contact_custom_field_values (account, custom_field_id);

-- list_id refers to contact_lists (account, list_id), documented rather than enforced for the
-- same reason as custom_field_id above: a contact can join a list created after the last
-- lists listing.
CREATE TABLE contact_list_memberships (
    account    text NOT NULL,
    contact_id text NOT NULL,
    list_id    text NOT NULL,
    PRIMARY KEY (account, contact_id, list_id),
    FOREIGN KEY (account, contact_id) REFERENCES contacts (account, contact_id) ON DELETE CASCADE
);

CREATE INDEX contact_list_memberships_by_list ON contact_list_memberships (account, list_id);

CREATE TABLE contact_lists (
    account          text NOT NULL,
    list_id          text NOT NULL,
    name             text NOT NULL,
    description      text,
    favorite         boolean,
    membership_count bigint,
    created_at       timestamptz,
    updated_at       timestamptz,
    deleted_at       timestamptz,
    mirrored_at      timestamptz NOT NULL,
    seen_run         bigint,
    PRIMARY KEY (account, list_id)
);

CREATE TABLE campaigns (
    account            text NOT NULL,
    campaign_id        text NOT NULL,
    name               text NOT NULL,
    current_status     text,       -- Draft | Scheduled | Executing | Done | Error | Removed
    type               text,
    type_code          bigint,
    created_at         timestamptz,
    updated_at         timestamptz,
    mirrored_at        timestamptz NOT NULL,
    seen_run           bigint,
    -- The campaign's updated_at when its details and activities were last fetched.
    details_updated_at timestamptz,
    PRIMARY KEY (account, campaign_id)
);

-- An activity is written only after the listing page that upserted its campaign, and removed
-- before its campaign is: the key is enforced.
CREATE TABLE campaign_activities (
    account              text NOT NULL,
    campaign_activity_id text NOT NULL,
    campaign_id          text NOT NULL,
    role                 text,     -- primary_email | permalink | resend
    current_status       text,     -- DRAFT | SCHEDULED | EXECUTING | DONE | ERROR | REMOVED
    format_type          bigint,
    from_name            text,
    from_email           text,
    reply_to_email       text,
    subject              text,
    preheader            text,
    contact_list_ids     jsonb,    -- JSON array of list ids
    segment_ids          jsonb,    -- JSON array of segment ids
    scheduled_date       timestamptz,
    mirrored_at          timestamptz NOT NULL,
    PRIMARY KEY (account, campaign_activity_id),
    FOREIGN KEY (account, campaign_id) REFERENCES campaigns (account, campaign_id)
        ON DELETE CASCADE
);

CREATE INDEX campaign_activities_by_campaign ON campaign_activities (account, campaign_id);

-- Where the next run of each resource starts, the pass in progress, and who runs it now.
-- Leases are kept on the database's clock: lease_until = now() + lease_ttl at every take and
-- renewal, and a lease has lapsed once lease_until <= now().
CREATE TABLE mirror_cursors (
    account            text NOT NULL,
    resource           text NOT NULL,   -- contacts | custom_fields | lists | campaigns
    updated_after      timestamptz,     -- high-water mark of updated_at of the last complete pass
    next_href          text,            -- page (or export file) to continue the pass from
    run_id             bigint,          -- the run that started the pass in progress
    updated_at         timestamptz NOT NULL,
    pass_mode          text CHECK (pass_mode IN ('full', 'incremental')),
    pass_path          text CHECK (pass_path IN ('export', 'paging')),
    pass_started_at    timestamptz,     -- becomes updated_after when the pass completes
    pass_updated_after timestamptz,     -- the bound an incremental pass queries with
    export_activity_id text,            -- the export being prepared or read
    rows_done          bigint NOT NULL DEFAULT 0, -- export rows already applied
    lease_owner        text,            -- the process running the resource now
    lease_until        timestamptz,     -- renewed with every page; a dead process's lapses
    lease_ttl          interval,        -- how far each renewal extends the lease
    PRIMARY KEY (account, resource)
);

CREATE TABLE mirror_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account       text NOT NULL,
    resource      text NOT NULL CHECK (resource IN ('contacts', 'custom_fields', 'lists', 'campaigns')),
    mode          text NOT NULL CHECK (mode IN ('full', 'incremental')),
    trigger       text NOT NULL DEFAULT 'schedule' CHECK (trigger IN ('schedule', 'command', 'cli')),
    path          text CHECK (path IN ('export', 'paging')),
    resumed_from  bigint,       -- the run that started the pass this run continued
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    pages         bigint NOT NULL DEFAULT 0,
    rows_upserted bigint NOT NULL DEFAULT 0,
    rows_deleted  bigint NOT NULL DEFAULT 0,
    api_requests  bigint NOT NULL DEFAULT 0,
    outcome       text NOT NULL DEFAULT 'running'
                  CHECK (outcome IN ('running', 'succeeded', 'failed', 'interrupted', 'skipped')),
    error         text,
    resets_at     timestamptz   -- interrupted by the daily quota: when it resets
);

CREATE INDEX mirror_runs_by_resource ON mirror_runs (account, resource, started_at);

-- Contacts as the account shows them by default (deleted contacts left out).
CREATE VIEW live_contacts AS
    SELECT * FROM contacts WHERE deleted_at IS NULL;

-- Live contacts with their lists (`lists`: JSON array of list ids, sorted) and custom-field
-- values (`custom_fields`: JSON object custom_field_id → value); `[]` and `{}` when none.
CREATE VIEW live_contacts_detailed AS
    SELECT c.*,
           coalesce((SELECT jsonb_agg(m.list_id ORDER BY m.list_id)
                     FROM contact_list_memberships AS m
                     WHERE m.account = c.account AND m.contact_id = c.contact_id),
                    '[]'::jsonb) AS lists,
           coalesce((SELECT jsonb_object_agg(v.custom_field_id, v.value)
                     FROM contact_custom_field_values AS v
                     WHERE v.account = c.account AND v.contact_id = c.contact_id),
                    '{}'::jsonb) AS custom_fields
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
