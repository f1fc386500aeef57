//! Report commands against the API: `report.campaign.get`, the aggregate statistics of one
//! campaign read fresh with `GET /reports/stats/email_campaigns/{campaign_id}`. Reads only,
//! so safe to repeat.

use serde_json::{Value, json};

use crate::api::model::{CampaignStats, EmailStats};
use crate::command::outcome::{ErrorCode, ResultError};
use crate::command::timestamp;

use super::{Ctx, HandleError, to_value};

/// The API route, as the results of other commands name it in their messages.
const ROUTE: &str = "GET /reports/stats/email_campaigns/{campaign_ids}";

/// `report.campaign.get`: the campaign's counts and percentages. A campaign without
/// statistics (never sent, deleted or unknown: the API does not tell them apart) fails
/// `not_found`, as `campaign.get` does for a campaign that does not exist.
pub(super) async fn campaign(ctx: &Ctx<'_>, id: &str) -> Result<Value, HandleError> {
    let report = ctx.api.campaign_stats(&[id]).await?;
    match report.results.into_iter().find(|r| r.campaign_id == id) {
        Some(found) => Ok(campaign_data(&found)),
        None => {
            let api = report.errors.into_iter().next().unwrap_or_default();
            let detail = api
                .error_message
                .as_deref()
                .map(|m| format!(" ({})", crate::command::field::truncate(m, 200)))
                .unwrap_or_default();
            Err(HandleError::Failed(ResultError {
                code: ErrorCode::NotFound,
                message: format!(
                    "{ROUTE}: campaign {id} has no statistics: it was never sent, or it does \
                     not exist{detail}"
                ),
                retryable: false,
                api_status: Some(404),
                api_error_key: api.error_key,
                fields: Vec::new(),
            }))
        }
    }
}

/// The result's `data`: fixed names, every count present (0 when the API left it out), the
/// percentages as numbers or `null`.
fn campaign_data(found: &CampaignStats) -> Value {
    json!({
        "campaign_id": found.campaign_id,
        "last_refresh_time": found.last_refresh_time.map(timestamp::format),
        "stats": counts(&found.stats),
        "percents": to_value(&found.percents),
    })
}

/// The counts the campaign stats operation reports (it has no spam reports and no bounce
/// breakdown: those are per activity).
fn counts(s: &EmailStats) -> Value {
    json!({
        "sends": s.sends,
        "opens": s.opens,
        "opens_all": s.opens_all,
        "opens_all_computer": s.opens_all_computer,
        "opens_all_mobile": s.opens_all_mobile,
        "opens_all_tablet": s.opens_all_tablet,
        "opens_all_other": s.opens_all_other,
        "opens_all_none": s.opens_all_none,
        "clicks": s.clicks,
        "clicks_all": s.clicks_all,
        "clicks_all_computer": s.clicks_all_computer,
        "clicks_all_mobile": s.clicks_all_mobile,
        "clicks_all_tablet": s.clicks_all_tablet,
        "clicks_all_other": s.clicks_all_other,
        "clicks_all_none": s.clicks_all_none,
        "forwards": s.forwards,
        "optouts": s.optouts,
        "bounces": s.bounces,
        "not_opened": s.not_opened,
    })
}
