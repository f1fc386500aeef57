//! The command pipeline end to end: the local RabbitMQ, the sandbox, a fresh store.

use std::time::Duration;

use ctct_sandbox::FaultSpec;
use ctct_sync::command::outcome::{CommandResult, Outcome};
use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicConsumeOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::json;

use crate::support::api::TestApi;
use crate::support::daemon::{TestDaemon, close_daemon_connections, json_properties};
use crate::support::engine::Engine;
use crate::support::eventually::eventually;

const SECS_30: Duration = Duration::from_secs(30);

/// The claim of a process that died long ago (its lease lapsed at once).
const DEAD: ctct_sync::store::ledger::Claim<'static> = ctct_sync::store::ledger::Claim {
    owner: "a-process-that-died",
    lease: std::time::Duration::ZERO,
};

async fn owner(d: &TestDaemon) -> String {
    d.api
        .api()
        .list_account_emails(&ctct_sync::api::model::account::AccountEmailFilter::Confirmed)
        .await
        .unwrap()[0]
        .email_address
        .clone()
}

/// Creates a list through the pipeline (command `id`) and returns its id.
async fn new_list(d: &mut TestDaemon, id: &str, name: &str) -> String {
    d.publish(id, "list.create", json!({ "name": name })).await;
    d.result(id).await.data.unwrap()["list_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits (at most 30 s) for the second result of command `id`.
async fn second_result(d: &mut TestDaemon, id: &str) -> CommandResult {
    let second = |d: &TestDaemon| {
        d.received
            .iter()
            .filter(|r| r.command_id == id)
            .nth(1)
            .cloned()
    };
    assert!(
        d.receive_until(SECS_30, |d| second(d).is_some()).await,
        "no second result"
    );
    second(d).expect("the second result")
}

fn creates_for(d: &TestDaemon, id: &str) -> usize {
    d.api
        .sandbox
        .admin()
        .effects_for_command(id)
        .iter()
        .filter(|e| e.kind.ends_with(".created"))
        .count()
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    every_command_type_gets_exactly_one_result_through_the_queue
);
async fn every_command_type_gets_exactly_one_result_through_the_queue(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    let from = owner(&d).await;
    let list = new_list(&mut d, "list", "Tour list").await;
    d.publish("campaign", "campaign.create", json!({"name": "Tour", "subject": "s", "from_name": "n",
        "from_email": from, "reply_to_email": from, "html_content": "<html><body>x</body></html>", "list_ids": [list]}))
        .await;
    let campaign = d.result("campaign").await.data.unwrap()["campaign_id"]
        .as_str()
        .unwrap()
        .to_owned();
    d.publish(
        "field",
        "custom_field.create",
        json!({"label": "Tour field", "type": "string"}),
    )
    .await;
    let field = d.result("field").await.data.unwrap()["custom_field_id"]
        .as_str()
        .unwrap()
        .to_owned();
    d.publish(
        "create",
        "contact.create",
        json!({"email": "tour@example.com"}),
    )
    .await;
    let contact = d.result("create").await.data.unwrap()["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    // The upsert names the field by its id: by its label it would race "f-update" below,
    // which renames the field from another lane (and made the upsert a rejection once).
    let mut upsert_values = serde_json::Map::new();
    upsert_values.insert(field.clone(), json!("x"));

    let commands = vec![
        (
            "c-update",
            "contact.update",
            json!({"contact_id": contact, "first_name": "T"}),
        ),
        (
            "c-upsert",
            "contact.upsert",
            json!({"email": "tour@example.com", "custom_fields": upsert_values}),
        ),
        (
            "c-sign",
            "contact.sign_up",
            json!({"email": "tour2@example.com", "list_ids": [list]}),
        ),
        ("c-get", "contact.get", json!({"contact_id": contact})),
        (
            "f-update",
            "custom_field.update",
            json!({"custom_field_id": field, "label": "Tour field 2"}),
        ),
        ("f-list", "custom_field.list", json!({})),
        ("l-list", "list.list", json!({})),
        (
            "k-update",
            "campaign.update",
            json!({"campaign_id": campaign, "subject": "t"}),
        ),
        ("k-get", "campaign.get", json!({"campaign_id": campaign})),
        ("k-list", "campaign.list", json!({})),
        (
            "k-test",
            "campaign.send_test",
            json!({"campaign_id": campaign, "email_addresses": ["qa@example.com"]}),
        ),
        (
            "k-schedule",
            "campaign.schedule",
            json!({"campaign_id": campaign, "scheduled_at": later}),
        ),
        (
            "k-unschedule",
            "campaign.unschedule",
            json!({"campaign_id": campaign}),
        ),
        ("a-emails", "account.emails.list", json!({})),
        (
            "a-add",
            "account.email.add",
            json!({"email_address": "tour-ops@example.com"}),
        ),
        ("a-priv", "account.privileges.get", json!({})),
        ("c-delete", "contact.delete", json!({"contact_id": contact})),
        (
            "f-delete",
            "custom_field.delete",
            json!({"custom_field_id": field}),
        ),
    ];
    let mut ids = Vec::new();
    for (id, command_type, data) in &commands {
        d.publish(id, command_type, data.clone()).await;
        ids.push(id.to_string());
    }
    let results = d.results(&ids, SECS_30).await;
    d.drain(Duration::from_millis(300)).await;
    for (id, command_type, _) in &commands {
        let all: Vec<_> = d.received.iter().filter(|r| r.command_id == *id).collect();
        assert_eq!(all.len(), 1, "{id}: exactly one result");
        assert_eq!(
            all[0].outcome,
            Outcome::Succeeded,
            "{id}: {:?}",
            all[0].error
        );
        assert_eq!(all[0].command_type, *command_type);
        assert_eq!(all[0].account, "default");
    }
    assert_eq!(results.len(), ids.len() + 4);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_naming_the_field_and_dead_lettered_with_its_reason() {
    let mut d = TestDaemon::start().await;
    let with_id = |id: &str| json_properties().with_message_id(id.into());
    let cases: Vec<(&str, Vec<u8>, BasicProperties, &str)> = vec![
        ("b-json", b"{\"id\":\"b-json\", nope".to_vec(), with_id("b-json"), "invalid_json"),
        ("b-utf8", b"{\"type\":\"contact.get\",\"data\":{\"email\":\"\xff\"}}".to_vec(), with_id("b-utf8"), "invalid_utf8"),
        ("b-type", br#"{"id":"b-type","type":"contact.merge"}"#.to_vec(), json_properties(), "unknown_type"),
        ("b-ct", br#"{"id":"b-ct","type":"list.list"}"#.to_vec(),
         BasicProperties::default().with_content_type("text/plain".into()).with_message_id("b-ct".into()), "unsupported_content_type"),
        ("b-email", br#"{"id":"b-email","type":"contact.upsert","data":{"email":"not-an-email"}}"#.to_vec(), json_properties(), "invalid_data"),
        ("b-past", br#"{"id":"b-past","type":"campaign.schedule","data":{"campaign_id":"987cb9ab-ad0c-4087-bd46-2e2ad241221f","scheduled_at":"2001-01-01T00:00:00Z"}}"#.to_vec(), json_properties(), "invalid_data"),
        ("b-field", br#"{"id":"b-field","type":"contact.upsert","data":{"email":"a@example.com","custom_fields":{"nope":"x"}}}"#.to_vec(), json_properties(), "invalid_data"),
        ("b-report", br#"{"id":"b-report","type":"report.campaign.get","data":{"campaign_id":"987cb9ab/../stats"}}"#.to_vec(), json_properties(), "invalid_data"),
    ];
    for (_, body, properties, _) in &cases {
        d.publish_body(body, properties.clone()).await;
    }
    // A missing id is still answered (with an empty command id) and dead-lettered.
    d.publish_body(br#"{"type":"list.list"}"#, json_properties())
        .await;
    d.publish("after", "list.list", json!({})).await;
    let ids: Vec<String> = cases
        .iter()
        .map(|c| c.0.to_string())
        .chain(["after".to_string(), String::new()])
        .collect();
    d.results(&ids, SECS_30).await;
    for (id, _, _, code) in &cases {
        let result = d.result(id).await;
        assert_eq!(result.outcome, Outcome::Rejected, "{id}");
        let error = result.error.expect("a rejection explains itself");
        assert_eq!(error.code, *code, "{id}: {}", error.message);
        assert!(!error.retryable);
        if *code == "invalid_data" {
            assert!(!error.fields.is_empty(), "{id} names its fields");
        }
    }
    assert_eq!(
        d.result("after").await.outcome,
        Outcome::Succeeded,
        "the daemon still serves"
    );
    assert_eq!(d.result("").await.error.unwrap().fields[0].field, "id");
    let report = d.result("b-report").await.error.unwrap();
    assert_eq!(report.fields.len(), 1, "{report:?}");
    assert_eq!(report.fields[0].field, "data.campaign_id");

    let dead_queue = d.pipeline_settings.topology.dead_letter_queue.clone();
    let expected = cases.len() as u32 + 1;
    eventually(
        SECS_30,
        "every bad message in the dead-letter queue",
        async || d.depth(&dead_queue).await >= expected,
    )
    .await;
    d.drain(Duration::from_millis(300)).await;
    assert_eq!(
        d.depth(&dead_queue).await,
        expected,
        "every bad message is dead-lettered once"
    );
    let dead = d
        .channel
        .basic_get(dead_queue.as_str().into(), BasicGetOptions::default())
        .await
        .unwrap()
        .unwrap();
    let headers = dead.properties.headers().clone().unwrap();
    assert!(headers.inner().contains_key("x-ctct-reason-code"));
    assert!(
        matches!(headers.inner().get("x-ctct-reason"), Some(AMQPValue::LongString(r)) if !r.to_string().is_empty())
    );
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_command_sent_twice_replays_its_result_without_calling_the_api
);
async fn a_command_sent_twice_replays_its_result_without_calling_the_api(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    d.publish(
        "once",
        "contact.create",
        json!({"email": "once@example.com"}),
    )
    .await;
    let first = d.result("once").await;
    assert!(!first.replayed);
    let requests = d.api.sandbox.admin().request_log().len();
    d.publish(
        "once",
        "contact.create",
        json!({"email": "once@example.com"}),
    )
    .await;
    d.drain(Duration::from_millis(200)).await;
    assert!(
        d.receive_until(SECS_30, |d| {
            d.received.iter().filter(|r| r.command_id == "once").count() >= 2
        })
        .await,
        "no replay"
    );
    let replay = d
        .received
        .iter()
        .filter(|r| r.command_id == "once")
        .nth(1)
        .unwrap()
        .clone();
    assert!(replay.replayed);
    assert_eq!((replay.outcome, &replay.data), (first.outcome, &first.data));
    assert_eq!(
        d.api.sandbox.admin().request_log().len(),
        requests,
        "no API call for a replay"
    );
    assert_eq!(creates_for(&d, "once"), 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_with_reply_to_gets_its_result_there_with_its_correlation_id() {
    let mut d = TestDaemon::start().await;
    let reply_queue = d
        .channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .name()
        .to_string();
    let mut replies = d
        .channel
        .basic_consume(
            reply_queue.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let properties = json_properties()
        .with_reply_to(reply_queue.as_str().into())
        .with_correlation_id("corr-42".into());
    d.publish_body(
        br#"{"id":"rpc","type":"account.privileges.get"}"#,
        properties,
    )
    .await;
    let reply = tokio::time::timeout(SECS_30, replies.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        reply
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.as_str()),
        Some("corr-42")
    );
    let result: ctct_sync::command::outcome::CommandResult =
        serde_json::from_slice(&reply.data).unwrap();
    assert_eq!(
        (result.command_id.as_str(), result.outcome),
        ("rpc", Outcome::Succeeded)
    );
    assert_eq!(
        d.result("rpc").await.outcome,
        Outcome::Succeeded,
        "also on the results exchange"
    );

    // A reply_to queue that does not exist does not lose the result or block the daemon.
    let gone = json_properties().with_reply_to("no-such-queue-anywhere".into());
    d.publish_body(br#"{"id":"rpc2","type":"list.list"}"#, gone)
        .await;
    assert_eq!(d.result("rpc2").await.outcome, Outcome::Succeeded);
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    losing_the_broker_connection_mid_stream_loses_nothing_and_applies_nothing_twice
);
async fn losing_the_broker_connection_mid_stream_loses_nothing_and_applies_nothing_twice(
    engine: Engine,
) {
    let mut d = TestDaemon::start_on(engine).await;
    let ids: Vec<String> = (0..40).map(|i| format!("cut-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        d.publish(
            id,
            "contact.create",
            json!({"email": format!("cut{i}@example.com")}),
        )
        .await;
    }
    // Cut once some results are out.
    assert!(
        d.receive_until(SECS_30, |d| d.received.len() >= 8).await,
        "only {} results within 30 s",
        d.received.len()
    );
    let cut = close_daemon_connections(d.queue()).await;
    assert!(cut >= 1, "the daemon's connections were found and closed");
    let results = d.results(&ids, Duration::from_secs(60)).await;
    for id in &ids {
        assert!(
            results[id].iter().all(|r| r.outcome == Outcome::Succeeded),
            "{id}: {:?}",
            results[id]
        );
        assert_eq!(creates_for(&d, id), 1, "{id} created exactly once");
        let fresh = results[id].iter().filter(|r| !r.replayed).count();
        assert_eq!(
            fresh, 1,
            "{id}: one final result; any other is a marked replay"
        );
    }
    assert!(
        d.processor()
            .stats
            .ack_lost
            .load(std::sync::atomic::Ordering::Relaxed)
            <= 16
    );
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_exhausted_daily_quota_parks_commands_until_the_reset
);
async fn an_exhausted_daily_quota_parks_commands_until_the_reset(engine: Engine) {
    let api =
        TestApi::start_with_on(engine, ctct_sandbox::SandboxOptions::for_tests(), 1000, 3).await;
    let midnight = (api.clock.as_ref() as &dyn ctct_sync::clock::Clock)
        .now()
        .date_naive()
        + chrono::Days::new(1);
    api.clock
        .set(midnight.and_hms_opt(0, 0, 0).unwrap().and_utc() - chrono::Duration::seconds(2));
    let mut d = TestDaemon::start_with(api, &[]).await;
    let api_requests = |d: &TestDaemon| {
        d.api
            .sandbox
            .admin()
            .request_log()
            .iter()
            .filter(|r| r.path.starts_with("/v3"))
            .count()
    };
    let ids: Vec<String> = (0..6).map(|i| format!("q-{i}")).collect();
    for id in &ids {
        // One request each; the day allows three.
        d.publish(id, "account.privileges.get", json!({})).await;
    }
    let parked = |d: &TestDaemon| {
        d.processor()
            .stats
            .parked
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert!(
        d.receive_until(SECS_30, |d| d.received.len() >= 3 && parked(d) >= 3)
            .await,
        "{} done, not 3 done and 3 parked",
        d.received.len()
    );
    // Parked commands come back at the reset (2 s away) and park again while it has not come.
    d.drain(Duration::from_millis(2500)).await;
    assert_eq!(d.received.len(), 3, "three fitted in the day; three wait");
    assert!(d.received.iter().all(|r| r.outcome == Outcome::Succeeded));
    assert_eq!(
        api_requests(&d),
        3,
        "nothing was sent while the quota was spent"
    );

    d.api.clock.advance(chrono::Duration::seconds(5));
    let results = d.results(&ids, SECS_30).await;
    for id in &ids {
        assert_eq!(results[id].len(), 1, "{id}");
        assert_eq!(
            results[id][0].outcome,
            Outcome::Succeeded,
            "{id}: parked, not failed"
        );
        assert_eq!(
            results[id][0].attempts, 1,
            "{id}: parking is not an attempt"
        );
    }
    assert_eq!(api_requests(&d), 6, "one request per command, none wasted");
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_account_needing_reauthorisation_parks_its_commands_announces_once_and_others_go_on
);
async fn an_account_needing_reauthorisation_parks_its_commands_announces_once_and_others_go_on(
    engine: Engine,
) {
    let api = TestApi::start_on(engine).await;
    let (_, second) = api.sandbox.admin().add_account();
    api.client
        .tokens()
        .import_refresh_token("second", secrecy::SecretString::from(second))
        .await
        .unwrap();
    let mut d = TestDaemon::start_with(api, &[]).await;
    let primary = d.api.sandbox.admin().primary_account();
    d.api.sandbox.admin().revoke_tokens(&primary).unwrap();
    d.api.advance_clocks(Duration::from_secs(25 * 3600));

    for i in 0..3 {
        d.publish(&format!("lost-{i}"), "list.list", json!({}))
            .await;
    }
    for i in 0..2 {
        d.publish_for("second", &format!("fine-{i}"), "list.list", json!({}))
            .await;
    }
    let fine = d
        .results(&["fine-0".into(), "fine-1".into()], SECS_30)
        .await;
    assert!(
        fine.values().all(|r| r[0].outcome == Outcome::Succeeded),
        "the other account carries on"
    );
    d.drain(Duration::from_millis(1500)).await;
    assert!(
        d.received
            .iter()
            .all(|r| !r.command_id.starts_with("lost-")),
        "parked, not failed"
    );
    let announcements: Vec<_> = d
        .events
        .iter()
        .filter(|(key, _)| key == "event.account.reauth_required")
        .collect();
    assert_eq!(announcements.len(), 1, "announced once: {:?}", d.events);
    let deprecated = d
        .events
        .iter()
        .filter(|(key, _)| key == "account.reauth_required")
        .map(|(_, body)| body)
        .collect::<Vec<_>>();
    assert_eq!(
        deprecated,
        vec![&announcements[0].1],
        "the same event under the deprecated key too"
    );
    assert_eq!(announcements[0].1["account"], "default");

    d.api.reauthorise().await;
    let ids: Vec<String> = (0..3).map(|i| format!("lost-{i}")).collect();
    let back = d.results(&ids, SECS_30).await;
    assert!(
        back.values()
            .all(|r| r.len() == 1 && r[0].outcome == Outcome::Succeeded)
    );
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    commands_about_one_contact_apply_in_publish_order_even_when_one_must_retry
);
async fn commands_about_one_contact_apply_in_publish_order_even_when_one_must_retry(
    engine: Engine,
) {
    let mut d = TestDaemon::start_with(
        TestApi::start_on(engine).await,
        &[("CTCT_SYNC__AMQP__WORKERS", "8")],
    )
    .await;
    d.publish(
        "seed",
        "contact.create",
        json!({"email": "order@example.com"}),
    )
    .await;
    d.result("seed").await;
    d.api
        .sandbox
        .admin()
        .inject_fault(
            FaultSpec::status(503)
                .method("PUT")
                .path_prefix("/v3/contacts")
                .times(3),
        )
        .unwrap();
    let mut ids = Vec::new();
    for step in 1..=15 {
        let id = format!("o-{step}");
        d.publish(
            &id,
            "contact.update",
            json!({"email": "order@example.com", "job_title": format!("v{step}")}),
        )
        .await;
        ids.push(id);
        let other = format!("x-{step}");
        d.publish(
            &other,
            "contact.upsert",
            json!({"email": format!("other{step}@example.com")}),
        )
        .await;
        ids.push(other);
    }
    let results = d.results(&ids, Duration::from_secs(60)).await;
    assert!(results.values().all(|r| r[0].outcome == Outcome::Succeeded));
    let updates: Vec<u64> = (1..=15)
        .flat_map(|step| {
            d.api
                .sandbox
                .admin()
                .effects_for_command(&format!("o-{step}"))
        })
        .filter(|e| e.kind == "contact.updated")
        .map(|e| e.seq)
        .collect();
    assert_eq!(updates.len(), 15, "each update applied once");
    assert!(
        updates.windows(2).all(|w| w[0] < w[1]),
        "applied in publish order: {updates:?}"
    );
    let got = d
        .api
        .api()
        .find_contact_by_email("order@example.com", &[], false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.job_title.as_deref(), Some("v15"));
    assert!(
        d.processor()
            .stats
            .retried
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1,
        "the fault did bite"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_commands_in_flight_and_leaves_the_rest_queued() {
    let mut d = TestDaemon::start().await;
    d.api
        .sandbox
        .admin()
        .inject_fault(
            FaultSpec::latency(1500)
                .method("POST")
                .path_prefix("/v3/contacts")
                .after_effect()
                .times(10),
        )
        .unwrap();
    let ids: Vec<String> = (0..6).map(|i| format!("sd-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        d.publish(
            id,
            "contact.create",
            json!({"email": format!("sd{i}@example.com")}),
        )
        .await;
    }
    eventually(SECS_30, "a create reaching the API", async || {
        ids.iter().any(|id| creates_for(&d, id) > 0)
    })
    .await;
    let started = tokio::time::Instant::now();
    assert!(
        d.stop_pipeline(Duration::from_secs(15)).await,
        "stopped within the grace period"
    );
    assert!(started.elapsed() < Duration::from_secs(12));
    d.drain(Duration::from_millis(300)).await;
    let done: Vec<String> = d.received.iter().map(|r| r.command_id.clone()).collect();
    for id in &done {
        assert_eq!(creates_for(&d, id), 1, "{id} finished and answered");
    }
    for id in ids.iter().filter(|id| !done.contains(id)) {
        assert!(creates_for(&d, id) <= 1, "{id}");
    }
    // The rest is still in the queue and is finished, once, by the next daemon.
    d.start_pipeline().await;
    let results = d.results(&ids, SECS_30).await;
    for id in &ids {
        assert_eq!(creates_for(&d, id), 1, "{id}");
        assert_eq!(
            results[id].iter().filter(|r| !r.replayed).count(),
            1,
            "{id}"
        );
    }
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_daemon_killed_between_the_api_call_and_the_ack_does_not_apply_the_command_twice
);
async fn a_daemon_killed_between_the_api_call_and_the_ack_does_not_apply_the_command_twice(
    engine: Engine,
) {
    let mut d = TestDaemon::start_on(engine).await;
    let daemon = spawn_with_first_answer_held(&mut d, "/v3/contacts").await;
    d.publish(
        "killed",
        "contact.create",
        json!({"email": "killed@example.com"}),
    )
    .await;
    kill_once_created(&d, daemon, "killed").await;
    restart_and_expect_one_create(&mut d, "killed").await;
    d.stop().await;
}

/// Stops the in-process pipeline and starts a daemon process instead, with the answer to
/// the first `POST` under `path` held back 3 s after it took effect.
async fn spawn_with_first_answer_held(d: &mut TestDaemon, path: &str) -> tokio::process::Child {
    assert!(
        d.stop_pipeline(Duration::from_secs(10)).await,
        "the in-process pipeline steps aside"
    );
    d.api
        .sandbox
        .admin()
        .inject_fault(
            FaultSpec::latency(3000)
                .method("POST")
                .path_prefix(path)
                .after_effect()
                .times(1),
        )
        .unwrap();
    d.spawn_process()
}

/// Kills a daemon process and returns what it wrote to stderr.
async fn killed_daemons_stderr(mut daemon: tokio::process::Child) -> String {
    daemon.start_kill().unwrap();
    let out = daemon.wait_with_output().await.unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Kills `daemon` as soon as command `id`'s create has reached the API (its answer is held
/// back by a latency fault), and checks no result went out.
async fn kill_once_created(d: &TestDaemon, mut daemon: tokio::process::Child, id: &str) {
    let deadline = tokio::time::Instant::now() + SECS_30;
    while creates_for(d, id) == 0 {
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "the create never reached the API; daemon said: {}",
                killed_daemons_stderr(daemon).await
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.start_kill().unwrap();
    let _ = daemon.wait().await;
    assert!(
        d.received.iter().all(|r| r.command_id != id),
        "killed before answering"
    );
}

/// Starts a daemon again and checks command `id` succeeds as a retry with one create.
async fn restart_and_expect_one_create(d: &mut TestDaemon, id: &str) {
    let mut restarted = d.spawn_process();
    let result = d.result(id).await;
    restarted.start_kill().unwrap();
    let _ = restarted.wait().await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{:?}", result.error);
    assert!(result.attempts >= 2, "the ledger knew an attempt had begun");
    assert_eq!(creates_for(d, id), 1, "one create");
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_command_back_from_a_wait_queue_and_killed_mid_create_is_not_created_twice
);
async fn a_command_back_from_a_wait_queue_and_killed_mid_create_is_not_created_twice(
    engine: Engine,
) {
    // Regression (short drill): a delivery that came back from a wait queue was not counted
    // as an attempt, so after a kill between the create and its recorded effect the next
    // delivery, still carrying the wait header, was taken for a first try and created again.
    let mut d = TestDaemon::start_on(engine).await;
    let from = owner(&d).await;
    let list = new_list(&mut d, "wq-list", "Wait list").await;
    let daemon = spawn_with_first_answer_held(&mut d, "/v3/emails").await;
    let body = json!({"id": "wq-camp", "type": "campaign.create", "data": {
        "name": "Came back", "subject": "s", "from_name": "n", "from_email": from,
        "reply_to_email": from, "html_content": "<html><body>x</body></html>",
        "list_ids": [list]}});
    let mut headers = FieldTable::default();
    headers.insert("x-ctct-wait".into(), AMQPValue::LongString("behind".into()));
    d.publish_body(
        &serde_json::to_vec(&body).unwrap(),
        json_properties().with_headers(headers),
    )
    .await;
    kill_once_created(&d, daemon, "wq-camp").await;
    restart_and_expect_one_create(&mut d, "wq-camp").await;
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_schedule_sent_again_after_its_time_has_passed_replays_its_result
);
async fn a_schedule_sent_again_after_its_time_has_passed_replays_its_result(engine: Engine) {
    // Regression: the schedule was re-checked ("in the past") before the ledger was asked.
    let mut d = TestDaemon::start_on(engine).await;
    let from = owner(&d).await;
    let list = new_list(&mut d, "list", "Replay list").await;
    d.publish("camp", "campaign.create", json!({"name": "Replay", "subject": "s", "from_name": "n",
        "from_email": from, "reply_to_email": from, "html_content": "<html><body>x</body></html>", "list_ids": [list]}))
        .await;
    let campaign = d.result("camp").await.data.unwrap()["campaign_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = (d.api.clock.as_ref() as &dyn ctct_sync::clock::Clock).now();
    let at = (now + chrono::Duration::hours(1)).to_rfc3339();
    d.publish(
        "sched",
        "campaign.schedule",
        json!({"campaign_id": campaign, "scheduled_at": at}),
    )
    .await;
    assert_eq!(d.result("sched").await.outcome, Outcome::Succeeded);

    d.api.clock.advance(chrono::Duration::hours(2));
    d.publish(
        "sched",
        "campaign.schedule",
        json!({"campaign_id": campaign, "scheduled_at": at}),
    )
    .await;
    let again = second_result(&mut d, "sched").await;
    assert_eq!((again.outcome, again.replayed), (Outcome::Succeeded, true));
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_command_whose_other_delivery_finished_first_is_answered_with_that_result
);
async fn a_command_whose_other_delivery_finished_first_is_answered_with_that_result(
    engine: Engine,
) {
    // Regression (the long drill): after a lost channel, a command came back and was handled
    // again while its first delivery was still being handled; both finished, and each sent a
    // fresh result of its own. The one that stores second must send the stored one, marked
    // replayed.
    let mut d = TestDaemon::start_on(engine).await;
    d.api
        .sandbox
        .admin()
        .inject_fault(
            FaultSpec::latency(2000)
                .method("POST")
                .path_prefix("/v3/contacts")
                .after_effect()
                .times(1),
        )
        .unwrap();
    d.publish(
        "raced",
        "contact.create",
        json!({"email": "raced@example.com"}),
    )
    .await;
    let admin = d.api.sandbox.admin();
    eventually(SECS_30, "the create reaching the API", async || {
        admin.faults().iter().all(|f| f.remaining == Some(0))
    })
    .await;
    // While this delivery's answer is held, the other delivery stores its result.
    let now = chrono::Utc::now();
    let other = ctct_sync::command::outcome::CommandResult {
        command_id: "raced".into(),
        command_type: "contact.create".into(),
        account: "default".into(),
        outcome: Outcome::Succeeded,
        data: Some(json!({"contact_id": "stored-by-the-other-delivery"})),
        error: None,
        attempts: 1,
        replayed: false,
        started_at: now,
        finished_at: now,
        warnings: Vec::new(),
    };
    let text = serde_json::to_string(&other).unwrap();
    let stored = d
        .api
        .store
        .ledger_finish_or_stored(
            ctct_sync::store::ledger::Finish {
                account: "default",
                command_id: "raced",
                command_type: "contact.create",
                outcome: "succeeded",
                result: &text,
                fingerprint: None,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(stored, None, "the other delivery stored its result first");
    let result = d.result("raced").await;
    assert!(result.replayed, "{result:?}");
    assert_eq!(result.data, other.data);
    d.drain(Duration::from_millis(300)).await;
    assert_eq!(
        d.received
            .iter()
            .filter(|r| r.command_id == "raced")
            .count(),
        1,
        "one result"
    );
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_daemon_started_while_its_only_account_needs_reauthorisation_waits_for_it
);
async fn a_daemon_started_while_its_only_account_needs_reauthorisation_waits_for_it(
    engine: Engine,
) {
    // Regression: the daemon exited ("no Constant Contact account is authorised"), so a
    // restart during a token loss became a crash loop instead of parking the commands.
    let mut d = TestDaemon::start_on(engine).await;
    assert!(
        d.stop_pipeline(Duration::from_secs(10)).await,
        "the in-process pipeline steps aside"
    );
    d.api
        .store
        .tokens_mark_reauth_required("default", "invalid_grant: revoked", chrono::Utc::now())
        .await
        .unwrap();
    let mut daemon = d.spawn_process();
    d.publish("waits", "list.list", json!({})).await;
    // It stays up and parks the command: no result while the account is lost.
    d.drain(Duration::from_millis(1500)).await;
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon is still running"
    );
    assert!(d.received.iter().all(|r| r.command_id != "waits"));
    d.api.reauthorise().await;
    let result = d.result("waits").await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{:?}", result.error);
    let stderr = killed_daemons_stderr(daemon).await;
    assert!(
        stderr.contains("every account needs re-authorisation"),
        "{stderr}"
    );
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_daemon_prunes_finished_commands_past_their_retention_and_replays_the_rest
);
async fn a_daemon_prunes_finished_commands_past_their_retention_and_replays_the_rest(
    engine: Engine,
) {
    use ctct_sync::store::ledger;
    let mut d = TestDaemon::start_on(engine).await;
    d.publish("pr-recent", "list.create", json!({"name": "Recent list"}))
        .await;
    assert_eq!(d.result("pr-recent").await.outcome, Outcome::Succeeded);
    assert!(
        d.stop_pipeline(Duration::from_secs(10)).await,
        "the in-process pipeline steps aside"
    );
    // Finished 31 days ago (past the default 30), and begun as long ago but never finished.
    let long_ago = chrono::Utc::now() - chrono::Duration::days(31);
    let store = &d.api.store;
    store
        .ledger_begin("default", "pr-old", "list.list", "seeded", DEAD, long_ago)
        .await
        .unwrap();
    let finish = ledger::Finish {
        account: "default",
        command_id: "pr-old",
        command_type: "list.list",
        outcome: "succeeded",
        result: "{}",
        fingerprint: None,
    };
    store
        .ledger_finish_or_stored(finish, long_ago)
        .await
        .unwrap();
    store
        .ledger_begin(
            "default",
            "pr-parked",
            "contact.upsert",
            "seeded",
            DEAD,
            long_ago,
        )
        .await
        .unwrap();
    let mut daemon = d.spawn_process();
    let deadline = tokio::time::Instant::now() + SECS_30;
    loop {
        let old = d
            .api
            .store
            .ledger_result_of("default", "pr-old")
            .await
            .unwrap();
        if old.is_none() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "the old command was not pruned; daemon said: {}",
                killed_daemons_stderr(daemon).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let parked = d
        .api
        .store
        .ledger_received_at("default", "pr-parked")
        .await
        .unwrap();
    assert!(
        parked.is_some(),
        "a command in progress is kept, however old"
    );
    // The recent one is still remembered: sent again, it is replayed, not applied again.
    d.publish("pr-recent", "list.create", json!({"name": "Recent list"}))
        .await;
    let again = second_result(&mut d, "pr-recent").await;
    daemon.start_kill().unwrap();
    let _ = daemon.wait().await;
    assert_eq!((again.outcome, again.replayed), (Outcome::Succeeded, true));
    d.stop().await;
}
