//! This daemon as one replica among several sharing a state store and a command queue.
//!
//! **Role.** Every replica consumes `ctct.commands`, a quorum queue with single active
//! consumer: RabbitMQ delivers to one consumer at a time and moves on to the next when that
//! one goes away. AMQP 0-9-1 does not tell a consumer that it became the active one, so the
//! role is read from what the replica sees:
//! - `active`: its current consumer has received a delivery. Under single active consumer
//!   only the active consumer receives any, and it stays active until that consumer ends
//!   (RabbitMQ moves the turn on only when the active consumer goes away), so it says
//!   `active` from its first delivery until its consumer ends;
//! - `standby`: anything else — consuming with no delivery yet, or not consuming at all.
//!   So a replica that became the active consumer of an idle queue (at start, or after a
//!   takeover) says `standby` until the first command reaches it. The queue's consumer count
//!   cannot tell more: for a quorum queue with single active consumer the broker counts
//!   only the active consumer, whichever it is.
//!
//! The role is served on `/readyz` and `/metrics` and written to the store's `replicas`
//! table every few seconds, where `doctor` reads every replica's.
//!
//! **Liveness.** On PostgreSQL the replica holds a session advisory lock for as long as it
//! lives (see [`crate::store::replicas::Liveness`]); the other replicas take a dead one's
//! claims over at once. While its own lock is not held, this replica applies nothing (its
//! fence fails; see [`crate::store::Store::ledger_fence`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::store::replicas::{Liveness, ReplicaInfo, ReplicaRole};

/// How often the role is written to the store.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// What this replica knows of itself.
#[derive(Default)]
pub struct Replica {
    /// A consumer of the command queue is open.
    consuming: AtomicBool,
    /// The current consumer received a delivery: it is the active one.
    known_active: AtomicBool,
    /// Registered in the store's `replicas` table.
    registered: AtomicBool,
    /// The liveness lock (PostgreSQL only), once taken.
    liveness: Mutex<Option<Liveness>>,
}

impl Replica {
    pub fn role(&self) -> ReplicaRole {
        if self.consuming.load(Ordering::SeqCst) && self.known_active.load(Ordering::SeqCst) {
            ReplicaRole::Active
        } else {
            ReplicaRole::Standby
        }
    }

    /// Whether this process may apply anything: once it has taken its liveness lock
    /// (PostgreSQL), only while it holds it — the other replicas take the claims of a
    /// registered replica whose lock is free. Before the lock is first taken its row names no
    /// lock, so its claims lapse with their lease only, as on SQLite, where this is always
    /// true.
    pub fn alive(&self) -> bool {
        self.liveness
            .lock()
            .map(|l| l.as_ref().is_none_or(Liveness::is_held))
            .unwrap_or(false)
    }

    /// A new consumer of the command queue was opened (no delivery on it yet).
    pub fn consumer_started(&self) {
        self.known_active.store(false, Ordering::SeqCst);
        self.consuming.store(true, Ordering::SeqCst);
    }

    /// The consumer ended (the session broke, consuming paused, or shutdown).
    pub fn consumer_stopped(&self) {
        self.consuming.store(false, Ordering::SeqCst);
        self.known_active.store(false, Ordering::SeqCst);
    }

    /// The current consumer received a delivery.
    pub fn delivered(&self) {
        if !self.known_active.swap(true, Ordering::SeqCst) {
            tracing::info!("this replica is the active consumer of the command queue");
        }
    }

    /// Registers, takes the liveness lock (PostgreSQL), then writes the role every
    /// [`HEARTBEAT`] until `shutdown`; then leaves the table and releases the lock. A store
    /// that fails is tried again at the next beat.
    pub async fn keep(&self, store: Store, owner: String, shutdown: CancellationToken) {
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut said = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = beat.tick() => {}
            }
            if !self.registered.load(Ordering::SeqCst) {
                match self.join(&store, &owner).await {
                    Ok(()) => self.registered.store(true, Ordering::SeqCst),
                    Err(error) => {
                        tracing::warn!(error = %error, "could not register this replica in the state store; trying again");
                        continue;
                    }
                }
            }
            let role = self.role();
            if said != Some(role) {
                tracing::info!(role = role.as_str(), "replica role");
                said = Some(role);
            }
            if let Err(error) = store.replica_heartbeat(&owner, role).await {
                tracing::debug!(error = %error, "could not write this replica's role");
            }
        }
        if let Ok(mut liveness) = self.liveness.lock()
            && let Some(liveness) = liveness.take()
        {
            liveness.release();
        }
        if self.registered.load(Ordering::SeqCst)
            && let Err(error) = store.replica_leave(&owner).await
        {
            tracing::debug!(error = %error, "could not remove this replica's row");
        }
    }

    async fn join(&self, store: &Store, owner: &str) -> Result<(), crate::store::StoreError> {
        store
            .replica_register(&ReplicaInfo::this_process(owner))
            .await?;
        if let Some(liveness) = store.hold_liveness(owner).await?
            && let Ok(mut slot) = self.liveness.lock()
        {
            *slot = Some(liveness);
        }
        Ok(())
    }
}
