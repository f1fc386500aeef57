//! Campaign reports (issue 19): the statistics of each sent campaign activity (with a dated
//! history row whenever a run sees them change), per-contact tracking events, the links of
//! each activity, and where the reporting pass stands per activity and report. The domain
//! types here are shared with the PostgreSQL engine; the statements are SQLite's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{instant, parse_instant};
use crate::api::model::{
    ActivityStats, EmailStats, LinkClickCount, TrackingActivity, TrackingReport,
};
use crate::store::StoreError;

/// The statistics kept in columns of their own (`campaign_activity_stats` and its history),
/// with the API's names; every other count goes into the `breakdown` JSON.
pub(crate) const CORE: [(&str, &str); 10] = [
    ("sends", "em_sends"),
    ("opens", "em_opens"),
    ("opens_all", "em_opens_all"),
    ("clicks", "em_clicks"),
    ("clicks_all", "em_clicks_all"),
    ("forwards", "em_forwards"),
    ("optouts", "em_optouts"),
    ("abuse", "em_abuse"),
    ("bounces", "em_bounces"),
    ("not_opened", "em_not_opened"),
];

/// Statistics as the mirror stores them: the [`CORE`] counts in order, and the rest by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitStats {
    pub core: [i64; 10],
    pub breakdown: Value,
}

impl SplitStats {
    pub fn of(stats: &EmailStats) -> Self {
        let mut all: BTreeMap<String, i64> = serde_json::to_value(stats)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let core = CORE.map(|(_, key)| all.remove(key).unwrap_or(0));
        SplitStats {
            core,
            breakdown: serde_json::to_value(all).unwrap_or_default(),
        }
    }

    pub fn join(&self) -> EmailStats {
        let mut all = match &self.breakdown {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        for ((_, key), value) in CORE.iter().zip(self.core) {
            all.insert((*key).to_owned(), value.into());
        }
        serde_json::from_value(Value::Object(all)).unwrap_or_default()
    }
}

/// One activity's statistics as read, with its campaign's last send when known (summaries).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRow {
    pub stats: ActivityStats,
    pub last_sent_date: Option<DateTime<Utc>>,
}

/// What writing statistics did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsWritten {
    pub upserted: u64,
    /// Activities whose statistics are new or differ from the stored ones (each got a history
    /// row), in the order given.
    pub changed: Vec<String>,
}

/// An activity's statistics as the mirror holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStats {
    pub campaign_activity_id: String,
    pub campaign_id: String,
    pub stats: EmailStats,
    pub last_sent_date: Option<DateTime<Utc>>,
    pub last_refresh_time: Option<DateTime<Utc>>,
    /// When a run last saw them change.
    pub changed_at: Option<DateTime<Utc>>,
}

/// The kinds of per-contact events (`tracking_events.kind`). Unique opens are not kept: they
/// are each contact's latest open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Send,
    Open,
    Click,
    Bounce,
    Optout,
    Forward,
    DidNotOpen,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::Send,
        EventKind::Open,
        EventKind::Click,
        EventKind::Bounce,
        EventKind::Optout,
        EventKind::Forward,
        EventKind::DidNotOpen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Send => "send",
            EventKind::Open => "open",
            EventKind::Click => "click",
            EventKind::Bounce => "bounce",
            EventKind::Optout => "optout",
            EventKind::Forward => "forward",
            EventKind::DidNotOpen => "didnotopen",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The tracking report that lists these events.
    pub fn report(self) -> TrackingReport {
        match self {
            EventKind::Send => TrackingReport::Sends,
            EventKind::Open => TrackingReport::Opens,
            EventKind::Click => TrackingReport::Clicks,
            EventKind::Bounce => TrackingReport::Bounces,
            EventKind::Optout => TrackingReport::Optouts,
            EventKind::Forward => TrackingReport::Forwards,
            EventKind::DidNotOpen => TrackingReport::DidNotOpens,
        }
    }

    /// The kind of a tracking report's rows (`None` for unique opens, which are not kept).
    pub fn of_report(report: TrackingReport) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.report() == report)
    }
}

/// One per-contact event as the mirror keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub contact_id: String,
    pub kind: EventKind,
    pub occurred_at: DateTime<Utc>,
    /// Clicks: the link's id; empty for the other kinds.
    pub url_id: String,
    /// 1 for the first of identical events (same contact, kind, second and link), 2 for the
    /// second, … (see [`number_occurrences`]).
    pub occurrence: u32,
    pub link_url: Option<String>,
    pub device_type: Option<String>,
    pub bounce_code: Option<String>,
    pub opt_out_reason: Option<String>,
}

impl EventRow {
    /// A tracking row as an event of `kind` (occurrence 1); `None` for a row without a
    /// contact or a time, which cannot be told apart from others.
    pub fn from_tracking(row: &TrackingActivity, kind: EventKind) -> Option<Self> {
        let occurred_at = row.created_time?;
        if row.contact_id.trim().is_empty() {
            return None;
        }
        let url_id = match kind {
            EventKind::Click => row.url_id.clone().unwrap_or_default(),
            _ => String::new(),
        };
        Some(EventRow {
            contact_id: row.contact_id.clone(),
            kind,
            occurred_at,
            url_id,
            occurrence: 1,
            link_url: row.link_url.clone(),
            device_type: row.device_type.clone(),
            bounce_code: row.bounce_code.clone(),
            opt_out_reason: row.opt_out_reason.clone(),
        })
    }

    fn identity(&self) -> (&str, EventKind, DateTime<Utc>, &str) {
        (&self.contact_id, self.kind, self.occurred_at, &self.url_id)
    }
}

/// Numbers identical events (same contact, kind, time and link) 1, 2, … in the order given,
/// so that two opens within one second stay two rows and reading them again inserts neither
/// twice. Rows must come in the report's order, all of a report at once or page by page with
/// the same `seen` map carried along.
pub fn number_occurrences(
    rows: &mut [EventRow],
    seen: &mut std::collections::HashMap<(String, EventKind, DateTime<Utc>, String), u32>,
) {
    for row in rows {
        let (contact, kind, at, url) = row.identity();
        let key = (contact.to_owned(), kind, at, url.to_owned());
        let n = seen.entry(key).or_insert(0);
        *n += 1;
        row.occurrence = *n;
    }
}

/// A part of an activity's reports the pass reads: one kind of events, or the links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReportPart {
    Events(EventKind),
    Links,
}

impl ReportPart {
    /// `report_progress.report`: the tracking report's name, or `links`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportPart::Events(kind) => kind.report().as_str(),
            ReportPart::Links => "links",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        if text == "links" {
            return Some(ReportPart::Links);
        }
        TrackingReport::parse(text)
            .and_then(EventKind::of_report)
            .map(ReportPart::Events)
    }
}

/// Where the pass stands on one part of an activity's reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportProgress {
    pub part: ReportPart,
    /// The statistics count the part was last read in full against.
    pub stats_seen: Option<i64>,
    /// The page to continue from (a read in progress).
    pub next_href: Option<String>,
    /// The newest event stored by the last complete read.
    pub newest_at: Option<DateTime<Utc>>,
    /// The last read ended.
    pub done: bool,
    /// Rows read by the reads so far.
    pub rows_read: u64,
}

impl ReportProgress {
    /// No read yet.
    pub fn new(part: ReportPart) -> Self {
        ReportProgress {
            part,
            stats_seen: None,
            next_href: None,
            newest_at: None,
            done: false,
            rows_read: 0,
        }
    }
}

/// The URL-id key of a link (its URL when the API gives no id).
pub(crate) fn link_key(link: &LinkClickCount) -> String {
    link.url_id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| link.link_url.clone())
}

// --- SQLite statements ---

const STATS_COLUMNS: &str =
    "sends, opens, opens_all, clicks, clicks_all, forwards, optouts, abuse, bounces, not_opened";

fn stored_split(
    conn: &Connection,
    account: &str,
    activity: &str,
) -> Result<Option<SplitStats>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {STATS_COLUMNS}, breakdown FROM campaign_activity_stats
         WHERE account = ?1 AND campaign_activity_id = ?2"
    ))?;
    let found = stmt
        .query_row(params![account, activity], |r| {
            let mut core = [0i64; 10];
            for (i, slot) in core.iter_mut().enumerate() {
                *slot = r.get(i)?;
            }
            let breakdown: String = r.get(10)?;
            Ok((core, breakdown))
        })
        .optional()?;
    Ok(found.map(|(core, breakdown)| SplitStats {
        core,
        breakdown: serde_json::from_str(&breakdown).unwrap_or_default(),
    }))
}

/// Upserts activities' statistics (seen by `run_id`); each new or changed one gets a history
/// row for the run (taken `now`).
pub fn write_stats(
    conn: &Connection,
    account: &str,
    rows: &[StatsRow],
    run_id: i64,
    now: &str,
) -> Result<StatsWritten, StoreError> {
    let mut written = StatsWritten::default();
    for row in rows {
        let s = &row.stats;
        let split = SplitStats::of(&s.stats);
        let before = stored_split(conn, account, &s.campaign_activity_id)?;
        let changed = before.as_ref() != Some(&split);
        let breakdown = split.breakdown.to_string();
        let c = &split.core;
        conn.prepare_cached(&format!(
            "INSERT INTO campaign_activity_stats (account, campaign_activity_id, campaign_id,
                 {STATS_COLUMNS}, breakdown, last_sent_date, last_refresh_time, changed_at,
                 mirrored_at, seen_run)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17, ?18, ?19)
             ON CONFLICT (account, campaign_activity_id) DO UPDATE SET
                 campaign_id = excluded.campaign_id, sends = excluded.sends,
                 opens = excluded.opens, opens_all = excluded.opens_all,
                 clicks = excluded.clicks, clicks_all = excluded.clicks_all,
                 forwards = excluded.forwards, optouts = excluded.optouts,
                 abuse = excluded.abuse, bounces = excluded.bounces,
                 not_opened = excluded.not_opened, breakdown = excluded.breakdown,
                 last_sent_date = coalesce(excluded.last_sent_date,
                                           campaign_activity_stats.last_sent_date),
                 last_refresh_time = excluded.last_refresh_time,
                 changed_at = CASE WHEN ?20 THEN excluded.changed_at
                                   ELSE campaign_activity_stats.changed_at END,
                 mirrored_at = excluded.mirrored_at, seen_run = excluded.seen_run"
        ))?
        .execute(params![
            account,
            s.campaign_activity_id,
            s.campaign_id,
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            c[6],
            c[7],
            c[8],
            c[9],
            breakdown,
            row.last_sent_date.as_ref().map(instant),
            s.last_refresh_time.as_ref().map(instant),
            now,
            now,
            run_id,
            changed
        ])?;
        written.upserted += 1;
        if !changed {
            continue;
        }
        conn.prepare_cached(&format!(
            "INSERT INTO campaign_activity_stats_history (account, campaign_activity_id,
                 run_id, taken_at, {STATS_COLUMNS}, breakdown)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (account, campaign_activity_id, run_id) DO UPDATE SET
                 taken_at = excluded.taken_at, sends = excluded.sends, opens = excluded.opens,
                 opens_all = excluded.opens_all, clicks = excluded.clicks,
                 clicks_all = excluded.clicks_all, forwards = excluded.forwards,
                 optouts = excluded.optouts, abuse = excluded.abuse,
                 bounces = excluded.bounces, not_opened = excluded.not_opened,
                 breakdown = excluded.breakdown"
        ))?
        .execute(params![
            account,
            s.campaign_activity_id,
            run_id,
            now,
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            c[6],
            c[7],
            c[8],
            c[9],
            breakdown
        ])?;
        written.changed.push(s.campaign_activity_id.clone());
    }
    Ok(written)
}

/// Every activity's stored statistics, by activity id.
pub fn stats(conn: &Connection, account: &str) -> Result<Vec<StoredStats>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT campaign_activity_id, campaign_id, {STATS_COLUMNS}, breakdown, last_sent_date,
             last_refresh_time, changed_at
         FROM campaign_activity_stats WHERE account = ?1 ORDER BY campaign_activity_id"
    ))?;
    let rows = stmt
        .query_map(params![account], |r| {
            let mut core = [0i64; 10];
            for (i, slot) in core.iter_mut().enumerate() {
                *slot = r.get(i + 2)?;
            }
            let breakdown: String = r.get(12)?;
            Ok(StoredStats {
                campaign_activity_id: r.get(0)?,
                campaign_id: r.get(1)?,
                stats: SplitStats {
                    core,
                    breakdown: serde_json::from_str(&breakdown).unwrap_or_default(),
                }
                .join(),
                last_sent_date: parse_instant(r.get(13)?),
                last_refresh_time: parse_instant(r.get(14)?),
                changed_at: parse_instant(r.get(15)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Inserts events of one activity that are not stored yet; returns how many were new.
pub fn write_events(
    conn: &Connection,
    account: &str,
    activity: &str,
    events: &[EventRow],
    now: &str,
) -> Result<u64, StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO tracking_events (account, campaign_activity_id, contact_id, kind,
             occurred_at, url_id, occurrence, link_url, device_type, bounce_code,
             opt_out_reason, mirrored_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT DO NOTHING",
    )?;
    let mut inserted = 0;
    for e in events {
        inserted += insert.execute(params![
            account,
            activity,
            e.contact_id,
            e.kind.as_str(),
            instant(&e.occurred_at),
            e.url_id,
            e.occurrence,
            e.link_url,
            e.device_type,
            e.bounce_code,
            e.opt_out_reason,
            now
        ])? as u64;
    }
    Ok(inserted)
}

/// The stored events of one activity, in key order (kind, contact, time, link, occurrence).
pub fn events(
    conn: &Connection,
    account: &str,
    activity: &str,
) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT contact_id, kind, occurred_at, url_id, occurrence, link_url, device_type,
             bounce_code, opt_out_reason
         FROM tracking_events WHERE account = ?1 AND campaign_activity_id = ?2
         ORDER BY kind, contact_id, occurred_at, url_id, occurrence",
    )?;
    let rows = stmt
        .query_map(params![account, activity], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(contact_id, kind, at, url_id, occurrence, link, device, bounce, reason)| {
                Some(EventRow {
                    contact_id,
                    kind: EventKind::parse(&kind)?,
                    occurred_at: parse_instant(Some(at))?,
                    url_id,
                    occurrence,
                    link_url: link,
                    device_type: device,
                    bounce_code: bounce,
                    opt_out_reason: reason,
                })
            },
        )
        .collect())
}

/// Replaces the links of one activity; returns how many were written.
pub fn write_links(
    conn: &Connection,
    account: &str,
    activity: &str,
    links: &[LinkClickCount],
    now: &str,
) -> Result<u64, StoreError> {
    conn.execute(
        "DELETE FROM campaign_activity_links WHERE account = ?1 AND campaign_activity_id = ?2",
        params![account, activity],
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO campaign_activity_links (account, campaign_activity_id, url_id, link_url,
             unique_clicks, link_tag, list_action, list_id, mirrored_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (account, campaign_activity_id, url_id) DO UPDATE SET
             link_url = excluded.link_url, unique_clicks = excluded.unique_clicks,
             link_tag = excluded.link_tag, list_action = excluded.list_action,
             list_id = excluded.list_id, mirrored_at = excluded.mirrored_at",
    )?;
    for link in links {
        insert.execute(params![
            account,
            activity,
            link_key(link),
            link.link_url,
            link.unique_clicks,
            link.link_tag,
            link.list_action,
            link.list_id,
            now
        ])?;
    }
    Ok(links.len() as u64)
}

/// Saves where the pass stands on one part of an activity's reports.
pub fn save_progress(
    conn: &Connection,
    account: &str,
    activity: &str,
    progress: &ReportProgress,
    run_id: i64,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO report_progress (account, campaign_activity_id, report, stats_seen,
             next_href, newest_at, done, rows_read, run_id, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (account, campaign_activity_id, report) DO UPDATE SET
             stats_seen = excluded.stats_seen, next_href = excluded.next_href,
             newest_at = excluded.newest_at, done = excluded.done,
             rows_read = excluded.rows_read, run_id = excluded.run_id,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        account,
        activity,
        progress.part.as_str(),
        progress.stats_seen,
        progress.next_href,
        progress.newest_at.as_ref().map(instant),
        progress.done,
        progress.rows_read as i64,
        run_id,
        now
    ])?;
    Ok(())
}

/// Where the pass stands on each part of one activity's reports read so far.
pub fn progress(
    conn: &Connection,
    account: &str,
    activity: &str,
) -> Result<Vec<ReportProgress>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT report, stats_seen, next_href, newest_at, done, rows_read
         FROM report_progress WHERE account = ?1 AND campaign_activity_id = ?2
         ORDER BY report",
    )?;
    let rows = stmt
        .query_map(params![account, activity], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(report, stats_seen, next_href, newest_at, done, rows_read)| {
                Some(ReportProgress {
                    part: ReportPart::parse(&report)?,
                    stats_seen,
                    next_href,
                    newest_at: parse_instant(newest_at),
                    done,
                    rows_read: rows_read.max(0) as u64,
                })
            },
        )
        .collect())
}

/// The activities whose reports a run reads: `(campaign_activity_id, campaign_id)` of every
/// mirrored primary e-mail and resend activity of `account` (permalinks have no reports).
pub fn report_activities(
    conn: &Connection,
    account: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT campaign_activity_id, campaign_id FROM campaign_activities
         WHERE account = ?1 AND coalesce(role, 'primary_email') IN ('primary_email', 'resend')
         ORDER BY campaign_id, campaign_activity_id",
    )?;
    let rows = stmt
        .query_map(params![account], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Requests the runs of `resource` started at or after `since` made, over every account (the
/// quota is the API key's), leaving out the run `except` (the one asking).
pub fn requests_since(
    conn: &Connection,
    resource: &str,
    since: &str,
    except: i64,
) -> Result<u64, StoreError> {
    let spent: i64 = conn.query_row(
        "SELECT coalesce(sum(api_requests), 0) FROM mirror_runs
         WHERE resource = ?1 AND started_at >= ?2 AND id <> ?3",
        params![resource, since, except],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(spent).unwrap_or(0))
}
