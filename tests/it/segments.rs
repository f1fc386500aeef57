//! `segment.list` and `segment.get` through RabbitMQ against the sandbox: every page read,
//! one segment with its criteria (a deleted one too), bad ids rejected naming
//! `data.segment_id`, an unknown id `not_found`, and a re-sent command replayed without
//! calling the API again.

use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use serde_json::{Value, json};

use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;

const SECS_30: Duration = Duration::from_secs(30);

const CRITERIA: &str = r#"{"version":"1.0.0","criteria":{"type":"and","group":[{"source":"tracking","field":"not_opened","op":"contains-any","const_value":"last-n-campaigns","param":"5"}]}}"#;

/// Adds `n` segments (as Constant Contact's UI would); returns their ids.
fn add_segments(d: &TestDaemon, n: usize) -> Vec<u32> {
    let admin = d.api.sandbox.admin();
    let account = admin.primary_account();
    (0..n)
        .map(|i| {
            admin
                .add_segment(&account, &format!("Segment {i:04}"), CRITERIA)
                .expect("a segment")
        })
        .collect()
}

/// How many requests the sandbox has had for `/v3/segments…`.
fn segment_requests(d: &TestDaemon) -> usize {
    d.requests_under("/v3/segments")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_list_reads_every_page_and_leaves_deleted_segments_out() {
    let mut d = TestDaemon::start().await;
    // The API's pages hold 1,000: 1,001 live segments take two.
    let ids = add_segments(&d, 1_002);
    let deleted = ids[500];
    let admin = d.api.sandbox.admin();
    admin
        .delete_segment(&admin.primary_account(), deleted)
        .expect("deleted");

    d.publish("s-list", "segment.list", json!({})).await;
    let result = d.result("s-list").await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{:?}", result.error);
    let data = result.data.expect("data");
    assert_eq!(data["count"], 1_001);
    let listed: Vec<u64> = data["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| s["segment_id"].as_u64().expect("an integer id"))
        .collect();
    assert_eq!(listed.len(), 1_001);
    assert!(
        !listed.contains(&u64::from(deleted)),
        "deleted is not listed"
    );
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 1_001, "every segment once");
    let first = &data["segments"][0];
    assert!(
        first["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Segment "))
    );
    assert!(first["created_at"].is_string() && first["edited_at"].is_string());
    assert!(first.get("segment_criteria").is_none(), "{first}");
    assert_eq!(segment_requests(&d), 2, "two pages, two requests");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_get_reads_one_segment_with_its_criteria_also_a_deleted_one() {
    let mut d = TestDaemon::start().await;
    let ids = add_segments(&d, 3);
    let admin = d.api.sandbox.admin();
    admin
        .delete_segment(&admin.primary_account(), ids[2])
        .expect("deleted");

    d.publish("s-get", "segment.get", json!({"segment_id": ids[1]}))
        .await;
    d.publish("s-gone", "segment.get", json!({"segment_id": ids[2]}))
        .await;
    let got = d.result("s-get").await;
    assert_eq!(got.outcome, Outcome::Succeeded, "{:?}", got.error);
    let data = got.data.expect("data");
    assert_eq!(data["segment_id"], ids[1]);
    assert_eq!(data["segment"]["segment_id"], ids[1]);
    assert_eq!(data["segment"]["name"], "Segment 0001");
    assert_eq!(data["segment"]["segment_criteria"], CRITERIA);
    let gone = d.result("s-gone").await;
    assert_eq!(gone.outcome, Outcome::Succeeded, "{:?}", gone.error);
    assert_eq!(gone.data.expect("data")["segment"]["name"], "Segment 0002");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_id_that_is_not_a_positive_integer_is_rejected_naming_segment_id() {
    let mut d = TestDaemon::start().await;
    let cases: Vec<(&str, Value)> = vec![
        ("b-string", json!({"segment_id": "14"})),
        (
            "b-uuid",
            json!({"segment_id": "987cb9ab-ad0c-4087-bd46-2e2ad241221f"}),
        ),
        ("b-zero", json!({"segment_id": 0})),
        ("b-fraction", json!({"segment_id": 1.5})),
        ("b-too-big", json!({"segment_id": 2_147_483_648_u64})),
        ("b-missing", json!({})),
    ];
    for (id, data) in &cases {
        d.publish(id, "segment.get", data.clone()).await;
    }
    d.publish("b-list-data", "segment.list", json!({"limit": 5}))
        .await;
    for (id, _) in &cases {
        let result = d.result(id).await;
        assert_eq!(result.outcome, Outcome::Rejected, "{id}");
        let error = result.error.expect("a rejection explains itself");
        assert_eq!(
            error.code.as_str(),
            "invalid_data",
            "{id}: {}",
            error.message
        );
        let fields: Vec<&str> = error.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["data.segment_id"], "{id}");
    }
    let uuid = d.result("b-uuid").await.error.expect("an error");
    assert!(uuid.fields[0].reason.contains("not UUIDs"), "{uuid:?}");
    let list = d.result("b-list-data").await.error.expect("an error");
    assert_eq!(list.fields[0].field, "data.limit", "{list:?}");
    assert_eq!(segment_requests(&d), 0, "nothing reached the API");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_segment_id_is_not_found() {
    let mut d = TestDaemon::start().await;
    add_segments(&d, 2);
    d.publish("s-unknown", "segment.get", json!({"segment_id": 999}))
        .await;
    let result = d.result("s-unknown").await;
    assert_eq!(result.outcome, Outcome::Failed);
    let error = result.error.expect("a failure explains itself");
    assert_eq!(error.code.as_str(), "not_found", "{}", error.message);
    assert_eq!(error.api_status, Some(404));
    assert!(!error.retryable);
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    segment_commands_sent_again_replay_their_results_without_calling_the_api
);
async fn segment_commands_sent_again_replay_their_results_without_calling_the_api(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    let ids = add_segments(&d, 2);
    let commands = [
        ("r-list", "segment.list", json!({})),
        ("r-get", "segment.get", json!({"segment_id": ids[0]})),
    ];
    for (id, command_type, data) in &commands {
        d.publish(id, command_type, data.clone()).await;
    }
    let mut first = Vec::new();
    for (id, _, _) in &commands {
        let result = d.result(id).await;
        assert_eq!(
            result.outcome,
            Outcome::Succeeded,
            "{id}: {:?}",
            result.error
        );
        assert!(!result.replayed);
        first.push(result);
    }
    let requests = segment_requests(&d);
    assert_eq!(requests, 2);
    // Changed since: a replay must not read it again.
    let admin = d.api.sandbox.admin();
    admin
        .delete_segment(&admin.primary_account(), ids[1])
        .expect("deleted");

    for (id, command_type, data) in &commands {
        d.publish(id, command_type, data.clone()).await;
    }
    let replayed = |d: &TestDaemon| {
        commands
            .iter()
            .all(|(id, _, _)| d.received.iter().filter(|r| r.command_id == *id).count() >= 2)
    };
    assert!(d.receive_until(SECS_30, replayed).await, "no replays");
    for ((id, _, _), first) in commands.iter().zip(&first) {
        let replay = d
            .received
            .iter()
            .filter(|r| r.command_id == *id)
            .nth(1)
            .expect("a second result")
            .clone();
        assert!(replay.replayed, "{id}");
        assert_eq!(
            (replay.outcome, &replay.data),
            (first.outcome, &first.data),
            "{id}"
        );
    }
    assert_eq!(segment_requests(&d), requests, "no API call for a replay");
    d.stop().await;
}
