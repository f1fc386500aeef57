//! Campaign reports: tracking reports per activity (shapes, newest first, paging through
//! `_links.next`, filters), stats and summaries computed from the same per-contact events,
//! limits and their 400s, 404s, the `campaign_data` scope, deterministic generation, events
//! appearing over time, admin-added events and the state file.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ctct_sandbox::{SandboxOptions, TrackingEvent, TrackingKind};
use reqwest::Method;
use serde_json::{Value, json};

use super::harness::{ALL_SCOPES, Env, read};

const TRACKING: [&str; 8] = [
    "sends",
    "opens",
    "unique_opens",
    "didnotopens",
    "clicks",
    "forwards",
    "optouts",
    "bounces",
];

/// Every row of a report, following `_links.next` until the last page.
pub(super) async fn all_rows(env: &Env, first: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut url = first.to_owned();
    for _ in 0..10_000 {
        let r = env.get(&url).await;
        assert_eq!(r.status, 200, "{url}: {}", r.text);
        let page = r.body["tracking_activities"]
            .as_array()
            .unwrap_or_else(|| panic!("tracking_activities in {}", r.text));
        rows.extend(page.iter().cloned());
        match r.body["_links"]["next"]["href"].as_str() {
            Some(next) => {
                assert!(!page.is_empty(), "a page with a next link has rows");
                url = next.to_owned();
            }
            None => {
                assert_eq!(
                    r.body["_links"],
                    json!({}),
                    "the last page has no next link"
                );
                return rows;
            }
        }
    }
    panic!("{first}: paging does not end");
}

/// The primary activity of a campaign.
pub(super) async fn primary_activity(env: &Env, campaign: &str) -> String {
    let r = env.get(&format!("/emails/{campaign}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["campaign_activities"][0]["campaign_activity_id"]
        .as_str()
        .expect("activity id")
        .to_owned()
}

/// A sandbox whose account is seeded with `contacts` contacts (seed 5) at a fixed instant;
/// returns it with the seeded sent campaign and its primary activity.
pub(super) async fn seeded(contacts: usize) -> (Env, String, String) {
    let env = Env::start().await;
    env.admin.freeze_clock();
    env.admin.set_clock(
        chrono::DateTime::parse_from_rfc3339("2030-03-01T12:00:00Z")
            .expect("a date")
            .into(),
    );
    env.admin
        .seed(&env.account, contacts, 5)
        .expect("the account is seeded");
    let env = Env {
        token: env
            .admin
            .issue_tokens(&env.account, ALL_SCOPES)
            .expect("tokens")
            .access_token,
        ..env
    };
    let r = env.get("/emails?limit=10").await;
    let campaign = r.body["campaigns"]
        .as_array()
        .expect("campaigns")
        .iter()
        .find(|c| c["current_status"] == "Done")
        .unwrap_or_else(|| panic!("a sent campaign in {}", r.text))["campaign_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let activity = primary_activity(&env, &campaign).await;
    (env, campaign, activity)
}

fn unique_contacts(rows: &[Value]) -> usize {
    rows.iter()
        .map(|r| r["contact_id"].as_str().expect("contact_id").to_owned())
        .collect::<BTreeSet<_>>()
        .len()
}

pub(super) async fn activity_stats(env: &Env, activity: &str) -> Value {
    let r = env
        .get(&format!(
            "/reports/stats/email_campaign_activities/{activity}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["results"][0]["stats"].clone()
}

pub(super) async fn tracking(env: &Env, activity: &str, report: &str) -> Vec<Value> {
    all_rows(
        env,
        &format!("/reports/email_reports/{activity}/tracking/{report}"),
    )
    .await
}

#[tokio::test]
async fn aggregates_equal_the_per_contact_events_in_every_report() {
    let (env, campaign, activity) = seeded(3_000).await;
    let stats = activity_stats(&env, &activity).await;
    let mut rows = BTreeMap::new();
    for report in TRACKING {
        rows.insert(report, tracking(&env, &activity, report).await);
    }
    let n = |v: &Value| v.as_u64().expect("a count") as usize;
    assert!(n(&stats["em_sends"]) > 100, "{stats}");
    assert!(
        n(&stats["em_opens"]) > 0 && n(&stats["em_clicks"]) > 0,
        "{stats}"
    );
    assert!(n(&stats["em_bounces"]) > 0, "{stats}");
    assert_eq!(rows["sends"].len(), n(&stats["em_sends"]));
    assert_eq!(unique_contacts(&rows["sends"]), rows["sends"].len());
    assert_eq!(rows["opens"].len(), n(&stats["em_opens_all"]));
    assert_eq!(unique_contacts(&rows["opens"]), n(&stats["em_opens"]));
    assert_eq!(rows["unique_opens"].len(), n(&stats["em_opens"]));
    assert_eq!(rows["clicks"].len(), n(&stats["em_clicks_all"]));
    assert_eq!(unique_contacts(&rows["clicks"]), n(&stats["em_clicks"]));
    assert_eq!(unique_contacts(&rows["bounces"]), n(&stats["em_bounces"]));
    assert_eq!(unique_contacts(&rows["optouts"]), n(&stats["em_optouts"]));
    assert_eq!(unique_contacts(&rows["forwards"]), n(&stats["em_forwards"]));
    assert_eq!(rows["didnotopens"].len(), n(&stats["em_not_opened"]));
    assert_eq!(
        n(&stats["em_not_opened"]),
        n(&stats["em_sends"]) - n(&stats["em_opens"]) - n(&stats["em_bounces"])
    );
    let devices: usize = ["computer", "mobile", "tablet", "other"]
        .iter()
        .map(|d| n(&stats[format!("em_opens_all_{d}")]))
        .sum();
    assert_eq!(devices, n(&stats["em_opens_all"]));
    let codes: usize = [
        "nonexistent_address",
        "undeliverable",
        "mailbox_full",
        "suspended",
        "vacation",
        "other",
        "blocked",
    ]
    .iter()
    .map(|c| n(&stats[format!("em_bounces_{c}")]))
    .sum();
    assert_eq!(codes, n(&stats["em_bounces"]));
    for (report, kind) in [
        ("sends", "em_sends"),
        ("opens", "em_opens"),
        ("clicks", "em_clicks"),
        ("bounces", "em_bounces"),
        ("didnotopens", "em_didnotopens"),
    ] {
        assert!(
            rows[report]
                .iter()
                .all(|r| r["tracking_activity_type"] == kind
                    && r["campaign_activity_id"] == *activity),
            "{report}"
        );
    }
    // Every per-contact report lists the newest first.
    for report in [
        "opens",
        "clicks",
        "bounces",
        "optouts",
        "forwards",
        "unique_opens",
    ] {
        let times: Vec<&str> = rows[report]
            .iter()
            .map(|r| r["created_time"].as_str().expect("created_time"))
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "{report} is not newest first"
        );
    }
    // Did-not-opens are the recipients that neither opened nor bounced.
    let ids = |rows: &[Value]| -> BTreeSet<String> {
        rows.iter()
            .map(|r| r["contact_id"].as_str().expect("contact_id").to_owned())
            .collect()
    };
    let sent = ids(&rows["sends"]);
    let engaged: BTreeSet<String> = &ids(&rows["opens"]) | &ids(&rows["bounces"]);
    let did_not_open = ids(&rows["didnotopens"]);
    assert_eq!(did_not_open, &sent - &engaged);

    // Link report: unique clickers per url_id, as the clicks report has them.
    let mut clickers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows["clicks"] {
        clickers
            .entry(r["url_id"].as_str().expect("url_id").to_owned())
            .or_default()
            .insert(r["contact_id"].as_str().expect("id").to_owned());
    }
    let links = env
        .get(&format!("/reports/email_reports/{activity}/links"))
        .await;
    assert_eq!(links.status, 200, "{}", links.text);
    let counts: BTreeMap<String, usize> = links.body["link_click_counts"]
        .as_array()
        .expect("link_click_counts")
        .iter()
        .map(|l| {
            (
                l["url_id"].as_str().expect("url_id").to_owned(),
                n(&l["unique_clicks"]),
            )
        })
        .collect();
    let expected: BTreeMap<String, usize> =
        clickers.iter().map(|(k, v)| (k.clone(), v.len())).collect();
    assert_eq!(counts, expected);
    // A url_id filter keeps that link's clicks only.
    let (url_id, _) = counts.iter().next().expect("a clicked link");
    let one = tracking(&env, &activity, &format!("clicks?url_id={url_id}")).await;
    assert_eq!(
        one.len(),
        rows["clicks"]
            .iter()
            .filter(|r| r["url_id"] == *url_id)
            .count()
    );

    // The campaign's stats and its summary carry the same numbers.
    let campaign_stats = env
        .get(&format!("/reports/stats/email_campaigns/{campaign}"))
        .await;
    assert_eq!(campaign_stats.status, 200, "{}", campaign_stats.text);
    let c = &campaign_stats.body["results"][0];
    for key in [
        "em_sends",
        "em_opens",
        "em_clicks",
        "em_bounces",
        "em_optouts",
        "em_not_opened",
    ] {
        assert_eq!(c["stats"][key], stats[key], "{key}");
    }
    let summary = env
        .get("/reports/summary_reports/email_campaign_summaries")
        .await;
    assert_eq!(summary.status, 200, "{}", summary.text);
    let s = summary.body["bulk_email_campaign_summaries"]
        .as_array()
        .expect("summaries")
        .iter()
        .find(|s| s["campaign_id"] == *campaign)
        .expect("the sent campaign is summarised")
        .clone();
    for (key, stat) in [
        ("sends", "em_sends"),
        ("opens", "em_opens"),
        ("clicks", "em_clicks"),
        ("forwards", "em_forwards"),
        ("optouts", "em_optouts"),
        ("abuse", "em_abuse"),
        ("bounces", "em_bounces"),
        ("not_opened", "em_not_opened"),
    ] {
        assert_eq!(s["unique_counts"][key], stats[stat], "{key}");
    }
}

#[tokio::test]
async fn pages_follow_next_links_without_gaps_or_repeats() {
    let (env, _, activity) = seeded(2_000).await;
    for report in ["sends", "opens", "unique_opens", "didnotopens", "clicks"] {
        let whole = tracking(&env, &activity, report).await;
        let paged = tracking(&env, &activity, &format!("{report}?limit=7")).await;
        assert!(whole.len() > 7, "{report}: {} rows", whole.len());
        assert_eq!(paged, whole, "{report} in pages of 7");
        let first = env
            .get(&format!(
                "/reports/email_reports/{activity}/tracking/{report}?limit=7"
            ))
            .await;
        assert_eq!(
            first.body["tracking_activities"].as_array().map(Vec::len),
            Some(7)
        );
        let href = first.body["_links"]["next"]["href"].as_str().expect("next");
        assert!(
            href.starts_with(&format!(
                "/v3/reports/email_reports/{activity}/tracking/{report}?cursor="
            )),
            "{href}"
        );
    }
    // Bounce codes filter (repeated parameter), and the filter is carried by the cursor.
    let bounces = tracking(&env, &activity, "bounces").await;
    let b_or_d = tracking(
        &env,
        &activity,
        "bounces?bounce_code=B&bounce_code=D&limit=1",
    )
    .await;
    let want: Vec<_> = bounces
        .iter()
        .filter(|r| r["bounce_code"] == "B" || r["bounce_code"] == "D")
        .cloned()
        .collect();
    assert_eq!(b_or_d, want);
    // Summaries page too.
    let summaries = env
        .get("/reports/summary_reports/email_campaign_summaries?limit=1")
        .await;
    assert_eq!(summaries.status, 200, "{}", summaries.text);
    assert_eq!(
        summaries.body["_links"],
        json!({}),
        "one sent campaign, one page"
    );
}

#[tokio::test]
async fn limits_and_bad_parameters_are_400_stats_errors() {
    let (env, campaign, activity) = seeded(50).await;
    let base = format!("/reports/email_reports/{activity}");
    let eleven = vec![activity.clone(); 11].join(",");
    let many_campaigns = vec![campaign.clone(); 151].join(",");
    for (path, key) in [
        (format!("{base}/tracking/opens?limit=0"), "limit"),
        (format!("{base}/tracking/sends?limit=501"), "limit"),
        (format!("{base}/tracking/clicks?limit=abc"), "limit"),
        (format!("{base}/tracking/clicks?url_id=abc"), "url_id"),
        (
            format!("{base}/tracking/bounces?bounce_code=Q"),
            "bounce_code",
        ),
        (format!("{base}/tracking/opens?cursor=%%%"), "cursor"),
        (format!("{base}/links?no_clicks=maybe"), "no_clicks"),
        (
            "/reports/summary_reports/email_campaign_summaries?limit=501".to_owned(),
            "limit",
        ),
        (
            format!("/reports/stats/email_campaign_activities/{eleven}"),
            "campaign_activity_ids",
        ),
        (
            format!("/reports/stats/email_campaigns/{many_campaigns}"),
            "campaign_ids",
        ),
    ] {
        let r = env.get(&path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        let error_key = r.body["error_key"].as_str().unwrap_or_default();
        assert!(
            error_key.starts_with("reportingsvc.") && error_key.contains(key),
            "{path}: {}",
            r.text
        );
    }
    // The largest allowed values are accepted.
    let ten = vec![activity.clone(); 10].join(",");
    for path in [
        format!("{base}/tracking/sends?limit=500"),
        format!("{base}/tracking/opens?limit=1"),
        "/reports/summary_reports/email_campaign_summaries?limit=500".to_owned(),
        format!("/reports/stats/email_campaign_activities/{ten}"),
    ] {
        let r = env.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn unknown_and_malformed_activities_are_404() {
    let (env, campaign, activity) = seeded(50).await;
    let unknown = "0b9c3f5e-1111-4222-8333-444455556666";
    for path in [
        format!("/reports/email_reports/{unknown}/tracking/opens"),
        format!("/reports/email_reports/{unknown}/links"),
        "/reports/email_reports/not-an-id/tracking/sends".to_owned(),
        format!("/reports/stats/email_campaign_activities/{unknown}"),
        format!("/reports/stats/email_campaign_activities/{activity},nope"),
        format!("/reports/stats/email_campaigns/{unknown}"),
    ] {
        let r = env.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert!(
            r.body["error_key"]
                .as_str()
                .is_some_and(|k| k.starts_with("reportingsvc.not_found.")),
            "{path}: {}",
            r.text
        );
    }
    // Known and unknown together: the known one's stats, the unknown one under errors.
    for path in [
        format!("/reports/stats/email_campaign_activities/{activity},{unknown}"),
        format!("/reports/stats/email_campaigns/{campaign},{unknown}"),
    ] {
        let r = env.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.body["results"].as_array().map(Vec::len), Some(1));
        assert_eq!(r.body["errors"].as_array().map(Vec::len), Some(1));
    }
    // An unknown tracking report is an unknown path.
    let r = env
        .get(&format!("/reports/email_reports/{activity}/tracking/nope"))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn reports_need_the_campaign_data_scope() {
    let (env, campaign, activity) = seeded(50).await;
    let contacts_only = env.token_with("contact_data account_read");
    let campaigns = env.token_with("campaign_data");
    for path in [
        format!("/reports/email_reports/{activity}/tracking/sends"),
        format!("/reports/email_reports/{activity}/links"),
        format!("/reports/stats/email_campaign_activities/{activity}"),
        format!("/reports/stats/email_campaigns/{campaign}"),
        "/reports/summary_reports/email_campaign_summaries".to_owned(),
    ] {
        let r = env.call_as(&contacts_only, Method::GET, &path, None).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert_eq!(r.body[0]["error_key"], "forbidden", "{}", r.text);
        let r = env.call_as(&campaigns, Method::GET, &path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn the_same_seed_generates_the_same_reports() {
    let (a, _, activity_a) = seeded(1_500).await;
    let (b, _, activity_b) = seeded(1_500).await;
    assert_eq!(activity_a, activity_b, "seeded ids are deterministic");
    for report in ["sends", "opens", "clicks", "bounces", "optouts", "forwards"] {
        let rows_a = tracking(&a, &activity_a, report).await;
        let rows_b = tracking(&b, &activity_b, report).await;
        assert_eq!(rows_a, rows_b, "{report}");
    }
    assert_eq!(
        activity_stats(&a, &activity_a).await,
        activity_stats(&b, &activity_b).await
    );
    // Another seed sends differently.
    b.admin.seed(&b.account, 1_500, 6).expect("re-seeded");
    let (_, other) = {
        let r = b.get("/emails?limit=10").await;
        let id = r.body["campaigns"][0]["campaign_id"]
            .as_str()
            .expect("id")
            .to_owned();
        let activity = primary_activity(&b, &id).await;
        (id, activity)
    };
    assert_ne!(
        tracking(&a, &activity_a, "opens").await,
        tracking(&b, &other, "opens").await
    );
}

/// A campaign with two links sent through the API to a list of `members` new contacts
/// (plus three contacts outside the list); returns (campaign, activity, member ids).
async fn campaign_to_list(env: &Env, members: usize) -> (String, String, BTreeSet<String>) {
    let owner = format!("owner@{}.example", env.account);
    let list = env.list("Report list").await;
    let mut ids = BTreeSet::new();
    for n in 0..members + 3 {
        let mut body = json!({
            "email_address": {"address": format!("r{n}@example.com"), "permission_to_send": "implicit"},
            "first_name": "R", "last_name": format!("N{n}"), "create_source": "Account",
        });
        if n < members {
            body["list_memberships"] = json!([list]);
        }
        let r = env.post("/contacts", body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        if n < members {
            ids.insert(r.body["contact_id"].as_str().expect("id").to_owned());
        }
    }
    let html = r#"<html><body>[[trackingImage]]<a href="https://shop.example.com/a">A</a>
        <a href='https://shop.example.com/b'>B</a><a href="https://shop.example.com/a">A</a></body></html>"#;
    let r = env
        .post(
            "/emails",
            json!({"name": "Reported", "email_campaign_activities": [{"format_type": 5,
            "from_name": "R", "from_email": owner, "reply_to_email": owner, "subject": "S",
            "html_content": html}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let campaign = r.body["campaign_id"].as_str().expect("id").to_owned();
    let activity = r.body["campaign_activities"][0]["campaign_activity_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = env
        .put(
            &format!("/emails/activities/{activity}"),
            json!({"from_name": "R", "from_email": owner, "reply_to_email": owner,
                "subject": "S", "contact_list_ids": [list]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (campaign, activity, ids)
}

#[tokio::test]
async fn a_send_reports_its_list_recipients_and_events_arrive_over_the_following_hours() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    let (campaign, activity, members) = campaign_to_list(&env, 300).await;
    let base = format!("/reports/email_reports/{activity}");
    // Not sent yet: empty reports, no stats.
    assert!(tracking(&env, &activity, "sends").await.is_empty());
    let r = env
        .get(&format!(
            "/reports/stats/email_campaign_activities/{activity}"
        ))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);

    let r = env
        .post(
            &format!("/emails/activities/{activity}/schedules"),
            json!({"scheduled_date": "0"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    env.admin.advance_clock(Duration::from_secs(11));
    let sends = tracking(&env, &activity, "sends").await;
    let sent: BTreeSet<String> = sends
        .iter()
        .map(|r| r["contact_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(sent, members, "exactly the list's contacts were sent it");
    let first = activity_stats(&env, &activity).await;
    let later_opens = first["em_opens"].as_u64().expect("opens");

    env.admin.advance_clock(Duration::from_secs(7 * 3600));
    let after = activity_stats(&env, &activity).await;
    assert!(
        after["em_opens"].as_u64().expect("opens") > later_opens,
        "opens arrive in the hours after the send: {first} then {after}"
    );
    let links = env.get(&format!("{base}/links?no_clicks=true")).await;
    let urls: Vec<&str> = links.body["link_click_counts"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["link_url"].as_str().expect("url"))
        .collect();
    assert_eq!(
        urls,
        vec!["https://shop.example.com/a", "https://shop.example.com/b"],
        "the links of the HTML, once each"
    );
    for click in tracking(&env, &activity, "clicks").await {
        assert!(urls.contains(&click["link_url"].as_str().expect("url")));
    }
    let summary = env
        .get("/reports/summary_reports/email_campaign_summaries")
        .await;
    assert_eq!(
        summary.body["bulk_email_campaign_summaries"][0]["campaign_id"],
        *campaign
    );

    // A scheduled send generates its reports when it falls due.
    let (_, scheduled, _) = {
        let r = env
            .post("/contact_lists", json!({"name": "Second list"}))
            .await;
        let list = r.body["list_id"].as_str().expect("id").to_owned();
        let owner = format!("owner@{}.example", env.account);
        let r = env
            .post(
                "/emails",
                json!({"name": "Later", "email_campaign_activities": [{"format_type": 5,
                "from_name": "R", "from_email": owner, "reply_to_email": owner, "subject": "S",
                "html_content": "<html><body>[[trackingImage]]</body></html>"}]}),
            )
            .await;
        let activity = r.body["campaign_activities"][0]["campaign_activity_id"]
            .as_str()
            .expect("id")
            .to_owned();
        let c = env.contact("later@example.com").await;
        let r = env
            .put(
                &format!("/contacts/{c}"),
                json!({"email_address": {"address": "later@example.com"}, "update_source": "Account",
                    "list_memberships": [list]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = env
            .put(
                &format!("/emails/activities/{activity}"),
                json!({"from_name": "R", "from_email": owner, "reply_to_email": owner,
                    "subject": "S", "contact_list_ids": [list]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let at = (env.admin.now() + chrono::Duration::hours(1)).to_rfc3339();
        let r = env
            .post(
                &format!("/emails/activities/{activity}/schedules"),
                json!({"scheduled_date": at}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        (list, activity, c)
    };
    assert!(tracking(&env, &scheduled, "sends").await.is_empty());
    env.admin.advance_clock(Duration::from_secs(3600 + 11));
    assert_eq!(tracking(&env, &scheduled, "sends").await.len(), 1);
    let links = env
        .get(&format!(
            "/reports/email_reports/{scheduled}/links?no_clicks=true"
        ))
        .await;
    assert_eq!(
        links.body["link_click_counts"].as_array().map(Vec::len),
        Some(3),
        "a body without links gets the fixed set: {}",
        links.text
    );
}

pub(super) async fn admin_post(env: &Env, path: &str, body: Value) -> (u16, Value) {
    let r = read(
        env.http
            .post(format!("{}/__sandbox{path}", env.origin))
            .bearer_auth(&env.sandbox.credentials().admin_token)
            .json(&body)
            .send()
            .await
            .expect("admin answers"),
    )
    .await;
    (r.status, r.body)
}

#[tokio::test]
async fn admin_added_events_show_up_in_tracking_and_stats() {
    let (env, _, activity) = seeded(500).await;
    let before = activity_stats(&env, &activity).await;
    let quiet = tracking(&env, &activity, "didnotopens").await;
    let contact = quiet[0]["contact_id"].as_str().expect("id").to_owned();
    let links = env
        .get(&format!(
            "/reports/email_reports/{activity}/links?no_clicks=true"
        ))
        .await;
    let url_id = links.body["link_click_counts"][1]["url_id"]
        .as_str()
        .expect("url_id")
        .to_owned();
    let (status, body) = admin_post(
        &env,
        &format!("/reports/{activity}/events"),
        json!({"events": [
            {"type": "open", "contact_id": contact, "device_type": "tablet"},
            {"type": "click", "contact_id": contact, "url_id": url_id},
            {"type": "forward", "contact_id": contact},
            {"type": "optout", "contact_id": contact, "opt_out_reason": "No longer interested"},
        ]}),
    )
    .await;
    assert_eq!((status, &body), (201, &json!({"added": 4})));
    let after = activity_stats(&env, &activity).await;
    let delta = |key: &str| after[key].as_u64().expect(key) - before[key].as_u64().expect(key);
    assert_eq!(delta("em_opens"), 1);
    assert_eq!(delta("em_opens_all"), 1);
    assert_eq!(delta("em_opens_all_tablet"), 1);
    assert_eq!(delta("em_clicks_all"), 1);
    assert_eq!(
        before["em_not_opened"].as_u64().expect("n") - after["em_not_opened"].as_u64().expect("n"),
        1
    );
    let opens = tracking(&env, &activity, "opens").await;
    assert_eq!(
        opens[0]["contact_id"], *contact,
        "the newest open comes first"
    );
    assert_eq!(opens[0]["device_type"], "tablet");
    let clicks = tracking(&env, &activity, "clicks").await;
    assert_eq!(
        (
            clicks[0]["contact_id"].as_str(),
            clicks[0]["url_id"].as_str()
        ),
        (Some(contact.as_str()), Some(url_id.as_str()))
    );
    let optouts = tracking(&env, &activity, "optouts").await;
    assert_eq!(optouts[0]["opt_out_reason"], "No longer interested");
    assert!(
        !tracking(&env, &activity, "didnotopens")
            .await
            .iter()
            .any(|r| r["contact_id"] == *contact)
    );

    // The typed twin; a bounce by another quiet recipient.
    let other: uuid::Uuid = quiet[1]["contact_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let mut bounce = TrackingEvent::new(TrackingKind::Bounce, other);
    bounce.bounce_code = Some("Z".to_owned());
    let added = env
        .admin
        .add_tracking_events(&env.account, activity.parse().expect("uuid"), &[bounce])
        .expect("added");
    assert_eq!(added, 1);
    let z = tracking(&env, &activity, "bounces?bounce_code=Z").await;
    assert!(z.iter().any(|r| r["contact_id"] == quiet[1]["contact_id"]));

    // Refused, all or nothing: a contact that was not sent the activity, an unknown activity.
    let outsider = env.contact("outsider@example.com").await;
    let (status, body) = admin_post(
        &env,
        &format!("/reports/{activity}/events"),
        json!({"events": [
            {"type": "open", "contact_id": contact},
            {"type": "open", "contact_id": outsider},
        ]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("events[1]")),
        "{body}"
    );
    let (status, _) = admin_post(
        &env,
        "/reports/0b9c3f5e-1111-4222-8333-444455556666/events",
        json!({"events": [{"type": "open", "contact_id": contact}]}),
    )
    .await;
    assert_eq!(status, 400);
    let unchanged = activity_stats(&env, &activity).await;
    assert_eq!(unchanged["em_opens_all"], after["em_opens_all"]);
}

#[tokio::test]
async fn reports_are_kept_in_the_state_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sandbox.json");
    let opts = SandboxOptions {
        state_file: Some(path.clone()),
        seed_contacts: 300,
        ..SandboxOptions::for_tests()
    };
    let env = Env::start_with(opts.clone()).await;
    let r = env.get("/emails?limit=10").await;
    let campaign = r.body["campaigns"][0]["campaign_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let activity = primary_activity(&env, &campaign).await;
    let contact = tracking(&env, &activity, "didnotopens").await[0]["contact_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    env.admin
        .add_tracking_events(
            &env.account,
            activity.parse().expect("uuid"),
            &[TrackingEvent::new(TrackingKind::Open, contact)],
        )
        .expect("added");
    let stats = activity_stats(&env, &activity).await;
    let opens = tracking(&env, &activity, "opens").await;
    env.admin.save_state().expect("saved");
    let Env { sandbox, .. } = env;
    sandbox.shutdown().await;

    let env = Env::start_with(SandboxOptions {
        seed_contacts: 0,
        ..opts
    })
    .await;
    assert_eq!(activity_stats(&env, &activity).await, stats);
    assert_eq!(tracking(&env, &activity, "opens").await, opens);
}

#[tokio::test]
async fn the_admin_view_of_the_reports_equals_what_the_api_serves() {
    let (env, campaign, activity) = seeded(800).await;
    let reports = env
        .admin
        .campaign_reports(&env.account)
        .expect("the reports");
    assert_eq!(reports.len(), 1, "one sent activity");
    let view = &reports[0];
    assert_eq!(
        (
            view.campaign_id.as_str(),
            view.campaign_activity_id.as_str()
        ),
        (campaign.as_str(), activity.as_str())
    );
    assert_eq!(view.stats, activity_stats(&env, &activity).await);
    for (report, rows) in [
        ("sends", &view.sends),
        ("opens", &view.opens),
        ("clicks", &view.clicks),
        ("bounces", &view.bounces),
        ("optouts", &view.optouts),
        ("forwards", &view.forwards),
        ("didnotopens", &view.didnotopens),
    ] {
        assert_eq!(*rows, tracking(&env, &activity, report).await, "{report}");
    }
    let links = env
        .get(&format!(
            "/reports/email_reports/{activity}/links?no_clicks=true"
        ))
        .await;
    assert_eq!(json!(view.links), links.body["link_click_counts"]);
    let summary = env
        .get("/reports/summary_reports/email_campaign_summaries")
        .await;
    assert_eq!(
        summary.body["bulk_email_campaign_summaries"][0]["last_sent_date"],
        json!(view.last_sent_date)
    );
    let r = read(
        env.http
            .get(format!("{}/__sandbox/reports", env.origin))
            .bearer_auth(&env.sandbox.credentials().admin_token)
            .send()
            .await
            .expect("admin answers"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["activities"][0]["stats"], view.stats);
    assert_eq!(
        r.body["activities"][0]["opens"].as_array().map(Vec::len),
        Some(view.opens.len())
    );
}

#[tokio::test]
async fn summaries_list_sent_campaigns_newest_first_in_pages() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    let owner = format!("owner@{}.example", env.account);
    let list = env.list("Summary list").await;
    for n in 0..20 {
        let r = env
            .post(
                "/contacts",
                json!({"email_address": {"address": format!("s{n}@example.com")},
                    "create_source": "Account", "list_memberships": [list]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let mut sent = Vec::new();
    for name in ["First", "Second", "Third", "Never sent"] {
        let r = env
            .post(
                "/emails",
                json!({"name": name, "email_campaign_activities": [{"format_type": 5,
                "from_name": "R", "from_email": owner, "reply_to_email": owner, "subject": name,
                "html_content": "<html><body>[[trackingImage]]</body></html>"}]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        if name == "Never sent" {
            break;
        }
        let activity = r.body["campaign_activities"][0]["campaign_activity_id"]
            .as_str()
            .expect("id")
            .to_owned();
        let put = env
            .put(
                &format!("/emails/activities/{activity}"),
                json!({"from_name": "R", "from_email": owner, "reply_to_email": owner,
                    "subject": name, "contact_list_ids": [list]}),
            )
            .await;
        assert_eq!(put.status, 200, "{}", put.text);
        let schedule = env
            .post(
                &format!("/emails/activities/{activity}/schedules"),
                json!({"scheduled_date": "0"}),
            )
            .await;
        assert_eq!(schedule.status, 201, "{}", schedule.text);
        env.admin.advance_clock(Duration::from_secs(60));
        sent.push(r.body["campaign_id"].as_str().expect("id").to_owned());
    }
    env.admin.advance_clock(Duration::from_secs(8 * 3600));

    let mut url = "/reports/summary_reports/email_campaign_summaries?limit=1".to_owned();
    let mut listed = Vec::new();
    loop {
        let r = env.get(&url).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let page = r.body["bulk_email_campaign_summaries"]
            .as_array()
            .expect("summaries");
        assert_eq!(page.len(), 1, "{}", r.text);
        let counts = &page[0]["unique_counts"];
        assert_eq!(counts["sends"], 20);
        let opens = counts["opens"].as_u64().expect("opens");
        let delivered = 20 - counts["bounces"].as_u64().expect("bounces");
        let expected = (opens as f64 * 1000.0 / delivered as f64).round() / 10.0;
        assert_eq!(r.body["aggregate_percents"]["open"], json!(expected));
        listed.push(page[0]["campaign_id"].as_str().expect("id").to_owned());
        match r.body["_links"]["next"]["href"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    sent.reverse();
    assert_eq!(
        listed, sent,
        "sent campaigns only, most recently sent first"
    );
}

#[tokio::test]
async fn an_admin_sent_campaign_is_reported_like_one_sent_through_the_api() {
    let (env, _, seeded_activity) = seeded(800).await;
    let everyone = env
        .admin
        .campaign_reports(&env.account)
        .expect("the reports")
        .iter()
        .find(|r| r.campaign_activity_id == seeded_activity)
        .expect("the seeded send")
        .sends
        .len();
    let sent_at = env.admin.now() - chrono::Duration::days(40);
    let (campaign, activity, to) = env
        .admin
        .add_sent_campaign(&env.account, "Admin sent", sent_at, Some(100))
        .expect("added");
    assert_eq!(to, 100);
    let (_, all, to_all_count) = env
        .admin
        .add_sent_campaign(&env.account, "Admin sent to all", sent_at, None)
        .expect("added");
    assert!(
        env.admin
            .add_sent_campaign(&env.account, "admin SENT", sent_at, None)
            .is_err(),
        "names stay unique"
    );

    let r = env.get(&format!("/emails/{campaign}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["current_status"], "Done", "{}", r.text);
    assert_eq!(
        primary_activity(&env, &campaign.to_string()).await,
        activity.to_string()
    );
    let stats = activity_stats(&env, &activity.to_string()).await;
    assert_eq!(stats["em_sends"], 100, "{stats}");
    assert_eq!(
        tracking(&env, &activity.to_string(), "sends").await.len(),
        100
    );
    let summaries = env
        .get("/reports/summary_reports/email_campaign_summaries")
        .await;
    let summary = summaries.body["bulk_email_campaign_summaries"]
        .as_array()
        .expect("summaries")
        .iter()
        .find(|s| s["campaign_id"] == campaign.to_string())
        .unwrap_or_else(|| panic!("the campaign in {}", summaries.text))
        .clone();
    let listed: chrono::DateTime<chrono::Utc> = summary["last_sent_date"]
        .as_str()
        .expect("a send time")
        .parse()
        .expect("a time");
    assert_eq!(listed.timestamp(), sent_at.timestamp());

    let reports = env.admin.campaign_reports(&env.account).expect("reports");
    let report = |id: uuid::Uuid| {
        reports
            .iter()
            .find(|r| r.campaign_activity_id == id.to_string())
            .expect("reported")
    };
    let to_all = report(all);
    assert!(
        to_all.sends.len() > everyone,
        "every list's recipients, more than the seeded send's one list: {} vs {everyone}",
        to_all.sends.len()
    );
    assert_eq!(to_all.sends.len(), to_all_count);
    assert!(!to_all.opens.is_empty() && !to_all.clicks.is_empty());
    assert_eq!(report(activity).sends.len(), 100);
}
