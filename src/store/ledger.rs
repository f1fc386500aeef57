//! SQL for the command ledger: the record that makes every command take effect once.
//!
//! A command is `in_progress` from its first attempt until its final result is stored; a
//! redelivered or re-sent command whose row is `done` gets its stored result again instead
//! of a second API call. `effect_ref` remembers what an attempt created (a contact id, a
//! campaign id) so that a later attempt checks before acting again.
//!
//! `fingerprint` ([`crate::command::envelope::fingerprint`]) tells the same command from a
//! different one sent under an id already used: only the same command is answered from the
//! row. Rows stored before fingerprints existed have none and answer any command under their
//! id, as they always did.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::Store;
use super::error::StoreError;

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
    /// The id belongs to a different command (another fingerprint), of type `command_type`;
    /// its row is left as it is.
    Reused { command_type: String },
    /// Another process (`owner`) is working on the command and its claim has not lapsed:
    /// this delivery must not apply it. No attempt was counted and the row is left as it is.
    Claimed { owner: String },
}

/// Who claims a command in progress, and for how long: a random id of the running process
/// (its pipeline) and the lease, renewed while it works ([`Store::ledger_renew`]) and
/// cleared when the final result is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim<'a> {
    pub owner: &'a str,
    pub lease: std::time::Duration,
}

impl Claim<'_> {
    /// The lease in milliseconds, as the SQL of both engines takes it.
    pub(crate) fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

/// A command's row, as far as the decision about a new delivery needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub command_type: String,
    pub done: bool,
    pub fingerprint: Option<String>,
    /// The stored result, when done.
    pub result: Option<String>,
}

impl Entry {
    /// True when `fingerprint` is another command's than this row's (rows without one
    /// match every command).
    pub fn belongs_to_another(&self, fingerprint: Option<&str>) -> bool {
        matches!((self.fingerprint.as_deref(), fingerprint), (Some(mine), Some(theirs)) if mine != theirs)
    }
}

/// Records the start of an attempt, or finds the stored result, in a write transaction of
/// its own.
pub fn begin(
    conn: &mut Connection,
    account: &str,
    command_id: &str,
    command_type: &str,
    fingerprint: &str,
    claim: Claim<'_>,
    now: DateTime<Utc>,
) -> Result<Begun, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let begun = begin_in(
        &tx,
        account,
        command_id,
        command_type,
        fingerprint,
        claim,
        now,
    )?;
    tx.commit()?;
    Ok(begun)
}

/// [`begin`] inside a write transaction the caller holds (the store's group commit,
/// [`crate::store::Store::call_grouped`]): the read and the write must not be split by
/// another writer: the claim is judged and taken (or renewed) in the same transaction, so of
/// two processes beginning the same command one starts it and the other finds it claimed.
/// Leases are judged by SQLite's clock ([`clock_ms`]: the host's, which every process
/// sharing the file shares), not by `now`, which dates the row.
pub fn begin_in(
    tx: &Connection,
    account: &str,
    command_id: &str,
    command_type: &str,
    fingerprint: &str,
    claim: Claim<'_>,
    now: DateTime<Utc>,
) -> Result<Begun, StoreError> {
    // Statements are cached: every command runs these, and parsing them again each time
    // was a visible share of the store thread's time.
    struct Row {
        status: String,
        attempts: u32,
        effect_ref: Option<String>,
        result: Option<String>,
        fingerprint: Option<String>,
        command_type: String,
        owner: Option<String>,
        lease_until: Option<i64>,
    }
    let row: Option<Row> = tx
        .prepare_cached(
            "SELECT status, attempts, effect_ref, result, fingerprint, type, owner, lease_until
             FROM command_ledger WHERE account = ?1 AND command_id = ?2",
        )?
        .query_row(params![account, command_id], |r| {
            Ok(Row {
                status: r.get(0)?,
                attempts: r.get(1)?,
                effect_ref: r.get(2)?,
                result: r.get(3)?,
                fingerprint: r.get(4)?,
                command_type: r.get(5)?,
                owner: r.get(6)?,
                lease_until: r.get(7)?,
            })
        })
        .optional()?;
    let now_ms = clock_ms(tx)?;
    let lease_until = now_ms.saturating_add(claim.lease_ms());
    let begun = match row {
        Some(row) if row.fingerprint.as_deref().is_some_and(|s| s != fingerprint) => {
            Begun::Reused {
                command_type: row.command_type,
            }
        }
        Some(Row {
            status,
            result: Some(result),
            ..
        }) if status == "done" => Begun::Done { result },
        Some(Row {
            status,
            owner: Some(owner),
            lease_until: Some(until),
            ..
        }) if status == "in_progress" && owner != claim.owner && until > now_ms => {
            Begun::Claimed { owner }
        }
        Some(row) => {
            // Every delivery counts, also one back from a wait queue: a delivery that began
            // may have reached the API before the daemon died, and the next one must know it
            // is a retry. Deliveries that were only parked take their count back (`uncount`).
            // A row begun before fingerprints existed takes this delivery's. The claim is
            // this process's from now on (taken, taken over from a lapsed one, or renewed).
            let attempts = row.attempts + 1;
            tx.prepare_cached(
                "UPDATE command_ledger SET attempts = ?3, fingerprint = coalesce(fingerprint, ?4),
                     owner = ?5, lease_until = ?6
                 WHERE account = ?1 AND command_id = ?2",
            )?
            .execute(params![
                account,
                command_id,
                attempts,
                fingerprint,
                claim.owner,
                lease_until
            ])?;
            Begun::Started {
                attempts,
                effect_ref: row.effect_ref,
            }
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO command_ledger (account, command_id, type, status, attempts, received_at, fingerprint, owner, lease_until)
                 VALUES (?1, ?2, ?3, 'in_progress', 1, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                account,
                command_id,
                command_type,
                now.to_rfc3339(),
                fingerprint,
                claim.owner,
                lease_until
            ])?;
            Begun::Started {
                attempts: 1,
                effect_ref: None,
            }
        }
    };
    Ok(begun)
}

/// The time by SQLite's clock (the host's wall clock), in Unix milliseconds: what leases are
/// judged by, so that a process whose clock is injected (tests, a replay) still agrees with
/// the others on whose claim holds.
fn clock_ms(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)")?
        .query_row([], |r| r.get(0))?)
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

/// Extends `owner`'s claim on a command in progress to `lease` from now (by SQLite's clock,
/// [`clock_ms`]); false when the claim
/// is not (or no longer) `owner`'s, or the command is done.
pub fn renew(
    conn: &Connection,
    account: &str,
    command_id: &str,
    claim: Claim<'_>,
) -> Result<bool, StoreError> {
    let until = clock_ms(conn)?.saturating_add(claim.lease_ms());
    let changed = conn
        .prepare_cached(
            "UPDATE command_ledger SET lease_until = ?4
             WHERE account = ?1 AND command_id = ?2 AND owner = ?3 AND status = 'in_progress'",
        )?
        .execute(params![account, command_id, claim.owner, until])?;
    Ok(changed == 1)
}

/// Gives up `owner`'s claim on a command in progress (it waits in a queue, not in this
/// process): its next delivery may be taken by any process at once.
pub fn release(
    conn: &Connection,
    account: &str,
    command_id: &str,
    owner: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE command_ledger SET owner = NULL, lease_until = NULL
         WHERE account = ?1 AND command_id = ?2 AND owner = ?3 AND status = 'in_progress'",
    )?
    .execute(params![account, command_id, owner])?;
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

/// Forgets what an earlier attempt recorded (`effect_ref` back to NULL): a later attempt must
/// not answer from it.
pub fn clear_effect(conn: &Connection, account: &str, command_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE command_ledger SET effect_ref = NULL WHERE account = ?1 AND command_id = ?2",
        params![account, command_id],
    )?;
    Ok(())
}

/// The row of a command, if there is one.
pub fn entry(
    conn: &Connection,
    account: &str,
    command_id: &str,
) -> Result<Option<Entry>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT type, status, fingerprint, result FROM command_ledger
             WHERE account = ?1 AND command_id = ?2",
        )?
        .query_row(params![account, command_id], |r| {
            Ok(Entry {
                command_type: r.get(0)?,
                done: r.get::<_, String>(1)? == "done",
                fingerprint: r.get(2)?,
                result: r.get(3)?,
            })
        })
        .optional()?)
}

/// A final result to store: which command, how it ended, the result message (JSON).
#[derive(Debug, Clone, Copy)]
pub struct Finish<'a> {
    pub account: &'a str,
    pub command_id: &'a str,
    pub command_type: &'a str,
    pub outcome: &'a str,
    pub result: &'a str,
    /// Recorded when the row is inserted here (a rejected message that never began), or
    /// when the row has none yet.
    pub fingerprint: Option<&'a str>,
}

/// Stores the final result of a command that began (its row has its fingerprint). Inserts
/// the row when there is none, and never overwrites a result already stored.
pub fn finish(
    conn: &Connection,
    account: &str,
    command_id: &str,
    command_type: &str,
    outcome: &str,
    result: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    finish_entry(
        conn,
        Finish {
            account,
            command_id,
            command_type,
            outcome,
            result,
            fingerprint: None,
        },
        now,
    )
}

/// Stores the final result. Inserts the row when the command never began (a rejected
/// message), and never overwrites a result already stored. The claim on the command ends.
pub fn finish_entry(
    conn: &Connection,
    f: Finish<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO command_ledger (account, command_id, type, status, attempts, outcome, result, received_at, finished_at, fingerprint)
             VALUES (?1, ?2, ?3, 'done', 1, ?4, ?5, ?6, ?6, ?7)
             ON CONFLICT (account, command_id) DO UPDATE SET
                 status = 'done', outcome = excluded.outcome, result = excluded.result, finished_at = excluded.finished_at,
                 fingerprint = coalesce(command_ledger.fingerprint, excluded.fingerprint),
                 owner = NULL, lease_until = NULL
             WHERE command_ledger.status <> 'done'",
        )?
        .execute(params![
            f.account,
            f.command_id,
            f.command_type,
            f.outcome,
            f.result,
            now.to_rfc3339(),
            f.fingerprint
        ])?;
    Ok(changed == 1)
}

/// [`finish`], or, when a result is stored already (another delivery of the command
/// finished first), that stored result.
pub fn finish_or_stored(
    conn: &Connection,
    f: Finish<'_>,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    if finish_entry(conn, f, now)? {
        return Ok(None);
    }
    result_of(conn, f.account, f.command_id)
}

/// Forgets a finished command that ended `rejected` or `failed`, so that a replay from the
/// dead-letter queue is processed afresh instead of answered from the ledger. Succeeded
/// commands are never forgotten: replaying one must not apply it twice. With a
/// `fingerprint`, only that command's row is forgotten (a dead letter of a command refused
/// with `id_reused` must not make the ledger forget the command that owns the id).
pub fn forget_unsuccessful(
    conn: &Connection,
    account: &str,
    command_id: &str,
    fingerprint: Option<&str>,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM command_ledger
         WHERE account = ?1 AND command_id = ?2 AND status = 'done' AND outcome IN ('rejected', 'failed')
           AND (fingerprint IS NULL OR ?3 IS NULL OR fingerprint = ?3)",
        params![account, command_id, fingerprint],
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

/// What the ledger knows of a command a dead letter carries: its stored result (when done),
/// how many attempts it began, and when it was first received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub result: Option<String>,
    pub attempts: Option<u32>,
    pub received_at: Option<DateTime<Utc>>,
}

/// The ledger's typed operations: the only way code outside the store reaches
/// `command_ledger`. The small writes of the pipeline's hot path share the group commit
/// ([`Store::call_grouped`]); the rest run on their own.
impl Store {
    /// [`begin_in`] under the group commit: records the start of an attempt, or finds the
    /// stored result; answered once the shared transaction has committed.
    pub async fn ledger_begin(
        &self,
        account: &str,
        command_id: &str,
        command_type: &str,
        fingerprint: &str,
        claim: Claim<'_>,
        now: DateTime<Utc>,
    ) -> Result<Begun, StoreError> {
        if let Some(pg) = self.pg() {
            return pg
                .ledger_begin(account, command_id, command_type, fingerprint, claim, now)
                .await;
        }
        let (account, id, command_type, fingerprint, owner, lease) = (
            account.to_owned(),
            command_id.to_owned(),
            command_type.to_owned(),
            fingerprint.to_owned(),
            claim.owner.to_owned(),
            claim.lease,
        );
        self.call_grouped(move |conn| {
            let claim = Claim {
                owner: &owner,
                lease,
            };
            begin_in(conn, &account, &id, &command_type, &fingerprint, claim, now)
        })
        .await
    }

    /// [`renew`] for each of `command_ids` in one operation (the group commit on SQLite,
    /// one statement on PostgreSQL, whose lease runs from its `now()`): how many of the
    /// claims are still `claim.owner`'s.
    pub async fn ledger_renew(
        &self,
        account: &str,
        command_ids: &[String],
        claim: Claim<'_>,
    ) -> Result<usize, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ledger_renew_all(account, command_ids, claim).await;
        }
        let (account, ids, owner, lease) = (
            account.to_owned(),
            command_ids.to_vec(),
            claim.owner.to_owned(),
            claim.lease,
        );
        self.call_grouped(move |conn| {
            let claim = Claim {
                owner: &owner,
                lease,
            };
            let mut held = 0;
            for id in &ids {
                held += usize::from(renew(conn, &account, id, claim)?);
            }
            Ok(held)
        })
        .await
    }

    /// [`release`] under the group commit.
    pub async fn ledger_release(
        &self,
        account: &str,
        command_id: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ledger_release(account, command_id, owner).await;
        }
        let (account, id, owner) = (account.to_owned(), command_id.to_owned(), owner.to_owned());
        self.call_grouped(move |conn| release(conn, &account, &id, &owner))
            .await
    }

    /// [`uncount`] under the group commit.
    pub async fn ledger_uncount(&self, account: &str, command_id: &str) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ledger_uncount(account, command_id).await;
        }
        let (account, id) = (account.to_owned(), command_id.to_owned());
        self.call_grouped(move |conn| uncount(conn, &account, &id))
            .await
    }

    /// [`clear_effect`] under the group commit.
    pub async fn ledger_clear_effect(
        &self,
        account: &str,
        command_id: &str,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ledger_clear_effect(account, command_id).await;
        }
        let (account, id) = (account.to_owned(), command_id.to_owned());
        self.call_grouped(move |conn| clear_effect(conn, &account, &id))
            .await
    }

    /// [`record_effect`] under the group commit.
    pub async fn ledger_record_effect(
        &self,
        account: &str,
        command_id: &str,
        effect_ref: &str,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg
                .ledger_record_effect(account, command_id, effect_ref)
                .await;
        }
        let (account, id, effect) = (
            account.to_owned(),
            command_id.to_owned(),
            effect_ref.to_owned(),
        );
        self.call_grouped(move |conn| record_effect(conn, &account, &id, &effect))
            .await
    }

    /// [`finish_or_stored`] under the group commit: stores the final result, or returns the
    /// result another delivery stored first.
    pub async fn ledger_finish_or_stored(
        &self,
        f: Finish<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ledger_finish_or_stored(f, now).await;
        }
        let (account, id, command_type, outcome, result, fingerprint) = (
            f.account.to_owned(),
            f.command_id.to_owned(),
            f.command_type.to_owned(),
            f.outcome.to_owned(),
            f.result.to_owned(),
            f.fingerprint.map(str::to_owned),
        );
        self.call_grouped(move |conn| {
            finish_or_stored(
                conn,
                Finish {
                    account: &account,
                    command_id: &id,
                    command_type: &command_type,
                    outcome: &outcome,
                    result: &result,
                    fingerprint: fingerprint.as_deref(),
                },
                now,
            )
        })
        .await
    }

    /// The row of a command, if there is one ([`entry`]).
    pub async fn ledger_entry(
        &self,
        account: &str,
        command_id: &str,
    ) -> Result<Option<Entry>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ledger_entry(account, command_id).await;
        }
        let (account, id) = (account.to_owned(), command_id.to_owned());
        self.call(move |conn| entry(conn, &account, &id)).await
    }

    /// The stored result of a finished command ([`result_of`]).
    pub async fn ledger_result_of(
        &self,
        account: &str,
        command_id: &str,
    ) -> Result<Option<String>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ledger_result_of(account, command_id).await;
        }
        let (account, id) = (account.to_owned(), command_id.to_owned());
        self.call(move |conn| result_of(conn, &account, &id)).await
    }

    /// When the command was first received ([`received_at`]).
    pub async fn ledger_received_at(
        &self,
        account: &str,
        command_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ledger_received_at(account, command_id).await;
        }
        let (account, id) = (account.to_owned(), command_id.to_owned());
        self.call(move |conn| received_at(conn, &account, &id))
            .await
    }

    /// The stored result, the attempts and the first receipt of a command, read in one
    /// operation of the store thread.
    pub async fn ledger_history(
        &self,
        account: &str,
        command_id: &str,
    ) -> Result<History, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ledger_history(account, command_id).await;
        }
        let (account, id) = (account.to_owned(), command_id.to_owned());
        self.call(move |conn| {
            Ok(History {
                result: result_of(conn, &account, &id)?,
                attempts: attempts_of(conn, &account, &id)?,
                received_at: received_at(conn, &account, &id)?,
            })
        })
        .await
    }

    /// [`forget_unsuccessful`]: true when a rejected or failed result was forgotten.
    pub async fn ledger_forget_unsuccessful(
        &self,
        account: &str,
        command_id: &str,
        fingerprint: Option<&str>,
    ) -> Result<bool, StoreError> {
        if let Some(pg) = self.pg() {
            return pg
                .ledger_forget_unsuccessful(account, command_id, fingerprint)
                .await;
        }
        let (account, id, fingerprint) = (
            account.to_owned(),
            command_id.to_owned(),
            fingerprint.map(str::to_owned),
        );
        self.call(move |conn| forget_unsuccessful(conn, &account, &id, fingerprint.as_deref()))
            .await
    }

    /// How many rows the ledger holds, whatever their status (for tests and operators).
    pub async fn ledger_rows(&self) -> Result<i64, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ledger_rows().await;
        }
        self.call(|conn| {
            Ok(conn.query_row("SELECT count(*) FROM command_ledger", [], |r| r.get(0))?)
        })
        .await
    }
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

    const ME: Claim<'static> = Claim {
        owner: "me",
        lease: std::time::Duration::from_secs(60),
    };

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_finished_command_replays_its_stored_result() {
        let mut conn = db();
        assert_eq!(
            begin(&mut conn, "default", "c1", "contact.get", "fp", ME, now()).unwrap(),
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
            begin(&mut conn, "default", "c1", "contact.get", "fp", ME, now()).unwrap(),
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

    const OTHER: Claim<'static> = Claim {
        owner: "other",
        lease: std::time::Duration::from_secs(60),
    };

    fn claim_of(conn: &Connection, id: &str) -> (Option<String>, Option<i64>) {
        conn.query_row(
            "SELECT owner, lease_until FROM command_ledger WHERE account = 'a' AND command_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    /// A claim that lapses at once (the process that took it is as good as dead).
    const LAPSING: Claim<'static> = Claim {
        owner: "me",
        lease: std::time::Duration::ZERO,
    };

    #[test]
    fn a_command_claimed_by_another_process_is_not_started_again_until_its_lease_lapses() {
        let mut conn = db();
        assert_eq!(
            begin(&mut conn, "a", "c", "contact.create", "fp", ME, now()).unwrap(),
            Begun::Started {
                attempts: 1,
                effect_ref: None
            }
        );
        record_effect(&conn, "a", "c", "contact-uuid").unwrap();
        assert_eq!(
            begin(&mut conn, "a", "c", "contact.create", "fp", OTHER, now()).unwrap(),
            Begun::Claimed { owner: "me".into() },
            "another owner within the lease"
        );
        assert_eq!(
            attempts_of(&conn, "a", "c").unwrap(),
            Some(1),
            "a claimed delivery counts no attempt"
        );
        assert_eq!(
            begin(&mut conn, "a", "c", "contact.create", "fp", ME, now()).unwrap(),
            Begun::Started {
                attempts: 2,
                effect_ref: Some("contact-uuid".into())
            },
            "the owner itself (a redelivery in the same process) renews its claim"
        );
        assert!(
            !renew(&conn, "a", "c", OTHER).unwrap(),
            "only the owner renews"
        );
        // The owner renews with a lease that lapses at once, as if it died right after: the
        // next delivery takes the command over and knows what the first attempts created.
        assert!(renew(&conn, "a", "c", LAPSING).unwrap());
        assert_eq!(
            begin(&mut conn, "a", "c", "contact.create", "fp", OTHER, now()).unwrap(),
            Begun::Started {
                attempts: 3,
                effect_ref: Some("contact-uuid".into())
            }
        );
        assert_eq!(claim_of(&conn, "c").0.as_deref(), Some("other"));
        assert!(
            !renew(&conn, "a", "c", ME).unwrap(),
            "the old owner's claim is gone"
        );
        assert!(matches!(
            begin(&mut conn, "a", "c", "contact.create", "fp", ME, now()).unwrap(),
            Begun::Claimed { owner } if owner == "other"
        ));
        assert!(
            finish(
                &conn,
                "a",
                "c",
                "contact.create",
                "succeeded",
                "{\"r\":1}",
                now()
            )
            .unwrap()
        );
        assert_eq!(
            claim_of(&conn, "c"),
            (None, None),
            "finishing clears the claim"
        );
        assert_eq!(
            begin(&mut conn, "a", "c", "contact.create", "fp", ME, now()).unwrap(),
            Begun::Done {
                result: "{\"r\":1}".into()
            }
        );
        assert!(
            !renew(&conn, "a", "c", OTHER).unwrap(),
            "a done command has no claim"
        );
    }

    #[test]
    fn two_processes_racing_on_one_sqlite_file_start_a_command_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.db");
        migrate::migrate(&mut Connection::open(&path).unwrap()).unwrap();
        for i in 0..20 {
            let id = format!("race-{i}");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let racers: Vec<_> = [ME, OTHER]
                .into_iter()
                .map(|claim| {
                    let (path, id, barrier) = (path.clone(), id.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        // A connection of its own, as another process has.
                        let mut conn = Connection::open(&path).unwrap();
                        conn.busy_timeout(std::time::Duration::from_secs(10))
                            .unwrap();
                        barrier.wait();
                        begin(&mut conn, "a", &id, "contact.create", "fp", claim, now()).unwrap()
                    })
                })
                .collect();
            let answers: Vec<Begun> = racers.into_iter().map(|r| r.join().unwrap()).collect();
            let started = answers
                .iter()
                .filter(|b| matches!(b, Begun::Started { attempts: 1, .. }))
                .count();
            let claimed = answers
                .iter()
                .filter(|b| matches!(b, Begun::Claimed { .. }))
                .count();
            assert_eq!((started, claimed), (1, 1), "{id}: {answers:?}");
        }
    }

    #[test]
    fn a_released_claim_is_taken_at_once_by_another_process() {
        let mut conn = db();
        begin(&mut conn, "a", "r", "contact.create", "fp", ME, now()).unwrap();
        release(&conn, "a", "r", "other").unwrap();
        assert!(
            matches!(
                begin(&mut conn, "a", "r", "contact.create", "fp", OTHER, now()).unwrap(),
                Begun::Claimed { .. }
            ),
            "only the owner releases"
        );
        release(&conn, "a", "r", "me").unwrap();
        assert_eq!(claim_of(&conn, "r"), (None, None));
        assert_eq!(
            begin(&mut conn, "a", "r", "contact.create", "fp", OTHER, now()).unwrap(),
            Begun::Started {
                attempts: 2,
                effect_ref: None
            }
        );
    }

    #[test]
    fn attempts_and_effects_carry_over_between_deliveries() {
        let mut conn = db();
        begin(
            &mut conn,
            "default",
            "c2",
            "contact.create",
            "fp",
            ME,
            now(),
        )
        .unwrap();
        record_effect(&conn, "default", "c2", "contact-uuid").unwrap();
        assert_eq!(
            begin(
                &mut conn,
                "default",
                "c2",
                "contact.create",
                "fp",
                ME,
                now()
            )
            .unwrap(),
            Begun::Started {
                attempts: 2,
                effect_ref: Some("contact-uuid".into())
            }
        );
        uncount(&conn, "default", "c2").unwrap();
        assert_eq!(
            begin(
                &mut conn,
                "default",
                "c2",
                "contact.create",
                "fp",
                ME,
                now()
            )
            .unwrap(),
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
            begin(&mut conn, "a", id, "list.list", "fp", ME, at).unwrap();
            finish(&conn, "a", id, "list.list", "succeeded", "{}", at).unwrap();
        }
        // Begun long ago and never finished (parked): kept.
        begin(
            &mut conn,
            "a",
            "parked",
            "contact.upsert",
            "fp",
            ME,
            now() - day * 90,
        )
        .unwrap();
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
            begin(&mut conn, "a", "parked", "contact.upsert", "fp", ME, now()).unwrap(),
            Begun::Started { attempts: 2, .. }
        ));
        // A pruned id is a new command when it comes again.
        assert_eq!(
            begin(&mut conn, "a", "old-1", "list.list", "fp", ME, now()).unwrap(),
            Begun::Started {
                attempts: 1,
                effect_ref: None
            }
        );
    }

    #[test]
    fn the_same_id_in_two_accounts_is_two_commands() {
        let mut conn = db();
        begin(&mut conn, "a", "same", "list.list", "fp", ME, now()).unwrap();
        finish(&conn, "a", "same", "list.list", "succeeded", "{}", now()).unwrap();
        assert!(matches!(
            begin(&mut conn, "b", "same", "list.list", "fp", ME, now()).unwrap(),
            Begun::Started { attempts: 1, .. }
        ));
    }

    #[test]
    fn another_command_under_a_used_id_is_told_apart_and_leaves_the_row_alone() {
        let mut conn = db();
        begin(&mut conn, "a", "c", "contact.upsert", "one", ME, now()).unwrap();
        assert_eq!(
            begin(&mut conn, "a", "c", "contact.delete", "two", ME, now()).unwrap(),
            Begun::Reused {
                command_type: "contact.upsert".into()
            },
            "while the first is in progress"
        );
        finish_entry(
            &conn,
            Finish {
                account: "a",
                command_id: "c",
                command_type: "contact.upsert",
                outcome: "succeeded",
                result: "{\"first\":1}",
                fingerprint: None,
            },
            now(),
        )
        .unwrap();
        assert!(matches!(
            begin(&mut conn, "a", "c", "contact.upsert", "two", ME, now()).unwrap(),
            Begun::Reused { .. }
        ));
        assert_eq!(
            begin(&mut conn, "a", "c", "contact.upsert", "one", ME, now()).unwrap(),
            Begun::Done {
                result: "{\"first\":1}".into()
            }
        );
        let entry = entry(&conn, "a", "c").unwrap().unwrap();
        assert_eq!(entry.fingerprint.as_deref(), Some("one"));
        assert!(entry.belongs_to_another(Some("two")));
        assert!(!entry.belongs_to_another(Some("one")));
        assert!(!entry.belongs_to_another(None));
        // A dead letter of the other command does not make the ledger forget this one.
        assert!(!forget_unsuccessful(&conn, "a", "c", Some("two")).unwrap());
    }

    #[test]
    fn a_rejected_message_is_stored_with_its_fingerprint_and_forgotten_only_by_it() {
        let conn = db();
        let rejected = Finish {
            account: "a",
            command_id: "r",
            command_type: "contact.upsert",
            outcome: "rejected",
            result: "{}",
            fingerprint: Some("bad"),
        };
        assert!(finish_entry(&conn, rejected, now()).unwrap());
        assert_eq!(
            entry(&conn, "a", "r")
                .unwrap()
                .unwrap()
                .fingerprint
                .as_deref(),
            Some("bad")
        );
        assert!(!forget_unsuccessful(&conn, "a", "r", Some("other")).unwrap());
        assert!(forget_unsuccessful(&conn, "a", "r", Some("bad")).unwrap());
    }

    #[test]
    fn rows_from_before_fingerprints_still_replay_and_an_unfinished_one_adopts_one() {
        // A store at schema 4 (before fingerprints) with a finished and an unfinished command.
        let mut conn = Connection::open_in_memory().unwrap();
        let before: Vec<_> = migrate::SQLITE_STATE
            .iter()
            .copied()
            .filter(|m| m.version <= 4)
            .collect();
        migrate::apply(&mut conn, &before).unwrap();
        conn.execute_batch(
            "INSERT INTO command_ledger (account, command_id, type, status, attempts, outcome, result, received_at, finished_at)
             VALUES ('a', 'old-done', 'list.list', 'done', 1, 'succeeded', '{\"old\":1}', '2026-11-01T00:00:00Z', '2026-11-01T00:00:01Z');
             INSERT INTO command_ledger (account, command_id, type, status, attempts, received_at)
             VALUES ('a', 'old-open', 'contact.upsert', 'in_progress', 1, '2026-11-01T00:00:00Z');",
        )
        .unwrap();
        let report = migrate::migrate(&mut conn).unwrap();
        assert_eq!(report.from_version, 4);
        assert!(
            report
                .applied
                .contains(&"0005_ledger_fingerprint".to_owned())
        );
        for fingerprint in ["any", "other"] {
            assert_eq!(
                begin(
                    &mut conn,
                    "a",
                    "old-done",
                    "list.list",
                    fingerprint,
                    ME,
                    now()
                )
                .unwrap(),
                Begun::Done {
                    result: "{\"old\":1}".into()
                },
                "a row without a fingerprint replays as before"
            );
        }
        assert!(matches!(
            begin(
                &mut conn,
                "a",
                "old-open",
                "contact.upsert",
                "mine",
                ME,
                now()
            )
            .unwrap(),
            Begun::Started { attempts: 2, .. }
        ));
        assert!(matches!(
            begin(
                &mut conn,
                "a",
                "old-open",
                "contact.upsert",
                "yours",
                ME,
                now()
            )
            .unwrap(),
            Begun::Reused { .. }
        ));
    }
}
