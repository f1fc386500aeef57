//! The API key's request budget, shared by every account and every caller in the process:
//! a per-second pacer and a daily quota that survives restarts.
//!
//! Constant Contact allows 4 requests per second and 10,000 per UTC day per API key and
//! sends no rate-limit headers (shared/reference/constant-contact-v3.md §2), so ctct-sync
//! meters itself:
//! - the pacer lets at most `per_second` requests start in any window of one second plus a
//!   safety margin; commands are served before the mirror whenever both wait;
//! - the daily count is reserved in SQLite *before* requests are sent, in blocks, so a crash
//!   can only over-count (never send more than the quota) and a restart does not reset it;
//! - the mirror may spend at most `mirror_share` of the day, keeping the rest for commands;
//! - a `throttled` 429 pauses every sender for a second and halves the rate for a minute; a
//!   `quota_exceeded` 429 stops all spending until 00:00 UTC;
//! - a process's budget waits one window before its first request (`startup_pause`), since
//!   the process it replaces may have spent that second.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::api::clock::{Clock, next_utc_midnight};
use crate::store::{Store, StoreError, budget};

/// Who is asking for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// Queued commands: served first.
    Command,
    /// The mirror: served when no command waits, within its share of the day.
    Mirror,
}

/// Limits of one API key.
#[derive(Debug, Clone, Copy)]
pub struct BudgetSettings {
    pub per_second: u32,
    pub per_day: u32,
    /// Share of `per_day` the mirror may spend (0.0–1.0).
    pub mirror_share: f64,
    /// Added to the one-second window so network jitter cannot push a fifth request into the
    /// server's window.
    pub window_margin: Duration,
    /// How long a new budget waits before its first request. A process that replaces one
    /// killed a moment ago cannot know what that one spent in its last second (the server
    /// counts per API key, not per process), so a daemon waits one window before it starts.
    pub startup_pause: Duration,
}

impl BudgetSettings {
    pub fn new(per_second: u32, per_day: u32, mirror_share: f64) -> Self {
        Self {
            per_second,
            per_day,
            mirror_share,
            window_margin: Duration::from_millis(100),
            startup_pause: Duration::ZERO,
        }
    }

    /// These settings with a startup pause of one window (one second plus the margin).
    pub fn pausing_at_startup(mut self) -> Self {
        self.startup_pause = Duration::from_secs(1) + self.window_margin;
        self
    }
}

/// Why no request may be sent now.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("the API key's daily quota is spent; it resets at {resets_at}")]
    QuotaExhausted { resets_at: DateTime<Utc> },
    #[error("the mirror has spent its share of today's quota; it resets at {resets_at}")]
    MirrorShareSpent { resets_at: DateTime<Utc> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What is left of today's budget.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BudgetSnapshot {
    pub client_id: String,
    pub day: NaiveDate,
    pub per_day: u32,
    pub used: u32,
    pub remaining: u32,
    pub exhausted: bool,
    pub resets_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Pacer {
    sent: VecDeque<Instant>,
    commands_waiting: usize,
    paused_until: Option<Instant>,
    slow_until: Option<Instant>,
}

#[derive(Debug)]
struct Daily {
    day: Option<NaiveDate>,
    used: u32,
    reserved: u32,
    exhausted: bool,
}

/// The shared budget of one API key. Cheap to share behind an `Arc`.
pub struct RateBudget {
    client_id: String,
    settings: BudgetSettings,
    store: Store,
    clock: Arc<dyn Clock>,
    pacer: Mutex<Pacer>,
    wake: Notify,
    daily: tokio::sync::Mutex<Daily>,
}

impl std::fmt::Debug for RateBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateBudget")
            .field("client_id", &self.client_id)
            .field("settings", &self.settings)
            .finish()
    }
}

/// Un-registers a waiting command when its `acquire` ends, however it ends.
struct CommandWaiting<'a>(&'a RateBudget);

impl Drop for CommandWaiting<'_> {
    fn drop(&mut self) {
        self.0.lock_pacer().commands_waiting -= 1;
        self.0.wake.notify_waiters();
    }
}

impl RateBudget {
    pub fn new(
        client_id: &str,
        settings: BudgetSettings,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client_id: client_id.to_owned(),
            settings,
            store,
            clock,
            pacer: Mutex::new(Pacer {
                paused_until: (!settings.startup_pause.is_zero())
                    .then(|| Instant::now() + settings.startup_pause),
                ..Pacer::default()
            }),
            wake: Notify::new(),
            daily: tokio::sync::Mutex::new(Daily {
                day: None,
                used: 0,
                reserved: 0,
                exhausted: false,
            }),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn settings(&self) -> BudgetSettings {
        self.settings
    }

    fn lock_pacer(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.pacer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a send slot and counts one request against today's quota. Returns an error
    /// without waiting when the day's quota (or the mirror's share) is spent.
    pub async fn acquire(&self, priority: Priority) -> Result<(), BudgetError> {
        self.check_day(priority).await?;
        self.wait_for_slot(priority).await;
        self.spend(priority).await
    }

    async fn check_day(&self, priority: Priority) -> Result<(), BudgetError> {
        let mut daily = self.daily.lock().await;
        self.roll_day(&mut daily).await?;
        self.refusal(&daily, priority).map_or(Ok(()), Err)
    }

    fn refusal(&self, daily: &Daily, priority: Priority) -> Option<BudgetError> {
        let resets_at = next_utc_midnight(self.clock.now());
        if daily.exhausted || daily.used >= self.settings.per_day {
            return Some(BudgetError::QuotaExhausted { resets_at });
        }
        if priority == Priority::Mirror && daily.used >= self.mirror_cap() {
            return Some(BudgetError::MirrorShareSpent { resets_at });
        }
        None
    }

    fn mirror_cap(&self) -> u32 {
        (f64::from(self.settings.per_day) * self.settings.mirror_share.clamp(0.0, 1.0)) as u32
    }

    /// Loads the stored count when the UTC day changes (or on first use).
    async fn roll_day(&self, daily: &mut Daily) -> Result<(), BudgetError> {
        let today = self.clock.now().date_naive();
        if daily.day == Some(today) {
            return Ok(());
        }
        let client_id = self.client_id.clone();
        let stored = self
            .store
            .call(move |conn| budget::load_day(conn, &client_id, today))
            .await?;
        // Everything reserved before a restart is assumed spent: over-counting is safe.
        daily.day = Some(today);
        daily.used = stored.reserved;
        daily.reserved = stored.reserved;
        daily.exhausted = stored.exhausted;
        Ok(())
    }

    async fn spend(&self, priority: Priority) -> Result<(), BudgetError> {
        let mut daily = self.daily.lock().await;
        self.roll_day(&mut daily).await?;
        if let Some(refusal) = self.refusal(&daily, priority) {
            return Err(refusal);
        }
        if daily.used >= daily.reserved {
            let block = (self.settings.per_second * 5).max(20);
            let up_to = (daily.reserved + block).min(self.settings.per_day);
            let (client_id, day) = (self.client_id.clone(), daily.day.unwrap_or_default());
            daily.reserved = self
                .store
                .call(move |conn| budget::reserve(conn, &client_id, day, up_to))
                .await?;
        }
        daily.used += 1;
        Ok(())
    }

    async fn wait_for_slot(&self, priority: Priority) {
        let _registered = (priority == Priority::Command).then(|| {
            self.lock_pacer().commands_waiting += 1;
            CommandWaiting(self)
        });
        let limit = self.settings.per_second.max(1) as usize;
        let window = Duration::from_secs(1) + self.settings.window_margin;
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let next = {
                let mut pacer = self.lock_pacer();
                let now = Instant::now();
                if priority == Priority::Mirror && pacer.commands_waiting > 0 {
                    None
                } else {
                    match take_slot(&mut pacer, now, limit, window) {
                        Ok(()) => {
                            drop(pacer);
                            self.wake.notify_waiters();
                            return;
                        }
                        Err(at) => Some(at),
                    }
                }
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut woken => {}
                    }
                }
                None => woken.await,
            }
        }
    }

    /// The API answered `throttled`: pause everyone for a second, then run at half rate for
    /// a minute.
    pub fn note_throttled(&self) {
        let now = Instant::now();
        let mut pacer = self.lock_pacer();
        pacer.paused_until = Some(now + Duration::from_secs(1));
        pacer.slow_until = Some(now + Duration::from_secs(60));
    }

    /// The API answered `quota_exceeded`: spend nothing more until 00:00 UTC.
    pub async fn note_quota_exceeded(&self) -> Result<DateTime<Utc>, BudgetError> {
        let now = self.clock.now();
        let mut daily = self.daily.lock().await;
        self.roll_day(&mut daily).await?;
        daily.exhausted = true;
        let (client_id, day) = (self.client_id.clone(), now.date_naive());
        self.store
            .call(move |conn| budget::mark_exhausted(conn, &client_id, day, now))
            .await?;
        Ok(next_utc_midnight(now))
    }

    /// Today's figures.
    pub async fn snapshot(&self) -> Result<BudgetSnapshot, BudgetError> {
        let mut daily = self.daily.lock().await;
        self.roll_day(&mut daily).await?;
        let now = self.clock.now();
        Ok(BudgetSnapshot {
            client_id: self.client_id.clone(),
            day: now.date_naive(),
            per_day: self.settings.per_day,
            used: daily.used,
            remaining: self.settings.per_day.saturating_sub(daily.used),
            exhausted: daily.exhausted || daily.used >= self.settings.per_day,
            resets_at: next_utc_midnight(now),
        })
    }
}

/// Takes a slot if fewer than `limit` requests started within `window`; otherwise returns
/// the instant the oldest of them leaves the window.
fn take_slot(
    pacer: &mut Pacer,
    now: Instant,
    limit: usize,
    window: Duration,
) -> Result<(), Instant> {
    if let Some(until) = pacer.paused_until.filter(|until| now < *until) {
        return Err(until);
    }
    while pacer
        .sent
        .front()
        .is_some_and(|first| now.duration_since(*first) >= window)
    {
        pacer.sent.pop_front();
    }
    let limit = if pacer.slow_until.is_some_and(|until| now < until) {
        (limit / 2).max(1)
    } else {
        limit
    };
    if pacer.sent.len() < limit {
        pacer.sent.push_back(now);
        Ok(())
    } else {
        Err(pacer.sent[pacer.sent.len() - limit] + window)
    }
}
