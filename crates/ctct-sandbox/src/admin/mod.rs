//! `SandboxAdmin`: in-process access to everything the HTTP admin API (`admin::http`) does —
//! faults, logs, clock, accounts and tokens, seeding, reset, snapshots, activity completion,
//! limits and the state file. Cheap to clone; every method is synchronous and short.

pub(crate) mod http;
mod ops;
mod segments;

pub(crate) use ops::new_account;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::faults::FaultSpec;
use super::limits::LimitsMode;
use super::state::Shared;

pub use ops::IssuedTokens;

/// Handle on a running sandbox's state, for tests and tools in the same process.
#[derive(Debug, Clone)]
pub struct SandboxAdmin {
    pub(crate) shared: Arc<Shared>,
}

/// A fault as installed, with the uses it has left (`None`: until cleared).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstalledFault {
    pub id: u64,
    pub remaining: Option<u32>,
    #[serde(flatten)]
    pub spec: FaultSpec,
}

/// One account's data as the API renders it: contacts with every subresource (deleted ones
/// included), live custom fields, all lists (deleted ones with `deleted_at`), campaigns with
/// their activities, bulk activities and account e-mails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    pub account_id: String,
    pub contacts: Vec<Value>,
    pub custom_fields: Vec<Value>,
    pub lists: Vec<Value>,
    pub campaigns: Vec<Value>,
    pub campaign_activities: Vec<Value>,
    pub activities: Vec<Value>,
    pub account_emails: Vec<Value>,
}

/// Counts per account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub account_id: String,
    pub contacts: usize,
    pub deleted_contacts: usize,
    pub custom_fields: usize,
    pub lists: usize,
    pub campaigns: usize,
    pub activities: usize,
    pub queued_activities: usize,
}

/// What `GET /__sandbox/state` answers by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSummary {
    pub now: DateTime<Utc>,
    pub clock_frozen: bool,
    pub limits: LimitsView,
    pub token_requests: u64,
    pub accounts: Vec<AccountSummary>,
}

/// The limiter's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsView {
    pub mode: LimitsMode,
    pub per_second: u32,
    pub per_day: u32,
}

impl SandboxAdmin {
    /// The `encoded_account_id` of the first account (the one the ready refresh token is for).
    pub fn primary_account(&self) -> String {
        self.account_ids().into_iter().next().unwrap_or_default()
    }

    /// Every account id, in creation order.
    pub fn account_ids(&self) -> Vec<String> {
        self.shared
            .world()
            .accounts
            .iter()
            .map(|a| a.id.clone())
            .collect()
    }

    /// The sandbox clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Moves the clock forward (token expiry, activity progress, quota day…).
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.shared.clock.advance(by);
    }

    /// Sets the clock to an instant (it keeps running from there unless frozen).
    pub fn set_clock(&self, to: DateTime<Utc>) {
        self.shared.clock.set(to);
    }

    /// Stops the clock; it then moves only through `advance_clock`/`set_clock`.
    pub fn freeze_clock(&self) {
        self.shared.clock.freeze();
    }

    /// Lets a frozen clock run again.
    pub fn unfreeze_clock(&self) {
        self.shared.clock.unfreeze();
    }

    /// Jumps to the next 00:00:00 UTC: a new quota day (tokens may expire on the way).
    pub fn start_new_day(&self) -> DateTime<Utc> {
        let now = self.shared.now_ms();
        self.shared
            .clock
            .set(super::clock::to_datetime(super::clock::next_midnight(now)));
        self.now()
    }

    /// Total requests to the token endpoint since start (or reset).
    pub fn token_requests_count(&self) -> u64 {
        self.shared
            .token_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// API requests counted today for the primary client id.
    pub fn requests_today(&self) -> u32 {
        let client_id = self
            .shared
            .world()
            .auth
            .clients
            .first()
            .map(|c| c.client_id.clone())
            .unwrap_or_default();
        super::state::lock(&self.shared.limiter)
            .usage(&client_id, self.shared.now_ms())
            .requests_today
    }

    /// Changes the limits at run time.
    pub fn set_limits(&self, mode: LimitsMode, per_second: u32, per_day: u32) {
        let mut limiter = super::state::lock(&self.shared.limiter);
        limiter.mode = mode;
        limiter.per_second = per_second.max(1);
        limiter.per_day = per_day.max(1);
    }

    pub fn limits(&self) -> LimitsView {
        let limiter = super::state::lock(&self.shared.limiter);
        LimitsView {
            mode: limiter.mode,
            per_second: limiter.per_second,
            per_day: limiter.per_day,
        }
    }

    /// Pauses for `pause` (real time) after each chunk of 2,000 contacts of an export file,
    /// so a download takes as long as a large file over a slow network would.
    pub fn set_download_pace(&self, pause: std::time::Duration) {
        let ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
        self.shared
            .download_pace_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets how fast bulk activities progress (rows per second of sandbox time).
    pub fn set_activity_rate(&self, rows_per_sec: u32) {
        self.shared.world().rows_per_sec = rows_per_sec.max(1);
    }
}
