//! SQL for the API key's daily request budget: `rate_budget` (per day: requests spent, and
//! whether the API said the quota was exceeded) and `rate_budget_holds` (what each running
//! process may still send without asking again, until its hold lapses).
//!
//! The day's count is `spent` plus every live hold: holds are small (about two seconds of
//! the rate), settled into `spent` as they are used, and given back when unused — by the
//! process when it stops, or by lapsing when it was killed.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::Store;
use super::error::StoreError;

/// The stored state of one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayBudget {
    /// Requests spent (recorded by settled holds).
    pub spent: u32,
    /// Requests held by live holds (not lapsed at `now`), every owner's.
    pub held: u32,
    /// The API answered `quota_exceeded` on this day.
    pub exhausted: bool,
}

impl DayBudget {
    /// The day's count: spent plus held (an upper bound of the requests sent).
    pub fn counted(&self) -> u32 {
        self.spent.saturating_add(self.held)
    }
}

/// What settling a hold left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// The day after settling, the new hold included.
    pub day: DayBudget,
    /// The new hold of the settling owner (0: none, the rest of the day is spent or held by
    /// others).
    pub granted: u32,
}

/// A hold to ask for when settling.
#[derive(Debug, Clone, Copy)]
pub struct HoldRequest {
    /// At most this many requests.
    pub want: u32,
    /// The day's quota: no hold takes the count past it.
    pub per_day: u32,
    /// Unix milliseconds: holds lapsed at this instant are not counted.
    pub now_ms: i64,
    /// Unix milliseconds: the new hold lapses then.
    pub expires_at_ms: i64,
}

fn live_holds(conn: &Connection, client_id: &str, day: &str, now_ms: i64) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT coalesce(sum(held), 0) FROM rate_budget_holds
         WHERE client_id = ?1 AND day = ?2 AND expires_at_ms > ?3",
        params![client_id, day, now_ms],
        |r| r.get(0),
    )
}

fn spent_row(conn: &Connection, client_id: &str, day: &str) -> rusqlite::Result<(u32, bool)> {
    Ok(conn
        .query_row(
            "SELECT spent, exhausted_at IS NOT NULL FROM rate_budget WHERE client_id = ?1 AND day = ?2",
            params![client_id, day],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or_default())
}

/// The day as stored, holds lapsed at `now_ms` left out.
pub fn load_day(
    conn: &Connection,
    client_id: &str,
    day: NaiveDate,
    now_ms: i64,
) -> Result<DayBudget, StoreError> {
    let day = day.to_string();
    let (spent, exhausted) = spent_row(conn, client_id, &day)?;
    Ok(DayBudget {
        spent,
        held: live_holds(conn, client_id, &day, now_ms)?,
        exhausted,
    })
}

/// Settles `owner`'s hold in one transaction: adds the `used` requests to the day's spent
/// count, drops the rest of its hold (and every lapsed hold), and — when `request` asks for
/// one — grants a new hold of at most `request.want`, never past the day's quota counting
/// every other live hold, and at most half of what is left so that processes sharing the
/// end of a day each get a part.
pub fn settle(
    conn: &mut Connection,
    client_id: &str,
    day: NaiveDate,
    owner: &str,
    used: u32,
    request: HoldRequest,
) -> Result<Settled, StoreError> {
    let day = day.to_string();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO rate_budget (client_id, day, spent) VALUES (?1, ?2, ?3)
         ON CONFLICT (client_id, day) DO UPDATE SET spent = spent + excluded.spent",
        params![client_id, day, used],
    )?;
    tx.execute(
        "DELETE FROM rate_budget_holds
         WHERE (client_id = ?1 AND day = ?2 AND owner = ?3) OR expires_at_ms <= ?4",
        params![client_id, day, owner, request.now_ms],
    )?;
    let (spent, exhausted) = spent_row(&tx, client_id, &day)?;
    let others = live_holds(&tx, client_id, &day, request.now_ms)?;
    let left = request.per_day.saturating_sub(spent.saturating_add(others));
    let granted = if exhausted {
        0
    } else {
        request.want.min(left.div_ceil(2))
    };
    if granted > 0 {
        tx.execute(
            "INSERT INTO rate_budget_holds (client_id, day, owner, held, expires_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![client_id, day, owner, granted, request.expires_at_ms],
        )?;
    }
    tx.commit()?;
    Ok(Settled {
        day: DayBudget {
            spent,
            held: others + granted,
            exhausted,
        },
        granted,
    })
}

/// Records that the API refused a request with `quota_exceeded` on `day`.
pub fn mark_exhausted(
    conn: &Connection,
    client_id: &str,
    day: NaiveDate,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO rate_budget (client_id, day, spent, exhausted_at) VALUES (?1, ?2, 0, ?3)
         ON CONFLICT (client_id, day) DO UPDATE SET exhausted_at = coalesce(exhausted_at, excluded.exhausted_at)",
        params![client_id, day.to_string(), at.to_rfc3339()],
    )?;
    Ok(())
}

/// The rate budget's typed operations: the only way code outside the store reaches
/// `rate_budget` and `rate_budget_holds`.
impl Store {
    /// The day as stored, holds lapsed at `now_ms` left out ([`load_day`]).
    pub async fn budget_load_day(
        &self,
        client_id: &str,
        day: NaiveDate,
        now_ms: i64,
    ) -> Result<DayBudget, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.budget_load_day(client_id, day, now_ms).await;
        }
        let client_id = client_id.to_owned();
        self.call(move |conn| load_day(conn, &client_id, day, now_ms))
            .await
    }

    /// Settles `owner`'s hold and asks for a new one, in one transaction ([`settle`]).
    pub async fn budget_settle(
        &self,
        client_id: &str,
        day: NaiveDate,
        owner: &str,
        used: u32,
        request: HoldRequest,
    ) -> Result<Settled, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.budget_settle(client_id, day, owner, used, request).await;
        }
        let (client_id, owner) = (client_id.to_owned(), owner.to_owned());
        self.call(move |conn| settle(conn, &client_id, day, &owner, used, request))
            .await
    }

    /// Records that the API refused a request with `quota_exceeded` on `day`
    /// ([`mark_exhausted`]).
    pub async fn budget_mark_exhausted(
        &self,
        client_id: &str,
        day: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.budget_mark_exhausted(client_id, day, at).await;
        }
        let client_id = client_id.to_owned();
        self.call(move |conn| mark_exhausted(conn, &client_id, day, at))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate;

    fn day() -> NaiveDate {
        "2026-11-23".parse().unwrap()
    }

    fn request(want: u32, now_ms: i64) -> HoldRequest {
        HoldRequest {
            want,
            per_day: 100,
            now_ms,
            expires_at_ms: now_ms + 5_000,
        }
    }

    #[test]
    fn what_was_reserved_before_the_holds_migration_stays_counted_as_spent() {
        let mut conn = Connection::open_in_memory().unwrap();
        let before = migrate::SQLITE_STATE
            .iter()
            .position(|m| m.name == "budget_holds")
            .expect("the holds migration");
        migrate::apply(&mut conn, &migrate::SQLITE_STATE[..before]).unwrap();
        conn.execute(
            "INSERT INTO rate_budget (client_id, day, reserved) VALUES ('key', '2026-11-23', 40)",
            [],
        )
        .unwrap();
        migrate::migrate(&mut conn).unwrap();
        let stored = load_day(&conn, "key", day(), 0).unwrap();
        assert_eq!((stored.spent, stored.held, stored.counted()), (40, 0, 40));
    }

    #[test]
    fn holds_count_until_settled_or_lapsed_and_never_pass_the_quota() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate::migrate(&mut conn).unwrap();
        let a = settle(&mut conn, "key", day(), "a", 0, request(60, 0)).unwrap();
        assert_eq!(a.granted, 50, "at most half of what is left");
        let b = settle(&mut conn, "key", day(), "b", 0, request(60, 0)).unwrap();
        assert_eq!((b.granted, b.day.counted()), (25, 75));
        // `a` spent 10 of its hold and gives the rest back.
        let a = settle(&mut conn, "key", day(), "a", 10, request(0, 1_000)).unwrap();
        assert_eq!((a.granted, a.day.spent, a.day.held), (0, 10, 25));
        // `b` is killed: its hold lapses and stops counting.
        assert_eq!(load_day(&conn, "key", day(), 4_999).unwrap().counted(), 35);
        assert_eq!(load_day(&conn, "key", day(), 5_000).unwrap().counted(), 10);
        let c = settle(&mut conn, "key", day(), "c", 0, request(1_000, 6_000)).unwrap();
        assert_eq!((c.granted, c.day.counted()), (45, 55));
    }
}
