-- 0003_contacts_load: where a first full contacts pass puts its rows before they enter the mirror.
-- ctct-sync's own, not for analysts; the same table as SQLite's 0003 (a store copy carries a
-- pass in progress from one engine to the other with its rows). A full pass's last page moves
-- the account's rows found here into contacts, contact_custom_field_values and
-- contact_list_memberships (the copy read last wins) before its own.
-- Append-only: never edit a migration once released; add a new numbered file instead.

CREATE TABLE contacts_load (
    seq                bigint PRIMARY KEY,   -- arrival order
    account            text NOT NULL,
    contact_id         text NOT NULL,
    email_address      text,
    permission_to_send text,
    confirm_status     text,
    opt_in_source      text,
    opt_in_date        text,                 -- instants as read (RFC 3339), cast when moved
    opt_out_source     text,
    opt_out_date       text,
    opt_out_reason     text,
    first_name         text,
    last_name          text,
    job_title          text,
    company_name       text,
    birthday_month     bigint,
    birthday_day       bigint,
    anniversary        text,
    create_source      text,
    update_source      text,
    created_at         text,
    updated_at         text,
    deleted_at         text,
    custom_fields      text,                 -- JSON [[custom_field_id, value], …]; NULL for none
    list_ids           text                  -- JSON [list_id, …]; NULL for none
);

-- The contacts a full pass saw unchanged: not rewritten, but kept when the pass ends and
-- removes the contacts it did not see.
CREATE TABLE contacts_seen (
    account    text NOT NULL,
    contact_id text NOT NULL
);
