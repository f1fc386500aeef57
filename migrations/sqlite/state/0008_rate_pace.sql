-- 0008_rate_pace: one per-second pace per API key, shared by every process on the store.
-- Append-only: never edit a migration once released; add a new numbered file instead.

-- The key's schedule of send slots: slots are `interval` apart (a little more than a second
-- divided by the per-second limit) and every process takes the next ones in a short write
-- transaction before it sends. `next_slot_ms` (Unix milliseconds) is the first slot nobody
-- has taken; slots taken by a process that was killed stay taken and go unused.
CREATE TABLE rate_pace (
    client_id    TEXT PRIMARY KEY,
    next_slot_ms INTEGER NOT NULL
) STRICT;
