-- 0002_rate_pace: one per-second pace per API key, shared by every process on the store
-- (SQLite's 0008_rate_pace). Append-only: never edit a migration once released.

-- The key's schedule of send slots: slots are `interval` apart and every process takes the
-- next ones in one statement before it sends. `next_slot_ms` is the first slot nobody has
-- taken, in Unix milliseconds of the database's clock (each process translates it to its own,
-- so hosts whose clocks differ still share one schedule).
CREATE TABLE rate_pace (
    client_id    text PRIMARY KEY,
    next_slot_ms bigint NOT NULL
);
