//! The campaign report queries of docs/mirror.md ("Six campaign report queries") run as
//! written, on both engines, against a mirror of a sandbox account with sent campaigns, and
//! each answer equals what the sandbox's own reports say: the API's campaign statistics and
//! percentages, its activity statistics before and after events were added, its link report,
//! its per-contact opens and clicks, and its did-not-opens.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ctct_sandbox::{ActivityReport, TrackingEvent, TrackingKind};
use ctct_sync::api::model::EmailStats;
use ctct_sync::clock::Clock;
use ctct_sync::mirror::{Mode, Resource, RunOutcome};

use super::{ActivityCompleter, fast_options, mirror_for, run, run_all_ok};
use crate::api_ops::reports::sent_campaigns;
use crate::support::api::TestApi;
use crate::support::engine::{Engine, Rows};

/// The campaign whose history, clicks and did-not-opens the documented queries look at.
const CAMPAIGN: &str = "Report 3";

/// The SQL of the section, in order; on PostgreSQL with the substitution the section gives.
fn documented_queries(engine: Engine) -> Vec<String> {
    crate::support::mirror_doc_queries("## Six campaign report queries")
        .into_iter()
        .map(|sql| match engine {
            Engine::Sqlite => sql,
            Engine::Postgres => sql.replace(
                "(SELECT l.value FROM json_each(a.contact_list_ids) AS l)",
                "(SELECT l.value FROM jsonb_array_elements_text(a.contact_list_ids) AS l(value))",
            ),
        })
        .collect()
}

fn stats_of(report: &ActivityReport) -> EmailStats {
    serde_json::from_value(report.stats.clone()).expect("the sandbox's statistics")
}

fn sent_at(report: &ActivityReport) -> DateTime<Utc> {
    report.last_sent_date.parse().expect("a send time")
}

fn text(row: &[Option<String>], i: usize) -> String {
    row[i].clone().unwrap_or_default()
}

fn int(row: &[Option<String>], i: usize) -> i64 {
    text(row, i)
        .parse()
        .unwrap_or_else(|_| panic!("an integer in column {i}: {row:?}"))
}

fn float(row: &[Option<String>], i: usize) -> Option<f64> {
    row[i]
        .as_deref()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("a number: {v}")))
}

/// `part / whole` in percent with one decimal, as the API rounds; None when `whole` is 0.
fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole != 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

fn assert_close(got: Option<f64>, want: Option<f64>, what: &str) {
    match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{what}: {g} ≠ {w}"),
        (g, w) => assert_eq!(g, w, "{what}"),
    }
}

/// Prints an answer as the docs show it (run with `--nocapture` to refresh them).
fn print(n: usize, rows: &Rows) {
    let mut widths: Vec<usize> = rows.columns.iter().map(|c| c.chars().count()).collect();
    let cells: Vec<Vec<String>> = rows
        .rows
        .iter()
        .map(|r| r.iter().map(|v| v.clone().unwrap_or_default()).collect())
        .collect();
    for row in &cells {
        for (i, v) in row.iter().enumerate() {
            widths[i] = widths[i].max(v.chars().count());
        }
    }
    let line = |values: Vec<String>| {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{v:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(rows.columns.clone())];
    out.push(line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    out.extend(cells.into_iter().map(line));
    println!("query {n}:\n```\n{}\n```", out.join("\n"));
}

crate::both_engines!(
    #[tokio::test]
    the_documented_campaign_report_queries_answer_what_the_sandbox_reports
);
async fn the_documented_campaign_report_queries_answer_what_the_sandbox_reports(engine: Engine) {
    let queries = documented_queries(engine);
    assert_eq!(queries.len(), 6, "six documented queries");
    let t = TestApi::start_on(engine).await;
    let _ = sent_campaigns(&t, 40).await;
    let _completer = ActivityCompleter::start(t.sandbox.admin());
    let mirror = mirror_for(&t, fast_options());
    run_all_ok(&mirror, Mode::Full).await;

    let tables = t.mirror_tables();
    if engine == Engine::Postgres {
        // PostgreSQL sums integers to numeric: the test's reader decodes it.
        let numbers = tables
            .query("SELECT 123456789.05::numeric, -0.5::numeric, 10000::numeric, 0::numeric, 33.3::numeric")
            .await;
        assert_eq!(
            numbers.rows,
            vec![
                ["123456789.05", "-0.5", "10000", "0", "33.3"]
                    .map(|v| Some(v.to_owned()))
                    .to_vec()
            ]
        );
    }
    let names: BTreeMap<String, String> = tables
        .query("SELECT campaign_id, name FROM campaigns")
        .await
        .rows
        .iter()
        .map(|r| (text(r, 0), text(r, 1)))
        .collect();
    let admin = t.sandbox.admin();
    let account = admin.primary_account();
    let name_of = |r: &ActivityReport| names.get(&r.campaign_id).cloned().unwrap_or_default();
    let target_of = |reports: &[ActivityReport]| -> ActivityReport {
        reports
            .iter()
            .find(|r| name_of(r) == CAMPAIGN)
            .cloned()
            .expect("the campaign the queries look at was sent")
    };

    // Two opens and a click by a recipient of the campaign who had not opened it, then a
    // second run: the history gets a second row.
    let before = target_of(&admin.campaign_reports(&account).expect("reports"));
    let quiet: uuid::Uuid = before.didnotopens[0]["contact_id"]
        .as_str()
        .expect("a recipient who did not open")
        .parse()
        .expect("a uuid");
    admin
        .add_tracking_events(
            &account,
            before.campaign_activity_id.parse().expect("a uuid"),
            &[
                TrackingEvent::new(TrackingKind::Open, quiet),
                TrackingEvent::new(TrackingKind::Open, quiet),
                TrackingEvent::new(TrackingKind::Click, quiet),
            ],
        )
        .expect("events added");
    t.advance_clocks(Duration::from_secs(5));
    let again = run(&mirror, Resource::Reports, Mode::Full).await;
    assert_eq!(again.outcome, RunOutcome::Succeeded, "{again:?}");

    let reports = admin.campaign_reports(&account).expect("reports");
    let target = target_of(&reports);
    let window_start = t.clock.now() - chrono::Duration::days(30);
    let in_window: Vec<&ActivityReport> = reports
        .iter()
        .filter(|r| sent_at(r) >= window_start)
        .collect();
    assert!(
        in_window.len() >= 11,
        "the campaigns sent here are in the window"
    );

    let mut answers = Vec::new();
    for (n, sql) in queries.iter().enumerate() {
        let rows = tables.query(sql).await;
        print(n + 1, &rows);
        answers.push(rows);
    }

    // 1. Rates per campaign: the API's campaign statistics and percentages.
    let ids: Vec<&str> = reports.iter().map(|r| r.campaign_id.as_str()).collect();
    let api = t
        .api()
        .campaign_stats(&ids)
        .await
        .expect("the API's campaign statistics");
    let by_name: BTreeMap<String, _> = api
        .results
        .iter()
        .map(|c| (names[&c.campaign_id].clone(), c))
        .collect();
    let mut order: Vec<&ActivityReport> = reports.iter().collect();
    order.sort_by(|a, b| {
        sent_at(b)
            .cmp(&sent_at(a))
            .then(name_of(a).cmp(&name_of(b)))
    });
    let rates = &answers[0];
    assert_eq!(
        rates.rows.iter().map(|r| text(r, 0)).collect::<Vec<_>>(),
        order.iter().map(|r| name_of(r)).collect::<Vec<_>>(),
        "every sent campaign, newest send first"
    );
    for row in &rates.rows {
        let name = text(row, 0);
        let c = by_name[&name];
        let delivered = c.stats.sends - c.stats.bounces;
        assert_eq!(
            (int(row, 1), int(row, 2), int(row, 3), int(row, 4)),
            (c.stats.sends, delivered, c.stats.opens, c.stats.clicks),
            "{name}: sends, delivered, opens, clicks"
        );
        let expected_open = if delivered == 0 {
            None
        } else {
            c.percents.open
        };
        assert_close(float(row, 5), expected_open, &format!("{name}: open rate"));
        assert_close(
            float(row, 6),
            percent(c.stats.clicks, delivered),
            &format!("{name}: click-through rate"),
        );
        let expected_cto = if c.stats.opens == 0 {
            None
        } else {
            c.percents.click
        };
        assert_close(
            float(row, 7),
            expected_cto,
            &format!("{name}: click-to-open"),
        );
    }

    // 2. History: the statistics as the first run read them, then as they are now.
    let history = &answers[1];
    let want: Vec<Vec<i64>> = [stats_of(&before), stats_of(&target)]
        .iter()
        .map(|s| {
            vec![
                s.sends,
                s.opens,
                s.opens_all,
                s.clicks,
                s.clicks_all,
                s.not_opened,
            ]
        })
        .collect();
    let got: Vec<Vec<i64>> = history
        .rows
        .iter()
        .map(|r| (1..7).map(|i| int(r, i)).collect())
        .collect();
    assert_eq!(
        got, want,
        "two history rows: before and after the added events"
    );
    assert!(want[1][1] == want[0][1] + 1 && want[1][2] == want[0][2] + 2);
    assert!(int(&history.rows[0], 0) < int(&history.rows[1], 0));

    // 3. Links ranked by clicks: the link report of each campaign, ranked.
    let mut want = Vec::new();
    for name in ["Report 2", "Report 3"] {
        let report = reports.iter().find(|r| name_of(r) == name).expect("sent");
        let links: Vec<(i64, String)> = report
            .links
            .iter()
            .map(|l| {
                (
                    l["unique_clicks"].as_i64().expect("clicks"),
                    l["link_url"].as_str().expect("a url").to_owned(),
                )
            })
            .collect();
        let mut ranked: Vec<(i64, String, i64)> = links
            .iter()
            .map(|(clicks, url)| {
                let rank = 1 + links.iter().filter(|(other, _)| other > clicks).count() as i64;
                (rank, url.clone(), *clicks)
            })
            .collect();
        ranked.sort();
        want.extend(
            ranked
                .into_iter()
                .map(|(rank, url, clicks)| (name.to_owned(), rank, url, clicks)),
        );
    }
    let got: Vec<(String, i64, String, i64)> = answers[2]
        .rows
        .iter()
        .map(|r| (text(r, 0), int(r, 1), text(r, 2), int(r, 3)))
        .collect();
    assert_eq!(got, want, "links ranked by unique clicks");
    assert!(want.len() >= 4, "two links each: {want:?}");

    // 4. Who clicked which link in the campaign: the sandbox's clicks report.
    let mut clicks: BTreeMap<(String, String), i64> = BTreeMap::new();
    for c in &target.clicks {
        let key = (
            c["email_address"].as_str().expect("an address").to_owned(),
            c["link_url"].as_str().expect("a url").to_owned(),
        );
        *clicks.entry(key).or_default() += 1;
    }
    let mut want: Vec<(String, String, i64)> =
        clicks.into_iter().map(|((e, u), n)| (e, u, n)).collect();
    want.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let got: Vec<(String, String, i64)> = answers[3]
        .rows
        .iter()
        .map(|r| (text(r, 0), text(r, 1), int(r, 2)))
        .collect();
    assert_eq!(got, want, "clicks per address and link");
    assert!(!want.is_empty(), "someone clicked");

    // 5. The most engaged contacts: opens and clicks over the campaigns in the window.
    let mut engagement: BTreeMap<String, (i64, i64, BTreeSet<String>)> = BTreeMap::new();
    for report in &in_window {
        for (rows, is_open) in [(&report.opens, true), (&report.clicks, false)] {
            for e in rows.iter() {
                let entry = engagement
                    .entry(e["email_address"].as_str().expect("an address").to_owned())
                    .or_default();
                if is_open {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
                entry.2.insert(report.campaign_activity_id.clone());
            }
        }
    }
    let mut want: Vec<(String, i64, i64, i64)> = engagement
        .into_iter()
        .map(|(e, (o, c, a))| (e, o, c, a.len() as i64))
        .collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
    want.truncate(5);
    let got: Vec<(String, i64, i64, i64)> = answers[4]
        .rows
        .iter()
        .map(|r| (text(r, 0), int(r, 1), int(r, 2), int(r, 3)))
        .collect();
    assert_eq!(got, want, "the five most engaged contacts");

    // 6. Who did not open: the sandbox's did-not-opens report.
    let mut want: Vec<String> = target
        .didnotopens
        .iter()
        .map(|r| r["email_address"].as_str().expect("an address").to_owned())
        .collect();
    want.sort();
    let got: Vec<String> = answers[5].rows.iter().map(|r| text(r, 0)).collect();
    assert_eq!(got, want, "the recipients who did not open");
    assert!(!want.is_empty());
    t.stop().await;
}
