-- 0006_budget_holds: the day's request count is what was spent plus what running processes
-- hold, and a hold lapses when its process is gone.
-- Append-only: never edit a migration once released; add a new numbered file instead.

-- `reserved` counted whole blocks taken ahead of time and never given back; from now on the
-- column counts requests spent (recorded when a process settles its hold). What was
-- reserved before this migration stays counted as spent.
ALTER TABLE rate_budget RENAME COLUMN reserved TO spent;

-- Requests a running process may still send today without asking again: at most about two
-- seconds of its rate. It is settled (what it spent moves to rate_budget.spent) whenever it
-- runs out, before it lapses and when the process stops. A hold past `expires_at_ms` (Unix
-- milliseconds) is not counted: its process was killed.
CREATE TABLE rate_budget_holds (
    client_id     TEXT NOT NULL,
    day           TEXT NOT NULL,                    -- YYYY-MM-DD, UTC
    owner         TEXT NOT NULL,                    -- one random id per running budget
    held          INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (client_id, day, owner)
) STRICT;
