//! `mirror.completed` and `mirror.failed`: one event per run (skipped runs excepted) on the
//! results exchange, routing key `event.<type>` (see [`crate::amqp::event`]), body = the run's
//! summary plus `type`, with the run's outcome as `status` (events have no `outcome`).
//!
//! Runs hand their summary to an [`EventSender`] without waiting; [`MirrorEvents`] owns a
//! connection and a confirm-mode channel of its own (RabbitMQ being away must never hold a run
//! up) and publishes each event with a broker confirm, reconnecting (to the next of the
//! broker's nodes, see [`BrokerNodes`]) with capped backoff and keeping the event until it is
//! confirmed. Interrupted runs (quota spent, shutdown) are
//! `mirror.failed` with `status: "interrupted"`: the next run resumes them. Until the next
//! release each event is also published under its bare type with the run's outcome as
//! `outcome`, the form of earlier versions (deprecated).

use std::time::Duration;

use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{RunOutcome, RunSummary};
use crate::amqp;
use crate::amqp::BrokerNodes;
use crate::amqp::event::{self, Event};

/// Where runs send their summaries. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSender {
    tx: mpsc::Sender<RunSummary>,
}

impl EventSender {
    /// A sender and the receiving end (the publisher, or a test).
    pub fn channel(capacity: usize) -> (EventSender, mpsc::Receiver<RunSummary>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (EventSender { tx }, rx)
    }

    /// Queues a run's event; never waits. A full queue (the broker away for long) drops the
    /// event with a warning: `mirror_runs` keeps the run's record either way.
    pub fn send(&self, summary: RunSummary) {
        if summary.outcome == RunOutcome::Skipped {
            return;
        }
        if let Err(error) = self.tx.try_send(summary) {
            tracing::warn!(error = %error, "a mirror event could not be queued; mirror_runs still has the run");
        }
    }
}

/// The event type of a run.
pub fn event_type(summary: &RunSummary) -> &'static str {
    match summary.outcome {
        RunOutcome::Succeeded | RunOutcome::Skipped => event::MIRROR_COMPLETED,
        RunOutcome::Failed | RunOutcome::Interrupted => event::MIRROR_FAILED,
    }
}

/// The event body: the summary's figures with `type`, the run's outcome as `status`.
pub fn event_body(summary: &RunSummary) -> Value {
    let mut body = legacy_event_body(summary);
    if let Value::Object(map) = &mut body
        && let Some(status) = map.remove("outcome")
    {
        map.insert("status".into(), status);
    }
    body
}

/// The body of earlier versions (published under the deprecated routing key): the summary's
/// figures with `type`, the run's outcome as `outcome`.
pub fn legacy_event_body(summary: &RunSummary) -> Value {
    let mut body =
        serde_json::to_value(summary).unwrap_or_else(|_| Value::Object(Default::default()));
    if let Value::Object(map) = &mut body {
        map.insert("type".into(), Value::from(event_type(summary)));
    }
    body
}

/// The event of a run, both forms.
pub fn event_of(summary: &RunSummary) -> Event {
    Event {
        event_type: event_type(summary),
        body: event_body(summary),
        legacy_body: Some(legacy_event_body(summary)),
    }
}

/// The publisher task and its sender.
pub struct MirrorEvents {
    sender: EventSender,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl MirrorEvents {
    /// Starts publishing to `exchange` (a durable topic exchange, declared if missing) on
    /// one of `nodes` (an [`crate::config::AmqpUrl`] is one node).
    pub fn start(nodes: impl Into<BrokerNodes>, exchange: String) -> Self {
        let (sender, rx) = EventSender::channel(1024);
        let stop = CancellationToken::new();
        let task = tokio::spawn(publish_loop(nodes.into(), exchange, rx, stop.clone()));
        Self { sender, stop, task }
    }

    pub fn sender(&self) -> EventSender {
        self.sender.clone()
    }

    /// Publishes what is queued (at most `grace`), then closes the connection.
    pub async fn stop(self, grace: Duration) {
        self.stop.cancel();
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!("mirror events still unpublished at shutdown; mirror_runs has the runs");
            task.abort();
        }
    }
}

async fn open(url: &str, exchange: &str) -> Result<(Connection, Channel), lapin::Error> {
    let connection = amqp::connect(url, "ctct-sync mirror events").await?;
    let channel = amqp::confirm_channel(&connection).await?;
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((connection, channel))
}

async fn publish_loop(
    mut nodes: BrokerNodes,
    exchange: String,
    mut rx: mpsc::Receiver<RunSummary>,
    stop: CancellationToken,
) {
    let mut open_channel: Option<(Connection, Channel)> = None;
    loop {
        let summary = tokio::select! {
            biased;
            next = rx.recv() => match next {
                Some(summary) => summary,
                None => break,
            },
            _ = stop.cancelled() => match rx.try_recv() {
                Ok(summary) => summary,
                Err(_) => break,
            },
        };
        let event = event_of(&summary);
        let routing_key = event::routing_key(event.event_type);
        let mut backoff = Duration::from_millis(500);
        loop {
            let node = nodes.current().clone();
            let mut opened_now = false;
            let attempt = async {
                if open_channel.is_none() {
                    let opened = open(node.expose(), &exchange)
                        .await
                        .map_err(|e| e.to_string())?;
                    open_channel = Some(opened);
                    opened_now = true;
                }
                let Some((_, channel)) = &open_channel else {
                    return Err("no channel".to_owned());
                };
                event::publish_event(channel, &exchange, &event)
                    .await
                    .map_err(|e| e.to_string())
            };
            match attempt.await {
                Ok(()) => {
                    nodes.connected();
                    tracing::debug!(
                        routing_key,
                        run_id = summary.run_id,
                        "mirror event published"
                    );
                    break;
                }
                Err(error) => {
                    // A connection that worked before is lost; one that never opened failed.
                    let round_done = if open_channel.is_some() && !opened_now {
                        nodes.lost();
                        false
                    } else {
                        nodes.failed()
                    };
                    open_channel = None;
                    if stop.is_cancelled() {
                        tracing::warn!(error = %error, run_id = summary.run_id, "shutting down: a mirror event was not published");
                        break;
                    }
                    if !round_done {
                        tracing::warn!(error = %error, node = %node.redacted(), next = %nodes.current().redacted(), "mirror event not published; trying the next node");
                        continue;
                    }
                    tracing::warn!(error = %error, node = %node.redacted(), retry_in_ms = backoff.as_millis() as u64, "mirror event not published; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
    if let Some((connection, _)) = open_channel {
        let _ = connection.close(200, "shutting down".into()).await;
    }
}
