//! `contact.tag` and `contact.untag` through RabbitMQ against the sandbox: tags applied to
//! contacts named by id and by e-mail (the contacts hold them once the sandbox completes the
//! activity) and removed again; bad data rejected naming the field before any API call;
//! unknown e-mails, tag ids and contact ids `not_found`; and a re-sent command replayed
//! without a second activity.

use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use serde_json::{Value, json};

use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;

const SECS_30: Duration = Duration::from_secs(30);
const UNKNOWN: &str = "0b3f5d1c-1d2e-4f3a-9b8c-7d6e5f4a3b2c";

/// How many requests the sandbox has had for the tagging activities.
fn tagging_requests(d: &TestDaemon) -> usize {
    d.requests_under("/v3/activities/contacts_taggings")
}

/// How many requests the sandbox has had that the tagging commands make (look-ups by e-mail
/// and activities).
fn tagging_command_requests(d: &TestDaemon) -> usize {
    d.requests_under("/v3/contacts") + d.requests_under("/v3/activities")
}

async fn contact(d: &mut TestDaemon, id: &str, email: &str) -> String {
    let data = json!({"email": email});
    d.created(id, "contact.create", data, "contact_id").await
}

async fn tag(d: &mut TestDaemon, id: &str, name: &str) -> String {
    d.created(id, "tag.create", json!({"name": name}), "tag_id")
        .await
}

/// The contact's tag ids as the sandbox holds them.
fn taggings(d: &TestDaemon, contact_id: &str) -> Value {
    d.sandbox_contact(contact_id)["taggings"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_applied_and_removed_by_id_and_by_email() {
    let mut d = TestDaemon::start().await;
    let ann = contact(&mut d, "c-ann", "ann@example.com").await;
    let bob = contact(&mut d, "c-bob", "bob@example.com").await;
    let gold = tag(&mut d, "t-gold", "Gold").await;
    let blue = tag(&mut d, "t-blue", "Blue").await;

    let tagged = d
        .succeeded(
            "g-tag",
            "contact.tag",
            json!({"contact_ids": [ann], "tag_ids": [gold, blue]}),
        )
        .await;
    assert_eq!(tagged["contact_ids"], json!([ann]));
    assert_eq!(tagged["tag_ids"], json!([gold, blue]));
    assert_eq!(
        tagged["activity_id"].as_str().map(str::len),
        Some(36),
        "{tagged}"
    );
    assert_eq!(tagged["activity_state"], "initialized", "{tagged}");
    assert_eq!(
        taggings(&d, &ann),
        json!([]),
        "not before the activity completes"
    );
    d.api.sandbox.admin().complete_activities_now();
    assert_eq!(taggings(&d, &ann), json!([gold, blue]));

    let by_email = d
        .succeeded(
            "g-tag-email",
            "contact.tag",
            json!({"emails": ["BOB@example.com", "ann@example.com"], "tag_ids": [gold]}),
        )
        .await;
    assert_eq!(by_email["contact_ids"], json!([bob, ann]), "{by_email}");
    d.api.sandbox.admin().complete_activities_now();
    assert_eq!(taggings(&d, &bob), json!([gold]));
    assert_eq!(taggings(&d, &ann), json!([gold, blue]));

    let untagged = d
        .succeeded(
            "g-untag",
            "contact.untag",
            json!({"emails": ["ann@example.com"], "tag_ids": [gold]}),
        )
        .await;
    assert_eq!(untagged["contact_ids"], json!([ann]));
    assert_eq!(untagged["activity_state"], "initialized", "{untagged}");
    d.api.sandbox.admin().complete_activities_now();
    assert_eq!(taggings(&d, &ann), json!([blue]));
    assert_eq!(taggings(&d, &bob), json!([gold]), "untouched");
    assert_eq!(tagging_requests(&d), 3, "one activity per command");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tagging_data_is_rejected_naming_the_field() {
    let mut d = TestDaemon::start().await;
    let many_tags: Vec<String> = (0..51)
        .map(|i| format!("0b3f5d1c-1d2e-4f3a-9b8c-{i:012}"))
        .collect();
    let many_contacts: Vec<String> = (0..501)
        .map(|i| format!("0b3f5d1c-1d2e-4f3a-9b8c-{i:012}"))
        .collect();
    let cases: Vec<(&str, &str, Value, Vec<&str>)> = vec![
        (
            "b-neither",
            "contact.tag",
            json!({"tag_ids": [UNKNOWN]}),
            vec!["data.contact_ids"],
        ),
        (
            "b-both",
            "contact.untag",
            json!({"contact_ids": [UNKNOWN], "emails": ["a@example.com"], "tag_ids": [UNKNOWN]}),
            vec!["data.emails"],
        ),
        (
            "b-empty-ids",
            "contact.tag",
            json!({"contact_ids": [], "tag_ids": [UNKNOWN]}),
            vec!["data.contact_ids"],
        ),
        (
            "b-bad-id",
            "contact.tag",
            json!({"contact_ids": [UNKNOWN, "0b3f5d1c-1d2e-4f3a-9b8c-000000000001",
                                   "0b3f5d1c-1d2e-4f3a-9b8c-000000000002", "14"],
                   "tag_ids": [UNKNOWN]}),
            vec!["data.contact_ids[3]"],
        ),
        (
            "b-many-contacts",
            "contact.tag",
            json!({"contact_ids": many_contacts, "tag_ids": [UNKNOWN]}),
            vec!["data.contact_ids"],
        ),
        (
            "b-no-tags",
            "contact.untag",
            json!({"contact_ids": [UNKNOWN]}),
            vec!["data.tag_ids"],
        ),
        (
            "b-many-tags",
            "contact.tag",
            json!({"contact_ids": [UNKNOWN], "tag_ids": many_tags}),
            vec!["data.tag_ids"],
        ),
        (
            "b-bad-tag",
            "contact.untag",
            json!({"contact_ids": [UNKNOWN], "tag_ids": ["Gold"]}),
            vec!["data.tag_ids[0]"],
        ),
        (
            "b-bad-email",
            "contact.tag",
            json!({"emails": ["a@example.com", "nope"], "tag_ids": [UNKNOWN]}),
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
    assert_eq!(tagging_command_requests(&d), 0, "nothing reached the API");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_emails_tags_and_contacts_are_not_found() {
    let mut d = TestDaemon::start().await;
    let ann = contact(&mut d, "c-ann", "ann@example.com").await;
    let gold = tag(&mut d, "t-gold", "Gold").await;

    d.publish(
        "u-email",
        "contact.tag",
        json!({"emails": ["ann@example.com", "nobody@example.com"], "tag_ids": [gold]}),
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
    assert_eq!(tagging_requests(&d), 0, "no activity for an unknown e-mail");

    d.publish(
        "u-tag",
        "contact.tag",
        json!({"contact_ids": [ann], "tag_ids": [UNKNOWN]}),
    )
    .await;
    d.publish(
        "u-contact",
        "contact.untag",
        json!({"contact_ids": [UNKNOWN], "tag_ids": [gold]}),
    )
    .await;
    for id in ["u-tag", "u-contact"] {
        let result = d.result(id).await;
        assert_eq!(result.outcome, Outcome::Failed, "{id}");
        let error = result.error.expect("a failure explains itself");
        assert_eq!(error.code.as_str(), "not_found", "{id}: {}", error.message);
        assert_eq!(error.api_status, Some(404), "{id}");
        assert!(!error.retryable, "{id}");
        assert!(error.message.contains(UNKNOWN), "{id}: {}", error.message);
    }
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    tagging_commands_sent_again_replay_without_a_second_activity
);
async fn tagging_commands_sent_again_replay_without_a_second_activity(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    let ann = contact(&mut d, "c-ann", "ann@example.com").await;
    let gold = tag(&mut d, "t-gold", "Gold").await;
    let commands = [
        (
            "r-tag",
            "contact.tag",
            json!({"emails": ["ann@example.com"], "tag_ids": [gold]}),
        ),
        (
            "r-untag",
            "contact.untag",
            json!({"contact_ids": [ann], "tag_ids": [gold]}),
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
    let requests = tagging_command_requests(&d);
    assert_eq!(tagging_requests(&d), 2, "one activity each");

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
        tagging_command_requests(&d),
        requests,
        "no API call for a replay"
    );
    d.stop().await;
}
