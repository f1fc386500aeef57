//! Tests of the campaign models: the captured create answer, leniency, bodies, `to_put`.

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::api::model::campaign_activity::{CampaignActivity, Schedule, ScheduleAt, TestSend};
use crate::api::model::fixtures;

#[test]
fn the_captured_create_answer_decodes_with_both_activities() {
    let campaign: EmailCampaign =
        serde_json::from_str(fixtures::CREATED_CAMPAIGN).expect("fixture decodes");
    assert_eq!(campaign.campaign_id, "987cb9ab-ad0c-4087-bd46-2e2ad241221f");
    assert_eq!(campaign.name, "December Newsletter for Dog Lovers");
    assert_eq!(campaign.current_status, Some(CampaignStatus::Draft));
    assert_eq!(campaign.campaign_type.as_deref(), Some("CUSTOM_CODE_EMAIL"));
    assert_eq!(campaign.type_code, Some(26));
    assert_eq!(
        campaign.primary_email_activity_id(),
        Some("09d33311-6b6c-426e-a636-21d08a9bfb3f")
    );
    assert_eq!(
        campaign.campaign_activities[1].role,
        Some(CampaignActivityRole::Permalink)
    );
    let created = campaign.created_at.expect("milliseconds parse");
    assert_eq!(created.timestamp_subsec_millis(), 456);
}

#[test]
fn a_campaign_page_decodes_without_activities_and_with_unknown_statuses() {
    let page: CampaignsPage = serde_json::from_value(json!({
        "campaigns": [
            {"campaign_id": "c1", "name": "A", "current_status": "Removed", "type": "NEWSLETTER", "type_code": 10,
             "created_at": "2018-02-06T22:09:15.000Z", "updated_at": "2018-06-27T10:28:09.000Z"},
            {"campaign_id": "c2", "name": "B", "current_status": "Archived", "updated_at": "n/a"}
        ],
        "_links": {"next": {"href": "/v3/emails?next=abc&limit=50"}}
    }))
    .expect("decodes");
    assert_eq!(page.next.as_deref(), Some("/v3/emails?next=abc&limit=50"));
    assert_eq!(
        page.campaigns[0].current_status,
        Some(CampaignStatus::Removed)
    );
    assert!(page.campaigns[0].campaign_activities.is_empty());
    assert_eq!(page.campaigns[0].primary_email_activity_id(), None);
    assert_eq!(
        page.campaigns[1].current_status,
        Some(CampaignStatus::Other("Archived".into()))
    );
    assert_eq!(page.campaigns[1].updated_at, None);
}

#[test]
fn the_create_body_has_one_custom_code_activity_and_nothing_unset() {
    let mut activity = CampaignActivityCreate::custom_code(
        "Acme",
        "news@acme.example",
        "reply@acme.example",
        "Spring News",
        "<html><body>[[trackingImage]]</body></html>",
    );
    activity.physical_address_in_footer = Some(PhysicalAddress {
        address_line1: "1 Main St".into(),
        country_code: "US".into(),
        organization_name: "Acme".into(),
        state_code: Some("MA".into()),
        country_name: Some("United States".into()),
        ..PhysicalAddress::default()
    });
    assert_eq!(
        serde_json::to_value(CampaignCreate::new("Spring News", activity)).expect("encodes"),
        json!({
            "name": "Spring News",
            "email_campaign_activities": [{
                "format_type": 5, "from_name": "Acme", "from_email": "news@acme.example",
                "reply_to_email": "reply@acme.example", "subject": "Spring News",
                "html_content": "<html><body>[[trackingImage]]</body></html>",
                "physical_address_in_footer": {"address_line1": "1 Main St", "country_code": "US",
                                               "organization_name": "Acme", "state_code": "MA"}
            }]
        })
    );
}

fn fetched_activity(with_includes: bool) -> CampaignActivity {
    let mut body = json!({
        "campaign_activity_id": "a1", "campaign_id": "c1", "role": "primary_email",
        "contact_list_ids": ["l1"], "current_status": "DRAFT", "format_type": 5,
        "from_email": "news@acme.example", "from_name": "Acme", "reply_to_email": "reply@acme.example",
        "subject": "Hi", "preheader": "Look", "template_id": "1000755366001", "surprise": true
    });
    if with_includes {
        body["html_content"] = json!("<html></html>");
        body["permalink_url"] = json!("https://conta.cc/x");
        body["physical_address_in_footer"] = json!({"address_line1": "1 Main St", "country_code": "US", "organization_name": "Acme",
                   "country_name": "United States"});
        body["document_properties"] = json!({"letter_format": "XHTML"});
    }
    serde_json::from_value(body).expect("decodes")
}

#[test]
fn activity_to_put_copies_the_top_level_and_only_included_subresources() {
    let bare = serde_json::to_value(fetched_activity(false).to_put()).expect("encodes");
    assert_eq!(
        bare,
        json!({
            "campaign_activity_id": "a1", "campaign_id": "c1", "role": "primary_email",
            "contact_list_ids": ["l1"], "format_type": 5,
            "from_email": "news@acme.example", "from_name": "Acme", "reply_to_email": "reply@acme.example",
            "subject": "Hi", "preheader": "Look"
        })
    );
    let full = serde_json::to_value(fetched_activity(true).to_put()).expect("encodes");
    assert_eq!(full["html_content"], "<html></html>");
    assert_eq!(
        full["physical_address_in_footer"],
        json!({"address_line1": "1 Main St", "country_code": "US", "organization_name": "Acme"})
    );
    assert_eq!(
        full["document_properties"],
        json!({"letter_format": "XHTML"})
    );
    for read_only in ["current_status", "template_id", "permalink_url"] {
        assert!(full.get(read_only).is_none(), "{read_only} is read-only");
    }
}

#[test]
fn setting_lists_replaces_recipients_and_drops_segments() {
    let mut activity = fetched_activity(false);
    activity.contact_list_ids.clear();
    activity.segment_ids = vec![12];
    let mut put = activity.to_put();
    assert_eq!(
        serde_json::to_value(&put).expect("encodes")["segment_ids"],
        json!([12])
    );
    put.set_lists(vec!["l2".into(), "l3".into()]);
    let body = serde_json::to_value(&put).expect("encodes");
    assert_eq!(body["contact_list_ids"], json!(["l2", "l3"]));
    assert!(body.get("segment_ids").is_none());
}

#[test]
fn schedules_are_sent_as_zero_for_now_or_an_rfc3339_date_and_decode_leniently() {
    assert_eq!(
        serde_json::to_value(ScheduleAt::Now).expect("encodes"),
        json!({"scheduled_date": "0"})
    );
    let at = Utc
        .with_ymd_and_hms(2026, 5, 17, 16, 37, 59)
        .single()
        .expect("valid");
    assert_eq!(
        serde_json::to_value(ScheduleAt::At(at)).expect("encodes"),
        json!({"scheduled_date": "2026-05-17T16:37:59Z"})
    );
    let schedules: Vec<Schedule> = serde_json::from_str(
        r#"[{"scheduled_date":"2026-05-17T16:37:59.091Z"},{"scheduled_date":"2026-05-18"},{}]"#,
    )
    .expect("decodes");
    assert_eq!(
        schedules[0]
            .scheduled_date
            .map(|d| d.timestamp_subsec_millis()),
        Some(91)
    );
    assert!(schedules[1].scheduled_date.is_some());
    assert_eq!(schedules[2].scheduled_date, None);
}

#[test]
fn a_test_send_leaves_out_an_absent_message() {
    let send = TestSend {
        email_addresses: vec!["qa@acme.example".into()],
        personal_message: None,
    };
    assert_eq!(
        serde_json::to_value(&send).expect("encodes"),
        json!({"email_addresses": ["qa@acme.example"]})
    );
}

#[test]
fn the_campaign_query_formats_dates_in_utc() {
    let query = CampaignQuery {
        limit: Some(10),
        before_date: None,
        after_date: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single(),
    };
    let expected: Vec<(&str, String)> = vec![
        ("limit", "10".into()),
        ("after_date", "2024-01-01T00:00:00Z".into()),
    ];
    assert_eq!(query.to_pairs(), expected);
    assert!(CampaignQuery::default().to_pairs().is_empty());
}
