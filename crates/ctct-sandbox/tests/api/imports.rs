//! JSON imports: the life cycle on the sandbox clock, row errors line by line, semantics for
//! existing and unsubscribed contacts, request limits.

use std::time::Duration;

use serde_json::{Value, json};

use super::harness::Env;

async fn import(env: &Env, rows: Value, lists: Value) -> Value {
    let r = env
        .post(
            "/activities/contacts_json_import",
            json!({"import_data": rows, "list_ids": lists}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

#[tokio::test]
async fn a_json_import_moves_from_initialized_through_processing_to_completed() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    let list = env.list("Imported").await;
    env.post(
        "/contact_custom_fields",
        json!({"label": "Hobby", "type": "string"}),
    )
    .await;
    let created = import(
        &env,
        json!([
            {"email": "a@example.com", "first_name": "Ann", "cf:hobby": "Chess", "phone": "555-0101",
             "street": "1 Main St", "city": "Boston", "state": "MA", "zip": "02101", "country": "US"},
            {"email": "b@example.com", "last_name": "Bee", "birthday_month": 5, "birthday_day": "6"},
        ]),
        json!([list]),
    )
    .await;
    assert_eq!(created["state"], "initialized");
    assert_eq!(created["status"]["items_total_count"], 2);
    let href = created["_links"]["self"]["href"]
        .as_str()
        .expect("self")
        .to_owned();
    assert!(
        env.get("/contacts").await.body["contacts"]
            .as_array()
            .expect("a")
            .is_empty()
    );

    let first_read = env.get(&href).await;
    assert_eq!(
        first_read.body["state"], "processing",
        "the first read finds it processing"
    );
    env.admin.advance_clock(Duration::from_millis(1_999));
    assert_eq!(env.get(&href).await.body["state"], "processing");
    env.admin.advance_clock(Duration::from_millis(1));
    let done = env.get(&href).await.body;
    assert_eq!(done["state"], "completed");
    assert_eq!(done["percent_done"], 100);
    assert_eq!(done["status"]["person_count"], 2);
    assert_eq!(done["status"]["error_count"], 0);
    assert_eq!(done["activity_errors"], json!([]));

    let page = env
        .get("/contacts?include=custom_fields,list_memberships,phone_numbers,street_addresses")
        .await
        .body;
    let contacts = page["contacts"].as_array().expect("contacts");
    assert_eq!(contacts.len(), 2);
    let a = &contacts[0];
    assert_eq!(a["email_address"]["permission_to_send"], "implicit");
    assert_eq!(a["email_address"]["opt_in_source"], "Account");
    assert_eq!(a["list_memberships"], json!([list]));
    assert_eq!(a["custom_fields"][0]["value"], "Chess");
    assert_eq!(a["phone_numbers"][0]["phone_number"], "555-0101");
    assert_eq!(a["street_addresses"][0]["city"], "Boston");
    assert_eq!(contacts[1]["birthday_day"], 6);
}

#[tokio::test]
async fn without_reads_an_import_is_processing_after_one_second_and_takes_rows_over_rate() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    env.admin.set_activity_rate(1);
    let list = env.list("L").await;
    let rows: Vec<Value> = (0..5)
        .map(|i| json!({"email": format!("r{i}@example.com")}))
        .collect();
    let created = import(&env, json!(rows), json!([list])).await;
    let id = created["activity_id"].as_str().expect("id").to_owned();
    let state = |env: &Env| {
        env.admin
            .snapshot(&env.account)
            .expect("snapshot")
            .activities
            .into_iter()
            .find(|a| a["activity_id"] == id.as_str())
            .expect("activity")["state"]
            .clone()
    };
    assert_eq!(state(&env), "initialized");
    env.admin.advance_clock(Duration::from_secs(1));
    assert_eq!(state(&env), "processing");
    env.admin.advance_clock(Duration::from_secs(3));
    assert_eq!(state(&env), "processing", "5 rows at 1 row/s take 5 s");
    env.admin.advance_clock(Duration::from_secs(1));
    assert_eq!(state(&env), "completed");
}

#[tokio::test]
async fn bad_rows_are_skipped_and_reported_line_by_line() {
    let env = Env::start().await;
    let list = env.list("L").await;
    env.post(
        "/contact_custom_fields",
        json!({"label": "Hobby", "type": "string"}),
    )
    .await;
    let mut many = serde_json::Map::new();
    many.insert("email".into(), json!("many@example.com"));
    for i in 0..26 {
        let label = format!("F{i}");
        env.post(
            "/contact_custom_fields",
            json!({"label": label, "type": "string"}),
        )
        .await;
        many.insert(format!("cf:f{i}"), json!("x"));
    }
    let created = import(
        &env,
        json!([
            {"email": "good@example.com", "cf:hobby": "Chess"},
            {"email": "not-an-email"},
            {"email": "long@example.com", "first_name": "x".repeat(51)},
            {"email": "cf@example.com", "cf:nope": "1"},
            many,
            {"first_name": "No Email"},
        ]),
        json!([list]),
    )
    .await;
    env.admin.complete_activities_now();
    let done = env
        .get(created["_links"]["self"]["href"].as_str().expect("href"))
        .await
        .body;
    assert_eq!(done["state"], "completed");
    assert_eq!(done["status"]["error_count"], 5);
    assert_eq!(done["status"]["person_count"], 1);
    assert_eq!(
        done["activity_errors"],
        json!([
            "Line 2: not-an-email: invalid email address",
            "Line 3: long@example.com: first_name exceeds the maximum length of 50",
            "Line 4: cf@example.com: unknown custom field cf:nope",
            "Line 5: many@example.com: more than 25 custom fields",
            "Line 6: : email is required",
        ])
    );
    assert_eq!(
        env.get("/contacts").await.body["contacts"]
            .as_array()
            .expect("a")
            .len(),
        1
    );
}

#[tokio::test]
async fn imports_update_only_supplied_fields_and_never_list_unsubscribed_contacts() {
    let env = Env::start().await;
    let (old, new) = (env.list("Old").await, env.list("New").await);
    let keep = env
        .post(
            "/contacts",
            json!({"create_source": "Account", "first_name": "Keep", "last_name": "Me",
                   "email_address": {"address": "keep@example.com", "permission_to_send": "explicit"},
                   "list_memberships": [old]}),
        )
        .await
        .body["contact_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let unsub = env
        .post(
            "/contacts",
            json!({"create_source": "Account",
                   "email_address": {"address": "gone@example.com", "permission_to_send": "unsubscribed"}}),
        )
        .await
        .body["contact_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let created = import(
        &env,
        json!([{"email": "KEEP@example.com", "last_name": "Changed"}, {"email": "gone@example.com"}]),
        json!([new]),
    )
    .await;
    env.admin.complete_activities_now();
    let done = env
        .get(created["_links"]["self"]["href"].as_str().expect("href"))
        .await
        .body;
    assert_eq!(done["status"]["cannot_add_to_list_count"], 1);
    let k = env
        .get(&format!("/contacts/{keep}?include=list_memberships"))
        .await
        .body;
    assert_eq!(k["first_name"], "Keep");
    assert_eq!(k["last_name"], "Changed");
    assert_eq!(
        k["email_address"]["permission_to_send"], "explicit",
        "permission unchanged"
    );
    assert_eq!(k["list_memberships"].as_array().expect("lists").len(), 2);
    let u = env
        .get(&format!("/contacts/{unsub}?include=list_memberships"))
        .await
        .body;
    assert_eq!(u["list_memberships"], json!([]));
    assert_eq!(u["email_address"]["permission_to_send"], "unsubscribed");
}

#[tokio::test]
async fn import_requests_are_checked_before_they_are_queued() {
    let env = Env::start().await;
    let list = env.list("L").await;
    let one = json!([{"email": "a@example.com"}]);
    for body in [
        json!({"import_data": one}),
        json!({"import_data": one, "list_ids": []}),
        json!({"import_data": [], "list_ids": [list]}),
        json!({"import_data": one, "list_ids": ["6f2d1c6e-0000-4000-8000-000000000000"]}),
        json!({"list_ids": [list]}),
    ] {
        let r = env
            .post("/activities/contacts_json_import", body.clone())
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
    let rows: Vec<Value> = (0..40_001)
        .map(|i| json!({"email": format!("{i}@x.example")}))
        .collect();
    let r = env
        .post(
            "/activities/contacts_json_import",
            json!({"import_data": rows, "list_ids": [list]}),
        )
        .await;
    assert_eq!(r.status, 400, "more than 40,000 rows");
    let big: Vec<Value> = (0..20_000)
        .map(|i| json!({"email": format!("{i}@x.example"), "first_name": "y".repeat(200)}))
        .collect();
    let r = env
        .post(
            "/activities/contacts_json_import",
            json!({"import_data": big, "list_ids": [list]}),
        )
        .await;
    assert_eq!(r.status, 400, "4 MB or more");
    assert!(r.text.contains("4 MB"));
}
