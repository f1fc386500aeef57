//! The command ledger on PostgreSQL: the same operations and answers as
//! [`crate::store::ledger`]. A delivery's claim on a command is atomic across processes: one
//! `INSERT … ON CONFLICT DO UPDATE … RETURNING` inserts the row, or, on the locked existing
//! row, either finds it claimed by another process whose lease has not lapsed (left as it
//! is) or takes the claim and counts the attempt, in one round trip. Leases are judged by the
//! database's `now()`, so hosts whose clocks disagree still agree on whose claim holds.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use super::{PgStore, to_u32};
use crate::store::error::StoreError;
use crate::store::ledger::{Begun, Claim, Entry, Finish, History};

/// `ledger_begin`'s statement. `keep`: the row is another command's (another fingerprint),
/// done with a result, or claimed by another process whose lease holds and which is not known
/// dead (a registered replica whose liveness lock no session holds is dead: its claims are
/// taken over at once, see [`super::replicas`]); it is left as it is. Otherwise every
/// delivery counts (see `ledger::begin_in`), a row begun before fingerprints existed takes
/// this delivery's, and the claim becomes this owner's.
static BEGIN_SQL: LazyLock<String> = LazyLock::new(|| {
    let dead = super::replicas::owner_is_dead("l.owner");
    format!(
        "INSERT INTO command_ledger AS l (account, command_id, type, status, attempts, received_at, fingerprint, owner, lease_until)
                 VALUES ($1, $2, $3, 'in_progress', 1, $4, $5, $6, now() + $7::bigint * interval '1 millisecond')
                 ON CONFLICT (account, command_id) DO UPDATE SET
                     attempts = CASE
                         WHEN (l.fingerprint IS NOT NULL AND l.fingerprint <> excluded.fingerprint)
                           OR (l.status = 'done' AND l.result IS NOT NULL)
                           OR (l.status = 'in_progress' AND l.owner <> excluded.owner AND l.lease_until > now() AND NOT {dead})
                         THEN l.attempts ELSE l.attempts + 1 END,
                     owner = CASE
                         WHEN (l.fingerprint IS NOT NULL AND l.fingerprint <> excluded.fingerprint)
                           OR (l.status = 'done' AND l.result IS NOT NULL)
                           OR (l.status = 'in_progress' AND l.owner <> excluded.owner AND l.lease_until > now() AND NOT {dead})
                         THEN l.owner ELSE excluded.owner END,
                     lease_until = CASE
                         WHEN (l.fingerprint IS NOT NULL AND l.fingerprint <> excluded.fingerprint)
                           OR (l.status = 'done' AND l.result IS NOT NULL)
                           OR (l.status = 'in_progress' AND l.owner <> excluded.owner AND l.lease_until > now() AND NOT {dead})
                         THEN l.lease_until ELSE excluded.lease_until END,
                     fingerprint = coalesce(l.fingerprint, CASE
                         WHEN l.status = 'done' AND l.result IS NOT NULL
                         THEN NULL ELSE excluded.fingerprint END)
                 RETURNING status, attempts, effect_ref, result, fingerprint, type, owner"
    )
});

impl PgStore {
    /// Records the start of an attempt, or finds the stored result
    /// ([`crate::store::Store::ledger_begin`]), in one statement: the row is inserted, or
    /// the existing row is locked and — unless it is done, another command's, or claimed by
    /// another owner whose lease runs past the database's `now()` and who is not known dead —
    /// its attempt counted and the claim taken for `claim.owner` until `now() + claim.lease`.
    pub async fn ledger_begin(
        &self,
        account: &str,
        command_id: &str,
        command_type: &str,
        fingerprint: &str,
        claim: Claim<'_>,
        now: DateTime<Utc>,
    ) -> Result<Begun, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&BEGIN_SQL)
            .await
            .map_err(|e| self.error(e))?;
        let lease_ms = claim.lease_ms();
        let row = client
            .query_one(
                &stmt,
                &[
                    &account,
                    &command_id,
                    &command_type,
                    &now,
                    &fingerprint,
                    &claim.owner,
                    &lease_ms,
                ],
            )
            .await
            .map_err(|e| self.error(e))?;
        let status: String = row.get(0);
        let result: Option<String> = row.get(3);
        let stored: Option<String> = row.get(4);
        let owner: Option<String> = row.get(6);
        Ok(match (stored, result) {
            (Some(stored), _) if stored != fingerprint => Begun::Reused {
                command_type: row.get(5),
            },
            (_, Some(result)) if status == "done" => Begun::Done { result },
            // Not taken: the claim stayed another owner's.
            _ if owner.as_deref().is_some_and(|o| o != claim.owner) => Begun::Claimed {
                owner: owner.unwrap_or_default(),
            },
            _ => Begun::Started {
                attempts: to_u32(row.get(1)),
                effect_ref: row.get(2),
            },
        })
    }

    /// Extends `claim.owner`'s claim on a command in progress to the database's
    /// `now() + claim.lease`; false when the claim is not (or no longer) its own.
    pub async fn ledger_renew(
        &self,
        account: &str,
        command_id: &str,
        claim: Claim<'_>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE command_ledger SET lease_until = now() + $4::bigint * interval '1 millisecond'
                 WHERE account = $1 AND command_id = $2 AND owner = $3 AND status = 'in_progress'",
            )
            .await
            .map_err(|e| self.error(e))?;
        let lease_ms = claim.lease_ms();
        let changed = client
            .execute(&stmt, &[&account, &command_id, &claim.owner, &lease_ms])
            .await
            .map_err(|e| self.error(e))?;
        Ok(changed == 1)
    }

    /// [`PgStore::ledger_renew`] for each of `command_ids`, in one statement: how many of the
    /// claims are still `claim.owner`'s and were renewed. Rows another transaction is writing
    /// (a batch's end storing its results) are skipped, not waited for: that transaction
    /// writes them one by one, and a renewal locking the set in its own order would deadlock
    /// with it. A skipped row is being finished or taken over; the next renewal sees which.
    ///
    /// The statement is prepared afresh at each call, so that the server plans it for the ids
    /// it is given (a probe of the key per id): a cached statement may run a generic plan made
    /// while the ledger was new, which reads every command of the account (see
    /// [`super::replicas::LEDGER_HOLDS`]). Renewals run once per lease tick for long-running
    /// commands only; the extra round trip costs nothing that matters there.
    pub async fn ledger_renew_all(
        &self,
        account: &str,
        command_ids: &[String],
        claim: Claim<'_>,
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE command_ledger SET lease_until = now() + $4::bigint * interval '1 millisecond'
                 WHERE account = $1 AND command_id IN (
                     SELECT command_id FROM command_ledger
                     WHERE account = $1 AND command_id = ANY($2) AND owner = $3
                       AND status = 'in_progress'
                     FOR UPDATE SKIP LOCKED)
                   AND owner = $3 AND status = 'in_progress'",
                &[&account, &command_ids, &claim.owner, &claim.lease_ms()],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(changed as usize)
    }

    /// Gives up `owner`'s claim on a command in progress.
    pub async fn ledger_release(
        &self,
        account: &str,
        command_id: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE command_ledger SET owner = NULL, lease_until = NULL
                 WHERE account = $1 AND command_id = $2 AND owner = $3 AND status = 'in_progress'",
            )
            .await
            .map_err(|e| self.error(e))?;
        client
            .execute(&stmt, &[&account, &command_id, &owner])
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Takes back the attempt counted by [`PgStore::ledger_begin`].
    pub async fn ledger_uncount(&self, account: &str, command_id: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE command_ledger SET attempts = greatest(attempts - 1, 0)
                 WHERE account = $1 AND command_id = $2 AND status = 'in_progress'",
            )
            .await
            .map_err(|e| self.error(e))?;
        client
            .execute(&stmt, &[&account, &command_id])
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Remembers what an attempt created, before its result is final.
    pub async fn ledger_record_effect(
        &self,
        account: &str,
        command_id: &str,
        effect_ref: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE command_ledger SET effect_ref = $3 WHERE account = $1 AND command_id = $2",
            )
            .await
            .map_err(|e| self.error(e))?;
        client
            .execute(&stmt, &[&account, &command_id, &effect_ref])
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// See [`crate::store::Store::ledger_clear_effect`].
    pub async fn ledger_clear_effect(
        &self,
        account: &str,
        command_id: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE command_ledger SET effect_ref = NULL WHERE account = $1 AND command_id = $2",
                &[&account, &command_id],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Stores the final result (inserting the row when the command never began); true when
    /// it was stored, false when a result was stored already.
    pub(crate) async fn ledger_finish_entry(
        &self,
        f: Finish<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO command_ledger (account, command_id, type, status, attempts, outcome, result, received_at, finished_at, fingerprint)
                 VALUES ($1, $2, $3, 'done', 1, $4, $5, $6, $6, $7)
                 ON CONFLICT (account, command_id) DO UPDATE SET
                     status = 'done', outcome = excluded.outcome, result = excluded.result,
                     finished_at = excluded.finished_at,
                     fingerprint = coalesce(command_ledger.fingerprint, excluded.fingerprint),
                     owner = NULL, lease_until = NULL
                 WHERE command_ledger.status <> 'done'",
            )
            .await
            .map_err(|e| self.error(e))?;
        let changed = client
            .execute(
                &stmt,
                &[
                    &f.account,
                    &f.command_id,
                    &f.command_type,
                    &f.outcome,
                    &f.result,
                    &now,
                    &f.fingerprint,
                ],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(changed == 1)
    }

    /// Stores the final result, or returns the result another delivery stored first.
    pub async fn ledger_finish_or_stored(
        &self,
        f: Finish<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        if self.ledger_finish_entry(f, now).await? {
            return Ok(None);
        }
        self.ledger_result_of(f.account, f.command_id).await
    }

    /// The row of a command, if there is one.
    pub async fn ledger_entry(
        &self,
        account: &str,
        command_id: &str,
    ) -> Result<Option<Entry>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT type, status, fingerprint, result FROM command_ledger
                 WHERE account = $1 AND command_id = $2",
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(client
            .query_opt(&stmt, &[&account, &command_id])
            .await
            .map_err(|e| self.error(e))?
            .map(|r| Entry {
                command_type: r.get(0),
                done: r.get::<_, String>(1) == "done",
                fingerprint: r.get(2),
                result: r.get(3),
            }))
    }

    /// The stored result of a finished command.
    pub async fn ledger_result_of(
        &self,
        account: &str,
        command_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self.ledger_history(account, command_id).await?.result)
    }

    /// When the command was first received (its first attempt began).
    pub async fn ledger_received_at(
        &self,
        account: &str,
        command_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.ledger_history(account, command_id).await?.received_at)
    }

    /// The stored result, the attempts and the first receipt of a command, in one read.
    pub async fn ledger_history(
        &self,
        account: &str,
        command_id: &str,
    ) -> Result<History, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT CASE WHEN status = 'done' THEN result END, attempts, received_at
                 FROM command_ledger WHERE account = $1 AND command_id = $2",
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(client
            .query_opt(&stmt, &[&account, &command_id])
            .await
            .map_err(|e| self.error(e))?
            .map(|r| History {
                result: r.get(0),
                attempts: Some(to_u32(r.get(1))),
                received_at: Some(r.get(2)),
            })
            .unwrap_or_default())
    }

    /// Forgets a finished command that ended `rejected` or `failed` (see
    /// [`crate::store::ledger::forget_unsuccessful`]).
    pub async fn ledger_forget_unsuccessful(
        &self,
        account: &str,
        command_id: &str,
        fingerprint: Option<&str>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM command_ledger
                 WHERE account = $1 AND command_id = $2 AND status = 'done'
                   AND outcome IN ('rejected', 'failed')
                   AND (fingerprint IS NULL OR $3::text IS NULL OR fingerprint = $3::text)",
                &[&account, &command_id, &fingerprint],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(deleted == 1)
    }

    /// How many rows the ledger holds, whatever their status.
    pub async fn ledger_rows(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one("SELECT count(*) FROM command_ledger", &[])
            .await
            .map_err(|e| self.error(e))?
            .get(0))
    }

    /// Deletes up to `limit` commands that finished before `before`, oldest first; never one
    /// in progress. Returns how many.
    pub(crate) async fn ledger_prune_finished(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM command_ledger WHERE (account, command_id) IN (
                     SELECT account, command_id FROM command_ledger
                     WHERE finished_at < $1 AND status = 'done'
                     ORDER BY finished_at LIMIT $2)",
                &[&before, &(limit as i64)],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(deleted as usize)
    }
}
