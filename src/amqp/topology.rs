//! The broker topology, declared on every (re)connect from configured names.
//!
//! ```text
//! (default exchange) ─rk <commands>──▶ <commands>            quorum, delivery limit, DLX
//! <commands>.dlx (fanout) ───────────▶ <dead letters>        quorum: rejected and exhausted commands
//!                          └─────────▶ <commands>.dead.watch  quorum, bounded, drop-head: a copy
//!                                                             of each, for the daemon to answer
//! <commands>.retry.<ms>ms            quorum, TTL <ms>, dead-letters back to <commands>
//! <commands>.parked.quota            quorum, per-message TTL until 00:00 UTC, back to <commands>
//! <commands>.parked.auth.<ms>ms      quorum, TTL <ms>, back to <commands> (account needs a person)
//! <results> (topic)                  every result, routing key <type>.<outcome>
//! <unrouted>                          quorum, at most 10000 (drop-head): results the broker
//!                                     returned (no queue for their key, reply_to gone)
//! ```
//! Every hop back to the commands queue is an at-least-once dead-lettering (RabbitMQ ≥ 3.10:
//! `x-dead-letter-strategy=at-least-once` with `x-overflow=reject-publish`), so no command is
//! lost between queues. Names come from `amqp.*`. A queue's arguments never change once
//! declared (RabbitMQ refuses a redeclaration with other arguments), so waiting queues carry
//! their delay in their name: changing a delay declares a new queue.

use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};

use crate::config::AmqpSettings;

/// Most results the unrouted queue keeps; past it the oldest are dropped. Fixed, because a
/// queue's arguments cannot change once declared; a policy (`max-length`) can lower it.
pub const UNROUTED_MAX_LENGTH: i64 = 10_000;

/// Headers of a result kept in the unrouted queue: `results` (from the results exchange) or
/// `reply` (from `reply_to`), and the exchange and routing key it was published with.
pub const UNROUTED_KIND_HEADER: &str = "x-ctct-unrouted-kind";
pub const UNROUTED_EXCHANGE_HEADER: &str = "x-ctct-unrouted-exchange";
pub const UNROUTED_ROUTING_KEY_HEADER: &str = "x-ctct-unrouted-routing-key";

/// Every name of the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub commands_queue: String,
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    /// A second queue on the dead-letter exchange: the daemon answers what lands there
    /// ([`crate::pipeline::dead_letters`]) while `dead_letter_queue` keeps every dead letter
    /// for people.
    pub dead_letter_watch_queue: String,
    pub results_exchange: String,
    /// Where results the broker returned as unroutable are kept.
    pub unrouted_queue: String,
    pub retry_queues: Vec<(String, Duration)>,
    pub parked_quota_queue: String,
    pub parked_auth_queue: String,
    /// How long commands of an account needing re-authorisation wait between looks.
    pub parked_auth_ttl: Duration,
    pub delivery_limit: u32,
}

impl Topology {
    pub fn from_settings(settings: &AmqpSettings) -> Self {
        let q = &settings.commands_queue;
        Self {
            commands_queue: q.clone(),
            dead_letter_exchange: format!("{q}.dlx"),
            dead_letter_queue: settings.dead_letter_queue.clone(),
            dead_letter_watch_queue: format!("{q}.dead.watch"),
            results_exchange: settings.results_exchange.clone(),
            unrouted_queue: settings.unrouted_queue.clone(),
            retry_queues: settings
                .retry_delays_ms
                .iter()
                .map(|ms| (format!("{q}.retry.{ms}ms"), Duration::from_millis(*ms)))
                .collect(),
            parked_quota_queue: format!("{q}.parked.quota"),
            parked_auth_queue: format!("{q}.parked.auth.{}ms", settings.reauth_recheck_ms),
            parked_auth_ttl: Duration::from_millis(settings.reauth_recheck_ms),
            delivery_limit: settings.delivery_limit,
        }
    }

    /// The retry queue for the `attempt`-th transient failure (1-based).
    pub fn retry_queue(&self, attempt: u32) -> &str {
        let index = (attempt.max(1) as usize - 1).min(self.retry_queues.len() - 1);
        &self.retry_queues[index].0
    }

    /// Declares everything. Idempotent while the arguments stay the same.
    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.results_exchange.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.dead_letter_exchange.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;

        let mut commands = quorum();
        commands.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(self.delivery_limit as i32),
        );
        commands.insert(
            "x-dead-letter-exchange".into(),
            text(&self.dead_letter_exchange),
        );
        commands.insert("x-dead-letter-strategy".into(), text("at-least-once"));
        commands.insert("x-overflow".into(), text("reject-publish"));
        commands.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        declare_queue(channel, &self.commands_queue, commands).await?;

        declare_queue(channel, &self.dead_letter_queue, quorum()).await?;
        channel
            .queue_bind(
                self.dead_letter_queue.as_str().into(),
                self.dead_letter_exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        // Bounded, and dropping its oldest copies when full (never `reject-publish`): with
        // at-least-once dead-lettering a full target would hold up every dead letter of the
        // commands queue, also the ones for `dead_letter_queue`.
        let mut watch = quorum();
        watch.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(WATCH_MAX_LENGTH),
        );
        watch.insert(
            "x-max-length-bytes".into(),
            AMQPValue::LongLongInt(WATCH_MAX_BYTES),
        );
        watch.insert("x-overflow".into(), text("drop-head"));
        declare_queue(channel, &self.dead_letter_watch_queue, watch).await?;
        channel
            .queue_bind(
                self.dead_letter_watch_queue.as_str().into(),
                self.dead_letter_exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        // Nothing consumes it: a bound keeps a forgotten one from filling the broker, and the
        // oldest go first (every result also stays in the store's ledger).
        let mut unrouted = quorum();
        unrouted.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(UNROUTED_MAX_LENGTH),
        );
        unrouted.insert("x-overflow".into(), text("drop-head"));
        declare_queue(channel, &self.unrouted_queue, unrouted).await?;

        for (name, ttl) in &self.retry_queues {
            declare_queue(channel, name, self.back_to_commands(Some(*ttl))).await?;
        }
        declare_queue(
            channel,
            &self.parked_quota_queue,
            self.back_to_commands(None),
        )
        .await?;
        declare_queue(
            channel,
            &self.parked_auth_queue,
            self.back_to_commands(Some(self.parked_auth_ttl)),
        )
        .await?;
        Ok(())
    }

    /// Arguments of a waiting queue whose expired messages go back to the commands queue.
    fn back_to_commands(&self, ttl: Option<Duration>) -> FieldTable {
        let mut args = quorum();
        if let Some(ttl) = ttl {
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(ttl.as_millis() as i64),
            );
        }
        args.insert("x-dead-letter-exchange".into(), text(""));
        args.insert(
            "x-dead-letter-routing-key".into(),
            text(&self.commands_queue),
        );
        args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
        args.insert("x-overflow".into(), text("reject-publish"));
        args
    }

    /// Deletes everything (tests and `dlq` tooling clean up with it).
    pub async fn delete(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let mut queues = vec![
            &self.commands_queue,
            &self.dead_letter_queue,
            &self.dead_letter_watch_queue,
            &self.unrouted_queue,
            &self.parked_quota_queue,
            &self.parked_auth_queue,
        ];
        queues.extend(self.retry_queues.iter().map(|(name, _)| name));
        for queue in queues {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        for exchange in [&self.results_exchange, &self.dead_letter_exchange] {
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

/// At most this many dead letters wait in the watch queue (while no daemon runs); beyond it
/// the oldest copies are dropped (they stay in the dead-letter queue, without a result).
pub const WATCH_MAX_LENGTH: i64 = 10_000;
/// At most this many bytes of dead letters wait in the watch queue (64 MiB).
pub const WATCH_MAX_BYTES: i64 = 64 * 1024 * 1024;

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    args: FieldTable,
) -> Result<(), lapin::Error> {
    channel
        .queue_declare(
            ShortString::from(name),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await?;
    Ok(())
}
