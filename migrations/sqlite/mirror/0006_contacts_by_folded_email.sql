-- 0006_contacts_by_folded_email: contacts found by e-mail address without regard to (ASCII)
-- case, as the API matches addresses. Commands naming contacts by address (contact.tag,
-- contact.untag, list.add_contacts, list.remove_contacts) resolve them through a fresh mirror
-- with one look-up per address on this index instead of one API request each. SQLite's
-- lower() folds ASCII letters only; ctct-sync folds the addresses it looks for the same way.
-- Append-only: never edit a migration once released; add a new numbered file instead.

CREATE INDEX contacts_by_folded_email ON contacts (account, lower(email_address));
