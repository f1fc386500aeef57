//! Gathered deletes (issue 22): bursts of `contact.delete` share `contact_delete` activities,
//! and bursts of `list.delete`, `tag.delete` and `custom_field.delete` share `list_delete`,
//! `contacts_tags_delete` and `custom_fields_delete` activities — each command with its own
//! result, an unknown id failing alone as it does one by one, and a command about the same
//! contact published after a gathered delete applied after it.

use std::collections::HashSet;
use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use serde_json::{Value, json};

use crate::gathering::{
    GATHERING, UNKNOWN, arrival, ids_of, killed_once_recorded, one_each, one_per, publish_all,
    publish_in_order, seeded, seeded_with_emails, tag,
};
use crate::support::api::TestApi;
use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;

/// The POSTs of `route` (e.g. `contact_delete`) the sandbox saw.
fn posts_of(d: &TestDaemon, route: &str) -> usize {
    let path = format!("/v3/activities/{route}");
    d.api
        .sandbox
        .admin()
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .count()
}

/// Whether the sandbox holds the contact as deleted.
fn deleted(d: &TestDaemon, contact_id: &str) -> bool {
    !d.sandbox_contact(contact_id)["deleted_at"].is_null()
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_burst_of_contact_deletes_shares_activities_and_an_unknown_id_fails_alone
);
async fn a_burst_of_contact_deletes_shares_activities_and_an_unknown_id_fails_alone(
    engine: Engine,
) {
    let api = TestApi::start_on(engine).await;
    // The seed holds some deleted contacts: seed more than the 306 live ones needed.
    let seeded = seeded_with_emails(&api, 400);
    assert!(seeded.len() >= 306, "{} live contacts seeded", seeded.len());
    let (by_id, by_email) = seeded[..306].split_at(300);
    let ids: Vec<String> = by_id.iter().map(|(id, _)| id.clone()).collect();
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    // One address's contact is deleted before the burst: its delete answers as one by one.
    let (gone_id, gone_email) = &by_email[0];
    d.publish("pre", "contact.delete", json!({"contact_id": gone_id}))
        .await;
    assert_eq!(d.result("pre").await.outcome, Outcome::Succeeded);
    let before = posts_of(&d, "contact_delete");
    let mut commands = one_per(&ids, "del", "contact.delete", |c| json!({"contact_id": c}));
    commands.insert(
        150,
        (
            "unknown".to_owned(),
            "contact.delete",
            json!({"contact_id": UNKNOWN}),
        ),
    );
    for (i, (_, email)) in by_email.iter().enumerate().skip(1) {
        commands.push((
            format!("mail-{i}"),
            "contact.delete",
            json!({"email": email}),
        ));
    }
    commands.push((
        "mail-gone".to_owned(),
        "contact.delete",
        json!({"email": gone_email}),
    ));
    commands.push((
        "mail-nobody".to_owned(),
        "contact.delete",
        json!({"email": "nobody-here@example.com"}),
    ));
    publish_all(&d, &commands).await;
    let results = one_each(&mut d, &ids_of(&commands)).await;
    let code = |id: &str| {
        results[id]
            .error
            .as_ref()
            .map(|e| e.code.as_str().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(code("unknown"), "not_found", "{:?}", results["unknown"]);
    assert_eq!(
        code("mail-nobody"),
        "not_found",
        "{:?}",
        results["mail-nobody"]
    );
    let gone = &results["mail-gone"];
    assert_eq!(gone.outcome, Outcome::Succeeded, "{gone:?}");
    assert_eq!(gone.data.as_ref().expect("data")["already_deleted"], true);
    let mut gathered = 0;
    for (i, c) in ids.iter().enumerate() {
        let r = &results[&format!("del-{i}")];
        assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
        let data = r.data.as_ref().expect("data");
        assert_eq!(data["contact_id"], json!(c), "its own contact");
        if data["batch"]["commands"].as_u64().unwrap_or(0) > 1 {
            gathered += 1;
            assert_eq!(data["activity_state"], "completed", "{data}");
        }
    }
    assert!(
        gathered * 10 >= ids.len() * 9,
        "{gathered} of {} gathered",
        ids.len()
    );
    for (i, (c, _)) in by_email.iter().enumerate().skip(1) {
        let r = &results[&format!("mail-{i}")];
        assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
        assert_eq!(r.data.as_ref().expect("data")["contact_id"], json!(c));
    }
    d.api.sandbox.admin().complete_activities_now();
    for c in ids.iter().chain(by_email.iter().map(|(c, _)| c)) {
        assert!(deleted(&d, c), "contact {c} deleted");
    }
    // 306 deletes in a handful of activities: halving down to the unknown id costs a few.
    let posts = posts_of(&d, "contact_delete") - before;
    eprintln!(
        "gathered contact deletes: {} commands, {posts} activities",
        commands.len()
    );
    assert!(posts <= 2 * 2 * 9 + 2, "{posts} contact_delete POSTs");
    d.stop().await;
}

/// A `contact.update` published after a `contact.delete` of the same contact (the delete
/// gathered with others) applies after it: it meets the deleted contact, so it cannot have
/// changed the contact before the delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_about_a_contact_published_after_its_gathered_delete_applies_after_it() {
    let api = TestApi::start().await;
    let contacts = seeded(&api, 30);
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let mut commands = one_per(
        &contacts,
        "del",
        "contact.delete",
        |c| json!({"contact_id": c}),
    );
    let after: Vec<(String, &str, Value)> = one_per(
        &contacts[..5],
        "upd",
        "contact.update",
        |c| json!({"contact_id": c, "first_name": "Later"}),
    );
    commands.extend(after.iter().cloned());
    publish_in_order(&d, &commands).await;
    let results = one_each(&mut d, &ids_of(&commands)).await;
    for i in 0..5 {
        let delete = &results[&format!("del-{i}")];
        let update = &results[&format!("upd-{i}")];
        assert_eq!(delete.outcome, Outcome::Succeeded, "{delete:?}");
        assert!(
            arrival(&d, &format!("upd-{i}")) > arrival(&d, &format!("del-{i}")),
            "the update of contact {i} was answered before its delete: {delete:?} {update:?}"
        );
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_list_tag_and_custom_field_deletes_share_one_activity_per_kind() {
    let api = TestApi::start().await;
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let mut lists = Vec::new();
    let mut tags = Vec::new();
    let mut fields = Vec::new();
    for i in 0..12 {
        let name = format!("Deleted later {i}");
        lists.push(
            d.created(
                &format!("l-{i}"),
                "list.create",
                json!({"name": name}),
                "list_id",
            )
            .await,
        );
        tags.push(tag(&mut d, &format!("t-{i}"), &name).await);
        fields.push(
            d.created(
                &format!("f-{i}"),
                "custom_field.create",
                json!({"label": format!("Gone {i}"), "type": "string"}),
                "custom_field_id",
            )
            .await,
        );
    }
    let mut commands = one_per(&lists, "dl", "list.delete", |l| json!({"list_id": l}));
    commands.extend(one_per(&tags, "dt", "tag.delete", |t| json!({"tag_id": t})));
    commands.extend(one_per(
        &fields,
        "df",
        "custom_field.delete",
        |f| json!({"custom_field_id": f}),
    ));
    commands.push((
        "dl-unknown".to_owned(),
        "list.delete",
        json!({"list_id": UNKNOWN}),
    ));
    publish_all(&d, &commands).await;
    let results = one_each(&mut d, &ids_of(&commands)).await;
    let unknown = &results["dl-unknown"];
    assert_eq!(
        unknown.error.as_ref().map(|e| e.code.as_str()),
        Some("not_found"),
        "{unknown:?}"
    );
    for (prefix, key, items) in [
        ("dl", "list_id", &lists),
        ("dt", "tag_id", &tags),
        ("df", "custom_field_id", &fields),
    ] {
        for (i, item) in items.iter().enumerate() {
            let r = &results[&format!("{prefix}-{i}")];
            assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
            assert_eq!(r.data.as_ref().expect("data")[key], json!(item), "{r:?}");
        }
    }
    d.api.sandbox.admin().complete_activities_now();
    let admin = d.api.sandbox.admin();
    let snapshot = admin.snapshot(&admin.primary_account()).expect("snapshot");
    let live = |rows: &[Value], key: &str| -> HashSet<String> {
        rows.iter()
            .filter(|r| r["deleted_at"].is_null())
            .filter_map(|r| r[key].as_str().map(str::to_owned))
            .collect()
    };
    let live_lists = live(&snapshot.lists, "list_id");
    let live_fields = live(&snapshot.custom_fields, "custom_field_id");
    assert!(
        lists.iter().all(|l| !live_lists.contains(l)),
        "lists deleted"
    );
    assert!(
        fields.iter().all(|f| !live_fields.contains(f)),
        "fields deleted"
    );
    let (list_posts, tag_posts, field_posts) = (
        posts_of(&d, "list_delete"),
        posts_of(&d, "contacts_tags_delete"),
        posts_of(&d, "custom_fields_delete"),
    );
    eprintln!(
        "gathered catalog deletes: {list_posts} list, {tag_posts} tag, {field_posts} field activities"
    );
    // The first of a burst may go alone (idle daemon); the unknown list halves its batch.
    assert!(list_posts <= 2 * 2 * 5, "{list_posts} list_delete POSTs");
    assert!(tag_posts <= 2, "{tag_posts} contacts_tags_delete POSTs");
    assert!(field_posts <= 2, "{field_posts} custom_fields_delete POSTs");
    // A replay answers from the ledger, with no second activity.
    d.publish("dt-0", "tag.delete", json!({"tag_id": tags[0]}))
        .await;
    let twice = |d: &TestDaemon| d.received.iter().filter(|r| r.command_id == "dt-0").count() >= 2;
    assert!(
        d.receive_until(std::time::Duration::from_secs(30), twice)
            .await,
        "no replay"
    );
    let replay = d
        .received
        .iter()
        .filter(|r| r.command_id == "dt-0")
        .nth(1)
        .expect("replay");
    assert!(replay.replayed, "{replay:?}");
    assert_eq!(replay.data, results["dt-0"].data);
    assert_eq!(posts_of(&d, "contacts_tags_delete"), tag_posts);
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_crash_after_the_shared_delete_activity_was_accepted_sends_nothing_again
);
/// A daemon SIGKILLed while the delete activity its gathered commands share is still queued:
/// the next process reads the recorded activity, waits while it is queued, and once it has
/// completed answers each redelivered delete from it — no second activity, no single DELETE.
async fn a_crash_after_the_shared_delete_activity_was_accepted_sends_nothing_again(engine: Engine) {
    let api = TestApi::start_on(engine).await;
    let contacts = seeded(&api, 30);
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let commands = one_per(
        &contacts,
        "crash",
        "contact.delete",
        |c| json!({"contact_id": c}),
    );
    let ids = ids_of(&commands);
    let admin = d.api.sandbox.admin();
    let settings = killed_once_recorded(&mut d, &commands, "crash").await;
    let posts_after_first = posts_of(&d, "contact_delete");
    let deletes_after_first = d.requests_under("/v3/contacts/");
    d.drain(Duration::from_millis(200)).await;
    let answered_before_the_kill = d.received.len();

    // The next daemon reads the recorded activity: still queued, so nothing is answered yet
    // (the commands wait for their retry); once it has completed, each answers from it.
    let reads_before = d.requests_under("/v3/activities/");
    let (mut second, _log) = d.spawn_with_log("second", &settings);
    crate::support::eventually::eventually(
        Duration::from_secs(60),
        "the next daemon reads the recorded activity",
        async || {
            let reads = d.requests_under("/v3/activities/");
            if reads > reads_before {
                return Ok(());
            }
            Err(format!("{reads} reads"))
        },
    )
    .await;
    d.drain(Duration::from_millis(500)).await;
    assert_eq!(
        d.received.len(),
        answered_before_the_kill,
        "answered before the shared activity completed"
    );
    admin.unfreeze_clock();
    admin.complete_activities_now();
    let results = d.results(&ids, Duration::from_secs(60)).await;
    crate::support::daemon::terminate(&mut second).await;
    assert_eq!(
        posts_of(&d, "contact_delete"),
        posts_after_first,
        "no second activity"
    );
    assert_eq!(
        d.requests_under("/v3/contacts/"),
        deletes_after_first,
        "no single DELETE"
    );
    for (id, c) in ids.iter().zip(&contacts) {
        assert_eq!(results[id].len(), 1, "{id}: {:?}", results[id]);
        let r = &results[id][0];
        assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
        let data = r.data.as_ref().expect("data");
        assert_eq!(data["contact_id"], json!(c));
        assert!(data["activity_id"].is_string(), "{data}");
        assert!(deleted(&d, c), "contact {c} deleted");
    }
    d.stop().await;
}

/// A burst of `contact.erase` shares `contact_delete` activities; each contact is erased from
/// the mirror (tombstoned) once the activity has deleted it, and each command gets the
/// erasure's result with the shared activity's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_erasures_shares_delete_activities_and_erases_each_contact() {
    let api = TestApi::start().await;
    let contacts = seeded_with_emails(&api, 40);
    let contacts = &contacts[..30];
    let mut d = TestDaemon::start_with_mirror(api, &GATHERING).await;
    d.succeeded("mirror-1", "mirror.run", json!({"resource": "contacts"}))
        .await;
    let before = posts_of(&d, "contact_delete");
    let commands: Vec<(String, &str, Value)> = contacts
        .iter()
        .enumerate()
        .map(|(i, (id, email))| {
            let data = if i % 3 == 0 {
                json!({"email": email})
            } else {
                json!({"contact_id": id})
            };
            (format!("erase-{i}"), "contact.erase", data)
        })
        .collect();
    publish_all(&d, &commands).await;
    let results = one_each(&mut d, &ids_of(&commands)).await;
    let tables = d.api.mirror_tables();
    let mut gathered = 0;
    for (i, (id, _)) in contacts.iter().enumerate() {
        let r = &results[&format!("erase-{i}")];
        assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
        let data = r.data.as_ref().expect("data");
        assert_eq!(data["contact_id"], json!(id));
        assert_eq!(data["erased"], true);
        assert_eq!(data["mirror"]["contacts"], 1, "{data}");
        if data["batch"]["commands"].as_u64().unwrap_or(0) > 1 {
            gathered += 1;
            assert_eq!(data["activity_state"], "completed", "{data}");
            assert_eq!(data["already_deleted"], false, "{data}");
        }
        let left = tables
            .number(&format!(
                "SELECT count(*) FROM contacts WHERE contact_id = '{id}'"
            ))
            .await;
        let tombstones = tables
            .number(&format!(
                "SELECT count(*) FROM erased_contacts WHERE contact_id = '{id}'"
            ))
            .await;
        assert_eq!((left, tombstones), (0, 1), "contact {i}");
        assert!(deleted(&d, id), "contact {i} deleted in the sandbox");
    }
    assert!(gathered >= 20, "{gathered} of 30 gathered");
    let posts = posts_of(&d, "contact_delete") - before;
    assert!(posts <= 2, "{posts} contact_delete POSTs");
    d.stop().await;
}
