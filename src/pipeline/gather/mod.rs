//! Gathered activities: bursts of `contact.tag`, `contact.untag`, `list.add_contacts` and
//! `list.remove_contacts` coalesced into one bulk activity per (account, kind, sorted targets:
//! tags or lists), and bursts of `contact.delete`, `contact.erase`, `list.delete`, `tag.delete`
//! and `custom_field.delete` into one delete activity per (account, kind), as bursts of upserts
//! are coalesced into imports (`bulk`). Each command still gets its own result.
//!
//! ```text
//! process  → join: open batch of (account, kind, targets), ≤ the kind's items (500 contacts
//!            or tags, 100 lists or fields); an open batch of
//!            another kind or other targets sharing a contact (or naming contacts by e-mail)
//!            is sealed first, so commands about one contact keep their order
//! runner   → one worker per account runs its sealed batches in the order they were sealed:
//!            e-mails looked up → one activity → its id in each command's ledger row
//!            (`effect_ref`) → polled until it ends → each command's result stored, published,
//!            acked
//! short    → an activity refused (404, 400) or completing fewer items than it was given is
//!            split in halves and each half run again, down to the one command it is about
//! ```
//! The tagging and membership commands take one lane per account (`Processor::lane_key`), so
//! they reach the gatherer in the order they were published. The delete commands keep the
//! lane of their ordering key (the contact, list, tag or field) and, once gathered, hold that
//! key until their result is out, as batched upserts do: a later command about the same
//! contact (or list, tag, field) waits behind the delete. A gathered tagging or membership
//! command holds its contacts' keys likewise (behind the commands already waiting for them).
//! A gathered batch awaits its activity, so its results say `"activity_state": "completed"` —
//! also a tagging or membership batch of one command (a later command about its contacts
//! waits for it); a delete batch of one goes through the ordinary handler unless a command
//! already waits for it. A command
//! reaching an idle daemon (nothing else in flight, nothing of its account gathering or
//! running) is applied at once, not held for a window.
//!
//! Batches live in memory only: after a restart their unacked commands come back; those whose
//! activity was accepted answer from their `effect_ref` without a second activity (a delete
//! once that activity has completed), the others gather again. An activity whose answer was
//! lost is started again by the retry (the same tags or lists, applied twice, end the same; a
//! second delete of the same items finds them deleted).

mod run;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use tokio::sync::mpsc;

use crate::command::Command;
use crate::command::contact::ContactRef;
use crate::command::tagging::{ActivityKind, TaggingContacts};
use crate::pipeline::bulk::BulkConfig;
use crate::pipeline::held::HeldKeys;
use crate::pipeline::session::Session;

pub(super) use run::run;

/// Longest an expired window keeps gathering while its account's worker is busy, from its
/// opening. Its commands stay unacked meanwhile (well under RabbitMQ's consumer timeout).
const WORKER_WAIT: Duration = Duration::from_secs(120);

/// A command on its way into a batch (decided by `process`).
#[derive(Debug)]
pub struct Joining {
    pub id: String,
    pub account: String,
    pub command_type: String,
    pub command: Box<Command>,
    pub attempts: u32,
    pub started_at: DateTime<Utc>,
    /// The ordering key the command holds while gathered, and its id (the delete commands).
    pub release: Option<(String, String)>,
}

/// A command of a batch.
pub(super) struct Member {
    pub(super) id: String,
    pub(super) account: String,
    pub(super) command_type: String,
    pub(super) command: Box<Command>,
    pub(super) started_at: DateTime<Utc>,
}

impl Member {
    pub(super) fn contacts(&self) -> Option<TaggingContacts> {
        self.command.gathering().map(|g| g.contacts.into_owned())
    }

    /// The targets as the command gave them (the result names them so).
    pub(super) fn targets(&self) -> Vec<String> {
        self.command
            .gathering()
            .map(|g| g.targets.to_vec())
            .unwrap_or_default()
    }
}

/// The delivery of a gathered command, disposed of when its batch is done.
pub(super) struct Waiter {
    pub(super) session: Arc<Session>,
    pub(super) delivery: Delivery,
    pub(super) attempts: u32,
    /// The ordering key held while gathered, released with the result.
    pub(super) release: Option<(String, String)>,
    /// The contacts' ordering keys held while gathered (tagging and membership commands), as
    /// [`gathered_holder`]: a command about one of these contacts published later waits.
    pub(super) contact_keys: Vec<String>,
}

/// How a gathered command holds its contacts' ordering keys (`id#…`, as the ordering book
/// names its holders, so a finished one is found in the ledger by its id).
pub(super) fn gathered_holder(id: &str) -> String {
    format!("{id}#gathered")
}

/// The ordering keys of the contacts a tagging or membership command names (by id or by
/// address, as `ContactRef::key` makes them). A delete holds its own key (`release`).
pub(super) fn contact_keys(kind: ActivityKind, contacts: &TaggingContacts) -> Vec<String> {
    if !kind.about_contacts() || kind.deleted_key().is_some() {
        return Vec::new();
    }
    match contacts {
        TaggingContacts::Ids(ids) => ids
            .iter()
            .map(|id| ContactRef::Id(id.clone()).key())
            .collect(),
        TaggingContacts::Emails(emails) => emails
            .iter()
            .map(|e| ContactRef::Email(e.clone()).key())
            .collect(),
    }
}

type Key = (String, ActivityKind, Vec<String>);

/// A batch gathering commands.
pub(super) struct Open {
    /// Opening order, to seal conflicting batches in the order they were opened.
    seq: u64,
    pub(super) id: String,
    pub(super) account: String,
    pub(super) kind: ActivityKind,
    /// Sorted, without repeats.
    pub(super) targets: Vec<String>,
    pub(super) members: Vec<Member>,
    ids: HashSet<String>,
    /// Addresses named by the members (each one contact at most once looked up).
    emails: usize,
    opened: Instant,
}

impl Open {
    fn contacts(&self) -> usize {
        self.ids.len() + self.emails
    }

    /// Whether a command of `kind` naming `contacts` may be about a contact of this batch
    /// (a list, tag or custom field delete shares nothing with a batch about contacts).
    fn shares(&self, kind: ActivityKind, contacts: &TaggingContacts) -> bool {
        if kind.about_contacts() != self.kind.about_contacts() {
            return false;
        }
        match contacts {
            TaggingContacts::Emails(_) => true,
            TaggingContacts::Ids(ids) => {
                self.emails > 0 || ids.iter().any(|i| self.ids.contains(i))
            }
        }
    }
}

#[derive(Default)]
struct State {
    open: HashMap<Key, Open>,
    seq: u64,
    /// Every command held here, by (account, command id).
    waiters: HashMap<(String, String), Waiter>,
    /// Commands whose batch is giving out results: a redelivery of one waits a moment.
    finishing: HashSet<(String, String)>,
    /// Sealed batches not finished yet, per account.
    busy: HashMap<String, usize>,
    /// Sealed batches waiting for their account's worker, by batch id: (account, command
    /// ids), whose claims are renewed like those of open batches.
    waiting: HashMap<String, (String, Vec<String>)>,
}

/// Gathers tagging, list membership and delete commands into batches; owned by the [`super::process::Processor`].
pub struct Gatherer {
    pub(super) config: BulkConfig,
    state: Mutex<State>,
    sealed: mpsc::UnboundedSender<Open>,
    pub(super) inbox: Mutex<Option<mpsc::UnboundedReceiver<Open>>>,
}

impl Gatherer {
    pub fn new(config: BulkConfig) -> Self {
        let (sealed, inbox) = mpsc::unbounded_channel();
        Self {
            config,
            state: Mutex::default(),
            sealed,
            inbox: Mutex::new(Some(inbox)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether nothing of `account` is gathering or running.
    pub fn idle(&self, account: &str) -> bool {
        let state = self.lock();
        state.busy.get(account).copied().unwrap_or(0) == 0
            && !state.open.keys().any(|(a, _, _)| a == account)
    }

    /// Whether command `id` of `account` is held here (gathering, running or finishing).
    pub fn holds(&self, account: &str, id: &str) -> bool {
        let state = self.lock();
        let place = (account.to_owned(), id.to_owned());
        state.waiters.contains_key(&place) || state.finishing.contains(&place)
    }

    /// Takes a command (its delivery stays unacked until its result is out). Gives the
    /// delivery back when the command is already here and its batch is giving out results.
    pub(crate) fn join(
        &self,
        joining: Joining,
        session: Arc<Session>,
        delivery: Delivery,
        held: &HeldKeys,
    ) -> Option<Delivery> {
        let place = (joining.account.clone(), joining.id.clone());
        let mut waiter = Waiter {
            session,
            delivery,
            attempts: joining.attempts,
            release: joining.release.clone(),
            contact_keys: Vec::new(),
        };
        let mut state = self.lock();
        if state.finishing.contains(&place) {
            return Some(waiter.delivery);
        }
        // A redelivery (the first delivery's channel is gone): its result goes out here.
        if let Some(held) = state.waiters.get_mut(&place) {
            waiter.contact_keys = std::mem::take(&mut held.contact_keys);
            *held = waiter;
            return None;
        }
        let Some(gathering) = joining.command.gathering() else {
            return Some(waiter.delivery);
        };
        let mut targets = gathering.targets.to_vec();
        targets.sort();
        targets.dedup();
        let kind = gathering.kind;
        let key: Key = (joining.account.clone(), kind, targets.clone());
        let contacts = gathering.contacts.into_owned();
        // Order: a batch of other work that may share a contact goes first.
        let mut conflicting: Vec<(u64, Key)> = state
            .open
            .iter()
            .filter(|(k, open)| {
                **k != key && open.account == joining.account && open.shares(kind, &contacts)
            })
            .map(|(k, open)| (open.seq, k.clone()))
            .collect();
        conflicting.sort();
        for (_, k) in conflicting {
            self.seal(&mut state, &k);
        }
        let (new_ids, new_emails) = match &contacts {
            TaggingContacts::Ids(ids) => (ids.clone(), 0),
            TaggingContacts::Emails(emails) => (Vec::new(), emails.len()),
        };
        let full = state.open.get(&key).is_some_and(|open| {
            let adding = new_ids.iter().filter(|i| !open.ids.contains(*i)).count() + new_emails;
            open.contacts() + adding > kind.max_items()
        });
        if full {
            self.seal(&mut state, &key);
        }
        let seq = state.seq;
        let open = state.open.entry(key.clone()).or_insert_with(|| Open {
            seq,
            id: uuid::Uuid::new_v4().to_string(),
            account: joining.account.clone(),
            kind,
            targets,
            members: Vec::new(),
            ids: HashSet::new(),
            emails: 0,
            opened: Instant::now(),
        });
        open.ids.extend(new_ids);
        open.emails += new_emails;
        let now_full = open.contacts() >= kind.max_items();
        let holder = gathered_holder(&joining.id);
        waiter.contact_keys = contact_keys(kind, &contacts);
        open.members.push(Member {
            id: joining.id,
            account: joining.account,
            command_type: joining.command_type,
            command: joining.command,
            started_at: joining.started_at,
        });
        state.seq += 1;
        if let Some((key, id)) = &joining.release {
            held.hold(key, id);
        }
        for key in &waiter.contact_keys {
            held.hold_behind(key, &holder);
        }
        state.waiters.insert(place, waiter);
        if now_full {
            self.seal(&mut state, &key);
        }
        None
    }

    fn seal(&self, state: &mut State, key: &Key) {
        if let Some(open) = state.open.remove(key) {
            *state.busy.entry(open.account.clone()).or_default() += 1;
            let ids = open.members.iter().map(|m| m.id.clone()).collect();
            state
                .waiting
                .insert(open.id.clone(), (open.account.clone(), ids));
            let _ = self.sealed.send(open);
        }
    }

    /// Seals the batches whose window has closed, unless their account's worker is busy
    /// (then they keep gathering, at most [`WORKER_WAIT`] from their opening).
    pub(super) fn seal_expired(&self) {
        let mut state = self.lock();
        let mut expired: Vec<(u64, Key)> = state
            .open
            .iter()
            .filter(|(_, open)| {
                let age = open.opened.elapsed();
                let busy = state.busy.get(&open.account).copied().unwrap_or(0) > 0;
                age >= self.config.window && (age >= WORKER_WAIT || !busy)
            })
            .map(|(key, open)| (open.seq, key.clone()))
            .collect();
        expired.sort();
        for (_, key) in expired {
            self.seal(&mut state, &key);
        }
    }

    /// The commands of every open batch older than `age` and of every sealed batch waiting
    /// for its account's worker, by account (to renew their claims).
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
            .chain(state.waiting.values().cloned())
            .collect()
    }

    /// The account's worker starts batch `id` (it renews the claims from now on).
    pub(super) fn started(&self, id: &str) {
        self.lock().waiting.remove(id);
    }

    /// Takes the deliveries of `members` to give them their results; a redelivery of one
    /// meanwhile waits a moment ([`Gatherer::join`]).
    pub(super) fn take_waiters<'a>(
        &self,
        members: impl Iterator<Item = &'a Member>,
    ) -> Vec<Option<Waiter>> {
        let mut state = self.lock();
        members
            .map(|m| {
                let place = (m.account.clone(), m.id.clone());
                state.finishing.insert(place.clone());
                state.waiters.remove(&place)
            })
            .collect()
    }

    /// The attempt number of a command held here.
    pub(super) fn attempts_of(&self, account: &str, id: &str) -> Option<u32> {
        self.lock()
            .waiters
            .get(&(account.to_owned(), id.to_owned()))
            .map(|w| w.attempts)
    }

    /// The results of these commands (account, id) are out.
    pub(super) fn done_with(&self, places: &[(String, String)]) {
        let mut state = self.lock();
        for place in places {
            state.finishing.remove(place);
        }
    }

    /// A sealed batch of `account` has finished.
    pub(super) fn batch_done(&self, account: &str) {
        let mut state = self.lock();
        if let Some(busy) = state.busy.get_mut(account) {
            *busy = busy.saturating_sub(1);
            if *busy == 0 {
                state.busy.remove(account);
            }
        }
    }
}
