-- 0003_ledger_claims: a command in progress is claimed by one process at a time (SQLite's
-- 0009_ledger_claims). Append-only: never edit a migration once released.

-- `owner`: the process (a random id per running pipeline) working on the command;
-- `lease_until`: until when its claim holds unless renewed, by the database's clock. A
-- delivery of the command that arrives in another process while the claim holds is not
-- applied there: it waits and comes back. A lapsed claim (its process died) is taken over.
-- Both are cleared when the final result is stored.
ALTER TABLE command_ledger ADD COLUMN owner text, ADD COLUMN lease_until timestamptz;
