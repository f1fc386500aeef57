//! `ctct-sync dlq`: look at dead-lettered commands and send them back for another try.

use std::collections::HashMap;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable};

use crate::amqp;
use crate::config::Settings;
use crate::pipeline::dead_letters;
use crate::pipeline::process::{REASON_CODE_HEADER, REASON_HEADER, WAIT_HEADER};
use crate::store::{Store, ledger};

#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead-lettered commands (they stay in the queue).
    List {
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Send dead-lettered commands back to the commands queue. A command that ended
    /// rejected or failed is forgotten by the ledger first, so it is processed afresh.
    Replay {
        /// The command id to replay.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        id: Option<String>,
        /// Replay every dead-lettered command.
        #[arg(long)]
        all: bool,
    },
}

struct Dead {
    id: String,
    account: String,
    command_type: String,
    code: String,
    reason: String,
}

fn header(headers: &Option<FieldTable>, name: &str) -> String {
    match headers.as_ref().and_then(|h| h.inner().get(name)) {
        Some(AMQPValue::LongString(value)) => value.to_string(),
        Some(AMQPValue::ShortString(value)) => value.to_string(),
        _ => String::new(),
    }
}

fn describe(delivery: &lapin::message::Delivery, delivery_limit: u32) -> Dead {
    let envelope: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap_or_default();
    let text = |key: &str| {
        envelope
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let id = text("id")
        .or_else(|| {
            delivery
                .properties
                .message_id()
                .as_ref()
                .map(|m| m.to_string())
        })
        .unwrap_or_default();
    let mut code = header(delivery.properties.headers(), REASON_CODE_HEADER);
    let mut reason = header(delivery.properties.headers(), REASON_HEADER);
    if code.is_empty()
        && let Some(headers) = delivery.properties.headers()
    {
        // Dead-lettered by RabbitMQ itself (the delivery limit): its reason and count.
        code = dead_letters::death_reason(headers);
        reason = if code == "delivery_limit" {
            format!(
                "dead-lettered by RabbitMQ after {} deliveries",
                dead_letters::deliveries_at_limit(delivery_limit)
            )
        } else {
            "dead-lettered by RabbitMQ".into()
        };
    }
    Dead {
        id,
        account: text("account").unwrap_or_else(|| "default".into()),
        command_type: text("type").unwrap_or_else(|| "?".into()),
        code,
        reason,
    }
}

/// Runs a `dlq` subcommand.
pub async fn run(settings: &Settings, args: DlqArgs) -> anyhow::Result<()> {
    let connection = amqp::connect(settings.amqp.url.expose(), "ctct-sync dlq")
        .await
        .with_context(|| format!("cannot reach RabbitMQ at {}", settings.amqp.url.redacted()))?;
    let channel = amqp::confirm_channel(&connection).await?;
    let queue = settings.amqp.dead_letter_queue.as_str();
    let mut held = Vec::new();
    let mut replayed = 0;
    let store = match &args.command {
        DlqCommand::Replay { .. } => Some(Store::open(&settings.store.path)?.0),
        DlqCommand::List { .. } => None,
    };
    let limit = match args.command {
        DlqCommand::List { limit } => limit,
        DlqCommand::Replay { .. } => u32::MAX,
    };
    let mut seen = 0u32;
    let mut total = None;
    while seen < limit && total.is_none_or(|t| seen < t) {
        let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        if total.is_none() {
            total = Some(message.message_count + 1);
        }
        seen += 1;
        let dead = describe(&message.delivery, settings.amqp.delivery_limit);
        let selected = match &args.command {
            DlqCommand::List { .. } => false,
            DlqCommand::Replay { id, all } => *all || id.as_deref() == Some(dead.id.as_str()),
        };
        if selected {
            if let Some(store) = &store {
                let (account, id) = (dead.account.clone(), dead.id.clone());
                store
                    .call(move |conn| ledger::forget_unsuccessful(conn, &account, &id))
                    .await?;
            }
            let mut headers: HashMap<_, _> = message
                .properties
                .headers()
                .as_ref()
                .map(|h| h.inner().clone().into_iter().collect())
                .unwrap_or_default();
            for name in [
                REASON_CODE_HEADER,
                REASON_HEADER,
                WAIT_HEADER,
                "x-death",
                "x-first-death-queue",
                "x-first-death-reason",
                "x-first-death-exchange",
                "x-delivery-count",
            ] {
                headers.remove(name);
            }
            let properties = message.properties.clone().with_headers(FieldTable::from(
                headers
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>(),
            ));
            amqp::publish_with(
                &channel,
                "",
                &settings.amqp.commands_queue,
                &message.data,
                properties,
                true,
            )
            .await?;
            message
                .delivery
                .acker
                .ack(BasicAckOptions::default())
                .await?;
            replayed += 1;
            println!(
                "replayed {} {} (was {}: {})",
                dead.command_type, dead.id, dead.code, dead.reason
            );
        } else {
            if matches!(args.command, DlqCommand::List { .. }) {
                println!(
                    "{:<38} {:<10} {:<24} {:<26} {}",
                    dead.id, dead.account, dead.command_type, dead.code, dead.reason
                );
            }
            held.push(message);
        }
    }
    // Everything not replayed goes back to the dead-letter queue as it was.
    for message in held {
        message
            .delivery
            .acker
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await?;
    }
    match args.command {
        DlqCommand::List { .. } => println!("{seen} dead-lettered command(s) shown"),
        DlqCommand::Replay { .. } => println!(
            "{replayed} command(s) sent back to {}",
            settings.amqp.commands_queue
        ),
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}
