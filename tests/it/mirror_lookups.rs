//! Contacts named by e-mail (`list.add_contacts` here; `contact.tag` and the removals share
//! the code) resolved through the mirror when it is fresh, through RabbitMQ against the
//! sandbox: after a contacts mirror run the addresses it holds cost no `GET /contacts?email=`,
//! one it does not hold (created since) is looked up; a stale mirror
//! (`mirror.lookup_max_age_secs` passed) or a disabled one looks every address up; and an
//! activity refused with 404 over an id the mirror still had for a contact deleted since is
//! tried again after looking the addresses up, succeeding or failing as the account says.

use std::time::Duration;

use ctct_sync::command::outcome::{ErrorCode, Outcome};
use serde_json::json;

use crate::support::api::TestApi;
use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;

/// Each command applied alone (gathered commands: the last test).
const ALONE: [(&str, &str); 1] = [("CTCT_SYNC__BULK__ENABLED", "false")];

/// Requests under `/v3/contacts`: the look-ups by e-mail, when no contact is written.
fn contact_requests(d: &TestDaemon) -> usize {
    d.requests_under("/v3/contacts")
}

/// Requests for the list membership activities.
fn membership_requests(d: &TestDaemon) -> usize {
    d.requests_under("/v3/activities/add_list_memberships")
}

async fn contact(d: &mut TestDaemon, id: &str, email: &str) -> String {
    d.created(id, "contact.create", json!({"email": email}), "contact_id")
        .await
}

/// Runs the contacts resource of the mirror (through `mirror.run`).
async fn mirror_contacts(d: &mut TestDaemon, id: &str) {
    d.succeeded(id, "mirror.run", json!({"resource": "contacts"}))
        .await;
}

/// `list.add_contacts` of `emails` to `list`: its contact ids and the look-ups it made.
async fn add_by_email(
    d: &mut TestDaemon,
    id: &str,
    emails: &[&str],
    list: &str,
) -> (Vec<String>, usize) {
    let before = contact_requests(d);
    let data = d
        .succeeded(
            id,
            "list.add_contacts",
            json!({"emails": emails, "list_ids": [list]}),
        )
        .await;
    let ids = serde_json::from_value(data["contact_ids"].clone()).expect("contact ids");
    (ids, contact_requests(d) - before)
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    addresses_a_fresh_mirror_holds_cost_no_look_up_and_a_stale_or_disabled_mirror_looks_them_up
);
async fn addresses_a_fresh_mirror_holds_cost_no_look_up_and_a_stale_or_disabled_mirror_looks_them_up(
    engine: Engine,
) {
    let mut d = TestDaemon::start_with_mirror(TestApi::start_on(engine).await, &ALONE).await;
    let ann = contact(&mut d, "c-ann", "ann@example.com").await;
    let bob = contact(&mut d, "c-bob", "bob@example.com").await;
    let news = d
        .created("l-news", "list.create", json!({"name": "News"}), "list_id")
        .await;

    let (ids, looked_up) = add_by_email(&mut d, "before", &["ann@example.com"], &news).await;
    assert_eq!(
        (ids, looked_up),
        (vec![ann.clone()], 1),
        "no mirror run yet: the API"
    );

    mirror_contacts(&mut d, "mirror-1").await;
    let (ids, looked_up) = add_by_email(
        &mut d,
        "fresh",
        &["BOB@example.com", "Ann@Example.com"],
        &news,
    )
    .await;
    assert_eq!(ids, [bob.clone(), ann.clone()], "in the command's order");
    assert_eq!(looked_up, 0, "both from the mirror");

    let cy = contact(&mut d, "c-cy", "cy@example.com").await;
    let (ids, looked_up) = add_by_email(
        &mut d,
        "newer",
        &["cy@example.com", "ann@example.com"],
        &news,
    )
    .await;
    assert_eq!(ids, [cy.clone(), ann.clone()]);
    assert_eq!(looked_up, 1, "only the contact created since the run");

    let before = contact_requests(&d);
    d.publish(
        "nobody",
        "list.add_contacts",
        json!({"emails": ["ann@example.com", "nobody@example.com"], "list_ids": [news]}),
    )
    .await;
    let failed = d.result("nobody").await;
    assert_eq!(failed.outcome, Outcome::Failed, "{failed:?}");
    let error = failed.error.expect("an error");
    assert_eq!(error.code, ErrorCode::NotFound);
    let fields: Vec<&str> = error.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["data.emails[1]"], "{error:?}");
    assert_eq!(
        contact_requests(&d) - before,
        1,
        "the unknown address looked up"
    );

    // 15 minutes and a second later the run is too old (mirror.lookup_max_age_secs = 900).
    d.api.advance_clocks(Duration::from_secs(901));
    let (ids, looked_up) = add_by_email(
        &mut d,
        "stale",
        &["ann@example.com", "bob@example.com"],
        &news,
    )
    .await;
    assert_eq!(
        (ids, looked_up),
        (vec![ann.clone(), bob.clone()], 2),
        "stale: the API"
    );

    mirror_contacts(&mut d, "mirror-2").await;
    let (_, looked_up) = add_by_email(&mut d, "fresh-again", &["ann@example.com"], &news).await;
    assert_eq!(looked_up, 0, "a new run makes it fresh again");

    d.stop_pipeline(Duration::from_secs(10)).await;
    d.settings.mirror.lookup_max_age_secs = 0;
    d.start_pipeline().await;
    mirror_contacts(&mut d, "mirror-3").await;
    let (ids, looked_up) = add_by_email(
        &mut d,
        "disabled",
        &["ann@example.com", "cy@example.com"],
        &news,
    )
    .await;
    assert_eq!((ids, looked_up), (vec![ann, cy], 2), "0: never the mirror");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_refused_over_an_id_the_mirror_still_had_is_tried_again_after_looking_up() {
    let mut d = TestDaemon::start_with_mirror(TestApi::start().await, &ALONE).await;
    let ann = contact(&mut d, "c-ann", "ann@example.com").await;
    let bob = contact(&mut d, "c-bob", "bob@example.com").await;
    let old = contact(&mut d, "c-old", "moved@example.com").await;
    let news = d
        .created("l-news", "list.create", json!({"name": "News"}), "list_id")
        .await;
    mirror_contacts(&mut d, "mirror-1").await;

    // Since the run: bob deleted; the contact the mirror knows by moved@ changed its address
    // and was deleted, and a new contact took moved@.
    d.succeeded("del-bob", "contact.delete", json!({"contact_id": bob}))
        .await;
    d.succeeded(
        "move",
        "contact.update",
        json!({"contact_id": old, "email": "elsewhere@example.com"}),
    )
    .await;
    d.succeeded("del-old", "contact.delete", json!({"contact_id": old}))
        .await;
    let new = contact(&mut d, "c-new", "moved@example.com").await;
    assert_ne!(new, old);

    let activities = membership_requests(&d);
    let (ids, looked_up) = add_by_email(
        &mut d,
        "moved",
        &["ann@example.com", "moved@example.com"],
        &news,
    )
    .await;
    assert_eq!(
        ids,
        [ann.clone(), new.clone()],
        "the account's contacts, not the mirror's"
    );
    assert_eq!(
        looked_up, 2,
        "after the refusal, every address through the API"
    );
    assert_eq!(
        membership_requests(&d) - activities,
        2,
        "refused (404), then started with the looked-up ids"
    );
    d.api.sandbox.admin().complete_activities_now();
    assert_eq!(d.sandbox_contact(&new)["list_memberships"], json!([news]));

    let activities = membership_requests(&d);
    let before = contact_requests(&d);
    d.publish(
        "deleted",
        "list.add_contacts",
        json!({"emails": ["ann@example.com", "bob@example.com"], "list_ids": [news]}),
    )
    .await;
    let failed = d.result("deleted").await;
    assert_eq!(failed.outcome, Outcome::Failed, "{failed:?}");
    let error = failed.error.expect("an error");
    assert_eq!(error.code, ErrorCode::NotFound, "{error:?}");
    let fields: Vec<&str> = error.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["data.emails[1]"], "bob is deleted: {error:?}");
    assert_eq!(contact_requests(&d) - before, 2);
    assert_eq!(
        membership_requests(&d) - activities,
        1,
        "only the refused one"
    );
    d.stop().await;
}

/// A burst of by-address commands gathered into shared activities resolves the addresses a
/// fresh mirror holds without a look-up each, as a lone command does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gathered_commands_resolve_addresses_a_fresh_mirror_holds_without_look_ups() {
    let api = TestApi::start().await;
    let contacts = crate::gathering::seeded_with_emails(&api, 60);
    let mut d = TestDaemon::start_with_mirror(api, &crate::gathering::GATHERING).await;
    // Tags, not lists: the seed holds unsubscribed contacts, which no list takes.
    let gold = crate::gathering::tag(&mut d, "t-gold", "Gold").await;
    mirror_contacts(&mut d, "mirror-1").await;
    let looked_up_before = contact_requests(&d);
    let commands: Vec<(String, &str, serde_json::Value)> = contacts
        .iter()
        .enumerate()
        .map(|(i, (_, email))| {
            (
                format!("add-{i}"),
                "contact.tag",
                json!({"emails": [email], "tag_ids": [gold]}),
            )
        })
        .collect();
    crate::gathering::publish_all(&d, &commands).await;
    let ids = crate::gathering::ids_of(&commands);
    let results = crate::gathering::one_each(&mut d, &ids).await;
    let mut gathered = 0;
    for (i, (contact_id, _)) in contacts.iter().enumerate() {
        let r = &results[&format!("add-{i}")];
        assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
        let data = r.data.as_ref().expect("data");
        assert_eq!(data["contact_ids"], json!([contact_id]));
        if data["batch"]["commands"].as_u64().unwrap_or(0) > 1 {
            gathered += 1;
        }
    }
    assert!(gathered > 0, "none gathered");
    assert_eq!(
        contact_requests(&d) - looked_up_before,
        0,
        "every address from the mirror"
    );
    let tagging = d.requests_under("/v3/activities/contacts_taggings_add");
    assert!(tagging <= 4, "{tagging} activities");
    d.stop().await;
}
