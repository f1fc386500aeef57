//! `list.add_contacts` and `list.remove_contacts` through RabbitMQ against the sandbox:
//! contacts named by id and by e-mail added to lists (the contacts are members once the
//! sandbox completes the activity) and removed again; bad data rejected naming the field
//! before any API call; unknown e-mails, list ids and contact ids `not_found`; and a re-sent
//! command replayed without a second activity.

use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use serde_json::{Value, json};

use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;

const SECS_30: Duration = Duration::from_secs(30);
const UNKNOWN: &str = "0b3f5d1c-1d2e-4f3a-9b8c-7d6e5f4a3b2c";

/// How many requests the sandbox has had for the membership activities.
fn membership_requests(d: &TestDaemon) -> usize {
    d.requests_under("/v3/activities/add_list_memberships")
        + d.requests_under("/v3/activities/remove_list_memberships")
}

/// How many requests the sandbox has had that the membership commands make (look-ups by
/// e-mail and activities).
fn membership_command_requests(d: &TestDaemon) -> usize {
    d.requests_under("/v3/contacts") + d.requests_under("/v3/activities")
}

async fn contact(d: &mut TestDaemon, id: &str, email: &str) -> String {
    let data = json!({"email": email});
    d.created(id, "contact.create", data, "contact_id").await
}

async fn list(d: &mut TestDaemon, id: &str, name: &str) -> String {
    d.created(id, "list.create", json!({"name": name}), "list_id")
        .await
}

/// The contact's list ids as the sandbox holds them.
fn memberships(d: &TestDaemon, contact_id: &str) -> Value {
    d.sandbox_contact(contact_id)["list_memberships"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_added_to_lists_and_removed_by_id_and_by_email() {
    let mut d = TestDaemon::start().await;
    let ann = contact(&mut d, "c-ann", "ann@example.com").await;
    let bob = contact(&mut d, "c-bob", "bob@example.com").await;
    let news = list(&mut d, "l-news", "News").await;
    let deals = list(&mut d, "l-deals", "Deals").await;

    let added = d
        .succeeded(
            "m-add",
            "list.add_contacts",
            json!({"contact_ids": [ann], "list_ids": [news, deals]}),
        )
        .await;
    assert_eq!(added["contact_ids"], json!([ann]));
    assert_eq!(added["list_ids"], json!([news, deals]));
    assert_eq!(
        added["activity_id"].as_str().map(str::len),
        Some(36),
        "{added}"
    );
    assert_eq!(added["activity_state"], "initialized", "{added}");
    assert_eq!(
        memberships(&d, &ann),
        json!([]),
        "not before the activity completes"
    );
    d.api.sandbox.admin().complete_activities_now();
    assert_eq!(memberships(&d, &ann), json!([news, deals]));

    let by_email = d
        .succeeded(
            "m-add-email",
            "list.add_contacts",
            json!({"emails": ["BOB@example.com", "ann@example.com"], "list_ids": [news]}),
        )
        .await;
    assert_eq!(by_email["contact_ids"], json!([bob, ann]), "{by_email}");
    d.api.sandbox.admin().complete_activities_now();
    assert_eq!(memberships(&d, &bob), json!([news]));
    assert_eq!(memberships(&d, &ann), json!([news, deals]));

    let removed = d
        .succeeded(
            "m-remove",
            "list.remove_contacts",
            json!({"emails": ["ann@example.com"], "list_ids": [news]}),
        )
        .await;
    assert_eq!(removed["contact_ids"], json!([ann]));
    assert_eq!(removed["list_ids"], json!([news]));
    assert_eq!(removed["activity_state"], "initialized", "{removed}");
    d.api.sandbox.admin().complete_activities_now();
    assert_eq!(memberships(&d, &ann), json!([deals]));
    assert_eq!(memberships(&d, &bob), json!([news]), "untouched");
    assert_eq!(membership_requests(&d), 3, "one activity per command");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_membership_data_is_rejected_naming_the_field() {
    let mut d = TestDaemon::start().await;
    let many_lists: Vec<String> = (0..51)
        .map(|i| format!("0b3f5d1c-1d2e-4f3a-9b8c-{i:012}"))
        .collect();
    let many_contacts: Vec<String> = (0..501)
        .map(|i| format!("0b3f5d1c-1d2e-4f3a-9b8c-{i:012}"))
        .collect();
    let cases: Vec<(&str, &str, Value, Vec<&str>)> = vec![
        (
            "b-no-lists",
            "list.add_contacts",
            json!({"contact_ids": [UNKNOWN]}),
            vec!["data.list_ids"],
        ),
        (
            "b-empty-lists",
            "list.remove_contacts",
            json!({"contact_ids": [UNKNOWN], "list_ids": []}),
            vec!["data.list_ids"],
        ),
        (
            "b-many-lists",
            "list.add_contacts",
            json!({"contact_ids": [UNKNOWN], "list_ids": many_lists}),
            vec!["data.list_ids"],
        ),
        (
            "b-bad-list",
            "list.remove_contacts",
            json!({"contact_ids": [UNKNOWN], "list_ids": ["News"]}),
            vec!["data.list_ids[0]"],
        ),
        (
            "b-neither",
            "list.add_contacts",
            json!({"list_ids": [UNKNOWN]}),
            vec!["data.contact_ids"],
        ),
        (
            "b-both",
            "list.remove_contacts",
            json!({"contact_ids": [UNKNOWN], "emails": ["a@example.com"], "list_ids": [UNKNOWN]}),
            vec!["data.emails"],
        ),
        (
            "b-many-contacts",
            "list.add_contacts",
            json!({"contact_ids": many_contacts, "list_ids": [UNKNOWN]}),
            vec!["data.contact_ids"],
        ),
        (
            "b-bad-id",
            "list.add_contacts",
            json!({"contact_ids": [UNKNOWN, "14"], "list_ids": [UNKNOWN]}),
            vec!["data.contact_ids[1]"],
        ),
        (
            "b-bad-email",
            "list.remove_contacts",
            json!({"emails": ["a@example.com", "nope"], "list_ids": [UNKNOWN]}),
            vec!["data.emails[1]"],
        ),
    ];
    for (id, command_type, data, _) in &cases {
        d.publish(id, command_type, data.clone()).await;
    }
    for (id, _, _, want) in &cases {
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
        assert_eq!(fields, *want, "{id}");
    }
    assert_eq!(
        membership_command_requests(&d),
        0,
        "nothing reached the API"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_emails_lists_and_contacts_are_not_found() {
    let mut d = TestDaemon::start().await;
    let ann = contact(&mut d, "c-ann", "ann@example.com").await;
    let news = list(&mut d, "l-news", "News").await;

    d.publish(
        "u-email",
        "list.add_contacts",
        json!({"emails": ["ann@example.com", "nobody@example.com"], "list_ids": [news]}),
    )
    .await;
    let result = d.result("u-email").await;
    assert_eq!(result.outcome, Outcome::Failed);
    let error = result.error.expect("a failure explains itself");
    assert_eq!(error.code.as_str(), "not_found", "{}", error.message);
    assert_eq!(error.fields.len(), 1, "{:?}", error.fields);
    assert_eq!(error.fields[0].field, "data.emails[1]");
    assert!(
        error.fields[0].reason.contains("nobody@example.com"),
        "{}",
        error.fields[0].reason
    );
    assert_eq!(
        membership_requests(&d),
        0,
        "no activity for an unknown e-mail"
    );

    let cases = [
        (
            "u-list-add",
            "list.add_contacts",
            json!({"contact_ids": [ann], "list_ids": [news, UNKNOWN]}),
        ),
        (
            "u-list-remove",
            "list.remove_contacts",
            json!({"contact_ids": [ann], "list_ids": [UNKNOWN]}),
        ),
        (
            "u-contact-add",
            "list.add_contacts",
            json!({"contact_ids": [ann, UNKNOWN], "list_ids": [news]}),
        ),
        (
            "u-contact-remove",
            "list.remove_contacts",
            json!({"contact_ids": [UNKNOWN], "list_ids": [news]}),
        ),
    ];
    for (id, command_type, data) in &cases {
        d.publish(id, command_type, data.clone()).await;
    }
    for (id, _, _) in &cases {
        let result = d.result(id).await;
        assert_eq!(result.outcome, Outcome::Failed, "{id}");
        let error = result.error.expect("a failure explains itself");
        assert_eq!(error.code.as_str(), "not_found", "{id}: {}", error.message);
        assert_eq!(error.api_status, Some(404), "{id}");
        assert!(!error.retryable, "{id}");
        assert!(error.message.contains(UNKNOWN), "{id}: {}", error.message);
    }
    d.api.sandbox.admin().complete_activities_now();
    assert_eq!(memberships(&d, &ann), json!([]), "nothing was added");
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    membership_commands_sent_again_replay_without_a_second_activity
);
async fn membership_commands_sent_again_replay_without_a_second_activity(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    let ann = contact(&mut d, "c-ann", "ann@example.com").await;
    let news = list(&mut d, "l-news", "News").await;
    let commands = [
        (
            "r-add",
            "list.add_contacts",
            json!({"emails": ["ann@example.com"], "list_ids": [news]}),
        ),
        (
            "r-remove",
            "list.remove_contacts",
            json!({"contact_ids": [ann], "list_ids": [news]}),
        ),
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
    let requests = membership_command_requests(&d);
    assert_eq!(membership_requests(&d), 2, "one activity each");

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
    assert_eq!(
        membership_command_requests(&d),
        requests,
        "no API call for a replay"
    );
    assert_eq!(membership_requests(&d), 2, "still one activity each");
    d.stop().await;
}
