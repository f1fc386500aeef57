//! `ctct-sync send`: publish one command and print its result — how a person tries the
//! daemon by hand. The result comes back on a private reply queue (reply_to + correlation id).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use futures_util::StreamExt;
use lapin::BasicProperties;

use crate::amqp::{self, PublishError};
use crate::command::outcome::{CommandResult, Outcome};
use crate::config::Settings;

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Command type, e.g. contact.upsert (see docs/messages.md).
    #[arg(value_name = "TYPE")]
    pub command_type: String,
    /// The command's data, as JSON.
    #[arg(long, default_value = "{}")]
    pub data: String,
    /// Account name.
    #[arg(long, default_value = "default")]
    pub account: String,
    /// Command id (the idempotency key); a new UUID when left out.
    #[arg(long)]
    pub id: Option<String>,
    /// Seconds to wait for the result; 0 publishes and returns at once.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
}

/// What `ctct-sync send --help` ends with: examples, and the exit codes (docs/messages.md
/// says the same of those).
pub const HELP_AFTER: &str = "\
Examples:
  ctct-sync send list.list
  ctct-sync send contact.upsert --data '{\"email\": \"pat.lee@example.com\", \"first_name\": \"Pat\"}'
  ctct-sync send custom_field.create --data '{\"label\": \"Shoe size\", \"type\": \"string\"}' --wait 0

Exit codes:
  0  the command succeeded (with --wait 0: the broker confirmed it was queued)
  1  the command failed or was rejected (its result is printed)
  2  ctct-sync could not send it or read its result: a usage error, --data not JSON, a bad
     configuration, RabbitMQ unreachable, the commands queue missing (start the daemon once),
     the publish not confirmed, or the reply unreadable; the message starts with \"error:\".
     When the failure came after `sent TYPE ID` was printed, the command is queued.
  3  no result within --wait seconds (the command is queued and will still be applied)";

/// Publishes the command; prints its id, then (unless `--wait 0`) its result as JSON.
/// Exit code ([`HELP_AFTER`]): 0 when it succeeded, 1 when it failed or was rejected, 3 on
/// time-out; an error returned here becomes exit code 2 in `main`.
pub async fn run(settings: &Settings, args: SendArgs) -> anyhow::Result<ExitCode> {
    let data: serde_json::Value = serde_json::from_str(&args.data).context("--data is not JSON")?;
    let id = args.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let envelope = serde_json::json!({"id": id, "type": args.command_type, "account": args.account, "data": data});
    let body = serde_json::to_vec(&envelope)?;

    let nodes = amqp::BrokerNodes::from_settings(&settings.amqp);
    let connection =
        amqp::connect_first(&nodes, "ctct-sync send", amqp::nodes::CONNECT_TIMEOUT).await?;
    let channel = amqp::confirm_channel(&connection).await?;
    let (reply_queue, mut replies) = amqp::private_consumer(&channel, None).await?;
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(id.as_str().into())
        .with_correlation_id(id.as_str().into())
        .with_reply_to(reply_queue.as_str().into());
    match amqp::publish_with(
        &channel,
        "",
        &settings.amqp.commands_queue,
        &body,
        properties,
        true,
    )
    .await
    {
        Ok(()) => {}
        Err(PublishError::Unroutable { .. }) => bail!(
            "queue {} does not exist: start the daemon once (`ctct-sync run`) so it declares its queues",
            settings.amqp.commands_queue
        ),
        Err(error) => return Err(error.into()),
    }
    eprintln!("sent {} {id}", args.command_type);
    if args.wait == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let wait = Duration::from_secs(args.wait);
    let result = tokio::time::timeout(wait, async {
        while let Some(delivery) = replies.next().await {
            let delivery = delivery?;
            if delivery
                .properties
                .correlation_id()
                .as_ref()
                .map(|c| c.as_str())
                == Some(id.as_str())
            {
                return Ok::<_, anyhow::Error>(serde_json::from_slice::<CommandResult>(
                    &delivery.data,
                )?);
            }
        }
        Err(anyhow!("the reply queue closed"))
    })
    .await;
    let _ = connection.close(200, "done".into()).await;
    match result {
        Err(_) => {
            eprintln!(
                "no result within {} s; the command is queued and will still be applied (id {id})",
                args.wait
            );
            Ok(ExitCode::from(3))
        }
        Ok(result) => {
            let result = result?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(if result.outcome == Outcome::Succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
