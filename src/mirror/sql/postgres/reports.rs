//! Campaign reports on PostgreSQL: the same methods and semantics as the SQLite statements of
//! `sql/reports.rs` (statistics with their history, tracking events, links, the pass's
//! progress), each one transaction with the renewed lease and the run's figures.

use deadpool_postgres::Transaction;
use serde_json::Value;

use super::error::PgResult;
use super::{PgMirrorDb, add_to_run, renew_lease};
use crate::api::model::LinkClickCount;
use crate::mirror::sql::page::PageMark;
use crate::mirror::sql::reports::{
    EventKind, EventRow, ReportPart, ReportProgress, SplitStats, StatsRow, StatsWritten,
    StoredStats, link_key,
};

const STATS_COLUMNS: &str =
    "sends, opens, opens_all, clicks, clicks_all, forwards, optouts, abuse, bounces, not_opened";

impl PgMirrorDb {
    /// See `MirrorDb::report_activities`.
    pub async fn report_activities(&self, account: &str) -> PgResult<Vec<(String, String)>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT campaign_activity_id, campaign_id FROM campaign_activities
                 WHERE account = $1
                   AND coalesce(role, 'primary_email') IN ('primary_email', 'resend')
                 ORDER BY campaign_id COLLATE \"C\", campaign_activity_id COLLATE \"C\"",
                &[&account],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// See `MirrorDb::requests_since`.
    pub async fn requests_since(
        &self,
        resource: &str,
        since: chrono::DateTime<chrono::Utc>,
        except: i64,
    ) -> PgResult<u64> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT coalesce(sum(api_requests), 0)::bigint FROM mirror_runs
                 WHERE resource = $1 AND started_at >= $2 AND id <> $3",
                &[&resource, &since, &except],
            )
            .await?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// See `MirrorDb::write_report_stats`.
    pub async fn write_report_stats(
        &self,
        mark: &PageMark,
        rows: &[StatsRow],
    ) -> PgResult<StatsWritten> {
        let account = mark.account.as_str();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        renew_lease(&tx, &mark.lease).await?;
        let select = tx
            .prepare_cached(&format!(
                "SELECT {STATS_COLUMNS}, breakdown FROM campaign_activity_stats
                 WHERE account = $1 AND campaign_activity_id = $2"
            ))
            .await?;
        let upsert = tx
            .prepare_cached(&format!(
                "INSERT INTO campaign_activity_stats (account, campaign_activity_id, campaign_id,
                     {STATS_COLUMNS}, breakdown, last_sent_date, last_refresh_time, changed_at,
                     mirrored_at, seen_run)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                         $17, $17, $18)
                 ON CONFLICT (account, campaign_activity_id) DO UPDATE SET
                     campaign_id = excluded.campaign_id, sends = excluded.sends,
                     opens = excluded.opens, opens_all = excluded.opens_all,
                     clicks = excluded.clicks, clicks_all = excluded.clicks_all,
                     forwards = excluded.forwards, optouts = excluded.optouts,
                     abuse = excluded.abuse, bounces = excluded.bounces,
                     not_opened = excluded.not_opened, breakdown = excluded.breakdown,
                     last_sent_date = coalesce(excluded.last_sent_date,
                                               campaign_activity_stats.last_sent_date),
                     last_refresh_time = excluded.last_refresh_time,
                     changed_at = CASE WHEN $19 THEN excluded.changed_at
                                       ELSE campaign_activity_stats.changed_at END,
                     mirrored_at = excluded.mirrored_at, seen_run = excluded.seen_run"
            ))
            .await?;
        let history = tx
            .prepare_cached(&format!(
                "INSERT INTO campaign_activity_stats_history (account, campaign_activity_id,
                     run_id, taken_at, {STATS_COLUMNS}, breakdown)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 ON CONFLICT (account, campaign_activity_id, run_id) DO UPDATE SET
                     taken_at = excluded.taken_at, sends = excluded.sends,
                     opens = excluded.opens, opens_all = excluded.opens_all,
                     clicks = excluded.clicks, clicks_all = excluded.clicks_all,
                     forwards = excluded.forwards, optouts = excluded.optouts,
                     abuse = excluded.abuse, bounces = excluded.bounces,
                     not_opened = excluded.not_opened, breakdown = excluded.breakdown"
            ))
            .await?;
        let mut written = StatsWritten::default();
        for row in rows {
            let s = &row.stats;
            let split = SplitStats::of(&s.stats);
            let before = tx
                .query_opt(&select, &[&account, &s.campaign_activity_id])
                .await?
                .map(|r| {
                    let mut core = [0i64; 10];
                    for (i, slot) in core.iter_mut().enumerate() {
                        *slot = r.get(i);
                    }
                    SplitStats {
                        core,
                        breakdown: r.get::<_, Value>(10),
                    }
                });
            let changed = before.as_ref() != Some(&split);
            let c = &split.core;
            tx.execute(
                &upsert,
                &[
                    &account,
                    &s.campaign_activity_id,
                    &s.campaign_id,
                    &c[0],
                    &c[1],
                    &c[2],
                    &c[3],
                    &c[4],
                    &c[5],
                    &c[6],
                    &c[7],
                    &c[8],
                    &c[9],
                    &split.breakdown,
                    &row.last_sent_date,
                    &s.last_refresh_time,
                    &mark.now,
                    &mark.run_id,
                    &changed,
                ],
            )
            .await?;
            written.upserted += 1;
            if !changed {
                continue;
            }
            tx.execute(
                &history,
                &[
                    &account,
                    &s.campaign_activity_id,
                    &mark.run_id,
                    &mark.now,
                    &c[0],
                    &c[1],
                    &c[2],
                    &c[3],
                    &c[4],
                    &c[5],
                    &c[6],
                    &c[7],
                    &c[8],
                    &c[9],
                    &split.breakdown,
                ],
            )
            .await?;
            written.changed.push(s.campaign_activity_id.clone());
        }
        add_to_run(&tx, mark, 1, written.upserted, 0).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// See `MirrorDb::report_stats`.
    pub async fn report_stats(&self, account: &str) -> PgResult<Vec<StoredStats>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT campaign_activity_id, campaign_id, {STATS_COLUMNS}, breakdown,
                         last_sent_date, last_refresh_time, changed_at
                     FROM campaign_activity_stats WHERE account = $1
                     ORDER BY campaign_activity_id COLLATE \"C\""
                ),
                &[&account],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let mut core = [0i64; 10];
                for (i, slot) in core.iter_mut().enumerate() {
                    *slot = r.get(i + 2);
                }
                StoredStats {
                    campaign_activity_id: r.get(0),
                    campaign_id: r.get(1),
                    stats: SplitStats {
                        core,
                        breakdown: r.get::<_, Value>(12),
                    }
                    .join(),
                    last_sent_date: r.get(13),
                    last_refresh_time: r.get(14),
                    changed_at: r.get(15),
                }
            })
            .collect())
    }

    /// See `MirrorDb::write_tracking_page`.
    pub async fn write_tracking_page(
        &self,
        mark: &PageMark,
        activity: &str,
        events: &[EventRow],
        progress: &ReportProgress,
    ) -> PgResult<u64> {
        let account = mark.account.as_str();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        renew_lease(&tx, &mark.lease).await?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO tracking_events (account, campaign_activity_id, contact_id, kind,
                     occurred_at, url_id, occurrence, link_url, device_type, bounce_code,
                     opt_out_reason, mirrored_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        // The events of erased contacts stay out (the reports keep listing them).
        let ids: Vec<&str> = events.iter().map(|e| e.contact_id.as_str()).collect();
        let erased = super::contacts::erased_among(&tx, account, &ids).await?;
        let mut inserted = 0;
        for e in events.iter().filter(|e| !erased.contains(&e.contact_id)) {
            inserted += tx
                .execute(
                    &insert,
                    &[
                        &account,
                        &activity,
                        &e.contact_id,
                        &e.kind.as_str(),
                        &e.occurred_at,
                        &e.url_id,
                        &i64::from(e.occurrence),
                        &e.link_url,
                        &e.device_type,
                        &e.bounce_code,
                        &e.opt_out_reason,
                        &mark.now,
                    ],
                )
                .await?;
        }
        save_progress(&tx, mark, activity, progress).await?;
        add_to_run(&tx, mark, 1, inserted, 0).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// See `MirrorDb::tracking_events`.
    pub async fn tracking_events(&self, account: &str, activity: &str) -> PgResult<Vec<EventRow>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT contact_id, kind, occurred_at, url_id, occurrence, link_url, device_type,
                     bounce_code, opt_out_reason
                 FROM tracking_events WHERE account = $1 AND campaign_activity_id = $2
                 ORDER BY kind COLLATE \"C\", contact_id COLLATE \"C\", occurred_at,
                     url_id COLLATE \"C\", occurrence",
                &[&account, &activity],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(EventRow {
                    contact_id: r.get(0),
                    kind: EventKind::parse(r.get(1))?,
                    occurred_at: r.get(2),
                    url_id: r.get(3),
                    occurrence: u32::try_from(r.get::<_, i64>(4)).ok()?,
                    link_url: r.get(5),
                    device_type: r.get(6),
                    bounce_code: r.get(7),
                    opt_out_reason: r.get(8),
                })
            })
            .collect())
    }

    /// See `MirrorDb::write_activity_links`.
    pub async fn write_activity_links(
        &self,
        mark: &PageMark,
        activity: &str,
        links: &[LinkClickCount],
        progress: &ReportProgress,
    ) -> PgResult<u64> {
        let account = mark.account.as_str();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        renew_lease(&tx, &mark.lease).await?;
        tx.execute(
            "DELETE FROM campaign_activity_links
             WHERE account = $1 AND campaign_activity_id = $2",
            &[&account, &activity],
        )
        .await?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO campaign_activity_links (account, campaign_activity_id, url_id,
                     link_url, unique_clicks, link_tag, list_action, list_id, mirrored_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (account, campaign_activity_id, url_id) DO UPDATE SET
                     link_url = excluded.link_url, unique_clicks = excluded.unique_clicks,
                     link_tag = excluded.link_tag, list_action = excluded.list_action,
                     list_id = excluded.list_id, mirrored_at = excluded.mirrored_at",
            )
            .await?;
        for link in links {
            tx.execute(
                &insert,
                &[
                    &account,
                    &activity,
                    &link_key(link),
                    &link.link_url,
                    &link.unique_clicks,
                    &link.link_tag,
                    &link.list_action,
                    &link.list_id,
                    &mark.now,
                ],
            )
            .await?;
        }
        save_progress(&tx, mark, activity, progress).await?;
        add_to_run(&tx, mark, 1, links.len() as u64, 0).await?;
        tx.commit().await?;
        Ok(links.len() as u64)
    }

    /// See `MirrorDb::report_progress`.
    pub async fn report_progress(
        &self,
        account: &str,
        activity: &str,
    ) -> PgResult<Vec<ReportProgress>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT report, stats_seen, next_href, newest_at, done, rows_read
                 FROM report_progress WHERE account = $1 AND campaign_activity_id = $2
                 ORDER BY report COLLATE \"C\"",
                &[&account, &activity],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(ReportProgress {
                    part: ReportPart::parse(r.get(0))?,
                    stats_seen: r.get(1),
                    next_href: r.get(2),
                    newest_at: r.get(3),
                    done: r.get(4),
                    rows_read: r.get::<_, i64>(5).max(0) as u64,
                })
            })
            .collect())
    }
}

async fn save_progress(
    tx: &Transaction<'_>,
    mark: &PageMark,
    activity: &str,
    progress: &ReportProgress,
) -> PgResult<()> {
    tx.execute(
        "INSERT INTO report_progress (account, campaign_activity_id, report, stats_seen,
             next_href, newest_at, done, rows_read, run_id, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (account, campaign_activity_id, report) DO UPDATE SET
             stats_seen = excluded.stats_seen, next_href = excluded.next_href,
             newest_at = excluded.newest_at, done = excluded.done,
             rows_read = excluded.rows_read, run_id = excluded.run_id,
             updated_at = excluded.updated_at",
        &[
            &mark.account,
            &activity,
            &progress.part.as_str(),
            &progress.stats_seen,
            &progress.next_href,
            &progress.newest_at,
            &progress.done,
            &(progress.rows_read as i64),
            &mark.run_id,
            &mark.now,
        ],
    )
    .await?;
    Ok(())
}
