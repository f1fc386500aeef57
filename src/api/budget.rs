//! The API key's request budget, shared by every account and every caller in the process:
//! a per-second pacer and a daily quota that survives restarts.
//!
//! Constant Contact allows 4 requests per second and 10,000 per UTC day per API key and
//! sends no rate-limit headers (shared/reference/constant-contact-v3.md §2), so ctct-sync
//! meters itself:
//! - the pacer sends every request of every process using the key at a slot of its own:
//!   the key's schedule lives in the store, slots `(1 s + margin) / per_second` apart, and a
//!   process takes the next ones (one at 4/s, a quarter second's worth at higher rates) in
//!   one short write transaction, then sends each request at its slot, never before it and
//!   at most half the margin after it (a request that would be later gives its slot up and
//!   takes another), so that however the requests of all processes interleave, no window of
//!   one second at the API holds more than `per_second`. Slots a process does not use (it
//!   was killed, or idle) stay taken and unused. Keys above [`SHARED_PACE_MAX_PER_SECOND`]
//!   (the sandbox with its limits off, benchmarks) are paced in the process only, without
//!   the store. Commands are served before the mirror whenever both wait;
//! - the daily count lives in SQLite, shared by every process on the store, and survives
//!   restarts: it is what was spent plus what running processes hold. A process takes a
//!   small hold before sending (about two seconds of its rate, never past the day's quota
//!   counting every other hold, at most half of what is left), spends from it without
//!   writing, and settles it — its use recorded as spent, the rest given back — when it runs
//!   out, before it lapses (5 s) and when the process stops. A killed process's hold lapses
//!   and stops counting: what it sent from its last hold goes uncounted (at most two
//!   seconds of its rate), and the API's own `quota_exceeded` answer stops everyone if that
//!   ever matters at the end of a day;
//! - the mirror may spend at most `mirror_share` of the day, keeping the rest for commands;
//! - a `throttled` 429 pauses every sender for a second and halves the rate for a minute; a
//!   `quota_exceeded` 429 stops all spending until 00:00 UTC;
//! - a process's budget waits one window before its first request (`startup_pause`), since
//!   the process it replaces may have spent that second; the pipeline consumes commands only
//!   once it is over ([`RateBudget::unpaused`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock::{Clock, next_utc_midnight};
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

/// Keys allowed more requests per second than this are taken to have no real limit (real
/// keys allow 4, or 10 for partners; more is the sandbox with its limits off or a benchmark):
/// they are paced in each process alone and their pacer never touches the store.
pub const SHARED_PACE_MAX_PER_SECOND: u32 = 100;

#[derive(Debug, Default)]
struct Pacer {
    /// When this process's last requests started (keys paced in the process alone).
    sent: VecDeque<Instant>,
    commands_waiting: usize,
    paused_until: Option<Instant>,
    slow_until: Option<Instant>,
    /// Slots of the key's shared schedule this process took and has not used yet (Unix
    /// milliseconds on the pace clock, [`pace_now_us`]), oldest first.
    leased: VecDeque<i64>,
    /// A task of this process is taking slots from the store now.
    leasing: bool,
}

/// This budget's view of the day: the stored counts as of its last look, and its hold.
#[derive(Debug)]
struct Daily {
    day: Option<NaiveDate>,
    /// Requests spent today by every process, as of the last load or settle.
    spent: u32,
    exhausted: bool,
    /// What is left of this budget's hold.
    held: u32,
    /// Requests sent from the hold and not yet recorded as spent.
    used: u32,
    /// When the hold lapses in the store (other processes stop counting it then).
    hold_expires: Option<DateTime<Utc>>,
    /// Changes with every settle, so a lapse scheduled for an older hold does nothing.
    generation: u64,
}

impl Daily {
    /// Spent today as far as this budget knows: the stored count plus its own unsettled use.
    fn spent_estimate(&self) -> u32 {
        self.spent.saturating_add(self.used)
    }
}

/// How long a hold lives in the store without being settled; a killed process's hold stops
/// counting after this.
const HOLD_LIFETIME: Duration = Duration::from_secs(5);
/// A hold is settled (or given back) this long before it lapses.
const HOLD_MARGIN: Duration = Duration::from_secs(1);
/// How long a budget waits before asking again when other processes hold the rest of the
/// day.
const HELD_ELSEWHERE_RETRY: Duration = Duration::from_millis(250);

/// What the budget shares with the tasks that give back its idle holds.
struct Shared {
    client_id: String,
    /// Names this budget's hold in the store.
    owner: String,
    settings: BudgetSettings,
    store: Store,
    clock: Arc<dyn Clock>,
    daily: tokio::sync::Mutex<Daily>,
    /// Deadlines for the thread that settles idle holds (started with the first hold).
    lapses: Mutex<Option<std::sync::mpsc::Sender<(std::time::Instant, u64)>>>,
}

/// The shared budget of one API key. Cheap to share behind an `Arc`.
pub struct RateBudget {
    shared: Arc<Shared>,
    pacer: Mutex<Pacer>,
    wake: Notify,
}

impl std::fmt::Debug for RateBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateBudget")
            .field("client_id", &self.shared.client_id)
            .field("settings", &self.shared.settings)
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

/// Ends a task's turn at taking slots from the store, however the taking ends (an `acquire`
/// dropped mid-way loses the slots it took: they stay unused).
struct Leasing<'a>(&'a RateBudget);

impl Drop for Leasing<'_> {
    fn drop(&mut self) {
        self.0.lock_pacer().leasing = false;
        self.0.wake.notify_waiters();
    }
}

/// A request counted before it waited for its slot: dropped (the caller gave up, or the wait
/// failed) it takes the count back, so the day's count stays what was sent; marked `sent`
/// once the request goes, it does nothing.
struct Counted {
    shared: Arc<Shared>,
    generation: u64,
    sent: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.sent {
            return;
        }
        let generation = self.generation;
        // Within the same hold the request goes back to it; after a settle (which recorded it
        // as spent) the next settle records one fewer.
        let uncount = move |daily: &mut Daily| {
            if daily.used > 0 {
                daily.used -= 1;
                if daily.generation == generation {
                    daily.held += 1;
                }
            }
        };
        if let Ok(mut daily) = self.shared.daily.try_lock() {
            uncount(&mut daily);
        } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = self.shared.clone();
            runtime.spawn(async move { uncount(&mut *shared.daily.lock().await) });
        }
    }
}

/// What a task waiting for a shared slot does next.
enum Turn {
    /// Send at this slot.
    Take(i64),
    /// Take this many slots from the store.
    Lease(u32),
    /// Wait until then (or until woken).
    Until(Instant),
    /// Wait until woken.
    Woken,
}

/// The pace clock, in Unix microseconds: the system clock, which every process on the host
/// shares with the others and with a local API. Under tokio's paused test clock it is the
/// system clock at the first call moved by tokio's time, so that slots and the sleeps until
/// them agree.
fn pace_now_us() -> i64 {
    static ANCHOR: OnceLock<(std::time::Instant, i64)> = OnceLock::new();
    let wall_us = || chrono::Utc::now().timestamp_micros();
    let &(anchor, anchor_us) = ANCHOR.get_or_init(|| (std::time::Instant::now(), wall_us()));
    let runtime_now = Instant::now().into_std();
    let real_now = std::time::Instant::now();
    let apart = runtime_now
        .checked_duration_since(real_now)
        .unwrap_or_else(|| real_now.duration_since(runtime_now));
    if apart < Duration::from_millis(1) {
        return wall_us();
    }
    let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2);
    match runtime_now.checked_duration_since(anchor) {
        Some(after) => anchor_us + micros(after),
        None => anchor_us - micros(anchor.duration_since(runtime_now)),
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
            shared: Arc::new(Shared {
                client_id: client_id.to_owned(),
                owner: uuid::Uuid::new_v4().simple().to_string(),
                settings,
                store,
                clock,
                daily: tokio::sync::Mutex::new(Daily {
                    day: None,
                    spent: 0,
                    exhausted: false,
                    held: 0,
                    used: 0,
                    hold_expires: None,
                    generation: 0,
                }),
                lapses: Mutex::new(None),
            }),
            pacer: Mutex::new(Pacer {
                paused_until: (!settings.startup_pause.is_zero())
                    .then(|| Instant::now() + settings.startup_pause),
                ..Pacer::default()
            }),
            wake: Notify::new(),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    /// Completes once no pause holds requests back now (at start: the startup pause). The
    /// pipeline waits for it before it consumes, so that the first commands are not taken
    /// from the queue only to wait here (issue 20).
    pub async fn unpaused(&self) {
        loop {
            let until = self.lock_pacer().paused_until;
            match until {
                Some(until) if Instant::now() < until => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    pub fn settings(&self) -> BudgetSettings {
        self.shared.settings
    }

    fn lock_pacer(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.pacer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a send slot and counts one request against today's quota. Returns an error
    /// without waiting when the day's quota (or the mirror's share) is spent. On a key paced
    /// across processes ([`RateBudget::paces_across_processes`]) the request must be sent
    /// right away: it is on time for its slot when this returns.
    pub async fn acquire(&self, priority: Priority) -> Result<(), BudgetError> {
        self.check_day(priority).await?;
        if !self.paces_across_processes() {
            self.wait_for_slot(priority).await;
            return self.shared.spend(priority).await.map(|_| ());
        }
        // Counted first (that may write to the store), so that nothing stands between the
        // slot and the request; counted back if the caller gives up before its slot.
        let generation = self.shared.spend(priority).await?;
        let mut counted = Counted {
            shared: self.shared.clone(),
            generation,
            sent: false,
        };
        self.wait_for_shared_slot(priority).await?;
        counted.sent = true;
        Ok(())
    }

    /// Whether this key's requests are paced through the store, one schedule for every
    /// process using the key (`per_second` at most [`SHARED_PACE_MAX_PER_SECOND`]).
    pub fn paces_across_processes(&self) -> bool {
        self.shared.settings.per_second <= SHARED_PACE_MAX_PER_SECOND
    }

    /// How late after its slot a request may still start: half the margin, the other half
    /// being for its way to the API.
    fn lateness_allowed_us(&self) -> i64 {
        i64::try_from(self.shared.settings.window_margin.as_micros() / 2).unwrap_or(i64::MAX / 2)
    }

    fn on_time(&self, slot_ms: i64) -> bool {
        pace_now_us() <= slot_ms * 1_000 + self.lateness_allowed_us()
    }

    /// Slots taken from the store at a time: one at real keys' rates, about a quarter second
    /// of the rate above.
    fn lease_block(&self) -> u32 {
        (self.shared.settings.per_second / 4).max(1)
    }

    /// Waits for a slot of the key's shared schedule and until its instant; returns it once
    /// it has come, on time. Commands go before the mirror: a mirror request takes no slot
    /// while a command waits for one. Slots that passed unused, and a slot this task reached
    /// too late, are given up (they stay unused: never two requests closer than the spacing).
    async fn wait_for_shared_slot(&self, priority: Priority) -> Result<i64, BudgetError> {
        let settings = self.shared.settings;
        let interval = Duration::from_millis(
            budget::slot_interval_ms(settings.per_second, settings.window_margin).unsigned_abs(),
        );
        let late_us = self.lateness_allowed_us();
        loop {
            let registered = (priority == Priority::Command).then(|| {
                self.lock_pacer().commands_waiting += 1;
                CommandWaiting(self)
            });
            let slot_ms = loop {
                let woken = self.wake.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                let turn = {
                    let mut pacer = self.lock_pacer();
                    let now = Instant::now();
                    let now_us = pace_now_us();
                    while pacer
                        .leased
                        .front()
                        .is_some_and(|slot| slot * 1_000 + late_us < now_us)
                    {
                        pacer.leased.pop_front();
                    }
                    let slow = pacer.slow_until.is_some_and(|until| now < until);
                    if let Some(until) = pacer.paused_until.filter(|until| now < *until) {
                        Turn::Until(until)
                    } else if priority == Priority::Mirror && pacer.commands_waiting > 0 {
                        Turn::Woken
                    } else if let Some(slot) = pacer.leased.pop_front() {
                        if slow {
                            // Half rate: every other slot goes unused.
                            pacer.leased.pop_front();
                        }
                        Turn::Take(slot)
                    } else if pacer.leasing {
                        Turn::Woken
                    } else {
                        pacer.leasing = true;
                        Turn::Lease(self.lease_block() * if slow { 2 } else { 1 })
                    }
                };
                match turn {
                    Turn::Take(slot) => break slot,
                    Turn::Lease(slots) => {
                        let _leasing = Leasing(self);
                        let now_ms = pace_now_us().div_euclid(1_000);
                        let block = self
                            .shared
                            .store
                            .budget_pace(&self.shared.client_id, slots, interval, now_ms)
                            .await?;
                        self.lock_pacer()
                            .leased
                            .extend((0..block.slots).map(|index| block.slot_ms(index)));
                    }
                    Turn::Until(at) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(at) => {}
                            _ = &mut woken => {}
                        }
                    }
                    Turn::Woken => woken.await,
                }
            };
            drop(registered);
            let wait_us = slot_ms * 1_000 - pace_now_us();
            if wait_us > 0 {
                tokio::time::sleep(Duration::from_micros(wait_us.unsigned_abs())).await;
            }
            if self.on_time(slot_ms) {
                return Ok(slot_ms);
            }
            tracing::debug!(
                client_id = %self.shared.client_id,
                "a request reached its send slot too late; it waits for another"
            );
        }
    }

    async fn check_day(&self, priority: Priority) -> Result<(), BudgetError> {
        let mut daily = self.shared.daily.lock().await;
        self.shared.roll_day(&mut daily).await?;
        self.shared.refusal(&daily, priority).map_or(Ok(()), Err)
    }

    /// Settles this budget's hold: what it spent is recorded and the rest is given back.
    /// A process calls this before it exits; a hold never settled lapses by itself (after
    /// a few seconds) and is no longer counted.
    pub async fn release(&self) -> Result<(), BudgetError> {
        let mut daily = self.shared.daily.lock().await;
        self.shared.give_back(&mut daily).await
    }
    async fn wait_for_slot(&self, priority: Priority) {
        let _registered = (priority == Priority::Command).then(|| {
            self.lock_pacer().commands_waiting += 1;
            CommandWaiting(self)
        });
        let limit = self.shared.settings.per_second.max(1) as usize;
        let window = Duration::from_secs(1) + self.shared.settings.window_margin;
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
        let shared = &self.shared;
        let now = shared.clock.now();
        let mut daily = shared.daily.lock().await;
        shared.roll_day(&mut daily).await?;
        daily.exhausted = true;
        shared
            .store
            .budget_mark_exhausted(&shared.client_id, now.date_naive(), now)
            .await?;
        Ok(next_utc_midnight(now))
    }

    /// Today's figures, read from the store: the day's count is what every process spent
    /// plus what running processes hold.
    pub async fn snapshot(&self) -> Result<BudgetSnapshot, BudgetError> {
        let shared = &self.shared;
        let now = shared.clock.now();
        let today = now.date_naive();
        let stored = shared
            .store
            .budget_load_day(&shared.client_id, today, now.timestamp_millis())
            .await?;
        let per_day = shared.settings.per_day;
        let used = stored.counted();
        let exhausted_here = {
            let daily = shared.daily.lock().await;
            daily.day == Some(today) && daily.exhausted
        };
        Ok(BudgetSnapshot {
            client_id: shared.client_id.clone(),
            day: today,
            per_day,
            used,
            remaining: per_day.saturating_sub(used),
            exhausted: stored.exhausted || exhausted_here || stored.spent >= per_day,
            resets_at: next_utc_midnight(now),
        })
    }
}

impl Drop for RateBudget {
    /// Gives the hold back when the budget goes away inside a runtime (best effort: a
    /// process about to exit calls [`RateBudget::release`] instead).
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = self.shared.clone();
            runtime.spawn(async move {
                let mut daily = shared.daily.lock().await;
                let _ = shared.give_back(&mut daily).await;
            });
        }
    }
}

impl Shared {
    fn refusal(&self, daily: &Daily, priority: Priority) -> Option<BudgetError> {
        let resets_at = next_utc_midnight(self.clock.now());
        let spent = daily.spent_estimate();
        if daily.exhausted || (daily.held == 0 && spent >= self.settings.per_day) {
            return Some(BudgetError::QuotaExhausted { resets_at });
        }
        if priority == Priority::Mirror && spent >= self.mirror_cap() {
            return Some(BudgetError::MirrorShareSpent { resets_at });
        }
        None
    }

    fn mirror_cap(&self) -> u32 {
        (f64::from(self.settings.per_day) * self.settings.mirror_share.clamp(0.0, 1.0)) as u32
    }

    /// Requests one hold may cover: about two seconds at the configured rate.
    fn block(&self) -> u32 {
        self.settings.per_second.saturating_mul(2).max(1)
    }

    /// Loads the stored count when the UTC day changes (or on first use), settling the hold
    /// of the day that ended.
    async fn roll_day(self: &Arc<Self>, daily: &mut Daily) -> Result<(), BudgetError> {
        let now = self.clock.now();
        let today = now.date_naive();
        if daily.day == Some(today) {
            return Ok(());
        }
        if daily.day.is_some() {
            self.give_back(daily).await?;
        }
        let stored = self
            .store
            .budget_load_day(&self.client_id, today, now.timestamp_millis())
            .await?;
        daily.day = Some(today);
        daily.spent = stored.spent;
        daily.exhausted = stored.exhausted;
        Ok(())
    }

    /// Counts one request: from this budget's hold while it lasts, else from a new hold.
    /// Returns the hold's generation.
    async fn spend(self: &Arc<Self>, priority: Priority) -> Result<u64, BudgetError> {
        loop {
            let mut daily = self.daily.lock().await;
            self.roll_day(&mut daily).await?;
            if let Some(refusal) = self.refusal(&daily, priority) {
                return Err(refusal);
            }
            let now = self.clock.now();
            let hold_usable = daily
                .hold_expires
                .is_some_and(|expires| now + HOLD_MARGIN < expires);
            if daily.held > 0 && hold_usable {
                daily.held -= 1;
                daily.used += 1;
                return Ok(daily.generation);
            }
            let granted = self.settle(&mut daily, self.block()).await?;
            if granted > 0 {
                daily.held -= 1;
                daily.used += 1;
                return Ok(daily.generation);
            }
            if let Some(refusal) = self.refusal(&daily, priority) {
                return Err(refusal);
            }
            // Other processes hold what is left of the day: they spend it or give it back
            // within a hold's lifetime.
            drop(daily);
            tokio::time::sleep(HELD_ELSEWHERE_RETRY).await;
        }
    }

    /// Records this budget's unsettled use, drops the rest of its hold and asks for a new
    /// one of at most `want` (0: none). Returns what was granted.
    async fn settle(self: &Arc<Self>, daily: &mut Daily, want: u32) -> Result<u32, BudgetError> {
        let now = self.clock.now();
        let expires = now + HOLD_LIFETIME;
        let request = budget::HoldRequest {
            want,
            per_day: self.settings.per_day,
            now_ms: now.timestamp_millis(),
            expires_at_ms: expires.timestamp_millis(),
        };
        let day = daily.day.unwrap_or_else(|| now.date_naive());
        let settled = self
            .store
            .budget_settle(&self.client_id, day, &self.owner, daily.used, request)
            .await?;
        daily.spent = settled.day.spent;
        daily.exhausted |= settled.day.exhausted;
        daily.used = 0;
        daily.held = settled.granted;
        daily.generation += 1;
        daily.hold_expires = (settled.granted > 0).then_some(expires);
        if settled.granted > 0 {
            self.give_back_before_lapse(daily.generation);
        }
        Ok(settled.granted)
    }

    /// Settles the hold without asking for another (nothing to do without one).
    async fn give_back(self: &Arc<Self>, daily: &mut Daily) -> Result<(), BudgetError> {
        if daily.held == 0 && daily.used == 0 {
            return Ok(());
        }
        self.settle(daily, 0).await.map(|_| ())
    }

    /// Settles hold `generation` shortly before it lapses if it is still the current one,
    /// so that an idle process's use is recorded and its rest counted no longer. The wait
    /// runs on a thread of this budget's own (real time, which tokio's paused test clock
    /// does not jump ahead), and the settling on the runtime that took the hold.
    fn give_back_before_lapse(self: &Arc<Self>, generation: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let at = std::time::Instant::now() + (HOLD_LIFETIME - HOLD_MARGIN);
        let mut lapses = self.lapses.lock().unwrap_or_else(|e| e.into_inner());
        if lapses.is_none() {
            let (sender, deadlines) = std::sync::mpsc::channel::<(std::time::Instant, u64)>();
            let shared = Arc::downgrade(self);
            let started = std::thread::Builder::new()
                .name("ctct-budget-lapse".into())
                .spawn(move || watch_lapses(&deadlines, &shared, &runtime));
            if started.is_err() {
                tracing::warn!(
                    "cannot start the request budget's lapse thread; idle holds lapse by themselves"
                );
                return;
            }
            *lapses = Some(sender);
        }
        if let Some(lapses) = lapses.as_ref() {
            let _ = lapses.send((at, generation));
        }
    }
}

/// Waits for the deadline of the latest hold (each new hold replaces the one before) and
/// settles it then if it is still current. Ends when the budget is gone.
fn watch_lapses(
    deadlines: &std::sync::mpsc::Receiver<(std::time::Instant, u64)>,
    shared: &std::sync::Weak<Shared>,
    runtime: &tokio::runtime::Handle,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut pending: Option<(std::time::Instant, u64)> = None;
    loop {
        let next = match pending {
            Some((at, _)) => {
                deadlines.recv_timeout(at.saturating_duration_since(std::time::Instant::now()))
            }
            None => deadlines.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(deadline) => pending = Some(deadline),
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                let Some((_, generation)) = pending.take() else {
                    continue;
                };
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                runtime.spawn(async move {
                    let mut daily = shared.daily.lock().await;
                    if daily.generation == generation
                        && let Err(error) = shared.give_back(&mut daily).await
                    {
                        tracing::warn!(error = %error, "could not settle the request budget's hold; it lapses by itself");
                    }
                });
            }
        }
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
