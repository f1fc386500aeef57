//! Confirmed publishing: a publish counts only when the broker acknowledged it.
//!
//! Every publish is `mandatory` and persistent and waits for the broker's confirm, with a
//! timeout (lapin can hang when the server goes away mid-publish). An ack carrying a returned
//! message means "no queue took it" and is reported as [`PublishError::Unroutable`]; a nack
//! (a full queue with `reject-publish`, an internal error) as [`PublishError::Nacked`].

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation};

/// How long a publish may wait for its confirm.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no queue is bound for exchange {exchange:?} and routing key {routing_key:?}")]
    Unroutable {
        exchange: String,
        routing_key: String,
    },
    #[error("the broker refused the message (nack) on exchange {exchange:?}")]
    Nacked { exchange: String },
    #[error("the broker did not confirm within {0:?}")]
    Timeout(Duration),
    #[error("the channel is not in confirm mode")]
    NotConfirmed,
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
}

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub body: &'a [u8],
    pub correlation_id: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub headers: Vec<(&'static str, AMQPValue)>,
    /// Per-message TTL in milliseconds (parking until the quota resets).
    pub expiration_ms: Option<u64>,
    pub content_type: &'a str,
    /// Ask the broker to return the message when no queue takes it (then it is an error).
    /// Off for events, where having no listener is the users' choice; results are mandatory
    /// and a returned one is kept in the unrouted queue.
    pub mandatory: bool,
}

impl<'a> Outgoing<'a> {
    pub fn json(exchange: &'a str, routing_key: &'a str, body: &'a [u8]) -> Self {
        Self {
            exchange,
            routing_key,
            body,
            correlation_id: None,
            message_id: None,
            headers: Vec::new(),
            expiration_ms: None,
            content_type: "application/json",
            mandatory: true,
        }
    }
}

/// Publishes one message on a confirm-mode channel and waits for the broker's confirm.
pub async fn publish(channel: &Channel, message: Outgoing<'_>) -> Result<(), PublishError> {
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(message.content_type.into());
    if let Some(correlation_id) = message.correlation_id {
        properties = properties.with_correlation_id(correlation_id.into());
    }
    if let Some(message_id) = message.message_id {
        properties = properties.with_message_id(message_id.into());
    }
    if let Some(ms) = message.expiration_ms {
        properties = properties.with_expiration(ms.to_string().into());
    }
    if !message.headers.is_empty() {
        let mut headers = FieldTable::default();
        for (key, value) in message.headers {
            headers.insert(key.into(), value);
        }
        properties = properties.with_headers(headers);
    }
    publish_with(
        channel,
        message.exchange,
        message.routing_key,
        message.body,
        properties,
        message.mandatory,
    )
    .await
}

/// Publishes with explicit properties (forwarding a delivery to another queue keeps its
/// message id, correlation id, reply-to and headers) and waits for the confirm.
pub async fn publish_with(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
    mandatory: bool,
) -> Result<(), PublishError> {
    let confirm = async {
        channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await?
            .await
    };
    match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
        Err(_) => Err(PublishError::Timeout(CONFIRM_TIMEOUT)),
        Ok(Err(error)) => Err(PublishError::Amqp(error)),
        Ok(Ok(Confirmation::Ack(None))) => Ok(()),
        Ok(Ok(Confirmation::Ack(Some(_)))) => Err(PublishError::Unroutable {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
        }),
        Ok(Ok(Confirmation::Nack(_))) => Err(PublishError::Nacked {
            exchange: exchange.to_owned(),
        }),
        Ok(Ok(Confirmation::NotRequested)) => Err(PublishError::NotConfirmed),
    }
}
