//! Email campaigns (reference §8): a campaign owns a `primary_email` and a `permalink`
//! activity; content, recipients and schedules live on the primary activity. Campaign status
//! is Title-case, activity status UPPER-case. Sends progress on the sandbox clock:
//! SCHEDULED → EXECUTING at the scheduled time → DONE `SEND_DURATION_MS` later.

pub(crate) mod handlers;
pub(crate) mod schedule;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::clock::{Millis, fmt_millis};
use super::state::Cx;

/// How long an executing send takes on the sandbox clock.
pub(crate) const SEND_DURATION_MS: Millis = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Status {
    Draft,
    Scheduled,
    Executing,
    Done,
    Error,
    Removed,
}

impl Status {
    /// Campaign casing (`GET /emails`).
    pub(crate) fn campaign_str(self) -> &'static str {
        match self {
            Status::Draft => "Draft",
            Status::Scheduled => "Scheduled",
            Status::Executing => "Executing",
            Status::Done => "Done",
            Status::Error => "Error",
            Status::Removed => "Removed",
        }
    }

    /// Activity casing (`GET /emails/activities/{id}`).
    pub(crate) fn activity_str(self) -> &'static str {
        match self {
            Status::Draft => "DRAFT",
            Status::Scheduled => "SCHEDULED",
            Status::Executing => "EXECUTING",
            Status::Done => "DONE",
            Status::Error => "ERROR",
            Status::Removed => "REMOVED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Role {
    PrimaryEmail,
    Permalink,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::PrimaryEmail => "primary_email",
            Role::Permalink => "permalink",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Campaign {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) type_code: u16,
    pub(crate) created_at: Millis,
    pub(crate) updated_at: Millis,
    pub(crate) primary: u32,
    pub(crate) permalink: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CampaignActivity {
    pub(crate) id: Uuid,
    pub(crate) campaign: u32,
    pub(crate) role: Role,
    pub(crate) status: Status,
    pub(crate) prev_status: Option<Status>,
    pub(crate) format_type: u8,
    pub(crate) from_name: String,
    pub(crate) from_email: String,
    pub(crate) reply_to_email: String,
    pub(crate) subject: String,
    pub(crate) preheader: Option<String>,
    pub(crate) html_content: Option<String>,
    pub(crate) physical_address: Option<Value>,
    pub(crate) document_properties: Option<Value>,
    pub(crate) permalink_url: String,
    pub(crate) contact_list_ids: Vec<Uuid>,
    pub(crate) segment_ids: Vec<i64>,
    pub(crate) scheduled_at: Option<Millis>,
    pub(crate) executing_since: Option<Millis>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Campaigns {
    pub(crate) campaigns: Vec<Campaign>,
    pub(crate) activities: Vec<CampaignActivity>,
    /// (sandbox UTC day, test recipients sent that day).
    pub(crate) tests_today: (i64, u32),
    #[serde(skip)]
    by_id: HashMap<Uuid, u32>,
    #[serde(skip)]
    activity_by_id: HashMap<Uuid, u32>,
}

/// Fields of a new campaign's primary activity.
pub(crate) struct NewActivity {
    pub(crate) from_name: String,
    pub(crate) from_email: String,
    pub(crate) reply_to_email: String,
    pub(crate) subject: String,
    pub(crate) preheader: Option<String>,
    pub(crate) html_content: String,
    pub(crate) physical_address: Option<Value>,
}

impl Campaigns {
    pub(crate) fn rebuild_indexes(&mut self) {
        self.by_id = self
            .campaigns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i as u32))
            .collect();
        self.activity_by_id = self
            .activities
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id, i as u32))
            .collect();
    }

    pub(crate) fn find(&self, id: &Uuid) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn find_activity(&self, id: &Uuid) -> Option<u32> {
        self.activity_by_id.get(id).copied()
    }

    pub(crate) fn status_of(&self, campaign: &Campaign) -> Status {
        self.activities[campaign.primary as usize].status
    }

    /// True when a live campaign other than `except` has this name (case-insensitive).
    pub(crate) fn name_taken(&self, name: &str, except: Option<u32>) -> bool {
        let name = name.trim().to_lowercase();
        self.campaigns.iter().enumerate().any(|(i, c)| {
            Some(i as u32) != except
                && self.status_of(c) != Status::Removed
                && c.name.to_lowercase() == name
        })
    }

    /// Creates a campaign with its primary_email and permalink activities.
    pub(crate) fn create(
        &mut self,
        ids: [Uuid; 3],
        name: String,
        activity: NewActivity,
        now: Millis,
    ) -> u32 {
        let index = self.campaigns.len() as u32;
        let [campaign_id, primary_id, permalink_id] = ids;
        let permalink_url =
            format!("https://myemail.constantcontact.com/sandbox.html?soid={primary_id}");
        let primary = CampaignActivity {
            id: primary_id,
            campaign: index,
            role: Role::PrimaryEmail,
            status: Status::Draft,
            prev_status: None,
            format_type: 5,
            from_name: activity.from_name,
            from_email: activity.from_email,
            reply_to_email: activity.reply_to_email,
            subject: activity.subject,
            preheader: activity.preheader,
            html_content: Some(activity.html_content),
            physical_address: activity.physical_address,
            document_properties: None,
            permalink_url: permalink_url.clone(),
            contact_list_ids: Vec::new(),
            segment_ids: Vec::new(),
            scheduled_at: None,
            executing_since: None,
        };
        let permalink = CampaignActivity {
            id: permalink_id,
            role: Role::Permalink,
            html_content: None,
            physical_address: None,
            preheader: None,
            ..primary.clone()
        };
        let primary_index = self.activities.len() as u32;
        self.activity_by_id.insert(primary_id, primary_index);
        self.activities.push(primary);
        self.activity_by_id.insert(permalink_id, primary_index + 1);
        self.activities.push(permalink);
        self.by_id.insert(campaign_id, index);
        self.campaigns.push(Campaign {
            id: campaign_id,
            name,
            type_code: 26,
            created_at: now,
            updated_at: now,
            primary: primary_index,
            permalink: primary_index + 1,
        });
        index
    }

    /// Moves scheduled and executing sends along; returns when something is next due and the
    /// sends that completed (activity index, time the send started).
    pub(crate) fn progress(
        &mut self,
        account_id: &str,
        cx: &mut Cx<'_>,
        force: bool,
    ) -> (Option<Millis>, Vec<(u32, Millis)>) {
        let mut next: Option<Millis> = None;
        let mut sent = Vec::new();
        for (index, activity) in self.activities.iter_mut().enumerate() {
            if activity.status == Status::Scheduled
                && let Some(at) = activity.scheduled_at
            {
                if at <= cx.now {
                    activity.status = Status::Executing;
                    activity.executing_since = Some(at);
                    self.campaigns[activity.campaign as usize].updated_at = cx.now;
                } else {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
            if activity.status == Status::Executing {
                let done_at = activity.executing_since.unwrap_or(cx.now) + SEND_DURATION_MS;
                if force || done_at <= cx.now {
                    sent.push((index as u32, activity.executing_since.unwrap_or(cx.now)));
                    activity.status = Status::Done;
                    activity.scheduled_at = None;
                    activity.executing_since = None;
                    activity.prev_status = None;
                    self.campaigns[activity.campaign as usize].updated_at = cx.now;
                    cx.effect(account_id, "campaign_activity.sent", activity.id);
                } else {
                    next = Some(next.map_or(done_at, |n| n.min(done_at)));
                }
            }
        }
        (next, sent)
    }
}

/// `{campaign_id, name, current_status, type, type_code, created_at, updated_at}` (+ activities).
pub(crate) fn campaign_json(
    campaigns: &Campaigns,
    campaign: &Campaign,
    with_activities: bool,
) -> Value {
    let mut body = json!({
        "campaign_id": campaign.id,
        "name": campaign.name,
        "current_status": campaigns.status_of(campaign).campaign_str(),
        "type": "CUSTOM_CODE_EMAIL",
        "type_code": campaign.type_code,
        "created_at": fmt_millis(campaign.created_at),
        "updated_at": fmt_millis(campaign.updated_at),
    });
    if with_activities {
        body["campaign_activities"] = [campaign.primary, campaign.permalink]
            .iter()
            .map(|&i| {
                let a = &campaigns.activities[i as usize];
                json!({"campaign_activity_id": a.id, "role": a.role.as_str()})
            })
            .collect::<Vec<_>>()
            .into();
    }
    body
}

/// The activity JSON; subresources only when included (reference §8.4).
pub(crate) fn activity_json(
    campaigns: &Campaigns,
    a: &CampaignActivity,
    include: &[String],
) -> Value {
    let has = |name: &str| include.iter().any(|i| i == name);
    let mut body = json!({
        "campaign_activity_id": a.id,
        "campaign_id": campaigns.campaigns[a.campaign as usize].id,
        "role": a.role.as_str(),
        "contact_list_ids": a.contact_list_ids,
        "segment_ids": a.segment_ids,
        "current_status": a.status.activity_str(),
        "format_type": a.format_type,
        "from_email": a.from_email,
        "from_name": a.from_name,
        "reply_to_email": a.reply_to_email,
        "subject": a.subject,
    });
    if let Some(preheader) = &a.preheader {
        body["preheader"] = preheader.as_str().into();
    }
    if has("html_content")
        && let Some(html) = &a.html_content
    {
        body["html_content"] = html.as_str().into();
    }
    if has("permalink_url") {
        body["permalink_url"] = a.permalink_url.as_str().into();
    }
    if has("physical_address_in_footer")
        && let Some(address) = &a.physical_address
    {
        body["physical_address_in_footer"] = address.clone();
    }
    if has("document_properties")
        && let Some(props) = &a.document_properties
    {
        body["document_properties"] = props.clone();
    }
    body
}
