-- 0003_contacts_load: where a first full contacts pass puts its rows before they enter the mirror.
-- ctct-sync's own, not for analysts. A full pass into an account that has no contacts in the
-- mirror appends each page here, in the order it reads them (no index to keep sorted), with its
-- position in the same transaction; its last page moves them into contacts,
-- contact_custom_field_values and contact_list_memberships in key order, building the
-- secondary indexes once at the end when the tables were empty (docs/performance.md, "Mirror,
-- second round"). A row read twice (a pass read again from its start) is applied once: the
-- copy read last wins.
-- Append-only: never edit a migration once released; add a new numbered file instead.

CREATE TABLE contacts_load (
    seq                INTEGER PRIMARY KEY,   -- arrival order
    account            TEXT NOT NULL,
    contact_id         TEXT NOT NULL,
    email_address      TEXT,
    permission_to_send TEXT,
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
    custom_fields      TEXT,                  -- JSON [[custom_field_id, value], …]; NULL for none
    list_ids           TEXT                   -- JSON [list_id, …]; NULL for none
) STRICT;

-- The contacts a full pass saw unchanged: not rewritten (seen_run stays the pass that last
-- wrote them), but kept when the pass ends and removes the contacts it did not see.
CREATE TABLE contacts_seen (
    account    TEXT NOT NULL,
    contact_id TEXT NOT NULL
) STRICT;
