//! Email campaigns: creation (200, two activities, confirmed sender), unique names, status
//! casing, activity PUT semantics, scheduling rules, unscheduling, sends on the sandbox
//! clock, deletion rules, test sends and `GET /emails` paging and date filters.

use std::time::Duration;

use serde_json::{Value, json};

use super::harness::Env;

fn owner(env: &Env) -> String {
    format!("owner@{}.example", env.account)
}

async fn campaign(env: &Env, name: &str) -> (String, String) {
    let r = env
        .post(
            "/emails",
            json!({"name": name, "email_campaign_activities": [{
                "format_type": 5, "from_name": "Acme", "from_email": owner(env),
                "reply_to_email": owner(env), "subject": name, "preheader": "pre",
                "html_content": "<html><body>[[trackingImage]] Hi</body></html>",
                "physical_address_in_footer": {"address_line1": "1 Main", "country_code": "US",
                                               "state_code": "MA", "organization_name": "Acme"}
            }]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let primary = r.body["campaign_activities"]
        .as_array()
        .expect("activities")
        .iter()
        .find(|a| a["role"] == "primary_email")
        .expect("primary")["campaign_activity_id"]
        .as_str()
        .expect("id")
        .to_owned();
    (
        r.body["campaign_id"].as_str().expect("id").to_owned(),
        primary,
    )
}

fn activity_body(env: &Env, lists: Value) -> Value {
    json!({"from_name": "Acme", "from_email": owner(env), "reply_to_email": owner(env),
           "subject": "Hello", "contact_list_ids": lists})
}

#[tokio::test]
async fn creating_a_campaign_answers_200_with_primary_and_permalink_activities() {
    let env = Env::start().await;
    let r = env
        .post(
            "/emails",
            json!({"name": "Spring", "email_campaign_activities": [{"format_type": 5, "from_name": "A",
                   "from_email": owner(&env), "reply_to_email": owner(&env), "subject": "S",
                   "html_content": "<html><body>[[trackingImage]]</body></html>"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["current_status"], "Draft");
    assert_eq!(r.body["type"], "CUSTOM_CODE_EMAIL");
    assert_eq!(r.body["type_code"], 26);
    let roles: Vec<&str> = r.body["campaign_activities"]
        .as_array()
        .expect("activities")
        .iter()
        .map(|a| a["role"].as_str().expect("role"))
        .collect();
    assert_eq!(roles, vec!["primary_email", "permalink"]);
    assert!(r.body["created_at"].as_str().expect("time").ends_with('Z'));
    assert_eq!(
        r.body["created_at"].as_str().expect("time").len(),
        24,
        "millisecond precision"
    );
    let id = r.body["campaign_activities"][0]["campaign_activity_id"]
        .as_str()
        .expect("id");
    let a = env
        .get(&format!(
            "/emails/activities/{id}?include=html_content,permalink_url,physical_address_in_footer"
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["current_status"], "DRAFT");
    assert!(a.body["html_content"].is_string());
    let dup = env
        .post(
            "/emails",
            json!({"name": "spring", "email_campaign_activities": [{"format_type": 5, "from_name": "A",
                   "from_email": owner(&env), "reply_to_email": owner(&env), "subject": "S",
                   "html_content": "<html></html>"}]}),
        )
        .await;
    assert_eq!(dup.status, 409);
}

#[tokio::test]
async fn the_sender_must_be_a_confirmed_account_email() {
    let env = Env::start().await;
    let added = env
        .post(
            "/account/emails",
            json!({"email_address": "news@acme.example"}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    assert_eq!(added.body["confirm_status"], "UNCONFIRMED");
    assert_eq!(
        env.post(
            "/account/emails",
            json!({"email_address": "news@acme.example"})
        )
        .await
        .status,
        409
    );
    let body = json!({"name": "N", "email_campaign_activities": [{"format_type": 5, "from_name": "A",
        "from_email": "news@acme.example", "reply_to_email": "news@acme.example", "subject": "S",
        "html_content": "<html></html>"}]});
    let r = env.post("/emails", body.clone()).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("confirmed"));
    let unconfirmed = env.get("/account/emails?confirm_status=UNCONFIRMED").await;
    assert_eq!(unconfirmed.body[0]["email_address"], "news@acme.example");
    env.admin
        .confirm_account_email(&env.account, "news@acme.example")
        .expect("known e-mail");
    assert_eq!(env.post("/emails", body).await.status, 200);
    assert_eq!(
        env.get("/account/emails?confirm_status=C")
            .await
            .body
            .as_array()
            .expect("a")
            .len(),
        2
    );
    assert_eq!(
        env.get("/account/emails?confirm_status=C&role_code=C")
            .await
            .status,
        400,
        "one filter at a time"
    );
}

#[tokio::test]
async fn scheduling_follows_the_rules_and_sends_run_on_the_sandbox_clock() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    let list = env.list("Recipients").await;
    let (campaign_id, activity) = campaign(&env, "Launch").await;
    let schedules = format!("/emails/activities/{activity}/schedules");
    let later = (env.admin.now() + chrono::Duration::hours(2)).to_rfc3339();
    let past = (env.admin.now() - chrono::Duration::hours(2)).to_rfc3339();

    let no_recipients = env.post(&schedules, json!({"scheduled_date": later})).await;
    assert_eq!(no_recipients.status, 400, "recipients first");
    let put = env
        .put(
            &format!("/emails/activities/{activity}"),
            activity_body(&env, json!([list])),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["contact_list_ids"], json!([list]));
    assert_eq!(
        env.post(&schedules, json!({"scheduled_date": past}))
            .await
            .status,
        400,
        "past dates"
    );

    let scheduled = env.post(&schedules, json!({"scheduled_date": later})).await;
    assert_eq!(scheduled.status, 201, "{}", scheduled.text);
    assert_eq!(scheduled.body.as_array().expect("array").len(), 1);
    assert_eq!(env.get(&schedules).await.body, scheduled.body);
    assert_eq!(
        env.get(&format!("/emails/{campaign_id}")).await.body["current_status"],
        "Scheduled"
    );
    assert_eq!(
        env.delete(&format!("/emails/{campaign_id}")).await.status,
        400,
        "not while Scheduled"
    );
    assert_eq!(
        env.put(
            &format!("/emails/activities/{activity}"),
            activity_body(&env, json!([list]))
        )
        .await
        .status,
        400,
        "only DRAFT or DONE activities can be updated"
    );
    assert_eq!(
        env.post(&schedules, json!({"scheduled_date": later}))
            .await
            .status,
        400,
        "already scheduled"
    );

    assert_eq!(env.delete(&schedules).await.status, 204);
    assert_eq!(env.get(&schedules).await.body, json!([]));
    assert_eq!(
        env.get(&format!("/emails/activities/{activity}"))
            .await
            .body["current_status"],
        "DRAFT"
    );
    assert_eq!(
        env.delete(&schedules).await.status,
        400,
        "only from SCHEDULED"
    );

    let now = env.post(&schedules, json!({"scheduled_date": "0"})).await;
    assert_eq!(now.status, 201);
    assert_eq!(now.body, json!([]));
    assert_eq!(
        env.get(&format!("/emails/activities/{activity}"))
            .await
            .body["current_status"],
        "EXECUTING"
    );
    env.admin.advance_clock(Duration::from_secs(10));
    assert_eq!(
        env.get(&format!("/emails/{campaign_id}")).await.body["current_status"],
        "Done"
    );

    // A DONE activity can be rescheduled; it sends when the clock reaches the date.
    let soon = (env.admin.now() + chrono::Duration::minutes(5)).to_rfc3339();
    assert_eq!(
        env.post(&schedules, json!({"scheduled_date": soon}))
            .await
            .status,
        201
    );
    env.admin.advance_clock(Duration::from_secs(300));
    assert_eq!(
        env.get(&format!("/emails/activities/{activity}"))
            .await
            .body["current_status"],
        "EXECUTING"
    );
    env.admin.complete_activities_now();
    assert_eq!(
        env.get(&format!("/emails/activities/{activity}"))
            .await
            .body["current_status"],
        "DONE"
    );
}

#[tokio::test]
async fn activity_put_overwrites_top_level_fields_and_keeps_omitted_subresources() {
    let env = Env::start().await;
    let (_, activity) = campaign(&env, "Keep").await;
    let r = env
        .put(
            &format!("/emails/activities/{activity}"),
            activity_body(&env, json!([])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let a = env
        .get(&format!(
            "/emails/activities/{activity}?include=html_content,physical_address_in_footer"
        ))
        .await
        .body;
    assert!(
        a.get("preheader").is_none(),
        "omitted top-level properties are overwritten"
    );
    assert_eq!(a["subject"], "Hello");
    assert!(
        a["html_content"]
            .as_str()
            .expect("kept")
            .contains("trackingImage")
    );
    assert_eq!(a["physical_address_in_footer"]["organization_name"], "Acme");
    let missing = env
        .put(
            &format!("/emails/activities/{activity}"),
            json!({"from_name": "A", "subject": "S"}),
        )
        .await;
    assert_eq!(
        missing.status, 400,
        "from_email and reply_to_email are required"
    );
}

#[tokio::test]
async fn deleted_campaigns_are_removed_listed_and_their_activities_gone() {
    let env = Env::start().await;
    let (a, _) = campaign(&env, "A").await;
    let (b, b_activity) = campaign(&env, "B").await;
    let (_c, _) = campaign(&env, "C").await;
    assert_eq!(env.delete(&format!("/emails/{b}")).await.status, 204);
    assert_eq!(
        env.get(&format!("/emails/{b}")).await.body["current_status"],
        "Removed"
    );
    assert_eq!(
        env.get(&format!("/emails/activities/{b_activity}"))
            .await
            .status,
        404
    );
    assert_eq!(
        env.patch(&format!("/emails/{b}"), json!({"name": "B2"}))
            .await
            .status,
        400
    );
    let renamed = env
        .patch(&format!("/emails/{a}"), json!({"name": "A2"}))
        .await;
    assert_eq!(renamed.status, 200);
    assert_eq!(renamed.body["name"], "A2");
    assert_eq!(
        env.patch(&format!("/emails/{a}"), json!({"name": "C"}))
            .await
            .status,
        409
    );

    let first = env.get("/emails?limit=2").await;
    let next = first.body["_links"]["next"]["href"]
        .as_str()
        .expect("next")
        .to_owned();
    assert!(next.starts_with("/v3/emails?cursor="));
    let second = env.get(&next).await;
    let mut statuses: Vec<Value> = first.body["campaigns"].as_array().expect("a").clone();
    statuses.extend(
        second.body["campaigns"]
            .as_array()
            .expect("a")
            .iter()
            .cloned(),
    );
    assert_eq!(statuses.len(), 3, "Removed campaigns are listed");
    assert!(statuses.iter().any(|c| c["current_status"] == "Removed"));
    assert!(
        statuses
            .iter()
            .all(|c| c.get("campaign_activities").is_none())
    );
    let future = (env.admin.now() + chrono::Duration::days(1)).to_rfc3339();
    let r = env
        .get(&format!("/emails?after_date={}", urlencode(&future)))
        .await;
    assert_eq!(r.body["campaigns"], json!([]));
    let r = env
        .get(&format!("/emails?before_date={}", urlencode(&future)))
        .await;
    assert_eq!(r.body["campaigns"].as_array().expect("a").len(), 3);
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn test_sends_take_one_to_five_addresses_and_fifty_recipients_a_day() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    let (_, activity) = campaign(&env, "T").await;
    let tests = format!("/emails/activities/{activity}/tests");
    let five: Vec<String> = (0..5).map(|i| format!("t{i}@example.com")).collect();
    let six: Vec<String> = (0..6).map(|i| format!("t{i}@example.com")).collect();
    assert_eq!(
        env.post(&tests, json!({"email_addresses": six}))
            .await
            .status,
        400
    );
    assert_eq!(
        env.post(&tests, json!({"email_addresses": []}))
            .await
            .status,
        400
    );
    for _ in 0..10 {
        let r = env.post(&tests, json!({"email_addresses": five})).await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    assert_eq!(
        env.post(&tests, json!({"email_addresses": ["x@example.com"]}))
            .await
            .status,
        400
    );
    env.admin.start_new_day();
    let fresh = env.token_with(super::harness::ALL_SCOPES);
    let r = env
        .call_as(
            &fresh,
            reqwest::Method::POST,
            &tests,
            Some(json!({"email_addresses": ["x@example.com"]})),
        )
        .await;
    assert_eq!(r.status, 204, "a new day, a new allowance");
    assert_eq!(
        env.admin
            .effects()
            .iter()
            .filter(|e| e.kind == "test_send")
            .count(),
        11
    );
}
