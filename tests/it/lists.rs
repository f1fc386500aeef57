//! `list.update` and `list.delete` through RabbitMQ against the sandbox: a list changed field by
//! field (what is left out is kept; a name another list has is `conflict`) and deleted (the
//! API's activity reported); bad data rejected naming the field before any API call; unknown
//! ids `not_found`; and both commands re-sent replayed without an API call.

use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use serde_json::{Value, json};

use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;

const SECS_30: Duration = Duration::from_secs(30);
const UNKNOWN: &str = "0b3f5d1c-1d2e-4f3a-9b8c-7d6e5f4a3b2c";

/// How many requests the sandbox has had for `/v3/contact_lists…`.
fn list_requests(d: &TestDaemon) -> usize {
    d.requests_under("/v3/contact_lists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_is_updated_and_deleted() {
    let mut d = TestDaemon::start().await;
    let created = d
        .succeeded(
            "l-create",
            "list.create",
            json!({"name": "Buyers", "description": "Bought once", "favorite": true}),
        )
        .await;
    let list_id = created["list_id"].as_str().expect("list_id").to_owned();

    // Only favorite changes: the name and description are kept.
    let unfavored = d
        .succeeded(
            "l-favorite",
            "list.update",
            json!({"list_id": list_id, "favorite": false}),
        )
        .await;
    assert_eq!(unfavored["list_id"], list_id);
    assert_eq!(unfavored["list"]["name"], "Buyers");
    assert_eq!(unfavored["list"]["description"], "Bought once");
    assert_eq!(unfavored["list"]["favorite"], false);

    let renamed = d
        .succeeded(
            "l-rename",
            "list.update",
            json!({"list_id": list_id, "name": "Repeat buyers", "description": "Bought twice"}),
        )
        .await;
    assert_eq!(renamed["list"]["name"], "Repeat buyers");
    assert_eq!(renamed["list"]["description"], "Bought twice");
    assert_eq!(renamed["list"]["favorite"], false);

    // A change of case of its own name is not a conflict.
    let recased = d
        .succeeded(
            "l-recase",
            "list.update",
            json!({"list_id": list_id, "name": "REPEAT buyers"}),
        )
        .await;
    assert_eq!(recased["list"]["name"], "REPEAT buyers");

    let other = d
        .succeeded("l-other", "list.create", json!({"name": "Leads"}))
        .await;
    let before = list_requests(&d);
    d.publish(
        "l-taken",
        "list.update",
        json!({"list_id": other["list_id"], "name": "repeat BUYERS"}),
    )
    .await;
    let taken = d.result("l-taken").await;
    assert_eq!(taken.outcome, Outcome::Failed);
    let error = taken.error.expect("a failure explains itself");
    assert_eq!(error.code.as_str(), "conflict", "{}", error.message);
    assert!(!error.retryable);
    let puts = d
        .api
        .sandbox
        .admin()
        .request_log()
        .iter()
        .filter(|r| r.path.starts_with("/v3/contact_lists") && r.method == "PUT")
        .count();
    assert_eq!(
        list_requests(&d) - before,
        2,
        "a GET of the list and of the name"
    );
    assert_eq!(puts, 3, "no PUT for the taken name");

    let deleted = d
        .succeeded("l-delete", "list.delete", json!({"list_id": list_id}))
        .await;
    assert_eq!(deleted["already_deleted"], false);
    assert_eq!(deleted["list_id"], list_id);
    assert_eq!(
        deleted["activity_id"].as_str().map(str::len),
        Some(36),
        "{deleted}"
    );
    assert!(deleted["activity_state"].is_string(), "{deleted}");

    // The list is gone: a new delete or update is not found, and its name is free.
    d.publish("l-delete-2", "list.delete", json!({"list_id": list_id}))
        .await;
    d.publish(
        "l-update-gone",
        "list.update",
        json!({"list_id": list_id, "favorite": true}),
    )
    .await;
    for id in ["l-delete-2", "l-update-gone"] {
        let result = d.result(id).await;
        assert_eq!(result.outcome, Outcome::Failed, "{id}");
        assert_eq!(result.error.expect("an error").code.as_str(), "not_found");
    }
    let freed = d
        .succeeded(
            "l-free",
            "list.update",
            json!({"list_id": other["list_id"], "name": "Repeat buyers"}),
        )
        .await;
    assert_eq!(freed["list"]["name"], "Repeat buyers");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_list_data_is_rejected_naming_the_field() {
    let mut d = TestDaemon::start().await;
    let long = "x".repeat(256);
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "b-id",
            "list.update",
            json!({"list_id": "14", "name": "A"}),
            "data.list_id",
        ),
        (
            "b-no-id",
            "list.update",
            json!({"name": "A"}),
            "data.list_id",
        ),
        (
            "b-blank",
            "list.update",
            json!({"list_id": UNKNOWN, "name": " "}),
            "data.name",
        ),
        (
            "b-long",
            "list.update",
            json!({"list_id": UNKNOWN, "name": long}),
            "data.name",
        ),
        (
            "b-nothing",
            "list.update",
            json!({"list_id": UNKNOWN}),
            "data",
        ),
        ("b-delete-none", "list.delete", json!({}), "data.list_id"),
        (
            "b-delete-id",
            "list.delete",
            json!({"list_id": "not-a-uuid"}),
            "data.list_id",
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
    assert_eq!(list_requests(&d), 0, "nothing reached the API");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_list_id_is_not_found() {
    let mut d = TestDaemon::start().await;
    d.publish(
        "u-update",
        "list.update",
        json!({"list_id": UNKNOWN, "name": "A"}),
    )
    .await;
    d.publish("u-delete", "list.delete", json!({"list_id": UNKNOWN}))
        .await;
    for id in ["u-update", "u-delete"] {
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
    list_commands_sent_again_replay_their_results_without_calling_the_api
);
async fn list_commands_sent_again_replay_their_results_without_calling_the_api(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    let created = d
        .succeeded("r-create", "list.create", json!({"name": "Buyers"}))
        .await;
    let list_id = created["list_id"].as_str().expect("list_id").to_owned();
    let commands = [
        (
            "r-update",
            "list.update",
            json!({"list_id": list_id, "name": "Repeat buyers", "favorite": true}),
        ),
        ("r-delete", "list.delete", json!({"list_id": list_id})),
    ];
    for (id, command_type, data) in &commands {
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
    let requests = list_requests(&d);

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
    assert_eq!(list_requests(&d), requests, "no API call for a replay");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_whose_answer_was_lost_succeeds_as_already_deleted() {
    let mut d = TestDaemon::start().await;
    let created = d
        .succeeded("g-create", "list.create", json!({"name": "Lost"}))
        .await;
    let list_id = created["list_id"].as_str().expect("list_id").to_owned();
    let admin = d.api.sandbox.admin();
    admin
        .inject_fault(
            ctct_sandbox::FaultSpec::drop_connection()
                .method("DELETE")
                .path_prefix("/v3/contact_lists")
                .after_effect()
                .times(1),
        )
        .expect("a fault");
    let deleted = d
        .succeeded("g-delete", "list.delete", json!({"list_id": list_id}))
        .await;
    assert_eq!(deleted["list_id"], list_id);
    assert_eq!(deleted["already_deleted"], true, "{deleted}");
    // The first answer never came, so no activity id was recorded.
    assert_eq!(deleted["activity_id"], Value::Null, "{deleted}");
    let gone: Vec<_> = admin
        .effects()
        .into_iter()
        .filter(|e| e.kind == "list.deleted")
        .collect();
    assert_eq!(gone.len(), 1, "deleted once");
    assert_eq!(gone[0].resource_id.as_deref(), Some(list_id.as_str()));
    let deletes = admin
        .request_log()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.starts_with("/v3/contact_lists"))
        .count();
    assert_eq!(deletes, 2, "the retry deleted again and met the 404");
    d.stop().await;
}
