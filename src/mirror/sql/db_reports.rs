//! [`MirrorDb`]'s methods for campaign reports (issue 19): each write is one transaction
//! with the renewed lease, the pass's progress where it has one, and the run's figures; the
//! reads give what a reporting pass decides with (stored statistics, progress) and what tests
//! compare (stored events).

use super::db::{Engine, MirrorDb};
use super::error::MirrorDbError;
use super::page::PageMark;
use super::reports::{self, EventRow, ReportProgress, StatsRow, StatsWritten, StoredStats};
use super::{instant, page_transaction, runs};
use crate::api::model::LinkClickCount;
use crate::mirror::sql::cursor;

impl MirrorDb {
    /// The mirrored activities that have reports: `(campaign_activity_id, campaign_id)` of
    /// every primary e-mail and resend activity of `account`.
    pub async fn report_activities(
        &self,
        account: &str,
    ) -> Result<Vec<(String, String)>, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let account = account.to_owned();
                Ok(store
                    .call(move |conn| reports::report_activities(conn, &account))
                    .await?)
            }
            Engine::Postgres(pg) => Ok(pg.report_activities(account).await?),
        }
    }

    /// Requests the runs of `resource` started since `since` made, over every account (the
    /// quota is the API key's), the run `except` left out: what a day's share has spent.
    pub async fn requests_since(
        &self,
        resource: crate::mirror::Resource,
        since: chrono::DateTime<chrono::Utc>,
        except: i64,
    ) -> Result<u64, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let since = instant(&since);
                Ok(store
                    .call(move |conn| {
                        reports::requests_since(conn, resource.as_str(), &since, except)
                    })
                    .await?)
            }
            Engine::Postgres(pg) => Ok(pg.requests_since(resource.as_str(), since, except).await?),
        }
    }

    /// Upserts activities' statistics (one stats request's answer, counted as one page); each
    /// activity whose statistics are new or changed gets a history row for the run.
    pub async fn write_report_stats(
        &self,
        mark: PageMark,
        rows: Vec<StatsRow>,
    ) -> Result<StatsWritten, MirrorDbError> {
        let store = match &self.engine {
            Engine::Sqlite(store) => store,
            Engine::Postgres(pg) => return Ok(pg.write_report_stats(&mark, &rows).await?),
        };
        Ok(store
            .call(move |conn| {
                page_transaction(conn, |tx| {
                    cursor::renew_lease(tx, &mark.lease)?;
                    let now = instant(&mark.now);
                    let written =
                        reports::write_stats(tx, &mark.account, &rows, mark.run_id, &now)?;
                    runs::add(tx, mark.run_id, 1, written.upserted, 0, mark.requests)?;
                    Ok(written)
                })
            })
            .await?)
    }

    /// Every activity's stored statistics for `account`, by activity id.
    pub async fn report_stats(&self, account: &str) -> Result<Vec<StoredStats>, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let account = account.to_owned();
                Ok(store
                    .call(move |conn| reports::stats(conn, &account))
                    .await?)
            }
            Engine::Postgres(pg) => Ok(pg.report_stats(account).await?),
        }
    }

    /// Writes one page of an activity's tracking report: the events not stored yet (returns
    /// how many), and where the read of that report stands after the page.
    pub async fn write_tracking_page(
        &self,
        mark: PageMark,
        campaign_activity_id: String,
        events: Vec<EventRow>,
        progress: ReportProgress,
    ) -> Result<u64, MirrorDbError> {
        let store = match &self.engine {
            Engine::Sqlite(store) => store,
            Engine::Postgres(pg) => {
                return Ok(pg
                    .write_tracking_page(&mark, &campaign_activity_id, &events, &progress)
                    .await?);
            }
        };
        Ok(store
            .call(move |conn| {
                page_transaction(conn, |tx| {
                    cursor::renew_lease(tx, &mark.lease)?;
                    let now = instant(&mark.now);
                    let activity = campaign_activity_id.as_str();
                    // The events of erased contacts stay out (the reports keep listing them).
                    let erased = super::erasure::erased_among(
                        tx,
                        &mark.account,
                        events.iter().map(|e| e.contact_id.as_str()),
                    )?;
                    let kept = super::erasure::not_erased(&events, &erased, |e| &e.contact_id);
                    let inserted = reports::write_events(tx, &mark.account, activity, &kept, &now)?;
                    reports::save_progress(
                        tx,
                        &mark.account,
                        activity,
                        &progress,
                        mark.run_id,
                        &now,
                    )?;
                    runs::add(tx, mark.run_id, 1, inserted, 0, mark.requests)?;
                    Ok(inserted)
                })
            })
            .await?)
    }

    /// The stored events of one activity, ordered by kind, contact, time, link, occurrence.
    pub async fn tracking_events(
        &self,
        account: &str,
        campaign_activity_id: &str,
    ) -> Result<Vec<EventRow>, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let (account, activity) = (account.to_owned(), campaign_activity_id.to_owned());
                Ok(store
                    .call(move |conn| reports::events(conn, &account, &activity))
                    .await?)
            }
            Engine::Postgres(pg) => Ok(pg.tracking_events(account, campaign_activity_id).await?),
        }
    }

    /// Replaces an activity's links with the link report's, with the links' progress.
    pub async fn write_activity_links(
        &self,
        mark: PageMark,
        campaign_activity_id: String,
        links: Vec<LinkClickCount>,
        progress: ReportProgress,
    ) -> Result<u64, MirrorDbError> {
        let store = match &self.engine {
            Engine::Sqlite(store) => store,
            Engine::Postgres(pg) => {
                return Ok(pg
                    .write_activity_links(&mark, &campaign_activity_id, &links, &progress)
                    .await?);
            }
        };
        Ok(store
            .call(move |conn| {
                page_transaction(conn, |tx| {
                    cursor::renew_lease(tx, &mark.lease)?;
                    let now = instant(&mark.now);
                    let activity = campaign_activity_id.as_str();
                    let written = reports::write_links(tx, &mark.account, activity, &links, &now)?;
                    reports::save_progress(
                        tx,
                        &mark.account,
                        activity,
                        &progress,
                        mark.run_id,
                        &now,
                    )?;
                    runs::add(tx, mark.run_id, 1, written, 0, mark.requests)?;
                    Ok(written)
                })
            })
            .await?)
    }

    /// Where the reporting pass stands on each part of an activity's reports read so far,
    /// ordered by part name.
    pub async fn report_progress(
        &self,
        account: &str,
        campaign_activity_id: &str,
    ) -> Result<Vec<ReportProgress>, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let (account, activity) = (account.to_owned(), campaign_activity_id.to_owned());
                Ok(store
                    .call(move |conn| reports::progress(conn, &account, &activity))
                    .await?)
            }
            Engine::Postgres(pg) => Ok(pg.report_progress(account, campaign_activity_id).await?),
        }
    }
}
