//! Campaigns (shared/reference/constant-contact-v3.md §8.1, §12.10). `GET /emails` has no
//! activities and the API ignores `updated_after` there, so every run lists all campaigns
//! (500 a page, `Removed` ones included) and compares each campaign's `updated_at` with the
//! one its details were last fetched for. Only changed campaigns cost requests:
//! `GET /emails/{id}` for the activity ids, `GET /emails/activities/{id}` per activity, and
//! the schedule of a `SCHEDULED` activity. An unchanged account costs one request a run.
//!
//! Each list page is written (with the pass's position) before its details are fetched, and
//! each campaign's details in their own transaction: a run stopped half-way leaves some
//! campaigns stale, and stale campaigns are fetched by the next run because their recorded
//! `details_updated_at` still differs.

use super::Resource;
use super::pass::{Run, Stop, begin};
use super::sql::campaigns::FetchedActivity;
use super::sql::{PageEnd, instant};
use crate::api::ApiError;
use crate::api::model::{CampaignActivityStatus, CampaignQuery};

pub(super) async fn run(run: &Run<'_>) -> Result<(), Stop> {
    let mut pass = begin(run, Resource::Campaigns).await?;
    let query = CampaignQuery {
        limit: Some(500),
        ..CampaignQuery::default()
    };
    loop {
        run.check_cancelled()?;
        let page = match pass.next_href.clone() {
            None => run.call(run.api.list_campaigns(&query)).await?,
            Some(href) => run.call(run.api.next_campaigns_page(&href)).await?,
        };
        pass.next_href = page.next;
        let last = pass.next_href.is_none();
        let listed = page.campaigns;
        let count = listed.len() as u64;
        let changed = run
            .db()
            .write_campaigns(run.page_mark(), pass.clone(), listed, PageEnd::of(last))
            .await?;
        run.page_written(count);
        for (campaign_id, updated_at) in changed {
            details(run, &campaign_id, updated_at).await?;
        }
        if last {
            return Ok(());
        }
    }
}

/// Fetches and writes one changed campaign's activities. A campaign or activity that is gone
/// meanwhile (404) is left for the next run.
async fn details(run: &Run<'_>, campaign_id: &str, updated_at: Option<String>) -> Result<(), Stop> {
    run.check_cancelled()?;
    let campaign = match run.call(run.api.get_campaign(campaign_id)).await {
        Ok(campaign) => campaign,
        Err(Stop::Api(ApiError::NotFound { .. })) => return Ok(()),
        Err(stop) => return Err(stop),
    };
    let mut activities = Vec::new();
    for reference in &campaign.campaign_activities {
        let id = &reference.campaign_activity_id;
        let mut activity = match run.call(run.api.get_campaign_activity(id, &[])).await {
            Ok(activity) => activity,
            Err(Stop::Api(ApiError::NotFound { .. })) => return Ok(()),
            Err(stop) => return Err(stop),
        };
        if activity.role.is_none() {
            activity.role = reference.role.clone();
        }
        let scheduled_date = if activity.current_status == Some(CampaignActivityStatus::Scheduled) {
            run.call(run.api.get_campaign_schedules(id))
                .await?
                .into_iter()
                .find_map(|s| s.scheduled_date)
                .as_ref()
                .map(instant)
        } else {
            None
        };
        activities.push(FetchedActivity {
            activity,
            scheduled_date,
        });
    }
    Ok(run
        .db()
        .write_campaign_details(
            run.page_mark(),
            campaign_id.to_owned(),
            updated_at,
            activities,
        )
        .await?)
}
