//! Campaign reports on both engines (issue 19): statistics with their history, tracking
//! events written once however often a page is read, links replaced, the pass's progress,
//! and the analysts' views (rates per campaign, engagement per contact, links ranked).

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use super::engine_tests::{begin, engines, mark};
use super::reports::{
    EventKind, EventRow, ReportPart, ReportProgress, StatsRow, number_occurrences,
};
use crate::api::model::{ActivityStats, LinkClickCount, TrackingActivity};
use crate::mirror::{Mode, Resource};

type Outcome = Result<(), Box<dyn std::error::Error>>;

fn stats(
    activity: &str,
    campaign: &str,
    sends: i64,
    bounces: i64,
    opens: i64,
    clicks: i64,
) -> StatsRow {
    let stats: ActivityStats = serde_json::from_value(json!({
        "campaign_activity_id": activity,
        "campaign_id": campaign,
        "last_refresh_time": "2026-01-05T10:00:00Z",
        "stats": {"em_sends": sends, "em_bounces": bounces, "em_opens": opens,
                  "em_opens_all": opens * 2, "em_clicks": clicks, "em_clicks_all": clicks + 1,
                  "em_not_opened": sends - bounces - opens, "em_abuse": 1,
                  "em_opens_all_mobile": opens, "em_bounces_blocked": bounces}
    }))
    .expect("stats");
    StatsRow {
        stats,
        last_sent_date: Some(Utc.with_ymd_and_hms(2026, 1, 4, 9, 0, 0).unwrap()),
    }
}

fn event(contact: &str, kind: EventKind, at: DateTime<Utc>, url: &str) -> EventRow {
    let row: TrackingActivity = serde_json::from_value(json!({
        "contact_id": contact,
        "campaign_activity_id": "a1",
        "created_time": super::instant(&at),
        "url_id": url,
        "link_url": format!("https://example.com/{url}"),
        "device_type": "mobile",
    }))
    .expect("a row");
    EventRow::from_tracking(&row, kind).expect("an event")
}

fn link(url_id: &str, clicks: i64) -> LinkClickCount {
    serde_json::from_value(json!({
        "url_id": url_id, "link_url": format!("https://example.com/{url_id}"), "unique_clicks": clicks
    }))
    .expect("a link")
}

#[tokio::test]
async fn statistics_are_upserted_with_a_history_row_for_each_run_that_saw_them_change() -> Outcome {
    for engine in engines("rstats").await {
        let (db, name) = (&engine.db, engine.name);
        let day1 = Utc.with_ymd_and_hms(2026, 1, 5, 1, 0, 0).unwrap();
        let (run1, lease, _) = begin(db, Resource::Campaigns, Mode::Full, day1).await?;
        let first = vec![
            stats("a1", "c1", 100, 2, 40, 10),
            stats("a2", "c1", 50, 1, 20, 3),
        ];
        let written = db
            .write_report_stats(mark(run1, &lease, day1), first.clone())
            .await?;
        assert_eq!(written.upserted, 2, "{name}");
        assert_eq!(
            written.changed,
            ["a1", "a2"],
            "{name}: new statistics are a change"
        );

        let day2 = day1 + Duration::days(1);
        let run2 = db
            .start_run(super::engine_tests::new_run(
                Resource::Campaigns,
                Mode::Full,
                day2,
            ))
            .await?;
        let second = vec![
            stats("a1", "c1", 100, 2, 40, 10),
            stats("a2", "c1", 50, 1, 25, 4),
        ];
        let written = db
            .write_report_stats(mark(run2, &lease, day2), second.clone())
            .await?;
        assert_eq!(written.changed, ["a2"], "{name}: only the changed activity");
        // The same run seeing a2 change again keeps one history row, the latest.
        let third = vec![stats("a2", "c1", 50, 1, 26, 4)];
        db.write_report_stats(mark(run2, &lease, day2), third.clone())
            .await?;

        let history = engine
            .texts(
                "SELECT campaign_activity_id || '|' || CAST(run_id AS TEXT) || '|' || CAST(opens AS TEXT)
                 FROM campaign_activity_stats_history ORDER BY campaign_activity_id, run_id",
            )
            .await;
        assert_eq!(
            history,
            [
                format!("a1|{run1}|40"),
                format!("a2|{run1}|20"),
                format!("a2|{run2}|26")
            ],
            "{name}"
        );

        let stored = db.report_stats("acme").await?;
        assert_eq!(stored.len(), 2, "{name}");
        assert_eq!(stored[0].campaign_activity_id, "a1");
        assert_eq!(
            stored[0].stats, first[0].stats.stats,
            "{name}: every count reads back"
        );
        assert_eq!(
            stored[0].changed_at,
            Some(day1),
            "{name}: a1 last changed on day 1"
        );
        assert_eq!(stored[1].stats, third[0].stats.stats, "{name}");
        assert_eq!(
            stored[1].stats.bounces_blocked, 1,
            "{name}: the breakdown is kept"
        );
        assert_eq!(stored[1].changed_at, Some(day2), "{name}");
        assert_eq!(stored[1].last_sent_date, first[1].last_sent_date, "{name}");
        assert_eq!(
            stored[1].last_refresh_time,
            first[1].stats.last_refresh_time
        );
        assert_eq!(
            engine
                .count("SELECT rows_upserted FROM mirror_runs ORDER BY id LIMIT 1")
                .await,
            2,
            "{name}: the run's figures count the rows"
        );
    }
    Ok(())
}

#[tokio::test]
async fn tracking_events_are_stored_once_however_often_their_page_is_read() -> Outcome {
    for engine in engines("revents").await {
        let (db, name) = (&engine.db, engine.name);
        let now = Utc.with_ymd_and_hms(2026, 1, 6, 0, 0, 0).unwrap();
        let (run, lease, _) = begin(db, Resource::Campaigns, Mode::Full, now).await?;
        db.write_report_stats(mark(run, &lease, now), vec![stats("a1", "c1", 10, 0, 3, 1)])
            .await?;
        let t = Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap();
        let mut opens = vec![
            event("k2", EventKind::Open, t + Duration::hours(1), ""),
            event("k1", EventKind::Open, t, ""),
            event("k1", EventKind::Open, t, ""),
        ];
        let mut seen = HashMap::new();
        number_occurrences(&mut opens, &mut seen);
        assert_eq!(
            opens.iter().map(|e| e.occurrence).collect::<Vec<_>>(),
            [1, 1, 2],
            "two opens within one second stay two"
        );
        let mut progress = ReportProgress::new(ReportPart::Events(EventKind::Open));
        progress.next_href = Some("/v3/reports/email_reports/a1/tracking/opens?cursor=x".into());
        progress.rows_read = 3;
        let page = mark(run, &lease, now);
        let first = db
            .write_tracking_page(page.clone(), "a1".into(), opens.clone(), progress.clone())
            .await?;
        assert_eq!(first, 3, "{name}");
        let again = db
            .write_tracking_page(page.clone(), "a1".into(), opens.clone(), progress.clone())
            .await?;
        assert_eq!(again, 0, "{name}: a page read again inserts nothing");

        let mut clicks = vec![
            event("k1", EventKind::Click, t, "u1"),
            event("k1", EventKind::Click, t, "u2"),
        ];
        number_occurrences(&mut clicks, &mut seen);
        let mut done = ReportProgress::new(ReportPart::Events(EventKind::Click));
        done.done = true;
        done.stats_seen = Some(2);
        done.newest_at = Some(t);
        db.write_tracking_page(page, "a1".into(), clicks.clone(), done.clone())
            .await?;

        let mut expected: Vec<EventRow> = opens.into_iter().chain(clicks).collect();
        expected.sort_by(|a, b| {
            (
                a.kind.as_str(),
                &a.contact_id,
                a.occurred_at,
                &a.url_id,
                a.occurrence,
            )
                .cmp(&(
                    b.kind.as_str(),
                    &b.contact_id,
                    b.occurred_at,
                    &b.url_id,
                    b.occurrence,
                ))
        });
        assert_eq!(db.tracking_events("acme", "a1").await?, expected, "{name}");
        assert_eq!(
            db.report_progress("acme", "a1").await?,
            vec![done, progress],
            "{name}: progress reads back, by part name"
        );
        assert!(db.tracking_events("acme", "a2").await?.is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn the_views_answer_rates_per_campaign_engagement_per_contact_and_links_ranked() -> Outcome {
    for engine in engines("rviews").await {
        let (db, name) = (&engine.db, engine.name);
        let now = Utc::now();
        let (run, lease, _) = begin(db, Resource::Campaigns, Mode::Full, now).await?;
        let page = mark(run, &lease, now);
        db.write_report_stats(
            page.clone(),
            vec![
                stats("a1", "c1", 100, 2, 40, 10),
                stats("a2", "c1", 50, 1, 20, 3),
                stats("a3", "c2", 0, 0, 0, 0),
            ],
        )
        .await?;
        let links = ReportProgress::new(ReportPart::Links);
        db.write_activity_links(
            page.clone(),
            "a1".into(),
            vec![link("u0", 99), link("u1", 3)],
            links.clone(),
        )
        .await?;
        // Replaced, not added to.
        db.write_activity_links(
            page.clone(),
            "a1".into(),
            vec![link("u1", 7), link("u2", 4)],
            links.clone(),
        )
        .await?;
        db.write_activity_links(page.clone(), "a2".into(), vec![link("u3", 7)], links)
            .await?;
        let events = vec![
            event("k1", EventKind::Open, now - Duration::days(10), ""),
            event("k1", EventKind::Open, now - Duration::days(200), ""),
            event("k1", EventKind::Click, now - Duration::days(10), "u1"),
            event("k2", EventKind::Open, now - Duration::days(100), ""),
            event("k3", EventKind::Bounce, now - Duration::days(1), ""),
        ];
        let progress = ReportProgress::new(ReportPart::Events(EventKind::Open));
        db.write_tracking_page(page, "a1".into(), events, progress)
            .await?;

        assert_eq!(
            engine
                .texts(
                    "SELECT campaign_id || '|' || CAST(delivered AS TEXT) || '|'
                         || coalesce(CAST(open_rate AS TEXT), '-') || '|'
                         || coalesce(CAST(click_through_rate AS TEXT), '-') || '|'
                         || coalesce(CAST(click_to_open_rate AS TEXT), '-')
                     FROM campaign_report_rates ORDER BY campaign_id"
                )
                .await,
            ["c1|147|40.8|8.8|21.7", "c2|0|-|-|-"],
            "{name}"
        );
        assert_eq!(
            engine
                .texts(
                    "SELECT contact_id || '|' || CAST(opens_last_90_days AS TEXT) || '|'
                         || CAST(clicks_last_90_days AS TEXT) || '|'
                         || CAST(activities_engaged AS TEXT) || '|'
                         || CASE WHEN last_open_at IS NULL THEN 'never' ELSE 'opened' END || '|'
                         || CASE WHEN last_click_at IS NULL THEN 'never' ELSE 'clicked' END
                     FROM contact_engagement ORDER BY contact_id"
                )
                .await,
            [
                "k1|1|1|1|opened|clicked",
                "k2|0|0|1|opened|never",
                "k3|0|0|0|never|never"
            ],
            "{name}"
        );
        assert_eq!(
            engine
                .texts(
                    "SELECT campaign_id || '|' || url_id || '|' || CAST(unique_clicks AS TEXT)
                         || '|' || CAST(click_rank AS TEXT)
                     FROM link_click_ranking ORDER BY campaign_id, click_rank, url_id"
                )
                .await,
            ["c1|u1|7|1", "c1|u3|7|1", "c1|u2|4|3"],
            "{name}"
        );
    }
    Ok(())
}
