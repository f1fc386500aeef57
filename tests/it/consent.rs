//! Consent through RabbitMQ against the sandbox: `contact.upsert`, `contact.update` and the
//! bulk import never turn an unsubscribed address into a subscribed one (and their results
//! say the permission was left as it was); `contact.sign_up` re-subscribes one only with
//! `consent`; `contact.opt_out` unsubscribes, and a later upsert leaves it unsubscribed.

use std::time::Duration;

use ctct_sync::api::model::{
    ContactCreate, EmailAddressInput, ListInput, PermissionToSend, Source,
};
use ctct_sync::command::outcome::{CommandResult, Outcome};
use serde_json::{Value, json};

use crate::support::api::TestApi;
use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;

const SECS_30: Duration = Duration::from_secs(30);

async fn new_list(d: &TestDaemon, name: &str) -> String {
    d.api
        .api()
        .create_list(&ListInput::new(name))
        .await
        .expect("a list")
        .list_id
}

/// Adds a contact whose address is `permission`, as the account's own API call would.
async fn add_contact(api: &TestApi, email: &str, permission: PermissionToSend) -> String {
    let mut body = ContactCreate::new(Source::Account);
    body.email_address = Some(EmailAddressInput::new(email, Some(permission)));
    body.first_name = Some("Before".into());
    api.api()
        .create_contact(&body)
        .await
        .expect("a contact")
        .contact_id
}

/// The contact as the sandbox holds it.
fn sandbox_contact(d: &TestDaemon, id: &str) -> Value {
    let admin = d.api.sandbox.admin();
    admin
        .contact(&admin.primary_account(), id.parse().expect("a UUID"))
        .expect("the sandbox answers")
        .expect("the contact exists")
}

fn permission(contact: &Value) -> &str {
    contact["email_address"]["permission_to_send"]
        .as_str()
        .unwrap_or_else(|| panic!("no permission: {contact}"))
}

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

fn succeeded(result: &CommandResult) -> &Value {
    assert_eq!(
        result.outcome,
        Outcome::Succeeded,
        "{}: {:?}",
        result.command_id,
        result.error
    );
    result.data.as_ref().expect("data")
}

fn rejected_fields(result: &CommandResult) -> Vec<(String, String)> {
    assert_eq!(result.outcome, Outcome::Rejected, "{}", result.command_id);
    let error = result.error.as_ref().expect("a rejection explains itself");
    assert_eq!(error.code.as_str(), "invalid_data", "{}", error.message);
    error
        .fields
        .iter()
        .map(|f| (f.field.clone(), f.reason.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_and_update_one_by_one_leave_an_unsubscribed_contact_unsubscribed() {
    let api = TestApi::start().await;
    let mut d = TestDaemon::start_with(api, &[("CTCT_SYNC__BULK__ENABLED", "false")]).await;
    let list = new_list(&d, "Consent one by one").await;
    let gone = add_contact(&d.api, "gone@example.com", PermissionToSend::Unsubscribed).await;
    let kept = add_contact(&d.api, "kept@example.com", PermissionToSend::Implicit).await;

    d.publish(
        "u-upsert",
        "contact.upsert",
        json!({"email": "gone@example.com", "first_name": "Upserted", "list_ids": [list]}),
    )
    .await;
    let data = succeeded(&d.result("u-upsert").await).clone();
    assert_eq!(data["action"], "updated", "{data}");
    assert_eq!(data["permission"], "unchanged", "{data}");
    assert_eq!(permission(&data["contact"]), "unsubscribed", "{data}");

    d.publish(
        "u-update",
        "contact.update",
        json!({"contact_id": gone, "last_name": "Updated"}),
    )
    .await;
    let data = succeeded(&d.result("u-update").await).clone();
    assert_eq!(data["action"], "updated", "{data}");
    assert_eq!(data["permission"], "unchanged", "{data}");

    // Nothing to change: no request, and still said.
    d.publish(
        "u-same",
        "contact.upsert",
        json!({"email": "gone@example.com", "first_name": "Upserted"}),
    )
    .await;
    let data = succeeded(&d.result("u-same").await).clone();
    assert_eq!(data["action"], "unchanged", "{data}");
    assert_eq!(data["permission"], "unchanged", "{data}");

    // A subscribed contact's result has no such field.
    d.publish(
        "u-kept",
        "contact.upsert",
        json!({"email": "kept@example.com", "first_name": "Kept"}),
    )
    .await;
    let data = succeeded(&d.result("u-kept").await).clone();
    assert!(data.get("permission").is_none(), "{data}");

    let contact = sandbox_contact(&d, &gone);
    assert_eq!(permission(&contact), "unsubscribed", "{contact}");
    assert_eq!(contact["first_name"], "Upserted");
    assert_eq!(contact["last_name"], "Updated");
    assert_eq!(
        permission(&sandbox_contact(&d, &kept)),
        "implicit",
        "kept as it was too"
    );
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_bulk_import_leaves_unsubscribed_contacts_unsubscribed_and_says_so
);
async fn the_bulk_import_leaves_unsubscribed_contacts_unsubscribed_and_says_so(engine: Engine) {
    let api = TestApi::start_on(engine).await;
    let d = TestDaemon::start_with(
        api,
        &[
            ("CTCT_SYNC__BULK__WINDOW_MS", "1000"),
            ("CTCT_SYNC__BULK__IDLE_ONE_BY_ONE", "false"),
            ("CTCT_SYNC__BULK__POLL_INITIAL_MS", "300"),
            ("CTCT_SYNC__BULK__POLL_MAX_MS", "1000"),
        ],
    )
    .await;
    let mut d = d;
    let list = new_list(&d, "Consent bulk").await;
    let gone = [
        add_contact(&d.api, "gone.1@example.com", PermissionToSend::Unsubscribed).await,
        add_contact(&d.api, "gone.2@example.com", PermissionToSend::Unsubscribed).await,
    ];
    for (id, email) in [
        ("b-1", "gone.1@example.com"),
        ("b-2", "gone.2@example.com"),
        ("b-new", "new.bulk@example.com"),
    ] {
        d.publish(
            id,
            "contact.upsert",
            json!({"email": email, "first_name": "Imported", "list_ids": [list]}),
        )
        .await;
    }
    for id in ["b-1", "b-2"] {
        let data = succeeded(&d.result(id).await).clone();
        assert_eq!(data["action"], "imported", "{id}: {data}");
        assert_eq!(data["permission"], "unchanged", "{id}: {data}");
    }
    let new = succeeded(&d.result("b-new").await).clone();
    assert_eq!(new["action"], "imported", "{new}");
    assert!(new.get("permission").is_none(), "{new}");
    for id in &gone {
        let contact = sandbox_contact(&d, id);
        assert_eq!(permission(&contact), "unsubscribed", "{contact}");
        assert_eq!(contact["first_name"], "Imported", "{contact}");
    }
    let new = sandbox_contact(&d, new["contact_id"].as_str().expect("an id"));
    assert_eq!(permission(&new), "implicit", "{new}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_re_subscribes_an_unsubscribed_address_only_with_consent() {
    let mut d = TestDaemon::start().await;
    let list = new_list(&d, "Consent sign-up").await;
    let gone = add_contact(
        &d.api,
        "gone.sign@example.com",
        PermissionToSend::Unsubscribed,
    )
    .await;
    let forms_before = requests(&d, "POST", "/v3/contacts/sign_up_form");

    d.publish(
        "s-without",
        "contact.sign_up",
        json!({"email": "gone.sign@example.com", "first_name": "Signed", "phone_number": "555-0100",
               "list_ids": [list]}),
    )
    .await;
    let data = succeeded(&d.result("s-without").await).clone();
    assert_eq!(data["permission"], "unchanged", "{data}");
    assert_eq!(data["contact_id"], gone.as_str(), "{data}");
    let contact = sandbox_contact(&d, &gone);
    assert_eq!(permission(&contact), "unsubscribed", "{contact}");
    assert_eq!(contact["first_name"], "Signed", "the other fields applied");
    assert_eq!(contact["phone_numbers"][0]["phone_number"], "555-0100");
    assert_eq!(
        requests(&d, "POST", "/v3/contacts/sign_up_form"),
        forms_before,
        "the form re-subscribes: not used"
    );

    // A new address needs no consent field: the form subscribes it.
    d.publish(
        "s-new",
        "contact.sign_up",
        json!({"email": "new.sign@example.com", "list_ids": [list]}),
    )
    .await;
    let data = succeeded(&d.result("s-new").await).clone();
    assert_eq!(data["action"], "created", "{data}");
    assert!(data.get("permission").is_none(), "{data}");
    let new = sandbox_contact(&d, data["contact_id"].as_str().expect("an id"));
    assert_eq!(permission(&new), "explicit", "{new}");

    d.publish(
        "s-with",
        "contact.sign_up",
        json!({"email": "gone.sign@example.com", "list_ids": [list],
               "consent": {"source": "website form /newsletter", "at": "2026-12-01T09:30:00Z"}}),
    )
    .await;
    let data = succeeded(&d.result("s-with").await).clone();
    assert_eq!(data["action"], "updated", "{data}");
    assert!(data.get("permission").is_none(), "{data}");
    let contact = sandbox_contact(&d, &gone);
    assert_eq!(permission(&contact), "explicit", "{contact}");
    d.stop().await;
}

/// A command id, the `consent` it carries, and the (field, reason) pairs expected.
type ConsentCase = (&'static str, Value, Vec<(&'static str, &'static str)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_s_consent_is_checked_naming_its_fields() {
    let mut d = TestDaemon::start().await;
    let list = "07936f78-662a-11eb-af0a-fa163e56c9b0";
    let cases: Vec<ConsentCase> = vec![
        (
            "c-empty",
            json!({}),
            vec![
                ("data.consent.source", "is required"),
                ("data.consent.at", "is required"),
            ],
        ),
        (
            "c-bad",
            json!({"source": " ", "at": "yesterday"}),
            vec![
                ("data.consent.source", "must not be empty"),
                (
                    "data.consent.at",
                    "must be an RFC 3339 time such as 2026-12-03T10:00:00Z",
                ),
            ],
        ),
        (
            "c-long",
            json!({"source": "x".repeat(256), "at": "2026-12-01T09:30:00+01:00"}),
            vec![(
                "data.consent.source",
                "must be at most 255 characters (got 256)",
            )],
        ),
    ];
    for (id, consent, _) in &cases {
        d.publish(
            id,
            "contact.sign_up",
            json!({"email": "pat@example.com", "list_ids": [list], "consent": consent}),
        )
        .await;
    }
    d.publish(
        "c-type",
        "contact.sign_up",
        json!({"email": "pat@example.com", "list_ids": [list], "consent": {"source": 5, "at": "2026-12-01T09:30:00Z"}}),
    )
    .await;
    for (id, _, expected) in &cases {
        let got = rejected_fields(&d.result(id).await);
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
            .collect();
        assert_eq!(got, expected, "{id}");
    }
    let got = rejected_fields(&d.result("c-type").await);
    assert_eq!(got[0].0, "data.consent.source", "{got:?}");
    assert_eq!(requests(&d, "POST", "/v3/contacts"), 0, "no API call");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_out_unsubscribes_and_a_later_upsert_leaves_it_unsubscribed() {
    let api = TestApi::start().await;
    let mut d = TestDaemon::start_with(api, &[("CTCT_SYNC__BULK__ENABLED", "false")]).await;
    let pat = add_contact(&d.api, "pat.out@example.com", PermissionToSend::Implicit).await;
    let sam = add_contact(&d.api, "sam.out@example.com", PermissionToSend::Explicit).await;

    d.publish(
        "o-email",
        "contact.opt_out",
        json!({"email": "Pat.Out@example.com", "reason": "asked on the phone"}),
    )
    .await;
    d.publish("o-id", "contact.opt_out", json!({"contact_id": sam}))
        .await;
    let data = succeeded(&d.result("o-email").await).clone();
    assert_eq!(data["contact_id"], pat.as_str());
    assert_eq!(data["action"], "unsubscribed", "{data}");
    assert_eq!(data["already_unsubscribed"], false, "{data}");
    let contact = sandbox_contact(&d, &pat);
    assert_eq!(permission(&contact), "unsubscribed", "{contact}");
    assert_eq!(
        contact["email_address"]["opt_out_reason"], "asked on the phone",
        "{contact}"
    );
    assert_eq!(contact["email_address"]["opt_out_source"], "Account");
    assert_eq!(contact["first_name"], "Before", "the rest as it was");
    let data = succeeded(&d.result("o-id").await).clone();
    assert_eq!(data["action"], "unsubscribed", "{data}");
    assert_eq!(permission(&sandbox_contact(&d, &sam)), "unsubscribed");

    // Again: nothing to do, no request.
    let puts = requests(&d, "PUT", "/v3/contacts/");
    d.publish("o-again", "contact.opt_out", json!({"contact_id": pat}))
        .await;
    let data = succeeded(&d.result("o-again").await).clone();
    assert_eq!(data["action"], "unchanged", "{data}");
    assert_eq!(data["already_unsubscribed"], true, "{data}");
    assert_eq!(requests(&d, "PUT", "/v3/contacts/"), puts);

    d.publish(
        "o-upsert",
        "contact.upsert",
        json!({"email": "pat.out@example.com", "first_name": "After"}),
    )
    .await;
    let data = succeeded(&d.result("o-upsert").await).clone();
    assert_eq!(data["permission"], "unchanged", "{data}");
    let contact = sandbox_contact(&d, &pat);
    assert_eq!(permission(&contact), "unsubscribed", "{contact}");
    assert_eq!(contact["first_name"], "After");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_out_input_is_checked_naming_the_field_and_an_unknown_contact_is_not_found() {
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
            "x-long",
            json!({"email": "pat@example.com", "reason": "r".repeat(256)}),
            "data.reason",
        ),
        (
            "x-empty",
            json!({"email": "pat@example.com", "reason": ""}),
            "data.reason",
        ),
    ];
    for (id, data, _) in &cases {
        d.publish(id, "contact.opt_out", data.clone()).await;
    }
    for (id, _, field) in &cases {
        let fields = rejected_fields(&d.result(id).await);
        assert!(fields.iter().any(|(f, _)| f == field), "{id}: {fields:?}");
    }
    let long = rejected_fields(&d.result("x-long").await);
    assert_eq!(long[0].1, "must be at most 255 characters (got 256)");
    assert_eq!(
        requests(&d, "GET", "/v3/contacts"),
        0,
        "nothing reached the API"
    );

    d.publish(
        "x-nobody",
        "contact.opt_out",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    d.publish(
        "x-no-id",
        "contact.opt_out",
        json!({"contact_id": "07936f78-662a-11eb-af0a-fa163e56c9b0"}),
    )
    .await;
    for id in ["x-nobody", "x-no-id"] {
        let result = d.result(id).await;
        assert_eq!(result.outcome, Outcome::Failed, "{id}");
        let error = result.error.expect("a failure explains itself");
        assert_eq!(error.code.as_str(), "not_found", "{id}: {}", error.message);
        assert!(!error.retryable);
    }
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_opt_out_sent_again_replays_its_result_without_calling_the_api
);
async fn an_opt_out_sent_again_replays_its_result_without_calling_the_api(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    let pat = add_contact(&d.api, "pat.again@example.com", PermissionToSend::Implicit).await;
    let data = json!({"contact_id": pat, "reason": "moved away"});
    d.publish("r-out", "contact.opt_out", data.clone()).await;
    let first = d.result("r-out").await;
    succeeded(&first);
    assert!(!first.replayed);
    let calls = requests(&d, "GET", "/v3/contacts") + requests(&d, "PUT", "/v3/contacts");

    d.publish("r-out", "contact.opt_out", data).await;
    let again = |d: &TestDaemon| {
        d.received
            .iter()
            .filter(|r| r.command_id == "r-out")
            .count()
            >= 2
    };
    assert!(d.receive_until(SECS_30, again).await, "no replay");
    let replay = d
        .received
        .iter()
        .filter(|r| r.command_id == "r-out")
        .nth(1)
        .expect("a second result")
        .clone();
    assert!(replay.replayed);
    assert_eq!((replay.outcome, &replay.data), (first.outcome, &first.data));
    assert_eq!(
        requests(&d, "GET", "/v3/contacts") + requests(&d, "PUT", "/v3/contacts"),
        calls,
        "no API call for a replay"
    );
    d.stop().await;
}
