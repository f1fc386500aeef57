-- 0005_ledger_fingerprint: tell a command from another one sent under the same id.
-- Append-only: never edit a migration once released; add a new numbered file instead.

-- SHA-256 (hex) of the command's type and canonical data (or of the raw message when those
-- could not be read). A delivery under a known id with another fingerprint is a different
-- command: it is rejected with `id_reused` instead of getting this row's result. Rows from
-- before this migration have none and replay their result to any command under their id,
-- as they always did; an unfinished one takes the fingerprint of its next delivery.
ALTER TABLE command_ledger ADD COLUMN fingerprint TEXT;
