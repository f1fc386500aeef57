//! SQL for the command ledger: the record that makes every command take effect once.
//!
//! A command is `in_progress` from its first attempt until its final result is stored; a
//! redelivered or re-sent command whose row is `done` gets its stored result again instead
//! of a second API call. `effect_ref` remembers what an attempt created (a contact id, a
//! campaign id) so that a later attempt checks before acting again.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::StoreError;

/// Where a command stands when a delivery of it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// Already finished: the stored result (JSON) is to be sent again.
    Done { result: String },
    /// Started (again): this is attempt number `attempts`.
    Started {
        attempts: u32,
        effect_ref: Option<String>,
    },
}

/// Records the start of an attempt, or finds the stored result, in a write transaction of
/// its own.
pub fn begin(
    conn: &mut Connection,
    account: &str,
    command_id: &str,
    command_type: &str,
    now: DateTime<Utc>,
) -> Result<Begun, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let begun = begin_in(&tx, account, command_id, command_type, now)?;
    tx.commit()?;
    Ok(begun)
}

/// [`begin`] inside a write transaction the caller holds (the store's group commit,
/// [`crate::store::Store::call_grouped`]): the read and the write must not be split by
/// another writer.
pub fn begin_in(
    tx: &Connection,
    account: &str,
    command_id: &str,
    command_type: &str,
    now: DateTime<Utc>,
) -> Result<Begun, StoreError> {
    // Statements are cached: every command runs these, and parsing them again each time
    // was a visible share of the store thread's time.
    let row: Option<(String, u32, Option<String>, Option<String>)> = tx
        .prepare_cached(
            "SELECT status, attempts, effect_ref, result FROM command_ledger
             WHERE account = ?1 AND command_id = ?2",
        )?
        .query_row(params![account, command_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let begun = match row {
        Some((status, _, _, Some(result))) if status == "done" => Begun::Done { result },
        Some((_, attempts, effect_ref, _)) => {
            // Every delivery counts, also one back from a wait queue: a delivery that began
            // may have reached the API before the daemon died, and the next one must know it
            // is a retry. Deliveries that were only parked take their count back (`uncount`).
            let attempts = attempts + 1;
            tx.prepare_cached(
                "UPDATE command_ledger SET attempts = ?3 WHERE account = ?1 AND command_id = ?2",
            )?
            .execute(params![account, command_id, attempts])?;
            Begun::Started {
                attempts,
                effect_ref,
            }
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO command_ledger (account, command_id, type, status, attempts, received_at)
                 VALUES (?1, ?2, ?3, 'in_progress', 1, ?4)",
            )?
            .execute(params![account, command_id, command_type, now.to_rfc3339()])?;
            Begun::Started {
                attempts: 1,
                effect_ref: None,
            }
        }
    };
    Ok(begun)
}

/// Takes back the attempt counted by [`begin`] (the command was parked, not tried).
pub fn uncount(conn: &Connection, account: &str, command_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE command_ledger SET attempts = max(attempts - 1, 0)
         WHERE account = ?1 AND command_id = ?2 AND status = 'in_progress'",
        params![account, command_id],
    )?;
    Ok(())
}

/// Remembers what an attempt created, before its result is final.
pub fn record_effect(
    conn: &Connection,
    account: &str,
    command_id: &str,
    effect_ref: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE command_ledger SET effect_ref = ?3 WHERE account = ?1 AND command_id = ?2",
        params![account, command_id, effect_ref],
    )?;
    Ok(())
}

/// Stores the final result. Inserts the row when the command never began (a rejected
/// message), and never overwrites a result already stored.
pub fn finish(
    conn: &Connection,
    account: &str,
    command_id: &str,
    command_type: &str,
    outcome: &str,
    result: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO command_ledger (account, command_id, type, status, attempts, outcome, result, received_at, finished_at)
             VALUES (?1, ?2, ?3, 'done', 1, ?4, ?5, ?6, ?6)
             ON CONFLICT (account, command_id) DO UPDATE SET
                 status = 'done', outcome = excluded.outcome, result = excluded.result, finished_at = excluded.finished_at
             WHERE command_ledger.status <> 'done'",
        )?
        .execute(params![account, command_id, command_type, outcome, result, now.to_rfc3339()])?;
    Ok(changed == 1)
}

/// [`finish`], or, when a result is stored already (another delivery of the command
/// finished first), that stored result.
pub fn finish_or_stored(
    conn: &Connection,
    account: &str,
    command_id: &str,
    command_type: &str,
    outcome: &str,
    result: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    if finish(
        conn,
        account,
        command_id,
        command_type,
        outcome,
        result,
        now,
    )? {
        return Ok(None);
    }
    result_of(conn, account, command_id)
}

/// Forgets a finished command that ended `rejected` or `failed`, so that a replay from the
/// dead-letter queue is processed afresh instead of answered from the ledger. Succeeded
/// commands are never forgotten: replaying one must not apply it twice.
pub fn forget_unsuccessful(
    conn: &Connection,
    account: &str,
    command_id: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM command_ledger
         WHERE account = ?1 AND command_id = ?2 AND status = 'done' AND outcome IN ('rejected', 'failed')",
        params![account, command_id],
    )? == 1)
}

/// Deletes up to `limit` finished commands that finished before `before`, oldest first;
/// returns how many. Commands still in progress are never deleted, whatever their age: a
/// parked command may come back after any time and must find its attempts and effect.
pub fn prune_finished(
    conn: &Connection,
    before: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    // `finished_at` is RFC 3339 in UTC throughout, so text order is time order and the
    // index on it serves the range.
    Ok(conn.execute(
        "DELETE FROM command_ledger WHERE rowid IN (
             SELECT rowid FROM command_ledger
             WHERE finished_at < ?1 AND status = 'done'
             ORDER BY finished_at LIMIT ?2)",
        params![before.to_rfc3339(), limit as i64],
    )?)
}

/// The stored result of a finished command.
pub fn result_of(
    conn: &Connection,
    account: &str,
    command_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT result FROM command_ledger WHERE account = ?1 AND command_id = ?2 AND status = 'done'",
            params![account, command_id],
            |r| r.get(0),
        )
        .optional()?)
}

/// When the command was first received (its first attempt began).
pub fn received_at(
    conn: &Connection,
    account: &str,
    command_id: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let text: Option<String> = conn
        .query_row(
            "SELECT received_at FROM command_ledger WHERE account = ?1 AND command_id = ?2",
            params![account, command_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc)))
}

/// How many attempts a command has begun (none when it never began).
pub fn attempts_of(
    conn: &Connection,
    account: &str,
    command_id: &str,
) -> Result<Option<u32>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT attempts FROM command_ledger WHERE account = ?1 AND command_id = ?2",
            params![account, command_id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Counts by status, for metrics and tests.
pub fn counts(conn: &Connection) -> Result<(i64, i64), StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FILTER (WHERE status = 'in_progress'), count(*) FILTER (WHERE status = 'done')
         FROM command_ledger",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate::migrate(&mut conn).unwrap();
        conn
    }

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_finished_command_replays_its_stored_result() {
        let mut conn = db();
        assert_eq!(
            begin(&mut conn, "default", "c1", "contact.get", now()).unwrap(),
            Begun::Started {
                attempts: 1,
                effect_ref: None
            }
        );
        assert!(
            finish(
                &conn,
                "default",
                "c1",
                "contact.get",
                "succeeded",
                "{\"r\":1}",
                now()
            )
            .unwrap()
        );
        assert_eq!(
            begin(&mut conn, "default", "c1", "contact.get", now()).unwrap(),
            Begun::Done {
                result: "{\"r\":1}".into()
            }
        );
        assert!(
            !finish(&conn, "default", "c1", "contact.get", "failed", "{}", now()).unwrap(),
            "a result is final"
        );
        assert_eq!(
            result_of(&conn, "default", "c1").unwrap().as_deref(),
            Some("{\"r\":1}")
        );
    }

    #[test]
    fn attempts_and_effects_carry_over_between_deliveries() {
        let mut conn = db();
        begin(&mut conn, "default", "c2", "contact.create", now()).unwrap();
        record_effect(&conn, "default", "c2", "contact-uuid").unwrap();
        assert_eq!(
            begin(&mut conn, "default", "c2", "contact.create", now()).unwrap(),
            Begun::Started {
                attempts: 2,
                effect_ref: Some("contact-uuid".into())
            }
        );
        uncount(&conn, "default", "c2").unwrap();
        assert_eq!(
            begin(&mut conn, "default", "c2", "contact.create", now()).unwrap(),
            Begun::Started {
                attempts: 2,
                effect_ref: Some("contact-uuid".into())
            },
            "a parked command coming back counts once: parking took its count back"
        );
    }

    #[test]
    fn pruning_deletes_only_commands_finished_before_the_cutoff() {
        let mut conn = db();
        let day = chrono::Duration::days(1);
        for (id, finished) in [("old-1", 40), ("old-2", 31), ("recent", 29)] {
            let at = now() - day * finished;
            begin(&mut conn, "a", id, "list.list", at).unwrap();
            finish(&conn, "a", id, "list.list", "succeeded", "{}", at).unwrap();
        }
        // Begun long ago and never finished (parked): kept.
        begin(&mut conn, "a", "parked", "contact.upsert", now() - day * 90).unwrap();
        let cutoff = now() - day * 30;
        assert_eq!(
            prune_finished(&conn, cutoff, 1).unwrap(),
            1,
            "the limit holds"
        );
        assert_eq!(
            result_of(&conn, "a", "old-1").unwrap(),
            None,
            "oldest first"
        );
        assert_eq!(prune_finished(&conn, cutoff, 100).unwrap(), 1);
        assert_eq!(prune_finished(&conn, cutoff, 100).unwrap(), 0);
        assert_eq!(result_of(&conn, "a", "old-2").unwrap(), None);
        assert!(result_of(&conn, "a", "recent").unwrap().is_some());
        assert!(matches!(
            begin(&mut conn, "a", "parked", "contact.upsert", now()).unwrap(),
            Begun::Started { attempts: 2, .. }
        ));
        // A pruned id is a new command when it comes again.
        assert_eq!(
            begin(&mut conn, "a", "old-1", "list.list", now()).unwrap(),
            Begun::Started {
                attempts: 1,
                effect_ref: None
            }
        );
    }

    #[test]
    fn the_same_id_in_two_accounts_is_two_commands() {
        let mut conn = db();
        begin(&mut conn, "a", "same", "list.list", now()).unwrap();
        finish(&conn, "a", "same", "list.list", "succeeded", "{}", now()).unwrap();
        assert!(matches!(
            begin(&mut conn, "b", "same", "list.list", now()).unwrap(),
            Begun::Started { attempts: 1, .. }
        ));
    }
}
