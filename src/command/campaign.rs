//! Campaign commands: `campaign.create`, `campaign.update`, `campaign.get`, `campaign.list`,
//! `campaign.schedule`, `campaign.unschedule`, `campaign.send_test`; and `report.campaign.get`,
//! which takes the same data as `campaign.get`.
//!
//! Limits follow shared/reference/constant-contact-v3.md §8: name ≤ 80 (unique), from_name
//! ≤ 100, addresses ≤ 80, html_content ≤ 150,000 characters, ≤ 5 test recipients.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::check::{self, Checker};
use super::rejection::Rejection;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PhysicalAddress {
    pub address_line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    pub country_code: String,
    pub organization_name: String,
}

/// The content and recipients of a campaign's primary e-mail. All `None` = keep (update).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignFields {
    pub name: Option<String>,
    pub subject: Option<String>,
    pub from_name: Option<String>,
    pub from_email: Option<String>,
    pub reply_to_email: Option<String>,
    pub preheader: Option<String>,
    pub html_content: Option<String>,
    pub physical_address: Option<PhysicalAddress>,
    pub list_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignData {
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    from_name: Option<String>,
    #[serde(default)]
    from_email: Option<String>,
    #[serde(default)]
    reply_to_email: Option<String>,
    #[serde(default)]
    preheader: Option<String>,
    #[serde(default)]
    html_content: Option<String>,
    #[serde(default)]
    physical_address: Option<PhysicalAddress>,
    #[serde(default)]
    list_ids: Option<Vec<String>>,
}

/// Checks `campaign.create` (everything but preheader, address and lists required) or
/// `campaign.update` (campaign_id required, the rest optional).
pub fn parse_fields(
    update: bool,
    data: Map<String, Value>,
) -> Result<(Option<String>, CampaignFields), Rejection> {
    let raw: CampaignData = check::data(data)?;
    let mut c = Checker::new();
    match (&raw.campaign_id, update) {
        (Some(id), true) => {
            c.uuid("data.campaign_id", id);
        }
        (None, true) => c.fail("data.campaign_id", "is required"),
        (Some(_), false) => c.fail(
            "data.campaign_id",
            "is assigned by Constant Contact; leave it out",
        ),
        (None, false) => {}
    }
    let required = !update;
    let text = |c: &mut Checker, field: &str, value: &Option<String>, max: usize| match value {
        Some(v) => {
            c.required_text(&format!("data.{field}"), v, max);
        }
        None if required => c.fail(format!("data.{field}"), "is required"),
        None => {}
    };
    text(&mut c, "name", &raw.name, 80);
    text(&mut c, "subject", &raw.subject, 200);
    text(&mut c, "from_name", &raw.from_name, 100);
    for (field, value) in [
        ("from_email", &raw.from_email),
        ("reply_to_email", &raw.reply_to_email),
    ] {
        match value {
            Some(v) => {
                c.email(&format!("data.{field}"), v, 80);
            }
            None if required => c.fail(
                format!("data.{field}"),
                "is required (a confirmed account e-mail)",
            ),
            None => {}
        }
    }
    if let Some(preheader) = &raw.preheader {
        c.text("data.preheader", preheader, 250);
    }
    match &raw.html_content {
        Some(html) if html.trim().is_empty() => c.fail("data.html_content", "must not be empty"),
        Some(html) => {
            c.long_text("data.html_content", html, 150_000);
        }
        None if required => c.fail("data.html_content", "is required"),
        None => {}
    }
    if let Some(address) = &raw.physical_address {
        c.required_text(
            "data.physical_address.address_line1",
            &address.address_line1,
            80,
        );
        c.required_text(
            "data.physical_address.organization_name",
            &address.organization_name,
            100,
        );
        if address.country_code.len() != 2
            || !address
                .country_code
                .chars()
                .all(|ch| ch.is_ascii_uppercase())
        {
            c.fail(
                "data.physical_address.country_code",
                "must be a 2-letter code such as US",
            );
        }
        if address.country_code == "US" && address.state_code.is_none() {
            c.fail(
                "data.physical_address.state_code",
                "is required for US addresses",
            );
        }
    }
    if let Some(lists) = &raw.list_ids {
        c.uuids("data.list_ids", lists, 1, 50);
    }
    if update
        && [
            &raw.name,
            &raw.subject,
            &raw.from_name,
            &raw.from_email,
            &raw.reply_to_email,
            &raw.preheader,
            &raw.html_content,
        ]
        .iter()
        .all(|v| v.is_none())
        && raw.physical_address.is_none()
        && raw.list_ids.is_none()
    {
        c.fail(
            "data",
            "nothing to change: give at least one field besides campaign_id",
        );
    }
    c.finish((
        raw.campaign_id,
        CampaignFields {
            name: raw.name,
            subject: raw.subject,
            from_name: raw.from_name,
            from_email: raw.from_email,
            reply_to_email: raw.reply_to_email,
            preheader: raw.preheader,
            html_content: raw.html_content,
            physical_address: raw.physical_address,
            list_ids: raw.list_ids,
        },
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdData {
    #[serde(default)]
    campaign_id: Option<String>,
}

/// `campaign.get` / `campaign.unschedule` / `report.campaign.get`.
pub fn parse_id(data: Map<String, Value>) -> Result<String, Rejection> {
    let raw: IdData = check::data(data)?;
    let mut c = Checker::new();
    let id = raw.campaign_id.unwrap_or_default();
    c.required_uuid("data.campaign_id", &id);
    c.finish(id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListData {
    #[serde(default)]
    limit: Option<u32>,
}

/// `campaign.list`: how many campaigns at most (1–500, default 50).
pub fn parse_list(data: Map<String, Value>) -> Result<u32, Rejection> {
    let raw: ListData = check::data(data)?;
    let mut c = Checker::new();
    let limit = raw.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        c.fail("data.limit", "must be 1 to 500");
    }
    c.finish(limit)
}

/// When a campaign is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Now,
    At(DateTime<Utc>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleData {
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    scheduled_at: Option<String>,
}

/// `campaign.schedule`: `scheduled_at` is an RFC 3339 time in the future, or `"now"`.
pub fn parse_schedule(
    data: Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<(String, When), Rejection> {
    let raw: ScheduleData = check::data(data)?;
    let mut c = Checker::new();
    let id = raw.campaign_id.unwrap_or_default();
    c.required_uuid("data.campaign_id", &id);
    let when = match raw.scheduled_at.as_deref() {
        None => {
            c.fail(
                "data.scheduled_at",
                "is required: an RFC 3339 time such as 2026-12-01T09:00:00Z, or \"now\"",
            );
            When::Now
        }
        Some("now") => When::Now,
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(at) => {
                let at = at.with_timezone(&Utc);
                c.future("data.scheduled_at", at, now);
                When::At(at)
            }
            Err(_) => {
                c.fail(
                    "data.scheduled_at",
                    "must be an RFC 3339 time such as 2026-12-01T09:00:00Z, or \"now\"",
                );
                When::Now
            }
        },
    };
    c.finish((id, when))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestData {
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    email_addresses: Option<Vec<String>>,
    #[serde(default)]
    personal_message: Option<String>,
}

/// `campaign.send_test`: 1–5 recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSend {
    pub campaign_id: String,
    pub email_addresses: Vec<String>,
    pub personal_message: Option<String>,
}

pub fn parse_test_send(data: Map<String, Value>) -> Result<TestSend, Rejection> {
    let raw: TestData = check::data(data)?;
    let mut c = Checker::new();
    let campaign_id = raw.campaign_id.unwrap_or_default();
    c.required_uuid("data.campaign_id", &campaign_id);
    let emails = raw.email_addresses.unwrap_or_default();
    if emails.is_empty() || emails.len() > 5 {
        c.fail(
            "data.email_addresses",
            format!("must hold 1 to 5 addresses (got {})", emails.len()),
        );
    }
    for (i, email) in emails.iter().enumerate().take(6) {
        c.email(&format!("data.email_addresses[{i}]"), email, 80);
    }
    if let Some(message) = &raw.personal_message {
        c.long_text("data.personal_message", message, 500);
    }
    c.finish(TestSend {
        campaign_id,
        email_addresses: emails,
        personal_message: raw.personal_message,
    })
}
