//! `contact.erase` through RabbitMQ against the sandbox (issue 22, the GDPR path): the contact
//! is deleted in Constant Contact; its rows, values, memberships and report events leave the
//! mirror and stay out of later full passes (tombstone); the ledger's stored results lose the
//! address and the names, and a replay of an earlier command answers the scrubbed result
//! without an API call; bad input names the field; an unknown contact is `not_found`; a
//! redelivered erasure does not delete twice.

use std::time::Duration;

use ctct_sandbox::{TrackingEvent, TrackingKind};
use ctct_sync::api::model::ListInput;
use ctct_sync::command::outcome::{CommandResult, Outcome};
use serde_json::{Value, json};

use crate::support::api::TestApi;
use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;

const SECS_30: Duration = Duration::from_secs(30);
const ERASED: &str = "erin.rasmussen@example.com";
const KEPT: &str = "kim.keeper@example.com";

/// How many requests the sandbox has had matching `method` and a path starting with `path`.
fn requests(d: &TestDaemon, method: &str, path: &str) -> usize {
    d.api
        .sandbox
        .admin()
        .request_log()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(path))
        .count()
}

/// The `n`-th (0-based) result received for `id`, waiting for it.
async fn nth_result(d: &mut TestDaemon, id: &str, n: usize) -> CommandResult {
    let enough = |d: &TestDaemon| d.received.iter().filter(|r| r.command_id == id).count() > n;
    assert!(
        d.receive_until(SECS_30, enough).await,
        "no result {n} of {id}"
    );
    d.received
        .iter()
        .filter(|r| r.command_id == id)
        .nth(n)
        .expect("received")
        .clone()
}

/// Rows of the mirror naming `contact_id`, by table.
async fn mirror_rows(d: &TestDaemon, contact_id: &str) -> Vec<(&'static str, i64)> {
    let tables = d.api.mirror_tables();
    let mut out = Vec::new();
    for table in [
        "contacts",
        "contact_custom_field_values",
        "contact_list_memberships",
        "contact_taggings",
        "tracking_events",
        "erased_contacts",
    ] {
        let n = tables
            .number(&format!(
                "SELECT count(*) FROM {table} WHERE contact_id = '{contact_id}'"
            ))
            .await;
        out.push((table, n));
    }
    out
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_erased_contact_leaves_no_trace_in_the_mirror_or_the_ledger_and_does_not_come_back
);
async fn an_erased_contact_leaves_no_trace_in_the_mirror_or_the_ledger_and_does_not_come_back(
    engine: Engine,
) {
    let mut d = TestDaemon::start_with_mirror(TestApi::start_on(engine).await, &[]).await;
    let list = d
        .api
        .api()
        .create_list(&ListInput::new("Erasure news"))
        .await
        .expect("a list")
        .list_id;
    let field = d
        .succeeded(
            "e-field",
            "custom_field.create",
            json!({"label": "Hobby", "type": "string"}),
        )
        .await["custom_field_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let upsert = json!({"email": ERASED, "first_name": "Erin", "last_name": "Rasmussen",
        "custom_fields": {field.as_str(): "Skiing"}, "list_ids": [list]});
    let erin = d
        .succeeded("e-upsert", "contact.upsert", upsert.clone())
        .await["contact_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let kim = d
        .succeeded(
            "e-kept",
            "contact.upsert",
            json!({"email": KEPT, "first_name": "Kim", "list_ids": [list]}),
        )
        .await["contact_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    d.succeeded("e-get", "contact.get", json!({"contact_id": erin}))
        .await;
    let vip = d
        .succeeded("e-tag", "tag.create", json!({"name": "VIP"}))
        .await["tag_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    d.succeeded(
        "e-tagged",
        "contact.tag",
        json!({"contact_ids": [erin], "tag_ids": [vip]}),
    )
    .await;
    d.api.sandbox.admin().complete_activities_now();

    // A campaign sent to the list, opened by both: the mirror's reports hold their events.
    let admin = d.api.sandbox.admin();
    let account = admin.primary_account();
    let sent_at = chrono::Utc::now() - chrono::Duration::hours(2);
    let (_, activity, recipients) = admin
        .add_sent_campaign(&account, "Erasure campaign", sent_at, None)
        .expect("a sent campaign");
    assert_eq!(recipients, 2, "sent to Erin and Kim");
    let open = |id: &str| TrackingEvent::new(TrackingKind::Open, id.parse().expect("a UUID"));
    admin
        .add_tracking_events(&account, activity, &[open(&erin), open(&kim)])
        .expect("events added");
    d.succeeded("e-mirror-1", "mirror.run", json!({"full": true}))
        .await;
    let before = mirror_rows(&d, &erin).await;
    for (table, n) in &before {
        let want_some = *table != "erased_contacts";
        assert_eq!(*n > 0, want_some, "{table} before the erasure: {before:?}");
    }

    let deletes_before = requests(&d, "DELETE", "/v3/contacts");
    let erased = d
        .succeeded("e-erase", "contact.erase", json!({"email": ERASED}))
        .await;
    assert_eq!(erased["contact_id"], erin.as_str());
    assert_eq!(erased["erased"], true);
    assert_eq!(erased["already_deleted"], false);
    assert_eq!(erased["already_erased"], false);
    assert_eq!(erased["mirror"]["contacts"], 1);
    assert_eq!(erased["mirror"]["custom_field_values"], 1);
    assert_eq!(erased["mirror"]["list_memberships"], 1);
    assert_eq!(erased["mirror"]["taggings"], 1);
    assert!(
        erased["mirror"]["tracking_events"].as_u64() >= Some(1),
        "its open: {erased}"
    );
    assert!(
        erased["ledger_results_scrubbed"].as_u64() >= Some(2),
        "the upsert's and the get's: {erased}"
    );
    let text = erased.to_string().to_lowercase();
    assert!(
        !text.contains("erin") && !text.contains("rasmussen"),
        "{text}"
    );
    assert_eq!(requests(&d, "DELETE", "/v3/contacts"), deletes_before + 1);
    let held = admin
        .contact(&account, erin.parse().expect("a UUID"))
        .expect("the sandbox answers")
        .expect("kept, deleted");
    assert!(
        held["deleted_at"].is_string(),
        "deleted in Constant Contact: {held}"
    );

    // Gone from the mirror, tombstoned; still gone after every pass, with new events too.
    let after = |n_erased: i64| {
        vec![
            ("contacts", 0),
            ("contact_custom_field_values", 0),
            ("contact_list_memberships", 0),
            ("contact_taggings", 0),
            ("tracking_events", 0),
            ("erased_contacts", n_erased),
        ]
    };
    assert_eq!(mirror_rows(&d, &erin).await, after(1));
    let kim_events = |d: &TestDaemon| {
        let tables = d.api.mirror_tables();
        let kim = kim.clone();
        async move {
            tables
                .number(&format!(
                    "SELECT count(*) FROM tracking_events WHERE contact_id = '{kim}'"
                ))
                .await
        }
    };
    let kim_before = kim_events(&d).await;
    admin
        .add_tracking_events(&account, activity, &[open(&erin), open(&kim)])
        .expect("more events added");
    d.succeeded("e-mirror-2", "mirror.run", json!({"full": true}))
        .await;
    d.succeeded("e-mirror-3", "mirror.run", json!({"resource": "contacts"}))
        .await;
    assert_eq!(
        kim_events(&d).await,
        kim_before + 1,
        "the reports were read again"
    );
    assert_eq!(mirror_rows(&d, &erin).await, after(1));
    assert_eq!(
        d.api
            .mirror_tables()
            .number(&format!(
                "SELECT count(*) FROM contacts WHERE contact_id = '{kim}'"
            ))
            .await,
        1,
        "the other contact stays"
    );

    // The ledger: no address, no name of Erin's anywhere; Kim's result is untouched.
    let state = d.api.state_tables();
    let results = state
        .column("SELECT result FROM command_ledger WHERE result IS NOT NULL")
        .await;
    for result in &results {
        let lower = result.to_lowercase();
        assert!(
            !lower.contains(ERASED) && !lower.contains("rasmussen") && !lower.contains("erin"),
            "{result}"
        );
    }
    assert!(results.iter().any(|r| r.contains(KEPT)), "{results:?}");
    let bulk = state
        .number(&format!(
            "SELECT count(*) FROM bulk_items WHERE lower(email) = '{ERASED}'"
        ))
        .await;
    assert_eq!(bulk, 0);

    // A replay of the earlier upsert answers the scrubbed result, without an API call.
    let calls = requests(&d, "GET", "/v3/") + requests(&d, "PUT", "/v3/");
    let first_upsert = nth_result(&mut d, "e-upsert", 0).await;
    d.publish("e-upsert", "contact.upsert", upsert).await;
    let replay = nth_result(&mut d, "e-upsert", 1).await;
    assert!(replay.replayed);
    assert_eq!(replay.outcome, Outcome::Succeeded);
    assert_eq!(replay.attempts, first_upsert.attempts);
    assert_eq!(
        replay.data,
        Some(json!({"contact_id": erin, "erased": true}))
    );
    assert_eq!(
        requests(&d, "GET", "/v3/") + requests(&d, "PUT", "/v3/"),
        calls,
        "no API call for a replay"
    );

    // The erasure sent again replays; another erasure by id finds it erased already.
    d.publish("e-erase", "contact.erase", json!({"email": ERASED}))
        .await;
    let again = nth_result(&mut d, "e-erase", 1).await;
    assert!(again.replayed);
    assert_eq!(again.data.as_ref(), Some(&erased));
    let twice = d
        .succeeded("e-erase-2", "contact.erase", json!({"contact_id": erin}))
        .await;
    assert_eq!(
        (&twice["already_deleted"], &twice["already_erased"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(twice["mirror"]["contacts"], 0);
    assert_eq!(
        requests(&d, "DELETE", "/v3/contacts"),
        deletes_before + 1,
        "one DELETE in all"
    );
    assert_eq!(mirror_rows(&d, &erin).await, after(1));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_input_is_checked_naming_the_field_and_an_unknown_contact_is_not_found() {
    let mut d = TestDaemon::start().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("x-none", json!({}), "data.contact_id"),
        ("x-id", json!({"contact_id": "17"}), "data.contact_id"),
        ("x-email", json!({"email": "not an address"}), "data.email"),
        (
            "x-both",
            json!({"contact_id": "07936f78-662a-11eb-af0a-fa163e56c9b0", "email": "pat@example.com"}),
            "data.email",
        ),
        (
            "x-extra",
            json!({"email": "pat@example.com", "reason": "asked"}),
            "data.reason",
        ),
    ];
    for (id, data, _) in &cases {
        d.publish(id, "contact.erase", data.clone()).await;
    }
    for (id, _, field) in &cases {
        let result = d.result(id).await;
        assert_eq!(result.outcome, Outcome::Rejected, "{id}");
        let error = result.error.expect("a rejection explains itself");
        assert!(
            error.fields.iter().any(|f| f.field == *field),
            "{id}: {:?}",
            error.fields
        );
    }
    assert_eq!(
        requests(&d, "GET", "/v3/contacts"),
        0,
        "nothing reached the API"
    );

    d.publish(
        "x-nobody",
        "contact.erase",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    d.publish(
        "x-no-id",
        "contact.erase",
        json!({"contact_id": "07936f78-662a-11eb-af0a-fa163e56c9b0"}),
    )
    .await;
    for id in ["x-nobody", "x-no-id"] {
        let result = d.result(id).await;
        assert_eq!(result.outcome, Outcome::Failed, "{id}");
        let error = result.error.expect("a failure explains itself");
        assert_eq!(error.code.as_str(), "not_found", "{id}: {}", error.message);
        assert!(!error.message.contains("nobody@"), "{}", error.message);
    }
    assert_eq!(requests(&d, "DELETE", "/v3/contacts"), 0, "nothing deleted");
    d.stop().await;
}
