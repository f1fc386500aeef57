//! JSON of the reporting answers: tracking rows (the contact's id, e-mail and names as they
//! are now, `deleted_at` when deleted), activity and campaign stats, and percentages.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{BOUNCE_CODES, DEVICES, Event, OPT_OUT_REASONS, Stats, Tracking};
use crate::clock::{Millis, fmt_date, fmt_secs};
use crate::contacts::model::ContactStore;

/// The common part of every tracking row.
pub(crate) fn row(
    contacts: &ContactStore,
    activity: &Uuid,
    kind: &str,
    contact: u32,
    at: Millis,
) -> Map<String, Value> {
    let c = contacts.get(contact);
    let mut map = Map::new();
    map.insert("contact_id".into(), json!(c.id));
    map.insert("campaign_activity_id".into(), json!(activity));
    map.insert("tracking_activity_type".into(), kind.into());
    map.insert(
        "email_address".into(),
        c.email.as_deref().unwrap_or_default().into(),
    );
    if let Some(first) = &c.first_name {
        map.insert("first_name".into(), first.as_ref().into());
    }
    if let Some(last) = &c.last_name {
        map.insert("last_name".into(), last.as_ref().into());
    }
    map.insert("created_time".into(), fmt_secs(at).into());
    if c.deleted_at != 0 {
        map.insert("deleted_at".into(), fmt_date(c.deleted_at * 1000).into());
    }
    map
}

pub(crate) fn open_row(contacts: &ContactStore, activity: &Uuid, e: &Event) -> Value {
    let mut map = row(contacts, activity, "em_opens", e.contact, e.at);
    map.insert("device_type".into(), device(e.detail).into());
    Value::Object(map)
}

pub(crate) fn click_row(
    contacts: &ContactStore,
    activity: &Uuid,
    tracking: &Tracking,
    e: &Event,
) -> Value {
    let mut map = row(contacts, activity, "em_clicks", e.contact, e.at);
    map.insert("device_type".into(), device(e.detail).into());
    let link = tracking.links.get(usize::from(e.link));
    map.insert(
        "url_id".into(),
        link.map(|l| l.url_id.to_string())
            .unwrap_or_default()
            .into(),
    );
    map.insert(
        "link_url".into(),
        link.map(|l| l.url.clone()).unwrap_or_default().into(),
    );
    Value::Object(map)
}

pub(crate) fn bounce_row(contacts: &ContactStore, activity: &Uuid, e: &Event) -> Value {
    let mut map = row(contacts, activity, "em_bounces", e.contact, e.at);
    map.insert(
        "bounce_code".into(),
        bounce_code(e.detail).to_string().into(),
    );
    let current = map["email_address"].clone();
    map.insert("current_email_address".into(), current);
    Value::Object(map)
}

pub(crate) fn optout_row(contacts: &ContactStore, activity: &Uuid, e: &Event) -> Value {
    let mut map = row(contacts, activity, "em_optouts", e.contact, e.at);
    let reason = OPT_OUT_REASONS
        .get(usize::from(e.detail))
        .copied()
        .unwrap_or_default();
    if !reason.is_empty() {
        map.insert("opt_out_reason".into(), reason.into());
    }
    Value::Object(map)
}

pub(crate) fn plain_row(
    contacts: &ContactStore,
    activity: &Uuid,
    kind: &str,
    contact: u32,
    at: Millis,
) -> Value {
    Value::Object(row(contacts, activity, kind, contact, at))
}

pub(crate) fn device(index: u8) -> &'static str {
    DEVICES[usize::from(index).min(DEVICES.len() - 1)]
}

pub(crate) fn bounce_code(index: u8) -> char {
    BOUNCE_CODES[usize::from(index).min(BOUNCE_CODES.len() - 1)]
}

/// `part / whole` in percent, one decimal; 0 when `whole` is 0.
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

/// The `stats` object of `/reports/stats/email_campaigns/{ids}` (no abuse or bounce
/// breakdown: that schema has none).
pub(crate) fn campaign_stats(s: &Stats) -> Value {
    json!({
        "em_sends": s.sends,
        "em_opens": s.opens,
        "em_opens_all": s.opens_all,
        "em_opens_all_computer": s.opens_by_device[0],
        "em_opens_all_mobile": s.opens_by_device[1],
        "em_opens_all_tablet": s.opens_by_device[2],
        "em_opens_all_other": s.opens_by_device[3],
        "em_opens_all_none": 0,
        "em_clicks": s.clicks,
        "em_clicks_all": s.clicks_all,
        "em_clicks_all_computer": s.clicks_by_device[0],
        "em_clicks_all_mobile": s.clicks_by_device[1],
        "em_clicks_all_tablet": s.clicks_by_device[2],
        "em_clicks_all_other": s.clicks_by_device[3],
        "em_clicks_all_none": 0,
        "em_forwards": s.forwards,
        "em_optouts": s.optouts,
        "em_bounces": s.bounces,
        "em_not_opened": s.not_opened(),
    })
}

/// The `stats` object of `/reports/stats/email_campaign_activities/{ids}`.
pub(crate) fn activity_stats(s: &Stats) -> Value {
    let mut stats = campaign_stats(s);
    let b = &s.bounces_by_code;
    let extra = json!({
        "em_abuse": s.abuse,
        "em_bounces_nonexistent_address": b[0],
        "em_bounces_undeliverable": b[1],
        "em_bounces_mailbox_full": b[2],
        "em_bounces_suspended": b[3],
        "em_bounces_vacation": b[4],
        "em_bounces_other": b[5],
        "em_bounces_blocked": b[6],
    });
    if let (Some(map), Value::Object(more)) = (stats.as_object_mut(), extra) {
        map.extend(more);
    }
    stats
}

/// The `percents` object of `/reports/stats/email_campaigns/{ids}`.
pub(crate) fn campaign_percents(s: &Stats) -> Value {
    let delivered = s.delivered();
    json!({
        "bounce": percent(s.bounces, s.sends),
        "open": percent(s.opens, delivered),
        "click": percent(s.clicks, s.opens),
        "did_not_open": percent(s.not_opened(), delivered),
        "unsubscribe": percent(s.optouts, delivered),
        "desktop_open": percent(s.opens_by_device[0], s.opens_all),
        "mobile_open": percent(s.opens_by_device[1] + s.opens_by_device[2], s.opens_all),
        "desktop_click": percent(s.clicks_by_device[0], s.clicks_all),
        "mobile_click": percent(s.clicks_by_device[1] + s.clicks_by_device[2], s.clicks_all),
    })
}

/// `unique_counts` of an email campaign summary.
pub(crate) fn unique_counts(s: &Stats) -> Value {
    json!({
        "sends": s.sends,
        "opens": s.opens,
        "clicks": s.clicks,
        "forwards": s.forwards,
        "optouts": s.optouts,
        "abuse": s.abuse,
        "bounces": s.bounces,
        "not_opened": s.not_opened(),
    })
}

/// `aggregate_percents` over the campaigns of a summary page.
pub(crate) fn aggregate_percents(all: &[Stats]) -> Value {
    let sum = |f: fn(&Stats) -> u64| all.iter().map(f).sum::<u64>();
    let sends = sum(|s| s.sends);
    let bounces = sum(|s| s.bounces);
    let delivered = sends.saturating_sub(bounces);
    let opens = sum(|s| s.opens);
    json!({
        "open": percent(opens, delivered),
        "click": percent(sum(|s| s.clicks), opens),
        "did_not_open": percent(sum(|s| s.not_opened()), delivered),
        "bounce": percent(bounces, sends),
        "unsubscribe": percent(sum(|s| s.optouts), delivered),
    })
}
