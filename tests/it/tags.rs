//! `tag.create`, `tag.update` and `tag.delete` through RabbitMQ against the sandbox: a tag
//! made, a taken name answered with the existing tag, renamed (a taken name is `conflict`) and
//! deleted (the API's activity reported); bad data rejected naming the field before any API
//! call; unknown ids `not_found`; and every command re-sent replayed without an API call.

use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use serde_json::{Value, json};

use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;

const SECS_30: Duration = Duration::from_secs(30);
const UNKNOWN: &str = "0b3f5d1c-1d2e-4f3a-9b8c-7d6e5f4a3b2c";

/// How many requests the sandbox has had for `/v3/contact_tags…`.
fn tag_requests(d: &TestDaemon) -> usize {
    d.requests_under("/v3/contact_tags")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_is_created_renamed_and_deleted() {
    let mut d = TestDaemon::start().await;
    let created = d
        .succeeded(
            "t-create",
            "tag.create",
            json!({"name": "Gold", "tag_source": "ESTY"}),
        )
        .await;
    assert_eq!(created["already_existed"], false);
    assert_eq!(created["tag"]["name"], "Gold");
    assert_eq!(created["tag"]["tag_source"], "ESTY");
    let tag_id = created["tag_id"].as_str().expect("tag_id").to_owned();
    assert_eq!(created["tag"]["tag_id"], tag_id);

    // Another command with a taken name (ignoring case) answers with the existing tag.
    let again = d
        .succeeded("t-again", "tag.create", json!({"name": "gold"}))
        .await;
    assert_eq!(
        (&again["tag_id"], &again["already_existed"]),
        (&json!(tag_id), &json!(true))
    );

    let renamed = d
        .succeeded(
            "t-rename",
            "tag.update",
            json!({"tag_id": tag_id, "name": "Platinum"}),
        )
        .await;
    assert_eq!(renamed["tag_id"], tag_id);
    assert_eq!(renamed["tag"]["name"], "Platinum");

    let silver = d
        .succeeded("t-silver", "tag.create", json!({"name": "Silver"}))
        .await;
    d.publish(
        "t-taken",
        "tag.update",
        json!({"tag_id": silver["tag_id"], "name": "PLATINUM"}),
    )
    .await;
    let taken = d.result("t-taken").await;
    assert_eq!(taken.outcome, Outcome::Failed);
    let error = taken.error.expect("a failure explains itself");
    assert_eq!(error.code.as_str(), "conflict", "{}", error.message);
    assert_eq!(error.api_status, Some(409));

    let deleted = d
        .succeeded("t-delete", "tag.delete", json!({"tag_id": tag_id}))
        .await;
    assert_eq!(deleted["already_deleted"], false);
    assert_eq!(deleted["tag_id"], tag_id);
    assert_eq!(
        deleted["activity_id"].as_str().map(str::len),
        Some(36),
        "{deleted}"
    );
    assert_eq!(deleted["activity_state"], "initialized", "{deleted}");

    // The tag is gone: deleting it again with a new command is not found, and its name is free.
    d.publish("t-delete-2", "tag.delete", json!({"tag_id": tag_id}))
        .await;
    let second = d.result("t-delete-2").await;
    assert_eq!(second.outcome, Outcome::Failed);
    assert_eq!(second.error.expect("an error").code.as_str(), "not_found");
    let reused = d
        .succeeded("t-reuse", "tag.create", json!({"name": "Platinum"}))
        .await;
    assert_eq!(reused["already_existed"], false);
    assert_ne!(reused["tag_id"], tag_id);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tag_data_is_rejected_naming_the_field() {
    let mut d = TestDaemon::start().await;
    let long = "x".repeat(256);
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("b-no-name", "tag.create", json!({}), "data.name"),
        ("b-blank", "tag.create", json!({"name": "  "}), "data.name"),
        ("b-long", "tag.create", json!({"name": long}), "data.name"),
        (
            "b-id-on-create",
            "tag.create",
            json!({"name": "A", "tag_id": UNKNOWN}),
            "data.tag_id",
        ),
        (
            "b-rename-long",
            "tag.update",
            json!({"tag_id": UNKNOWN, "name": long}),
            "data.name",
        ),
        (
            "b-rename-id",
            "tag.update",
            json!({"tag_id": "14", "name": "A"}),
            "data.tag_id",
        ),
        (
            "b-rename-source",
            "tag.update",
            json!({"tag_id": UNKNOWN, "name": "A", "tag_source": "X"}),
            "data.tag_source",
        ),
        ("b-delete-none", "tag.delete", json!({}), "data.tag_id"),
        (
            "b-delete-id",
            "tag.delete",
            json!({"tag_id": "not-a-uuid"}),
            "data.tag_id",
        ),
    ];
    for (id, command_type, data, _) in &cases {
        d.publish(id, command_type, data.clone()).await;
    }
    for (id, _, _, field) in &cases {
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
        assert_eq!(fields, [*field], "{id}");
    }
    assert_eq!(tag_requests(&d), 0, "nothing reached the API");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_tag_id_is_not_found() {
    let mut d = TestDaemon::start().await;
    d.publish(
        "u-rename",
        "tag.update",
        json!({"tag_id": UNKNOWN, "name": "A"}),
    )
    .await;
    d.publish("u-delete", "tag.delete", json!({"tag_id": UNKNOWN}))
        .await;
    for id in ["u-rename", "u-delete"] {
        let result = d.result(id).await;
        assert_eq!(result.outcome, Outcome::Failed, "{id}");
        let error = result.error.expect("a failure explains itself");
        assert_eq!(error.code.as_str(), "not_found", "{id}: {}", error.message);
        assert_eq!(error.api_status, Some(404), "{id}");
        assert!(!error.retryable, "{id}");
    }
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    tag_commands_sent_again_replay_their_results_without_calling_the_api
);
async fn tag_commands_sent_again_replay_their_results_without_calling_the_api(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    let created = d
        .succeeded("r-create", "tag.create", json!({"name": "Gold"}))
        .await;
    let tag_id = created["tag_id"].as_str().expect("tag_id").to_owned();
    let commands = [
        ("r-create", "tag.create", json!({"name": "Gold"})),
        (
            "r-rename",
            "tag.update",
            json!({"tag_id": tag_id, "name": "Platinum"}),
        ),
        ("r-delete", "tag.delete", json!({"tag_id": tag_id})),
    ];
    for (id, command_type, data) in &commands[1..] {
        d.succeeded(id, command_type, data.clone()).await;
    }
    let first: Vec<_> = commands
        .iter()
        .map(|(id, _, _)| {
            d.received
                .iter()
                .find(|r| r.command_id == *id)
                .expect("a result")
                .clone()
        })
        .collect();
    assert!(first.iter().all(|r| !r.replayed));
    let requests = tag_requests(&d);
    assert_eq!(requests, 3, "one POST, one PUT, one DELETE");

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
    assert_eq!(tag_requests(&d), requests, "no API call for a replay");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_makes_one_tag() {
    let mut d = TestDaemon::start().await;
    let admin = d.api.sandbox.admin();
    admin
        .inject_fault(
            ctct_sandbox::FaultSpec::drop_connection()
                .method("POST")
                .path_prefix("/v3/contact_tags")
                .after_effect()
                .times(1),
        )
        .expect("a fault");
    let created = d
        .succeeded("l-create", "tag.create", json!({"name": "Lost"}))
        .await;
    assert_eq!(created["tag"]["name"], "Lost");
    // The first answer never came, so ctct-sync cannot tell the tag was its own.
    assert_eq!(created["already_existed"], true);
    let made: Vec<_> = admin
        .effects()
        .into_iter()
        .filter(|e| e.kind == "tag.created")
        .collect();
    assert_eq!(made.len(), 1, "one tag, whatever the attempts");
    assert_eq!(
        made[0].resource_id.as_ref(),
        created["tag_id"].as_str().map(str::to_owned).as_ref()
    );
    let posts = admin
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v3/contact_tags"))
        .count();
    assert_eq!(posts, 2, "the retry posted again and met the 409");
    d.stop().await;
}
