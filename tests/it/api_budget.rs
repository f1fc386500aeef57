//! The API key's rate budget: pacing, the persisted daily quota, the mirror's share and
//! command-before-mirror priority. Time is tokio's paused clock plus a manual wall clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ctct_sync::api::budget::BudgetError;
use ctct_sync::api::{BudgetSettings, Priority, RateBudget};
use ctct_sync::clock::ManualClock;
use ctct_sync::store::Store;
use tokio::time::Instant;

use crate::support;
use crate::support::engine::Engine;
use crate::support::engine::StateSpot;

fn start_time() -> DateTime<Utc> {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

fn budget(
    store: &Store,
    clock: &Arc<ManualClock>,
    per_second: u32,
    per_day: u32,
    share: f64,
) -> Arc<RateBudget> {
    Arc::new(RateBudget::new(
        "api-key-1",
        BudgetSettings::new(per_second, per_day, share),
        store.clone(),
        clock.clone(),
    ))
}

#[tokio::test(start_paused = true)]
async fn no_more_than_per_second_requests_start_in_any_window() {
    let dir = support::temp_dir();
    let (store, _) = Store::open(&support::fresh_db_path(dir.path())).unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let budget = budget(&store, &clock, 4, 10_000, 0.6);
    let window = Duration::from_secs(1) + budget.settings().window_margin;
    let start = Instant::now();
    let mut starts = Vec::new();
    for _ in 0..13 {
        budget.acquire(Priority::Command).await.unwrap();
        starts.push(Instant::now() - start);
    }
    for (i, at) in starts.iter().enumerate().skip(4) {
        assert!(
            *at - starts[i - 4] >= window,
            "request {i} started {at:?}, 4 before at {:?}",
            starts[i - 4]
        );
    }
    // Bursts of four, one window apart: 13 requests need three full windows.
    assert!(
        starts[12] >= window * 3 && starts[12] < window * 3 + Duration::from_millis(50),
        "{starts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_throttled_answer_pauses_everyone_then_halves_the_rate() {
    let dir = support::temp_dir();
    let (store, _) = Store::open(&support::fresh_db_path(dir.path())).unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let budget = budget(&store, &clock, 4, 10_000, 0.6);
    budget.note_throttled();
    let start = Instant::now();
    budget.acquire(Priority::Command).await.unwrap();
    let first = Instant::now();
    assert!(
        first - start >= Duration::from_secs(1),
        "paused for a second"
    );
    budget.acquire(Priority::Command).await.unwrap();
    budget.acquire(Priority::Command).await.unwrap();
    let window = Duration::from_secs(1) + budget.settings().window_margin;
    assert!(
        Instant::now() - first >= window,
        "only two per window while slowed"
    );
}

crate::both_engines!(
    #[tokio::test]
    the_daily_quota_stops_spending_and_survives_a_restart_until_utc_midnight
);
async fn the_daily_quota_stops_spending_and_survives_a_restart_until_utc_midnight(engine: Engine) {
    let spot = StateSpot::new(engine).await;
    let clock = Arc::new(ManualClock::new(start_time()));
    {
        let store = spot.open().await;
        let budget = budget(&store, &clock, 1000, 30, 1.0);
        for _ in 0..30 {
            budget.acquire(Priority::Command).await.unwrap();
        }
        match budget.acquire(Priority::Command).await {
            Err(BudgetError::QuotaExhausted { resets_at }) => {
                assert_eq!(resets_at.to_rfc3339(), "2026-11-24T00:00:00+00:00")
            }
            other => panic!("expected QuotaExhausted, got {other:?}"),
        }
    }
    let store = spot.open().await;
    let restarted = budget(&store, &clock, 1000, 30, 1.0);
    assert!(matches!(
        restarted.acquire(Priority::Command).await,
        Err(BudgetError::QuotaExhausted { .. })
    ));
    let snapshot = restarted.snapshot().await.unwrap();
    assert_eq!(
        (snapshot.used, snapshot.remaining, snapshot.exhausted),
        (30, 0, true)
    );

    clock.set("2026-11-24T00:00:01Z".parse().unwrap());
    restarted
        .acquire(Priority::Command)
        .await
        .expect("a new UTC day brings a new quota");
    restarted.release().await.unwrap();
    assert_eq!(restarted.snapshot().await.unwrap().used, 1);
}

crate::both_engines!(
    #[tokio::test]
    short_lived_budgets_count_exactly_what_they_spent
);
async fn short_lived_budgets_count_exactly_what_they_spent(engine: Engine) {
    // Regression: every process reserved a block of at least 20 requests and never gave it
    // back, so three `ctct-sync doctor` runs (one request each) counted 60.
    let spot = StateSpot::new(engine).await;
    let clock = Arc::new(ManualClock::new(start_time()));
    for _ in 0..3 {
        // Each its own store handle and budget, like a process of its own.
        let store = spot.open().await;
        let short_lived = budget(&store, &clock, 4, 10_000, 0.6);
        for _ in 0..2 {
            short_lived.acquire(Priority::Command).await.unwrap();
        }
        short_lived.release().await.unwrap();
    }
    let store = spot.open().await;
    let snapshot = budget(&store, &clock, 4, 10_000, 0.6)
        .snapshot()
        .await
        .unwrap();
    assert_eq!((snapshot.used, snapshot.remaining), (6, 9_994));
}

/// Spends `requests` from a budget of its own (its own store handle and runtime) and then
/// "dies": the budget is never released, and its runtime stops with every task in it.
fn spend_and_die(path: &std::path::Path, clock: &Arc<ManualClock>, requests: u32) {
    let (path, clock) = (path.to_owned(), clock.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (store, _) = Store::open(&path).unwrap();
            let doomed = budget(&store, &clock, 4, 10_000, 0.6);
            for _ in 0..requests {
                doomed.acquire(Priority::Command).await.unwrap();
            }
            std::mem::forget(doomed);
        });
        drop(runtime);
    })
    .join()
    .unwrap();
}

// SQLite only: a hold lapses on the store's clock, here the test's manual clock; on
// PostgreSQL it is the database's own, which the test cannot move.
#[tokio::test]
async fn a_killed_process_s_hold_counts_until_it_lapses_and_no_longer() {
    let dir = support::temp_dir();
    let path = support::fresh_db_path(dir.path());
    let clock = Arc::new(ManualClock::new(start_time()));
    spend_and_die(&path, &clock, 3);
    let (store, _) = Store::open(&path).unwrap();
    let observer = budget(&store, &clock, 4, 10_000, 0.6);
    let live = observer.snapshot().await.unwrap().used;
    assert!(
        (3..=8).contains(&live),
        "while it may still be sending, its whole hold (two seconds at 4/s) counts: {live}"
    );
    clock.advance(chrono::Duration::seconds(6));
    let lapsed = observer.snapshot().await.unwrap();
    assert_eq!(
        (lapsed.used, lapsed.remaining),
        (0, 10_000),
        "a lapsed hold is no longer counted"
    );
    // The day goes on as if the hold had been given back.
    observer.acquire(Priority::Command).await.unwrap();
    observer.release().await.unwrap();
    assert_eq!(observer.snapshot().await.unwrap().used, 1);
}

crate::both_engines!(
    #[tokio::test]
    two_fast_budgets_on_one_store_share_the_day
);
async fn two_fast_budgets_on_one_store_share_the_day(engine: Engine) {
    // Regression: with a raised per_second, the first process reserved the whole day after
    // a few requests and the second parked every command until midnight.
    let spot = StateSpot::new(engine).await;
    let clock = Arc::new(ManualClock::new(start_time()));
    let store_a = spot.open().await;
    let store_b = spot.open().await;
    let a = budget(&store_a, &clock, 1_000, 200, 1.0);
    let b = budget(&store_b, &clock, 1_000, 200, 1.0);
    for _ in 0..120 {
        a.acquire(Priority::Command).await.unwrap();
    }
    // `a` is still running (its hold is live); `b` gets the rest of the day, part of it
    // once `a`'s unused hold comes back.
    let mut spent_by_b = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, b.acquire(Priority::Command)).await {
            Ok(Ok(())) => spent_by_b += 1,
            Ok(Err(BudgetError::QuotaExhausted { .. })) => break,
            Ok(Err(other)) => panic!("{other}"),
            Err(_) => panic!("b waited past the deadline after {spent_by_b} requests"),
        }
    }
    assert_eq!(spent_by_b, 80, "b spends everything a did not");
    a.release().await.unwrap();
    b.release().await.unwrap();
    let snapshot = a.snapshot().await.unwrap();
    assert_eq!((snapshot.used, snapshot.exhausted), (200, true));
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_raised_rate_is_not_held_back_by_the_store
);
async fn a_raised_rate_is_not_held_back_by_the_store(engine: Engine) {
    // The day's count is written once per hold (about two seconds of the rate), not once
    // per request: 5,000 requests at 100,000/s take a handful of writes.
    let spot = StateSpot::new(engine).await;
    let store = spot.open().await;
    let clock = Arc::new(ManualClock::new(start_time()));
    let fast = budget(&store, &clock, 100_000, 100_000_000, 1.0);
    let started = std::time::Instant::now();
    for _ in 0..5_000 {
        fast.acquire(Priority::Command).await.unwrap();
    }
    let took = started.elapsed();
    fast.release().await.unwrap();
    assert_eq!(fast.snapshot().await.unwrap().used, 5_000);
    assert!(took < Duration::from_secs(2), "{took:?}");
}

crate::both_engines!(
    #[tokio::test]
    a_quota_exceeded_answer_is_remembered_across_restarts
);
async fn a_quota_exceeded_answer_is_remembered_across_restarts(engine: Engine) {
    let spot = StateSpot::new(engine).await;
    let clock = Arc::new(ManualClock::new(start_time()));
    {
        let store = spot.open().await;
        let budget = budget(&store, &clock, 1000, 10_000, 0.6);
        budget.acquire(Priority::Command).await.unwrap();
        let resets_at = budget.note_quota_exceeded().await.unwrap();
        assert_eq!(resets_at.to_rfc3339(), "2026-11-24T00:00:00+00:00");
    }
    let store = spot.open().await;
    let restarted = budget(&store, &clock, 1000, 10_000, 0.6);
    assert!(matches!(
        restarted.acquire(Priority::Command).await,
        Err(BudgetError::QuotaExhausted { .. })
    ));
}

#[tokio::test]
async fn the_mirror_stops_at_its_share_while_commands_go_on() {
    let dir = support::temp_dir();
    let (store, _) = Store::open(&support::fresh_db_path(dir.path())).unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let budget = budget(&store, &clock, 1000, 10, 0.5);
    for _ in 0..5 {
        budget.acquire(Priority::Mirror).await.unwrap();
    }
    assert!(matches!(
        budget.acquire(Priority::Mirror).await,
        Err(BudgetError::MirrorShareSpent { .. })
    ));
    for _ in 0..5 {
        budget
            .acquire(Priority::Command)
            .await
            .expect("commands keep their part of the day");
    }
    assert!(matches!(
        budget.acquire(Priority::Command).await,
        Err(BudgetError::QuotaExhausted { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn waiting_commands_are_served_before_the_waiting_mirror() {
    let dir = support::temp_dir();
    let (store, _) = Store::open(&support::fresh_db_path(dir.path())).unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let budget = budget(&store, &clock, 2, 10_000, 0.9);
    // Fill the current window so everyone below has to wait.
    budget.acquire(Priority::Command).await.unwrap();
    budget.acquire(Priority::Command).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (budget, order) = (budget.clone(), order.clone());
        let priority = if i % 2 == 0 {
            Priority::Mirror
        } else {
            Priority::Command
        };
        tasks.push(tokio::spawn(async move {
            budget.acquire(priority).await.unwrap();
            order.lock().unwrap().push(priority);
        }));
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    let order = order.lock().unwrap().clone();
    assert_eq!(
        order,
        vec![
            Priority::Command,
            Priority::Command,
            Priority::Command,
            Priority::Mirror,
            Priority::Mirror,
            Priority::Mirror
        ],
        "mirror requests only go once no command waits"
    );
}

#[tokio::test(start_paused = true)]
async fn a_budget_pausing_at_startup_sends_nothing_in_its_first_window() {
    let dir = support::temp_dir();
    let (store, _) = Store::open(&support::fresh_db_path(dir.path())).unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let start = Instant::now();
    let paused = RateBudget::new(
        "api-key-1",
        BudgetSettings::new(4, 10_000, 0.6).pausing_at_startup(),
        store.clone(),
        clock.clone(),
    );
    let window = Duration::from_secs(1) + paused.settings().window_margin;
    paused.acquire(Priority::Command).await.unwrap();
    let first = Instant::now() - start;
    assert!(
        first >= window && first < window + Duration::from_millis(50),
        "the first request waited one window: {first:?}"
    );
    // Another key: this one's schedule is taken for a while by the paused budget's requests.
    let unpaused = Arc::new(RateBudget::new(
        "api-key-2",
        BudgetSettings::new(4, 10_000, 0.6),
        store.clone(),
        clock.clone(),
    ));
    let start = Instant::now();
    unpaused.acquire(Priority::Command).await.unwrap();
    // Time is paused, but it moves on to the next timer while the runtime waits for the
    // store's thread (2 ms once under CI load): far less than the window a pause would take.
    let waited = Instant::now() - start;
    assert!(
        waited < Duration::from_millis(50),
        "no pause by default: waited {waited:?} (a pause is {window:?})"
    );
}

#[tokio::test(start_paused = true)]
/// Issue 20: the pipeline consumes once `unpaused` completes, so that its first command does
/// not wait out the startup pause in the pacer.
async fn unpaused_completes_when_the_startup_pause_is_over_and_the_first_request_then_goes_at_once()
{
    let dir = support::temp_dir();
    let (store, _) = Store::open(&support::fresh_db_path(dir.path())).unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let start = Instant::now();
    let paused = RateBudget::new(
        "api-key-1",
        BudgetSettings::new(4, 10_000, 0.6).pausing_at_startup(),
        store.clone(),
        clock.clone(),
    );
    let window = Duration::from_secs(1) + paused.settings().window_margin;
    paused.unpaused().await;
    let waited = Instant::now() - start;
    assert!(waited >= window, "unpaused after the pause: {waited:?}");
    let start = Instant::now();
    paused.acquire(Priority::Command).await.unwrap();
    let first = Instant::now() - start;
    assert!(
        first < Duration::from_millis(50),
        "the first request, after the pause, waited {first:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_given_up_before_its_slot_is_not_counted() {
    let dir = support::temp_dir();
    let (store, _) = Store::open(&support::fresh_db_path(dir.path())).unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let budget = budget(&store, &clock, 4, 10_000, 1.0);
    budget.acquire(Priority::Command).await.unwrap();
    let given_up = tokio::time::timeout(
        Duration::from_millis(100),
        budget.acquire(Priority::Command),
    )
    .await;
    assert!(given_up.is_err(), "the next slot is 275 ms away");
    budget.acquire(Priority::Command).await.unwrap();
    budget.release().await.unwrap();
    assert_eq!(
        budget.snapshot().await.unwrap().used,
        2,
        "only what was sent"
    );
}
