//! Campaign reports in the mirror (issue 19): the statistics of every sent activity and the
//! per-contact events of the activities in the window equal the sandbox's own reports; an
//! unchanged second run reads the statistics only; events added to an activity are picked up
//! exactly; the day's share stops a run cleanly and the next days finish it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ctct_sandbox::{ActivityReport, FaultSpec, TrackingEvent, TrackingKind};
use ctct_sync::api::model::EmailStats;
use ctct_sync::clock::{Clock, next_utc_midnight};
use ctct_sync::mirror::{Mirror, MirrorOptions, Mode, ReportOptions, Resource, RunOutcome};
use serde_json::Value;

use super::{fast_options, mirror_for, run};
use crate::api_ops::reports::sent_campaigns;
use crate::support::api::TestApi;
use crate::support::engine::Engine;

/// An event as both sides can name it: kind, contact, second, link.
type EventKey = (String, String, i64, String);

fn sandbox_events(report: &ActivityReport) -> Vec<EventKey> {
    let kinds: [(&str, &Vec<Value>); 5] = [
        ("open", &report.opens),
        ("click", &report.clicks),
        ("bounce", &report.bounces),
        ("optout", &report.optouts),
        ("forward", &report.forwards),
    ];
    let mut events: Vec<EventKey> = kinds
        .iter()
        .flat_map(|(kind, rows)| {
            rows.iter().map(move |row| {
                let at: DateTime<Utc> = row["created_time"]
                    .as_str()
                    .expect("created_time")
                    .parse()
                    .expect("a time");
                let url = if *kind == "click" {
                    match &row["url_id"] {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => String::new(),
                    }
                } else {
                    String::new()
                };
                (
                    (*kind).to_owned(),
                    row["contact_id"].as_str().expect("contact_id").to_owned(),
                    at.timestamp(),
                    url,
                )
            })
        })
        .collect();
    events.sort();
    events
}

async fn mirror_events(mirror: &Mirror, activity: &str) -> Vec<EventKey> {
    let mut events: Vec<EventKey> = mirror
        .db()
        .tracking_events("default", activity)
        .await
        .expect("the events read")
        .into_iter()
        .map(|e| {
            (
                e.kind.as_str().to_owned(),
                e.contact_id,
                e.occurred_at.timestamp(),
                e.url_id,
            )
        })
        .collect();
    events.sort();
    events
}

/// The mirror's statistics and events equal the sandbox's for every sent activity.
async fn assert_reports_equal_sandbox(t: &TestApi, mirror: &Mirror) -> Vec<ActivityReport> {
    let admin = t.sandbox.admin();
    let reports = admin
        .campaign_reports(&admin.primary_account())
        .expect("the sandbox's reports");
    let stored: BTreeMap<String, EmailStats> = mirror
        .db()
        .report_stats("default")
        .await
        .expect("the statistics read")
        .into_iter()
        .map(|s| (s.campaign_activity_id, s.stats))
        .collect();
    assert_eq!(stored.len(), reports.len(), "one row per sent activity");
    for report in &reports {
        let want: EmailStats = serde_json::from_value(report.stats.clone()).expect("stats");
        assert_eq!(
            stored.get(&report.campaign_activity_id),
            Some(&want),
            "statistics of {}",
            report.campaign_activity_id
        );
        let sent: DateTime<Utc> = report.last_sent_date.parse().expect("a send time");
        let in_window = sent >= t.clock.now() - chrono::Duration::days(30);
        let want = if in_window {
            sandbox_events(report)
        } else {
            Vec::new()
        };
        assert_eq!(
            mirror_events(mirror, &report.campaign_activity_id).await,
            want,
            "events of {} (sent {sent}, in the window: {in_window})",
            report.campaign_activity_id
        );
    }
    reports
}

fn requests_to_reports(t: &TestApi) -> usize {
    t.sandbox
        .admin()
        .request_log()
        .iter()
        .filter(|r| r.path.starts_with("/v3/reports/"))
        .count()
}

crate::both_engines!(
    #[tokio::test]
    reports_equal_the_sandbox_s_an_unchanged_run_reads_statistics_only_and_new_events_are_picked_up
);
async fn reports_equal_the_sandbox_s_an_unchanged_run_reads_statistics_only_and_new_events_are_picked_up(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    let (_, _) = sent_campaigns(&t, 40).await;
    let mirror = mirror_for(&t, fast_options());
    let campaigns = run(&mirror, Resource::Campaigns, Mode::Full).await;
    assert_eq!(campaigns.outcome, RunOutcome::Succeeded, "{campaigns:?}");

    let before = requests_to_reports(&t);
    let first = run(&mirror, Resource::Reports, Mode::Full).await;
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{first:?}");
    let first_requests = requests_to_reports(&t) - before;
    assert_eq!(first.api_requests as usize, first_requests);
    let reports = assert_reports_equal_sandbox(&t, &mirror).await;
    assert!(
        reports.iter().any(|r| !r.clicks.is_empty()) && reports.len() > 10,
        "a case with clicks, and more activities than one statistics request takes"
    );
    let tables = t.mirror_tables();
    let history = |tables: &crate::support::engine::Tables| {
        let tables = tables.clone();
        async move {
            tables
                .number("SELECT count(*) FROM campaign_activity_stats_history")
                .await
        }
    };
    assert_eq!(history(&tables).await, reports.len() as i64);
    for report in &reports {
        let links = tables
            .number(&format!(
                "SELECT count(*) FROM campaign_activity_links
                 WHERE campaign_activity_id = '{}'",
                report.campaign_activity_id
            ))
            .await;
        let sent: DateTime<Utc> = report.last_sent_date.parse().expect("a send time");
        let want = if sent >= t.clock.now() - chrono::Duration::days(30) {
            report.links.len() as i64
        } else {
            0
        };
        assert_eq!(
            links, want,
            "links, clicked or not, of the activities in the window"
        );
    }

    // Unchanged: the summaries and the statistics only (≤ 10% of the first run).
    let before = requests_to_reports(&t);
    let second = run(&mirror, Resource::Reports, Mode::Full).await;
    assert_eq!(second.outcome, RunOutcome::Succeeded, "{second:?}");
    let second_requests = requests_to_reports(&t) - before;
    assert_eq!(
        second_requests,
        1 + reports.len().div_ceil(10),
        "one summaries page and the statistics, nothing else"
    );
    assert!(
        second_requests * 10 <= first_requests,
        "{second_requests} of {first_requests}"
    );
    assert_eq!(
        history(&tables).await,
        reports.len() as i64,
        "no change, no history row"
    );

    // Two opens and a click added to one activity: exactly those are read.
    let admin = t.sandbox.admin();
    let window_start = t.clock.now() - chrono::Duration::days(30);
    let target = reports
        .iter()
        .find(|r| {
            !r.sends.is_empty()
                && r.last_sent_date.parse::<DateTime<Utc>>().expect("a time") >= window_start
        })
        .expect("an activity in the window with recipients");
    let contact: uuid::Uuid = target.sends[0]["contact_id"]
        .as_str()
        .expect("a recipient")
        .parse()
        .expect("a uuid");
    let added = admin
        .add_tracking_events(
            &admin.primary_account(),
            target.campaign_activity_id.parse().expect("a uuid"),
            &[
                TrackingEvent::new(TrackingKind::Open, contact),
                TrackingEvent::new(TrackingKind::Open, contact),
                TrackingEvent::new(TrackingKind::Click, contact),
            ],
        )
        .expect("events added");
    assert_eq!(added, 3);
    t.advance_clocks(Duration::from_secs(5));
    let stored_before = mirror_events(&mirror, &target.campaign_activity_id)
        .await
        .len();
    let third = run(&mirror, Resource::Reports, Mode::Full).await;
    assert_eq!(third.outcome, RunOutcome::Succeeded, "{third:?}");
    assert_reports_equal_sandbox(&t, &mirror).await;
    assert_eq!(
        mirror_events(&mirror, &target.campaign_activity_id)
            .await
            .len(),
        stored_before + 3,
        "exactly the added events"
    );
    assert_eq!(
        history(&tables).await,
        reports.len() as i64 + 1,
        "one history row for the activity that changed"
    );
    t.stop().await;
}

#[tokio::test]
async fn the_reports_share_of_the_day_stops_a_run_which_the_next_days_finish() {
    let t = TestApi::start().await;
    let (_, _) = sent_campaigns(&t, 40).await;
    // Summaries and statistics take 3 requests a day; the rest of 20 goes to tracking.
    let share = 20;
    let mirror = mirror_for(
        &t,
        MirrorOptions {
            reports: ReportOptions {
                days: 30,
                daily_requests: share,
            },
            ..fast_options()
        },
    );
    let campaigns = run(&mirror, Resource::Campaigns, Mode::Full).await;
    assert_eq!(campaigns.outcome, RunOutcome::Succeeded, "{campaigns:?}");

    let stopped = run(&mirror, Resource::Reports, Mode::Full).await;
    assert_eq!(stopped.outcome, RunOutcome::Interrupted, "{stopped:?}");
    assert_eq!(stopped.api_requests, u64::from(share));
    assert_eq!(stopped.resets_at, Some(next_utc_midnight(t.clock.now())));
    let told = stopped.error.clone().unwrap_or_default();
    assert!(
        told.contains("mirror.reports.share") && told.contains("left for the next run"),
        "{told}"
    );
    let again = run(&mirror, Resource::Reports, Mode::Full).await;
    assert_eq!(
        again.outcome,
        RunOutcome::Interrupted,
        "same day: {again:?}"
    );
    assert_eq!(again.api_requests, 0, "the day's share is spent");

    let mut days = 0;
    loop {
        days += 1;
        assert!(
            days < 30,
            "the runs finish within the days the share allows"
        );
        let now = t.clock.now();
        let wait = (next_utc_midnight(now) - now).to_std().expect("ahead");
        t.advance_clocks(wait + Duration::from_secs(60));
        let next = run(&mirror, Resource::Reports, Mode::Full).await;
        assert!(next.api_requests <= u64::from(share), "{next:?}");
        match next.outcome {
            RunOutcome::Interrupted => continue,
            RunOutcome::Succeeded => break,
            other => panic!("{other:?}: {next:?}"),
        }
    }
    assert!(days > 1, "it took several days: {days}");
    assert_reports_equal_sandbox(&t, &mirror).await;
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    a_quota_exceeded_answer_stops_the_reports_until_the_reset_and_the_next_run_finishes
);
async fn a_quota_exceeded_answer_stops_the_reports_until_the_reset_and_the_next_run_finishes(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    let (_, _) = sent_campaigns(&t, 40).await;
    let mirror = mirror_for(&t, fast_options());
    let campaigns = run(&mirror, Resource::Campaigns, Mode::Full).await;
    assert_eq!(campaigns.outcome, RunOutcome::Succeeded, "{campaigns:?}");
    // The statistics are read; the API's quota runs out at the first tracking report.
    t.sandbox
        .admin()
        .inject_fault(
            FaultSpec::quota_exceeded()
                .path_prefix("/v3/reports/email_reports/")
                .times(1),
        )
        .expect("a fault");
    let admin = t.sandbox.admin();
    let before = requests_to_reports(&t);
    let stopped = run(&mirror, Resource::Reports, Mode::Full).await;
    assert_eq!(stopped.outcome, RunOutcome::Interrupted, "{stopped:?}");
    assert_eq!(stopped.resets_at, Some(next_utc_midnight(t.clock.now())));
    assert!(
        stopped
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("quota"),
        "{stopped:?}"
    );
    // The refused request does not count against the quota.
    assert_eq!(
        stopped.api_requests as usize,
        requests_to_reports(&t) - before - 1
    );
    let stats = mirror
        .db()
        .report_stats("default")
        .await
        .expect("the statistics read");
    let reports = admin
        .campaign_reports(&admin.primary_account())
        .expect("the sandbox's reports");
    assert_eq!(
        stats.len(),
        reports.len(),
        "the statistics read before the quota ran out are kept"
    );

    let now = t.clock.now();
    t.advance_clocks(
        (next_utc_midnight(now) - now).to_std().expect("ahead") + Duration::from_secs(60),
    );
    let resumed = run(&mirror, Resource::Reports, Mode::Full).await;
    assert_eq!(resumed.outcome, RunOutcome::Succeeded, "{resumed:?}");
    assert_reports_equal_sandbox(&t, &mirror).await;
    t.stop().await;
}
