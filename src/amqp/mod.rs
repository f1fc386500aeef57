//! RabbitMQ: connecting (to one node of several), the topology, confirmed publishing, events and the command consumer.

pub mod event;
pub mod nodes;
pub mod publisher;
pub mod topology;

pub use nodes::{BrokerNodes, connect_first};
pub use publisher::{Outgoing, PublishError, publish, publish_with};
pub use topology::Topology;

use lapin::options::{
    BasicConsumeOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};

/// Opens a connection named `name` (shown in the broker's management views).
pub async fn connect(url: &str, name: &str) -> Result<Connection, lapin::Error> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, properties).await
}

/// A channel in publisher-confirm mode.
pub async fn confirm_channel(connection: &Connection) -> Result<Channel, lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// A queue of the caller's own (server-named, exclusive, gone with the connection), bound to
/// every routing key of `exchange` when one is given, and consumed without acks: for a
/// client that waits for results. Returns the queue's name (for `reply_to`) and the consumer.
pub async fn private_consumer(
    channel: &Channel,
    exchange: Option<&str>,
) -> Result<(String, Consumer), lapin::Error> {
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?
        .name()
        .to_string();
    if let Some(exchange) = exchange {
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((queue, consumer))
}
