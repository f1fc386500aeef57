//! SQL for the API key's request budget: `rate_budget` (per day: requests spent, and
//! whether the API said the quota was exceeded), `rate_budget_holds` (what each running
//! process may still send without asking again, until its hold lapses) and `rate_pace` (the
//! key's schedule of send slots, shared by every process).
//!
//! The day's count is `spent` plus every live hold: holds are small (about two seconds of
//! the rate), settled into `spent` as they are used, and given back when unused — by the
//! process when it stops, or by lapsing when it was killed.
//!
//! The pace: every request of every process on the key is sent at a slot of its own, slots
//! at least one interval apart ([`slot_interval_ms`]); a process takes the next slots of the
//! schedule in one short transaction ([`take_slots`] is the arithmetic, [`pace`] the SQL).

use std::time::Duration;

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

/// Consecutive send slots taken from an API key's schedule: `slots` instants `interval_ms`
/// apart from `first_ms` (Unix milliseconds), each for one request of the taker only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotBlock {
    pub first_ms: i64,
    pub interval_ms: i64,
    pub slots: u32,
}

impl SlotBlock {
    /// The instant of slot `index` (0-based) of the block.
    pub fn slot_ms(&self, index: u32) -> i64 {
        self.first_ms + i64::from(index) * self.interval_ms
    }

    /// The schedule's first free slot once this block is taken.
    pub fn next_free_ms(&self) -> i64 {
        self.slot_ms(self.slots)
    }
}

/// The spacing of a key's slots for at most `per_second` requests in any window of one
/// second, when a request may reach the API up to `margin` after its slot (and never before):
/// `(1 s + margin) / per_second`, rounded up to a millisecond. Any `per_second + 1` requests
/// then have slots at least `1 s + margin` apart from first to last, so they arrive at least
/// one second apart, and a window of one second never holds more than `per_second`.
pub fn slot_interval_ms(per_second: u32, margin: Duration) -> i64 {
    let span_ms = 1_000 + i64::try_from(margin.as_millis()).unwrap_or(i64::MAX / 2);
    let per_second = i64::from(per_second.max(1));
    ((span_ms + per_second - 1) / per_second).max(1)
}

/// Takes the next `slots` slots (at least one) of a schedule whose first free slot is
/// `next_free_ms` (`None`: nobody took one yet) at `now_ms`: the block starts at the first
/// free slot, or now when that has passed (slots not taken in time are gone, never
/// gathered into a burst). The schedule's next free slot is then [`SlotBlock::next_free_ms`]:
/// successive blocks never have two slots closer than `interval_ms`.
pub fn take_slots(
    next_free_ms: Option<i64>,
    now_ms: i64,
    slots: u32,
    interval_ms: i64,
) -> SlotBlock {
    SlotBlock {
        first_ms: next_free_ms.map_or(now_ms, |next| next.max(now_ms)),
        interval_ms: interval_ms.max(1),
        slots: slots.max(1),
    }
}

/// Takes the next `slots` slots of `client_id`'s schedule in one write transaction
/// ([`take_slots`]); two callers never get the same slot.
pub fn pace(
    conn: &mut Connection,
    client_id: &str,
    slots: u32,
    interval_ms: i64,
    now_ms: impl FnOnce() -> i64,
) -> Result<SlotBlock, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read once the write lock is held: waiting for another process's write must not leave
    // the block starting at a "now" already past.
    let now_ms = now_ms();
    let next_free: Option<i64> = tx
        .query_row(
            "SELECT next_slot_ms FROM rate_pace WHERE client_id = ?1",
            params![client_id],
            |r| r.get(0),
        )
        .optional()?;
    let block = take_slots(next_free, now_ms, slots, interval_ms);
    tx.execute(
        "INSERT INTO rate_pace (client_id, next_slot_ms) VALUES (?1, ?2)
         ON CONFLICT (client_id) DO UPDATE SET next_slot_ms = excluded.next_slot_ms",
        params![client_id, block.next_free_ms()],
    )?;
    tx.commit()?;
    Ok(block)
}

/// The rate budget's typed operations: the only way code outside the store reaches
/// `rate_budget`, `rate_budget_holds` and `rate_pace`.
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

    /// Takes the next `slots` send slots of `client_id`'s schedule, `interval` apart, at
    /// `now_ms` (Unix milliseconds), in one short write transaction ([`pace`]). The caller
    /// sends one request at each slot, not before it; slots it does not use stay taken.
    pub async fn budget_pace(
        &self,
        client_id: &str,
        slots: u32,
        interval: Duration,
        now_ms: i64,
    ) -> Result<SlotBlock, StoreError> {
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX / 4);
        if let Some(pg) = self.pg() {
            return pg.budget_pace(client_id, slots, interval_ms, now_ms).await;
        }
        let client_id = client_id.to_owned();
        // `now_ms` moved on by the time spent waiting for the owner thread and the file's
        // write lock (another process writing).
        let asked = std::time::Instant::now();
        let now =
            move || now_ms.saturating_add(i64::try_from(asked.elapsed().as_millis()).unwrap_or(0));
        self.call(move |conn| pace(conn, &client_id, slots, interval_ms, now))
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

    #[test]
    fn slots_are_spaced_so_that_a_late_arrival_cannot_crowd_a_window() {
        assert_eq!(slot_interval_ms(4, Duration::from_millis(100)), 275);
        assert_eq!(
            slot_interval_ms(3, Duration::from_millis(100)),
            367,
            "rounded up"
        );
        assert_eq!(slot_interval_ms(10, Duration::ZERO), 100);
        assert_eq!(slot_interval_ms(0, Duration::ZERO), 1_000, "0 counts as 1");
        assert_eq!(slot_interval_ms(100_000, Duration::ZERO), 1, "never 0");
    }

    #[test]
    fn a_block_starts_at_the_first_free_slot_or_now_when_that_has_passed() {
        let fresh = take_slots(None, 5_000, 2, 275);
        assert_eq!(
            (fresh.first_ms, fresh.slot_ms(1), fresh.next_free_ms()),
            (5_000, 5_275, 5_550)
        );
        let queued = take_slots(Some(fresh.next_free_ms()), 5_100, 1, 275);
        assert_eq!((queued.first_ms, queued.next_free_ms()), (5_550, 5_825));
        let idle = take_slots(Some(queued.next_free_ms()), 60_000, 3, 275);
        assert_eq!((idle.first_ms, idle.next_free_ms()), (60_000, 60_825));
        assert_eq!(
            take_slots(None, 0, 0, 0),
            SlotBlock {
                first_ms: 0,
                interval_ms: 1,
                slots: 1
            }
        );
    }

    /// Regression (issue 17): the block started at the caller's "now" read before the call;
    /// a caller that waited for another process's write lock got a start already past, and
    /// sent its request closer to the one before than the schedule allows.
    #[tokio::test]
    async fn a_slot_taken_after_waiting_for_another_process_s_write_is_not_moved_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let (store, _) = Store::open(&path).unwrap();
        // Another process holds the file's write lock.
        let mut other = Connection::open(&path).unwrap();
        let write = other
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let pacing = {
            let store = store.clone();
            tokio::spawn(async move {
                // The caller's clock, read right before the call, as the budget does.
                let now = Utc::now().timestamp_millis();
                store
                    .budget_pace("key", 1, Duration::from_millis(275), now)
                    .await
                    .unwrap()
            })
        };
        // The other process's write lasts a while (well inside the store's busy timeout).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let released = Utc::now().timestamp_millis();
        write.commit().unwrap();
        let block = pacing.await.unwrap();
        // Give or take the clocks' rounding to whole milliseconds (the flaw: the whole wait).
        assert!(
            block.first_ms >= released - 10,
            "the block starts {} ms before the write lock was free",
            released - block.first_ms
        );
    }

    #[test]
    fn every_taker_of_a_key_gets_the_next_slots_of_one_schedule() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate::migrate(&mut conn).unwrap();
        let a = pace(&mut conn, "key", 1, 275, || 1_000).unwrap();
        let b = pace(&mut conn, "key", 2, 275, || 1_010).unwrap();
        let other_key = pace(&mut conn, "other", 1, 275, || 1_010).unwrap();
        let later = pace(&mut conn, "key", 1, 275, || 9_000).unwrap();
        assert_eq!(
            (
                a.first_ms,
                b.first_ms,
                b.slot_ms(1),
                other_key.first_ms,
                later.first_ms
            ),
            (1_000, 1_275, 1_550, 1_010, 9_000)
        );
        let stored: i64 = conn
            .query_row(
                "SELECT next_slot_ms FROM rate_pace WHERE client_id = 'key'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 9_275);
    }

    /// One step of a process in [`any_one_second_window_holds_at_most_per_second`]: after
    /// `advance_ms`, take `slots` slots, then send at some of them, each arriving `late_ms`
    /// after its slot (at most the margin).
    #[derive(Debug, Clone)]
    struct Step {
        advance_ms: i64,
        slots: u32,
        sends: Vec<(bool, u64)>,
    }

    fn steps() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
        use proptest::prelude::*;
        proptest::collection::vec(
            (
                0_i64..700,
                1_u32..5,
                proptest::collection::vec((any::<bool>(), 0_u64..=1_000), 4),
            )
                .prop_map(|(advance_ms, slots, sends)| Step {
                    advance_ms,
                    slots,
                    sends,
                }),
            1..60,
        )
    }

    proptest::proptest! {
        /// Processes interleaved in any order take blocks of the shared schedule and send at
        /// some of their slots, each request arriving up to the margin late: counted as the
        /// sandbox counts (a request leaves the window 1,000 ms after it arrived), no window
        /// ever holds more than `per_second`.
        #[test]
        fn any_one_second_window_holds_at_most_per_second(
            per_second in 1_u32..=12,
            margin_ms in 0_u64..=300,
            steps in steps(),
        ) {
            let interval = slot_interval_ms(per_second, Duration::from_millis(margin_ms));
            let (mut now, mut next_free, mut arrivals) = (0_i64, None, Vec::new());
            for step in &steps {
                now += step.advance_ms;
                let block = take_slots(next_free, now, step.slots, interval);
                next_free = Some(block.next_free_ms());
                for (index, (sent, late)) in step.sends.iter().take(step.slots as usize).enumerate() {
                    if *sent {
                        let late = i64::try_from(late % (margin_ms + 1)).unwrap();
                        arrivals.push(block.slot_ms(u32::try_from(index).unwrap()) + late);
                    }
                }
            }
            arrivals.sort_unstable();
            let limit = per_second as usize;
            for (i, window_end) in arrivals.iter().enumerate() {
                let in_window = arrivals[..=i].iter().filter(|t| **t > window_end - 1_000).count();
                proptest::prop_assert!(
                    in_window <= limit,
                    "{in_window} requests in the second ending at {window_end}: {arrivals:?}"
                );
            }
        }
    }
}
