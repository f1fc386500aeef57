//! E-mail campaign reports (`/reports/...`, scope `campaign_data`; the official spec's "Email
//! Reporting" operations): the paged campaign summaries, the stats of campaigns and of campaign
//! activities (looked up by lists of ids), the per-contact tracking reports of one activity and
//! its link report.
//!
//! Counts decode leniently: a count the answer leaves out, sends as null or as a string reads
//! 0 (campaign stats have no `em_abuse` nor bounce breakdown; activity stats do). Errors of the
//! stats operations are single `StatsError` objects with `reportingsvc.*` keys
//! (shared/reference/constant-contact-v3.md §3.1).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::api::error::ApiErrorBody;
use crate::api::model::enums::string_enum;
use crate::api::model::{paging, time};

/// Most activity ids `GET /reports/stats/email_campaign_activities/{ids}` takes (spec).
pub const MAX_STATS_ACTIVITY_IDS: usize = 10;
/// Most campaign ids `GET /reports/stats/email_campaigns/{ids}` takes (spec).
pub const MAX_STATS_CAMPAIGN_IDS: usize = 150;
/// The largest (and default) page of a tracking report (spec).
pub const MAX_TRACKING_LIMIT: u32 = 500;
/// The largest page of the campaign summaries (spec; the default is 50).
pub const MAX_SUMMARY_LIMIT: u32 = 500;

/// `deserialize_with` for counts: a number (an integer, or a float rounded down), a string of
/// digits, or 0 for null and anything else.
fn count<'de, D>(deserializer: D) -> Result<i64, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    })
}

/// `deserialize_with` for percentages: a number, or `None`.
fn percent<'de, D>(deserializer: D) -> Result<Option<f64>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// `deserialize_with` for ids the spec types as strings but that may come as numbers
/// (`url_id`).
fn text_id<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Declares a struct of lenient counts, each with its JSON name.
macro_rules! counts {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident = $json:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(rename = $json, default, deserialize_with = "count")]
                pub $field: i64,
            )+
        }
    };
}

counts! {
    /// The `stats` of a campaign or a campaign activity. `*_all` count every open or click,
    /// the others each contact once.
    pub struct EmailStats {
        sends = "em_sends",
        /// Unique opens.
        opens = "em_opens",
        opens_all = "em_opens_all",
        opens_all_computer = "em_opens_all_computer",
        opens_all_mobile = "em_opens_all_mobile",
        opens_all_tablet = "em_opens_all_tablet",
        opens_all_other = "em_opens_all_other",
        opens_all_none = "em_opens_all_none",
        /// Unique clicks.
        clicks = "em_clicks",
        clicks_all = "em_clicks_all",
        clicks_all_computer = "em_clicks_all_computer",
        clicks_all_mobile = "em_clicks_all_mobile",
        clicks_all_tablet = "em_clicks_all_tablet",
        clicks_all_other = "em_clicks_all_other",
        clicks_all_none = "em_clicks_all_none",
        forwards = "em_forwards",
        optouts = "em_optouts",
        /// Spam reports (activity stats only).
        abuse = "em_abuse",
        bounces = "em_bounces",
        /// Delivered but not opened.
        not_opened = "em_not_opened",
        /// Bounce breakdown (activity stats only).
        bounces_nonexistent_address = "em_bounces_nonexistent_address",
        bounces_undeliverable = "em_bounces_undeliverable",
        bounces_mailbox_full = "em_bounces_mailbox_full",
        bounces_suspended = "em_bounces_suspended",
        bounces_vacation = "em_bounces_vacation",
        bounces_other = "em_bounces_other",
        bounces_blocked = "em_bounces_blocked",
    }
}

counts! {
    /// `unique_counts` of a campaign summary.
    pub struct UniqueCounts {
        sends = "sends",
        opens = "opens",
        clicks = "clicks",
        forwards = "forwards",
        optouts = "optouts",
        abuse = "abuse",
        bounces = "bounces",
        not_opened = "not_opened",
    }
}

/// Percentages (0–100) the API computes; any of them may be missing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct StatsPercents {
    #[serde(default, deserialize_with = "percent")]
    pub open: Option<f64>,
    #[serde(default, deserialize_with = "percent")]
    pub click: Option<f64>,
    #[serde(default, deserialize_with = "percent")]
    pub did_not_open: Option<f64>,
    #[serde(default, deserialize_with = "percent")]
    pub bounce: Option<f64>,
    #[serde(default, deserialize_with = "percent")]
    pub unsubscribe: Option<f64>,
    #[serde(default, deserialize_with = "percent")]
    pub desktop_open: Option<f64>,
    #[serde(default, deserialize_with = "percent")]
    pub mobile_open: Option<f64>,
    #[serde(default, deserialize_with = "percent")]
    pub desktop_click: Option<f64>,
    #[serde(default, deserialize_with = "percent")]
    pub mobile_click: Option<f64>,
}

/// One campaign of `GET /reports/summary_reports/email_campaign_summaries`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CampaignSummary {
    #[serde(default)]
    pub campaign_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_type: Option<String>,
    #[serde(default, deserialize_with = "time::lenient")]
    pub last_sent_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub unique_counts: UniqueCounts,
}

/// One page of campaign summaries, most recently sent first.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CampaignSummariesPage {
    #[serde(default)]
    pub bulk_email_campaign_summaries: Vec<CampaignSummary>,
    /// Over the campaigns of this page.
    #[serde(default)]
    pub aggregate_percents: StatsPercents,
    #[serde(rename = "_links", default, deserialize_with = "paging::next_href")]
    pub next: Option<String>,
}

/// The stats of one campaign activity.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ActivityStats {
    #[serde(default)]
    pub campaign_activity_id: String,
    #[serde(default)]
    pub campaign_id: String,
    #[serde(default, deserialize_with = "time::lenient")]
    pub last_refresh_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub stats: EmailStats,
}

/// The stats of one campaign (its activities together).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CampaignStats {
    #[serde(default)]
    pub campaign_id: String,
    #[serde(default, deserialize_with = "time::lenient")]
    pub last_refresh_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub stats: EmailStats,
    #[serde(default)]
    pub percents: StatsPercents,
}

/// The answer of a stats operation: the ids that have stats, and an entry in `errors` for
/// each that has none (unknown, deleted or never sent). The client merges the answers of
/// several requests when more ids are asked for than one request takes; `missing` then names
/// the ids asked for that no result covers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StatsReport<T> {
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    #[serde(default)]
    pub errors: Vec<ApiErrorBody>,
    /// Filled by the client, never by the API.
    #[serde(skip)]
    pub missing: Vec<String>,
}

impl<T> Default for StatsReport<T> {
    fn default() -> Self {
        Self {
            results: Vec::new(),
            errors: Vec::new(),
            missing: Vec::new(),
        }
    }
}

/// Stats of campaign activities.
pub type ActivityStatsReport = StatsReport<ActivityStats>;
/// Stats of campaigns.
pub type CampaignStatsReport = StatsReport<CampaignStats>;

/// The per-contact tracking reports of one campaign activity
/// (`/reports/email_reports/{campaign_activity_id}/tracking/{report}`), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackingReport {
    /// One row per recipient.
    Sends,
    /// Every open.
    Opens,
    /// Each contact's latest open.
    UniqueOpens,
    /// Recipients who did not open (one row each, dated at the send).
    DidNotOpens,
    /// Every click, with its link.
    Clicks,
    Forwards,
    /// Unsubscribes, with the reason when given.
    Optouts,
    /// Bounces, with their code.
    Bounces,
}

impl TrackingReport {
    /// Every tracking report the spec lists.
    pub const ALL: [TrackingReport; 8] = [
        TrackingReport::Sends,
        TrackingReport::Opens,
        TrackingReport::UniqueOpens,
        TrackingReport::DidNotOpens,
        TrackingReport::Clicks,
        TrackingReport::Forwards,
        TrackingReport::Optouts,
        TrackingReport::Bounces,
    ];

    /// The last path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackingReport::Sends => "sends",
            TrackingReport::Opens => "opens",
            TrackingReport::UniqueOpens => "unique_opens",
            TrackingReport::DidNotOpens => "didnotopens",
            TrackingReport::Clicks => "clicks",
            TrackingReport::Forwards => "forwards",
            TrackingReport::Optouts => "optouts",
            TrackingReport::Bounces => "bounces",
        }
    }

    /// Reads a path segment.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The route template, for logs and errors.
    pub fn route(self) -> &'static str {
        match self {
            TrackingReport::Sends => {
                "GET /reports/email_reports/{campaign_activity_id}/tracking/sends"
            }
            TrackingReport::Opens => {
                "GET /reports/email_reports/{campaign_activity_id}/tracking/opens"
            }
            TrackingReport::UniqueOpens => {
                "GET /reports/email_reports/{campaign_activity_id}/tracking/unique_opens"
            }
            TrackingReport::DidNotOpens => {
                "GET /reports/email_reports/{campaign_activity_id}/tracking/didnotopens"
            }
            TrackingReport::Clicks => {
                "GET /reports/email_reports/{campaign_activity_id}/tracking/clicks"
            }
            TrackingReport::Forwards => {
                "GET /reports/email_reports/{campaign_activity_id}/tracking/forwards"
            }
            TrackingReport::Optouts => {
                "GET /reports/email_reports/{campaign_activity_id}/tracking/optouts"
            }
            TrackingReport::Bounces => {
                "GET /reports/email_reports/{campaign_activity_id}/tracking/bounces"
            }
        }
    }

    /// The route template of a following page.
    pub fn next_route(self) -> &'static str {
        match self {
            TrackingReport::Sends => "GET /reports/email_reports/{id}/tracking/sends (next page)",
            TrackingReport::Opens => "GET /reports/email_reports/{id}/tracking/opens (next page)",
            TrackingReport::UniqueOpens => {
                "GET /reports/email_reports/{id}/tracking/unique_opens (next page)"
            }
            TrackingReport::DidNotOpens => {
                "GET /reports/email_reports/{id}/tracking/didnotopens (next page)"
            }
            TrackingReport::Clicks => "GET /reports/email_reports/{id}/tracking/clicks (next page)",
            TrackingReport::Forwards => {
                "GET /reports/email_reports/{id}/tracking/forwards (next page)"
            }
            TrackingReport::Optouts => {
                "GET /reports/email_reports/{id}/tracking/optouts (next page)"
            }
            TrackingReport::Bounces => {
                "GET /reports/email_reports/{id}/tracking/bounces (next page)"
            }
        }
    }
}

impl std::fmt::Display for TrackingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

string_enum! {
    /// A tracking row's `tracking_activity_type` (unique opens are `em_opens` rows).
    pub enum TrackingActivityType {
        Sends = "em_sends",
        Opens = "em_opens",
        DidNotOpens = "em_didnotopens",
        Clicks = "em_clicks",
        Forwards = "em_forwards",
        Optouts = "em_optouts",
        Bounces = "em_bounces",
    }
}

/// One row of a tracking report. The contact's e-mail address and names are as they are now
/// (personal data: never logged above debug). Fields a report does not carry are `None`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TrackingActivity {
    #[serde(default)]
    pub contact_id: String,
    #[serde(default)]
    pub campaign_activity_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_activity_type: Option<TrackingActivityType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// When it happened (for sends and did-not-opens: when it was sent).
    #[serde(default, deserialize_with = "time::lenient")]
    pub created_time: Option<DateTime<Utc>>,
    /// Set when the contact has been deleted since.
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Opens and clicks: `computer`, `mobile`, `tablet`, `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// Clicks: the link's id and URL.
    #[serde(
        default,
        deserialize_with = "text_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub url_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_url: Option<String>,
    /// Bounces: `B`, `D`, `F`, `S`, `V`, `X` or `Z`, and the address now on file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_email_address: Option<String>,
    /// Opt-outs: the reason, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_reason: Option<String>,
}

/// One page of a tracking report.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TrackingPage {
    #[serde(default)]
    pub tracking_activities: Vec<TrackingActivity>,
    #[serde(rename = "_links", default, deserialize_with = "paging::next_href")]
    pub next: Option<String>,
}

/// One link of `GET /reports/email_reports/{campaign_activity_id}/links`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct LinkClickCount {
    #[serde(default, deserialize_with = "text_id")]
    pub url_id: Option<String>,
    #[serde(default)]
    pub link_url: String,
    /// Contacts who clicked it (each once).
    #[serde(default, deserialize_with = "count")]
    pub unique_clicks: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_tag: Option<String>,
    /// A link that adds the clicker to a list: `add`/`remove` and the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_id: Option<String>,
}

/// The link report of one campaign activity (not paged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct LinkReport {
    #[serde(default)]
    pub campaign_activity_id: String,
    #[serde(default)]
    pub link_click_counts: Vec<LinkClickCount>,
}

#[cfg(test)]
#[path = "reports_tests.rs"]
mod tests;
