//! After a delivery is decided: store the final result in the ledger, publish it (results
//! exchange, then reply_to), dead-letter the original when asked, forward waiting commands,
//! and only then acknowledge. Any publish that fails leaves the delivery unacked. A result
//! the broker returns as unroutable is kept in the unrouted queue instead (not a failure).

use std::sync::atomic::Ordering;

use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use lapin::types::AMQPValue;

use crate::amqp::topology::{
    UNROUTED_EXCHANGE_HEADER, UNROUTED_KIND_HEADER, UNROUTED_ROUTING_KEY_HEADER,
};
use crate::amqp::{self, PublishError};
use crate::command::outcome::{
    CommandResult, ErrorCode, Outcome, ResultWarning, WARNING_REPLY_TO_REFUSED,
};
use crate::config::REPLY_TO_ANY;
use crate::store::ledger;

use super::error::PipelineError;
use super::process::{
    Disposition, Processor, REASON_CODE_HEADER, REASON_HEADER, Record, WAIT_HEADER,
};
use super::session::Session;

/// How the queue names of RabbitMQ's direct reply-to start, as the responder sees them.
const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to.";

/// Where a returned result was meant to go.
#[derive(Debug, Clone, Copy)]
enum Unrouted {
    /// The results exchange had no queue bound for its routing key.
    Results,
    /// The `reply_to` queue does not exist (any more).
    Reply,
}

impl Unrouted {
    fn as_str(self) -> &'static str {
        match self {
            Unrouted::Results => "results",
            Unrouted::Reply => "reply",
        }
    }
}

/// Longest `x-ctct-reason` header, in characters (at most 4 bytes each: 16 KiB).
const MAX_REASON_HEADER: usize = 4096;

impl Processor {
    /// Publishes queued events on the results exchange.
    pub async fn flush_events(&self, session: &Session) -> Result<(), PublishError> {
        let events: Vec<_> = std::mem::take(
            &mut *self
                .pending_events
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (index, event) in events.iter().enumerate() {
            let exchange = &self.settings.topology.results_exchange;
            if let Err(error) = amqp::event::publish_event(&session.channel, exchange, event).await
            {
                // Put back what was not sent; the next result publish tries again.
                let mut pending = self
                    .pending_events
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                pending.extend(events[index..].iter().cloned());
                return Err(error);
            }
            tracing::debug!(
                routing_key = amqp::event::routing_key(event.event_type),
                "event published"
            );
        }
        Ok(())
    }

    pub(super) async fn dispose(
        &self,
        session: &Session,
        delivery: &Delivery,
        disposition: Disposition,
    ) -> Result<(), PipelineError> {
        self.flush_events(session).await?;
        match disposition {
            Disposition::Final {
                mut result,
                dead_letter,
                release,
                record,
            } => {
                let reply_to = self.reply_target(delivery, &mut result);
                let stored = serde_json::to_string(&result).unwrap_or_default();
                if let Record::Store(fingerprint) = record
                    && !result.command_id.is_empty()
                    && let Some(first) = self.record(&result, &stored, fingerprint).await?
                {
                    if let Some((key, id)) = release {
                        self.held.release(&key, &id);
                    }
                    return self.replay(session, delivery, first).await;
                }
                tracing::debug!("ledger: result stored");
                self.count_final(&result);
                self.publish_result(
                    session,
                    delivery,
                    &result,
                    stored.as_bytes(),
                    reply_to.as_deref(),
                )
                .await?;
                tracing::debug!("result published");
                log_final(&result);
                if let Some((code, reason)) = dead_letter {
                    self.dead_letter(session, delivery, code, &reason).await?;
                }
                self.ack(delivery).await;
                if let Some((key, id)) = release {
                    self.held.release(&key, &id);
                }
            }
            Disposition::Replay(result) => self.replay(session, delivery, result).await?,
            Disposition::Wait {
                queue,
                kind,
                expiration_ms,
            } => {
                let mut properties = with_headers(&delivery.properties, &[(WAIT_HEADER, kind)]);
                if let Some(ms) = expiration_ms {
                    properties = properties.with_expiration(ms.to_string().into());
                }
                amqp::publish_with(
                    &session.channel,
                    "",
                    &queue,
                    &delivery.data,
                    properties,
                    true,
                )
                .await?;
                self.ack(delivery).await;
            }
            Disposition::Batch(_) | Disposition::Gather(_) => {
                // `process` hands these to the batcher or the gatherer; never disposed of here.
                tracing::error!(
                    "a batched command reached dispose; it stays unacked and comes back"
                );
            }
        }
        Ok(())
    }

    /// Stores a final result in the ledger. When another delivery of the command (a
    /// redelivery after a lost channel, while this one was still being handled) stored its
    /// result first, that one is the command's result: it comes back, marked replayed, to be
    /// sent instead. The same text is this result, stored by the batcher beforehand.
    async fn record(
        &self,
        result: &CommandResult,
        stored: &str,
        fingerprint: Option<String>,
    ) -> Result<Option<CommandResult>, PipelineError> {
        let saved = self
            .store
            .ledger_finish_or_stored(
                ledger::Finish {
                    account: &result.account,
                    command_id: &result.command_id,
                    command_type: &result.command_type,
                    outcome: result.outcome.as_str(),
                    result: stored,
                    fingerprint: fingerprint.as_deref(),
                },
                result.finished_at,
            )
            .await;
        match saved {
            Err(error) => {
                // One log line per outage, by the store's health.
                self.store_health.report(&error.to_string());
                Err(error.into())
            }
            Ok(Some(first)) if first != stored => {
                match serde_json::from_str::<CommandResult>(&first) {
                    Ok(mut replay) => {
                        tracing::info!(
                            "another delivery of this command finished first; its result is sent again"
                        );
                        replay.replayed = true;
                        Ok(Some(replay))
                    }
                    Err(error) => {
                        tracing::error!(
                            error = %error,
                            "the stored result of this command cannot be read; this one is sent"
                        );
                        Ok(None)
                    }
                }
            }
            Ok(_) => Ok(None),
        }
    }

    /// Counts a final result: by outcome, by (command type, outcome), and its duration.
    fn count_final(&self, result: &CommandResult) {
        let counter = match result.outcome {
            Outcome::Succeeded => &self.stats.succeeded,
            Outcome::Failed => &self.stats.failed,
            Outcome::Rejected => &self.stats.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        // Only known types become labels: a hostile `type` must not grow the metrics.
        let command_type = match crate::command::COMMAND_TYPES
            .iter()
            .find(|t| **t == result.command_type)
        {
            Some(known) => *known,
            None => "unknown",
        };
        self.stats
            .by_outcome
            .increment(&[command_type, result.outcome.as_str()]);
        let took = (result.finished_at - result.started_at)
            .to_std()
            .unwrap_or_default();
        self.stats.duration.observe(command_type, took);
    }

    /// Sends a command's stored result again (marked `replayed`) and acks the delivery.
    async fn replay(
        &self,
        session: &Session,
        delivery: &Delivery,
        mut result: CommandResult,
    ) -> Result<(), PipelineError> {
        let reply_to = self.reply_target(delivery, &mut result);
        let body = serde_json::to_vec(&result).unwrap_or_default();
        self.publish_result(session, delivery, &result, &body, reply_to.as_deref())
            .await?;
        log_final(&result);
        // The verdict is stored before its dead letter goes out: a redelivery may be all
        // that is left of a message whose dead letter never went out (at least once, like
        // results).
        if delivery.redelivered
            && let Some(error) = result.error.as_ref()
            && (result.outcome == Outcome::Rejected || error.code == ErrorCode::RetriesExhausted)
        {
            let mut reason = format!("{}: {}", error.code, error.message);
            for field in &error.fields {
                reason.push_str(&format!("; {}: {}", field.field, field.reason));
            }
            self.dead_letter(session, delivery, error.code, &reason)
                .await?;
        }
        self.stats.replayed.fetch_add(1, Ordering::Relaxed);
        self.ack(delivery).await;
        Ok(())
    }

    /// Publishes the original message to the dead letters, with why.
    async fn dead_letter(
        &self,
        session: &Session,
        delivery: &Delivery,
        code: ErrorCode,
        reason: &str,
    ) -> Result<(), PublishError> {
        let topology = &self.settings.topology;
        // Headers travel in one frame (RabbitMQ: frame_max 128 KiB, a bigger one closes the
        // connection), so the reason is capped; the result has it all.
        let reason = crate::command::field::truncate(reason, MAX_REASON_HEADER);
        let properties = with_headers(
            &delivery.properties,
            &[
                (REASON_CODE_HEADER, code.as_str()),
                (REASON_HEADER, reason.as_str()),
            ],
        );
        amqp::publish_with(
            &session.channel,
            &topology.dead_letter_exchange,
            &topology.commands_queue,
            &delivery.data,
            properties,
            true,
        )
        .await?;
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Publishes a result to the results exchange, then to `reply_to` when given. A result
    /// the broker returns (no queue bound for its routing key, or the reply_to queue is gone)
    /// goes to the unrouted queue: kept, counted, and the delivery is acked as usual.
    async fn publish_result(
        &self,
        session: &Session,
        delivery: &Delivery,
        result: &CommandResult,
        body: &[u8],
        reply_to: Option<&str>,
    ) -> Result<(), PublishError> {
        let topology = &self.settings.topology;
        let routing_key = result.routing_key();
        let mut message = amqp::Outgoing::json(&topology.results_exchange, &routing_key, body);
        message.message_id = Some(&result.command_id);
        let correlation = delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.to_string());
        message.correlation_id = correlation.as_deref();
        self.publish_or_keep(session, message.clone(), Unrouted::Results)
            .await?;
        if let Some(reply_to) = reply_to {
            message.exchange = "";
            message.routing_key = reply_to;
            if reply_to.starts_with(DIRECT_REPLY_TO) {
                // RabbitMQ returns a mandatory publish to a direct reply-to even when it
                // delivered it, and cannot tell whether the requester is still there: such
                // a reply is sent once, unchecked (at most once, as RabbitMQ documents).
                message.mandatory = false;
                amqp::publish(&session.channel, message).await?;
            } else {
                self.publish_or_keep(session, message, Unrouted::Reply)
                    .await?;
            }
        }
        Ok(())
    }

    /// Publishes `message` (mandatory); when the broker returns it, keeps it in the unrouted
    /// queue with where it was meant to go.
    async fn publish_or_keep(
        &self,
        session: &Session,
        message: amqp::Outgoing<'_>,
        kind: Unrouted,
    ) -> Result<(), PublishError> {
        match amqp::publish(&session.channel, message.clone()).await {
            Err(PublishError::Unroutable { .. }) => {}
            other => return other,
        }
        let (exchange, routing_key) = (message.exchange, message.routing_key);
        let mut kept = message;
        kept.exchange = "";
        kept.routing_key = &self.settings.topology.unrouted_queue;
        kept.headers.extend([
            (
                UNROUTED_KIND_HEADER,
                AMQPValue::LongString(kind.as_str().into()),
            ),
            (
                UNROUTED_EXCHANGE_HEADER,
                AMQPValue::LongString(exchange.into()),
            ),
            (
                UNROUTED_ROUTING_KEY_HEADER,
                AMQPValue::LongString(routing_key.into()),
            ),
        ]);
        // Unroutable here too means the queue was deleted while the daemon runs: the session
        // is rebuilt (declaring it again) and the command comes back.
        amqp::publish(&session.channel, kept).await?;
        let counter = match kind {
            Unrouted::Results => &self.stats.unrouted_results,
            Unrouted::Reply => &self.stats.unrouted_replies,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            kind = kind.as_str(),
            exchange = ?exchange,
            routing_key = ?routing_key,
            unrouted_queue = %self.settings.topology.unrouted_queue,
            "the broker returned the result as unroutable; it is kept in the unrouted queue"
        );
        Ok(())
    }

    /// The delivery's `reply_to` when the daemon may publish there. A refused one is named in
    /// the result's `warnings` and in one log line.
    fn reply_target(&self, delivery: &Delivery, result: &mut CommandResult) -> Option<String> {
        let reply_to = delivery.properties.reply_to().as_ref()?.to_string();
        if reply_to.is_empty() {
            return None;
        }
        if self.reply_allowed(&reply_to) {
            return Some(reply_to);
        }
        tracing::warn!(
            reply_to = ?reply_to,
            "reply_to is not an allowed queue (amqp.reply_to_prefixes); the result goes to the results exchange only"
        );
        if !result
            .warnings
            .iter()
            .any(|w| w.code == WARNING_REPLY_TO_REFUSED)
        {
            result.warnings.push(ResultWarning {
                code: WARNING_REPLY_TO_REFUSED.to_owned(),
                message: format!(
                    "reply_to {reply_to:?} is not a queue ctct-sync publishes to (see amqp.reply_to_prefixes); the result went to the results exchange only"
                ),
            });
        }
        None
    }

    fn reply_allowed(&self, reply_to: &str) -> bool {
        // Never into one of our own queues: a result put in the commands queue (or one that
        // leads back to it) comes back as a command and is answered a second time.
        let topology = &self.settings.topology;
        let ours = [
            &topology.commands_queue,
            &topology.dead_letter_queue,
            &topology.dead_letter_watch_queue,
            &topology.unrouted_queue,
            &topology.parked_quota_queue,
            &topology.parked_auth_queue,
        ]
        .into_iter()
        .chain(topology.retry_queues.iter().map(|(name, _)| name))
        .any(|queue| queue == reply_to);
        !ours
            && self
                .settings
                .reply_to_prefixes
                .iter()
                .any(|p| p == REPLY_TO_ANY || reply_to.starts_with(p.as_str()))
    }

    async fn ack(&self, delivery: &Delivery) {
        match delivery.acker.ack(BasicAckOptions::default()).await {
            Ok(true) => tracing::debug!("acked"),
            Ok(false) | Err(_) => {
                // The channel is gone: the broker redelivers and the ledger replays.
                self.stats.ack_lost.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    delivery_tag = delivery.delivery_tag,
                    "ack not delivered; the command will come back and be replayed"
                );
            }
        }
    }
}

/// The one line an operator sees per published final result (replays included, marked):
/// which command, whose, how it ended and how long it took. Never its `data`, nor the
/// error's message (either can hold e-mail addresses or names).
fn log_final(result: &CommandResult) {
    use crate::command::field::truncate;
    let duration_ms = (result.finished_at - result.started_at)
        .num_milliseconds()
        .max(0);
    tracing::info!(
        command_id = %truncate(&result.command_id, 128),
        command_type = %truncate(&result.command_type, 64),
        account = %truncate(&result.account, 128),
        outcome = %result.outcome.as_str(),
        error_code = %result.error.as_ref().map_or("", |e| e.code.as_str()),
        attempts = result.attempts,
        duration_ms,
        replayed = result.replayed,
        "command finished"
    );
}

/// The delivery's properties with headers added (or replaced).
fn with_headers(properties: &BasicProperties, extra: &[(&str, &str)]) -> BasicProperties {
    let mut headers = properties.headers().clone().unwrap_or_default();
    for (name, value) in extra {
        headers.insert((*name).into(), AMQPValue::LongString((*value).into()));
    }
    properties.clone().with_headers(headers)
}
