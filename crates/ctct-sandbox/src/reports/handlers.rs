//! `/reports/...` handlers: the tracking reports of one campaign activity (sends, opens,
//! unique opens, did-not-opens, clicks, forwards, opt-outs, bounces; newest first, at most 500
//! a page, `_links.next` cursors), its link report, the stats of up to 10 activities or 150
//! campaigns, and the paged email campaign summaries. Errors are single `StatsError`
//! objects with `reportingsvc.*` keys (reference §3.1).

use std::collections::HashSet;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use super::render::{self, aggregate_percents};
use super::{BOUNCE_CODES, Event, Stats, Tracking, TrackingKind};
use crate::campaigns::Status;
use crate::clock::{Millis, fmt_millis, fmt_secs};
use crate::errors::{ApiError, Area};
use crate::http::{Links, QueryMap, decode_cursor, encode_cursor, json as json_response};
use crate::state::{Account, Caller, Shared};

/// Most activity ids one stats request takes.
pub(crate) const MAX_ACTIVITY_IDS: usize = 10;
/// Most campaign ids one stats request takes.
pub(crate) const MAX_CAMPAIGN_IDS: usize = 150;
/// Tracking reports: default and largest page.
pub(crate) const TRACKING_LIMIT: u32 = 500;
/// Campaign summaries: default and largest page.
pub(crate) const SUMMARY_DEFAULT: u32 = 50;
pub(crate) const SUMMARY_MAX: u32 = 500;

fn bad_query(name: &str, message: impl Into<String>) -> ApiError {
    ApiError::stats(
        StatusCode::BAD_REQUEST,
        format!("reportingsvc.bad_request.invalid_query_param.{name}."),
        message,
    )
}

fn bad_path(name: &str, message: impl Into<String>) -> ApiError {
    ApiError::stats(
        StatusCode::BAD_REQUEST,
        format!("reportingsvc.bad_request.invalid_path_param.{name}."),
        message,
    )
}

fn not_found(name: &str, message: impl Into<String>) -> ApiError {
    ApiError::stats(
        StatusCode::NOT_FOUND,
        format!("reportingsvc.not_found.invalid_path_param.{name}."),
        message,
    )
}

/// The query, or what its `cursor` carries.
fn effective(raw: Option<&str>) -> Result<QueryMap, ApiError> {
    let query = QueryMap::parse(raw);
    match query.get("cursor") {
        Some(c) => decode_cursor(Area::Campaigns, c)
            .map_err(|_| bad_query("cursor", "cursor is not a valid paging cursor")),
        None => Ok(query),
    }
}

fn limit(query: &QueryMap, default: u32, max: u32) -> Result<u32, ApiError> {
    match query.get("limit") {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(bad_query(
                "limit",
                format!("limit must be an integer between 1 and {max}, got {v}"),
            )),
        },
    }
}

/// A reportable activity: exists and is not REMOVED.
fn find_activity(account: &Account, raw: &str) -> Result<u32, ApiError> {
    let missing = || {
        not_found(
            "campaign_activity_id",
            format!("Email campaign activity {raw} was not found"),
        )
    };
    let id = Uuid::parse_str(raw.trim()).map_err(|_| missing())?;
    account
        .campaigns
        .find_activity(&id)
        .filter(|&i| account.campaigns.activities[i as usize].status != Status::Removed)
        .ok_or_else(missing)
}

/// The tracking reports under `/reports/email_reports/{id}/tracking/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Sends,
    Opens,
    UniqueOpens,
    DidNotOpens,
    Clicks,
    Forwards,
    Optouts,
    Bounces,
}

impl Report {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "sends" => Report::Sends,
            "opens" => Report::Opens,
            "unique_opens" => Report::UniqueOpens,
            "didnotopens" => Report::DidNotOpens,
            "clicks" => Report::Clicks,
            "forwards" => Report::Forwards,
            "optouts" => Report::Optouts,
            "bounces" => Report::Bounces,
            _ => return None,
        })
    }
}

/// Filters of a tracking request, carried in its cursors.
struct Filters {
    url_id: Option<i64>,
    bounce_codes: Vec<u8>,
}

fn filters(report: Report, query: &QueryMap) -> Result<Filters, ApiError> {
    let url_id = match (report, query.get("url_id")) {
        (Report::Clicks, Some(v)) => Some(
            v.trim()
                .parse::<i64>()
                .map_err(|_| bad_query("url_id", format!("url_id must be an integer, got {v}")))?,
        ),
        _ => None,
    };
    let mut bounce_codes = Vec::new();
    if report == Report::Bounces {
        let values = query
            .0
            .iter()
            .filter(|(k, _)| k == "bounce_code")
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty());
        for value in values {
            let code = BOUNCE_CODES
                .iter()
                .position(|c| value.len() == 1 && value.starts_with(*c))
                .ok_or_else(|| {
                    bad_query(
                        "bounce_code",
                        format!("bounce_code must be one of B, D, F, S, V, X, Z, got {value}"),
                    )
                })?;
            if !bounce_codes.contains(&(code as u8)) {
                bounce_codes.push(code as u8);
            }
        }
    }
    Ok(Filters {
        url_id,
        bounce_codes,
    })
}

/// Where the next page starts (exclusive): an event key `<at>.<seq>`, or for sends and
/// did-not-opens an index into the sends (read as `(index, 0)`).
fn position(query: &QueryMap) -> Result<Option<(Millis, u32)>, ApiError> {
    let Some(next) = query.get("next") else {
        return Ok(None);
    };
    let invalid = || bad_query("cursor", "cursor is not a valid paging cursor");
    let (at, seq) = next.split_once('.').unwrap_or((next, "0"));
    Ok(Some((
        at.parse().map_err(|_| invalid())?,
        seq.parse().map_err(|_| invalid())?,
    )))
}

/// The newest `limit` events before `before` that `keep` accepts, and the key to resume at.
fn page_events(
    events: &[Event],
    before: Option<(Millis, u32)>,
    limit: usize,
    mut keep: impl FnMut(&Event) -> bool,
) -> (Vec<&Event>, Option<(Millis, u32)>) {
    let end = before.map_or(events.len(), |k| events.partition_point(|e| e.key() < k));
    let mut out: Vec<&Event> = Vec::new();
    for e in events[..end].iter().rev() {
        if !keep(e) {
            continue;
        }
        if out.len() == limit {
            return (out.clone(), out.last().map(|e| e.key()));
        }
        out.push(e);
    }
    (out, None)
}

/// The newest `limit` sends before index `before` that `keep` accepts, and where to resume.
fn page_sends(
    tracking: &Tracking,
    before: Option<usize>,
    limit: usize,
    keep: impl Fn(u32) -> bool,
) -> (Vec<usize>, Option<usize>) {
    let end = before.map_or(tracking.sends.len(), |b| b.min(tracking.sends.len()));
    let mut out = Vec::new();
    for index in (0..end).rev() {
        if !keep(tracking.sends[index].contact) {
            continue;
        }
        if out.len() == limit {
            return (out.clone(), out.last().copied());
        }
        out.push(index);
    }
    (out, None)
}

pub(crate) async fn get_tracking(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((activity_id, report_name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let report = Report::parse(&report_name).ok_or_else(ApiError::unknown_path)?;
    let query = effective(raw.as_deref())?;
    let limit = limit(&query, TRACKING_LIMIT, TRACKING_LIMIT)?;
    let filters = filters(report, &query)?;
    let before = position(&query)?;
    let now = shared.now_ms();
    shared.with_account(&caller, |account, _cx| {
        let index = find_activity(account, &activity_id)?;
        let activity = account.campaigns.activities[index as usize].id;
        let empty = Tracking::default();
        let tracking = account.reports.by_activity.get(&index).unwrap_or(&empty);
        let contacts = &account.contacts;
        let n = limit as usize;
        let (rows, next): (Vec<Value>, Option<String>) = match report {
            Report::Sends | Report::DidNotOpens => {
                let skip: HashSet<u32> = if report == Report::DidNotOpens {
                    tracking.engaged(now)
                } else {
                    HashSet::new()
                };
                let kind = if report == Report::Sends {
                    "em_sends"
                } else {
                    "em_didnotopens"
                };
                let start = before.map(|(i, _)| usize::try_from(i).unwrap_or(0));
                let (indexes, next) = page_sends(tracking, start, n, |c| !skip.contains(&c));
                let rows = indexes
                    .into_iter()
                    .map(|i| {
                        let s = tracking.sends[i];
                        render::plain_row(contacts, &activity, kind, s.contact, s.at)
                    })
                    .collect();
                (rows, next.map(|i| i.to_string()))
            }
            Report::UniqueOpens => {
                // Each contact's latest open, newest first.
                let mut seen = HashSet::new();
                let latest = tracking
                    .visible(TrackingKind::Open, now)
                    .iter()
                    .rev()
                    .filter(|e| seen.insert(e.contact));
                let mut rows = Vec::new();
                let mut last = None;
                let mut resume = None;
                for e in latest.filter(|e| before.is_none_or(|b| e.key() < b)) {
                    if rows.len() == n {
                        resume = last;
                        break;
                    }
                    rows.push(render::open_row(contacts, &activity, e));
                    last = Some(e.key());
                }
                (rows, resume.map(|(at, seq)| format!("{at}.{seq}")))
            }
            _ => {
                let kind = match report {
                    Report::Opens => TrackingKind::Open,
                    Report::Clicks => TrackingKind::Click,
                    Report::Forwards => TrackingKind::Forward,
                    Report::Optouts => TrackingKind::Optout,
                    _ => TrackingKind::Bounce,
                };
                let url_link = filters.url_id.map(|id| {
                    tracking
                        .links
                        .iter()
                        .position(|l| l.url_id == id)
                        .map(|p| p as u16)
                });
                let codes = &filters.bounce_codes;
                let keep = |e: &Event| match kind {
                    TrackingKind::Click => url_link.is_none_or(|l| l == Some(e.link)),
                    TrackingKind::Bounce => codes.is_empty() || codes.contains(&e.detail),
                    _ => true,
                };
                let (events, next) = page_events(tracking.visible(kind, now), before, n, keep);
                let rows = events
                    .into_iter()
                    .map(|e| match kind {
                        TrackingKind::Open => render::open_row(contacts, &activity, e),
                        TrackingKind::Click => render::click_row(contacts, &activity, tracking, e),
                        TrackingKind::Bounce => render::bounce_row(contacts, &activity, e),
                        TrackingKind::Optout => render::optout_row(contacts, &activity, e),
                        _ => render::plain_row(contacts, &activity, "em_forwards", e.contact, e.at),
                    })
                    .collect();
                (rows, next.map(|(at, seq)| format!("{at}.{seq}")))
            }
        };
        let cursor = next.map(|next| {
            let mut pairs = vec![
                ("limit".to_owned(), limit.to_string()),
                ("next".to_owned(), next),
            ];
            if let Some(id) = filters.url_id {
                pairs.push(("url_id".to_owned(), id.to_string()));
            }
            if !filters.bounce_codes.is_empty() {
                let codes: Vec<String> = filters
                    .bounce_codes
                    .iter()
                    .map(|&c| render::bounce_code(c).to_string())
                    .collect();
                pairs.push(("bounce_code".to_owned(), codes.join(",")));
            }
            encode_cursor(&pairs)
        });
        let path = format!("/v3/reports/email_reports/{activity}/tracking/{report_name}");
        let body = json!({"tracking_activities": rows, "_links": Links::next(&path, cursor)});
        Ok(json_response(StatusCode::OK, &body))
    })
}

pub(crate) async fn get_links(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(activity_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let no_clicks = match query.get("no_clicks") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(bad_query(
                "no_clicks",
                format!("no_clicks must be true or false, got {v}"),
            ));
        }
    };
    let now = shared.now_ms();
    shared.with_account(&caller, |account, _cx| {
        let index = find_activity(account, &activity_id)?;
        let activity = account.campaigns.activities[index as usize].id;
        let mut counts = Vec::new();
        if let Some(tracking) = account.reports.by_activity.get(&index) {
            for (link, clicks) in tracking.links.iter().zip(tracking.link_clicks(now)) {
                if clicks > 0 || no_clicks {
                    counts.push(json!({
                        "link_url": link.url,
                        "url_id": link.url_id.to_string(),
                        "unique_clicks": clicks,
                    }));
                }
            }
        }
        let body = json!({"campaign_activity_id": activity, "link_click_counts": counts});
        Ok(json_response(StatusCode::OK, &body))
    })
}

/// Splits a comma-separated id list: 400 when empty or longer than `max`, 404 when an id is
/// malformed. Duplicates are dropped.
fn id_list(raw: &str, name: &str, max: usize) -> Result<Vec<Uuid>, ApiError> {
    let items: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() || items.len() > max {
        return Err(bad_path(
            name,
            format!("{name} must list between 1 and {max} ids"),
        ));
    }
    let mut ids: Vec<Uuid> = Vec::with_capacity(items.len());
    for item in items {
        let id = Uuid::parse_str(item)
            .map_err(|_| not_found(name, format!("{item} is not a valid id")))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn missing_stats(name: &str, id: &Uuid) -> Value {
    json!({
        "error_key": format!("reportingsvc.not_found.invalid_path_param.{name}."),
        "error_message": format!("Could not find any stats for {id}"),
    })
}

/// The tracking of a reportable (sent, not removed) activity.
fn sent(account: &Account, index: u32) -> Option<&Tracking> {
    (account.campaigns.activities[index as usize].status != Status::Removed)
        .then(|| account.reports.by_activity.get(&index))
        .flatten()
}

pub(crate) async fn get_activity_stats(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(raw_ids): Path<String>,
) -> Result<Response, ApiError> {
    const NAME: &str = "campaign_activity_ids";
    let ids = id_list(&raw_ids, NAME, MAX_ACTIVITY_IDS)?;
    let now = shared.now_ms();
    shared.with_account(&caller, |account, _cx| {
        let campaigns = &account.campaigns;
        let (mut results, mut errors) = (Vec::new(), Vec::new());
        for id in &ids {
            let found = campaigns
                .find_activity(id)
                .and_then(|i| sent(account, i).map(|t| (i, t)));
            match found {
                Some((i, tracking)) => {
                    let activity = &campaigns.activities[i as usize];
                    results.push(json!({
                        "campaign_id": campaigns.campaigns[activity.campaign as usize].id.to_string(),
                        "campaign_activity_id": id.to_string(),
                        "stats": render::activity_stats(&tracking.stats(now)),
                        "last_refresh_time": fmt_millis(now),
                    }));
                }
                None => errors.push(missing_stats(NAME, id)),
            }
        }
        if results.is_empty() {
            return Err(not_found(
                NAME,
                "Could not find any campaign activity stats for all requested campaign activities.",
            ));
        }
        let mut body = json!({"results": results});
        if !errors.is_empty() {
            body["errors"] = errors.into();
        }
        Ok(json_response(StatusCode::OK, &body))
    })
}

pub(crate) async fn get_campaign_stats(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(raw_ids): Path<String>,
) -> Result<Response, ApiError> {
    const NAME: &str = "campaign_ids";
    let ids = id_list(&raw_ids, NAME, MAX_CAMPAIGN_IDS)?;
    let now = shared.now_ms();
    shared.with_account(&caller, |account, _cx| {
        let campaigns = &account.campaigns;
        let (mut results, mut errors) = (Vec::new(), Vec::new());
        for id in &ids {
            let tracking = campaigns
                .find(id)
                .and_then(|c| sent(account, campaigns.campaigns[c as usize].primary));
            match tracking {
                Some(tracking) => {
                    let stats = tracking.stats(now);
                    results.push(json!({
                        "campaign_id": id.to_string(),
                        "stats": render::campaign_stats(&stats),
                        "percents": render::campaign_percents(&stats),
                        "last_refresh_time": fmt_millis(now),
                    }));
                }
                None => errors.push(missing_stats(NAME, id)),
            }
        }
        if results.is_empty() {
            return Err(not_found(
                NAME,
                "Could not find any campaign stats for all requested campaigns.",
            ));
        }
        let mut body = json!({"results": results});
        if !errors.is_empty() {
            body["errors"] = errors.into();
        }
        Ok(json_response(StatusCode::OK, &body))
    })
}

pub(crate) async fn get_campaign_summaries(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = effective(raw.as_deref())?;
    let limit = limit(&query, SUMMARY_DEFAULT, SUMMARY_MAX)?;
    let start = match query.get("next") {
        None => 0,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| bad_query("cursor", "cursor is not a valid paging cursor"))?,
    };
    let now = shared.now_ms();
    shared.with_account(&caller, |account, _cx| {
        let campaigns = &account.campaigns;
        // Sent campaigns, most recently sent first.
        let mut sent_campaigns: Vec<(Millis, usize, &Tracking)> = campaigns
            .campaigns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| sent(account, c.primary).map(|t| (t.last_sent_at, i, t)))
            .collect();
        sent_campaigns.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        let page: Vec<_> = sent_campaigns
            .iter()
            .skip(start)
            .take(limit as usize)
            .collect();
        let stats: Vec<Stats> = page.iter().map(|(_, _, t)| t.stats(now)).collect();
        let summaries: Vec<Value> = page
            .iter()
            .zip(&stats)
            .map(|((sent_at, i, _), s)| {
                json!({
                    "campaign_id": campaigns.campaigns[*i].id.to_string(),
                    "campaign_type": "CUSTOM_CODE_EMAIL",
                    "last_sent_date": fmt_secs(*sent_at),
                    "unique_counts": render::unique_counts(s),
                })
            })
            .collect();
        let end = start + page.len();
        let cursor = (end < sent_campaigns.len()).then(|| {
            encode_cursor(&[
                ("limit".to_owned(), limit.to_string()),
                ("next".to_owned(), end.to_string()),
            ])
        });
        let body = json!({
            "bulk_email_campaign_summaries": summaries,
            "aggregate_percents": aggregate_percents(&stats),
            "_links": Links::next("/v3/reports/summary_reports/email_campaign_summaries", cursor),
        });
        Ok(json_response(StatusCode::OK, &body))
    })
}
