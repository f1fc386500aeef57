//! What a result says, checked on the wire: millisecond timestamps, the type of a command
//! refused for its encoding, and an id sent again for a different command (docs/messages.md,
//! "Idempotency" and "Results").

use std::time::Duration;

use ctct_sync::command::outcome::{CommandResult, Outcome};
use ctct_sync::pipeline::process::REASON_CODE_HEADER;
use futures_util::StreamExt;
use lapin::Consumer;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, QueueBindOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Value, json};

use crate::support::daemon::{TestDaemon, exclusive_queue, json_properties};
use crate::support::engine::Engine;
use crate::support::eventually::eventually;

const WAIT: Duration = Duration::from_secs(30);

/// Results as published: routing key and the body as JSON, in arrival order.
struct Wire {
    consumer: Consumer,
    got: Vec<(String, Value)>,
}

impl Wire {
    async fn bind(d: &TestDaemon) -> Self {
        let queue = exclusive_queue(&d.channel).await;
        let exchange = d.pipeline_settings.topology.results_exchange.clone();
        d.channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let consumer = d
            .channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Wire {
            consumer,
            got: Vec::new(),
        }
    }

    /// Waits until `id` has `count` results; returns them (routing key, body).
    async fn results(&mut self, id: &str, count: usize) -> Vec<(String, Value)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mine: Vec<_> = self
                .got
                .iter()
                .filter(|(_, body)| body["command_id"] == id)
                .cloned()
                .collect();
            if mine.len() >= count {
                return mine;
            }
            let next = tokio::time::timeout_at(deadline, self.consumer.next()).await;
            let Ok(Some(Ok(delivery))) = next else {
                panic!("{id}: {} of {count} results within {WAIT:?}", mine.len());
            };
            delivery.ack(BasicAckOptions::default()).await.unwrap();
            let body: Value = serde_json::from_slice(&delivery.data).expect("results are JSON");
            self.got.push((delivery.routing_key.to_string(), body));
        }
    }

    async fn result(&mut self, id: &str) -> (String, Value) {
        self.results(id, 1).await.remove(0)
    }
}

/// `2026-12-03T10:00:00.123Z`: exactly three fractional digits, UTC as `Z`.
fn is_millis(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 24
        && text.ends_with('Z')
        && b[19] == b'.'
        && b[20..23].iter().all(u8::is_ascii_digit)
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

fn timestamps(body: &Value) -> [String; 2] {
    ["started_at", "finished_at"].map(|key| body[key].as_str().unwrap_or_default().to_owned())
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    result_timestamps_have_milliseconds_also_on_a_replay
);
async fn result_timestamps_have_milliseconds_also_on_a_replay(engine: Engine) {
    let d = TestDaemon::start_on(engine).await;
    let mut wire = Wire::bind(&d).await;
    d.publish("ms-1", "list.list", json!({})).await;
    let (_, first) = wire.result("ms-1").await;
    assert_eq!(first["outcome"], "succeeded", "{first}");
    for at in timestamps(&first) {
        assert!(is_millis(&at), "{at:?} in {first}");
    }
    d.publish("ms-1", "list.list", json!({})).await;
    let (_, replay) = wire.results("ms-1", 2).await.remove(1);
    assert_eq!(replay["replayed"], true);
    assert_eq!(timestamps(&replay), timestamps(&first));
    d.stop().await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_command_is_rejected_under_its_own_type_id_and_account() {
    let d = TestDaemon::start().await;
    let mut wire = Wire::bind(&d).await;
    let body = json!({"id": "zipped-1", "type": "contact.upsert", "data": {"email": "nope"}});
    d.publish_body(
        &gzip(body.to_string().as_bytes()),
        json_properties().with_content_encoding("gzip".into()),
    )
    .await;
    let (routing_key, result) = wire.result("zipped-1").await;
    assert_eq!(routing_key, "contact.upsert.rejected", "{result}");
    assert_eq!(result["type"], "contact.upsert");
    assert_eq!(result["account"], "default");
    assert_eq!(result["error"]["code"], "unsupported_content_encoding");
    assert_eq!(
        result["error"]["fields"][0]["field"],
        "properties.content_encoding"
    );
    d.stop().await;
}

async fn dead_letter_codes(d: &TestDaemon, expected: usize) -> Vec<String> {
    let queue = d.pipeline_settings.topology.dead_letter_queue.clone();
    eventually(WAIT, "dead letters", async || {
        d.depth(&queue).await as usize >= expected
    })
    .await;
    let mut codes = Vec::new();
    while let Some(message) = d
        .channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        match message
            .delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get(REASON_CODE_HEADER).cloned())
        {
            Some(AMQPValue::LongString(code)) => codes.push(code.to_string()),
            other => panic!("{REASON_CODE_HEADER}: {other:?}"),
        }
    }
    codes
}

async fn stored(d: &TestDaemon, id: &str) -> Option<String> {
    d.api.store.ledger_result_of("default", id).await.unwrap()
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_different_command_under_a_used_id_is_rejected_and_the_same_one_replays
);
async fn a_different_command_under_a_used_id_is_rejected_and_the_same_one_replays(engine: Engine) {
    let d = TestDaemon::start_on(engine).await;
    let mut wire = Wire::bind(&d).await;
    d.publish(
        "reused",
        "list.create",
        json!({"name": "Reuse A", "favorite": true}),
    )
    .await;
    let (_, first) = wire.result("reused").await;
    assert_eq!(first["outcome"], "succeeded", "{first}");
    let kept = stored(&d, "reused").await.expect("stored");

    // Another type, other data, and bad data under the same id: none gets the first result.
    d.publish("reused", "contact.get", json!({"email": "pat@example.com"}))
        .await;
    d.publish("reused", "list.create", json!({"name": "Reuse B"}))
        .await;
    d.publish("reused", "list.create", json!({"name": ""}))
        .await;
    let got = wire.results("reused", 4).await;
    let expected_types = ["contact.get", "list.create", "list.create"];
    for ((routing_key, result), command_type) in got[1..].iter().zip(expected_types) {
        assert_eq!(routing_key, &format!("{command_type}.rejected"), "{result}");
        assert_eq!(result["type"], command_type);
        assert_eq!(result["outcome"], "rejected");
        assert_eq!(result["replayed"], false);
        assert_eq!(result["data"], Value::Null);
        let error = &result["error"];
        assert_eq!(error["code"], "id_reused", "{result}");
        assert_eq!(error["retryable"], false);
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("\"reused\"")
                && message.contains("different command")
                && message.contains("new id"),
            "{message}"
        );
        assert_eq!(error["fields"][0]["field"], "id");
    }
    assert_eq!(
        stored(&d, "reused").await.as_deref(),
        Some(kept.as_str()),
        "the first command's result is untouched"
    );
    assert_eq!(
        dead_letter_codes(&d, 3).await,
        ["id_reused"; 3],
        "rejected like other bad input: dead-lettered"
    );

    // The same command again, keys in another order: its stored result, replayed.
    d.publish_body(
        br#"{ "data": {"favorite": true, "name": "Reuse A"}, "type": "list.create", "id": "reused" }"#,
        json_properties(),
    )
    .await;
    let (routing_key, replay) = wire.results("reused", 5).await.remove(4);
    assert_eq!(routing_key, "list.create.succeeded");
    assert_eq!(replay["replayed"], true, "{replay}");
    let (first, replay): (CommandResult, CommandResult) = (
        serde_json::from_value(first).unwrap(),
        serde_json::from_value(replay).unwrap(),
    );
    assert_eq!(replay.outcome, Outcome::Succeeded);
    assert_eq!(replay.data, first.data);
    assert_eq!(replay.finished_at, first.finished_at);
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_ledger_row_from_before_fingerprints_still_replays_to_its_id
);
async fn a_ledger_row_from_before_fingerprints_still_replays_to_its_id(engine: Engine) {
    let d = TestDaemon::start_on(engine).await;
    let mut wire = Wire::bind(&d).await;
    // A row as an upgraded store has it: finished before fingerprints were recorded.
    let old = json!({"command_id": "old-row", "type": "list.list", "account": "default",
        "outcome": "succeeded", "data": {"count": 0, "lists": []}, "error": null, "attempts": 1,
        "replayed": false, "started_at": "2026-11-01T00:00:00.123456789Z",
        "finished_at": "2026-11-01T00:00:01.5Z"})
    .to_string();
    // (On PostgreSQL such a row comes from `store copy` of an older SQLite store.) The row's
    // own times are recent: a row finished longer ago than the ledger's retention (30 days)
    // is pruned by the daemon's housekeeping, which may run after this insert.
    assert!(!old.contains('\''), "the result is a plain SQL literal");
    let recently = (chrono::Utc::now() - chrono::Duration::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let inserted = d
        .api
        .state_tables()
        .execute(&format!(
            "INSERT INTO command_ledger (account, command_id, type, status, attempts, outcome, result, received_at, finished_at)
             VALUES ('default', 'old-row', 'list.list', 'done', 1, 'succeeded', '{old}', '{recently}', '{recently}')"
        ))
        .await;
    assert_eq!(inserted, 1);
    d.publish("old-row", "list.list", json!({})).await;
    let (routing_key, replay) = wire.result("old-row").await;
    assert_eq!(routing_key, "list.list.succeeded");
    assert_eq!(replay["replayed"], true, "{replay}");
    assert_eq!(replay["data"]["count"], 0);
    assert_eq!(
        timestamps(&replay),
        [
            "2026-11-01T00:00:00.123Z".to_owned(),
            "2026-11-01T00:00:01.500Z".to_owned()
        ],
        "an older stored result is sent with millisecond timestamps"
    );
    d.stop().await;
}

#[test]
fn events_carry_millisecond_timestamps() {
    use ctct_sync::mirror::{Mode, Resource, RunOutcome, RunSummary, Trigger, events};
    let at: chrono::DateTime<chrono::Utc> = "2026-12-03T10:00:00.123456789Z".parse().unwrap();
    let reauth = ctct_sync::pipeline::process::reauth_event("emea", "refused", at);
    assert_eq!(reauth["at"], "2026-12-03T10:00:00.123Z");
    let summary = RunSummary {
        run_id: 1,
        account: "default".into(),
        resource: Resource::Lists,
        mode: Mode::Full,
        trigger: Trigger::Schedule,
        path: None,
        resumed_from: None,
        started_at: at,
        finished_at: at + chrono::Duration::milliseconds(1500),
        pages: 1,
        rows_upserted: 0,
        rows_deleted: 0,
        api_requests: 1,
        outcome: RunOutcome::Interrupted,
        error: None,
        resets_at: Some(at),
    };
    let body = events::event_body(&summary);
    assert_eq!(body["started_at"], "2026-12-03T10:00:00.123Z");
    assert_eq!(body["finished_at"], "2026-12-03T10:00:01.623Z");
    assert_eq!(body["resets_at"], "2026-12-03T10:00:00.123Z");
    for at in timestamps(&body) {
        assert!(is_millis(&at), "{at}");
    }
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_different_upsert_under_the_id_of_one_waiting_in_a_bulk_batch_is_rejected
);
async fn a_different_upsert_under_the_id_of_one_waiting_in_a_bulk_batch_is_rejected(
    engine: Engine,
) {
    let api = crate::support::api::TestApi::start_on(engine).await;
    let list_id = api
        .api()
        .create_list(&ctct_sync::api::model::ListInput::new("Reuse in a batch"))
        .await
        .unwrap()
        .list_id;
    // A long window: the first upsert is still waiting in its batch when the second comes.
    let d = TestDaemon::start_with(
        api,
        &[
            ("CTCT_SYNC__BULK__WINDOW_MS", "3000"),
            // Alone at an idle daemon, it would go one by one at once (issue 20).
            ("CTCT_SYNC__BULK__IDLE_ONE_BY_ONE", "false"),
            ("CTCT_SYNC__BULK__POLL_INITIAL_MS", "300"),
            ("CTCT_SYNC__BULK__POLL_MAX_MS", "1000"),
        ],
    )
    .await;
    let mut wire = Wire::bind(&d).await;
    d.publish(
        "batched",
        "contact.upsert",
        json!({"email": "first.batched@example.com", "list_ids": [list_id]}),
    )
    .await;
    eventually(WAIT, "the batched command begun", async || {
        d.api
            .store
            .ledger_entry("default", "batched")
            .await
            .unwrap()
            .is_some()
    })
    .await;
    d.publish(
        "batched",
        "contact.upsert",
        json!({"email": "second.batched@example.com", "list_ids": [list_id]}),
    )
    .await;
    let got = wire.results("batched", 2).await;
    let (routing_key, reused) = &got[0];
    assert_eq!(routing_key, "contact.upsert.rejected", "{reused}");
    assert_eq!(reused["error"]["code"], "id_reused", "{reused}");
    let (routing_key, first) = &got[1];
    assert_eq!(routing_key, "contact.upsert.succeeded", "{first}");
    assert_eq!(first["data"]["email"], "first.batched@example.com");
    assert_eq!(first["replayed"], false);
    let stats = &d.processor().stats;
    let batched = stats
        .bulk_commands
        .load(std::sync::atomic::Ordering::Relaxed)
        + stats
            .bulk_one_by_one
            .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(batched, 1, "the first waited in a batch");
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_different_command_under_the_id_of_one_waiting_to_retry_keeps_the_order_of_its_key
);
async fn a_different_command_under_the_id_of_one_waiting_to_retry_keeps_the_order_of_its_key(
    engine: Engine,
) {
    let mut d = TestDaemon::start_on(engine).await;
    let mut wire = Wire::bind(&d).await;
    let email = "held.order@example.com";
    d.publish("held-seed", "contact.create", json!({"email": email}))
        .await;
    assert_eq!(d.result("held-seed").await.outcome, Outcome::Succeeded);
    d.api
        .sandbox
        .admin()
        .inject_fault(
            ctct_sandbox::FaultSpec::status(503)
                .method("PUT")
                .path_prefix("/v3/contacts")
                .times(6),
        )
        .unwrap();
    d.publish(
        "held-a",
        "contact.update",
        json!({"email": email, "job_title": "A"}),
    )
    .await;
    eventually(WAIT, "the first command held for its retry", async || {
        d.processor().held.waiting() > 0
    })
    .await;
    // Six failures: two attempts of three requests each. While the first waits for its
    // retry: another command under its id, then a later one about the same contact. The
    // later one must still come after the first.
    d.publish(
        "held-a",
        "contact.update",
        json!({"email": email, "job_title": "B"}),
    )
    .await;
    d.publish(
        "held-c",
        "contact.update",
        json!({"email": email, "job_title": "C"}),
    )
    .await;
    let held_a = wire.results("held-a", 2).await;
    let (_, later) = wire.result("held-c").await;
    let codes: Vec<_> = held_a
        .iter()
        .map(|(_, r)| (r["outcome"].clone(), r["error"]["code"].clone()))
        .collect();
    assert!(
        codes.contains(&(json!("succeeded"), Value::Null))
            && codes.contains(&(json!("rejected"), json!("id_reused"))),
        "{held_a:?}"
    );
    assert_eq!(later["outcome"], "succeeded", "{later}");
    let admin = d.api.sandbox.admin();
    let updated = |id: &str| {
        admin
            .effects_for_command(id)
            .into_iter()
            .filter(|e| e.kind == "contact.updated")
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    };
    let (first, third) = (updated("held-a"), updated("held-c"));
    assert_eq!((first.len(), third.len()), (1, 1), "{first:?} {third:?}");
    assert!(first[0] < third[0], "applied in publish order");
    let contact = d
        .api
        .api()
        .find_contact_by_email(email, &[], false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.job_title.as_deref(), Some("C"));
    d.stop().await;
}
