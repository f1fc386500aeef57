//! Segments: `GET /segments` (paging with the `_links.next` cursor, both sort orders, deleted
//! segments left out, `limit` and `sort_by` checked) and `GET /segments/{segment_id}`
//! (criteria included, deleted segments still answered, 404 for unknown or malformed ids),
//! behind the `contact_data` scope. Every answer is checked against the spec by the harness.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::admin::admin_call;
use super::harness::Env;

const CRITERIA: &str = r#"{"version":"1.0.0","criteria":{"type":"and","group":[{"source":"tracking","field":"not_opened","op":"contains-any","const_value":"last-n-campaigns","param":"5"}]}}"#;

/// An account with segments `names`, made a minute apart in this order.
async fn with_segments(names: &[&str]) -> (Env, Vec<u32>) {
    let env = Env::start().await;
    env.admin.freeze_clock();
    let mut ids = Vec::new();
    for name in names {
        ids.push(
            env.admin
                .add_segment(&env.account, name, CRITERIA)
                .expect("added"),
        );
        env.admin.advance_clock(Duration::from_secs(60));
    }
    (env, ids)
}

/// Every page from `first`, following `_links.next.href`: the names, and how many pages.
async fn all_pages(env: &Env, first: &str) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut page = env.get(first).await;
    let mut pages = 1;
    loop {
        assert_eq!(page.status, 200, "{}", page.text);
        names.extend(
            page.body["segments"]
                .as_array()
                .expect("segments")
                .iter()
                .map(|s| s["name"].as_str().expect("name").to_owned()),
        );
        let Some(next) = page.body["_links"]["next"]["href"].as_str() else {
            assert!(
                page.body.get("_links").is_none(),
                "the last page has no _links: {}",
                page.text
            );
            break;
        };
        assert!(next.starts_with("/v3/segments?cursor="), "{next}");
        page = env.get(next).await;
        pages += 1;
    }
    (names, pages)
}

#[tokio::test]
async fn segments_page_through_the_cursor_in_both_sort_orders() {
    let (env, ids) = with_segments(&["Bravo", "alpha", "Delta", "charlie", "Echo"]).await;
    assert_eq!(ids, [1, 2, 3, 4, 5], "integer ids counting up");

    let (by_date, pages) = all_pages(&env, "/segments?limit=2").await;
    assert_eq!(by_date, ["Echo", "charlie", "Delta", "alpha", "Bravo"]);
    assert_eq!(pages, 3);
    assert_eq!(
        all_pages(&env, "/segments").await.0,
        by_date,
        "date is the default"
    );

    // The cursor carries sort_by.
    let (by_name, pages) = all_pages(&env, "/segments?sort_by=name&limit=2").await;
    assert_eq!(by_name, ["alpha", "Bravo", "charlie", "Delta", "Echo"]);
    assert_eq!(pages, 3);

    let one = env.get("/segments?limit=1000").await;
    let first = &one.body["segments"][0];
    assert_eq!(first["segment_id"], 5);
    assert!(first["created_at"].is_string() && first["edited_at"].is_string());
    assert!(
        first.get("segment_criteria").is_none(),
        "the list carries no criteria"
    );
}

#[tokio::test]
async fn a_deleted_segment_leaves_the_list_but_its_details_stay_readable() {
    let (env, ids) = with_segments(&["Kept", "Gone"]).await;
    env.admin
        .delete_segment(&env.account, ids[1])
        .expect("deleted");
    let (names, _) = all_pages(&env, "/segments").await;
    assert_eq!(names, ["Kept"]);

    let gone = env.get(&format!("/segments/{}", ids[1])).await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    assert_eq!(gone.body["name"], "Gone");
    assert_eq!(gone.body["segment_id"], ids[1]);
    assert_eq!(gone.body["segment_criteria"], CRITERIA);
    assert!(
        env.admin.delete_segment(&env.account, ids[1]).is_err(),
        "deleted once only"
    );
}

#[tokio::test]
async fn unknown_and_malformed_segment_ids_are_not_found() {
    let (env, _) = with_segments(&["Only"]).await;
    for id in [
        "2",
        "0",
        "-1",
        "2147483648",
        "abc",
        "987cb9ab-ad0c-4087-bd46-2e2ad241221f",
    ] {
        let r = env.get(&format!("/segments/{id}")).await;
        assert_eq!(r.status, 404, "{id}: {}", r.text);
        assert_eq!(
            r.body[0]["error_key"], "contacts.api.not_found",
            "{}",
            r.text
        );
    }
    assert_eq!(env.get("/segments/1").await.status, 200);
}

#[tokio::test]
async fn bad_limit_and_sort_by_are_refused_and_an_empty_account_has_no_segments() {
    let env = Env::start().await;
    let empty = env.get("/segments").await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.body["segments"], Value::Array(Vec::new()));
    for query in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "sort_by=size",
        "cursor=%%%",
    ] {
        let r = env.get(&format!("/segments?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
    }
}

#[tokio::test]
async fn segments_need_the_contact_data_scope() {
    let (env, _) = with_segments(&["Scoped"]).await;
    let campaigns_only = env.token_with("campaign_data account_read");
    let contacts = env.token_with("contact_data");
    for path in ["/segments", "/segments/1"] {
        let r = env.call_as(&campaigns_only, Method::GET, path, None).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert_eq!(r.body[0]["error_key"], "forbidden", "{}", r.text);
        let r = env.call_as(&contacts, Method::GET, path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let r = env.call_as("not-a-token", Method::GET, path, None).await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn a_seeded_account_has_segments_and_a_deleted_one_is_not_listed() {
    let env = Env::start().await;
    env.admin.seed(&env.account, 20, 3).expect("seeded");
    let (names, _) = all_pages(&env, "/segments?sort_by=name").await;
    assert_eq!(
        names,
        [
            "Clicked in the last 3 campaigns",
            "Did not open the last 5 campaigns",
            "Opened the last campaign"
        ]
    );
    let deleted = env.get("/segments/4").await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body["name"], "Old promotion");
}

#[tokio::test]
async fn the_admin_http_api_adds_and_deletes_segments() {
    let env = Env::start().await;
    let (status, body) = admin_call(
        &env,
        Method::POST,
        "/segments",
        Some(serde_json::json!({"name": "From HTTP", "segment_criteria": CRITERIA})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["segment_id"], 1);
    assert_eq!(body["account_id"], env.account.as_str());
    assert_eq!(
        env.get("/segments").await.body["segments"][0]["name"],
        "From HTTP"
    );
    for bad in [
        serde_json::json!({"name": "No criteria"}),
        serde_json::json!({"segment_criteria": CRITERIA}),
        serde_json::json!({"name": "From HTTP", "segment_criteria": CRITERIA}),
        serde_json::json!({"name": "X", "segment_criteria": CRITERIA, "extra": 1}),
    ] {
        let (status, body) = admin_call(&env, Method::POST, "/segments", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = admin_call(
        &env,
        Method::POST,
        "/segments",
        Some(serde_json::json!({"account": "nobody", "name": "Y", "segment_criteria": CRITERIA})),
    )
    .await;
    assert_eq!(status, 404, "an unknown account");

    assert_eq!(
        admin_call(&env, Method::DELETE, "/segments/1", None)
            .await
            .0,
        204
    );
    assert_eq!(
        env.get("/segments").await.body["segments"],
        Value::Array(Vec::new())
    );
    assert_eq!(
        admin_call(&env, Method::DELETE, "/segments/1", None)
            .await
            .0,
        400
    );
    assert_eq!(
        admin_call(&env, Method::DELETE, "/segments/x", None)
            .await
            .0,
        400
    );
    assert_eq!(env.get("/segments/1").await.status, 200, "details stay");
}
