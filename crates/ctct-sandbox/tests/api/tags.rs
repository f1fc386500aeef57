//! Contact tags: `POST /contact_tags` (201, 409 on a taken name ignoring case, 400 on a
//! missing, blank or 256-character name), `GET` of the list (pages, `include_count`) and of
//! one tag, `PUT` (rename, 409 on a taken name) and `DELETE` (202 with an activity; the tag is
//! gone at once, its taggings once the activity completes); unknown and malformed ids are
//! 404. Every answer is checked against the spec by the harness.

use serde_json::json;

use super::harness::Env;

async fn tag(env: &Env, name: &str) -> String {
    let r = env.post("/contact_tags", json!({"name": name})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["tag_id"].as_str().expect("tag_id").to_owned()
}

#[tokio::test]
async fn names_are_required_bounded_and_unique_ignoring_case() {
    let env = Env::start().await;
    let r = env
        .post(
            "/contact_tags",
            json!({"name": " Gold ", "tag_source": "ESTY"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], "Gold");
    assert_eq!(r.body["tag_source"], "ESTY");
    for body in [
        json!({}),
        json!({"name": "  "}),
        json!({"name": "x".repeat(256)}),
    ] {
        let r = env.post("/contact_tags", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
    assert_eq!(tag(&env, &"y".repeat(255)).await.len(), 36);
    let r = env.post("/contact_tags", json!({"name": "gold"})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let silver = tag(&env, "Silver").await;
    let r = env
        .put(&format!("/contact_tags/{silver}"), json!({"name": "GOLD"}))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    let r = env
        .put(
            &format!("/contact_tags/{silver}"),
            json!({"name": "Bronze"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "Bronze");
    let r = env.get(&format!("/contact_tags/{silver}")).await;
    assert_eq!(r.body["name"], "Bronze");
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let env = Env::start().await;
    for id in ["0b3f5d1c-1d2e-4f3a-9b8c-7d6e5f4a3b2c", "not-a-uuid"] {
        let path = format!("/contact_tags/{id}");
        assert_eq!(env.get(&path).await.status, 404);
        assert_eq!(env.put(&path, json!({"name": "A"})).await.status, 404);
        assert_eq!(env.delete(&path).await.status, 404);
    }
}

#[tokio::test]
async fn a_delete_is_an_activity_that_untags_the_contacts() {
    let env = Env::start().await;
    let gold = tag(&env, "Gold").await;
    let keep = tag(&env, "Keep").await;
    let r = env
        .post(
            "/contacts",
            json!({
                "email_address": {"address": "tagged@example.com", "permission_to_send": "implicit"},
                "create_source": "Account",
                "taggings": [gold, keep],
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let contact = r.body["contact_id"]
        .as_str()
        .expect("contact_id")
        .to_owned();
    let r = env
        .get(&format!("/contact_tags/{gold}?include_count=true"))
        .await;
    assert_eq!(r.body["contacts_count"], 1, "{}", r.text);

    let r = env.delete(&format!("/contact_tags/{gold}")).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let activity = r.body["activity_id"].as_str().expect("activity_id");
    assert_eq!(env.get(&format!("/contact_tags/{gold}")).await.status, 404);
    assert_eq!(
        env.delete(&format!("/contact_tags/{gold}")).await.status,
        404
    );
    let list = env.get("/contact_tags").await;
    let names: Vec<&str> = list.body["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Keep"]);
    assert_eq!(tag(&env, "gold").await.len(), 36, "the name is free again");

    env.admin.complete_activities_now();
    let r = env.get(&format!("/activities/{activity}")).await;
    assert_eq!(r.body["state"], "completed", "{}", r.text);
    let r = env
        .get(&format!("/contacts/{contact}?include=taggings"))
        .await;
    assert_eq!(r.body["taggings"], json!([keep]), "{}", r.text);
}

#[tokio::test]
async fn the_list_pages_and_counts() {
    let env = Env::start().await;
    for name in ["A", "B", "C"] {
        tag(&env, name).await;
    }
    let r = env.get("/contact_tags?limit=2&include_count=true").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["tags"].as_array().map(Vec::len), Some(2));
    assert_eq!(r.body["tags"][0]["contacts_count"], 0);
    let next = r.body["_links"]["next"]["href"].as_str().expect("next");
    let r = env.get(next).await;
    assert_eq!(r.body["tags"][0]["name"], "C");
    assert_eq!(
        r.body["tags"][0]["contacts_count"], 0,
        "carried by the cursor"
    );
    assert_eq!(env.get("/contact_tags?limit=501").await.status, 400);
    assert_eq!(
        env.get("/contact_tags?include_count=maybe").await.status,
        400
    );
}

async fn contact(env: &Env, email: &str, taggings: &[&str]) -> String {
    let r = env
        .post(
            "/contacts",
            json!({
                "email_address": {"address": email, "permission_to_send": "implicit"},
                "create_source": "Account",
                "taggings": taggings,
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["contact_id"]
        .as_str()
        .expect("contact_id")
        .to_owned()
}

async fn taggings(env: &Env, contact: &str) -> serde_json::Value {
    let r = env
        .get(&format!("/contacts/{contact}?include=taggings"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["taggings"].clone()
}

#[tokio::test]
async fn tagging_activities_add_and_remove_tags_when_they_complete() {
    let env = Env::start().await;
    let gold = tag(&env, "Gold").await;
    let keep = tag(&env, "Keep").await;
    let one = contact(&env, "one@example.com", &[&keep]).await;
    let two = contact(&env, "two@example.com", &[]).await;

    let r = env
        .post(
            "/activities/contacts_taggings_add",
            json!({"source": {"contact_ids": [one, two]}, "tag_ids": [gold]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["state"], "initialized", "{}", r.text);
    assert_eq!(r.body["status"]["items_total_count"], 2, "{}", r.text);
    let activity = r.body["activity_id"].as_str().expect("activity_id");
    assert_eq!(
        taggings(&env, &two).await,
        json!([]),
        "not before completion"
    );
    env.admin.complete_activities_now();
    let r = env.get(&format!("/activities/{activity}")).await;
    assert_eq!(r.body["state"], "completed", "{}", r.text);
    assert_eq!(taggings(&env, &one).await, json!([keep, gold]));
    assert_eq!(taggings(&env, &two).await, json!([gold]));

    let r = env
        .post(
            "/activities/contacts_taggings_remove",
            json!({"source": {"contact_ids": [one]}, "tag_ids": [gold, keep]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    env.admin.complete_activities_now();
    assert_eq!(taggings(&env, &one).await, json!([]));
    assert_eq!(taggings(&env, &two).await, json!([gold]), "untouched");
}

#[tokio::test]
async fn tagging_activities_check_their_body_and_ids() {
    let env = Env::start().await;
    let gold = tag(&env, "Gold").await;
    let one = contact(&env, "one@example.com", &[]).await;
    let unknown = "0b3f5d1c-1d2e-4f3a-9b8c-7d6e5f4a3b2c";
    let too_many_contacts: Vec<String> = (0..501).map(|_| one.clone()).collect();
    let too_many_tags: Vec<String> = (0..51).map(|_| gold.clone()).collect();
    for path in [
        "/activities/contacts_taggings_add",
        "/activities/contacts_taggings_remove",
    ] {
        for body in [
            json!({"tag_ids": [gold]}),
            json!({"source": {"contact_ids": [one]}}),
            json!({"source": {"contact_ids": []}, "tag_ids": [gold]}),
            json!({"source": {"contact_ids": [one]}, "tag_ids": []}),
            json!({"source": {"contact_ids": ["nope"]}, "tag_ids": [gold]}),
            json!({"source": {"contact_ids": [one]}, "tag_ids": ["nope"]}),
            json!({"source": {"contact_ids": too_many_contacts}, "tag_ids": [gold]}),
            json!({"source": {"contact_ids": [one]}, "tag_ids": too_many_tags}),
            json!({"source": {"all_active_contacts": true}, "tag_ids": [gold]}),
        ] {
            let r = env.post(path, body.clone()).await;
            assert_eq!(r.status, 400, "{path} {body}: {}", r.text);
        }
        let r = env
            .post(
                path,
                json!({"source": {"contact_ids": [one]}, "tag_ids": [unknown]}),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert!(r.text.contains(unknown), "{}", r.text);
        let r = env
            .post(
                path,
                json!({"source": {"contact_ids": [unknown]}, "tag_ids": [gold]}),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert!(r.text.contains(unknown), "{}", r.text);
    }
    let r = env
        .post(
            "/activities/contacts_taggings_add",
            json!({"source": {"contact_ids": vec![one.clone(); 500]}, "tag_ids": vec![gold.clone(); 50]}),
        )
        .await;
    assert_eq!(r.status, 201, "the spec's limits are allowed: {}", r.text);
}
