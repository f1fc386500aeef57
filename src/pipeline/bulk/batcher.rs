//! The batcher: upserts gather in open batches per (account, sorted `list_ids`), sealed when
//! the window closes, the batch is full, the body would pass 4 MB or an e-mail repeats.
//! Sealed batches go to the runner (`run.rs`).
//!
//! One import per account runs at a time (its lane): the contact ids of a finished import
//! are read from the list's contacts updated while it ran, so two imports of one account
//! running together would each page through the other's contacts too (a 300-row batch beside
//! a 5,000-row one spent 22 requests). While the lane is taken, an expired window stays open
//! and keeps gathering upserts, up to [`LANE_WAIT`] from its opening; a batch sealed meanwhile
//! waits for the lane as long.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use tokio::sync::{Semaphore, mpsc};

use crate::api::model::ImportRow;
use crate::command::Command;
use crate::config::BulkSettings;
use crate::pipeline::held::HeldKeys;
use crate::pipeline::session::Session;
use crate::store::bulk::OpenBatch;

/// Keep the JSON body under the import's 4 MB (the real API silently drops data past it).
const MAX_BODY: usize = 3_900_000;

/// Longest a batch waits for its account's lane, from its opening; past it, the batch is
/// imported beside the running one. Its commands stay unacked meanwhile: this plus the
/// runner's 20-minute activity deadline stays under RabbitMQ's 30-minute consumer timeout.
pub(super) const LANE_WAIT: Duration = Duration::from_secs(120);

/// `bulk.*` settings.
#[derive(Debug, Clone)]
pub struct BulkConfig {
    pub enabled: bool,
    pub window: Duration,
    /// `bulk.idle_one_by_one`.
    pub idle_one_by_one: bool,
    pub max_batch: usize,
    pub poll_initial: Duration,
    pub poll_max: Duration,
}

impl BulkConfig {
    pub fn from_settings(bulk: &BulkSettings) -> Self {
        Self {
            enabled: bulk.enabled,
            window: Duration::from_millis(bulk.window_ms),
            idle_one_by_one: bulk.idle_one_by_one,
            max_batch: bulk.max_batch as usize,
            poll_initial: Duration::from_millis(bulk.poll_initial_ms),
            poll_max: Duration::from_millis(bulk.poll_max_ms),
        }
    }
}

/// How an upsert joins.
#[derive(Debug)]
pub enum Row {
    /// A new row for the open batch of (account, lists).
    New {
        lists: Vec<String>,
        row: Box<ImportRow>,
    },
    /// A redelivery of a command already in this running batch.
    Rejoin(String),
}

/// An upsert on its way into a batch (decided by `process`).
#[derive(Debug)]
pub struct Joining {
    pub id: String,
    pub account: String,
    pub command_type: String,
    pub command: Box<Command>,
    pub attempts: u32,
    pub started_at: DateTime<Utc>,
    pub release: Option<(String, String)>,
    pub row: Row,
}

/// A command of a batch.
pub(super) struct Member {
    pub(super) id: String,
    pub(super) account: String,
    pub(super) command_type: String,
    pub(super) email: String,
    /// For the one-by-one fallback; `None` for batches resumed after a restart.
    pub(super) command: Option<Box<Command>>,
    pub(super) attempts: u32,
    pub(super) started_at: DateTime<Utc>,
}

/// A delivery waiting for its batch's result.
pub(super) struct Waiter {
    pub(super) session: Arc<Session>,
    pub(super) delivery: Delivery,
    pub(super) attempts: u32,
    pub(super) release: Option<(String, String)>,
}

pub(super) struct Open {
    pub(super) id: String,
    pub(super) account: String,
    pub(super) lists: Vec<String>,
    pub(super) members: Vec<Member>,
    pub(super) rows: Vec<ImportRow>,
    pub(super) emails: HashSet<String>,
    pub(super) bytes: usize,
    pub(super) opened: Instant,
}

#[derive(Default)]
pub(super) struct Live {
    pub(super) waiters: HashMap<String, Waiter>,
    pub(super) finished: bool,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) open: HashMap<(String, Vec<String>), Open>,
    pub(super) live: HashMap<String, Live>,
}

pub(super) enum Sealed {
    Fresh(Open),
    Resumed(OpenBatch),
}

/// Collects upserts into batches; owned by the [`Processor`].
pub struct Batcher {
    pub(super) config: BulkConfig,
    pub(super) state: Mutex<State>,
    pub(super) sealed: mpsc::UnboundedSender<Sealed>,
    pub(super) inbox: Mutex<Option<mpsc::UnboundedReceiver<Sealed>>>,
    /// Each account's lane: one permit, held by the batch importing (see the module).
    lanes: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Batcher {
    pub fn new(config: BulkConfig) -> Self {
        let (sealed, inbox) = mpsc::unbounded_channel();
        Self {
            config,
            state: Mutex::new(State::default()),
            sealed,
            inbox: Mutex::new(Some(inbox)),
            lanes: Mutex::default(),
        }
    }

    /// The lane of `account`.
    pub(super) fn lane(&self, account: &str) -> Arc<Semaphore> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes
            .entry(account.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone()
    }

    /// The accounts whose lane is taken.
    fn busy_accounts(&self) -> HashSet<String> {
        let lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes
            .iter()
            .filter(|(_, lane)| lane.available_permits() == 0)
            .map(|(account, _)| account.clone())
            .collect()
    }

    /// Upserts waiting in open batches, and how long the oldest open batch has been open.
    pub fn open(&self) -> (usize, Duration) {
        let state = self.lock();
        let waiting = state.open.values().map(|open| open.members.len()).sum();
        let oldest = state
            .open
            .values()
            .map(|open| open.opened.elapsed())
            .max()
            .unwrap_or_default();
        (waiting, oldest)
    }

    /// Whether coalescing has nothing going for (`account`, `lists`): no batch of theirs
    /// gathering upserts and no import of the account running.
    pub fn idle_for(&self, account: &str, lists: &[String]) -> bool {
        let importing = self
            .lanes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(account)
            .is_some_and(|lane| lane.available_permits() == 0);
        !importing
            && !self
                .lock()
                .open
                .contains_key(&(account.to_owned(), lists.to_vec()))
    }

    /// The commands of every open batch older than `age`, by account (to renew their claims).
    pub(super) fn open_claims(&self, age: Duration) -> Vec<(String, Vec<String>)> {
        let state = self.lock();
        state
            .open
            .values()
            .filter(|open| open.opened.elapsed() >= age)
            .map(|open| {
                let ids = open.members.iter().map(|m| m.id.clone()).collect();
                (open.account.clone(), ids)
            })
            .collect()
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether batch `id` runs in this process: `Some(true)` running, `Some(false)` finishing.
    pub fn live(&self, id: &str) -> Option<bool> {
        self.lock().live.get(id).map(|live| !live.finished)
    }

    /// Takes an upsert (its delivery stays unacked until its result is out). Gives the
    /// delivery back when the batch it would rejoin is finishing.
    pub(crate) fn join(
        &self,
        joining: Joining,
        session: Arc<Session>,
        delivery: Delivery,
        held: &HeldKeys,
    ) -> Option<Delivery> {
        let waiter = Waiter {
            session,
            delivery,
            attempts: joining.attempts,
            release: joining.release.clone(),
        };
        let mut state = self.lock();
        let (lists, row) = match joining.row {
            Row::Rejoin(batch) => {
                return match state.live.get_mut(&batch) {
                    Some(live) if !live.finished => {
                        if let Some((key, id)) = &joining.release {
                            held.hold(key, id);
                        }
                        live.waiters.insert(joining.id, waiter);
                        None
                    }
                    _ => Some(waiter.delivery),
                };
            }
            Row::New { lists, row } => (lists, *row),
        };
        let email = row.email.to_lowercase();
        let bytes = serde_json::to_vec(&row).map_or(0, |b| b.len()) + 1;
        let key = (joining.account.clone(), lists.clone());
        let full = state.open.get(&key).is_some_and(|open| {
            open.emails.contains(&email)
                || open.members.len() >= self.config.max_batch
                || open.bytes + bytes > MAX_BODY
        });
        if full && let Some(open) = state.open.remove(&key) {
            let _ = self.sealed.send(Sealed::Fresh(open));
        }
        let open = state.open.entry(key.clone()).or_insert_with(|| Open {
            id: uuid::Uuid::new_v4().to_string(),
            account: joining.account.clone(),
            lists,
            members: Vec::new(),
            rows: Vec::new(),
            emails: HashSet::new(),
            bytes: 200,
            opened: Instant::now(),
        });
        let batch = open.id.clone();
        open.emails.insert(email.clone());
        open.bytes += bytes;
        open.rows.push(row);
        open.members.push(Member {
            id: joining.id.clone(),
            account: joining.account,
            command_type: joining.command_type,
            email,
            command: Some(joining.command),
            attempts: joining.attempts,
            started_at: joining.started_at,
        });
        let now_full = open.members.len() >= self.config.max_batch;
        if let Some((key, id)) = &joining.release {
            held.hold(key, id);
        }
        state
            .live
            .entry(batch)
            .or_default()
            .waiters
            .insert(joining.id, waiter);
        if now_full && let Some(open) = state.open.remove(&key) {
            let _ = self.sealed.send(Sealed::Fresh(open));
        }
        None
    }

    /// Seals the batches whose window has closed, unless their account's lane is taken (then
    /// they wait, at most [`LANE_WAIT`] from their opening).
    pub(super) fn seal_expired(&self) {
        let busy = self.busy_accounts();
        let mut state = self.lock();
        let expired: Vec<_> = state
            .open
            .iter()
            .filter(|(_, open)| {
                let age = open.opened.elapsed();
                age >= self.config.window && (age >= LANE_WAIT || !busy.contains(&open.account))
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            if let Some(open) = state.open.remove(&key) {
                let _ = self.sealed.send(Sealed::Fresh(open));
            }
        }
    }
}
