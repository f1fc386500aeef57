//! Bulk delete activities (`POST /activities/contact_delete`, `/list_delete`,
//! `/contacts_tags_delete`, `/custom_fields_delete`): each answers 201 with its own spec
//! shape, deletes nothing until the activity completes and then deletes as the single DELETE
//! does (contacts soft-deleted, lists' memberships, tags' taggings and fields' values gone);
//! items deleted meanwhile or already deleted contacts are counted completed; bodies and ids
//! are checked (400, 404) before any activity starts; the queue cap and scopes apply. Every
//! answer is checked against the spec by the harness.

use serde_json::{Value, json};

use super::harness::{Env, Resp};

const CONTACTS: &str = "/activities/contact_delete";
const LISTS: &str = "/activities/list_delete";
const TAGS: &str = "/activities/contacts_tags_delete";
const FIELDS: &str = "/activities/custom_fields_delete";
const UNKNOWN: &str = "0b3f5d1c-1d2e-4f3a-9b8c-7d6e5f4a3b2c";

/// A contact on `lists` with `taggings` and a value for each of `fields`; returns its id.
async fn contact(
    env: &Env,
    email: &str,
    lists: &[&str],
    taggings: &[&str],
    fields: &[&str],
) -> String {
    let values: Vec<Value> = fields
        .iter()
        .map(|f| json!({"custom_field_id": f, "value": "x"}))
        .collect();
    let r = env
        .post(
            "/contacts",
            json!({
                "email_address": {"address": email, "permission_to_send": "implicit"},
                "create_source": "Account",
                "list_memberships": lists,
                "taggings": taggings,
                "custom_fields": values,
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    id(&r, "contact_id")
}

fn id(r: &Resp, key: &str) -> String {
    r.body[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {}", r.text))
        .to_owned()
}

async fn tag(env: &Env, name: &str) -> String {
    let r = env.post("/contact_tags", json!({"name": name})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    id(&r, "tag_id")
}

async fn field(env: &Env, label: &str) -> String {
    let r = env
        .post(
            "/contact_custom_fields",
            json!({"label": label, "type": "string"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    id(&r, "custom_field_id")
}

/// Starts an activity (201 with a Location header); returns the answer.
async fn start(env: &Env, path: &str, body: Value) -> Resp {
    let r = env.post(path, body).await;
    assert_eq!(r.status, 201, "{path}: {}", r.text);
    assert_eq!(r.body["state"], "initialized", "{}", r.text);
    assert_eq!(r.body["percent_done"], 0, "{}", r.text);
    let activity = id(&r, "activity_id");
    assert_eq!(
        r.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        Some(format!("/v3/activities/{activity}"))
    );
    r
}

/// Completes every queued activity and reads this one.
async fn completed(env: &Env, created: &Resp) -> Value {
    env.admin.complete_activities_now();
    let activity = id(created, "activity_id");
    let r = env.get(&format!("/activities/{activity}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["state"], "completed", "{}", r.text);
    assert_eq!(r.body["percent_done"], 100, "{}", r.text);
    r.body
}

async fn read_contact(env: &Env, contact: &str) -> Value {
    let r = env
        .get(&format!(
            "/contacts/{contact}?include=list_memberships,taggings,custom_fields"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test]
async fn contact_delete_soft_deletes_the_contacts_when_it_completes() {
    let env = Env::start().await;
    let news = env.list("News").await;
    let one = contact(&env, "one@example.com", &[&news], &[], &[]).await;
    let two = env.contact("two@example.com").await;
    let gone = env.contact("gone@example.com").await;
    let kept = env.contact("kept@example.com").await;
    let r = env.delete(&format!("/contacts/{gone}")).await;
    assert_eq!(r.status, 204, "{}", r.text);

    let created = start(
        &env,
        CONTACTS,
        json!({"contact_ids": [one, two, gone, one]}),
    )
    .await;
    assert_eq!(
        created.body["status"],
        json!({"items_total_count": 3, "items_completed_count": 0}),
        "repeats count once; no list_count without list_ids: {}",
        created.text
    );
    assert!(
        created.body["_links"]["results"].is_null(),
        "{}",
        created.text
    );
    let before = read_contact(&env, &one).await;
    assert!(
        before["deleted_at"].is_null(),
        "not before completion: {before}"
    );
    let listed = env.get("/activities").await;
    assert!(
        listed.body["activities"]
            .as_array()
            .expect("activities")
            .iter()
            .any(|a| a["activity_id"] == created.body["activity_id"]),
        "{}",
        listed.text
    );

    let two_deleted_meanwhile = env.delete(&format!("/contacts/{two}")).await;
    assert_eq!(two_deleted_meanwhile.status, 204);
    let done = completed(&env, &created).await;
    assert_eq!(
        done["status"],
        json!({"items_total_count": 3, "items_completed_count": 3}),
        "already and meanwhile deleted contacts are completed: {done}"
    );
    assert_eq!(done["activity_errors"], json!([]), "{done}");
    for contact in [&one, &two, &gone] {
        let after = read_contact(&env, contact).await;
        assert!(after["deleted_at"].is_string(), "{after}");
        assert_eq!(
            after["list_memberships"],
            json!([]),
            "lists stripped: {after}"
        );
    }
    let active = env.get("/contacts").await;
    let ids: Vec<&Value> = active.body["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| &c["contact_id"])
        .collect();
    assert_eq!(ids, [&json!(kept)], "{}", active.text);
    let r = env
        .post(
            "/contacts",
            json!({"email_address": {"address": "one@example.com"}, "create_source": "Account"}),
        )
        .await;
    assert_eq!(
        r.status, 409,
        "the address stays taken, as DELETE leaves it: {}",
        r.text
    );

    let again = start(&env, CONTACTS, json!({"contact_ids": [one]})).await;
    let done = completed(&env, &again).await;
    assert_eq!(
        done["status"]["items_completed_count"], 1,
        "deleting twice ends the same"
    );
}

#[tokio::test]
async fn contact_delete_by_list_ids_deletes_the_members_and_keeps_the_lists() {
    let env = Env::start().await;
    let news = env.list("News").await;
    let deals = env.list("Deals").await;
    let other = env.list("Other").await;
    let both = contact(&env, "both@example.com", &[&news, &deals], &[], &[]).await;
    let on_news = contact(&env, "news@example.com", &[&news], &[], &[]).await;
    let elsewhere = contact(&env, "elsewhere@example.com", &[&other], &[], &[]).await;

    let created = start(&env, CONTACTS, json!({"list_ids": [news, deals]})).await;
    assert_eq!(
        created.body["status"],
        json!({"items_total_count": 2, "items_completed_count": 0, "list_count": 2}),
        "{}",
        created.text
    );
    let done = completed(&env, &created).await;
    assert_eq!(
        done["status"],
        json!({"items_total_count": 2, "items_completed_count": 2, "list_count": 2}),
        "{done}"
    );
    for contact in [&both, &on_news] {
        assert!(read_contact(&env, contact).await["deleted_at"].is_string());
    }
    let untouched = read_contact(&env, &elsewhere).await;
    assert!(untouched["deleted_at"].is_null(), "{untouched}");
    assert_eq!(untouched["list_memberships"], json!([other]));
    for list in [&news, &deals] {
        let r = env.get(&format!("/contact_lists/{list}")).await;
        assert_eq!(r.status, 200, "the list itself stays: {}", r.text);
    }

    let empty = start(&env, CONTACTS, json!({"list_ids": [news]})).await;
    assert_eq!(
        empty.body["status"]["items_total_count"], 0,
        "{}",
        empty.text
    );
    let done = completed(&env, &empty).await;
    assert_eq!(done["status"]["items_completed_count"], 0, "{done}");
}

#[tokio::test]
async fn list_delete_deletes_the_lists_and_their_memberships_when_it_completes() {
    let env = Env::start().await;
    let news = env.list("News").await;
    let deals = env.list("Deals").await;
    let meanwhile = env.list("Meanwhile").await;
    let kept = env.list("Kept").await;
    let member = contact(
        &env,
        "member@example.com",
        &[&news, &deals, &kept],
        &[],
        &[],
    )
    .await;

    let created = start(&env, LISTS, json!({"list_ids": [news, deals, meanwhile]})).await;
    assert_eq!(
        created.body["status"],
        json!({"list_count": 0}),
        "{}",
        created.text
    );
    let r = env.get(&format!("/contact_lists/{news}")).await;
    assert_eq!(r.status, 200, "not before completion: {}", r.text);
    let r = env.delete(&format!("/contact_lists/{meanwhile}")).await;
    assert_eq!(r.status, 202, "{}", r.text);

    let done = completed(&env, &created).await;
    assert_eq!(
        done["status"],
        json!({"items_total_count": 3, "items_completed_count": 3, "list_count": 3}),
        "a list deleted meanwhile is counted: {done}"
    );
    for list in [&news, &deals, &meanwhile] {
        let r = env.get(&format!("/contact_lists/{list}")).await;
        assert_eq!(r.status, 404, "{}", r.text);
    }
    assert_eq!(
        read_contact(&env, &member).await["list_memberships"],
        json!([kept])
    );
    let r = env.post("/contact_lists", json!({"name": "News"})).await;
    assert_eq!(r.status, 201, "the name is free again: {}", r.text);
}

#[tokio::test]
async fn contacts_tags_delete_deletes_the_tags_and_untags_the_contacts() {
    let env = Env::start().await;
    let gold = tag(&env, "Gold").await;
    let silver = tag(&env, "Silver").await;
    let keep = tag(&env, "Keep").await;
    let tagged = contact(
        &env,
        "tagged@example.com",
        &[],
        &[&gold, &silver, &keep],
        &[],
    )
    .await;

    let created = start(&env, TAGS, json!({"tag_ids": [gold, silver]})).await;
    assert_eq!(
        created.body["status"],
        json!({"items_total_count": 2, "items_completed_count": 0}),
        "{}",
        created.text
    );
    assert_eq!(env.get(&format!("/contact_tags/{gold}")).await.status, 200);
    let r = env.delete(&format!("/contact_tags/{silver}")).await;
    assert_eq!(r.status, 202, "{}", r.text);

    let done = completed(&env, &created).await;
    assert_eq!(
        done["status"],
        json!({"items_total_count": 2, "items_completed_count": 2}),
        "{done}"
    );
    assert_eq!(env.get(&format!("/contact_tags/{gold}")).await.status, 404);
    assert_eq!(read_contact(&env, &tagged).await["taggings"], json!([keep]));
    let r = env.get("/contact_tags").await;
    assert_eq!(
        r.body["tags"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn custom_fields_delete_answers_without_a_status_and_deletes_the_fields() {
    let env = Env::start().await;
    let hobby = field(&env, "Hobby").await;
    let colour = field(&env, "Colour").await;
    let keep = field(&env, "Keep").await;
    let valued = contact(
        &env,
        "valued@example.com",
        &[],
        &[],
        &[&hobby, &colour, &keep],
    )
    .await;

    let created = start(&env, FIELDS, json!({"custom_field_ids": [hobby, colour]})).await;
    assert!(
        created.body.get("status").is_none(),
        "postCustomFieldDelete_201_response has no status: {}",
        created.text
    );
    let r = env.get(&format!("/contact_custom_fields/{hobby}")).await;
    assert_eq!(r.status, 200, "not before completion: {}", r.text);

    let done = completed(&env, &created).await;
    assert_eq!(
        done["status"],
        json!({"items_total_count": 2, "items_completed_count": 2}),
        "reads count the fields: {done}"
    );
    for field in [&hobby, &colour] {
        let r = env.get(&format!("/contact_custom_fields/{field}")).await;
        assert_eq!(r.status, 404, "{}", r.text);
    }
    let values = &read_contact(&env, &valued).await["custom_fields"];
    assert_eq!(
        values,
        &json!([{"custom_field_id": keep, "value": "x"}]),
        "{values}"
    );
}

#[tokio::test]
async fn bulk_deletes_check_their_bodies_and_limits_before_starting() {
    let env = Env::start().await;
    let list = env.list("News").await;
    let one = env.contact("one@example.com").await;
    let tag = tag(&env, "Gold").await;
    let field = field(&env, "Hobby").await;
    let many = |id: &str, n: usize| vec![id.to_owned(); n];
    for (path, body, names) in [
        (CONTACTS, json!({}), "contact_ids or list_ids"),
        (CONTACTS, json!({"contact_ids": []}), "contact_ids"),
        (CONTACTS, json!({"contact_ids": ["nope"]}), "contact_ids"),
        (CONTACTS, json!({"list_ids": []}), "list_ids"),
        (CONTACTS, json!({"list_ids": ["nope"]}), "list_ids"),
        (
            CONTACTS,
            json!({"contact_ids": [one], "list_ids": [list]}),
            "mutually exclusive",
        ),
        (
            CONTACTS,
            json!({"contact_ids": many(&one, 501)}),
            "contact_ids exceeds the maximum of 500",
        ),
        (
            CONTACTS,
            json!({"list_ids": many(&list, 51)}),
            "list_ids exceeds the maximum of 50",
        ),
        (LISTS, json!({}), "list_ids"),
        (LISTS, json!({"list_ids": []}), "list_ids"),
        (LISTS, json!({"list_ids": ["nope"]}), "list_ids"),
        (
            LISTS,
            json!({"list_ids": many(&list, 101)}),
            "list_ids exceeds the maximum of 100",
        ),
        (TAGS, json!({"tag_ids": []}), "tag_ids"),
        (TAGS, json!({"tag_ids": ["nope"]}), "tag_ids"),
        (
            TAGS,
            json!({"tag_ids": many(&tag, 501)}),
            "tag_ids exceeds the maximum of 500",
        ),
        (FIELDS, json!({"custom_field_ids": []}), "custom_field_ids"),
        (
            FIELDS,
            json!({"custom_field_ids": ["nope"]}),
            "custom_field_ids",
        ),
        (
            FIELDS,
            json!({"custom_field_ids": many(&field, 101)}),
            "custom_field_ids exceeds the maximum of 100",
        ),
    ] {
        let r = env.post(path, body.clone()).await;
        assert_eq!(r.status, 400, "{path} {body}: {}", r.text);
        assert!(r.text.contains(names), "{path} {body}: {}", r.text);
    }
    let r = env.get("/activities").await;
    assert_eq!(r.body["activities"], json!([]), "no activity was started");
    for (path, body) in [
        (CONTACTS, json!({"contact_ids": many(&one, 500)})),
        (CONTACTS, json!({"list_ids": many(&list, 50)})),
        (LISTS, json!({"list_ids": many(&list, 100)})),
        (TAGS, json!({"tag_ids": many(&tag, 500)})),
        (FIELDS, json!({"custom_field_ids": many(&field, 100)})),
    ] {
        let r = env.post(path, body).await;
        assert_eq!(
            r.status, 201,
            "{path}: the limit itself is allowed: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn an_unknown_id_fails_the_whole_request_with_a_404_naming_it() {
    let env = Env::start().await;
    let list = env.list("News").await;
    let one = env.contact("one@example.com").await;
    let tag = tag(&env, "Gold").await;
    let field = field(&env, "Hobby").await;
    let gone_list = env.list("Gone").await;
    let gone_tag = self::tag(&env, "Gone").await;
    let gone_field = self::field(&env, "Gone").await;
    assert_eq!(
        env.delete(&format!("/contact_lists/{gone_list}"))
            .await
            .status,
        202
    );
    assert_eq!(
        env.delete(&format!("/contact_tags/{gone_tag}"))
            .await
            .status,
        202
    );
    assert_eq!(
        env.delete(&format!("/contact_custom_fields/{gone_field}"))
            .await
            .status,
        204
    );
    for (path, body, named) in [
        (CONTACTS, json!({"contact_ids": [one, UNKNOWN]}), UNKNOWN),
        (CONTACTS, json!({"list_ids": [list, UNKNOWN]}), UNKNOWN),
        (
            CONTACTS,
            json!({"list_ids": [gone_list]}),
            gone_list.as_str(),
        ),
        (LISTS, json!({"list_ids": [list, UNKNOWN]}), UNKNOWN),
        (LISTS, json!({"list_ids": [gone_list]}), gone_list.as_str()),
        (TAGS, json!({"tag_ids": [tag, UNKNOWN]}), UNKNOWN),
        (TAGS, json!({"tag_ids": [gone_tag]}), gone_tag.as_str()),
        (
            FIELDS,
            json!({"custom_field_ids": [field, UNKNOWN]}),
            UNKNOWN,
        ),
        (
            FIELDS,
            json!({"custom_field_ids": [gone_field]}),
            gone_field.as_str(),
        ),
    ] {
        let r = env.post(path, body.clone()).await;
        assert_eq!(r.status, 404, "{path} {body}: {}", r.text);
        assert!(r.text.contains(named), "{path} {body}: {}", r.text);
    }
    env.admin.complete_activities_now();
    let r = env.get("/activities").await;
    assert_eq!(
        r.body["activities"].as_array().map(Vec::len),
        Some(2),
        "only the two single DELETEs' activities: {}",
        r.text
    );
    assert!(read_contact(&env, &one).await["deleted_at"].is_null());
    assert_eq!(env.get(&format!("/contact_lists/{list}")).await.status, 200);
    assert_eq!(env.get(&format!("/contact_tags/{tag}")).await.status, 200);
    assert_eq!(
        env.get(&format!("/contact_custom_fields/{field}"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn bulk_deletes_need_contact_data_and_count_toward_the_queued_activities_cap() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    let list = env.list("News").await;
    let one = env.contact("one@example.com").await;
    let tag = tag(&env, "Gold").await;
    let field = field(&env, "Hobby").await;
    let bodies = [
        (CONTACTS, json!({"contact_ids": [one]})),
        (LISTS, json!({"list_ids": [list]})),
        (TAGS, json!({"tag_ids": [tag]})),
        (FIELDS, json!({"custom_field_ids": [field]})),
    ];
    let reader = env.token_with("account_read campaign_data");
    for (path, body) in &bodies {
        let r = env
            .call_as(&reader, reqwest::Method::POST, path, Some(body.clone()))
            .await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
    }
    for i in 0..1_000 {
        let (path, body) = &bodies[i % bodies.len()];
        let r = env.post(path, body.clone()).await;
        assert_eq!(r.status, 201, "activity {i}: {}", r.text);
    }
    for (path, body) in bodies {
        let r = env.post(path, body).await;
        assert_eq!(r.status, 429, "{path}: {}", r.text);
        assert_eq!(r.body["error_key"], "queued_activities_limit_exceeded");
    }
}
