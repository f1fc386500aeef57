//! Every dead letter has a result: the watch on `<commands>.dead.watch`.
//!
//! The dead-letter exchange fans each dead letter out to two queues: the dead-letter queue,
//! which keeps it for `ctct-sync dlq list` and `dlq replay`, and the watch queue, which the
//! daemon consumes (on the session's consuming connection, for as long as the session lives).
//! For each copy:
//!
//! * a dead letter ctct-sync made itself (header `x-ctct-reason-code`: a rejection, retries
//!   run out) had its result published before it was dead-lettered: acked, nothing more;
//! * a dead letter the broker made — the quorum queue's delivery limit (a daemon that kept
//!   stopping or losing its connection while it held the command), or a message that expired
//!   or was rejected by another consumer — never had a verdict. If the ledger holds a result
//!   of the command, that result is sent again (`replayed: true`); otherwise a `failed`
//!   result with code `delivery_limit` (or `dead_lettered` for the other reasons) is stored
//!   and published like any other final result, so later copies of the command replay it.
//!
//! The copy is acked only after its result is stored and confirmed; a failure marks the
//! session broken and the copy comes back.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use tokio_util::sync::CancellationToken;

use crate::command::outcome::{CommandResult, ErrorCode, Outcome, ResultError};

use super::error::PipelineError;
use super::process::{Decoded, Disposition, Processor, REASON_CODE_HEADER, Record};
use super::session::Session;

/// Copies taken ahead of the one being answered.
const WATCH_PREFETCH: u16 = 8;

/// Broker dead-letter reasons that become metric labels; anything else is `other`.
const REASONS: [&str; 4] = ["delivery_limit", "expired", "rejected", "maxlen"];

/// Consumes the watch queue on `session` until `stop` is cancelled or the session breaks.
/// Answers one dead letter at a time; a copy being answered is finished before it returns.
pub(super) async fn watch(
    processor: Arc<Processor>,
    session: Arc<Session>,
    stop: CancellationToken,
) {
    let queue = processor.settings.topology.dead_letter_watch_queue.clone();
    let consumer = async {
        let channel = session.consume_channel().await?;
        channel
            .basic_qos(WATCH_PREFETCH, BasicQosOptions { global: false })
            .await?;
        channel
            .basic_consume(
                queue.as_str().into(),
                format!("ctct-sync-dead-{}", uuid::Uuid::new_v4())
                    .as_str()
                    .into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
    };
    let mut consumer = match consumer.await {
        Ok(consumer) => consumer,
        Err(error) => {
            tracing::warn!(error = %error, queue = %queue, "cannot consume the dead-letter watch queue");
            session.broken.cancel();
            return;
        }
    };
    loop {
        let delivery = tokio::select! {
            _ = stop.cancelled() => return,
            _ = session.broken.cancelled() => return,
            next = consumer.next() => match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => {
                    tracing::warn!(error = %error, "the dead-letter watch consumer failed");
                    session.broken.cancel();
                    return;
                }
                None => {
                    tracing::warn!("the broker ended the dead-letter watch consumer");
                    session.broken.cancel();
                    return;
                }
            },
        };
        if let Err(error) = answer(&processor, &session, delivery).await {
            tracing::warn!(error = %error, "answering a dead letter failed; it will come back");
            session.broken.cancel();
            return;
        }
    }
}

/// Gives one dead letter its result (or none, when ctct-sync gave it one already).
async fn answer(
    processor: &Processor,
    session: &Session,
    delivery: Delivery,
) -> Result<(), PipelineError> {
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    if headers.inner().contains_key(REASON_CODE_HEADER) {
        // ctct-sync's own verdict: its result went out before the dead letter did.
        ack(processor, &delivery).await;
        return Ok(());
    }
    let reason = death_reason(&headers);
    let label = REASONS
        .iter()
        .find(|known| **known == reason)
        .copied()
        .unwrap_or("other");
    let limit = processor.settings.topology.delivery_limit;

    let (id, command_type, account, key, fingerprint) = match processor.decode(&delivery) {
        Decoded::Valid(envelope, command) => {
            let fingerprint = envelope.fingerprint();
            (
                envelope.id,
                envelope.command_type,
                envelope.account,
                command.ordering_key(),
                Some(fingerprint),
            )
        }
        Decoded::InvalidCommand(envelope, _) => {
            let fingerprint = envelope.fingerprint();
            (
                envelope.id,
                envelope.command_type,
                envelope.account,
                None,
                Some(fingerprint),
            )
        }
        Decoded::Invalid(error) => {
            let partial = error.partial;
            (
                partial.id.unwrap_or_default(),
                partial.command_type.unwrap_or_default(),
                partial.account.unwrap_or_else(|| "default".into()),
                None,
                partial.fingerprint,
            )
        }
    };
    tracing::warn!(
        command_id = %id,
        reason = label,
        "RabbitMQ dead-lettered a command before ctct-sync gave it a verdict"
    );

    let (stored, attempts, received_at) = if id.is_empty() {
        (None, None, None)
    } else {
        let history = processor
            .store
            .ledger_history(&account, &id)
            .await
            .map_err(|error| {
                tracing::error!(error = %error, "the store failed; the dead letter will come back");
                PipelineError::from(error)
            })?;
        (history.result, history.attempts, history.received_at)
    };
    let release = key.map(|key| (key, id.clone()));
    let stored = stored.and_then(|text| match serde_json::from_str::<CommandResult>(&text) {
        Ok(result) => Some(result),
        Err(error) => {
            tracing::error!(error = %error, "the stored result of this command cannot be read; a new one is sent");
            None
        }
    });
    let disposition = match stored {
        Some(mut replay) => {
            replay.replayed = true;
            if let Some((key, id)) = &release {
                processor.held.release(key, id);
            }
            Disposition::Replay(replay)
        }
        None => {
            let error = if reason == "delivery_limit" {
                ResultError {
                    code: ErrorCode::DeliveryLimit,
                    message: format!(
                        "RabbitMQ dead-lettered the command after {} deliveries without a \
                         verdict (amqp.delivery_limit is {limit}): it kept coming back \
                         unanswered (a daemon crashing on it or losing its connection), and may \
                         or may not have taken effect",
                        deliveries_at_limit(limit)
                    ),
                    retryable: false,
                    api_status: None,
                    api_error_key: None,
                    fields: Vec::new(),
                }
            } else {
                ResultError {
                    code: ErrorCode::DeadLettered,
                    message: format!(
                        "RabbitMQ dead-lettered the command (reason: {label}) before ctct-sync \
                         gave it a verdict"
                    ),
                    retryable: false,
                    api_status: None,
                    api_error_key: None,
                    fields: Vec::new(),
                }
            };
            let started_at = received_at.unwrap_or_else(|| processor.clock.now());
            let result = processor.result(
                &id,
                &command_type,
                &account,
                Outcome::Failed,
                None,
                Some(error),
                attempts.unwrap_or(1).max(1),
                started_at,
            );
            Disposition::Final {
                result,
                dead_letter: None,
                release,
                record: Record::Store(fingerprint),
            }
        }
    };
    processor.stats.broker_dead_letters.increment(&[label]);
    processor
        .stats
        .dead_lettered
        .fetch_add(1, Ordering::Relaxed);
    // A replay of a rejected command sends a redelivered commands-queue delivery to the dead
    // letters again; a copy from the watch queue is a dead letter already and never goes back.
    let delivery = Delivery {
        redelivered: false,
        ..delivery
    };
    processor.dispose(session, &delivery, disposition).await
}

async fn ack(processor: &Processor, delivery: &Delivery) {
    if delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .is_err()
    {
        processor.stats.ack_lost.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why the broker dead-lettered the message this time: the newest `x-death` entry (RabbitMQ
/// keeps them newest first). Not `x-first-death-reason`: a command back from a retry queue
/// was dead-lettered before, with reason `expired`. Empty when the broker did not say.
pub fn death_reason(headers: &FieldTable) -> String {
    let inner = headers.inner();
    if let Some(AMQPValue::FieldArray(deaths)) = inner.get("x-death")
        && let Some(AMQPValue::FieldTable(newest)) = deaths.as_slice().first()
        && let Some(reason) = newest.inner().get("reason").and_then(text)
    {
        return reason;
    }
    inner
        .get("x-first-death-reason")
        .and_then(text)
        .unwrap_or_default()
}

/// How often a quorum queue with delivery limit `limit` delivers a message before it
/// dead-letters it: RabbitMQ 3.10 gives up when a return takes the count past the limit, and
/// leaves no count on the dead letter itself.
pub fn deliveries_at_limit(limit: u32) -> u64 {
    u64::from(limit) + 1
}

fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}
