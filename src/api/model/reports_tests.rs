//! Tests of the report models against the official spec's example bodies
//! (shared/reference/constant-contact-v3-openapi3-csharp-sdk-1.9.0.yaml) and odd values.

use chrono::TimeZone;
use serde_json::json;

use super::*;

#[test]
fn the_spec_example_of_the_campaign_summaries_decodes() {
    let page: CampaignSummariesPage = serde_json::from_value(json!({
        "_links": {"next": {"href": "href"}},
        "bulk_email_campaign_summaries": [{
            "campaign_type": "Newsletter",
            "unique_counts": {"forwards": 21, "optouts": 3, "abuse": 1, "not_opened": 1211,
                              "opens": 1672, "clicks": 256, "bounces": 210, "sends": 3129},
            "campaign_id": "82ee2c37-c8f8-4974-9560-ef93ad51d58z",
            "last_sent_date": "2019-04-25 11:08:00+00:00"
        }],
        "aggregate_percents": {"bounce": 21, "unsubscribe": 2, "did_not_open": 23, "click": 43, "open": 12}
    }))
    .expect("decodes");
    assert_eq!(page.next.as_deref(), Some("href"));
    let summary = &page.bulk_email_campaign_summaries[0];
    assert_eq!(summary.campaign_id, "82ee2c37-c8f8-4974-9560-ef93ad51d58z");
    assert_eq!(
        summary.last_sent_date,
        Some(Utc.with_ymd_and_hms(2019, 4, 25, 11, 8, 0).unwrap())
    );
    assert_eq!(
        summary.unique_counts,
        UniqueCounts {
            sends: 3129,
            opens: 1672,
            clicks: 256,
            forwards: 21,
            optouts: 3,
            abuse: 1,
            bounces: 210,
            not_opened: 1211,
        }
    );
    assert_eq!(page.aggregate_percents.click, Some(43.0));
    assert_eq!(page.aggregate_percents.desktop_open, None);
}

#[test]
fn the_spec_example_of_the_activity_stats_decodes_with_its_errors() {
    let report: ActivityStatsReport = serde_json::from_value(json!({
        "errors": [{"error_key": "reportingsvc.not_found.invalid_path_param.campaign_ids.",
                    "error_message": "Could not find any campaign stats for all requested campaigns."}],
        "results": [{
            "campaign_activity_id": "a1", "campaign_id": "c1", "last_refresh_time": "last_refresh_time",
            "stats": {"em_abuse": 1, "em_bounces": 10, "em_bounces_blocked": 1, "em_bounces_mailbox_full": 2,
                      "em_bounces_nonexistent_address": 3, "em_bounces_other": 2, "em_bounces_suspended": 1,
                      "em_bounces_undeliverable": 19, "em_bounces_vacation": 2, "em_clicks": 280,
                      "em_clicks_all": 387, "em_clicks_all_computer": 123, "em_clicks_all_mobile": 211,
                      "em_clicks_all_none": 2, "em_clicks_all_other": 4, "em_clicks_all_tablet": 85,
                      "em_forwards": 39, "em_not_opened": 25, "em_opens": 220, "em_opens_all": 399,
                      "em_opens_all_computer": 65, "em_opens_all_mobile": 270, "em_opens_all_none": 2,
                      "em_opens_all_other": 10, "em_opens_all_tablet": 199, "em_optouts": 2, "em_sends": 308}
        }]
    }))
    .expect("decodes");
    assert_eq!(report.errors.len(), 1);
    assert!(report.missing.is_empty(), "only the client fills missing");
    let result = &report.results[0];
    assert_eq!(
        result.last_refresh_time, None,
        "an unparsable time is no failure"
    );
    let s = &result.stats;
    assert_eq!((s.sends, s.opens, s.opens_all), (308, 220, 399));
    assert_eq!(
        (s.clicks, s.clicks_all, s.clicks_all_tablet),
        (280, 387, 85)
    );
    assert_eq!((s.abuse, s.bounces, s.bounces_undeliverable), (1, 10, 19));
    assert_eq!((s.not_opened, s.optouts, s.forwards), (25, 2, 39));
}

#[test]
fn campaign_stats_without_the_activity_only_counts_read_them_as_zero() {
    let report: CampaignStatsReport = serde_json::from_value(json!({
        "results": [{
            "campaign_id": "c1", "last_refresh_time": "2015-08-25 22:00:09.908000+00:00",
            "percents": {"bounce": 0, "click": 40, "open": 70.5, "mobile_click": "12.5"},
            "stats": {"em_sends": 308, "em_opens": "220", "em_clicks": 280.0, "em_bounces": null,
                      "em_brand_new_count": 5}
        }]
    }))
    .expect("decodes");
    let result = &report.results[0];
    assert_eq!(
        result
            .last_refresh_time
            .map(|t| t.timestamp_subsec_millis()),
        Some(908)
    );
    assert_eq!(result.stats.sends, 308);
    assert_eq!(result.stats.opens, 220, "a count as a string");
    assert_eq!(result.stats.clicks, 280, "a count as a float");
    assert_eq!(result.stats.bounces, 0, "null");
    assert_eq!(result.stats.abuse, 0, "absent");
    assert_eq!(result.percents.open, Some(70.5));
    assert_eq!(result.percents.mobile_click, Some(12.5));
    assert_eq!(result.percents.did_not_open, None);
}

#[test]
fn the_spec_examples_of_the_tracking_reports_decode() {
    let page: TrackingPage = serde_json::from_value(json!({
        "_links": {"next": {"href": "/v3/reports/email_reports/x/tracking/clicks?cursor=abc"}},
        "tracking_activities": [{
            "campaign_activity_id": "98edac88-f4bc-408c-9e64-acd890384231",
            "contact_id": "a2fdc285-f4bc-408c-9e64-f3f89038ec82",
            "created_time": "2019-04-25 11:08:00+00:00",
            "deleted_at": "2015-08-10",
            "device_type": "computer",
            "email_address": "maddieb@gmail.com",
            "first_name": "Maddie", "last_name": "Brown",
            "link_url": "http://www.yoursite.com",
            "tracking_activity_type": "em_clicks",
            "url_id": "1100407204171"
        }, {
            "tracking_activity_type": "em_bounces",
            "created_time": "2019-04-25 11:08:00+00:00",
            "campaign_activity_id": "98edac88-f4bc-408c-9e64-acd890384231",
            "email_address": "maddieb@gmail.com",
            "current_email_address": "maddie_brown@yahoo.com",
            "contact_id": "a2fdc285-f4bc-408c-9e64-f3f89038ec82",
            "bounce_code": "B"
        }, {
            "tracking_activity_type": "em_optouts", "contact_id": "c3", "campaign_activity_id": "a",
            "created_time": "2019-04-25T11:08:00Z", "opt_out_reason": "No longer interested",
            "url_id": 42
        }, {
            "tracking_activity_type": "em_sms_sends", "contact_id": "c4"
        }]
    }))
    .expect("decodes");
    assert_eq!(
        page.next.as_deref(),
        Some("/v3/reports/email_reports/x/tracking/clicks?cursor=abc")
    );
    let [click, bounce, optout, odd] = &page.tracking_activities[..] else {
        panic!("four rows: {page:?}");
    };
    assert_eq!(
        click.tracking_activity_type,
        Some(TrackingActivityType::Clicks)
    );
    assert_eq!(click.url_id.as_deref(), Some("1100407204171"));
    assert_eq!(click.link_url.as_deref(), Some("http://www.yoursite.com"));
    assert_eq!(
        click.deleted_at,
        Some(Utc.with_ymd_and_hms(2015, 8, 10, 0, 0, 0).unwrap())
    );
    assert_eq!(
        click.created_time,
        Some(Utc.with_ymd_and_hms(2019, 4, 25, 11, 8, 0).unwrap())
    );
    assert_eq!(bounce.bounce_code.as_deref(), Some("B"));
    assert_eq!(
        bounce.current_email_address.as_deref(),
        Some("maddie_brown@yahoo.com")
    );
    assert_eq!(
        optout.opt_out_reason.as_deref(),
        Some("No longer interested")
    );
    assert_eq!(optout.url_id.as_deref(), Some("42"), "a numeric id");
    assert_eq!(
        odd.tracking_activity_type,
        Some(TrackingActivityType::Other("em_sms_sends".into()))
    );
    assert_eq!(odd.created_time, None);
}

#[test]
fn the_last_tracking_page_has_no_next_link() {
    let page: TrackingPage =
        serde_json::from_str(r#"{"tracking_activities": [], "_links": {}}"#).expect("decodes");
    assert!(page.tracking_activities.is_empty());
    assert_eq!(page.next, None);
}

#[test]
fn the_spec_example_of_the_link_report_decodes() {
    let report: LinkReport = serde_json::from_value(json!({
        "campaign_activity_id": "8892baf9-970a-4de6-8400-fa4ec461987c",
        "link_click_counts": [
            {"link_tag": "google-link-1", "link_url": "https://www.constantcontact.com/", "list_action": "add",
             "list_id": "3377aefd-970a-4de6-8400-ab4ec491624c", "unique_clicks": 99, "url_id": "1100577727321"},
            {"link_url": "https://www.example.com/", "unique_clicks": 0, "url_id": 7}
        ]
    }))
    .expect("decodes");
    assert_eq!(report.link_click_counts.len(), 2);
    let first = &report.link_click_counts[0];
    assert_eq!(first.url_id.as_deref(), Some("1100577727321"));
    assert_eq!(first.unique_clicks, 99);
    assert_eq!(first.list_action.as_deref(), Some("add"));
    assert_eq!(report.link_click_counts[1].url_id.as_deref(), Some("7"));
}

#[test]
fn every_tracking_report_names_its_own_path_and_routes() {
    let mut routes = std::collections::HashSet::new();
    for report in TrackingReport::ALL {
        assert_eq!(TrackingReport::parse(report.as_str()), Some(report));
        assert!(report.route().ends_with(&format!("/tracking/{report}")));
        assert!(
            report
                .next_route()
                .ends_with(&format!("/tracking/{report} (next page)"))
        );
        assert!(routes.insert(report.route()));
    }
    assert_eq!(TrackingReport::parse("landing_pages"), None);
}
