//! Contacts: create (409 on any existing e-mail, deleted included), PUT replaces core fields
//! and keeps omitted subresources and revives, soft delete, sign_up_form merge 201/200,
//! validation and media-type errors, command ids in the effects log.

use serde_json::{Value, json};

use super::harness::{Env, read};

async fn field(env: &Env, label: &str) -> String {
    let r = env
        .post(
            "/contact_custom_fields",
            json!({"label": label, "type": "string"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["custom_field_id"].as_str().expect("id").to_owned()
}

fn ids(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|v| v.as_str().expect("string id").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn put_replaces_core_fields_keeps_omitted_subresources_and_revives_a_deleted_contact() {
    let env = Env::start().await;
    let (l1, l2) = (env.list("One").await, env.list("Two").await);
    let hobby = field(&env, "Hobby").await;
    let created = env
        .post(
            "/contacts",
            json!({
                "email_address": {"address": "dlang@example.com", "permission_to_send": "implicit"},
                "first_name": "Debora", "last_name": "Lang", "job_title": "Musician",
                "company_name": "Acme Corp.", "birthday_month": 11, "birthday_day": 24,
                "anniversary": "11/15/2006", "create_source": "Account",
                "custom_fields": [{"custom_field_id": hobby, "value": "Skiing"}],
                "list_memberships": [l1],
                "phone_numbers": [{"phone_number": "555-0100", "kind": "mobile"}],
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["anniversary"], "2006-11-15");
    assert!(
        created.body.get("custom_fields").is_none(),
        "201 carries core fields only"
    );
    let id = created.body["contact_id"].as_str().expect("id").to_owned();
    let all = format!("/contacts/{id}?include=custom_fields,list_memberships,phone_numbers");

    let put = env
        .put(
            &format!("/contacts/{id}"),
            json!({"email_address": {"address": "dlang@example.com"}, "first_name": "Deb", "update_source": "Contact"}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    let after = env.get(&all).await.body;
    assert_eq!(after["first_name"], "Deb");
    for cleared in [
        "last_name",
        "job_title",
        "company_name",
        "birthday_month",
        "birthday_day",
        "anniversary",
    ] {
        assert!(
            after.get(cleared).is_none(),
            "{cleared} was nulled: {after}"
        );
    }
    assert_eq!(after["update_source"], "Contact");
    assert_eq!(
        after["custom_fields"][0]["value"], "Skiing",
        "omitted subresources are kept"
    );
    assert_eq!(ids(&after["list_memberships"]), vec![l1.clone()]);
    assert_eq!(after["phone_numbers"][0]["phone_number"], "555-0100");

    let put = env
        .put(
            &format!("/contacts/{id}"),
            json!({"email_address": {"address": "dlang@example.com"}, "update_source": "Account", "list_memberships": [l2]}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(
        ids(&env.get(&all).await.body["list_memberships"]),
        vec![l2.clone()],
        "an included array replaces"
    );

    assert_eq!(env.delete(&format!("/contacts/{id}")).await.status, 204);
    let deleted = env.get(&all).await;
    assert_eq!(
        deleted.status, 200,
        "a deleted contact is still readable by id"
    );
    assert!(deleted.body["deleted_at"].is_string());
    assert_eq!(
        deleted.body["list_memberships"],
        json!([]),
        "deletion strips lists"
    );
    assert_eq!(env.get("/contacts").await.body["contacts"], json!([]));
    assert_eq!(
        env.get("/contacts?status=deleted").await.body["contacts"][0]["contact_id"],
        id.as_str()
    );

    let missing_source = env
        .put(
            &format!("/contacts/{id}"),
            json!({"email_address": {"address": "dlang@example.com"}}),
        )
        .await;
    assert_eq!(missing_source.status, 400);
    assert_eq!(
        missing_source.body[0]["error_key"],
        "contacts.api.validation.error"
    );
    assert!(missing_source.text.contains("update_source"));

    let revive = env
        .put(
            &format!("/contacts/{id}"),
            json!({"email_address": {"address": "dlang@example.com"}, "first_name": "Back", "update_source": "Account"}),
        )
        .await;
    assert_eq!(revive.status, 200, "{}", revive.text);
    assert!(revive.body.get("deleted_at").is_none());
    assert_eq!(
        env.get("/contacts").await.body["contacts"][0]["first_name"],
        "Back"
    );
}

#[tokio::test]
async fn an_email_owned_by_a_deleted_contact_gets_a_409_naming_the_owner() {
    let env = Env::start().await;
    let id = env.contact("taken@example.com").await;
    assert_eq!(env.delete(&format!("/contacts/{id}")).await.status, 204);
    let again = env
        .post(
            "/contacts",
            json!({"email_address": {"address": "TAKEN@example.com"}, "create_source": "Contact"}),
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(
        again.body,
        json!([{"error_key": "contacts.api.conflict", "error_message": format!("Email already exists for contact {id}")}])
    );
    let other = env.contact("other@example.com").await;
    let steal = env
        .put(
            &format!("/contacts/{other}"),
            json!({"email_address": {"address": "taken@example.com"}, "update_source": "Account"}),
        )
        .await;
    assert_eq!(steal.status, 409, "PUT onto another contact's e-mail");
}

#[tokio::test]
async fn create_validates_the_body_and_reports_every_problem_at_once() {
    let env = Env::start().await;
    let r = env
        .post(
            "/contacts",
            json!({"email_address": {"address": "ok@example.com"}, "first_name": "x".repeat(51)}),
        )
        .await;
    assert_eq!(r.status, 400);
    let message = r.body[0]["error_message"].as_str().expect("message");
    assert!(message.contains("create_source is missing"), "{message}");
    assert!(message.contains("first_name"), "{message}");
    for body in [
        json!({"create_source": "Account"}),
        json!({"create_source": "Robot", "first_name": "A"}),
        json!({"create_source": "Account", "email_address": {"address": "no-at-sign"}}),
        json!({"create_source": "Account", "first_name": "A", "birthday_month": 13, "birthday_day": 1}),
        json!({"create_source": "Account", "first_name": "A", "birthday_month": 5}),
        json!({"create_source": "Account", "first_name": "A", "anniversary": "someday"}),
        json!({"create_source": "Account", "first_name": "A", "list_memberships": ["6f2d1c6e-0000-4000-8000-000000000000"]}),
        json!({"create_source": "Account", "email_address": {"address": "a@b.example", "permission_to_send": "maybe"}}),
    ] {
        let r = env.post("/contacts", body.clone()).await;
        assert_eq!(r.status, 400, "{body} → {}", r.text);
    }
}

#[tokio::test]
async fn sign_up_form_creates_with_201_then_merges_lists_and_fields_with_200() {
    let env = Env::start().await;
    let (l1, l2) = (env.list("News").await, env.list("Offers").await);
    let (color, size) = (field(&env, "Color").await, field(&env, "Size").await);
    let none = env
        .post(
            "/contacts/sign_up_form",
            json!({"email_address": "pat@example.com"}),
        )
        .await;
    assert_eq!(none.status, 400, "at least one list is required");

    let first = env
        .post(
            "/contacts/sign_up_form",
            json!({"email_address": "pat@example.com", "first_name": "Pat", "last_name": "Lee",
                   "list_memberships": [l1], "custom_fields": [{"custom_field_id": color, "value": "Red"}]}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["action"], "created");
    let id = first.body["contact_id"].as_str().expect("id").to_owned();
    let c = env.get(&format!("/contacts/{id}")).await.body;
    assert_eq!(c["email_address"]["permission_to_send"], "explicit");
    assert_eq!(c["email_address"]["opt_in_source"], "Contact");
    assert_eq!(c["create_source"], "Contact");

    // Unsubscribe, then sign up again: permission becomes explicit, arrays merge.
    let unsub = env
        .put(
            &format!("/contacts/{id}"),
            json!({"email_address": {"address": "pat@example.com", "permission_to_send": "unsubscribed"},
                   "first_name": "Pat", "last_name": "Lee", "update_source": "Contact"}),
        )
        .await;
    assert_eq!(unsub.status, 200, "{}", unsub.text);
    assert_eq!(
        unsub.body["email_address"]["permission_to_send"],
        "unsubscribed"
    );
    assert!(unsub.body["email_address"]["opt_out_date"].is_string());
    let second = env
        .post(
            "/contacts/sign_up_form",
            json!({"email_address": "PAT@example.com", "first_name": "Patricia",
                   "list_memberships": [l2], "custom_fields": [{"custom_field_id": size, "value": "M"}]}),
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.body, json!({"contact_id": id, "action": "updated"}));
    let c = env
        .get(&format!(
            "/contacts/{id}?include=custom_fields,list_memberships"
        ))
        .await
        .body;
    assert_eq!(c["first_name"], "Patricia");
    assert_eq!(c["last_name"], "Lee", "unsupplied fields are kept");
    assert_eq!(c["email_address"]["permission_to_send"], "explicit");
    let mut lists = ids(&c["list_memberships"]);
    lists.sort();
    let mut want = vec![l1, l2];
    want.sort();
    assert_eq!(lists, want, "lists are appended");
    assert_eq!(
        c["custom_fields"].as_array().expect("array").len(),
        2,
        "fields are merged"
    );

    assert_eq!(env.delete(&format!("/contacts/{id}")).await.status, 204);
    let revived = env
        .post(
            "/contacts/sign_up_form",
            json!({"email_address": "pat@example.com", "list_memberships": [want[0]]}),
        )
        .await;
    assert_eq!(revived.status, 200);
    assert!(
        env.get(&format!("/contacts/{id}"))
            .await
            .body
            .get("deleted_at")
            .is_none()
    );
}

#[tokio::test]
async fn malformed_and_unknown_contact_ids_are_404s() {
    let env = Env::start().await;
    let r = env.get("/contacts/not-a-uuid").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body[0]["error_key"], "contacts.api.not_found");
    assert_eq!(
        r.body[0]["error_message"],
        "contact_id is in an invalid format."
    );
    let r = env
        .get("/contacts/6f2d1c6e-0000-4000-8000-000000000000")
        .await;
    assert_eq!(r.status, 404);
    let r = env
        .get("/contacts/6f2d1c6e-0000-4000-8000-000000000000?include=bogus")
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_415_and_malformed_json_400() {
    let env = Env::start().await;
    let r = read(
        env.http
            .post(env.url("/contacts"))
            .bearer_auth(&env.token)
            .header("content-type", "text/plain")
            .body(r#"{"create_source":"Account","first_name":"A"}"#)
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(r.status, 415);
    assert!(r.body.is_array());
    let r = read(
        env.http
            .post(env.url("/contacts"))
            .bearer_auth(&env.token)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body[0]["error_key"], "contacts.api.validation.error");
}

#[tokio::test]
async fn every_write_is_in_the_effects_log_with_the_command_id() {
    let env = Env::start().await;
    let r = read(
        env.http
            .post(env.url("/contacts"))
            .bearer_auth(&env.token)
            .header("x-ctct-command-id", "cmd-42")
            .json(
                &json!({"create_source": "Account", "email_address": {"address": "e@example.com"}}),
            )
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(r.status, 201);
    let effects = env.admin.effects_for_command("cmd-42");
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].kind, "contact.created");
    assert_eq!(
        effects[0].resource_id.as_deref(),
        r.body["contact_id"].as_str()
    );
    assert_eq!(effects[0].account_id, env.account);
    let log = env.admin.request_log();
    let entry = log.last().expect("logged");
    assert_eq!(entry.command_id.as_deref(), Some("cmd-42"));
    assert_eq!(entry.status, 201);
    assert_eq!(entry.account_id.as_deref(), Some(env.account.as_str()));
}

#[tokio::test]
async fn contact_counts_sum_up_permissions() {
    let env = Env::start().await;
    env.contact("a@example.com").await;
    env.contact("b@example.com").await;
    let r = env.get("/contacts/counts?include=new_subscriber").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total"], 2);
    assert_eq!(r.body["implicit"], 2);
    assert_eq!(r.body["new_subscriber"], 2);
}
