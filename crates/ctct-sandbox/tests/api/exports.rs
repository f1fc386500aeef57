//! Exports and the activity queue: the CSV carries what paging with includes carries,
//! export filters, and the 1,000 queued activities cap.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::Env;

/// Parses RFC 4180 CSV (quoted cells, doubled quotes, CRLF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

#[tokio::test]
async fn the_export_csv_carries_what_paging_with_includes_carries() {
    let env = Env::start().await;
    env.admin.seed(&env.account, 300, 11).expect("seeded");
    let tricky = env
        .post(
            "/contacts",
            json!({"create_source": "Account", "first_name": "Ann, \"The\" Boss", "last_name": "Line\nBreak",
                   "email_address": {"address": "tricky@example.com"}}),
        )
        .await;
    assert_eq!(tricky.status, 201);
    let created = env.post("/activities/contact_exports", json!({})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["activity_id"].as_str().expect("id").to_owned();
    assert_eq!(
        env.get(&format!("/contact_exports/{id}")).await.status,
        404,
        "not ready yet"
    );
    env.admin.complete_activities_now();
    let activity = env.get(&format!("/activities/{id}")).await.body;
    let results = activity["_links"]["results"]["href"]
        .as_str()
        .expect("results")
        .to_owned();
    assert_eq!(results, format!("/v3/contact_exports/{id}"));
    let response = env
        .http
        .get(env.url(&results))
        .bearer_auth(&env.token)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv");
    let rows = parse_csv(&response.text().await.expect("text"));
    let header = &rows[0];
    assert_eq!(header[0], "contact_id");
    assert_eq!(header[20], "list_memberships");
    let fields: Vec<Value> = env.get("/contact_custom_fields").await.body["custom_fields"]
        .as_array()
        .expect("fields")
        .clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    let by_id: HashMap<String, &Vec<String>> =
        rows[1..].iter().map(|r| (r[0].clone(), r)).collect();

    let mut paged = Vec::new();
    let mut href = "/contacts?include=custom_fields,list_memberships&limit=500".to_owned();
    loop {
        let page = env.get(&href).await.body;
        paged.extend(
            page["contacts"]
                .as_array()
                .expect("contacts")
                .iter()
                .cloned(),
        );
        match page["_links"]["next"]["href"].as_str() {
            Some(next) => href = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(rows.len() - 1, paged.len(), "one row per contact");
    for c in &paged {
        let row = by_id[c["contact_id"].as_str().expect("id")];
        let text = |v: &Value| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for (column, value) in [
            ("email_address", &c["email_address"]["address"]),
            (
                "permission_to_send",
                &c["email_address"]["permission_to_send"],
            ),
            ("first_name", &c["first_name"]),
            ("last_name", &c["last_name"]),
            ("job_title", &c["job_title"]),
            ("company_name", &c["company_name"]),
            ("birthday_month", &c["birthday_month"]),
            ("birthday_day", &c["birthday_day"]),
            ("anniversary", &c["anniversary"]),
            ("create_source", &c["create_source"]),
            ("update_source", &c["update_source"]),
            ("created_at", &c["created_at"]),
            ("updated_at", &c["updated_at"]),
            ("opt_in_source", &c["email_address"]["opt_in_source"]),
            ("opt_in_date", &c["email_address"]["opt_in_date"]),
            ("opt_out_source", &c["email_address"]["opt_out_source"]),
            ("opt_out_date", &c["email_address"]["opt_out_date"]),
            ("opt_out_reason", &c["email_address"]["opt_out_reason"]),
            ("confirm_status", &c["email_address"]["confirm_status"]),
        ] {
            assert_eq!(
                row[col(column)],
                text(value),
                "{column} of {}",
                c["contact_id"]
            );
        }
        let lists: Vec<String> = c["list_memberships"]
            .as_array()
            .expect("lists")
            .iter()
            .map(text)
            .collect();
        assert_eq!(row[col("list_memberships")], lists.join(";"));
        for f in &fields {
            let value = c["custom_fields"]
                .as_array()
                .expect("custom_fields")
                .iter()
                .find(|v| v["custom_field_id"] == f["custom_field_id"])
                .map(|v| text(&v["value"]))
                .unwrap_or_default();
            assert_eq!(row[col(&format!("cf:{}", text(&f["name"])))], value);
        }
    }
    let tricky_row = by_id[tricky.body["contact_id"].as_str().expect("id")];
    assert_eq!(tricky_row[col("first_name")], "Ann, \"The\" Boss");
    assert_eq!(tricky_row[col("last_name")], "Line\nBreak");
}

#[tokio::test]
async fn exports_honour_status_list_and_field_filters() {
    let env = Env::start().await;
    let list = env.list("Only").await;
    let member = env
        .post(
            "/contacts",
            json!({"create_source": "Account", "email_address": {"address": "in@example.com"}, "list_memberships": [list]}),
        )
        .await
        .body["contact_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let gone = env.contact("gone@example.com").await;
    env.delete(&format!("/contacts/{gone}")).await;
    let export = |body: Value| {
        let env = &env;
        async move {
            let r = env.post("/activities/contact_exports", body).await;
            assert_eq!(r.status, 201, "{}", r.text);
            env.admin.complete_activities_now();
            let id = r.body["activity_id"].as_str().expect("id").to_owned();
            let text = env
                .http
                .get(env.url(&format!("/contact_exports/{id}")))
                .bearer_auth(&env.token)
                .send()
                .await
                .expect("answers")
                .text()
                .await
                .expect("text");
            parse_csv(&text)
        }
    };
    let rows = export(json!({"list_ids": [list], "fields": ["email_address"]})).await;
    assert_eq!(
        rows,
        vec![
            vec!["contact_id".to_owned(), "email_address".into()],
            vec![member, "in@example.com".into()]
        ]
    );
    let rows = export(json!({"status": "removed"})).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][0], gone);
    assert!(
        !rows[1][rows[0]
            .iter()
            .position(|h| h == "deleted_at")
            .expect("column")]
        .is_empty()
    );
    assert_eq!(
        env.post("/activities/contact_exports", json!({"fields": ["bogus"]}))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn the_thousand_and_first_queued_activity_is_refused_with_a_429() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    for i in 0..1_000 {
        let r = env.post("/activities/contact_exports", json!({})).await;
        assert_eq!(r.status, 201, "activity {i}: {}", r.text);
    }
    let refused = env.post("/activities/contact_exports", json!({})).await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.body["error_key"],
        "queued_activities_limit_exceeded"
    );
    env.admin.advance_clock(Duration::from_secs(2));
    let r = env.post("/activities/contact_exports", json!({})).await;
    assert_eq!(r.status, 201, "finished activities free the queue");
    let listed = env.get("/activities?limit=500&state=completed").await;
    assert_eq!(listed.body["activities"].as_array().expect("a").len(), 500);
    assert!(listed.body["_links"]["next"]["href"].is_string());
}
