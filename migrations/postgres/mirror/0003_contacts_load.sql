-- 0003_contacts_load: where a first full contacts pass puts its rows before they enter the mirror.
-- ctct-sync's own, not for analysts; the same table as SQLite's 0003 (a store copy carries a
-- pass in progress from one engine to the other with its rows). A full pass's last page moves
-- the account's rows found here into contacts, contact_custom_field_values and
-- contact_list_memberships (the copy read last wins) before its own.
-- Append-only: never edit a migration once released; add a new numbered file instead.

CREATE TABLE contacts_load (
    seq        bigint PRIMARY KEY,   -- arrival order
    account    text NOT NULL,
    contact_id text NOT NULL,
    data       text NOT NULL         -- the normalised contact as JSON (values and lists included)
);

-- The contacts a full pass saw unchanged: not rewritten, but kept when the pass ends and
-- removes the contacts it did not see.
CREATE TABLE contacts_seen (
    account    text NOT NULL,
    contact_id text NOT NULL
);
