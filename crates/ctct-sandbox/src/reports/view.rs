//! Every sent activity's reports at once, rendered as the API renders them, for tests that
//! compare a client's copy with the sandbox's own numbers without spending API requests
//! (`SandboxAdmin::campaign_reports`, `GET /__sandbox/reports`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::render;
use super::{Tracking, TrackingKind};
use crate::campaigns::Status;
use crate::clock::{Millis, fmt_secs};
use crate::state::Account;

/// One sent campaign activity's reports. Row lists are newest first, each row exactly as the
/// matching `/reports/email_reports/{id}/tracking/...` operation renders it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityReport {
    pub campaign_id: String,
    pub campaign_activity_id: String,
    pub last_sent_date: String,
    /// As `/reports/stats/email_campaign_activities/{id}` renders `stats`.
    pub stats: Value,
    /// As `/reports/email_reports/{id}/links?no_clicks=true` renders `link_click_counts`.
    pub links: Vec<Value>,
    pub sends: Vec<Value>,
    pub opens: Vec<Value>,
    pub clicks: Vec<Value>,
    pub bounces: Vec<Value>,
    pub optouts: Vec<Value>,
    pub forwards: Vec<Value>,
    pub didnotopens: Vec<Value>,
}

fn report(account: &Account, index: u32, tracking: &Tracking, now: Millis) -> ActivityReport {
    let campaigns = &account.campaigns;
    let activity = &campaigns.activities[index as usize];
    let id = activity.id;
    let contacts = &account.contacts;
    let events = |kind: TrackingKind| tracking.visible(kind, now).iter().rev();
    let engaged = tracking.engaged(now);
    let links = tracking
        .links
        .iter()
        .zip(tracking.link_clicks(now))
        .map(|(link, clicks)| {
            json!({"link_url": link.url, "url_id": link.url_id.to_string(), "unique_clicks": clicks})
        })
        .collect();
    let sends = |skip_engaged: bool, kind: &str| -> Vec<Value> {
        tracking
            .sends
            .iter()
            .rev()
            .filter(|s| s.at <= now && !(skip_engaged && engaged.contains(&s.contact)))
            .map(|s| render::plain_row(contacts, &id, kind, s.contact, s.at))
            .collect()
    };
    ActivityReport {
        campaign_id: campaigns.campaigns[activity.campaign as usize]
            .id
            .to_string(),
        campaign_activity_id: id.to_string(),
        last_sent_date: fmt_secs(tracking.last_sent_at),
        stats: render::activity_stats(&tracking.stats(now)),
        links,
        sends: sends(false, "em_sends"),
        opens: events(TrackingKind::Open)
            .map(|e| render::open_row(contacts, &id, e))
            .collect(),
        clicks: events(TrackingKind::Click)
            .map(|e| render::click_row(contacts, &id, tracking, e))
            .collect(),
        bounces: events(TrackingKind::Bounce)
            .map(|e| render::bounce_row(contacts, &id, e))
            .collect(),
        optouts: events(TrackingKind::Optout)
            .map(|e| render::optout_row(contacts, &id, e))
            .collect(),
        forwards: events(TrackingKind::Forward)
            .map(|e| render::plain_row(contacts, &id, "em_forwards", e.contact, e.at))
            .collect(),
        didnotopens: sends(true, "em_didnotopens"),
    }
}

/// The reports of every sent activity that is not REMOVED, in creation order.
pub(crate) fn activity_reports(account: &Account, now: Millis) -> Vec<ActivityReport> {
    account
        .reports
        .by_activity
        .iter()
        .filter(|(index, _)| {
            account.campaigns.activities[**index as usize].status != Status::Removed
        })
        .map(|(index, tracking)| report(account, *index, tracking, now))
        .collect()
}
