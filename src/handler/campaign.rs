//! Campaign commands against the API. Content, recipients and schedules live on the
//! campaign's `primary_email` activity (reference §8, §12.10).
//!
//! Safe to repeat: a create remembers the campaign it made and, after an attempt whose answer
//! was lost, finds it by its (unique) name; a schedule reads the current schedule first; an
//! unschedule of an unscheduled campaign succeeds; a test send is never repeated when an
//! earlier attempt may have sent it.

use serde_json::{Value, json};

use crate::api::ApiError;
use crate::api::model::campaign_activity::{CampaignActivity, ScheduleAt, TestSend as ApiTestSend};
use crate::api::model::campaigns::{
    CampaignActivityCreate, CampaignActivityStatus, CampaignCreate, CampaignQuery, EmailCampaign,
    PhysicalAddress,
};
use crate::command::campaign::{CampaignFields, PhysicalAddress as AddressInput, TestSend, When};
use crate::command::timestamp;

use super::{Ctx, HandleError, to_value};
use crate::command::outcome::ErrorCode;

/// Marks, in the ledger, a test send whose answer was lost.
const TEST_SEND_UNCERTAIN: &str = "test_send:uncertain";

fn address(input: &AddressInput) -> PhysicalAddress {
    PhysicalAddress {
        address_line1: input.address_line1.clone(),
        address_line2: input.address_line2.clone(),
        city: input.city.clone(),
        country_code: input.country_code.clone(),
        organization_name: input.organization_name.clone(),
        postal_code: input.postal_code.clone(),
        state_code: input.state_code.clone(),
        ..PhysicalAddress::default()
    }
}

async fn primary_activity(
    ctx: &Ctx<'_>,
    campaign: &EmailCampaign,
) -> Result<CampaignActivity, HandleError> {
    let id = campaign.primary_email_activity_id().ok_or_else(|| {
        HandleError::failed(
            ErrorCode::NoPrimaryEmail,
            "the campaign has no primary_email activity",
        )
    })?;
    Ok(ctx.api.get_campaign_activity(id, &[]).await?)
}

async fn find_by_name(ctx: &Ctx<'_>, name: &str) -> Result<Option<EmailCampaign>, HandleError> {
    let mut page = ctx
        .api
        .list_campaigns(&CampaignQuery {
            limit: Some(500),
            ..CampaignQuery::default()
        })
        .await?;
    loop {
        if let Some(found) = page.campaigns.iter().find(|c| c.name == name) {
            return Ok(Some(found.clone()));
        }
        match page.next.take() {
            Some(next) => page = ctx.api.next_campaigns_page(&next).await?,
            None => return Ok(None),
        }
    }
}

fn created(campaign: &EmailCampaign, already_existed: bool) -> Value {
    json!({
        "campaign_id": campaign.campaign_id,
        "campaign_activity_id": campaign.primary_email_activity_id(),
        "already_existed": already_existed,
        "campaign": to_value(campaign),
    })
}

/// `campaign.create`: the campaign with its primary e-mail, then its recipients.
pub(super) async fn create(ctx: &Ctx<'_>, fields: &CampaignFields) -> Result<Value, HandleError> {
    let name = fields.name.clone().unwrap_or_default();
    let mut existing = None;
    if let Some(id) = &ctx.attempt.effect_ref {
        existing = Some(ctx.api.get_campaign(id).await?);
    } else if ctx.attempt.is_retry() {
        // An earlier attempt may have created it and lost the answer. Only a campaign created
        // after this command first arrived can be ours; an older one of the same name is
        // somebody else's, and the create then fails as a conflict like a first attempt would.
        let since = ctx.received_at().await?;
        let found = find_by_name(ctx, &name).await?.filter(|c| {
            let margin = chrono::Duration::minutes(2);
            matches!((c.created_at, since), (Some(created), Some(since)) if created >= since - margin)
        });
        // The list leaves out `campaign_activities`: read the campaign itself, which names
        // its primary e-mail (the recipients below and the result need it).
        if let Some(found) = found {
            existing = Some(ctx.api.get_campaign(&found.campaign_id).await?);
        }
    }
    let (campaign, already_existed) = match existing {
        Some(campaign) => (campaign, false),
        None => {
            let mut activity = CampaignActivityCreate::custom_code(
                fields.from_name.as_deref().unwrap_or_default(),
                fields.from_email.as_deref().unwrap_or_default(),
                fields.reply_to_email.as_deref().unwrap_or_default(),
                fields.subject.as_deref().unwrap_or_default(),
                fields.html_content.as_deref().unwrap_or_default(),
            );
            activity.preheader = fields.preheader.clone();
            activity.physical_address_in_footer = fields.physical_address.as_ref().map(address);
            let campaign = ctx
                .api
                .create_campaign(&CampaignCreate::new(&name, activity))
                .await?;
            ctx.record_effect(&campaign.campaign_id).await?;
            (campaign, false)
        }
    };
    if let Some(lists) = &fields.list_ids {
        let activity = primary_activity(ctx, &campaign).await?;
        if &activity.contact_list_ids != lists {
            let mut body = activity.to_put();
            body.set_lists(lists.clone());
            ctx.api
                .update_campaign_activity(&activity.campaign_activity_id, &body)
                .await?;
        }
    }
    Ok(created(&campaign, already_existed))
}

/// `campaign.update`: the name (PATCH) and the primary e-mail's content and recipients (PUT of
/// the whole activity, with the changes applied).
pub(super) async fn update(
    ctx: &Ctx<'_>,
    id: &str,
    fields: &CampaignFields,
) -> Result<Value, HandleError> {
    let mut campaign = ctx.api.get_campaign(id).await?;
    if let Some(name) = fields.name.as_ref().filter(|n| **n != campaign.name) {
        campaign = ctx.api.rename_campaign(id, name).await?;
    }
    let touches_activity = fields.subject.is_some()
        || fields.from_name.is_some()
        || fields.from_email.is_some()
        || fields.reply_to_email.is_some()
        || fields.preheader.is_some()
        || fields.html_content.is_some()
        || fields.physical_address.is_some()
        || fields.list_ids.is_some();
    let mut activity_value = Value::Null;
    if touches_activity {
        let activity = primary_activity(ctx, &campaign).await?;
        let mut body = activity.to_put();
        let before = body.clone();
        let set = |target: &mut String, value: &Option<String>| {
            if let Some(value) = value {
                *target = value.clone();
            }
        };
        set(&mut body.subject, &fields.subject);
        set(&mut body.from_name, &fields.from_name);
        set(&mut body.from_email, &fields.from_email);
        set(&mut body.reply_to_email, &fields.reply_to_email);
        if fields.preheader.is_some() {
            body.preheader = fields.preheader.clone();
        }
        if fields.html_content.is_some() {
            body.html_content = fields.html_content.clone();
        }
        if let Some(input) = &fields.physical_address {
            body.physical_address_in_footer = Some(address(input));
        }
        if let Some(lists) = &fields.list_ids {
            body.set_lists(lists.clone());
        }
        let activity = if body == before {
            activity
        } else {
            ctx.api
                .update_campaign_activity(&activity.campaign_activity_id, &body)
                .await?
        };
        activity_value = to_value(&activity);
    }
    Ok(
        json!({"campaign_id": campaign.campaign_id, "campaign": to_value(&campaign), "primary_email": activity_value}),
    )
}

/// `campaign.get`: the campaign and its primary e-mail.
pub(super) async fn get(ctx: &Ctx<'_>, id: &str) -> Result<Value, HandleError> {
    let campaign = ctx.api.get_campaign(id).await?;
    let activity = match campaign.primary_email_activity_id() {
        Some(_) => to_value(&primary_activity(ctx, &campaign).await?),
        None => Value::Null,
    };
    Ok(
        json!({"campaign_id": campaign.campaign_id, "campaign": to_value(&campaign), "primary_email": activity}),
    )
}

/// `campaign.list`: up to `limit` campaigns, newest pages first as the API gives them.
pub(super) async fn list(ctx: &Ctx<'_>, limit: u32) -> Result<Value, HandleError> {
    let mut page = ctx
        .api
        .list_campaigns(&CampaignQuery {
            limit: Some(limit.min(500)),
            ..CampaignQuery::default()
        })
        .await?;
    let mut campaigns = std::mem::take(&mut page.campaigns);
    while campaigns.len() < limit as usize {
        let Some(next) = page.next.take() else { break };
        page = ctx.api.next_campaigns_page(&next).await?;
        campaigns.append(&mut page.campaigns);
    }
    campaigns.truncate(limit as usize);
    Ok(json!({"count": campaigns.len(), "campaigns": to_value(&campaigns)}))
}

/// `campaign.schedule`: sends at a time, or now. An activity already scheduled for that time
/// (or already sending after an earlier attempt) is not scheduled again.
pub(super) async fn schedule(ctx: &Ctx<'_>, id: &str, when: When) -> Result<Value, HandleError> {
    let campaign = ctx.api.get_campaign(id).await?;
    let activity = primary_activity(ctx, &campaign).await?;
    let activity_id = activity.campaign_activity_id.clone();
    let current = ctx.api.get_campaign_schedules(&activity_id).await?;
    let status = activity.current_status.clone();
    match when {
        When::At(at) if current.iter().any(|s| s.scheduled_date == Some(at)) => {
            return Ok(
                json!({"campaign_id": id, "campaign_activity_id": activity_id, "scheduled_at": timestamp::format(at), "already_scheduled": true}),
            );
        }
        When::Now
            if ctx.attempt.is_retry()
                && matches!(
                    status,
                    Some(CampaignActivityStatus::Executing | CampaignActivityStatus::Done)
                ) =>
        {
            return Ok(
                json!({"campaign_id": id, "campaign_activity_id": activity_id, "scheduled_at": "now", "already_scheduled": true}),
            );
        }
        _ => {}
    }
    if !current.is_empty() {
        // Moving a schedule: the API only schedules DRAFT, DONE or ERROR activities.
        ctx.api.unschedule_campaign_activity(&activity_id).await?;
    }
    let at = match when {
        When::Now => ScheduleAt::Now,
        When::At(at) => ScheduleAt::At(at),
    };
    ctx.api.schedule_campaign_activity(&activity_id, at).await?;
    ctx.record_effect(&activity_id).await?;
    let scheduled_at = match when {
        When::Now => json!("now"),
        When::At(at) => json!(timestamp::format(at)),
    };
    Ok(
        json!({"campaign_id": id, "campaign_activity_id": activity_id, "scheduled_at": scheduled_at, "already_scheduled": false}),
    )
}

/// `campaign.unschedule`: an activity that is not scheduled stays as it is.
pub(super) async fn unschedule(ctx: &Ctx<'_>, id: &str) -> Result<Value, HandleError> {
    let campaign = ctx.api.get_campaign(id).await?;
    let activity = primary_activity(ctx, &campaign).await?;
    let current = ctx
        .api
        .get_campaign_schedules(&activity.campaign_activity_id)
        .await?;
    if current.is_empty() {
        return Ok(
            json!({"campaign_id": id, "campaign_activity_id": activity.campaign_activity_id, "was_scheduled": false}),
        );
    }
    ctx.api
        .unschedule_campaign_activity(&activity.campaign_activity_id)
        .await?;
    Ok(
        json!({"campaign_id": id, "campaign_activity_id": activity.campaign_activity_id, "was_scheduled": true}),
    )
}

/// `campaign.send_test`: at most once — after an attempt whose answer was lost, it is not
/// sent again (a second test e-mail in people's inboxes is worse than a failed result).
pub(super) async fn send_test(ctx: &Ctx<'_>, test: &TestSend) -> Result<Value, HandleError> {
    if ctx.attempt.effect_ref.as_deref() == Some(TEST_SEND_UNCERTAIN) {
        return Err(HandleError::failed(
            ErrorCode::OutcomeUnknown,
            "an earlier attempt's answer was lost; the test may have been sent and is not sent again",
        ));
    }
    let campaign = ctx.api.get_campaign(&test.campaign_id).await?;
    let activity_id = campaign
        .primary_email_activity_id()
        .ok_or_else(|| {
            HandleError::failed(
                ErrorCode::NoPrimaryEmail,
                "the campaign has no primary_email activity",
            )
        })?
        .to_owned();
    let body = ApiTestSend {
        email_addresses: test.email_addresses.clone(),
        personal_message: test.personal_message.clone(),
    };
    match ctx.api.send_campaign_test(&activity_id, &body).await {
        Ok(()) => Ok(
            json!({"campaign_id": test.campaign_id, "campaign_activity_id": activity_id, "recipients": test.email_addresses.len()}),
        ),
        Err(
            error @ ApiError::Transport {
                maybe_applied: true,
                ..
            },
        ) => {
            ctx.record_effect(TEST_SEND_UNCERTAIN).await?;
            Err(error.into())
        }
        Err(error) => Err(error.into()),
    }
}
