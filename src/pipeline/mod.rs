//! The command pipeline: RabbitMQ in, Constant Contact applied, one result out for every
//! command.
//!
//! ```text
//! supervisor   session (two connections, topology, consumer) → rebuilt with capped backoff
//! dispatcher   decode each delivery, pick its lane by ordering key
//! lanes        serial workers; process: ledger → handler → result (+ reply, + dead letter) → ack
//! ```
//! At-least-once in, effectively once out: the ledger replays finished commands, the handler
//! makes every write safe to repeat, and a delivery is acked only after its result is stored
//! and confirmed by the broker.

pub mod bulk;
mod busy;
mod conclude;
pub mod dead_letters;
pub mod decision;
mod dispose;
pub mod error;
mod gather;
pub mod held;
pub mod lanes;
pub mod process;
pub mod replica;
pub mod session;
pub mod store_health;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::Consumer;
use tokio_util::sync::CancellationToken;

use crate::amqp::{BrokerNodes, PublishError, Topology};
use crate::api::AuthEvent;
use crate::clock::Clock;
use crate::config::Settings;
use crate::handler::Handler;
use crate::store::Store;

pub use error::PipelineError;

use lanes::{Job, Lanes};
use process::{ProcessSettings, Processor};
use session::Session;

/// How long connecting, declaring the topology and starting to consume may take.
const SESSION_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The pipeline's settings, from `amqp.*`.
#[derive(Clone)]
pub struct PipelineSettings {
    /// The broker's nodes (`amqp.urls`, or `amqp.url`): a lost or refused session moves on
    /// to the next.
    nodes: BrokerNodes,
    pub topology: Topology,
    pub prefetch: u16,
    pub workers: u16,
    pub max_attempts: u32,
    pub shutdown_grace: Duration,
    pub reply_to_prefixes: Vec<String>,
    /// Commands parked for the quota return spread over this long after the reset.
    pub park_jitter: Duration,
    /// `amqp.claim_lease_ms`: how long a claim on a command in progress lasts unless renewed.
    pub claim_lease: Duration,
    /// Coalescing of `contact.upsert` into bulk imports (`bulk.*`).
    pub bulk: bulk::BulkConfig,
}

impl PipelineSettings {
    pub fn from_settings(settings: &Settings) -> Self {
        let amqp = &settings.amqp;
        let bulk = bulk::BulkConfig::from_settings(&settings.bulk);
        let mut prefetch = amqp.prefetch;
        if bulk.enabled {
            // A batched command stays unacked until its result is out: the prefetch must
            // cover a batch being imported and the next one gathering.
            let wanted = (bulk.max_batch * 2).min(usize::from(u16::MAX)) as u16;
            if prefetch < wanted {
                tracing::info!(
                    configured = prefetch,
                    prefetch = wanted,
                    "bulk coalescing is on: raising amqp.prefetch to twice bulk.max_batch"
                );
                prefetch = wanted;
            }
        }
        Self {
            nodes: BrokerNodes::from_settings(amqp),
            topology: Topology::from_settings(amqp),
            prefetch,
            workers: amqp.workers,
            max_attempts: amqp.max_attempts,
            shutdown_grace: Duration::from_millis(amqp.shutdown_grace_ms),
            reply_to_prefixes: amqp.reply_to_prefixes.clone(),
            park_jitter: Duration::from_millis(amqp.park_jitter_ms),
            claim_lease: Duration::from_millis(amqp.claim_lease_ms.max(1)),
            bulk,
        }
    }
}

/// What health checks want to know.
#[derive(Debug, Default)]
pub struct PipelineStatus {
    pub connected: AtomicBool,
    pub reconnects: AtomicU64,
}

pub struct Pipeline {
    settings: PipelineSettings,
    processor: Arc<Processor>,
    status: Arc<PipelineStatus>,
}

enum SessionEnd {
    Shutdown,
    Broken(Broken),
    /// The store failed: consumption pauses until it works again.
    StoreFailing,
}

/// Why a broker session ended.
#[derive(Debug, thiserror::Error)]
enum Broken {
    #[error("a publish or an ack failed")]
    PublishOrAck,
    #[error("event publish failed: {0}")]
    EventPublish(PublishError),
    #[error("consumer error: {0}")]
    Consumer(lapin::Error),
    #[error("the broker ended the consumer")]
    ConsumerEnded,
    #[error("consuming again failed: {0}")]
    Resume(lapin::Error),
}

impl Pipeline {
    pub fn new(
        settings: PipelineSettings,
        handler: Handler,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let process = ProcessSettings {
            topology: settings.topology.clone(),
            max_attempts: settings.max_attempts,
            reply_to_prefixes: settings.reply_to_prefixes.clone(),
            park_jitter: settings.park_jitter,
            claim_lease: settings.claim_lease,
            bulk: settings.bulk.clone(),
        };
        Self {
            processor: Arc::new(Processor::new(handler, store, clock, process)),
            settings,
            status: Arc::new(PipelineStatus::default()),
        }
    }

    pub fn processor(&self) -> Arc<Processor> {
        self.processor.clone()
    }

    pub fn status(&self) -> Arc<PipelineStatus> {
        self.status.clone()
    }

    /// Consumes commands until `shutdown` is cancelled, reconnecting whenever the broker
    /// goes away. On shutdown: stops taking messages, lets in-flight commands finish (at
    /// most `amqp.shutdown_grace_ms`), closes the connections.
    pub async fn run(self, shutdown: CancellationToken) {
        let workers = usize::from(self.settings.workers.max(1));
        let capacity = usize::from(self.settings.prefetch) / workers + 1;
        let lanes = Lanes::start(workers, capacity, self.processor.clone());
        bulk::resume(&self.processor).await;
        let batcher = tokio::spawn(bulk::run(self.processor.clone(), shutdown.clone()));
        let gatherer = tokio::spawn(gather::run(self.processor.clone(), shutdown.clone()));
        let listener = tokio::spawn(listen_for_auth_events(
            self.processor.clone(),
            shutdown.clone(),
        ));
        // The replica's row and liveness lock outlive the lanes: they end after the last
        // command in flight is finished.
        let leave = CancellationToken::new();
        let replica = {
            let processor = self.processor.clone();
            let leave = leave.clone();
            tokio::spawn(async move {
                processor
                    .replica
                    .keep(processor.store.clone(), processor.owner().to_owned(), leave)
                    .await
            })
        };
        // A new process sends no request before its budget's startup pause is over (the
        // process it replaces may have spent that second): commands are consumed from then
        // on, so none is taken only to wait for it — meanwhile they stay in the queue,
        // where another replica can take them — and the first is answered at once.
        tokio::select! {
            _ = self.processor.handler.api().budget().unpaused() => {}
            _ = shutdown.cancelled() => {}
        }
        let mut backoff = Duration::from_millis(500);
        let mut nodes = self.settings.nodes.clone();
        let mut open: Option<Arc<Session>> = None;
        let health = self.processor.store_health.clone();
        while !shutdown.is_cancelled() {
            // A failing store is waited for before taking deliveries that could not be kept.
            if health.is_failing() && !health.recover(&self.processor.store, &shutdown).await {
                break;
            }
            // A broker that takes the connection but never answers must not hang the loop:
            // lapin's handshake has no time limit of its own.
            let node = nodes.current().clone();
            let opening = Session::open(
                node.expose(),
                &self.settings.topology,
                self.settings.prefetch,
            );
            let opened = tokio::select! {
                opened = tokio::time::timeout(SESSION_OPEN_TIMEOUT, opening) => opened,
                _ = shutdown.cancelled() => break,
            };
            let (session, mut consumer) = match opened {
                Ok(Ok(opened)) => opened,
                failed => {
                    let error = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => format!(
                            "no answer within {} s while connecting",
                            SESSION_OPEN_TIMEOUT.as_secs()
                        ),
                    };
                    // The next node is tried at once; the backoff is waited once each node
                    // has failed (with one node: after each failure).
                    let round_done = nodes.failed();
                    if error.contains("PRECONDITION_FAILED") {
                        tracing::error!(
                            error = %error,
                            node = %node.redacted(),
                            "the broker holds a queue or exchange of ours with other arguments; \
                             delete it (after moving its messages) or change amqp.* names; retrying"
                        );
                    } else if round_done {
                        tracing::warn!(error = %error, node = %node.redacted(), retry_in_ms = backoff.as_millis() as u64, "RabbitMQ unavailable; retrying");
                    } else {
                        tracing::warn!(error = %error, node = %node.redacted(), next = %nodes.current().redacted(), "RabbitMQ node unavailable; trying the next node");
                    }
                    if round_done {
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.cancelled() => break,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                    continue;
                }
            };
            nodes.connected();
            let session = Arc::new(session);
            health.consumer_started();
            self.processor.replica.consumer_started();
            self.status.connected.store(true, Ordering::Relaxed);
            tracing::info!(queue = %self.settings.topology.commands_queue, node = %node.redacted(), "consuming commands");
            backoff = Duration::from_millis(500);
            let stop_watch = CancellationToken::new();
            let watch = tokio::spawn(dead_letters::watch(
                self.processor.clone(),
                session.clone(),
                stop_watch.clone(),
            ));
            let end = loop {
                match self
                    .consume(&session, &mut consumer, &lanes, &shutdown)
                    .await
                {
                    SessionEnd::StoreFailing => {
                        match self.pause(&session, consumer, &shutdown).await {
                            Ok(resumed) => consumer = resumed,
                            Err(end) => break end,
                        }
                    }
                    end => break end,
                }
            };
            stop_watch.cancel();
            self.processor.replica.consumer_stopped();
            // The dead letter being answered is finished first (bounded like the lanes).
            let _ = tokio::time::timeout(self.settings.shutdown_grace, watch).await;
            self.status.connected.store(false, Ordering::Relaxed);
            match end {
                SessionEnd::Shutdown => {
                    session.stop_consuming().await;
                    open = Some(session);
                    break;
                }
                // Pausing above handles a failing store; the session is closed if ever here.
                SessionEnd::StoreFailing => session.close().await,
                SessionEnd::Broken(reason) => {
                    nodes.lost();
                    tracing::warn!(reason = %reason, node = %node.redacted(), next = %nodes.current().redacted(), "lost the broker session; reconnecting");
                    self.status.reconnects.fetch_add(1, Ordering::Relaxed);
                    session.close().await;
                }
            }
        }
        tracing::info!("shutting down: finishing commands in flight");
        if !lanes.shutdown(self.settings.shutdown_grace).await {
            tracing::error!(
                grace_ms = self.settings.shutdown_grace.as_millis() as u64,
                "commands still in flight at the deadline; the broker will redeliver them"
            );
        }
        if let Some(session) = open {
            session.close().await;
        }
        leave.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), replica).await;
        listener.abort();
        batcher.abort();
        gatherer.abort();
        tracing::info!("stopped");
    }

    /// The store is failing: stops consuming, hands back what was prefetched (each delivery
    /// once), and waits for the store while keeping the session (lanes still ack or hand
    /// back what they hold). Resumes consuming once the store works, or says how the
    /// session ended.
    async fn pause(
        &self,
        session: &Arc<Session>,
        mut consumer: Consumer,
        shutdown: &CancellationToken,
    ) -> Result<Consumer, SessionEnd> {
        session.stop_consuming().await;
        self.processor.replica.consumer_stopped();
        let health = &self.processor.store_health;
        health.consumer_stopped().await;
        // Deliveries the broker sent before the cancel still arrive, then the stream ends.
        let drain = async {
            while let Some(Ok(delivery)) = consumer.next().await {
                store_health::give_back(session, &delivery).await;
            }
        };
        let _ = tokio::time::timeout(SESSION_OPEN_TIMEOUT, drain).await;
        let recovered = tokio::select! {
            recovered = health.recover(&self.processor.store, shutdown) => recovered,
            _ = session.broken.cancelled() => {
                return Err(SessionEnd::Broken(Broken::PublishOrAck));
            }
        };
        if !recovered {
            return Err(SessionEnd::Shutdown);
        }
        health.consumer_started();
        match session
            .resume_consuming(&self.settings.topology.commands_queue)
            .await
        {
            Ok(consumer) => {
                self.processor.replica.consumer_started();
                tracing::info!(queue = %self.settings.topology.commands_queue, "consuming commands");
                Ok(consumer)
            }
            Err(error) => Err(SessionEnd::Broken(Broken::Resume(error))),
        }
    }

    async fn consume(
        &self,
        session: &Arc<Session>,
        consumer: &mut Consumer,
        lanes: &Lanes,
        shutdown: &CancellationToken,
    ) -> SessionEnd {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let health = self.processor.store_health.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return SessionEnd::Shutdown,
                _ = health.until_failing() => return SessionEnd::StoreFailing,
                _ = session.broken.cancelled() => return SessionEnd::Broken(Broken::PublishOrAck),
                _ = tick.tick() => {
                    if let Err(error) = self.processor.flush_events(session).await {
                        return SessionEnd::Broken(Broken::EventPublish(error));
                    }
                }
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        let taken = self.processor.take();
                        self.processor.replica.delivered();
                        let decoded = self.processor.decode(&delivery);
                        let key = Processor::lane_key(&decoded, &delivery);
                        lanes.dispatch(&key, Job { session: session.clone(), delivery, decoded, taken }).await;
                    }
                    Some(Err(error)) => return SessionEnd::Broken(Broken::Consumer(error)),
                    None => return SessionEnd::Broken(Broken::ConsumerEnded),
                },
            }
        }
    }
}

/// Turns token events into the pipeline's `account.reauth_required` announcements.
async fn listen_for_auth_events(processor: Arc<Processor>, shutdown: CancellationToken) {
    let mut events = processor.handler.auth_events();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(AuthEvent::ReauthRequired { account, reason }) => {
                processor.announce_reauth(&account, &reason)
            }
            Ok(AuthEvent::Authorised { account }) => processor.forget_announcement(&account),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
