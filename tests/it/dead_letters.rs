//! Dead letters the broker makes (the quorum queue's delivery limit) get a result too, once
//! per command, and stay in the dead-letter queue for `ctct-sync dlq`.

use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicRejectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::json;

use crate::support::api::TestApi;
use crate::support::daemon::{TestDaemon, consume_no_ack, exclusive_queue, json_properties};
use crate::support::engine::Engine;
use crate::support::eventually::eventually;

/// The delivery limit of these tests' commands queues.
const LIMIT: &str = "2";

async fn start(engine: Engine) -> TestDaemon {
    TestDaemon::start_with(
        TestApi::start_on(engine).await,
        &[("CTCT_SYNC__AMQP__DELIVERY_LIMIT", LIMIT)],
    )
    .await
}

/// Takes every command in the commands queue and gives it back (`basic.reject` with
/// requeue, which counts as a delivery on RabbitMQ 3.10) until the broker has dead-lettered
/// them all: `expected` more messages in the dead-letter queue than `before`.
async fn burn_deliveries(d: &TestDaemon, before: u32, expected: u32) {
    let dead = d.pipeline_settings.topology.dead_letter_queue.clone();
    let channel = d.conn.create_channel().await.unwrap();
    let mut consumer = channel
        .basic_consume(
            d.queue().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("the commands queue has no other consumer");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout(Duration::from_millis(100), consumer.next()).await {
            Ok(Some(Ok(delivery))) => {
                delivery
                    .acker
                    .reject(BasicRejectOptions { requeue: true })
                    .await
                    .expect("reject");
            }
            Ok(other) => panic!("the consumer ended: {other:?}"),
            Err(_) => {
                if d.depth(&dead).await >= before + expected {
                    break;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker dead-lettered the commands within 30 s"
        );
    }
    let _ = channel.close(200, "done".into()).await;
}

/// A passive declaration: the queue's ready count, failing when the queue does not exist.
/// Results received for command `poison-1`.
fn poison_results(d: &TestDaemon) -> usize {
    d.received
        .iter()
        .filter(|r| r.command_id == "poison-1")
        .count()
}

async fn watch_depth(d: &TestDaemon) -> u32 {
    let channel = d.conn.create_channel().await.unwrap();
    let depth = channel
        .queue_declare(
            d.pipeline_settings
                .topology
                .dead_letter_watch_queue
                .as_str()
                .into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the dead-letter watch queue exists")
        .message_count();
    let _ = channel.close(200, "done".into()).await;
    depth
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_command_dead_lettered_by_the_delivery_limit_gets_one_failed_result_and_stays_listed
);
async fn a_command_dead_lettered_by_the_delivery_limit_gets_one_failed_result_and_stays_listed(
    engine: Engine,
) {
    let mut d = start(engine).await;
    assert!(d.stop_pipeline(Duration::from_secs(15)).await);

    // One command with a reply queue and a correlation id, one that is not JSON at all.
    let replies = exclusive_queue(&d.channel).await;
    let mut reply_consumer = consume_no_ack(&d.channel, &replies).await;
    let body = json!({"id": "poison-1", "type": "list.list", "data": {}});
    d.publish_body(
        &serde_json::to_vec(&body).unwrap(),
        json_properties()
            .with_reply_to(replies.as_str().into())
            .with_correlation_id("corr-poison-1".into()),
    )
    .await;
    d.publish_body(
        b"\x00not json",
        json_properties().with_message_id("poison-raw".into()),
    )
    .await;
    burn_deliveries(&d, 0, 2).await;

    d.start_pipeline().await;
    let result = d.result("poison-1").await;
    assert_eq!(result.outcome, Outcome::Failed, "{result:?}");
    assert!(!result.replayed);
    assert_eq!(result.command_type, "list.list");
    let error = result.error.clone().expect("an error");
    assert_eq!(error.code, "delivery_limit");
    assert!(!error.retryable);
    assert!(
        error.message.contains("after 3 deliveries"),
        "the message names the delivery count: {}",
        error.message
    );
    let reply = tokio::time::timeout(Duration::from_secs(30), reply_consumer.next())
        .await
        .expect("a reply within 30 s")
        .unwrap()
        .unwrap();
    assert_eq!(
        reply
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.as_str()),
        Some("corr-poison-1")
    );
    assert_eq!(reply.routing_key.as_str(), replies);

    let raw = d.result("poison-raw").await;
    assert_eq!(raw.outcome, Outcome::Failed);
    assert_eq!(raw.error.as_ref().unwrap().code, "delivery_limit");
    assert_eq!(raw.routing_key(), "unknown.failed");

    // Exactly one result each; the dead letters stay for `dlq list`, the watch queue empties.
    d.drain(Duration::from_secs(2)).await;
    for id in ["poison-1", "poison-raw"] {
        assert_eq!(
            d.received.iter().filter(|r| r.command_id == id).count(),
            1,
            "one result for {id}: {:?}",
            d.received
        );
    }
    assert_eq!(watch_depth(&d).await, 0);
    let dead_queue = d.pipeline_settings.topology.dead_letter_queue.clone();
    assert_eq!(d.depth(&dead_queue).await, 2);
    let out = d
        .command(&["dlq", "list"])
        .output()
        .await
        .expect("dlq list runs");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}");
    let line = listing
        .lines()
        .find(|l| l.contains("poison-1"))
        .unwrap_or_else(|| panic!("poison-1 is listed: {listing}"));
    assert!(line.contains("delivery_limit"), "{line}");
    let (_, metrics) = d.ops("/metrics").await;
    assert!(
        metrics.contains("ctct_broker_dead_letters_total{reason=\"delivery_limit\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("ctct_dead_lettered_total 2"), "{metrics}");

    // The same command again, dead-lettered again: its result once more, as a replay.
    assert!(d.stop_pipeline(Duration::from_secs(15)).await);
    d.publish_body(&serde_json::to_vec(&body).unwrap(), json_properties())
        .await;
    burn_deliveries(&d, 2, 1).await;
    d.start_pipeline().await;
    assert!(
        d.receive_until(Duration::from_secs(30), |d| poison_results(d) >= 2)
            .await,
        "a second result"
    );
    d.drain(Duration::from_secs(2)).await;
    let copies: Vec<_> = d
        .received
        .iter()
        .filter(|r| r.command_id == "poison-1")
        .collect();
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(copies[1].replayed);
    assert_eq!(copies[1].error, result.error);
    assert_eq!(copies[1].finished_at, result.finished_at);
    assert_eq!(d.depth(&dead_queue).await, 3);

    // The dead letter's result is stored with its command's fingerprint: a different command
    // under the same id is refused as `id_reused`, not answered with that result.
    d.publish("poison-1", "custom_field.list", json!({})).await;
    assert!(
        d.receive_until(Duration::from_secs(30), |d| poison_results(d) >= 3)
            .await,
        "a third result"
    );
    let other = d
        .received
        .iter()
        .filter(|r| r.command_id == "poison-1")
        .nth(2)
        .expect("the third result")
        .clone();
    assert_eq!(other.outcome, Outcome::Rejected, "{other:?}");
    assert!(!other.replayed, "{other:?}");
    assert_eq!(other.command_type, "custom_field.list");
    assert_eq!(other.error.as_ref().unwrap().code, "id_reused");
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_command_the_daemon_rejected_gets_no_second_result_from_the_dead_letter_watch
);
async fn a_command_the_daemon_rejected_gets_no_second_result_from_the_dead_letter_watch(
    engine: Engine,
) {
    let mut d = start(engine).await;
    d.publish("bad-email", "contact.upsert", json!({"email": "nope"}))
        .await;
    let result = d.result("bad-email").await;
    assert_eq!(result.outcome, Outcome::Rejected);
    // The watch took its copy of the dead letter and said nothing more.
    eventually(Duration::from_secs(30), "the watch drains", async || {
        watch_depth(&d).await == 0
    })
    .await;
    d.drain(Duration::from_secs(2)).await;
    assert_eq!(
        d.received
            .iter()
            .filter(|r| r.command_id == "bad-email")
            .count(),
        1,
        "{:?}",
        d.received
    );
    let dead_queue = d.pipeline_settings.topology.dead_letter_queue.clone();
    assert_eq!(d.depth(&dead_queue).await, 1);
    let (_, metrics) = d.ops("/metrics").await;
    assert!(metrics.contains("ctct_dead_lettered_total 1"), "{metrics}");
    assert!(
        !metrics.contains("ctct_broker_dead_letters_total{"),
        "{metrics}"
    );
    d.stop().await;
}
