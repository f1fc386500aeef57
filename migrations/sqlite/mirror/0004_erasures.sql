-- 0004_erasures: contacts erased by `contact.erase` (a GDPR erasure). Their rows, custom-field
-- values, list memberships and tracking events were removed from the mirror, and every mirror
-- pass (contacts full, incremental or export; the reports' tracking events) leaves these ids
-- out from then on: Constant Contact keeps a deleted contact (the mirror reads `status=all`)
-- and its reports keep listing the contact's events. No personal data: the contact's id, when
-- it was erased and the command that erased it.
-- Append-only: never edit a migration once released; add a new numbered file instead.

CREATE TABLE erased_contacts (
    account    TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    erased_at  TEXT NOT NULL,   -- RFC 3339, UTC (the first erasure)
    command_id TEXT NOT NULL,   -- the contact.erase command that erased it first
    PRIMARY KEY (account, contact_id)
) STRICT, WITHOUT ROWID;
