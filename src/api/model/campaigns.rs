//! E-mail campaigns and their activities (shared/reference/constant-contact-v3.md §8).
//!
//! A campaign (`/emails`) owns activities; content, recipients and schedules live on its
//! `primary_email` activity (`/emails/activities/{id}`). Campaign status is Title-case
//! (`Draft`), activity status upper-case (`DRAFT`): two enumerations. The activity PUT replaces
//! every top-level property, while `physical_address_in_footer`, `document_properties`,
//! `html_content` and `permalink_url` are kept when left out (§8.4); [`CampaignActivity::to_put`]
//! therefore copies the top level and sends those subresources only if the fetch included them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::model::enums::string_enum;
use crate::api::model::{paging, time};

string_enum! {
    /// A campaign's `current_status` (Title-case).
    pub enum CampaignStatus {
        Draft = "Draft",
        Scheduled = "Scheduled",
        Executing = "Executing",
        Done = "Done",
        Error = "Error",
        Removed = "Removed",
    }
}

string_enum! {
    /// A campaign activity's `current_status` (upper-case).
    pub enum CampaignActivityStatus {
        Draft = "DRAFT",
        Scheduled = "SCHEDULED",
        Executing = "EXECUTING",
        Done = "DONE",
        Error = "ERROR",
        Removed = "REMOVED",
    }
}

string_enum! {
    /// What a campaign activity is for.
    pub enum CampaignActivityRole {
        PrimaryEmail = "primary_email",
        Permalink = "permalink",
        Resend = "resend",
    }
}

string_enum! {
    /// Parts of a campaign activity returned only on request (`include=`).
    pub enum CampaignActivityInclude {
        PhysicalAddressInFooter = "physical_address_in_footer",
        PermalinkUrl = "permalink_url",
        HtmlContent = "html_content",
        DocumentProperties = "document_properties",
    }
}

impl CampaignActivityInclude {
    /// Everything, for a full read before a PUT.
    pub const ALL: [CampaignActivityInclude; 4] = [
        CampaignActivityInclude::PhysicalAddressInFooter,
        CampaignActivityInclude::PermalinkUrl,
        CampaignActivityInclude::HtmlContent,
        CampaignActivityInclude::DocumentProperties,
    ];

    /// The comma-separated value of the `include` parameter.
    pub fn join(includes: &[CampaignActivityInclude]) -> String {
        includes
            .iter()
            .map(Self::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// An e-mail campaign. The list endpoint leaves `campaign_activities` out.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EmailCampaign {
    pub campaign_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_status: Option<CampaignStatus>,
    /// e.g. `CUSTOM_CODE_EMAIL` (`type` in JSON).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub campaign_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_code: Option<i64>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campaign_activities: Vec<ActivityReference>,
}

impl EmailCampaign {
    /// The id of the `primary_email` activity, where content and recipients live.
    pub fn primary_email_activity_id(&self) -> Option<&str> {
        self.campaign_activities
            .iter()
            .find(|activity| activity.role == Some(CampaignActivityRole::PrimaryEmail))
            .map(|activity| activity.campaign_activity_id.as_str())
    }
}

/// A campaign's reference to one of its activities.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ActivityReference {
    pub campaign_activity_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<CampaignActivityRole>,
}

/// One page of `GET /emails` (which includes `Removed` campaigns).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CampaignsPage {
    #[serde(default)]
    pub campaigns: Vec<EmailCampaign>,
    #[serde(rename = "_links", default, deserialize_with = "paging::next_href")]
    pub next: Option<String>,
}

/// Filters of `GET /emails`; the dates filter on the campaign's `updated_at`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignQuery {
    /// 1–500; the API's default is 50.
    pub limit: Option<u32>,
    pub before_date: Option<DateTime<Utc>>,
    pub after_date: Option<DateTime<Utc>>,
}

impl CampaignQuery {
    /// The query parameters, in a stable order.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(before) = &self.before_date {
            pairs.push(("before_date", time::format(before)));
        }
        if let Some(after) = &self.after_date {
            pairs.push(("after_date", time::format(after)));
        }
        pairs
    }
}

/// The footer's physical address. `address_line1`, `country_code` and `organization_name` are
/// required when one is sent (and `state_code` for the US).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct PhysicalAddress {
    #[serde(default)]
    pub address_line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_optional: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default)]
    pub country_code: String,
    /// Read-only; never sent.
    #[serde(default, skip_serializing)]
    pub country_name: Option<String>,
    #[serde(default)]
    pub organization_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_code: Option<String>,
    /// Read-only; never sent.
    #[serde(default, skip_serializing)]
    pub state_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_non_us_name: Option<String>,
}

/// The one activity of a `POST /emails` body. The API creates only `format_type` 5 (custom code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignActivityCreate {
    pub format_type: i64,
    pub from_name: String,
    /// Must be a CONFIRMED account e-mail, as must `reply_to_email`.
    pub from_email: String,
    pub reply_to_email: String,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    /// Put `[[trackingImage]]` inside `<body>` or reporting will not work.
    pub html_content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_address_in_footer: Option<PhysicalAddress>,
}

impl CampaignActivityCreate {
    /// A custom-code activity (`format_type` 5).
    pub fn custom_code(
        from_name: &str,
        from_email: &str,
        reply_to_email: &str,
        subject: &str,
        html: &str,
    ) -> Self {
        Self {
            format_type: 5,
            from_name: from_name.to_owned(),
            from_email: from_email.to_owned(),
            reply_to_email: reply_to_email.to_owned(),
            subject: subject.to_owned(),
            preheader: None,
            html_content: html.to_owned(),
            physical_address_in_footer: None,
        }
    }
}

/// The body of `POST /emails`: a name unique in the account (≤ 80) and one activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignCreate {
    pub name: String,
    pub email_campaign_activities: Vec<CampaignActivityCreate>,
}

impl CampaignCreate {
    pub fn new(name: &str, activity: CampaignActivityCreate) -> Self {
        Self {
            name: name.to_owned(),
            email_campaign_activities: vec![activity],
        }
    }
}

#[cfg(test)]
#[path = "campaigns_tests.rs"]
mod tests;
