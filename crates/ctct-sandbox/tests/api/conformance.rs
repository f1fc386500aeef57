//! Spec conformance: every implemented operation is called with its richest answer (all
//! includes, every subresource filled) and its 2xx body is validated against the OpenAPI
//! response schema (the harness validates every call; this test proves each operation was
//! covered). OAuth answers are checked against `AccessTokenResponse` and `OAuthError`.

use std::collections::BTreeSet;

use ctct_sandbox::{TrackingEvent, TrackingKind};
use reqwest::Method;
use serde_json::{Value, json};

use super::harness::{Env, Resp, read};
use super::spec::spec;

/// Every operation the sandbox implements (method, spec path template).
const IMPLEMENTED: [(&str, &str); 64] = [
    ("GET", "/contacts"),
    ("POST", "/contacts"),
    ("GET", "/contacts/{contact_id}"),
    ("PUT", "/contacts/{contact_id}"),
    ("DELETE", "/contacts/{contact_id}"),
    ("POST", "/contacts/sign_up_form"),
    ("GET", "/contacts/counts"),
    ("GET", "/contact_custom_fields"),
    ("POST", "/contact_custom_fields"),
    ("GET", "/contact_custom_fields/{custom_field_id}"),
    ("PUT", "/contact_custom_fields/{custom_field_id}"),
    ("DELETE", "/contact_custom_fields/{custom_field_id}"),
    ("GET", "/contact_lists"),
    ("POST", "/contact_lists"),
    ("GET", "/contact_lists/{list_id}"),
    ("PUT", "/contact_lists/{list_id}"),
    ("DELETE", "/contact_lists/{list_id}"),
    ("GET", "/segments"),
    ("GET", "/segments/{segment_id}"),
    ("GET", "/contact_tags"),
    ("POST", "/contact_tags"),
    ("GET", "/contact_tags/{tag_id}"),
    ("PUT", "/contact_tags/{tag_id}"),
    ("DELETE", "/contact_tags/{tag_id}"),
    ("GET", "/activities"),
    ("GET", "/activities/{activity_id}"),
    ("POST", "/activities/contacts_json_import"),
    ("POST", "/activities/contact_exports"),
    ("POST", "/activities/contacts_taggings_add"),
    ("POST", "/activities/contacts_taggings_remove"),
    ("POST", "/activities/add_list_memberships"),
    ("POST", "/activities/remove_list_memberships"),
    ("POST", "/activities/contact_delete"),
    ("POST", "/activities/list_delete"),
    ("POST", "/activities/contacts_tags_delete"),
    ("POST", "/activities/custom_fields_delete"),
    ("GET", "/contact_exports/{file_export_id}"),
    ("GET", "/emails"),
    ("POST", "/emails"),
    ("GET", "/emails/{campaign_id}"),
    ("PATCH", "/emails/{campaign_id}"),
    ("DELETE", "/emails/{campaign_id}"),
    ("GET", "/emails/activities/{campaign_activity_id}"),
    ("PUT", "/emails/activities/{campaign_activity_id}"),
    ("GET", "/emails/activities/{campaign_activity_id}/schedules"),
    (
        "POST",
        "/emails/activities/{campaign_activity_id}/schedules",
    ),
    (
        "DELETE",
        "/emails/activities/{campaign_activity_id}/schedules",
    ),
    ("POST", "/emails/activities/{campaign_activity_id}/tests"),
    ("GET", "/account/emails"),
    ("POST", "/account/emails"),
    ("GET", "/account/user/privileges"),
    ("GET", "/account/summary"),
    ("GET", "/reports/summary_reports/email_campaign_summaries"),
    ("GET", "/reports/stats/email_campaigns/{campaign_ids}"),
    (
        "GET",
        "/reports/stats/email_campaign_activities/{campaign_activity_ids}",
    ),
    ("GET", "/reports/email_reports/{campaign_activity_id}/links"),
    (
        "GET",
        "/reports/email_reports/{campaign_activity_id}/tracking/sends",
    ),
    (
        "GET",
        "/reports/email_reports/{campaign_activity_id}/tracking/opens",
    ),
    (
        "GET",
        "/reports/email_reports/{campaign_activity_id}/tracking/unique_opens",
    ),
    (
        "GET",
        "/reports/email_reports/{campaign_activity_id}/tracking/didnotopens",
    ),
    (
        "GET",
        "/reports/email_reports/{campaign_activity_id}/tracking/clicks",
    ),
    (
        "GET",
        "/reports/email_reports/{campaign_activity_id}/tracking/forwards",
    ),
    (
        "GET",
        "/reports/email_reports/{campaign_activity_id}/tracking/optouts",
    ),
    (
        "GET",
        "/reports/email_reports/{campaign_activity_id}/tracking/bounces",
    ),
];

/// Whether the sandbox implements this operation (method, spec path template).
pub(super) fn implements(method: &str, template: &str) -> bool {
    IMPLEMENTED.contains(&(method, template))
}

struct Coverage<'a> {
    env: &'a Env,
    seen: BTreeSet<(String, String)>,
}

impl Coverage<'_> {
    /// Calls, expects a 2xx, records the operation (the harness validated the body).
    async fn ok(&mut self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let r = self.env.call(method.clone(), path, body).await;
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.text
        );
        let template = spec().template(path).expect("a spec path");
        assert!(
            spec().has_operation(method.as_str(), &template),
            "{method} {template}"
        );
        if r.body.is_null() {
            assert!(
                r.status == 204 || r.headers["content-type"] == "text/csv",
                "{method} {path}: a 2xx JSON answer must have a body"
            );
        }
        self.seen.insert((method.as_str().to_owned(), template));
        r
    }
}

fn id(r: &Resp, key: &str) -> String {
    r.body[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {}", r.text))
        .to_owned()
}

#[tokio::test]
async fn every_implemented_operation_answers_as_the_openapi_spec_says() {
    let env = Env::start().await;
    let mut cov = Coverage {
        env: &env,
        seen: BTreeSet::new(),
    };
    let owner = format!("owner@{}.example", env.account);

    let list = cov
        .ok(
            Method::POST,
            "/contact_lists",
            Some(json!({"name": "Spec", "description": "d", "favorite": true})),
        )
        .await;
    let list_id = id(&list, "list_id");
    let field = cov
        .ok(
            Method::POST,
            "/contact_custom_fields",
            Some(json!({"label": "Spec Field", "type": "string",
        "metadata": {"display_type": "text"}, "version": 1})),
        )
        .await;
    let field_id = id(&field, "custom_field_id");
    cov.ok(Method::GET, "/contact_custom_fields?limit=100", None)
        .await;
    cov.ok(
        Method::GET,
        &format!("/contact_custom_fields/{field_id}"),
        None,
    )
    .await;
    cov.ok(
        Method::PUT,
        &format!("/contact_custom_fields/{field_id}"),
        Some(json!({"label": "Spec Field 2"})),
    )
    .await;

    let contact = cov.ok(Method::POST, "/contacts", Some(json!({
        "email_address": {"address": "spec@example.com", "permission_to_send": "explicit"},
        "first_name": "Spec", "last_name": "Check", "job_title": "QA", "company_name": "Acme",
        "birthday_month": 1, "birthday_day": 2, "anniversary": "2000-01-02", "create_source": "Contact",
        "custom_fields": [{"custom_field_id": field_id, "value": "v"}],
        "phone_numbers": [{"phone_number": "555-0100", "kind": "home"}],
        "street_addresses": [{"kind": "work", "street": "1 Main", "city": "Boston", "state": "MA",
                              "postal_code": "02101", "country": "US"}],
        "list_memberships": [list_id],
        "taggings": ["6f2d1c6e-0000-4000-8000-000000000001"],
        "notes": [{"content": "A note"}],
    }))).await;
    let contact_id = id(&contact, "contact_id");
    let all =
        "include=custom_fields,list_memberships,phone_numbers,street_addresses,taggings,notes";
    let full = cov
        .ok(Method::GET, &format!("/contacts/{contact_id}?{all}"), None)
        .await;
    for key in [
        "custom_fields",
        "list_memberships",
        "phone_numbers",
        "street_addresses",
        "taggings",
        "notes",
    ] {
        assert_eq!(
            full.body[key].as_array().map(Vec::len),
            Some(1),
            "{key} in {}",
            full.text
        );
    }
    cov.ok(
        Method::GET,
        &format!("/contacts?{all}&include_count=true&limit=1"),
        None,
    )
    .await;
    cov.ok(Method::PUT, &format!("/contacts/{contact_id}"), Some(json!({
        "email_address": {"address": "spec@example.com", "permission_to_send": "unsubscribed", "opt_out_reason": "r"},
        "first_name": "Spec", "update_source": "Contact",
        "custom_fields": [{"custom_field_id": field_id, "value": "w"}],
        "phone_numbers": [{"phone_number": "555-0100", "kind": "home"}],
        "street_addresses": [{"kind": "home", "city": "Salem"}],
        "list_memberships": [list_id], "taggings": [], "notes": [{"content": "B"}],
    }))).await;
    cov.ok(Method::GET, "/contacts/counts?include=new_subscriber", None)
        .await;
    let signed = cov
        .ok(
            Method::POST,
            "/contacts/sign_up_form",
            Some(json!({"email_address": "new@example.com",
        "list_memberships": [list_id], "phone_number": "555-0199",
        "street_address": {"kind": "home", "city": "Quincy"}})),
        )
        .await;
    assert_eq!(signed.status, 201);
    let again = cov
        .ok(
            Method::POST,
            "/contacts/sign_up_form",
            Some(json!({"email_address": "new@example.com",
        "list_memberships": [list_id]})),
        )
        .await;
    assert_eq!(again.status, 200);

    cov.ok(
        Method::GET,
        "/contact_lists?include_count=true&include_membership_count=all&status=all",
        None,
    )
    .await;
    cov.ok(
        Method::GET,
        &format!("/contact_lists/{list_id}?include_membership_count=active"),
        None,
    )
    .await;
    cov.ok(
        Method::PUT,
        &format!("/contact_lists/{list_id}"),
        Some(json!({"name": "Spec 2"})),
    )
    .await;

    // Segments come from the UI (here the admin API); two pages, then one with its criteria.
    let mut segment_ids = Vec::new();
    for name in ["Spec segment A", "Spec segment B", "Spec segment C"] {
        segment_ids.push(
            env.admin
                .add_segment(
                    &env.account,
                    name,
                    r#"{"version":"1.0.0","criteria":{"type":"and","group":[]}}"#,
                )
                .expect("a segment"),
        );
    }
    let segments = cov
        .ok(Method::GET, "/segments?limit=2&sort_by=name", None)
        .await;
    let next = segments.body["_links"]["next"]["href"]
        .as_str()
        .expect("a next page")
        .to_owned();
    cov.ok(Method::GET, &next, None).await;
    let segment = cov
        .ok(Method::GET, &format!("/segments/{}", segment_ids[0]), None)
        .await;
    assert!(
        segment.body["segment_criteria"].is_string(),
        "{}",
        segment.text
    );

    // Tags: made, paged (with counts), read, renamed and deleted (202 and an activity).
    let mut tag_ids = Vec::new();
    for name in ["Spec tag A", "Spec tag B", "Spec tag C"] {
        let tag = cov
            .ok(
                Method::POST,
                "/contact_tags",
                Some(json!({"name": name, "tag_source": "ESTY"})),
            )
            .await;
        tag_ids.push(id(&tag, "tag_id"));
    }
    let tags = cov
        .ok(
            Method::GET,
            "/contact_tags?limit=2&include_count=true",
            None,
        )
        .await;
    let next = tags.body["_links"]["next"]["href"]
        .as_str()
        .expect("a next page")
        .to_owned();
    cov.ok(Method::GET, &next, None).await;
    cov.ok(
        Method::GET,
        &format!("/contact_tags/{}?include_count=true", tag_ids[0]),
        None,
    )
    .await;
    cov.ok(
        Method::PUT,
        &format!("/contact_tags/{}", tag_ids[0]),
        Some(json!({"name": "Spec tag A renamed"})),
    )
    .await;
    let deleted = cov
        .ok(
            Method::DELETE,
            &format!("/contact_tags/{}", tag_ids[1]),
            None,
        )
        .await;
    assert_eq!(deleted.status, 202, "{}", deleted.text);
    assert!(deleted.body["activity_id"].is_string(), "{}", deleted.text);
    for path in [
        "/activities/contacts_taggings_add",
        "/activities/contacts_taggings_remove",
    ] {
        let tagging = cov
            .ok(
                Method::POST,
                path,
                Some(json!({"source": {"contact_ids": [contact_id]}, "tag_ids": [tag_ids[0]]})),
            )
            .await;
        assert_eq!(tagging.status, 201, "{}", tagging.text);
        assert!(tagging.body["activity_id"].is_string(), "{}", tagging.text);
    }
    for path in [
        "/activities/remove_list_memberships",
        "/activities/add_list_memberships",
    ] {
        let membership = cov
            .ok(
                Method::POST,
                path,
                Some(json!({"source": {"contact_ids": [contact_id]}, "list_ids": [list_id]})),
            )
            .await;
        assert_eq!(membership.status, 201, "{}", membership.text);
        assert_eq!(
            membership.body["status"]["list_count"], 1,
            "{}",
            membership.text
        );
        let activity = id(&membership, "activity_id");
        cov.ok(Method::GET, &format!("/activities/{activity}"), None)
            .await;
    }

    let import = cov
        .ok(
            Method::POST,
            "/activities/contacts_json_import",
            Some(json!({
        "import_data": [{"email": "imp@example.com", "cf:spec_field": "x"}, {"email": "bad"}],
        "list_ids": [list_id]})),
        )
        .await;
    let import_id = id(&import, "activity_id");
    cov.ok(Method::GET, &format!("/activities/{import_id}"), None)
        .await;
    let export = cov
        .ok(
            Method::POST,
            "/activities/contact_exports",
            Some(json!({"status": "all"})),
        )
        .await;
    let export_id = id(&export, "activity_id");
    env.admin.complete_activities_now();
    cov.ok(Method::GET, &format!("/activities/{import_id}"), None)
        .await;
    cov.ok(Method::GET, &format!("/activities/{export_id}"), None)
        .await;
    cov.ok(Method::GET, "/activities?limit=10", None).await;
    cov.ok(Method::GET, &format!("/contact_exports/{export_id}"), None)
        .await;

    let campaign = cov.ok(Method::POST, "/emails", Some(json!({"name": "Spec Campaign", "email_campaign_activities": [{
        "format_type": 5, "from_name": "Spec", "from_email": owner, "reply_to_email": owner, "subject": "S",
        "preheader": "P", "html_content": "<html><body>[[trackingImage]]</body></html>",
        "physical_address_in_footer": {"address_line1": "1 Main", "country_code": "US", "state_code": "MA",
                                       "organization_name": "Acme", "city": "Boston", "postal_code": "02101"}}]}))).await;
    let campaign_id = id(&campaign, "campaign_id");
    let activity_id = campaign.body["campaign_activities"][0]["campaign_activity_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let permalink_id = campaign.body["campaign_activities"][1]["campaign_activity_id"]
        .as_str()
        .expect("id")
        .to_owned();
    cov.ok(Method::GET, "/emails?limit=5", None).await;
    cov.ok(Method::GET, &format!("/emails/{campaign_id}"), None)
        .await;
    cov.ok(
        Method::PATCH,
        &format!("/emails/{campaign_id}"),
        Some(json!({"name": "Spec Campaign 2"})),
    )
    .await;
    let every = "include=physical_address_in_footer,permalink_url,html_content,document_properties";
    cov.ok(
        Method::PUT,
        &format!("/emails/activities/{activity_id}"),
        Some(json!({
        "from_name": "Spec", "from_email": owner, "reply_to_email": owner, "subject": "S2",
        "contact_list_ids": [list_id],
        "document_properties": {"letter_format": "HTML", "text_content": "t"}})),
    )
    .await;
    let full = cov
        .ok(
            Method::GET,
            &format!("/emails/activities/{activity_id}?{every}"),
            None,
        )
        .await;
    for key in [
        "physical_address_in_footer",
        "permalink_url",
        "html_content",
        "document_properties",
    ] {
        assert!(full.body.get(key).is_some(), "{key} in {}", full.text);
    }
    cov.ok(
        Method::GET,
        &format!("/emails/activities/{permalink_id}?{every}"),
        None,
    )
    .await;
    let schedules = format!("/emails/activities/{activity_id}/schedules");
    let later = (env.admin.now() + chrono::Duration::days(1)).to_rfc3339();
    cov.ok(
        Method::POST,
        &schedules,
        Some(json!({"scheduled_date": later})),
    )
    .await;
    cov.ok(Method::GET, &schedules, None).await;
    cov.ok(Method::DELETE, &schedules, None).await;
    cov.ok(
        Method::POST,
        &format!("/emails/activities/{activity_id}/tests"),
        Some(json!({
        "email_addresses": ["t@example.com"], "personal_message": "hi"})),
    )
    .await;
    let quiet = env
        .post(
            "/contacts",
            json!({"email_address": {"address": "quiet@example.com", "permission_to_send": "implicit"},
            "first_name": "Quiet", "last_name": "Reader", "create_source": "Account",
            "list_memberships": [list_id]}),
        )
        .await;
    assert_eq!(quiet.status, 201, "{}", quiet.text);
    cov.ok(
        Method::POST,
        &schedules,
        Some(json!({"scheduled_date": "0"})),
    )
    .await;
    env.admin.complete_activities_now();
    reports(
        &mut cov,
        &campaign_id,
        &activity_id,
        &id(&signed, "contact_id"),
    )
    .await;
    cov.ok(Method::DELETE, &format!("/emails/{campaign_id}"), None)
        .await;
    cov.ok(Method::GET, &format!("/emails/{campaign_id}"), None)
        .await;

    cov.ok(
        Method::POST,
        "/account/emails",
        Some(json!({"email_address": "spec-owner@example.com"})),
    )
    .await;
    cov.ok(Method::GET, "/account/emails", None).await;
    cov.ok(Method::GET, "/account/emails?role_code=R", None)
        .await;
    cov.ok(Method::GET, "/account/user/privileges", None).await;
    cov.ok(
        Method::GET,
        "/account/summary?extra_fields=physical_address,company_logo",
        None,
    )
    .await;

    cov.ok(Method::DELETE, &format!("/contacts/{contact_id}"), None)
        .await;
    cov.ok(Method::GET, &format!("/contacts/{contact_id}?{all}"), None)
        .await;
    cov.ok(Method::GET, "/contacts?status=deleted", None).await;
    cov.ok(
        Method::DELETE,
        &format!("/contact_custom_fields/{field_id}"),
        None,
    )
    .await;
    cov.ok(Method::DELETE, &format!("/contact_lists/{list_id}"), None)
        .await;

    bulk_deletes(&mut cov).await;

    let want: BTreeSet<(String, String)> = IMPLEMENTED
        .iter()
        .map(|(m, t)| ((*m).to_owned(), (*t).to_owned()))
        .collect();
    let missing: Vec<_> = want.difference(&cov.seen).collect();
    assert!(
        missing.is_empty(),
        "operations never exercised: {missing:?}"
    );
}

/// The four bulk delete activities, each on things made for it (a contact by id and one by
/// its list), created and read before and after completion.
async fn bulk_deletes(cov: &mut Coverage<'_>) {
    let env = cov.env;
    let contact = env.contact("bulk-delete@example.com").await;
    let member_list = env.list("Bulk delete members").await;
    let member = env
        .post(
            "/contacts",
            json!({"email_address": {"address": "bulk-member@example.com"}, "create_source": "Account",
                   "list_memberships": [member_list]}),
        )
        .await;
    assert_eq!(member.status, 201, "{}", member.text);
    let list = env.list("Bulk delete list").await;
    let tag = env
        .post("/contact_tags", json!({"name": "Bulk delete tag"}))
        .await;
    let field = env
        .post(
            "/contact_custom_fields",
            json!({"label": "Bulk delete field", "type": "string"}),
        )
        .await;
    let mut activities = Vec::new();
    for (path, body) in [
        (
            "/activities/contact_delete",
            json!({"contact_ids": [contact]}),
        ),
        (
            "/activities/contact_delete",
            json!({"list_ids": [member_list]}),
        ),
        ("/activities/list_delete", json!({"list_ids": [list]})),
        (
            "/activities/contacts_tags_delete",
            json!({"tag_ids": [id(&tag, "tag_id")]}),
        ),
        (
            "/activities/custom_fields_delete",
            json!({"custom_field_ids": [id(&field, "custom_field_id")]}),
        ),
    ] {
        let created = cov.ok(Method::POST, path, Some(body)).await;
        assert_eq!(created.status, 201, "{path}: {}", created.text);
        let activity = id(&created, "activity_id");
        cov.ok(Method::GET, &format!("/activities/{activity}"), None)
            .await;
        activities.push(activity);
    }
    env.admin.complete_activities_now();
    for activity in activities {
        let read = cov
            .ok(Method::GET, &format!("/activities/{activity}"), None)
            .await;
        assert_eq!(read.body["state"], "completed", "{}", read.text);
    }
}

/// Every reporting operation on the sent activity, after events of every kind were added by
/// the admin API (a few recipients may generate none of their own).
async fn reports(cov: &mut Coverage<'_>, campaign: &str, activity: &str, reader: &str) {
    let env = cov.env;
    let imported = env.get("/contacts?email=imp@example.com").await;
    let bouncer = imported.body["contacts"][0]["contact_id"]
        .as_str()
        .expect("the imported contact")
        .to_owned();
    let event = |kind: TrackingKind, contact: &str| {
        TrackingEvent::new(kind, contact.parse().expect("a contact id"))
    };
    let mut open = event(TrackingKind::Open, reader);
    open.device_type = Some("mobile".to_owned());
    let mut optout = event(TrackingKind::Optout, reader);
    optout.opt_out_reason = Some("No longer interested".to_owned());
    let mut bounce = event(TrackingKind::Bounce, &bouncer);
    bounce.bounce_code = Some("F".to_owned());
    let events = [
        open,
        event(TrackingKind::Click, reader),
        event(TrackingKind::Forward, reader),
        optout,
        bounce,
    ];
    env.admin
        .add_tracking_events(&env.account, activity.parse().expect("an id"), &events)
        .expect("events are added");
    let base = format!("/reports/email_reports/{activity}");
    let links = cov
        .ok(Method::GET, &format!("{base}/links?no_clicks=true"), None)
        .await;
    let url_id = links.body["link_click_counts"][0]["url_id"]
        .as_str()
        .expect("url_id")
        .to_owned();
    let sends = cov
        .ok(Method::GET, &format!("{base}/tracking/sends?limit=1"), None)
        .await;
    assert!(
        sends.body["_links"]["next"]["href"].is_string(),
        "{}",
        sends.text
    );
    for path in [
        format!("{base}/tracking/opens"),
        format!("{base}/tracking/unique_opens"),
        format!("{base}/tracking/didnotopens"),
        format!("{base}/tracking/clicks?url_id={url_id}"),
        format!("{base}/tracking/forwards"),
        format!("{base}/tracking/optouts"),
        format!("{base}/tracking/bounces?bounce_code=F"),
    ] {
        let r = cov.ok(Method::GET, &path, None).await;
        assert!(
            r.body["tracking_activities"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "{path}: {}",
            r.text
        );
    }
    cov.ok(
        Method::GET,
        &format!("/reports/stats/email_campaign_activities/{activity}"),
        None,
    )
    .await;
    cov.ok(
        Method::GET,
        &format!("/reports/stats/email_campaigns/{campaign}"),
        None,
    )
    .await;
    cov.ok(
        Method::GET,
        "/reports/summary_reports/email_campaign_summaries?limit=1",
        None,
    )
    .await;
}

#[tokio::test]
async fn oauth_answers_match_the_spec_token_and_error_schemas() {
    let env = Env::start().await;
    let creds = env.sandbox.credentials();
    let post = |body: String| {
        let env = &env;
        async move {
            read(
                env.http
                    .post(&creds.token_url)
                    .basic_auth(&creds.client_id, Some(&creds.client_secret))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .expect("answers"),
            )
            .await
        }
    };
    let ok = post(format!(
        "grant_type=refresh_token&refresh_token={}",
        creds.refresh_token
    ))
    .await;
    assert_eq!(ok.status, 200);
    let errors = spec().validate(spec().component("AccessTokenResponse"), &ok.body);
    assert!(errors.is_empty(), "{errors:?}");
    let bad = post("grant_type=refresh_token&refresh_token=nope".to_owned()).await;
    assert_eq!(bad.status, 400);
    let errors = spec().validate(spec().component("OAuthError"), &bad.body);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        bad.body.as_object().map(|o| o.len()),
        Some(2),
        "exactly error and error_description"
    );
}
