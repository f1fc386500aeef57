//! List membership activities (`POST /activities/add_list_memberships` and
//! `/remove_list_memberships`): the memberships change when the activity completes, a contact
//! that would pass 50 lists is left out and the activity reports fewer items completed than
//! its total, and the body and ids are checked (400, 404) before any activity starts.

use serde_json::{Value, json};

use super::harness::Env;

const ADD: &str = "/activities/add_list_memberships";
const REMOVE: &str = "/activities/remove_list_memberships";

async fn memberships(env: &Env, contact: &str) -> Value {
    let r = env
        .get(&format!("/contacts/{contact}?include=list_memberships"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["list_memberships"].clone()
}

async fn contact_on(env: &Env, email: &str, lists: &[String]) -> String {
    let r = env
        .post(
            "/contacts",
            json!({
                "email_address": {"address": email, "permission_to_send": "implicit"},
                "create_source": "Account",
                "list_memberships": lists,
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["contact_id"]
        .as_str()
        .expect("contact_id")
        .to_owned()
}

#[tokio::test]
async fn membership_activities_add_and_remove_contacts_when_they_complete() {
    let env = Env::start().await;
    let news = env.list("News").await;
    let deals = env.list("Deals").await;
    let one = contact_on(&env, "one@example.com", std::slice::from_ref(&news)).await;
    let two = env.contact("two@example.com").await;

    let r = env
        .post(
            ADD,
            json!({"source": {"contact_ids": [one, two]}, "list_ids": [news, deals]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["state"], "initialized", "{}", r.text);
    assert_eq!(r.body["status"]["items_total_count"], 2, "{}", r.text);
    assert_eq!(r.body["status"]["items_completed_count"], 0, "{}", r.text);
    assert_eq!(r.body["status"]["list_count"], 2, "{}", r.text);
    let activity = r.body["activity_id"].as_str().expect("activity_id");
    assert_eq!(
        r.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        Some(format!("/v3/activities/{activity}"))
    );
    assert_eq!(
        memberships(&env, &two).await,
        json!([]),
        "not before completion"
    );
    env.admin.complete_activities_now();
    let r = env.get(&format!("/activities/{activity}")).await;
    assert_eq!(r.body["state"], "completed", "{}", r.text);
    assert_eq!(r.body["status"]["items_completed_count"], 2, "{}", r.text);
    assert_eq!(r.body["activity_errors"], json!([]), "{}", r.text);
    assert_eq!(memberships(&env, &one).await, json!([news, deals]));
    assert_eq!(memberships(&env, &two).await, json!([news, deals]));

    let r = env
        .post(
            REMOVE,
            json!({"source": {"contact_ids": [one]}, "list_ids": [news]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let activity = r.body["activity_id"].as_str().expect("activity_id");
    env.admin.complete_activities_now();
    let r = env.get(&format!("/activities/{activity}")).await;
    assert_eq!(r.body["state"], "completed", "{}", r.text);
    assert_eq!(r.body["status"]["items_completed_count"], 1, "{}", r.text);
    assert_eq!(memberships(&env, &one).await, json!([deals]));
    assert_eq!(
        memberships(&env, &two).await,
        json!([news, deals]),
        "untouched"
    );
}

#[tokio::test]
async fn a_contact_that_would_pass_50_lists_is_left_out_of_a_short_activity() {
    let env = Env::start().await;
    let mut lists = Vec::new();
    for i in 0..51 {
        lists.push(env.list(&format!("List {i}")).await);
    }
    let full = contact_on(&env, "full@example.com", &lists[..49]).await;
    let room = env.contact("room@example.com").await;
    let r = env
        .post(
            ADD,
            json!({"source": {"contact_ids": [full, room]}, "list_ids": [lists[49], lists[50]]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let activity = r.body["activity_id"].as_str().expect("activity_id");
    env.admin.complete_activities_now();
    let r = env.get(&format!("/activities/{activity}")).await;
    assert_eq!(r.body["state"], "completed", "{}", r.text);
    assert_eq!(r.body["status"]["items_total_count"], 2, "{}", r.text);
    assert_eq!(r.body["status"]["items_completed_count"], 1, "{}", r.text);
    let errors = r.body["activity_errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{}", r.text);
    assert!(
        errors[0].as_str().is_some_and(|e| e.contains(&full)),
        "{}",
        r.text
    );
    assert_eq!(
        memberships(&env, &full).await.as_array().map(Vec::len),
        Some(49),
        "left as it was"
    );
    assert_eq!(
        memberships(&env, &room).await,
        json!([lists[49], lists[50]])
    );

    // Exactly 50 is allowed.
    let r = env
        .post(
            ADD,
            json!({"source": {"contact_ids": [full]}, "list_ids": [lists[49]]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let activity = r.body["activity_id"].as_str().expect("activity_id");
    env.admin.complete_activities_now();
    let r = env.get(&format!("/activities/{activity}")).await;
    assert_eq!(r.body["status"]["items_completed_count"], 1, "{}", r.text);
    assert_eq!(
        memberships(&env, &full).await.as_array().map(Vec::len),
        Some(50)
    );
}

#[tokio::test]
async fn unsubscribed_and_deleted_contacts_are_not_completed() {
    let env = Env::start().await;
    let news = env.list("News").await;
    let gone = env.contact("gone@example.com").await;
    let out = env.contact("out@example.com").await;
    let r = env
        .put(
            &format!("/contacts/{out}"),
            json!({
                "email_address": {"address": "out@example.com", "permission_to_send": "unsubscribed"},
                "update_source": "Account",
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env
        .post(
            ADD,
            json!({"source": {"contact_ids": [gone, out]}, "list_ids": [news]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let activity = r.body["activity_id"].as_str().expect("activity_id");
    let deleted = env.delete(&format!("/contacts/{gone}")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    env.admin.complete_activities_now();
    let r = env.get(&format!("/activities/{activity}")).await;
    assert_eq!(r.body["status"]["items_total_count"], 2, "{}", r.text);
    assert_eq!(r.body["status"]["items_completed_count"], 0, "{}", r.text);
    assert_eq!(
        r.body["activity_errors"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.text
    );
    assert_eq!(memberships(&env, &out).await, json!([]));
}

#[tokio::test]
async fn membership_activities_check_their_body_and_ids() {
    let env = Env::start().await;
    let news = env.list("News").await;
    let one = env.contact("one@example.com").await;
    let unknown = "0b3f5d1c-1d2e-4f3a-9b8c-7d6e5f4a3b2c";
    let too_many_contacts: Vec<String> = (0..501).map(|_| one.clone()).collect();
    let too_many_lists: Vec<String> = (0..51).map(|_| news.clone()).collect();
    for path in [ADD, REMOVE] {
        for body in [
            json!({"list_ids": [news]}),
            json!({"source": {"contact_ids": [one]}}),
            json!({"source": {"contact_ids": []}, "list_ids": [news]}),
            json!({"source": {"contact_ids": [one]}, "list_ids": []}),
            json!({"source": {"contact_ids": ["nope"]}, "list_ids": [news]}),
            json!({"source": {"contact_ids": [one]}, "list_ids": ["nope"]}),
            json!({"source": {"contact_ids": too_many_contacts}, "list_ids": [news]}),
            json!({"source": {"contact_ids": [one]}, "list_ids": too_many_lists}),
            json!({"source": {"contact_ids": [one]}, "list_ids": [news], "exclude": {"contact_ids": [one]}}),
        ] {
            let r = env.post(path, body.clone()).await;
            assert_eq!(r.status, 400, "{path} {body}: {}", r.text);
        }
        for source in [
            json!({"list_ids": [news]}),
            json!({"all_active_contacts": true}),
            json!({"tag_ids": [unknown]}),
            json!({"engagement_level": "high"}),
        ] {
            let r = env
                .post(path, json!({"source": source, "list_ids": [news]}))
                .await;
            assert_eq!(r.status, 400, "{path} {source}: {}", r.text);
            assert!(r.text.contains("not emulated by the sandbox"), "{}", r.text);
        }
        let r = env
            .post(
                path,
                json!({"source": {"contact_ids": [one]}, "list_ids": [unknown]}),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert!(r.text.contains(unknown), "{}", r.text);
        let r = env
            .post(
                path,
                json!({"source": {"contact_ids": [one, unknown]}, "list_ids": [news]}),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert!(r.text.contains(unknown), "{}", r.text);
    }
    let r = env.get("/activities").await;
    assert_eq!(r.body["activities"], json!([]), "no activity was started");
    let r = env
        .post(
            ADD,
            json!({"source": {"contact_ids": vec![one.clone(); 500]}, "list_ids": vec![news.clone(); 50]}),
        )
        .await;
    assert_eq!(r.status, 201, "the spec's limits are allowed: {}", r.text);
    // Sources left unset the way clients send them: false or null.
    let r = env
        .post(
            ADD,
            json!({"source": {"contact_ids": [one], "all_active_contacts": false, "list_ids": null}, "list_ids": [news]}),
        )
        .await;
    assert_eq!(r.status, 201, "an unset source is no source: {}", r.text);
}
