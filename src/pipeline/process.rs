//! What happens to one delivery: decode → ordering turn → ledger → handler → one final
//! result, or a confirmed hand-off to a waiting queue. The delivery is acked only after the
//! ledger commit and the confirmed publishes; if anything fails before that, the session is
//! marked broken, the delivery comes back, and the ledger replays its result.
//!
//! The [`Processor`] is one value; its work is spread over files by step:
//!
//! ```text
//! process.rs   decode, lane key, admission: ordering turn → ledger → replay / batch / handler
//! decision.rs  the pure decision on the handler's answer (no I/O; table-tested)
//! conclude.rs  the decision carried out: ledger, ordering book, counters → Disposition
//! dispose.rs   the Disposition carried out: store, publish, dead-letter, forward, ack
//! bulk/        upserts coalesced into imports; each command concluded and disposed as above
//! gather/      tagging, list membership and delete commands gathered into shared activities
//! ```

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use serde_json::json;

use crate::amqp::Topology;
use crate::amqp::event::{self, Event};
use crate::clock::Clock;
use crate::command::outcome::{CommandResult, ErrorCode, Outcome, ResultError};
use crate::command::{Command, DecodeError, Envelope, Rejection};
use crate::handler::{Attempt, Handler};
use crate::store::{Store, ledger};

use super::bulk::{self, Batcher, BulkConfig};
use super::busy::{BusyKeys, is_contact_key};
use super::decision::{self, Decision};
use super::error::PipelineError;
use super::gather::{self, Gatherer};
use super::held::{HeldKeys, Turn};
use super::session::Session;

/// Header naming why a forwarded command is waiting: `retry`, `behind`, `quota`, `auth` or
/// `claimed`.
pub const WAIT_HEADER: &str = "x-ctct-wait";
/// Headers on dead letters.
pub const REASON_CODE_HEADER: &str = "x-ctct-reason-code";
pub const REASON_HEADER: &str = "x-ctct-reason";

/// A delivery after decoding.
pub enum Decoded {
    /// The envelope itself is broken.
    Invalid(Box<DecodeError>),
    /// The envelope is fine but the command's data is not.
    InvalidCommand(Envelope, Rejection),
    Valid(Envelope, Box<Command>),
}

/// Counters since start.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub rejected: AtomicU64,
    pub replayed: AtomicU64,
    pub retried: AtomicU64,
    pub parked: AtomicU64,
    pub waited_behind: AtomicU64,
    /// Deliveries sent to wait because another process held the command's claim.
    pub waited_claimed: AtomicU64,
    /// Commands given up half-way because another replica took their claim over (found
    /// right before an API write).
    pub yielded: AtomicU64,
    /// Every dead letter: ctct-sync's own, and the broker's once the watch has taken them.
    pub dead_lettered: AtomicU64,
    /// Dead letters the broker made (no verdict of ctct-sync's), by `x-first-death-reason`.
    pub broker_dead_letters: crate::histogram::CounterFamily,
    pub ack_lost: AtomicU64,
    /// Results the broker returned from the results exchange (no queue bound for their
    /// routing key), kept in the unrouted queue.
    pub unrouted_results: AtomicU64,
    /// Results the broker returned from a `reply_to` queue (gone), kept in the unrouted queue.
    pub unrouted_replies: AtomicU64,
    /// Bulk imports sent (one per batch of coalesced upserts).
    pub bulk_batches: AtomicU64,
    /// Upserts given a result through a bulk import.
    pub bulk_commands: AtomicU64,
    /// API requests spent on bulk imports: imports, activity polls, contact-id lookups.
    pub bulk_requests: AtomicU64,
    /// Upserts that joined a batch but were applied one by one (small window, refused import).
    pub bulk_one_by_one: AtomicU64,
    /// Importable upserts applied one by one at once, without a window: they reached an idle
    /// daemon (nothing else in flight, no batch of their lists gathering).
    pub bulk_idle: AtomicU64,
    /// Final results by (command type, outcome).
    pub by_outcome: crate::histogram::CounterFamily,
    /// Time from taking a command to its final result, by command type.
    pub duration: crate::histogram::HistogramFamily,
}

/// Settings of the processing step.
#[derive(Debug, Clone)]
pub struct ProcessSettings {
    pub topology: Topology,
    pub max_attempts: u32,
    pub reply_to_prefixes: Vec<String>,
    /// Commands parked for the quota come back spread over this long after the reset.
    pub park_jitter: std::time::Duration,
    /// Coalescing of `contact.upsert` into bulk imports.
    pub bulk: BulkConfig,
    /// `amqp.claim_lease_ms`: how long this pipeline's claim on a command lasts unless
    /// renewed (see [`Processor::while_claimed`]).
    pub claim_lease: std::time::Duration,
}

/// The command a result is about.
#[derive(Debug, Clone, Copy)]
pub(super) struct Subject<'a> {
    pub id: &'a str,
    pub command_type: &'a str,
    pub account: &'a str,
}

/// Whether a final result goes into the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Record {
    /// Stored under the command's id. The fingerprint is recorded when the row is created
    /// by this (a rejected message that never began) or has none yet.
    Store(Option<String>),
    /// Not stored: the id belongs to another command (`id_reused`), whose row stays as it is.
    Skip,
}

/// What to do with a delivery once processing decided.
pub(super) enum Disposition {
    Final {
        result: CommandResult,
        dead_letter: Option<(ErrorCode, String)>,
        release: Option<(String, String)>,
        record: Record,
    },
    Replay(CommandResult),
    Wait {
        queue: String,
        kind: &'static str,
        expiration_ms: Option<u64>,
    },
    /// Handed to the batcher, which disposes of it when its batch is done.
    Batch(Box<bulk::Joining>),
    /// Handed to the gatherer, which disposes of it when its activity is done.
    Gather(Box<gather::Joining>),
}

/// Longest a tagging or membership command waits for a command about one of its contacts
/// that is being applied (see [`super::busy`]).
const CONTACT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Processes deliveries. Shared by every lane.
pub struct Processor {
    pub handler: Handler,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub settings: ProcessSettings,
    pub held: HeldKeys,
    /// Contacts a contact-keyed command is being applied to (see [`super::busy`]).
    busy: BusyKeys,
    pub stats: PipelineStats,
    pub(super) bulk: Batcher,
    pub(super) gather: Gatherer,
    /// Whether the store takes work (see [`super::store_health`]).
    pub store_health: Arc<super::store_health::StoreHealth>,
    announced: Mutex<HashSet<String>>,
    /// Events waiting for the next publish (sent before the next result goes out).
    pub(super) pending_events: Mutex<Vec<Event>>,
    /// This pipeline's id in the ledger's claims (random, one per running process).
    owner: String,
    /// This daemon as one of the replicas sharing the store and the queue.
    pub replica: Arc<super::replica::Replica>,
    /// Deliveries taken from the consumer and not yet decided by their lane (see [`Taken`]).
    in_flight: AtomicUsize,
}

/// One delivery taken from the consumer, counted in flight until dropped (when its lane has
/// decided it: a result, a wait, or a place in a bulk batch).
pub struct Taken(Arc<Processor>);

impl Drop for Taken {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Processor {
    pub fn new(
        handler: Handler,
        store: Store,
        clock: Arc<dyn Clock>,
        settings: ProcessSettings,
    ) -> Self {
        Self {
            bulk: Batcher::new(settings.bulk.clone()),
            gather: Gatherer::new(settings.bulk.clone()),
            handler,
            store,
            clock,
            settings,
            held: HeldKeys::default(),
            busy: BusyKeys::default(),
            stats: PipelineStats::default(),
            store_health: Arc::default(),
            announced: Mutex::new(HashSet::new()),
            pending_events: Mutex::new(Vec::new()),
            owner: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            replica: Arc::default(),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Counts a delivery just taken from the consumer as in flight (see [`Taken`]).
    pub fn take(self: &Arc<Self>) -> Taken {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Taken(self.clone())
    }

    /// Deliveries taken from the consumer and not yet decided, this one included when asked
    /// while deciding one.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// This pipeline's id in the ledger's claims and the store's `replicas` table.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The check made right before each API write for command `id` of `account`: whether
    /// this process still holds its claim (renewed on PostgreSQL by the same statement), and
    /// is alive in the store's eyes (see [`super::replica::Replica::alive`]).
    pub(super) fn fence(&self, account: &str, id: &str) -> crate::api::client::Fence {
        self.fence_all(account, vec![id.to_owned()])
    }

    /// [`Processor::fence`] for a write made for several commands at once: every claim held.
    pub(super) fn fence_all(&self, account: &str, ids: Vec<String>) -> crate::api::client::Fence {
        let store = self.store.clone();
        let replica = self.replica.clone();
        let owner: Arc<str> = Arc::from(self.owner.as_str());
        let lease = self.settings.claim_lease;
        let account: Arc<str> = Arc::from(account);
        let ids: Arc<[String]> = Arc::from(ids);
        Arc::new(move || {
            let (store, replica, owner, account, ids) = (
                store.clone(),
                replica.clone(),
                owner.clone(),
                account.clone(),
                ids.clone(),
            );
            Box::pin(async move {
                let claim = ledger::Claim {
                    owner: &owner,
                    lease,
                };
                let held = store
                    .ledger_fence(&account, &ids, claim, replica.alive())
                    .await?;
                Ok(held == ids.len())
            })
        })
    }

    /// Upserts waiting in open bulk batches, and how long the oldest of those batches has
    /// been open (past `bulk.window_ms` while another import of its account runs).
    pub fn bulk_open(&self) -> (usize, std::time::Duration) {
        self.bulk.open()
    }

    /// Takes off the front of `key`'s ordering queue every command that is finished in the
    /// ledger (it came back to another replica and finished there, see [`super::held`]),
    /// up to `holder` itself.
    async fn release_finished_fronts(
        &self,
        account: &str,
        key: &str,
        holder: &str,
    ) -> Result<(), PipelineError> {
        while let Some(front) = self.held.front(key)
            && front != holder
        {
            let id = front.rsplit_once('#').map_or(front.as_str(), |(id, _)| id);
            if self.store.ledger_result_of(account, id).await?.is_none() {
                break;
            }
            tracing::debug!(
                command_id = %id,
                "a command this process was holding the order for finished elsewhere"
            );
            self.held.release(key, &front);
        }
        Ok(())
    }

    /// Waits (at most [`CONTACT_WAIT`]) while a command about one of the contacts `keys` name
    /// is being applied; false when one still is. Commands out waiting (for a retry, or behind
    /// a gathered one) are not waited for: they come back through the consumer, which a lane
    /// sleeping here could hold up.
    async fn wait_for_contacts(&self, keys: &[String]) -> bool {
        let deadline = tokio::time::Instant::now() + CONTACT_WAIT;
        while self.busy.any_busy(keys) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            self.busy.freed_within(left).await;
        }
        true
    }

    /// This pipeline's claim on the commands it works on.
    pub(super) fn claim(&self) -> ledger::Claim<'_> {
        ledger::Claim {
            owner: &self.owner,
            lease: self.settings.claim_lease,
        }
    }

    /// Runs `work` while renewing this pipeline's claim on the commands `ids` of `account`
    /// every third of the lease (all of them in one store operation, alongside the work), so
    /// that a long command (a slow API, a bulk import) is not taken over by another process
    /// while it is worked on. A renewal that fails is logged; the work goes on (its effect is
    /// guarded by `effect_ref` as after any takeover).
    pub(super) async fn while_claimed<T>(
        &self,
        account: &str,
        ids: &[String],
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let period = (self.settings.claim_lease / 3).max(std::time::Duration::from_millis(10));
        let renewals = async {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.store.ledger_renew(account, ids, self.claim()).await {
                    // Fewer: a batch resumed after a restart works under the claims of the
                    // process before until its deliveries come back; not a warning.
                    Ok(held) => tracing::debug!(held, of = ids.len(), "claims renewed"),
                    Err(error) => {
                        tracing::warn!(error = %error, "could not renew the claims on commands in progress")
                    }
                }
            }
        };
        tokio::pin!(work);
        tokio::select! {
            out = &mut work => return out,
            _ = renewals => {}
        }
        // The renewals never end; were they to, the work still finishes.
        work.await
    }

    /// Decodes a delivery (cheap; done by the dispatcher to pick a lane).
    pub fn decode(&self, delivery: &Delivery) -> Decoded {
        let props = &delivery.properties;
        let meta = crate::command::MessageMeta {
            content_type: props.content_type().as_ref().map(|s| s.as_str()),
            content_encoding: props.content_encoding().as_ref().map(|s| s.as_str()),
            message_id: props.message_id().as_ref().map(|s| s.as_str()),
        };
        match crate::command::envelope::decode(&delivery.data, &meta) {
            Err(error) => Decoded::Invalid(error),
            Ok(envelope) => match Command::parse(&envelope, self.clock.now()) {
                Ok(command) => Decoded::Valid(envelope, Box::new(command)),
                Err(rejection) => Decoded::InvalidCommand(envelope, rejection),
            },
        }
    }

    /// The key choosing the lane: commands with the same key run one after the other.
    pub fn lane_key(decoded: &Decoded, delivery: &Delivery) -> String {
        match decoded {
            // Commands a bulk activity can gather take one lane per account, so that they
            // reach the gatherer in the order they were published (`gather`).
            Decoded::Valid(envelope, command) => command
                .ordering_key()
                .or_else(|| {
                    command
                        .gathering()
                        .map(|_| format!("gather:{}", envelope.account))
                })
                .unwrap_or_else(|| format!("id:{}:{}", envelope.account, envelope.id)),
            Decoded::InvalidCommand(envelope, _) => {
                format!("id:{}:{}", envelope.account, envelope.id)
            }
            Decoded::Invalid(error) => match &error.partial.id {
                Some(id) => format!("id:{id}"),
                None => format!("tag:{}", delivery.delivery_tag),
            },
        }
    }

    /// Handles one delivery to the end (ack), or leaves it unacked with the session marked
    /// broken.
    pub async fn process(&self, session: &Arc<Session>, delivery: Delivery, decoded: Decoded) {
        if self.store_health.is_failing() {
            return self.store_health.hand_back(session, delivery).await;
        }
        let started_at = self.clock.now();
        let _busy = match &decoded {
            Decoded::Valid(_, command) => command
                .ordering_key()
                .filter(|key| is_contact_key(key))
                .map(|key| self.busy.enter(key)),
            _ => None,
        };
        let disposition = match self.disposition_of(decoded, started_at).await {
            Ok(disposition) => disposition,
            Err(error) => return self.store_failed(session, delivery, &error).await,
        };
        // Handed to the batcher or the gatherer, which dispose of it once its batch is done —
        // or give it back (its batch is giving out results): it waits a moment.
        let (given, refused) = match disposition {
            Disposition::Batch(j) => (
                (
                    j.account.clone(),
                    j.id.clone(),
                    j.command_type.clone(),
                    j.attempts,
                ),
                self.bulk.join(*j, session.clone(), delivery, &self.held),
            ),
            Disposition::Gather(j) => (
                (
                    j.account.clone(),
                    j.id.clone(),
                    j.command_type.clone(),
                    j.attempts,
                ),
                self.gather.join(*j, session.clone(), delivery, &self.held),
            ),
            other => return self.finish(session, delivery, other).await,
        };
        let Some(delivery) = refused else { return };
        let (account, id, command_type, attempts) = given;
        let subject = Subject {
            id: &id,
            command_type: &command_type,
            account: &account,
        };
        match self.back_in_a_moment(subject, attempts, started_at).await {
            Ok(wait) => self.finish(session, delivery, wait).await,
            Err(error) => self.store_failed(session, delivery, &error).await,
        }
    }

    /// Carries the disposition out (store, publish, ack…), or leaves the delivery to come back.
    async fn finish(&self, session: &Arc<Session>, delivery: Delivery, disposition: Disposition) {
        if let Err(error) = self.dispose(session, &delivery, disposition).await {
            self.dispose_failed(session, delivery, &error).await;
        }
    }

    /// A delivery the batcher or the gatherer gave back (the batch it belongs to is giving out
    /// results): it waits a moment and comes back. It tried nothing, so it gives its attempt
    /// back.
    async fn back_in_a_moment(
        &self,
        subject: Subject<'_>,
        attempts: u32,
        started_at: DateTime<Utc>,
    ) -> Result<Disposition, PipelineError> {
        self.carry_out(subject, Decision::WaitBehind, attempts, None, started_at)
            .await
    }

    /// Storing the result or publishing failed: the delivery comes back. A store failure
    /// (this one, or an outage already known) hands it back once, keeping the session; a
    /// failed publish marks the session broken.
    pub(super) async fn dispose_failed(
        &self,
        session: &Arc<Session>,
        delivery: Delivery,
        error: &PipelineError,
    ) {
        if let PipelineError::Store(_) = error {
            return self.store_failed(session, delivery, error).await;
        }
        if self.store_health.is_failing() {
            return self.store_health.hand_back(session, delivery).await;
        }
        tracing::warn!(error = %error, "publishing failed; the command will be redelivered");
        session.broken.cancel();
    }

    /// The store failed while this delivery was handled: the store is marked failing (one
    /// log line per outage) and the delivery goes back to the queue once.
    pub(super) async fn store_failed(
        &self,
        session: &Arc<Session>,
        delivery: Delivery,
        error: &PipelineError,
    ) {
        self.store_health.report(&error.to_string());
        self.store_health.hand_back(session, delivery).await;
    }

    /// Works out what becomes of a decoded delivery: a verdict on bad input, a replay of a
    /// stored result, a wait behind an earlier command, a place in a bulk batch, or — the
    /// handler having run — its [`Decision`] carried out (`conclude.rs`).
    async fn disposition_of(
        &self,
        decoded: Decoded,
        started_at: DateTime<Utc>,
    ) -> Result<Disposition, PipelineError> {
        let (envelope, command) = match decoded {
            Decoded::Invalid(error) => {
                let partial = error.partial;
                let subject = Subject {
                    id: partial.id.as_deref().unwrap_or_default(),
                    command_type: partial.command_type.as_deref().unwrap_or_default(),
                    account: partial.account.as_deref().unwrap_or("default"),
                };
                // A redelivery of a broken message that has an id was answered before: its
                // stored verdict, not a second one.
                if !subject.id.is_empty()
                    && let Some(answer) = self
                        .answered(subject, partial.fingerprint.as_deref(), started_at)
                        .await?
                {
                    return Ok(answer);
                }
                let result = self.result(
                    subject.id,
                    subject.command_type,
                    subject.account,
                    Outcome::Rejected,
                    None,
                    Some(ResultError::from(&error.rejection)),
                    1,
                    started_at,
                );
                return Ok(self.rejected(
                    result,
                    &error.rejection,
                    None,
                    Record::Store(partial.fingerprint),
                ));
            }
            Decoded::InvalidCommand(envelope, rejection) => {
                let subject = Subject {
                    id: &envelope.id,
                    command_type: &envelope.command_type,
                    account: &envelope.account,
                };
                let fingerprint = envelope.fingerprint();
                // A command that was answered before (a redelivery, or a schedule whose time
                // has passed since) gets its stored result, not a new verdict.
                if let Some(answer) = self
                    .answered(subject, Some(&fingerprint), started_at)
                    .await?
                {
                    return Ok(answer);
                }
                let result = self.result(
                    &envelope.id,
                    &envelope.command_type,
                    &envelope.account,
                    Outcome::Rejected,
                    None,
                    Some(ResultError::from(&rejection)),
                    1,
                    started_at,
                );
                return Ok(self.rejected(
                    result,
                    &rejection,
                    None,
                    Record::Store(Some(fingerprint)),
                ));
            }
            Decoded::Valid(envelope, command) => (envelope, command),
        };

        let fingerprint = envelope.fingerprint();
        // In the ordering book a command is its id and fingerprint: a different command sent
        // under the id of one that is out waiting must not pass for it (nor release its place
        // when it is refused); it waits behind it like any later command with its key.
        let holder = format!("{}#{}", envelope.id, &fingerprint[..16]);
        let key = command.ordering_key();
        if let Some(key) = &key
            && self.held.turn(key, &holder) == Turn::Wait
            && {
                self.release_finished_fronts(&envelope.account, key, &holder)
                    .await?;
                self.held.turn(key, &holder) == Turn::Wait
            }
        {
            return Ok(self.behind());
        }
        // A tagging or membership command waits while a command about one of its contacts is
        // being applied (its account's later ones wait behind it, in its lane) — unless it is
        // in a batch already or answered (a replay).
        if let Some(gathering) = command.gathering() {
            let keys = gather::contact_keys(gathering.kind, &gathering.contacts);
            if self.busy.any_busy(&keys)
                && !self.gather.holds(&envelope.account, &envelope.id)
                && self
                    .store
                    .ledger_result_of(&envelope.account, &envelope.id)
                    .await?
                    .is_none()
                && !self.wait_for_contacts(&keys).await
            {
                tracing::warn!(
                    waited_s = CONTACT_WAIT.as_secs(),
                    "a command about one of this command's contacts is still being applied; going ahead"
                );
            }
        }
        let release = key.map(|k| (k, holder));
        let begun = self
            .store
            .ledger_begin(
                &envelope.account,
                &envelope.id,
                &envelope.command_type,
                &fingerprint,
                self.claim(),
                started_at,
            )
            .await?;
        tracing::debug!("ledger: attempt begun");
        let (attempts, effect_ref) = match begun {
            ledger::Begun::Reused { command_type } => {
                if let Some((key, id)) = &release {
                    self.held.release(key, id);
                }
                let subject = Subject {
                    id: &envelope.id,
                    command_type: &envelope.command_type,
                    account: &envelope.account,
                };
                return Ok(self.id_reused(subject, &command_type, started_at));
            }
            ledger::Begun::Claimed { owner } => {
                // Another process is working on this command (a redelivery during a
                // failover): not applied here. It comes back after the first retry delay,
                // to be answered from the ledger once the other process stored its result,
                // or taken over once that process's claim lapsed.
                if let Some((key, id)) = &release {
                    self.held.release(key, id);
                }
                tracing::info!(command_id = %envelope.id, %owner, "another process is working on this command; it waits");
                return Ok(self.claimed_elsewhere());
            }
            ledger::Begun::Done { result } => {
                let mut stored: CommandResult = serde_json::from_str(&result)?;
                stored.replayed = true;
                if let Some((key, id)) = &release {
                    self.held.release(key, id);
                }
                return Ok(Disposition::Replay(stored));
            }
            ledger::Begun::Started {
                attempts,
                effect_ref,
            } => (attempts, effect_ref),
        };
        if let Command::ContactUpsert(changes) = command.as_ref()
            && self.settings.bulk.enabled
            && attempts <= self.settings.max_attempts
            && let Some(joining) = self
                .bulk_candidate(
                    &envelope,
                    &command,
                    changes,
                    attempts,
                    effect_ref.as_deref(),
                    &release,
                    started_at,
                )
                .await?
        {
            return Ok(joining);
        }
        // A redelivery of a command the gatherer holds (its channel was lost) goes back to
        // it, whatever its ledger row says: its batch gives it its one result.
        let held_by_gatherer =
            command.gathering().is_some() && self.gather.holds(&envelope.account, &envelope.id);
        if held_by_gatherer
            || command.gathering().is_some()
                && self.settings.bulk.enabled
                && attempts <= self.settings.max_attempts
                && effect_ref.is_none()
                && !(self.settings.bulk.idle_one_by_one
                    && self.in_flight() <= 1
                    && self.gather.idle(&envelope.account))
        {
            return Ok(Disposition::Gather(Box::new(gather::Joining {
                id: envelope.id.clone(),
                account: envelope.account.clone(),
                command_type: envelope.command_type.clone(),
                command,
                attempts,
                started_at,
                release,
            })));
        }
        let subject = Subject {
            id: &envelope.id,
            command_type: &envelope.command_type,
            account: &envelope.account,
        };
        if let Some(decision) = decision::at_entry(attempts, &self.limits()) {
            return self
                .carry_out(subject, decision, attempts, release, started_at)
                .await;
        }
        let attempt = Attempt {
            command_id: envelope.id.clone(),
            account: envelope.account.clone(),
            number: attempts,
            effect_ref,
            fence: Some(self.fence(&envelope.account, &envelope.id)),
        };
        let handled = self
            .while_claimed(
                &envelope.account,
                std::slice::from_ref(&envelope.id),
                self.handler.handle(&attempt, &command),
            )
            .await;
        tracing::debug!("handled");
        self.conclude(subject, handled, attempts, release, started_at)
            .await
    }

    /// For a message refused before it began: the stored result when the ledger answered
    /// this command before, `id_reused` when its id belongs to another command, nothing when
    /// the message gets a verdict of its own.
    async fn answered(
        &self,
        subject: Subject<'_>,
        fingerprint: Option<&str>,
        started_at: DateTime<Utc>,
    ) -> Result<Option<Disposition>, PipelineError> {
        let entry = self.store.ledger_entry(subject.account, subject.id).await?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        if entry.belongs_to_another(fingerprint) {
            return Ok(Some(self.id_reused(
                subject,
                &entry.command_type,
                started_at,
            )));
        }
        let Some(stored) = entry.result.filter(|_| entry.done) else {
            return Ok(None);
        };
        let mut replay: CommandResult = serde_json::from_str(&stored)?;
        replay.replayed = true;
        Ok(Some(Disposition::Replay(replay)))
    }

    /// The verdict on a command sent under an id that the ledger holds for a different
    /// command (of `owner_type`): rejected and dead-lettered like other bad input, its own
    /// type on the result; the other command's row and result stay as they are.
    fn id_reused(
        &self,
        subject: Subject<'_>,
        owner_type: &str,
        started_at: DateTime<Utc>,
    ) -> Disposition {
        let rejection = Rejection::with_fields(
            ErrorCode::IdReused,
            format!(
                "command id {:?} was already used for a different command ({owner_type}, other data \
                 or another type) in account {:?}; this one was not applied: send it with a new id",
                subject.id, subject.account
            ),
            vec![crate::command::FieldError::new(
                "id",
                "was already used for a different command; use a new id for each command",
            )],
        );
        tracing::warn!(command_id = %subject.id, command_type = %subject.command_type, "a command reused the id of a different command; rejected");
        let result = self.result(
            subject.id,
            subject.command_type,
            subject.account,
            Outcome::Rejected,
            None,
            Some(ResultError::from(&rejection)),
            1,
            started_at,
        );
        self.rejected(result, &rejection, None, Record::Skip)
    }

    /// Whether an upsert goes to the batcher: a redelivery of a command whose batch is still
    /// running rejoins it; an importable upsert joins a batch. Errs only when the store fails.
    #[allow(clippy::too_many_arguments)]
    async fn bulk_candidate(
        &self,
        envelope: &Envelope,
        command: &Command,
        changes: &crate::command::contact::ContactChanges,
        attempts: u32,
        effect_ref: Option<&str>,
        release: &Option<(String, String)>,
        started_at: DateTime<Utc>,
    ) -> Result<Option<Disposition>, PipelineError> {
        let member = |row| {
            Disposition::Batch(Box::new(bulk::Joining {
                id: envelope.id.clone(),
                account: envelope.account.clone(),
                command_type: envelope.command_type.clone(),
                command: Box::new(command.clone()),
                attempts,
                started_at,
                release: release.clone(),
                row,
            }))
        };
        if let Some(batch) = effect_ref.and_then(|r| r.strip_prefix("batch:")) {
            match self.bulk.live(batch) {
                Some(true) => return Ok(Some(member(bulk::Row::Rejoin(batch.to_owned())))),
                Some(false) => {
                    // Its batch is finishing: this delivery tries nothing and gives its
                    // attempt back.
                    let subject = Subject {
                        id: &envelope.id,
                        command_type: &envelope.command_type,
                        account: &envelope.account,
                    };
                    let behind = self
                        .carry_out(subject, Decision::WaitBehind, attempts, None, started_at)
                        .await?;
                    return Ok(Some(behind));
                }
                None => {
                    // The batch may have finished between the ledger read and this look; it
                    // stores its results before it leaves, so a result now found is replayed
                    // rather than imported again.
                    let stored = self
                        .store
                        .ledger_result_of(&envelope.account, &envelope.id)
                        .await;
                    if let Ok(Some(stored)) = stored
                        && let Ok(mut replay) = serde_json::from_str::<CommandResult>(&stored)
                    {
                        replay.replayed = true;
                        if let Some((key, id)) = release {
                            self.held.release(key, id);
                        }
                        return Ok(Some(Disposition::Replay(replay)));
                    }
                }
            }
        }
        Ok(
            match self.handler.import_row(&envelope.account, changes).await {
                Ok(Some(row)) => {
                    let lists = sorted_lists(changes);
                    // An upsert reaching an idle daemon (no other delivery in flight, no
                    // batch of its lists gathering, no import of its account running) goes
                    // one by one at once: a window would only delay it, as a batch needs
                    // three upserts (issue 20). Under a burst the others are in flight
                    // already, or a batch is open or importing, and the window gathers them.
                    if self.settings.bulk.idle_one_by_one
                        && self.in_flight() <= 1
                        && self.bulk.idle_for(&envelope.account, &lists)
                    {
                        self.stats.bulk_idle.fetch_add(1, Ordering::Relaxed);
                        None
                    } else {
                        Some(member(bulk::Row::New {
                            lists,
                            row: Box::new(row),
                        }))
                    }
                }
                // Not importable, or a problem the one-by-one path reports in its own terms.
                Ok(None) | Err(_) => None,
            },
        )
    }

    /// Remembers that `account` needs re-authorisation; true the first time (per loss).
    pub fn first_announcement(&self, account: &str) -> bool {
        self.announced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account.to_owned())
    }

    /// The account was authorised again: a later loss is announced again.
    pub fn forget_announcement(&self, account: &str) {
        self.announced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
    }

    /// Queues the `account.reauth_required` event, once per loss of the account.
    pub fn announce_reauth(&self, account: &str, reason: &str) {
        if self.first_announcement(account) {
            self.pending_events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Event::new(
                    event::REAUTH_REQUIRED,
                    reauth_event(account, reason, self.clock.now()),
                ));
        }
    }
}

/// An upsert's lists as a batch key part: sorted, without repeats.
fn sorted_lists(changes: &crate::command::contact::ContactChanges) -> Vec<String> {
    let mut lists = changes.list_ids.clone().unwrap_or_default();
    lists.sort();
    lists.dedup();
    lists
}

/// The event published once when an account needs a person to authorise it again.
pub fn reauth_event(account: &str, reason: &str, at: DateTime<Utc>) -> serde_json::Value {
    json!({
        "type": event::REAUTH_REQUIRED,
        "account": account,
        "reason": reason,
        "at": crate::command::timestamp::format(at),
        "action": format!("run `ctct-sync auth login --account {account}`; the account's commands wait until then"),
    })
}
