-- 0009_ledger_claims: a command in progress is claimed by one process at a time.
-- Append-only: never edit a migration once released; add a new numbered file instead.

-- `owner`: the process (a random id per running pipeline) working on the command;
-- `lease_until` (Unix milliseconds): until when its claim holds unless renewed. A delivery of
-- the command that arrives in another process while the claim holds is not applied there: it
-- waits and comes back. A lapsed claim (its process died) is taken over. Both are cleared
-- when the final result is stored. Rows from before this migration have neither: unclaimed.
ALTER TABLE command_ledger ADD COLUMN owner TEXT;
ALTER TABLE command_ledger ADD COLUMN lease_until INTEGER;
