//! Where results and replies go: `reply_to` only to allowed queues (a refused one is a result
//! warning), and a result the broker returns as unroutable kept in the unrouted queue.

use std::time::Duration;

use ctct_sync::amqp::topology::{
    UNROUTED_EXCHANGE_HEADER, UNROUTED_KIND_HEADER, UNROUTED_ROUTING_KEY_HEADER,
};
use ctct_sync::command::outcome::{CommandResult, Outcome, WARNING_REPLY_TO_REFUSED};
use futures_util::StreamExt;
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Consumer};

use crate::support::daemon::{TestDaemon, consume_no_ack, json_properties};

const SECS_30: Duration = Duration::from_secs(30);

/// A unique queue name with `prefix`.
fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Declares a durable queue named `name` (as another application would) and returns it.
async fn declare(channel: &Channel, name: &str) {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the queue is declared");
}

/// The next message on `consumer` (at most 30 s), as a result.
async fn next_result(consumer: &mut Consumer, what: &str) -> CommandResult {
    let delivery = tokio::time::timeout(SECS_30, consumer.next())
        .await
        .unwrap_or_else(|_| panic!("no {what} within 30 s"))
        .expect("the consumer is open")
        .expect("a delivery");
    serde_json::from_slice(&delivery.data).expect("a result")
}

fn header(properties: &BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(value) => Some(value.to_string()),
        _ => None,
    }
}

/// A message taken from the unrouted queue: its headers and the result it holds.
struct Kept {
    properties: BasicProperties,
    result: CommandResult,
}

/// Takes `n` messages from the daemon's unrouted queue, polling until 30 s have passed.
async fn take_unrouted(d: &TestDaemon, n: usize) -> Vec<Kept> {
    let queue = d.pipeline_settings.topology.unrouted_queue.clone();
    let deadline = tokio::time::Instant::now() + SECS_30;
    let mut kept = Vec::new();
    while kept.len() < n {
        let got = d
            .channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("the unrouted queue exists");
        match got {
            Some(message) => kept.push(Kept {
                properties: message.delivery.properties.clone(),
                result: serde_json::from_slice(&message.delivery.data).expect("a result"),
            }),
            None => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "only {} of {n} results in {queue} within 30 s",
                    kept.len()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    kept
}

/// The value of one sample on `/metrics`, e.g. `ctct_results_unrouted_total{kind="reply"}`.
async fn metric(d: &TestDaemon, sample: &str) -> f64 {
    let (_, body) = d.ops("/metrics").await;
    body.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{sample} is not on /metrics:\n{body}"))
}

/// Stops the pipeline (every delivery in hand finished or back in the queue) and returns
/// how many commands wait in the commands queue: 0 means every one was acked.
async fn stop_and_count_unacked(d: &mut TestDaemon) -> u32 {
    assert!(d.stop_pipeline(SECS_30).await, "the pipeline stops");
    d.depth(d.queue()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_naming_another_application_s_queue_is_refused_with_a_warning() {
    let mut d = TestDaemon::start().await;
    let foreign = unique("t-billing.invoices.");
    declare(&d.channel, &foreign).await;
    let properties = json_properties()
        .with_reply_to(foreign.as_str().into())
        .with_correlation_id("corr-foreign".into());
    d.publish_body(
        br#"{"id":"foreign","type":"list.list"}"#,
        properties.clone(),
    )
    .await;
    let result = d.result("foreign").await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert_eq!(result.warnings.len(), 1, "{:?}", result.warnings);
    assert_eq!(result.warnings[0].code, WARNING_REPLY_TO_REFUSED);
    assert!(
        result.warnings[0].message.contains(&foreign),
        "the warning names the queue: {}",
        result.warnings[0].message
    );
    // The daemon's own queues are refused whatever the prefixes say.
    let own = d.settings.amqp.dead_letter_queue.clone();
    d.publish_body(
        br#"{"id":"own","type":"list.list"}"#,
        json_properties().with_reply_to(own.as_str().into()),
    )
    .await;
    assert_eq!(
        d.result("own").await.warnings[0].code,
        WARNING_REPLY_TO_REFUSED
    );
    // Sent again with the same id, the stored result (warning included) is replayed, and
    // still nothing goes to that queue.
    d.publish_body(br#"{"id":"foreign","type":"list.list"}"#, properties)
        .await;
    let second = |d: &TestDaemon| {
        d.received
            .iter()
            .filter(|r| r.command_id == "foreign")
            .nth(1)
            .cloned()
    };
    assert!(
        d.receive_until(SECS_30, |d| second(d).is_some()).await,
        "no replay within 30 s"
    );
    let replay = second(&d).expect("the replay");
    assert!(replay.replayed);
    assert_eq!(replay.warnings[0].code, WARNING_REPLY_TO_REFUSED);

    assert_eq!(
        stop_and_count_unacked(&mut d).await,
        0,
        "every command acked"
    );
    assert_eq!(d.depth(&foreign).await, 0, "nothing landed in {foreign}");
    assert_eq!(d.depth(&own).await, 0, "nothing landed in {own}");
    d.channel
        .queue_delete(foreign.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_reach_server_named_ctct_reply_and_direct_reply_to_queues() {
    let mut d = TestDaemon::start().await;

    // A server-named queue (amq.gen-…), what `ctct-sync send` uses.
    let server_named = crate::support::daemon::exclusive_queue(&d.channel).await;
    assert!(server_named.starts_with("amq.gen-"), "{server_named}");
    let mut replies = consume_no_ack(&d.channel, &server_named).await;
    d.publish_body(
        br#"{"id":"gen","type":"list.list"}"#,
        json_properties().with_reply_to(server_named.as_str().into()),
    )
    .await;
    let reply = next_result(&mut replies, "reply in the amq.gen- queue").await;
    assert_eq!(
        (reply.command_id.as_str(), reply.outcome),
        ("gen", Outcome::Succeeded)
    );
    assert!(reply.warnings.is_empty(), "{:?}", reply.warnings);

    // A queue named ctct.reply.….
    let named = unique("ctct.reply.t-");
    declare(&d.channel, &named).await;
    let mut named_replies = consume_no_ack(&d.channel, &named).await;
    d.publish_body(
        br#"{"id":"named","type":"list.list"}"#,
        json_properties().with_reply_to(named.as_str().into()),
    )
    .await;
    let reply = next_result(&mut named_replies, "reply in the ctct.reply. queue").await;
    assert_eq!(reply.command_id, "named");

    // Direct reply-to: the requester consumes the pseudo-queue and publishes on the same
    // channel; the daemon sees amq.rabbitmq.reply-to.<suffix>.
    let rpc = d.conn.create_channel().await.unwrap();
    let mut direct = consume_no_ack(&rpc, "amq.rabbitmq.reply-to").await;
    rpc.basic_publish(
        "".into(),
        d.queue().into(),
        Default::default(),
        br#"{"id":"direct","type":"list.list"}"#,
        json_properties()
            .with_reply_to("amq.rabbitmq.reply-to".into())
            .with_correlation_id("corr-direct".into()),
    )
    .await
    .unwrap();
    let delivery = tokio::time::timeout(SECS_30, direct.next())
        .await
        .expect("a direct reply within 30 s")
        .unwrap()
        .unwrap();
    let reply: CommandResult = serde_json::from_slice(&delivery.data).unwrap();
    assert_eq!(reply.command_id, "direct");
    assert!(reply.warnings.is_empty(), "{:?}", reply.warnings);

    for id in ["gen", "named", "direct"] {
        assert!(d.result(id).await.warnings.is_empty(), "{id}");
    }
    assert_eq!(
        stop_and_count_unacked(&mut d).await,
        0,
        "every command acked"
    );
    assert_eq!(
        d.depth(&d.pipeline_settings.topology.unrouted_queue.clone())
            .await,
        0,
        "every reply was delivered"
    );
    let _ = rpc.close(200, "done".into()).await;
    d.channel
        .queue_delete(named.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_no_queue_is_bound_for_lands_in_the_unrouted_queue_and_is_counted() {
    let mut d = TestDaemon::start().await;
    let exchange = d.pipeline_settings.topology.results_exchange.clone();
    // Only `contact.#` is listened to: list.list results have nowhere to go.
    for (key, bind) in [("contact.#", true), ("#", false)] {
        let queue = d.results_queue.as_str().into();
        if bind {
            d.channel
                .queue_bind(
                    queue,
                    exchange.as_str().into(),
                    key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        } else {
            d.channel
                .queue_unbind(
                    queue,
                    exchange.as_str().into(),
                    key.into(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        }
    }
    d.publish_body(
        br#"{"id":"nobody-listens","type":"list.list"}"#,
        json_properties().with_correlation_id("corr-unrouted".into()),
    )
    .await;
    let kept = take_unrouted(&d, 1).await;
    let kept = &kept[0];
    assert_eq!(kept.result.command_id, "nobody-listens");
    assert_eq!(kept.result.outcome, Outcome::Succeeded);
    assert_eq!(
        header(&kept.properties, UNROUTED_KIND_HEADER).as_deref(),
        Some("results")
    );
    assert_eq!(
        header(&kept.properties, UNROUTED_EXCHANGE_HEADER).as_deref(),
        Some(exchange.as_str())
    );
    assert_eq!(
        header(&kept.properties, UNROUTED_ROUTING_KEY_HEADER).as_deref(),
        Some("list.list.succeeded")
    );
    assert_eq!(
        kept.properties
            .correlation_id()
            .as_ref()
            .map(|c| c.as_str()),
        Some("corr-unrouted")
    );
    assert_eq!(
        kept.properties.message_id().as_ref().map(|c| c.as_str()),
        Some("nobody-listens")
    );
    assert_eq!(
        metric(&d, r#"ctct_results_unrouted_total{kind="results"}"#).await,
        1.0
    );
    assert_eq!(
        metric(&d, r#"ctct_results_unrouted_total{kind="reply"}"#).await,
        0.0
    );
    // The daemon goes on: a result someone listens to still arrives.
    d.publish(
        "listened",
        "contact.create",
        serde_json::json!({"email": "unrouted.listened@example.com"}),
    )
    .await;
    assert_eq!(d.result("listened").await.outcome, Outcome::Succeeded);
    assert_eq!(
        stop_and_count_unacked(&mut d).await,
        0,
        "every command acked"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_queue_that_is_gone_lands_in_the_unrouted_queue_and_is_counted() {
    let mut d = TestDaemon::start().await;
    let gone = unique("ctct.reply.t-gone-");
    declare(&d.channel, &gone).await;
    d.channel
        .queue_delete(gone.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    d.publish_body(
        br#"{"id":"reply-gone","type":"list.list"}"#,
        json_properties().with_reply_to(gone.as_str().into()),
    )
    .await;
    let result = d.result("reply-gone").await;
    assert_eq!(result.outcome, Outcome::Succeeded);
    assert!(result.warnings.is_empty(), "an allowed reply_to");
    let kept = take_unrouted(&d, 1).await;
    let kept = &kept[0];
    assert_eq!(kept.result.command_id, "reply-gone");
    assert_eq!(
        header(&kept.properties, UNROUTED_KIND_HEADER).as_deref(),
        Some("reply")
    );
    assert_eq!(
        header(&kept.properties, UNROUTED_EXCHANGE_HEADER).as_deref(),
        Some("")
    );
    assert_eq!(
        header(&kept.properties, UNROUTED_ROUTING_KEY_HEADER).as_deref(),
        Some(gone.as_str())
    );
    assert_eq!(
        metric(&d, r#"ctct_results_unrouted_total{kind="reply"}"#).await,
        1.0
    );
    assert_eq!(
        metric(&d, r#"ctct_results_unrouted_total{kind="results"}"#).await,
        0.0
    );
    assert_eq!(
        metric(&d, "ctct_amqp_reconnects_total").await,
        0.0,
        "a returned reply does not break the session"
    );
    assert_eq!(
        stop_and_count_unacked(&mut d).await,
        0,
        "the command was acked"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_a_commands_queue_that_does_not_exist_prints_no_command_body() {
    let dir = crate::support::temp_dir();
    let address = "send.returned@example.com";
    let data = serde_json::json!({"email": address}).to_string();
    let out = crate::support::ctct_sync_process(dir.path())
        .args(["send", "contact.upsert", "--data", &data, "--wait", "1"])
        .env("CTCT_SYNC__AMQP__URL", crate::support::daemon::amqp_url())
        .env(
            "CTCT_SYNC__AMQP__COMMANDS_QUEUE",
            unique("t-missing.commands."),
        )
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("send ends within 60 s")
        .expect("send runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    let bytes = address
        .bytes()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    // At the default level (info).
    for line in stderr.lines() {
        assert!(!line.contains(address), "the address shows: {line}");
        assert!(!line.contains(&bytes), "the body's bytes show: {line}");
        assert!(
            !line.contains("returned us a message"),
            "lapin's dump: {line}"
        );
    }
}
