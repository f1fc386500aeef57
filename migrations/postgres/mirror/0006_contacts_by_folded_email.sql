-- 0006_contacts_by_folded_email: contacts found by e-mail address without regard to (ASCII)
-- case, as the API matches addresses. Commands naming contacts by address (contact.tag,
-- contact.untag, list.add_contacts, list.remove_contacts) resolve them through a fresh mirror
-- with one index look-up per address instead of one API request each. lower() in the C
-- collation folds ASCII letters only, as SQLite's does; queries name the same expression.
-- Append-only: never edit a migration once released; add a new numbered file instead.

CREATE INDEX contacts_by_folded_email ON contacts (account, lower(email_address COLLATE "C"));
