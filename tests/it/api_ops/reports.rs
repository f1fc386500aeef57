//! Campaign reports (issue 19): summaries, stats by ids (split past the API's per-request
//! limits), per-contact tracking reports and link reports read through the client equal the
//! sandbox's own reports (`SandboxAdmin::campaign_reports`); paging goes past one page; ids
//! without stats are named; 4xx answers arrive as the right `ApiError`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ctct_sandbox::ActivityReport;
use ctct_sync::api::model::{
    AccountEmailFilter, CampaignActivityCreate, CampaignCreate, EmailStats, LinkClickCount,
    MAX_STATS_ACTIVITY_IDS, ScheduleAt, TrackingActivity, TrackingReport,
};
use ctct_sync::api::{AccountApi, ApiError};
use serde_json::Value;

use super::UNKNOWN_ID;
use crate::support::api::TestApi;

/// Campaigns sent here on top of the seeded one: more activities than one stats request takes.
const SENT_HERE: usize = 11;

/// A sandbox whose account holds `contacts` seeded contacts, its seeded sent campaign and
/// [`SENT_HERE`] more campaigns sent to the same list, with every tracking event visible.
/// Returns the sandbox's reports (in creation order) and one unsent (draft) activity.
pub(crate) async fn sent_campaigns(
    test: &TestApi,
    contacts: usize,
) -> (Vec<ActivityReport>, String) {
    let admin = test.sandbox.admin();
    let account = admin.primary_account();
    admin.seed(&account, contacts, 5).expect("seeded");
    let api = test.api();
    let seeded = admin.campaign_reports(&account).expect("reports");
    let [seeded] = &seeded[..] else {
        panic!("one seeded sent campaign: {seeded:?}");
    };
    let lists = api
        .get_campaign_activity(&seeded.campaign_activity_id, &[])
        .await
        .expect("the seeded activity")
        .contact_list_ids;
    let sender = api
        .list_account_emails(&AccountEmailFilter::Confirmed)
        .await
        .expect("account e-mails")[0]
        .email_address
        .clone();
    let mut draft = None;
    for n in 0..=SENT_HERE {
        let html = format!(
            "<html><body>[[trackingImage]]<a href=\"https://example.com/{n}/a\">a</a>\
             <a href=\"https://example.com/{n}/b\">b</a></body></html>"
        );
        let created = api
            .create_campaign(&CampaignCreate::new(
                &format!("Report {n}"),
                CampaignActivityCreate::custom_code("Acme", &sender, &sender, "News", &html),
            ))
            .await
            .expect("created");
        let primary = created
            .primary_email_activity_id()
            .expect("a primary activity")
            .to_owned();
        if n == SENT_HERE {
            draft = Some(primary);
            break;
        }
        let mut put = api
            .get_campaign_activity(&primary, &[])
            .await
            .expect("read")
            .to_put();
        put.set_lists(lists.clone());
        api.update_campaign_activity(&primary, &put)
            .await
            .expect("addressed");
        api.schedule_campaign_activity(&primary, ScheduleAt::Now)
            .await
            .expect("sent");
    }
    admin.complete_activities_now();
    // Opens and clicks arrive within hours of a send.
    test.advance_clocks(Duration::from_secs(7 * 3600));
    let reports = admin.campaign_reports(&account).expect("reports");
    assert_eq!(reports.len(), SENT_HERE + 1, "every send has its reports");
    (reports, draft.expect("a draft"))
}

/// Every row of `report`, `limit` rows a page; and how many pages it took.
async fn all_rows(
    api: &AccountApi,
    activity: &str,
    report: TrackingReport,
    limit: u32,
) -> (Vec<TrackingActivity>, usize) {
    let mut page = api
        .tracking_report(activity, report, Some(limit))
        .await
        .unwrap_or_else(|e| panic!("{report} of {activity}: {e}"));
    let mut rows = Vec::new();
    let mut pages = 1;
    loop {
        assert!(page.tracking_activities.len() <= limit as usize);
        rows.append(&mut page.tracking_activities);
        let Some(next) = page.next.take() else {
            return (rows, pages);
        };
        page = api
            .next_tracking_page(report, &next)
            .await
            .unwrap_or_else(|e| panic!("{report} of {activity}, page {}: {e}", pages + 1));
        pages += 1;
    }
}

fn decoded<T: serde::de::DeserializeOwned>(rows: &[Value]) -> Vec<T> {
    rows.iter()
        .map(|row| serde_json::from_value(row.clone()).expect("a sandbox row decodes"))
        .collect()
}

fn stats_requests(test: &TestApi) -> usize {
    test.sandbox
        .admin()
        .request_log()
        .iter()
        .filter(|r| {
            r.path
                .starts_with("/v3/reports/stats/email_campaign_activities/")
        })
        .count()
}

#[tokio::test]
async fn every_report_read_through_the_client_equals_the_sandbox_s_own() {
    let test = TestApi::start().await;
    let api = test.api();
    let (reports, _) = sent_campaigns(&test, 40).await;
    let first = &reports[0];

    // Tracking reports, through more than one page, row for row.
    let expected: [(TrackingReport, &Vec<Value>); 7] = [
        (TrackingReport::Sends, &first.sends),
        (TrackingReport::Opens, &first.opens),
        (TrackingReport::Clicks, &first.clicks),
        (TrackingReport::Bounces, &first.bounces),
        (TrackingReport::Optouts, &first.optouts),
        (TrackingReport::Forwards, &first.forwards),
        (TrackingReport::DidNotOpens, &first.didnotopens),
    ];
    for (report, rows) in expected {
        let (got, pages) = all_rows(&api, &first.campaign_activity_id, report, 3).await;
        assert_eq!(got, decoded::<TrackingActivity>(rows), "{report}");
        assert_eq!(pages, rows.len().div_ceil(3).max(1), "{report}");
    }
    let (sends, pages) =
        all_rows(&api, &first.campaign_activity_id, TrackingReport::Sends, 3).await;
    assert!(
        pages > 2 && sends.len() > 6,
        "paging went past one page: {pages}"
    );
    let (unique_opens, _) = all_rows(
        &api,
        &first.campaign_activity_id,
        TrackingReport::UniqueOpens,
        500,
    )
    .await;
    let openers: BTreeSet<&str> = first
        .opens
        .iter()
        .map(|r| r["contact_id"].as_str().expect("contact_id"))
        .collect();
    assert_eq!(unique_opens.len(), openers.len());

    // Link reports of every activity (with the links nobody clicked).
    for report in &reports {
        let links = api
            .activity_link_report(&report.campaign_activity_id, true)
            .await
            .expect("links");
        assert_eq!(links.campaign_activity_id, report.campaign_activity_id);
        assert_eq!(
            links.link_click_counts,
            decoded::<LinkClickCount>(&report.links)
        );
    }

    // Campaign stats and summaries (one a page) agree with the activities' stats.
    let by_campaign: BTreeMap<&str, EmailStats> = reports
        .iter()
        .map(|r| {
            let stats = serde_json::from_value(r.stats.clone()).expect("stats decode");
            (r.campaign_id.as_str(), stats)
        })
        .collect();
    let ids: Vec<&str> = by_campaign.keys().copied().collect();
    let campaign_stats = api.campaign_stats(&ids).await.expect("campaign stats");
    assert!(campaign_stats.missing.is_empty(), "{campaign_stats:?}");
    for result in &campaign_stats.results {
        let want = &by_campaign[result.campaign_id.as_str()];
        assert_eq!(result.stats.sends, want.sends);
        assert_eq!(result.stats.opens_all, want.opens_all);
        assert_eq!(result.stats.clicks, want.clicks);
        assert_eq!(result.stats.not_opened, want.not_opened);
    }
    let mut summaries = Vec::new();
    let mut page = api.list_campaign_summaries(Some(1)).await.expect("page 1");
    loop {
        assert!(page.bulk_email_campaign_summaries.len() <= 1);
        summaries.append(&mut page.bulk_email_campaign_summaries);
        let Some(next) = page.next.take() else { break };
        page = api
            .next_campaign_summaries_page(&next)
            .await
            .expect("next page");
    }
    assert_eq!(summaries.len(), reports.len());
    for summary in &summaries {
        let want = &by_campaign[summary.campaign_id.as_str()];
        let counts = &summary.unique_counts;
        assert_eq!(
            (counts.sends, counts.opens, counts.clicks, counts.bounces),
            (want.sends, want.opens, want.clicks, want.bounces),
            "{}",
            summary.campaign_id
        );
        assert_eq!(
            (
                counts.optouts,
                counts.forwards,
                counts.abuse,
                counts.not_opened
            ),
            (want.optouts, want.forwards, want.abuse, want.not_opened)
        );
        assert!(summary.last_sent_date.is_some());
    }
    test.stop().await;
}

#[tokio::test]
async fn activity_stats_are_asked_ten_ids_a_request_and_ids_without_stats_are_named() {
    let test = TestApi::start().await;
    let api = test.api();
    let (reports, draft) = sent_campaigns(&test, 20).await;
    let mut ids: Vec<&str> = reports
        .iter()
        .map(|r| r.campaign_activity_id.as_str())
        .collect();
    ids.push(&draft);
    ids.push(UNKNOWN_ID);
    ids.push(&reports[0].campaign_activity_id);
    let asked = ids.len() - 1;
    assert!(asked > MAX_STATS_ACTIVITY_IDS);

    let before = stats_requests(&test);
    let stats = api
        .campaign_activity_stats(&ids)
        .await
        .expect("activity stats");
    assert_eq!(
        stats_requests(&test) - before,
        asked.div_ceil(MAX_STATS_ACTIVITY_IDS),
        "duplicates asked once, ten a request"
    );
    assert_eq!(stats.results.len(), reports.len());
    for report in &reports {
        let result = stats
            .results
            .iter()
            .find(|r| r.campaign_activity_id == report.campaign_activity_id)
            .expect("a result for every sent activity");
        assert_eq!(result.campaign_id, report.campaign_id);
        assert_eq!(
            serde_json::to_value(&result.stats).expect("encodes"),
            report.stats
        );
        assert!(result.last_refresh_time.is_some());
    }
    assert_eq!(stats.missing, vec![draft.clone(), UNKNOWN_ID.to_owned()]);
    assert_eq!(stats.errors.len(), 2, "{:?}", stats.errors);

    // A request none of whose ids has stats answers 404: folded in, not a failure.
    let none = api
        .campaign_activity_stats(&[&draft, UNKNOWN_ID])
        .await
        .expect("no stats is an answer");
    assert!(none.results.is_empty());
    assert_eq!(none.missing, vec![draft.clone(), UNKNOWN_ID.to_owned()]);
    assert!(
        none.errors[0]
            .error_key
            .as_deref()
            .is_some_and(|k| k.starts_with("reportingsvc.not_found")),
        "{:?}",
        none.errors
    );
    test.stop().await;
}

#[tokio::test]
async fn bad_limits_are_invalid_and_unknown_activities_are_not_found() {
    let test = TestApi::start().await;
    let api = test.api();
    let (reports, _) = sent_campaigns(&test, 5).await;
    let activity = &reports[0].campaign_activity_id;

    let error = api
        .tracking_report(activity, TrackingReport::Opens, Some(501))
        .await
        .expect_err("limit above 500");
    match &error {
        ApiError::Invalid {
            route,
            status: 400,
            error_key,
            ..
        } => {
            assert_eq!(*route, TrackingReport::Opens.route());
            assert_eq!(
                error_key.as_deref(),
                Some("reportingsvc.bad_request.invalid_query_param.limit.")
            );
        }
        other => panic!("{other:?}"),
    }
    let error = api
        .list_campaign_summaries(Some(0))
        .await
        .expect_err("limit 0");
    assert!(
        matches!(error, ApiError::Invalid { status: 400, .. }),
        "{error:?}"
    );

    for report in TrackingReport::ALL {
        let error = api
            .tracking_report(UNKNOWN_ID, report, None)
            .await
            .expect_err("an unknown activity");
        assert!(
            matches!(&error, ApiError::NotFound { route, .. } if *route == report.route()),
            "{report}: {error:?}"
        );
    }
    let error = api
        .activity_link_report(UNKNOWN_ID, false)
        .await
        .expect_err("an unknown activity");
    assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    let error = api
        .tracking_report("..", TrackingReport::Sends, None)
        .await
        .expect_err("not an id");
    assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    test.stop().await;
}
