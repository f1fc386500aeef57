//! One broker session: a consuming connection and a publishing connection (a publisher
//! blocked by a resource alarm must not stop acks), the topology, and the consumer.
//!
//! Anything that goes wrong on either connection marks the session broken; the supervisor
//! then drops it whole and builds a new one. Deliveries still unacked on a dropped session
//! are requeued by the broker and come back — the ledger turns them into replays.

use std::time::Duration;

use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use tokio_util::sync::CancellationToken;

use crate::amqp::{self, Topology};

/// A live session.
pub struct Session {
    consume: Connection,
    publish: Connection,
    /// Confirm-mode channel for results, replies, retries and dead letters.
    pub channel: Channel,
    consume_channel: Channel,
    consumer_tag: String,
    /// Cancelled when a publish or an ack fails: the supervisor rebuilds the session.
    pub broken: CancellationToken,
}

impl Session {
    /// Connects, declares the topology, sets the prefetch and starts consuming.
    pub async fn open(
        url: &str,
        topology: &Topology,
        prefetch: u16,
    ) -> Result<(Session, Consumer), lapin::Error> {
        let q = &topology.commands_queue;
        let consume = amqp::connect(url, &format!("ctct-sync consume {q}")).await?;
        let publish = amqp::connect(url, &format!("ctct-sync publish {q}")).await?;
        let channel = amqp::confirm_channel(&publish).await?;
        topology.declare(&channel).await?;
        let consume_channel = consume.create_channel().await?;
        consume_channel
            .basic_qos(prefetch, BasicQosOptions { global: false })
            .await?;
        let consumer_tag = format!("ctct-sync-{}", uuid::Uuid::new_v4());
        let consumer = consume_channel
            .basic_consume(
                topology.commands_queue.as_str().into(),
                consumer_tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((
            Session {
                consume,
                publish,
                channel,
                consume_channel,
                consumer_tag,
                broken: CancellationToken::new(),
            },
            consumer,
        ))
    }

    /// Another channel on the consuming connection, for a consumer of its own.
    pub async fn consume_channel(&self) -> Result<Channel, lapin::Error> {
        self.consume.create_channel().await
    }

    /// Stops deliveries (in-flight ones stay ours to finish).
    pub async fn stop_consuming(&self) {
        let _ = self
            .consume_channel
            .basic_cancel(
                self.consumer_tag.as_str().into(),
                BasicCancelOptions::default(),
            )
            .await;
    }

    /// Starts consuming `queue` again after [`Session::stop_consuming`] (the store was
    /// failing and works again).
    pub async fn resume_consuming(&self, queue: &str) -> Result<Consumer, lapin::Error> {
        self.consume_channel
            .basic_consume(
                queue.into(),
                self.consumer_tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
    }

    /// Closes both connections; unacked deliveries go back to the queue.
    ///
    /// Each close waits at most [`CLOSE_TIMEOUT`] for the broker's answer: when the socket
    /// dies while the close is being sent, lapin never settles it, and the supervisor must
    /// not wait for a broker that is gone (regression: tests/it/ops.rs
    /// `readiness_fails_when_the_broker_goes_away_and_returns_with_it_losing_no_command`).
    pub async fn close(&self) {
        tokio::join!(close(&self.consume), close(&self.publish));
    }
}

async fn close(connection: &Connection) {
    let closing = connection.close(200, "ctct-sync closing".into());
    if tokio::time::timeout(CLOSE_TIMEOUT, closing).await.is_err() {
        tracing::debug!(
            timeout_ms = CLOSE_TIMEOUT.as_millis() as u64,
            "the broker did not answer a connection close; dropping it"
        );
    }
}

/// How long closing a connection may wait for the broker's `close-ok`.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
