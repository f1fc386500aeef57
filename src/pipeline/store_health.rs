//! Whether the store takes work. A store that fails while the daemon runs (a full disk, an
//! I/O error, a damaged table, a PostgreSQL server that is lost or refuses connections) must
//! not turn into lost commands or a storm of redeliveries:
//!
//! - the first failure marks the store failing, logs one error line and counts one outage;
//! - the delivery that met it, and every delivery still in hand, goes back to the queue once
//!   (`basic.nack` with requeue) instead of the broker session being rebuilt;
//! - the supervisor cancels the consumer, so nothing more is prefetched and the backlog's
//!   delivery counts stay as they are;
//! - a probe (a small write transaction against the ledger, plus reads of the token and
//!   budget tables) runs with capped exponential backoff; when it succeeds, consumption
//!   resumes by itself. `/readyz` answers 503 `store: failing: <error>` meanwhile.
//!
//! Nothing is applied twice: a command that met the failure after its effect comes back and
//! the ledger (or the handler's check-then-act) turns it into a replay.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::message::Delivery;
use lapin::options::BasicNackOptions;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

use super::session::Session;

/// First wait between probes of a failing store.
pub const PROBE_INITIAL: Duration = Duration::from_millis(500);
/// Longest wait between probes.
pub const PROBE_MAX: Duration = Duration::from_secs(10);
/// A store that fails again within this long after recovering continues the backoff where
/// it stopped instead of starting over: a store that comes and goes is not hammered.
const SETTLED_AFTER: Duration = Duration::from_secs(60);

/// The store's health, shared by the lanes (which report failures), the supervisor (which
/// pauses consumption and probes) and the ops listener.
#[derive(Debug)]
pub struct StoreHealth {
    /// `Some(error)` while the store is failing.
    failing: watch::Sender<Option<String>>,
    /// Outages begun since start.
    failures: AtomicU64,
    backoff: Mutex<Backoff>,
    /// Deliveries met by the failure, waiting for the consumer to be cancelled.
    held: Mutex<HandBack>,
}

#[derive(Default)]
struct HandBack {
    consumer_stopped: bool,
    waiting: Vec<(Arc<Session>, Delivery)>,
}

impl std::fmt::Debug for HandBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandBack")
            .field("consumer_stopped", &self.consumer_stopped)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

#[derive(Debug)]
struct Backoff {
    next: Duration,
    recovered_at: Option<Instant>,
}

impl Default for StoreHealth {
    fn default() -> Self {
        Self {
            failing: watch::Sender::new(None),
            failures: AtomicU64::new(0),
            backoff: Mutex::new(Backoff {
                next: PROBE_INITIAL,
                recovered_at: None,
            }),
            held: Mutex::default(),
        }
    }
}

impl StoreHealth {
    /// Records a store failure. The first one of an outage marks the store failing, counts
    /// the outage and logs it (one line); later ones only at debug level. True for the first.
    pub fn report(&self, error: &str) -> bool {
        let first = self.failing.send_if_modified(|failing| {
            if failing.is_some() {
                return false;
            }
            *failing = Some(error.to_owned());
            true
        });
        if first {
            self.failures.fetch_add(1, Ordering::Relaxed);
            let mut backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
            if backoff
                .recovered_at
                .is_none_or(|at| at.elapsed() >= SETTLED_AFTER)
            {
                backoff.next = PROBE_INITIAL;
            }
            tracing::error!(
                error,
                "the store is failing: ctct-sync stops taking commands, hands back those it holds \
                 and takes commands again once a test write succeeds"
            );
        } else {
            tracing::debug!(error, "the store failed again during an outage");
        }
        first
    }

    /// Why the store is failing, while it is.
    pub fn failing(&self) -> Option<String> {
        self.failing.borrow().clone()
    }

    pub fn is_failing(&self) -> bool {
        self.failing.borrow().is_some()
    }

    /// Outages begun since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Completes as soon as the store is failing.
    pub async fn until_failing(&self) {
        let mut watching = self.failing.subscribe();
        let _ = watching.wait_for(Option::is_some).await.map(drop);
    }

    /// Probes the store with capped exponential backoff until a probe succeeds (true) or
    /// `shutdown` is cancelled (false).
    pub async fn recover(&self, store: &Store, shutdown: &CancellationToken) -> bool {
        let started = Instant::now();
        let mut probes = 0u64;
        loop {
            let wait = {
                let mut backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
                let wait = backoff.next;
                backoff.next = (backoff.next * 2).min(PROBE_MAX);
                wait
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return false,
            }
            probes += 1;
            match store.integrity_probe().await {
                Ok(()) => {
                    self.backoff
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .recovered_at = Some(Instant::now());
                    self.failing.send_replace(None);
                    tracing::info!(
                        outage_ms = started.elapsed().as_millis() as u64,
                        probes,
                        "the store works again; taking commands again"
                    );
                    return true;
                }
                Err(error) => {
                    tracing::debug!(error = %error, next_probe_ms = wait.as_millis() as u64, "the store still fails");
                    self.failing.send_modify(|failing| {
                        *failing = Some(error.to_string());
                    });
                }
            }
        }
    }
}

impl StoreHealth {
    /// Hands a delivery back to its queue once the consumer is stopped: a nack while it still
    /// consumes would bring the delivery straight back and cost it a second attempt. Until
    /// then it waits here; the supervisor hands it back right after cancelling the consumer.
    pub(super) async fn hand_back(&self, session: &Arc<Session>, delivery: Delivery) {
        {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            if !held.consumer_stopped {
                held.waiting.push((session.clone(), delivery));
                return;
            }
        }
        give_back(session, &delivery).await;
    }

    /// The consumer is cancelled: hands back every delivery that waited for that; later ones
    /// go back at once.
    pub(super) async fn consumer_stopped(&self) {
        let waiting = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.consumer_stopped = true;
            std::mem::take(&mut held.waiting)
        };
        for (session, delivery) in waiting {
            give_back(&session, &delivery).await;
        }
    }

    /// A consumer starts (a new session, or consuming again after an outage). Deliveries
    /// still waiting belong to a session that ended; its close returned them already.
    pub(super) fn consumer_started(&self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.consumer_stopped = false;
        held.waiting.clear();
    }
}

/// Returns a delivery to its queue (`basic.nack`, requeue): it counts one delivery attempt.
/// If the channel is gone, the session is marked broken; the broker returns it anyway.
pub(super) async fn give_back(session: &Session, delivery: &Delivery) {
    let nacked = delivery
        .acker
        .nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        })
        .await;
    match nacked {
        Ok(true) => tracing::debug!(
            delivery_tag = delivery.delivery_tag,
            "handed back to the queue"
        ),
        Ok(false) | Err(_) => session.broken.cancel(),
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use crate::pipeline::store_health::{PROBE_INITIAL, StoreHealth};
    use crate::store::Store;

    #[test]
    fn an_outage_is_reported_once_with_its_first_error() {
        let health = StoreHealth::default();
        assert!(!health.is_failing());
        assert!(health.report("disk full"));
        assert!(!health.report("disk full again"));
        assert_eq!(health.failing().as_deref(), Some("disk full"));
        assert_eq!(health.failures(), 1);
    }

    #[tokio::test]
    async fn a_probe_fails_on_a_damaged_ledger_and_recovery_waits_for_a_working_store() {
        let dir = tempfile::tempdir().unwrap();
        let damaged = dir.path().join("damaged.db");
        crate::store::integrity::tests::damaged_store(&damaged, "command_ledger");
        let (store, _) = Store::open(&damaged).unwrap();
        assert!(
            store.integrity_probe().await.is_err(),
            "the ledger cannot be written"
        );

        let (store, _) = Store::open(&dir.path().join("sound.db")).unwrap();
        store.integrity_probe().await.unwrap();
        let health = StoreHealth::default();
        health.report("disk full");
        let shutdown = CancellationToken::new();
        assert!(health.recover(&store, &shutdown).await);
        assert!(!health.is_failing());
        // The probe leaves nothing behind.
        let rows = store.ledger_rows().await.unwrap();
        assert_eq!(rows, 0);
        // Failing again soon after continues the backoff instead of starting over.
        health.report("disk full");
        let next = health.backoff.lock().unwrap().next;
        assert!(next > PROBE_INITIAL, "{next:?}");
        // A shutdown ends the wait.
        shutdown.cancel();
        assert!(!health.recover(&store, &shutdown).await);
    }
}
