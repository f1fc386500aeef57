//! The request budget on PostgreSQL: the same operations as [`crate::store::budget`]. Every
//! settle of a (key, day) first takes that day's `rate_budget` row lock (`INSERT … ON
//! CONFLICT DO UPDATE`), so processes settling the same key serialize on it.
//!
//! Holds lapse by the database's clock, never a host's: a new hold lasts
//! `expires_at_ms - now_ms` from the database's `clock_timestamp()`, and a hold counts while
//! its `expires_at` is after the database's `now()` (the `now_ms` passed in only gives that
//! length). Comparing with the transaction's start (`now()`) counts a hold a little longer
//! rather than shorter: the count may be high, never low.

use chrono::NaiveDate;
use chrono::{DateTime, Utc};

use super::{PgStore, to_u32};
use crate::store::budget::{DayBudget, HoldRequest, Settled, SlotBlock};
use crate::store::error::StoreError;

/// The live holds of a day and its spent row, read inside `client`'s current transaction
/// (or on their own).
async fn read_day(
    client: &impl tokio_postgres::GenericClient,
    client_id: &str,
    day: NaiveDate,
) -> Result<(DayBudget, i64), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT
                 (SELECT spent FROM rate_budget WHERE client_id = $1 AND day = $2),
                 (SELECT exhausted_at IS NOT NULL FROM rate_budget WHERE client_id = $1 AND day = $2),
                 (SELECT coalesce(sum(held), 0)::bigint FROM rate_budget_holds
                  WHERE client_id = $1 AND day = $2 AND expires_at > now())",
            &[&client_id, &day],
        )
        .await?;
    let spent: Option<i64> = row.get(0);
    let exhausted: Option<bool> = row.get(1);
    let held: i64 = row.get(2);
    Ok((
        DayBudget {
            spent: to_u32(spent.unwrap_or(0)),
            held: to_u32(held),
            exhausted: exhausted.unwrap_or(false),
        },
        held,
    ))
}

impl PgStore {
    /// The day as stored, holds lapsed by the database's clock left out (`now_ms` is not
    /// used: see the module's documentation).
    pub async fn budget_load_day(
        &self,
        client_id: &str,
        day: NaiveDate,
        _now_ms: i64,
    ) -> Result<DayBudget, StoreError> {
        let client = self.client().await?;
        let (day, _) = read_day(&**client, client_id, day)
            .await
            .map_err(|e| self.error(e))?;
        Ok(day)
    }

    /// Settles `owner`'s hold and asks for a new one, in one transaction (as
    /// [`crate::store::budget::settle`]: `used` moves to spent, the rest of the hold and
    /// every lapsed hold of the key are dropped, and a new hold of at most `request.want`,
    /// never past the quota and at most half of what is left, is granted).
    pub async fn budget_settle(
        &self,
        client_id: &str,
        day: NaiveDate,
        owner: &str,
        used: u32,
        request: HoldRequest,
    ) -> Result<Settled, StoreError> {
        let err = |e| self.error(e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err)?;
        // The day's row lock: every settle of this key and day waits here for the others.
        let spent_row = tx
            .prepare_cached(
                "INSERT INTO rate_budget (client_id, day, spent) VALUES ($1, $2, $3)
                 ON CONFLICT (client_id, day) DO UPDATE SET spent = rate_budget.spent + excluded.spent",
            )
            .await
            .map_err(err)?;
        tx.execute(&spent_row, &[&client_id, &day, &i64::from(used)])
            .await
            .map_err(err)?;
        let drop_holds = tx
            .prepare_cached(
                "DELETE FROM rate_budget_holds
                 WHERE client_id = $1
                   AND (day < $2 OR (day = $2 AND (owner = $3 OR expires_at <= now())))",
            )
            .await
            .map_err(err)?;
        tx.execute(&drop_holds, &[&client_id, &day, &owner])
            .await
            .map_err(err)?;
        let (stored, _) = read_day(&*tx, client_id, day).await.map_err(err)?;
        let left = request.per_day.saturating_sub(stored.counted());
        let granted = if stored.exhausted {
            0
        } else {
            request.want.min(left.div_ceil(2))
        };
        if granted > 0 {
            let lasts = (request.expires_at_ms - request.now_ms) as f64 / 1000.0;
            let hold = tx
                .prepare_cached(
                    "INSERT INTO rate_budget_holds (client_id, day, owner, held, expires_at)
                     VALUES ($1, $2, $3, $4, clock_timestamp() + make_interval(secs => $5))",
                )
                .await
                .map_err(err)?;
            tx.execute(
                &hold,
                &[&client_id, &day, &owner, &i64::from(granted), &lasts],
            )
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(Settled {
            day: DayBudget {
                spent: stored.spent,
                held: stored.held + granted,
                exhausted: stored.exhausted,
            },
            granted,
        })
    }

    /// Records that the API refused a request with `quota_exceeded` on `day`.
    pub async fn budget_mark_exhausted(
        &self,
        client_id: &str,
        day: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO rate_budget (client_id, day, spent, exhausted_at) VALUES ($1, $2, 0, $3)
                 ON CONFLICT (client_id, day) DO UPDATE
                 SET exhausted_at = coalesce(rate_budget.exhausted_at, excluded.exhausted_at)",
                &[&client_id, &day, &at],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Takes the next `slots` slots of `client_id`'s schedule in one statement, judged by the
    /// database's clock, and returns them translated to the caller's clock (`now_ms`, read just
    /// before the call): the difference between the two clocks is measured by the same
    /// statement, so hosts with skewed clocks still never share a slot or crowd a second. The
    /// translation errs late by at most the answer's trip from the database.
    pub async fn budget_pace(
        &self,
        client_id: &str,
        slots: u32,
        interval_ms: i64,
        now_ms: i64,
    ) -> Result<SlotBlock, StoreError> {
        let slots = slots.max(1);
        let interval_ms = interval_ms.max(1);
        let span = i64::from(slots) * interval_ms;
        // From here, not from when a connection is in hand: `now_ms` was read before any wait
        // for the pool, and that wait must count, or the slot moves earlier by it.
        let asked = std::time::Instant::now();
        let client = self.client().await?;
        let row = client
            .query_one(
                "WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms)
                 INSERT INTO rate_pace AS p (client_id, next_slot_ms)
                 SELECT $1, now.ms + $2 FROM now
                 ON CONFLICT (client_id) DO UPDATE
                 SET next_slot_ms = greatest(p.next_slot_ms, (SELECT ms FROM now)) + $2
                 RETURNING next_slot_ms, (SELECT ms FROM now)",
                &[&client_id, &span],
            )
            .await
            .map_err(|e| self.error(e))?;
        let (next_free, db_now): (i64, i64) = (row.get(0), row.get(1));
        // The caller's clock when the answer came, which is at or after the database's `now`:
        // translated with it, a slot can only move later (by the answer's trip), never earlier.
        let answered_ms = now_ms + i64::try_from(asked.elapsed().as_millis()).unwrap_or(0);
        Ok(SlotBlock {
            first_ms: next_free - span - db_now + answered_ms,
            interval_ms,
            slots,
        })
    }
}
