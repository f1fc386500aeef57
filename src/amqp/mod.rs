//! RabbitMQ: connecting, the topology, confirmed publishing and the command consumer.

pub mod publisher;
pub mod topology;

pub use publisher::{Outgoing, PublishError, publish, publish_with};
pub use topology::Topology;

use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties};

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
