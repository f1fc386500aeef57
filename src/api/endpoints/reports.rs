//! E-mail campaign reports (`/reports/...`, the spec's "Email Reporting" operations; scope
//! `campaign_data`): campaign summaries, stats by lists of ids, per-contact tracking reports
//! and link reports. All are GETs and safe to repeat.
//!
//! The stats operations take a limited number of ids per request (10 activities, 150
//! campaigns): larger sets are split here and the answers merged. When none of a request's
//! ids has stats the API answers 404 for the whole request instead of listing them under
//! `errors`; that 404 is folded into the merged answer the same way, so the result does not
//! depend on how the ids were split.

use std::collections::HashSet;

use crate::api::client::{AccountApi, Request};
use crate::api::endpoints::path_id;
use crate::api::error::{ApiError, ApiErrorBody};
use crate::api::model::{
    ActivityStats, ActivityStatsReport, CampaignStats, CampaignStatsReport, CampaignSummariesPage,
    LinkReport, MAX_STATS_ACTIVITY_IDS, MAX_STATS_CAMPAIGN_IDS, StatsReport, TrackingPage,
    TrackingReport,
};

const GET_SUMMARIES: &str = "GET /reports/summary_reports/email_campaign_summaries";
const GET_ACTIVITY_STATS: &str =
    "GET /reports/stats/email_campaign_activities/{campaign_activity_ids}";
const GET_CAMPAIGN_STATS: &str = "GET /reports/stats/email_campaigns/{campaign_ids}";
const GET_LINKS: &str = "GET /reports/email_reports/{campaign_activity_id}/links";

/// The ids of a stats result, to learn which asked-for ids have none.
trait StatsId {
    fn id(&self) -> &str;
}

impl StatsId for ActivityStats {
    fn id(&self) -> &str {
        &self.campaign_activity_id
    }
}

impl StatsId for CampaignStats {
    fn id(&self) -> &str {
        &self.campaign_id
    }
}

impl AccountApi {
    /// `GET /reports/summary_reports/email_campaign_summaries`: the first page of sent
    /// campaigns' unique counts, most recently sent first (`limit` 1–500, the API's default
    /// 50).
    pub async fn list_campaign_summaries(
        &self,
        limit: Option<u32>,
    ) -> Result<CampaignSummariesPage, ApiError> {
        let mut request = Request::get(
            GET_SUMMARIES,
            "/reports/summary_reports/email_campaign_summaries",
        );
        if let Some(limit) = limit {
            request = request.query("limit", limit);
        }
        self.json(request).await
    }

    /// The page a previous summaries page's `next` href points to (followed verbatim).
    pub async fn next_campaign_summaries_page(
        &self,
        href: &str,
    ) -> Result<CampaignSummariesPage, ApiError> {
        self.json(Request::href(
            "GET /reports/summary_reports/email_campaign_summaries (next page)",
            href,
        ))
        .await
    }

    /// `GET /reports/stats/email_campaign_activities/{ids}` for any number of activities,
    /// [`MAX_STATS_ACTIVITY_IDS`] a request. Duplicates are asked for once; ids without stats
    /// are in `missing` (and the API's reasons in `errors`).
    pub async fn campaign_activity_stats(
        &self,
        campaign_activity_ids: &[&str],
    ) -> Result<ActivityStatsReport, ApiError> {
        self.stats(
            GET_ACTIVITY_STATS,
            "/reports/stats/email_campaign_activities",
            campaign_activity_ids,
            MAX_STATS_ACTIVITY_IDS,
        )
        .await
    }

    /// `GET /reports/stats/email_campaigns/{ids}` for any number of campaigns,
    /// [`MAX_STATS_CAMPAIGN_IDS`] a request; as [`AccountApi::campaign_activity_stats`].
    pub async fn campaign_stats(
        &self,
        campaign_ids: &[&str],
    ) -> Result<CampaignStatsReport, ApiError> {
        self.stats(
            GET_CAMPAIGN_STATS,
            "/reports/stats/email_campaigns",
            campaign_ids,
            MAX_STATS_CAMPAIGN_IDS,
        )
        .await
    }

    async fn stats<T>(
        &self,
        route: &'static str,
        base: &str,
        ids: &[&str],
        per_request: usize,
    ) -> Result<StatsReport<T>, ApiError>
    where
        T: serde::de::DeserializeOwned + StatsId,
    {
        let mut seen = HashSet::new();
        let mut unique = Vec::new();
        for id in ids {
            let segment = path_id(route, id)?;
            if seen.insert(*id) {
                unique.push((*id, segment));
            }
        }
        let mut report = StatsReport::default();
        for chunk in unique.chunks(per_request) {
            let joined = chunk
                .iter()
                .map(|(_, segment)| segment.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let answer: Result<StatsReport<T>, ApiError> = self
                .json(Request::get(route, format!("{base}/{joined}")))
                .await;
            match answer {
                Ok(part) => {
                    report.results.extend(part.results);
                    report.errors.extend(part.errors);
                }
                Err(ApiError::NotFound {
                    error_key, message, ..
                }) => report.errors.push(ApiErrorBody {
                    error_key,
                    error_message: Some(message).filter(|m| !m.is_empty()),
                }),
                Err(error) => return Err(error),
            }
        }
        let found: HashSet<&str> = report.results.iter().map(StatsId::id).collect();
        report.missing = unique
            .iter()
            .filter(|(id, _)| !found.contains(id))
            .map(|(id, _)| (*id).to_owned())
            .collect();
        Ok(report)
    }

    /// `GET /reports/email_reports/{id}/tracking/{report}`: the first page, newest first
    /// (`limit` 1–[`MAX_TRACKING_LIMIT`], the API's default 500).
    pub async fn tracking_report(
        &self,
        campaign_activity_id: &str,
        report: TrackingReport,
        limit: Option<u32>,
    ) -> Result<TrackingPage, ApiError> {
        let route = report.route();
        let path = format!(
            "/reports/email_reports/{}/tracking/{report}",
            path_id(route, campaign_activity_id)?
        );
        let mut request = Request::get(route, path);
        if let Some(limit) = limit {
            request = request.query("limit", limit);
        }
        self.json(request).await
    }

    /// The page a previous page of `report`'s `next` href points to (followed verbatim).
    pub async fn next_tracking_page(
        &self,
        report: TrackingReport,
        href: &str,
    ) -> Result<TrackingPage, ApiError> {
        self.json(Request::href(report.next_route(), href)).await
    }

    /// `GET /reports/email_reports/{id}/links`: each link's unique clicks; with `no_clicks`
    /// also the links nobody clicked.
    pub async fn activity_link_report(
        &self,
        campaign_activity_id: &str,
        no_clicks: bool,
    ) -> Result<LinkReport, ApiError> {
        let path = format!(
            "/reports/email_reports/{}/links",
            path_id(GET_LINKS, campaign_activity_id)?
        );
        let mut request = Request::get(GET_LINKS, path);
        if no_clicks {
            request = request.query("no_clicks", "true");
        }
        self.json(request).await
    }
}
