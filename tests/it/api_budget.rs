//! The API key's rate budget: pacing, the persisted daily quota, the mirror's share and
//! command-before-mirror priority. Time is tokio's paused clock plus a manual wall clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ctct_sync::api::budget::BudgetError;
use ctct_sync::api::{BudgetSettings, ManualClock, Priority, RateBudget};
use ctct_sync::store::Store;
use tokio::time::Instant;

use crate::support;

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
    assert!(
        Instant::now() - start >= Duration::from_secs(1),
        "paused for a second"
    );
    budget.acquire(Priority::Command).await.unwrap();
    let third = Instant::now();
    budget.acquire(Priority::Command).await.unwrap();
    assert!(
        Instant::now() - third >= Duration::from_secs(1),
        "only two per window while slowed"
    );
}

#[tokio::test]
async fn the_daily_quota_stops_spending_and_survives_a_restart_until_utc_midnight() {
    let dir = support::temp_dir();
    let path = support::fresh_db_path(dir.path());
    let clock = Arc::new(ManualClock::new(start_time()));
    {
        let (store, _) = Store::open(&path).unwrap();
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
    let (store, _) = Store::open(&path).unwrap();
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
    assert_eq!(restarted.snapshot().await.unwrap().used, 1);
}

#[tokio::test]
async fn a_crash_can_only_overcount_the_day() {
    let dir = support::temp_dir();
    let path = support::fresh_db_path(dir.path());
    let clock = Arc::new(ManualClock::new(start_time()));
    {
        let (store, _) = Store::open(&path).unwrap();
        let budget = budget(&store, &clock, 4, 10_000, 0.6);
        for _ in 0..3 {
            budget.acquire(Priority::Command).await.unwrap();
        }
        // The process "dies" here: three requests sent, a block reserved.
    }
    let (store, _) = Store::open(&path).unwrap();
    let restarted = budget(&store, &clock, 4, 10_000, 0.6);
    let used = restarted.snapshot().await.unwrap().used;
    assert!(used >= 3, "never under-counts: {used}");
    assert!(
        used <= 20,
        "over-counts by less than one reservation block: {used}"
    );
}

#[tokio::test]
async fn a_quota_exceeded_answer_is_remembered_across_restarts() {
    let dir = support::temp_dir();
    let path = support::fresh_db_path(dir.path());
    let clock = Arc::new(ManualClock::new(start_time()));
    {
        let (store, _) = Store::open(&path).unwrap();
        let budget = budget(&store, &clock, 1000, 10_000, 0.6);
        budget.acquire(Priority::Command).await.unwrap();
        let resets_at = budget.note_quota_exceeded().await.unwrap();
        assert_eq!(resets_at.to_rfc3339(), "2026-11-24T00:00:00+00:00");
    }
    let (store, _) = Store::open(&path).unwrap();
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
    for _ in 0..4 {
        paused.acquire(Priority::Command).await.unwrap();
    }
    let first_burst = Instant::now() - start;
    assert!(
        first_burst >= window && first_burst < window + Duration::from_millis(50),
        "the first requests waited one window, then went together: {first_burst:?}"
    );
    let unpaused = budget(&store, &clock, 4, 10_000, 0.6);
    let start = Instant::now();
    unpaused.acquire(Priority::Command).await.unwrap();
    assert_eq!(
        Instant::now() - start,
        Duration::ZERO,
        "no pause by default"
    );
}
