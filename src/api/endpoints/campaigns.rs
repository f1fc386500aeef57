//! E-mail campaign operations (shared/reference/constant-contact-v3.md §8): campaigns, their
//! `primary_email` activity (content and recipients), schedules and test sends.

use reqwest::Method;

use crate::api::client::{AccountApi, Request};
use crate::api::endpoints::path_id;
use crate::api::error::ApiError;
use crate::api::model::{
    CampaignActivity, CampaignActivityInclude, CampaignActivityPut, CampaignCreate, CampaignQuery,
    CampaignsPage, EmailCampaign, Schedule, ScheduleAt, TestSend,
};

const GET_CAMPAIGN: &str = "GET /emails/{campaign_id}";
const PATCH_CAMPAIGN: &str = "PATCH /emails/{campaign_id}";
const GET_ACTIVITY: &str = "GET /emails/activities/{campaign_activity_id}";
const PUT_ACTIVITY: &str = "PUT /emails/activities/{campaign_activity_id}";
const POST_SCHEDULE: &str = "POST /emails/activities/{campaign_activity_id}/schedules";
const GET_SCHEDULES: &str = "GET /emails/activities/{campaign_activity_id}/schedules";
const DELETE_SCHEDULES: &str = "DELETE /emails/activities/{campaign_activity_id}/schedules";
const POST_TEST: &str = "POST /emails/activities/{campaign_activity_id}/tests";

#[derive(serde::Serialize)]
struct Rename<'a> {
    name: &'a str,
}

impl AccountApi {
    /// `GET /emails` (includes `Removed` campaigns; no activities): the first page.
    pub async fn list_campaigns(&self, query: &CampaignQuery) -> Result<CampaignsPage, ApiError> {
        let mut request = Request::get("GET /emails", "/emails");
        for (key, value) in query.to_pairs() {
            request = request.query(key, value);
        }
        self.json(request).await
    }

    /// The page a previous page's `next` href points to (followed verbatim).
    pub async fn next_campaigns_page(&self, href: &str) -> Result<CampaignsPage, ApiError> {
        self.json(Request::href("GET /emails (next page)", href))
            .await
    }

    /// `GET /emails/{id}`, with its activities.
    pub async fn get_campaign(&self, campaign_id: &str) -> Result<EmailCampaign, ApiError> {
        let path = format!("/emails/{}", path_id(GET_CAMPAIGN, campaign_id)?);
        self.json(Request::get(GET_CAMPAIGN, path)).await
    }

    /// `POST /emails` → 200 (not 201) with the campaign and its `primary_email` and `permalink`
    /// activities. 409 on a duplicate name; 400 when `from_email`/`reply_to_email` is not a
    /// confirmed account e-mail. Not repeated after an ambiguous failure: list by name first.
    pub async fn create_campaign(
        &self,
        campaign: &CampaignCreate,
    ) -> Result<EmailCampaign, ApiError> {
        let request =
            Request::new(Method::POST, "POST /emails", "/emails", false).json(campaign)?;
        self.json(request).await
    }

    /// `PATCH /emails/{id}` with a new name (≤ 80, unique; not for `Removed` campaigns).
    pub async fn rename_campaign(
        &self,
        campaign_id: &str,
        name: &str,
    ) -> Result<EmailCampaign, ApiError> {
        let path = format!("/emails/{}", path_id(PATCH_CAMPAIGN, campaign_id)?);
        let request =
            Request::new(Method::PATCH, PATCH_CAMPAIGN, path, true).json(&Rename { name })?;
        self.json(request).await
    }

    /// `GET /emails/activities/{id}` with the optional parts asked for.
    pub async fn get_campaign_activity(
        &self,
        campaign_activity_id: &str,
        includes: &[CampaignActivityInclude],
    ) -> Result<CampaignActivity, ApiError> {
        let path = format!(
            "/emails/activities/{}",
            path_id(GET_ACTIVITY, campaign_activity_id)?
        );
        let mut request = Request::get(GET_ACTIVITY, path);
        if !includes.is_empty() {
            request = request.query("include", CampaignActivityInclude::join(includes));
        }
        self.json(request).await
    }

    /// `PUT /emails/activities/{id}`: replaces the top-level properties (build the body with
    /// [`CampaignActivity::to_put`]); this is where recipients are set. `primary_email`
    /// activities in `DRAFT` or `DONE` only.
    pub async fn update_campaign_activity(
        &self,
        campaign_activity_id: &str,
        activity: &CampaignActivityPut,
    ) -> Result<CampaignActivity, ApiError> {
        let path = format!(
            "/emails/activities/{}",
            path_id(PUT_ACTIVITY, campaign_activity_id)?
        );
        let request = Request::new(Method::PUT, PUT_ACTIVITY, path, true).json(activity)?;
        self.json(request).await
    }

    /// `POST /emails/activities/{id}/schedules` → 201 with the schedule (`[]` when sent at
    /// once). Needs recipients set and status `DRAFT`, `DONE` or `ERROR`. Not repeated after an
    /// ambiguous failure: read the schedules (or the activity's status) first.
    pub async fn schedule_campaign_activity(
        &self,
        campaign_activity_id: &str,
        at: ScheduleAt,
    ) -> Result<Vec<Schedule>, ApiError> {
        let path = format!(
            "/emails/activities/{}/schedules",
            path_id(POST_SCHEDULE, campaign_activity_id)?
        );
        let request = Request::new(Method::POST, POST_SCHEDULE, path, false).json(&at)?;
        self.json(request).await
    }

    /// `GET /emails/activities/{id}/schedules` (`[]` when not scheduled).
    pub async fn get_campaign_schedules(
        &self,
        campaign_activity_id: &str,
    ) -> Result<Vec<Schedule>, ApiError> {
        let path = format!(
            "/emails/activities/{}/schedules",
            path_id(GET_SCHEDULES, campaign_activity_id)?
        );
        self.json(Request::get(GET_SCHEDULES, path)).await
    }

    /// `DELETE /emails/activities/{id}/schedules` → 204; only from `SCHEDULED`.
    pub async fn unschedule_campaign_activity(
        &self,
        campaign_activity_id: &str,
    ) -> Result<(), ApiError> {
        let path = format!(
            "/emails/activities/{}/schedules",
            path_id(DELETE_SCHEDULES, campaign_activity_id)?
        );
        self.send(Request::new(Method::DELETE, DELETE_SCHEDULES, path, true))
            .await?;
        Ok(())
    }

    /// `POST /emails/activities/{id}/tests` → 204 (≤ 5 addresses, ≤ 50 test recipients a day).
    pub async fn send_campaign_test(
        &self,
        campaign_activity_id: &str,
        test: &TestSend,
    ) -> Result<(), ApiError> {
        let path = format!(
            "/emails/activities/{}/tests",
            path_id(POST_TEST, campaign_activity_id)?
        );
        let request = Request::new(Method::POST, POST_TEST, path, false).json(test)?;
        self.send(request).await?;
        Ok(())
    }
}
