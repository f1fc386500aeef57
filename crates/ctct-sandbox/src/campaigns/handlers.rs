//! `/emails` handlers (reference §8.1–8.4): list (cursor paging, `Removed` included,
//! `before_date`/`after_date` on `updated_at`), create (200, confirmed sender required),
//! read, rename, delete (not while Scheduled) and the campaign activity GET/PUT.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{NewActivity, Role, Status, activity_json, campaign_json};
use crate::clock::parse_instant;
use crate::errors::{ApiError, Area};
use crate::http::{
    Links, OffsetPage, QueryMap, json as json_response, no_content, parse_body, path_uuid,
};
use crate::state::{Account, Caller, Shared};

const ADDRESS_KEYS: [&str; 10] = [
    "address_line1",
    "address_line2",
    "address_line3",
    "address_optional",
    "city",
    "country_code",
    "organization_name",
    "postal_code",
    "state_code",
    "state_non_us_name",
];

const DOCUMENT_KEYS: [&str; 15] = [
    "style_content",
    "letter_format",
    "greeting_salutation",
    "greeting_name_type",
    "greeting_secondary",
    "subscribe_link_enabled",
    "subscribe_link_name",
    "text_content",
    "permission_reminder_enabled",
    "permission_reminder",
    "view_as_webpage_enabled",
    "view_as_webpage_text",
    "view_as_webpage_link_name",
    "forward_email_link_enabled",
    "forward_email_link_name",
];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::validation(Area::Campaigns, message)
}

/// Keeps the documented string properties of an object.
fn string_object(value: &Value, keys: &[&str], what: &str) -> Result<Value, ApiError> {
    let Some(object) = value.as_object() else {
        return Err(invalid(format!("{what} must be an object")));
    };
    let mut out = Map::new();
    for key in keys {
        match object.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                out.insert((*key).to_owned(), Value::String(s.clone()));
            }
            Some(_) => return Err(invalid(format!("{what}.{key} must be a string"))),
        }
    }
    Ok(Value::Object(out))
}

fn physical_address(value: &Value) -> Result<Value, ApiError> {
    let address = string_object(value, &ADDRESS_KEYS, "physical_address_in_footer")?;
    for key in ["address_line1", "country_code", "organization_name"] {
        if address
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid(format!(
                "physical_address_in_footer.{key} is required"
            )));
        }
    }
    if address["country_code"] == "US" && address.get("state_code").is_none() {
        return Err(invalid(
            "physical_address_in_footer.state_code is required for US addresses",
        ));
    }
    Ok(address)
}

fn required(value: Option<&str>, field: &str, max: usize) -> Result<String, ApiError> {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    match value {
        None => Err(invalid(format!("{field} is required"))),
        Some(v) if v.chars().count() > max => Err(invalid(format!(
            "{field} exceeds the maximum length of {max}"
        ))),
        Some(v) => Ok(v.to_owned()),
    }
}

fn confirmed_sender(account: &Account, field: &str, email: &str) -> Result<(), ApiError> {
    if account.info.is_confirmed(email) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} {email} is not a confirmed account email address"
        )))
    }
}

pub(crate) async fn get_emails(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let (page, effective) = OffsetPage::from_query(
        Area::Campaigns,
        &query,
        50,
        500,
        &["before_date", "after_date"],
    )?;
    let bound = |key: &str| {
        effective
            .get(key)
            .map(|v| {
                parse_instant(v)
                    .ok_or_else(|| invalid(format!("{key} must be an ISO-8601 date-time")))
            })
            .transpose()
    };
    let (before, after) = (bound("before_date")?, bound("after_date")?);
    shared.with_account(&caller, |account, _cx| {
        let campaigns = &account.campaigns;
        let mut items = Vec::new();
        let mut next = None;
        for (index, campaign) in campaigns.campaigns.iter().enumerate().skip(page.start) {
            if before.is_some_and(|b| campaign.updated_at >= b)
                || after.is_some_and(|a| campaign.updated_at < a)
            {
                continue;
            }
            if items.len() == page.limit as usize {
                next = Some(page.cursor_at(index));
                break;
            }
            items.push(campaign_json(campaigns, campaign, false));
        }
        let body = json!({"campaigns": items, "_links": Links::next("/v3/emails", next)});
        Ok(json_response(StatusCode::OK, &body))
    })
}

#[derive(Debug, Deserialize)]
struct ActivityIn {
    format_type: Option<i64>,
    from_name: Option<String>,
    from_email: Option<String>,
    reply_to_email: Option<String>,
    subject: Option<String>,
    preheader: Option<String>,
    html_content: Option<String>,
    physical_address_in_footer: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct CampaignIn {
    name: Option<String>,
    email_campaign_activities: Option<Vec<ActivityIn>>,
}

pub(crate) async fn post_email(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: CampaignIn = parse_body(Area::Campaigns, &body)?;
    let name = required(input.name.as_deref(), "name", 80)?;
    let mut activities = input.email_campaign_activities.unwrap_or_default();
    if activities.len() != 1 {
        return Err(invalid(
            "email_campaign_activities must contain exactly one activity",
        ));
    }
    let a = activities.remove(0);
    match a.format_type {
        Some(1..=5) => {}
        Some(_) => return Err(invalid("format_type must be between 1 and 5")),
        None => return Err(invalid("format_type is required")),
    }
    let activity = NewActivity {
        from_name: required(a.from_name.as_deref(), "from_name", 100)?,
        from_email: required(a.from_email.as_deref(), "from_email", 80)?,
        reply_to_email: required(a.reply_to_email.as_deref(), "reply_to_email", 80)?,
        subject: required(a.subject.as_deref(), "subject", 1000)?,
        preheader: a
            .preheader
            .map(|p| required(Some(&p), "preheader", 200))
            .transpose()?,
        html_content: required(a.html_content.as_deref(), "html_content", 150_000)?,
        physical_address: a
            .physical_address_in_footer
            .as_ref()
            .filter(|v| !v.is_null())
            .map(physical_address)
            .transpose()?,
    };
    shared.with_account(&caller, |account, cx| {
        confirmed_sender(account, "from_email", &activity.from_email)?;
        confirmed_sender(account, "reply_to_email", &activity.reply_to_email)?;
        if account.campaigns.name_taken(&name, None) {
            return Err(ApiError::conflict(
                Area::Campaigns,
                format!("An email campaign named {name} already exists"),
            ));
        }
        let ids = [account.rng.uuid(), account.rng.uuid(), account.rng.uuid()];
        let index = account.campaigns.create(ids, name, activity, cx.now);
        cx.effect(&account.id, "campaign.created", ids[0]);
        let campaign = &account.campaigns.campaigns[index as usize];
        Ok(json_response(
            StatusCode::OK,
            &campaign_json(&account.campaigns, campaign, true),
        ))
    })
}

fn find_campaign(account: &Account, raw: &str) -> Result<u32, ApiError> {
    let id = path_uuid(Area::Campaigns, "campaign_id", raw)?;
    account
        .campaigns
        .find(&id)
        .ok_or_else(|| ApiError::not_found(Area::Campaigns, "Email campaign not found"))
}

pub(crate) async fn get_email(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(campaign_id): Path<String>,
) -> Result<Response, ApiError> {
    shared.with_account(&caller, |account, _cx| {
        let index = find_campaign(account, &campaign_id)?;
        let campaign = &account.campaigns.campaigns[index as usize];
        Ok(json_response(
            StatusCode::OK,
            &campaign_json(&account.campaigns, campaign, true),
        ))
    })
}

#[derive(Debug, Deserialize)]
struct RenameIn {
    name: Option<String>,
}

pub(crate) async fn patch_email(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(campaign_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: RenameIn = parse_body(Area::Campaigns, &body)?;
    let name = required(input.name.as_deref(), "name", 80)?;
    shared.with_account(&caller, |account, cx| {
        let index = find_campaign(account, &campaign_id)?;
        let campaigns = &mut account.campaigns;
        if campaigns.status_of(&campaigns.campaigns[index as usize]) == Status::Removed {
            return Err(invalid("A Removed email campaign cannot be renamed"));
        }
        if campaigns.name_taken(&name, Some(index)) {
            return Err(ApiError::conflict(
                Area::Campaigns,
                format!("An email campaign named {name} already exists"),
            ));
        }
        let campaign = &mut campaigns.campaigns[index as usize];
        campaign.name = name;
        campaign.updated_at = cx.now;
        let id = campaign.id;
        cx.effect(&account.id, "campaign.updated", id);
        let campaign = &account.campaigns.campaigns[index as usize];
        Ok(json_response(
            StatusCode::OK,
            &campaign_json(&account.campaigns, campaign, true),
        ))
    })
}

pub(crate) async fn delete_email(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(campaign_id): Path<String>,
) -> Result<Response, ApiError> {
    shared.with_account(&caller, |account, cx| {
        let index = find_campaign(account, &campaign_id)?;
        let campaigns = &mut account.campaigns;
        let campaign = &campaigns.campaigns[index as usize];
        match campaigns.status_of(campaign) {
            Status::Scheduled => {
                return Err(invalid(
                    "An email campaign cannot be deleted while it is Scheduled",
                ));
            }
            Status::Removed => return Ok(no_content()),
            _ => {}
        }
        let (primary, permalink, id) = (campaign.primary, campaign.permalink, campaign.id);
        for activity in [primary, permalink] {
            campaigns.activities[activity as usize].status = Status::Removed;
        }
        campaigns.campaigns[index as usize].updated_at = cx.now;
        cx.effect(&account.id, "campaign.deleted", id);
        Ok(no_content())
    })
}

/// Index of a campaign activity that is not REMOVED.
pub(crate) fn find_activity(account: &Account, raw: &str) -> Result<u32, ApiError> {
    let id = path_uuid(Area::Campaigns, "campaign_activity_id", raw)?;
    account
        .campaigns
        .find_activity(&id)
        .filter(|&i| account.campaigns.activities[i as usize].status != Status::Removed)
        .ok_or_else(|| ApiError::not_found(Area::Campaigns, "Email campaign activity not found"))
}

pub(crate) async fn get_campaign_activity(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(activity_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let include = query.csv("include");
    for item in &include {
        if !matches!(
            item.as_str(),
            "physical_address_in_footer" | "permalink_url" | "html_content" | "document_properties"
        ) {
            return Err(invalid(format!("include {item} is not a valid value")));
        }
    }
    shared.with_account(&caller, |account, _cx| {
        let index = find_activity(account, &activity_id)?;
        let campaigns = &account.campaigns;
        Ok(json_response(
            StatusCode::OK,
            &activity_json(campaigns, &campaigns.activities[index as usize], &include),
        ))
    })
}

#[derive(Debug, Deserialize)]
struct ActivityPutIn {
    from_name: Option<String>,
    from_email: Option<String>,
    reply_to_email: Option<String>,
    subject: Option<String>,
    preheader: Option<String>,
    html_content: Option<String>,
    contact_list_ids: Option<Vec<String>>,
    segment_ids: Option<Vec<i64>>,
    physical_address_in_footer: Option<Value>,
    document_properties: Option<Value>,
}

pub(crate) async fn put_campaign_activity(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(activity_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: ActivityPutIn = parse_body(Area::Campaigns, &body)?;
    let from_name = required(input.from_name.as_deref(), "from_name", 100)?;
    let from_email = required(input.from_email.as_deref(), "from_email", 80)?;
    let reply_to = required(input.reply_to_email.as_deref(), "reply_to_email", 80)?;
    let subject = required(input.subject.as_deref(), "subject", 1000)?;
    let address = input
        .physical_address_in_footer
        .as_ref()
        .filter(|v| !v.is_null())
        .map(physical_address)
        .transpose()?;
    let document = input
        .document_properties
        .as_ref()
        .filter(|v| !v.is_null())
        .map(|v| string_object(v, &DOCUMENT_KEYS, "document_properties"))
        .transpose()?;
    let segments = input.segment_ids.unwrap_or_default();
    if !segments.is_empty() {
        return Err(invalid(
            "segment_ids: the sandbox does not send to segments",
        ));
    }
    shared.with_account(&caller, |account, cx| {
        let index = find_activity(account, &activity_id)?;
        let activity = &account.campaigns.activities[index as usize];
        if activity.role != Role::PrimaryEmail {
            return Err(invalid("Only primary_email activities can be updated"));
        }
        if !matches!(activity.status, Status::Draft | Status::Done) {
            return Err(invalid(format!(
                "Only DRAFT or DONE activities can be updated; this one is {}",
                activity.status.activity_str()
            )));
        }
        confirmed_sender(account, "from_email", &from_email)?;
        confirmed_sender(account, "reply_to_email", &reply_to)?;
        let mut lists: Vec<Uuid> = Vec::new();
        for raw in input.contact_list_ids.as_deref().unwrap_or_default() {
            let id = Uuid::parse_str(raw.trim())
                .ok()
                .filter(|id| account.lists.find_live(id).is_some())
                .ok_or_else(|| invalid(format!("contact_list_ids: list {raw} does not exist")))?;
            if !lists.contains(&id) {
                lists.push(id);
            }
        }
        let campaigns = &mut account.campaigns;
        let activity = &mut campaigns.activities[index as usize];
        activity.from_name = from_name;
        activity.from_email = from_email;
        activity.reply_to_email = reply_to;
        activity.subject = subject;
        activity.preheader = input.preheader.filter(|p| !p.trim().is_empty());
        activity.contact_list_ids = lists;
        activity.segment_ids = segments;
        // Subresources are kept when omitted (reference §8.4).
        if let Some(html) = input.html_content {
            activity.html_content = Some(html);
        }
        if address.is_some() {
            activity.physical_address = address;
        }
        if document.is_some() {
            activity.document_properties = document;
        }
        let (id, campaign) = (activity.id, activity.campaign);
        campaigns.campaigns[campaign as usize].updated_at = cx.now;
        cx.effect(&account.id, "campaign_activity.updated", id);
        let campaigns = &account.campaigns;
        Ok(json_response(
            StatusCode::OK,
            &activity_json(campaigns, &campaigns.activities[index as usize], &[]),
        ))
    })
}
