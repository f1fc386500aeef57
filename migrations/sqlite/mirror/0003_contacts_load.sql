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
    seq        INTEGER PRIMARY KEY,   -- arrival order
    account    TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    data       TEXT NOT NULL          -- the normalised contact as JSON (values and lists included)
) STRICT;

-- The contacts a full pass saw unchanged: not rewritten (seen_run stays the pass that last
-- wrote them), but kept when the pass ends and removes the contacts it did not see.
CREATE TABLE contacts_seen (
    account    TEXT NOT NULL,
    contact_id TEXT NOT NULL
) STRICT;
