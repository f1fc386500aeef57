//! The sandbox's shared state: `Shared` (clock, limiter, faults, logs and the `World` behind
//! one mutex), `World` (accounts, OAuth store, effects log) and `Account` (one Constant
//! Contact account's data). Handlers lock the world, do their work without awaiting, and
//! unlock; time-driven progress (activities, campaign sends) is applied lazily by `tick`.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use super::account::AccountInfo;
use super::activities::Activities;
use super::campaigns::Campaigns;
use super::clock::{Millis, SandboxClock};
use super::contacts::model::ContactStore;
use super::custom_fields::CustomFields;
use super::errors::ApiError;
use super::faults::FaultTable;
use super::limits::Limiter;
use super::lists::Lists;
use super::logs::{EffectLog, RequestLog};
use super::oauth::AuthStore;
use super::reports::Reports;
use super::rng::SplitMix64;
use super::segments::Segments;
use super::tags::Tags;

/// Locks a mutex, ignoring poisoning (a panicked handler must not wedge the sandbox).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Default speed of bulk activities (rows per second of sandbox time).
pub(crate) const DEFAULT_ROWS_PER_SEC: u32 = 20_000;

/// Everything the server tasks share. `Debug` prints no data and no secrets.
pub(crate) struct Shared {
    pub(crate) seed: u64,
    /// `http://ADDR`, no trailing slash.
    pub(crate) origin: String,
    pub(crate) clock: SandboxClock,
    pub(crate) world: Mutex<World>,
    pub(crate) limiter: Mutex<Limiter>,
    pub(crate) faults: Mutex<FaultTable>,
    pub(crate) requests: Mutex<RequestLog>,
    pub(crate) token_requests: AtomicU64,
    /// A pause after each chunk of an export file, in ms (0: as fast as the reader takes it),
    /// to play a slow network under a large download.
    pub(crate) download_pace_ms: AtomicU64,
    pub(crate) access_token_ttl_ms: Millis,
    pub(crate) state_file: Option<PathBuf>,
    /// What `reset` re-seeds the first account with.
    pub(crate) initial_contacts: usize,
    /// The per-run secret the admin API asks for (`Authorization: Bearer …`); random, never
    /// derived from the seed.
    pub(crate) admin_token: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("origin", &self.origin)
            .field("seed", &self.seed)
            .field("state_file", &self.state_file)
            .finish_non_exhaustive()
    }
}

/// The authenticated caller of an API request (set by the gate).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) account: usize,
    pub(crate) command_id: Option<String>,
}

/// Context of one state change: the time, the client's command id, and where effects go.
pub(crate) struct Cx<'a> {
    pub(crate) now: Millis,
    pub(crate) command_id: Option<&'a str>,
    pub(crate) effects: &'a mut EffectLog,
    pub(crate) rows_per_sec: u32,
}

impl Cx<'_> {
    /// Sandbox time in whole seconds (contacts' resolution).
    pub(crate) fn now_secs(&self) -> i64 {
        self.now.div_euclid(1000)
    }

    pub(crate) fn effect(&mut self, account: &str, kind: &str, resource: impl ToString) {
        let command_id = self.command_id;
        self.effects.push(
            self.now,
            account,
            kind,
            Some(resource.to_string()),
            command_id,
        );
    }
}

/// All accounts plus the OAuth store; what the state file holds.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct World {
    pub(crate) accounts: Vec<Account>,
    pub(crate) auth: AuthStore,
    pub(crate) rows_per_sec: u32,
    pub(crate) id_rng: SplitMix64,
    #[serde(skip)]
    pub(crate) effects: EffectLog,
}

impl World {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            accounts: Vec::new(),
            auth: AuthStore::default(),
            rows_per_sec: DEFAULT_ROWS_PER_SEC,
            id_rng: SplitMix64::new(seed ^ 0xACC0_0000),
            effects: EffectLog::default(),
        }
    }

    /// Index of the account with this `encoded_account_id`.
    pub(crate) fn account_index(&self, id: &str) -> Option<usize> {
        self.accounts.iter().position(|a| a.id == id)
    }

    /// Runs `f` on one account after applying its due time-driven progress.
    pub(crate) fn with_account<R>(
        &mut self,
        index: usize,
        now: Millis,
        command_id: Option<&str>,
        f: impl FnOnce(&mut Account, &mut Cx<'_>) -> R,
    ) -> Option<R> {
        let World {
            accounts,
            effects,
            rows_per_sec,
            ..
        } = self;
        let account = accounts.get_mut(index)?;
        let mut cx = Cx {
            now,
            command_id,
            effects,
            rows_per_sec: *rows_per_sec,
        };
        account.tick(&mut cx);
        Some(f(account, &mut cx))
    }
}

/// One Constant Contact account and all its data.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Account {
    /// `encoded_account_id`, e.g. `a7k2m9q4x1c8`.
    pub(crate) id: String,
    pub(crate) platform_user_id: String,
    pub(crate) rng: SplitMix64,
    pub(crate) contacts: ContactStore,
    pub(crate) fields: CustomFields,
    pub(crate) lists: Lists,
    pub(crate) activities: Activities,
    pub(crate) campaigns: Campaigns,
    /// Sends and tracking events of sent campaign activities.
    #[serde(default)]
    pub(crate) reports: Reports,
    /// Segments, made in the UI (here: the seeder and the admin API); read through the API.
    #[serde(default)]
    pub(crate) segments: Segments,
    /// Contact tags (`/contact_tags`).
    #[serde(default)]
    pub(crate) tags: Tags,
    pub(crate) info: AccountInfo,
    /// Earliest sandbox time at which `tick` has something to do (0 = check now).
    #[serde(skip)]
    pub(crate) next_due: Millis,
}

impl Account {
    /// A new account with no data but its confirmed owner e-mail.
    pub(crate) fn new(id: String, seed: u64, number: usize, now: Millis) -> Self {
        let mut rng = SplitMix64::new(seed);
        let platform_user_id = rng.uuid().to_string();
        let info = AccountInfo::new(&id, number, now);
        Self {
            id,
            platform_user_id,
            rng,
            contacts: ContactStore::default(),
            fields: CustomFields::default(),
            lists: Lists::default(),
            activities: Activities::default(),
            campaigns: Campaigns::default(),
            reports: Reports::default(),
            segments: Segments::default(),
            tags: Tags::default(),
            info,
            next_due: 0,
        }
    }

    /// Applies time-driven progress that is due: bulk activities and campaign sends.
    pub(crate) fn tick(&mut self, cx: &mut Cx<'_>) {
        if cx.now < self.next_due {
            return;
        }
        super::activities::progress(self, cx, false);
        let campaigns_due = self.progress_campaigns(cx, false);
        let activities_due = self.activities.next_due(cx.rows_per_sec);
        self.next_due = [campaigns_due, activities_due]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Millis::MAX);
    }

    /// Moves campaign sends along (all executing ones at once with `force`) and records the
    /// recipients and tracking events of every send that completes; returns when something
    /// is next due.
    pub(crate) fn progress_campaigns(&mut self, cx: &mut Cx<'_>, force: bool) -> Option<Millis> {
        let (next, sent) = self.campaigns.progress(&self.id, cx, force);
        for (index, sent_at) in sent {
            self.record_send(index, sent_at);
        }
        next
    }

    /// Records a completed send of activity `index` that started at `sent_at`.
    pub(crate) fn record_send(&mut self, index: u32, sent_at: Millis) {
        let activity = &self.campaigns.activities[index as usize];
        let recipients =
            super::reports::recipients(&self.contacts, &self.lists, &activity.contact_list_ids);
        let tracking = self.reports.by_activity.entry(index).or_default();
        super::reports::record_send(
            tracking,
            &activity.id,
            activity.html_content.as_deref(),
            sent_at,
            &recipients,
        );
    }

    /// Forces the next `tick` to look again (after anything that schedules progress).
    pub(crate) fn touch(&mut self) {
        self.next_due = 0;
    }

    /// Rebuilds the in-memory indexes after loading from a state file.
    pub(crate) fn rebuild_indexes(&mut self) {
        self.contacts.rebuild_indexes();
        self.fields.rebuild_indexes();
        self.lists.rebuild_indexes();
        self.activities.rebuild_indexes();
        self.campaigns.rebuild_indexes();
        self.next_due = 0;
    }
}

impl Shared {
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    pub(crate) fn now_ms(&self) -> Millis {
        self.clock.now_ms()
    }

    /// Runs `f` on the caller's account (after its due progress) under the world lock.
    pub(crate) fn with_account<R>(
        &self,
        caller: &Caller,
        f: impl FnOnce(&mut Account, &mut Cx<'_>) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let now = self.now_ms();
        let mut world = self.world();
        world
            .with_account(caller.account, now, caller.command_id.as_deref(), f)
            .unwrap_or_else(|| Err(ApiError::unauthorized()))
    }
}
