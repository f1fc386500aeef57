//! A campaign activity (`/emails/activities/{id}`), its PUT body, schedules and test sends
//! (shared/reference/constant-contact-v3.md §8.4, §8.5).
//!
//! `PUT` replaces the top-level properties (recipients, sender, subject, preheader); one left out
//! is overwritten. `html_content`, `physical_address_in_footer`, `document_properties` and
//! `permalink_url` are kept when left out, so [`CampaignActivity::to_put`] sends them only when the
//! fetch included them. The read-only `current_status`, `template_id` and `permalink_url` are
//! never sent; the ids and the role are, as the vendor's PUT examples do.

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::api::model::campaigns::{CampaignActivityRole, CampaignActivityStatus, PhysicalAddress};
use crate::api::model::time;

/// A campaign activity as `GET /emails/activities/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CampaignActivity {
    pub campaign_activity_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<CampaignActivityRole>,
    /// Recipient lists (mutually exclusive with `segment_ids`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_list_ids: Vec<String>,
    /// One integer segment id at most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segment_ids: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_status: Option<CampaignActivityStatus>,
    /// 1–5; 5 is custom code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_type: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permalink_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_address_in_footer: Option<PhysicalAddress>,
    /// Legacy formats (1–2) only; kept as the API sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_properties: Option<serde_json::Map<String, serde_json::Value>>,
}

impl CampaignActivity {
    /// A PUT body that changes nothing; apply changes to it, then PUT it.
    pub fn to_put(&self) -> CampaignActivityPut {
        CampaignActivityPut {
            campaign_activity_id: Some(self.campaign_activity_id.clone()),
            campaign_id: self.campaign_id.clone(),
            role: self.role.clone(),
            contact_list_ids: self.contact_list_ids.clone(),
            segment_ids: self.segment_ids.clone(),
            format_type: self.format_type,
            from_email: self.from_email.clone().unwrap_or_default(),
            from_name: self.from_name.clone().unwrap_or_default(),
            reply_to_email: self.reply_to_email.clone().unwrap_or_default(),
            subject: self.subject.clone().unwrap_or_default(),
            preheader: self.preheader.clone(),
            html_content: self.html_content.clone(),
            physical_address_in_footer: self.physical_address_in_footer.clone(),
            document_properties: self.document_properties.clone(),
        }
    }
}

/// The body of `PUT /emails/activities/{id}` (only `primary_email` activities in `DRAFT` or
/// `DONE`). `from_name`, `from_email`, `reply_to_email` and `subject` are required.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignActivityPut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_activity_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<CampaignActivityRole>,
    /// Left out when empty: leaving it out and sending `[]` both clear it, and leaving it out
    /// avoids mixing lists with segments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contact_list_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub segment_ids: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_type: Option<i64>,
    pub from_email: String,
    pub from_name: String,
    pub reply_to_email: String,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_address_in_footer: Option<PhysicalAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_properties: Option<serde_json::Map<String, serde_json::Value>>,
}

impl CampaignActivityPut {
    /// Sends the activity to these lists (and to no segment).
    pub fn set_lists(&mut self, list_ids: Vec<String>) {
        self.contact_list_ids = list_ids;
        self.segment_ids.clear();
    }
}

/// When to send: `Now` is the API's `"0"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleAt {
    Now,
    At(DateTime<Utc>),
}

impl Serialize for ScheduleAt {
    /// `{"scheduled_date": "0"}` or `{"scheduled_date": "<RFC 3339 UTC>"}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let date = match self {
            ScheduleAt::Now => "0".to_owned(),
            ScheduleAt::At(at) => time::format(at),
        };
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("scheduled_date", &date)?;
        map.end()
    }
}

/// One entry of an activity's schedule (`[]` when not scheduled or sent at once).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Schedule {
    #[serde(default, deserialize_with = "time::lenient")]
    pub scheduled_date: Option<DateTime<Utc>>,
}

/// The body of `POST /emails/activities/{id}/tests`: at most 5 addresses (the API's limit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TestSend {
    pub email_addresses: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal_message: Option<String>,
}
