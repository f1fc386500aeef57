//! Custom fields (100 cap, unique labels, derived name kept on rename, PUT replaces, DELETE
//! hides values) and contact lists (unique names, counts, async DELETE with 202 + activity).

use serde_json::json;

use super::harness::Env;

#[tokio::test]
async fn custom_fields_have_unique_labels_a_derived_name_and_a_cap_of_100() {
    let env = Env::start().await;
    let r = env
        .post(
            "/contact_custom_fields",
            json!({"label": "Favorite Color", "type": "string"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], "favorite_color");
    let id = r.body["custom_field_id"].as_str().expect("id").to_owned();
    let dup = env
        .post(
            "/contact_custom_fields",
            json!({"label": "favorite color", "type": "string"}),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(
        env.post(
            "/contact_custom_fields",
            json!({"label": "N", "type": "number"})
        )
        .await
        .status,
        400
    );
    assert_eq!(
        env.post("/contact_custom_fields", json!({"type": "string"}))
            .await
            .status,
        400
    );

    let put = env
        .put(
            &format!("/contact_custom_fields/{id}"),
            json!({"label": "Colour"}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["label"], "Colour");
    assert_eq!(put.body["name"], "favorite_color", "the name stays");

    for i in 1..100 {
        let r = env
            .post(
                "/contact_custom_fields",
                json!({"label": format!("Field {i}"), "type": "date"}),
            )
            .await;
        assert_eq!(r.status, 201, "field {i}: {}", r.text);
    }
    let over = env
        .post(
            "/contact_custom_fields",
            json!({"label": "One too many", "type": "string"}),
        )
        .await;
    assert_eq!(over.status, 400);
    let page = env.get("/contact_custom_fields?limit=100").await;
    assert_eq!(
        page.body["custom_fields"].as_array().expect("array").len(),
        100
    );
    assert!(page.body["_links"].get("next").is_none());
    let page = env.get("/contact_custom_fields?limit=60").await;
    let next = page.body["_links"]["next"]["href"]
        .as_str()
        .expect("next")
        .to_owned();
    assert_eq!(
        env.get(&next).await.body["custom_fields"]
            .as_array()
            .expect("array")
            .len(),
        40
    );
}

#[tokio::test]
async fn deleting_a_custom_field_hides_its_values() {
    let env = Env::start().await;
    let r = env
        .post(
            "/contact_custom_fields",
            json!({"label": "Hobby", "type": "string"}),
        )
        .await;
    let field = r.body["custom_field_id"].as_str().expect("id").to_owned();
    let c = env
        .post(
            "/contacts",
            json!({"create_source": "Account", "email_address": {"address": "h@example.com"},
                   "custom_fields": [{"custom_field_id": field, "value": "Chess"}]}),
        )
        .await;
    let id = c.body["contact_id"].as_str().expect("id").to_owned();
    assert_eq!(
        env.delete(&format!("/contact_custom_fields/{field}"))
            .await
            .status,
        204
    );
    assert_eq!(
        env.get(&format!("/contact_custom_fields/{field}"))
            .await
            .status,
        404
    );
    let c = env
        .get(&format!("/contacts/{id}?include=custom_fields"))
        .await;
    assert_eq!(c.body["custom_fields"], json!([]));
}

#[tokio::test]
async fn lists_have_unique_names_counts_and_an_asynchronous_delete() {
    let env = Env::start().await;
    let list = env.list("Newsletter").await;
    let other = env.list("Other").await;
    assert_eq!(
        env.post("/contact_lists", json!({"name": "newsletter"}))
            .await
            .status,
        409
    );
    assert_eq!(env.post("/contact_lists", json!({})).await.status, 400);
    for (i, lists) in [vec![&list], vec![&list, &other], vec![&other]]
        .into_iter()
        .enumerate()
    {
        let r = env
            .post(
                "/contacts",
                json!({"create_source": "Account", "email_address": {"address": format!("l{i}@example.com")},
                       "list_memberships": lists}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = env
        .get("/contact_lists?include_count=true&include_membership_count=all")
        .await;
    assert_eq!(r.body["lists_count"], 2);
    assert_eq!(r.body["lists"][0]["membership_count"], 2);
    let r = env
        .get(&format!(
            "/contact_lists/{list}?include_membership_count=active"
        ))
        .await;
    assert_eq!(r.body["membership_count"], 2);
    let r = env.get("/contact_lists?name=Other").await;
    assert_eq!(r.body["lists"][0]["list_id"], other.as_str());

    let put = env
        .put(
            &format!("/contact_lists/{other}"),
            json!({"name": "Renamed", "description": "d", "favorite": true}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["favorite"], true);
    let clash = env
        .put(
            &format!("/contact_lists/{other}"),
            json!({"name": "Newsletter"}),
        )
        .await;
    assert_eq!(clash.status, 400);

    let deleted = env.delete(&format!("/contact_lists/{list}")).await;
    assert_eq!(deleted.status, 202, "{}", deleted.text);
    let activity = deleted.body["activity_id"]
        .as_str()
        .expect("activity")
        .to_owned();
    assert_eq!(
        deleted.headers["location"].to_str().expect("ascii"),
        format!("/v3/activities/{activity}")
    );
    assert_eq!(env.get(&format!("/contact_lists/{list}")).await.status, 404);
    assert_eq!(
        env.get("/contact_lists").await.body["lists"]
            .as_array()
            .expect("lists")
            .len(),
        1
    );
    assert_eq!(
        env.get("/contact_lists?status=deleted").await.body["lists"][0]["list_id"],
        list.as_str()
    );
    let contacts = env.get("/contacts?include=list_memberships").await.body;
    assert!(
        contacts["contacts"]
            .as_array()
            .expect("contacts")
            .iter()
            .all(|c| !c["list_memberships"]
                .as_array()
                .expect("lists")
                .contains(&json!(list))),
        "memberships of a deleted list disappear"
    );
    env.admin.complete_activities_now();
    assert_eq!(
        env.get(&format!("/activities/{activity}")).await.body["state"],
        "completed"
    );
}

#[tokio::test]
async fn list_pages_follow_the_cursor() {
    let env = Env::start().await;
    for i in 0..5 {
        env.list(&format!("List {i}")).await;
    }
    let first = env.get("/contact_lists?limit=2").await;
    let mut names: Vec<String> = Vec::new();
    let mut page = first.body;
    loop {
        names.extend(
            page["lists"]
                .as_array()
                .expect("lists")
                .iter()
                .map(|l| l["name"].as_str().expect("name").to_owned()),
        );
        let Some(next) = page["_links"]["next"]["href"].as_str() else {
            break;
        };
        assert!(next.starts_with("/v3/contact_lists?cursor="));
        page = env.get(next).await.body;
    }
    assert_eq!(
        names,
        (0..5).map(|i| format!("List {i}")).collect::<Vec<_>>()
    );
}
