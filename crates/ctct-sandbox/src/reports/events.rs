//! Tracking events added by the admin API (`POST /__sandbox/reports/{id}/events`,
//! `SandboxAdmin::add_tracking_events`), so a test can change an activity's report between
//! two runs of a client. Events are checked as a whole and then all added, or none.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BOUNCE_CODES, DEVICES, OPT_OUT_REASONS, TrackingKind};
use crate::campaigns::Status;
use crate::clock::Millis;
use crate::state::Account;

/// One event to add to a sent campaign activity's tracking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingEvent {
    #[serde(rename = "type")]
    pub kind: TrackingKind,
    /// A recipient of the activity.
    pub contact_id: Uuid,
    /// When it happened (default: now on the sandbox clock); not before the send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    /// Opens and clicks: `computer` (default), `mobile`, `tablet` or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// Clicks: the link, by `url_id` or `link_url` (default: the activity's first link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_url: Option<String>,
    /// Bounces: `B` (default), `D`, `F`, `S`, `V`, `X` or `Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_code: Option<String>,
    /// Opt-outs: none (default) or one of the sandbox's reasons (README.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_reason: Option<String>,
}

impl TrackingEvent {
    /// An event of `kind` by `contact_id`, now, with the defaults above.
    pub fn new(kind: TrackingKind, contact_id: Uuid) -> Self {
        Self {
            kind,
            contact_id,
            time: None,
            device_type: None,
            url_id: None,
            link_url: None,
            bounce_code: None,
            opt_out_reason: None,
        }
    }
}

/// Checks every event, then adds them all; returns how many were added.
pub(crate) fn add_events(
    account: &mut Account,
    activity_id: &Uuid,
    events: &[TrackingEvent],
    now: Millis,
) -> Result<usize, String> {
    let index = account
        .campaigns
        .find_activity(activity_id)
        .filter(|&i| account.campaigns.activities[i as usize].status != Status::Removed)
        .ok_or_else(|| format!("campaign activity {activity_id} does not exist"))?;
    let tracking = account
        .reports
        .by_activity
        .get(&index)
        .ok_or_else(|| format!("campaign activity {activity_id} has not been sent"))?;
    let mut checked = Vec::with_capacity(events.len());
    for (n, event) in events.iter().enumerate() {
        let fail = |why: String| format!("events[{n}]: {why}");
        let contact = account
            .contacts
            .find(&event.contact_id)
            .filter(|&c| tracking.was_sent(c))
            .ok_or_else(|| {
                fail(format!(
                    "contact {} is not a recipient of this activity",
                    event.contact_id
                ))
            })?;
        let at = event.time.map_or(now, |t| t.timestamp_millis());
        let first_send = tracking
            .sends
            .iter()
            .find(|s| s.contact == contact)
            .map_or(0, |s| s.at);
        if at < first_send {
            return Err(fail("time is before the activity was sent".into()));
        }
        let kind = event.kind;
        let bounced = tracking
            .events(TrackingKind::Bounce)
            .iter()
            .any(|e| e.contact == contact);
        if bounced
            && matches!(
                kind,
                TrackingKind::Open | TrackingKind::Click | TrackingKind::Forward
            )
        {
            return Err(fail(format!(
                "contact {} bounced and cannot {}",
                event.contact_id,
                kind.as_str()
            )));
        }
        let device = match event.device_type.as_deref() {
            None => 0,
            Some(d) => DEVICES
                .iter()
                .position(|x| *x == d)
                .ok_or_else(|| fail(format!("device_type {d} is not one of {DEVICES:?}")))?
                as u8,
        };
        let (link, detail) = match kind {
            TrackingKind::Open => (0, device),
            TrackingKind::Click => {
                let link = match (&event.url_id, &event.link_url) {
                    (Some(id), _) => tracking
                        .links
                        .iter()
                        .position(|l| l.url_id.to_string() == *id)
                        .ok_or_else(|| fail(format!("url_id {id} is not a link of it")))?,
                    (None, Some(url)) => tracking
                        .links
                        .iter()
                        .position(|l| l.url == *url)
                        .ok_or_else(|| fail(format!("link_url {url} is not a link of it")))?,
                    (None, None) => 0,
                };
                (link as u16, device)
            }
            TrackingKind::Bounce => {
                let code = event.bounce_code.as_deref().unwrap_or("B");
                let index = BOUNCE_CODES
                    .iter()
                    .position(|c| code.len() == 1 && code.starts_with(*c))
                    .ok_or_else(|| {
                        fail(format!("bounce_code {code} is not one of {BOUNCE_CODES:?}"))
                    })?;
                (0, index as u8)
            }
            TrackingKind::Optout => {
                let reason = event.opt_out_reason.as_deref().unwrap_or("");
                let index = OPT_OUT_REASONS
                    .iter()
                    .position(|r| *r == reason)
                    .ok_or_else(|| {
                        fail(format!("opt_out_reason must be one of {OPT_OUT_REASONS:?}"))
                    })?;
                (0, index as u8)
            }
            TrackingKind::Forward | TrackingKind::Abuse => (0, 0),
        };
        checked.push((kind, contact, at, link, detail));
    }
    let tracking = account.reports.by_activity.entry(index).or_default();
    for (kind, contact, at, link, detail) in checked {
        tracking.push(kind, contact, at, link, detail);
    }
    Ok(events.len())
}
