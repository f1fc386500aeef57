//! `ctct-sync dlq`: look at dead-lettered commands and send them back for another try.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde::Serialize;

use crate::amqp;
use crate::cli::json;
use crate::command::{MessageMeta, envelope};
use crate::config::Settings;
use crate::pipeline::dead_letters;
use crate::pipeline::process::{REASON_CODE_HEADER, REASON_HEADER, WAIT_HEADER};

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
        /// Print one JSON document instead of the lines: the dead letters (id, account,
        /// command type, reason code and reason) in an array, and how many were shown.
        #[arg(long)]
        json: bool,
    },
    /// Send dead-lettered commands back to the commands queue. A command that ended
    /// rejected or failed is forgotten by the ledger first, so it is processed afresh.
    ///
    /// Exit code: 0 sent back (with `--all`, also when there was nothing to send), 1 no
    /// dead-lettered command has the `--id` given, 2 could not run (configuration, broker,
    /// store).
    Replay {
        /// The command id to replay (every dead letter with this id).
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
    fingerprint: Option<String>,
}

fn header(headers: &Option<FieldTable>, name: &str) -> String {
    match headers.as_ref().and_then(|h| h.inner().get(name)) {
        Some(AMQPValue::LongString(value)) => value.to_string(),
        Some(AMQPValue::ShortString(value)) => value.to_string(),
        _ => String::new(),
    }
}

fn describe(delivery: &lapin::message::Delivery, delivery_limit: u32) -> Dead {
    // Read the way the daemon reads it (a gzip body too), so the id, account and fingerprint
    // are the ones its ledger entry has.
    let properties = &delivery.properties;
    let meta = MessageMeta {
        content_type: properties.content_type().as_ref().map(|s| s.as_str()),
        content_encoding: properties.content_encoding().as_ref().map(|s| s.as_str()),
        message_id: properties.message_id().as_ref().map(|s| s.as_str()),
    };
    let (id, command_type, account, fingerprint) = match envelope::decode(&delivery.data, &meta) {
        Ok(envelope) => {
            let fingerprint = envelope.fingerprint();
            (
                Some(envelope.id),
                Some(envelope.command_type),
                Some(envelope.account),
                Some(fingerprint),
            )
        }
        Err(error) => {
            let partial = error.partial;
            (
                partial.id,
                partial.command_type,
                partial.account,
                partial.fingerprint,
            )
        }
    };
    let mut code = header(properties.headers(), REASON_CODE_HEADER);
    let mut reason = header(properties.headers(), REASON_HEADER);
    if code.is_empty()
        && let Some(headers) = properties.headers()
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
    // For the listing, what the body says even where the daemon found it unusable.
    let raw: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap_or_default();
    let text = |key: &str| raw.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    Dead {
        id: id.or_else(|| text("id")).unwrap_or_default(),
        account: account.unwrap_or_else(|| "default".into()),
        command_type: command_type
            .or_else(|| text("type"))
            .unwrap_or_else(|| "?".into()),
        code,
        reason,
        fingerprint,
    }
}

/// Runs a `dlq` subcommand. Exit code 1 when `replay --id` finds no dead letter with that
/// id; errors (exit code 2 from `main`) when the broker or the store cannot be used.
pub async fn run(settings: &Settings, args: DlqArgs) -> anyhow::Result<ExitCode> {
    let nodes = amqp::BrokerNodes::from_settings(&settings.amqp);
    let connection =
        amqp::connect_first(&nodes, "ctct-sync dlq", amqp::nodes::CONNECT_TIMEOUT).await?;
    let channel = amqp::confirm_channel(&connection).await?;
    let queue = settings.amqp.dead_letter_queue.as_str();
    let mut held = Vec::new();
    let mut replayed = 0;
    let store = match &args.command {
        DlqCommand::Replay { .. } => Some(crate::daemon::open_stores(settings).await?.state),
        DlqCommand::List { .. } => None,
    };
    let limit = match args.command {
        DlqCommand::List { limit, .. } => limit,
        DlqCommand::Replay { .. } => u32::MAX,
    };
    let mut seen = 0u32;
    let mut total = None;
    let mut listed = Vec::new();
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
                let forgotten = store
                    .ledger_forget_unsuccessful(
                        &dead.account,
                        &dead.id,
                        dead.fingerprint.as_deref(),
                    )
                    .await?;
                if !forgotten {
                    // Nothing to forget: the command never reached the ledger (unreadable),
                    // or it ended in another store, such as the one of `run --sandbox`.
                    eprintln!(
                        "note: store {} holds no rejected or failed result of {}; if the daemon \
                         runs with --sandbox, replay with --sandbox too",
                        store.describe(),
                        dead.id
                    );
                }
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
            match args.command {
                DlqCommand::List { json: true, .. } => listed.push(DeadLetterDocument::of(dead)),
                DlqCommand::List { json: false, .. } => println!(
                    "{:<38} {:<10} {:<24} {:<26} {}",
                    dead.id, dead.account, dead.command_type, dead.code, dead.reason
                ),
                DlqCommand::Replay { .. } => {}
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
    let _ = connection.close(200, "done".into()).await;
    match args.command {
        DlqCommand::List { json: true, .. } => json::print(&ListDocument {
            queue,
            dead_letters: listed,
            shown: seen,
        })?,
        DlqCommand::List { json: false, .. } => {
            println!("{seen} dead-lettered command(s) shown")
        }
        DlqCommand::Replay { id: Some(id), .. } if replayed == 0 => {
            eprintln!(
                "error: no dead-lettered command has id {id:?} ({seen} looked at in {queue}); \
                 nothing was sent back. `ctct-sync dlq list` shows the ids there."
            );
            return Ok(ExitCode::from(1));
        }
        DlqCommand::Replay { .. } => println!(
            "{replayed} command(s) sent back to {}",
            settings.amqp.commands_queue
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `dlq list --json`: the dead letters looked at, in queue order.
#[derive(Debug, Serialize)]
struct ListDocument<'a> {
    /// The dead-letter queue read (`amqp.dead_letter_queue`).
    queue: &'a str,
    dead_letters: Vec<DeadLetterDocument>,
    /// How many were shown (at most `--limit`).
    shown: u32,
}

/// One dead letter of `dlq list --json`: the columns of the text listing.
#[derive(Debug, Serialize)]
struct DeadLetterDocument {
    id: String,
    account: String,
    command_type: String,
    /// The reason code (`invalid_data`, `delivery_limit`, …).
    code: String,
    reason: String,
}

impl DeadLetterDocument {
    fn of(dead: Dead) -> Self {
        Self {
            id: dead.id,
            account: dead.account,
            command_type: dead.command_type,
            code: dead.code,
            reason: dead.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_document_keeps_its_keys() {
        let dead = Dead {
            id: "needs-field".into(),
            account: "default".into(),
            command_type: "contact.upsert".into(),
            code: "invalid_data".into(),
            reason: "custom field Loyalty does not exist".into(),
            fingerprint: Some("f1".into()),
        };
        let document = ListDocument {
            queue: "ctct.commands.dlq",
            dead_letters: vec![DeadLetterDocument::of(dead)],
            shown: 1,
        };
        assert_eq!(
            serde_json::to_value(&document).unwrap(),
            serde_json::json!({
                "queue": "ctct.commands.dlq",
                "dead_letters": [{
                    "id": "needs-field",
                    "account": "default",
                    "command_type": "contact.upsert",
                    "code": "invalid_data",
                    "reason": "custom field Loyalty does not exist"
                }],
                "shown": 1
            })
        );
    }
}
