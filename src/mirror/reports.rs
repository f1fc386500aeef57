//! Campaign reports (docs/mirror.md, "Campaign reports"). A run reads, in this order:
//!
//! 1. the campaign summaries (`GET /reports/summary_reports/email_campaign_summaries`, 500
//!    campaigns a request): which campaigns were sent, and when last;
//! 2. the statistics of every sent campaign's activities (`GET /reports/stats/
//!    email_campaign_activities/{ids}`, 10 a request; the activities come from the mirrored
//!    `campaign_activities`, so the campaigns resource runs first). Each activity whose
//!    statistics changed gets a dated history row;
//! 3. for activities whose campaign was sent within `mirror.reports.days`: the tracking
//!    reports that cannot be derived from the statistics (opens, clicks, bounces, opt-outs,
//!    forwards; 500 rows a request, newest first) and the link report, each only when its
//!    count in the statistics differs from the one it was last read in full against. Sends
//!    and did-not-opens (one row per recipient: most of the requests, and nothing the counts
//!    and the contact lists do not tell) are not read.
//!
//! The reports have no `updated_after`: a read that finds a whole page already stored stops
//! there (the pages are newest first, and the previous read stored everything older). A read
//! cut short keeps its next page in `report_progress` and the next run continues from it.
//!
//! Requests are the mirror's (below commands), and one UTC day's reporting runs together stop
//! at `mirror.reports.share` of the daily quota: the run then ends `interrupted` with the
//! reset time, and its `mirror_runs.error` tells what it left for the next run.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::pass::{Run, Stop};
use super::sql::reports::{EventKind, EventRow, ReportPart, ReportProgress, StatsRow};
use super::{Mode, Resource};
use crate::api::ApiError;
use crate::api::model::{MAX_STATS_ACTIVITY_IDS, MAX_TRACKING_LIMIT, TrackingPage};
use crate::clock::next_utc_midnight;

/// The event kinds a run reads, with the statistics count each is compared with.
const READ: [EventKind; 5] = [
    EventKind::Open,
    EventKind::Click,
    EventKind::Bounce,
    EventKind::Optout,
    EventKind::Forward,
];

/// What one activity's reports are read against.
struct Sent {
    campaign_activity_id: String,
    stats: crate::api::model::EmailStats,
}

/// The count in the statistics that a part's rows add up to (each open, each click, …).
fn count_of(part: ReportPart, stats: &crate::api::model::EmailStats) -> i64 {
    match part {
        ReportPart::Events(EventKind::Open) => stats.opens_all,
        ReportPart::Events(EventKind::Click) | ReportPart::Links => stats.clicks_all,
        ReportPart::Events(EventKind::Bounce) => stats.bounces,
        ReportPart::Events(EventKind::Optout) => stats.optouts,
        ReportPart::Events(EventKind::Forward) => stats.forwards,
        ReportPart::Events(EventKind::Send) => stats.sends,
        ReportPart::Events(EventKind::DidNotOpen) => stats.not_opened,
    }
}

/// The day's share: how many requests this run may still make.
struct Share {
    allowed: u64,
    limit: u64,
    resets_at: DateTime<Utc>,
}

impl Share {
    /// Stops the run when its next request would go beyond the day's share.
    fn check(&self, run: &Run<'_>, left: &Left) -> Result<(), Stop> {
        if run.requests() < self.allowed {
            return Ok(());
        }
        Err(Stop::Quota {
            resets_at: self.resets_at,
            message: format!(
                "the reports' share of the day ({} requests, mirror.reports.share) is spent; {}",
                self.limit,
                left.describe()
            ),
        })
    }
}

/// What the run has not done yet, for `mirror_runs.error` when the share runs out.
#[derive(Default)]
struct Left {
    stats_total: usize,
    stats_read: usize,
    tracking_total: usize,
    tracking_done: usize,
}

impl Left {
    fn describe(&self) -> String {
        if self.stats_read < self.stats_total {
            format!(
                "left for the next run: the statistics of {} of {} activities, then their tracking reports",
                self.stats_total - self.stats_read,
                self.stats_total
            )
        } else {
            format!(
                "left for the next run: the tracking reports of {} of {} activities in the window",
                self.tracking_total - self.tracking_done,
                self.tracking_total
            )
        }
    }
}

pub(super) async fn run(run: &Run<'_>) -> Result<(), Stop> {
    run.describe(Mode::Full, None, None).await?;
    let options = run.options().reports.clone();
    let now = run.now();
    let day_start = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    let spent_today = run
        .db()
        .requests_since(Resource::Reports, day_start, run.run_id)
        .await?;
    let share = Share {
        allowed: u64::from(options.daily_requests).saturating_sub(spent_today),
        limit: u64::from(options.daily_requests),
        resets_at: next_utc_midnight(now),
    };
    let mut left = Left::default();

    // 1. Which campaigns were sent, and when last.
    let mut sent_campaigns: HashMap<String, Option<DateTime<Utc>>> = HashMap::new();
    let mut next: Option<String> = None;
    loop {
        share.check(run, &left)?;
        run.check_cancelled()?;
        let page = match &next {
            None => {
                run.call(
                    run.api
                        .list_campaign_summaries(Some(crate::api::model::MAX_SUMMARY_LIMIT)),
                )
                .await?
            }
            Some(href) => run.call(run.api.next_campaign_summaries_page(href)).await?,
        };
        for summary in page.bulk_email_campaign_summaries {
            if !summary.campaign_id.is_empty() {
                sent_campaigns.insert(summary.campaign_id, summary.last_sent_date);
            }
        }
        next = page.next;
        if next.is_none() {
            break;
        }
    }

    // 2. The statistics of their activities.
    let activities: Vec<(String, String)> = run
        .db()
        .report_activities(&run.account)
        .await?
        .into_iter()
        .filter(|(_, campaign)| sent_campaigns.contains_key(campaign))
        .collect();
    left.stats_total = activities.len();
    let mut sent: Vec<(Sent, Option<DateTime<Utc>>)> = Vec::new();
    for chunk in activities.chunks(MAX_STATS_ACTIVITY_IDS) {
        share.check(run, &left)?;
        run.check_cancelled()?;
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
        let report = run.call(run.api.campaign_activity_stats(&ids)).await?;
        let campaigns: HashMap<&str, &str> = chunk
            .iter()
            .map(|(a, c)| (a.as_str(), c.as_str()))
            .collect();
        let mut rows = Vec::new();
        for mut stats in report.results {
            let Some(campaign) = campaigns.get(stats.campaign_activity_id.as_str()) else {
                continue;
            };
            if stats.campaign_id.is_empty() {
                stats.campaign_id = (*campaign).to_owned();
            }
            let last_sent = sent_campaigns.get(*campaign).copied().flatten();
            sent.push((
                Sent {
                    campaign_activity_id: stats.campaign_activity_id.clone(),
                    stats: stats.stats.clone(),
                },
                last_sent,
            ));
            rows.push(StatsRow {
                stats,
                last_sent_date: last_sent,
            });
        }
        let count = rows.len() as u64;
        run.db().write_report_stats(run.page_mark(), rows).await?;
        run.page_written(count);
        left.stats_read += chunk.len();
    }

    // 3. Per-contact events of the activities sent within the window.
    if options.days == 0 {
        return Ok(());
    }
    let since = now - chrono::Duration::days(i64::from(options.days));
    let in_window: Vec<&Sent> = sent
        .iter()
        .filter(|(_, last_sent)| last_sent.is_some_and(|at| at >= since))
        .map(|(s, _)| s)
        .collect();
    left.tracking_total = in_window.len();
    for activity in in_window {
        tracking(run, activity, &share, &left).await?;
        left.tracking_done += 1;
    }
    Ok(())
}

/// Reads the parts of one activity's reports whose counts changed since their last full read.
async fn tracking(run: &Run<'_>, activity: &Sent, share: &Share, left: &Left) -> Result<(), Stop> {
    let id = &activity.campaign_activity_id;
    let stored: BTreeMap<ReportPart, ReportProgress> = run
        .db()
        .report_progress(&run.account, id)
        .await?
        .into_iter()
        .map(|p| (p.part, p))
        .collect();
    let parts = READ
        .into_iter()
        .map(ReportPart::Events)
        .chain([ReportPart::Links]);
    for part in parts {
        let count = count_of(part, &activity.stats);
        let progress = stored
            .get(&part)
            .cloned()
            .unwrap_or_else(|| ReportProgress::new(part));
        // Unchanged since its last full read, or nothing to read (the links are read once
        // even then: the links nobody clicked are rows of their own).
        let unchanged = progress.done && progress.stats_seen == Some(count);
        let empty = count == 0 && progress.next_href.is_none() && part != ReportPart::Links;
        if unchanged || empty {
            continue;
        }
        match part {
            ReportPart::Links => {
                share.check(run, left)?;
                run.check_cancelled()?;
                let links = match run.call(run.api.activity_link_report(id, true)).await {
                    Ok(report) => report.link_click_counts,
                    Err(Stop::Api(ApiError::NotFound { .. })) => Vec::new(),
                    Err(stop) => return Err(stop),
                };
                let rows = links.len() as u64;
                let progress = ReportProgress {
                    stats_seen: Some(count),
                    next_href: None,
                    done: true,
                    rows_read: progress.rows_read + rows,
                    ..progress
                };
                run.db()
                    .write_activity_links(run.page_mark(), id.clone(), links, progress)
                    .await?;
                run.page_written(rows);
            }
            ReportPart::Events(kind) => {
                events(run, id, kind, count, progress, share, left).await?;
            }
        }
    }
    Ok(())
}

/// Reads one tracking report from where its last read stopped (or from its newest page) until
/// its end or a page that is all stored already.
async fn events(
    run: &Run<'_>,
    id: &str,
    kind: EventKind,
    count: i64,
    mut progress: ReportProgress,
    share: &Share,
    left: &Left,
) -> Result<(), Stop> {
    let report = kind.report();
    // A read continued from a stored page numbers repeats from there: identical events (same
    // contact, second and link) never straddle a page boundary in practice, and a repeat that
    // does is stored twice at worst, never lost.
    let mut seen = HashMap::new();
    let resumed = !progress.done && progress.next_href.is_some();
    let mut href = if resumed {
        progress.next_href.clone()
    } else {
        None
    };
    let mut newest: Option<DateTime<Utc>> = None;
    loop {
        share.check(run, left)?;
        run.check_cancelled()?;
        let page: TrackingPage = match &href {
            None => {
                match run
                    .call(
                        run.api
                            .tracking_report(id, report, Some(MAX_TRACKING_LIMIT)),
                    )
                    .await
                {
                    Ok(page) => page,
                    Err(Stop::Api(ApiError::NotFound { .. })) => TrackingPage::default(),
                    Err(stop) => return Err(stop),
                }
            }
            Some(next) => run.call(run.api.next_tracking_page(report, next)).await?,
        };
        let mut rows: Vec<EventRow> = page
            .tracking_activities
            .iter()
            .filter_map(|row| EventRow::from_tracking(row, kind))
            .collect();
        super::sql::reports::number_occurrences(&mut rows, &mut seen);
        let read = rows.len() as u64;
        if newest.is_none() {
            newest = rows.iter().map(|r| r.occurred_at).max();
        }
        let had_rows = !rows.is_empty();
        let end = page.next.is_none();
        progress = ReportProgress {
            part: ReportPart::Events(kind),
            stats_seen: progress.stats_seen,
            next_href: page.next.clone(),
            newest_at: progress.newest_at,
            done: false,
            rows_read: progress.rows_read + read,
        };
        // The last page of this read: record what it was read against.
        let mut finishing = progress.clone();
        finishing.stats_seen = Some(count);
        finishing.next_href = None;
        finishing.done = true;
        finishing.newest_at = newest.or(progress.newest_at);
        let inserted = run
            .db()
            .write_tracking_page(
                run.page_mark(),
                id.to_owned(),
                rows,
                if end {
                    finishing.clone()
                } else {
                    progress.clone()
                },
            )
            .await?;
        run.page_written(inserted);
        // A full page of events all stored before: everything older was stored by an
        // earlier read (unless this read continues one cut short, which must reach the end).
        let caught_up = !resumed && had_rows && inserted == 0;
        if end {
            return Ok(());
        }
        if caught_up {
            run.db()
                .write_tracking_page(run.page_mark(), id.to_owned(), Vec::new(), finishing)
                .await?;
            return Ok(());
        }
        href = page.next;
    }
}
