//! Campaigns and their activities. A listed campaign is upserted from the list page; its
//! details (activities) are fetched and written only when its `updated_at` differs from the
//! one they were last fetched for (`details_updated_at`). A `Removed` campaign's activities
//! cannot be read any more (404): the mirrored ones are kept and marked `REMOVED`.

use rusqlite::{Connection, params};

use super::instant;
use crate::api::model::{CampaignActivity, CampaignStatus, EmailCampaign};
use crate::store::StoreError;

/// What a list page asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageWrite {
    pub upserted: u64,
    /// Campaigns whose details must be fetched: `(campaign_id, listed updated_at)`.
    pub changed: Vec<(String, Option<String>)>,
}

/// Upserts a page of listed campaigns, marks Removed ones' activities, and returns the
/// campaigns whose details are stale.
pub fn write_page(
    conn: &Connection,
    account: &str,
    campaigns: &[EmailCampaign],
    seen_run: i64,
    now: &str,
) -> Result<PageWrite, StoreError> {
    let mut fetched = conn.prepare_cached(
        "SELECT details_updated_at FROM campaigns WHERE account = ?1 AND campaign_id = ?2",
    )?;
    let mut upsert = conn.prepare_cached(
        "INSERT INTO campaigns (account, campaign_id, name, current_status, type, type_code,
             created_at, updated_at, mirrored_at, seen_run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (account, campaign_id) DO UPDATE SET
             name = excluded.name, current_status = excluded.current_status,
             type = excluded.type, type_code = excluded.type_code,
             created_at = excluded.created_at, updated_at = excluded.updated_at,
             mirrored_at = excluded.mirrored_at, seen_run = excluded.seen_run",
    )?;
    let mut write = PageWrite::default();
    for campaign in campaigns {
        let updated_at = campaign.updated_at.as_ref().map(instant);
        let last: Option<Option<String>> = {
            let mut rows = fetched.query(params![account, campaign.campaign_id])?;
            match rows.next()? {
                Some(row) => Some(row.get(0)?),
                None => None,
            }
        };
        upsert.execute(params![
            account,
            campaign.campaign_id,
            campaign.name,
            campaign.current_status.as_ref().map(|s| s.as_str()),
            campaign.campaign_type,
            campaign.type_code,
            campaign.created_at.as_ref().map(instant),
            updated_at,
            now,
            seen_run
        ])?;
        write.upserted += 1;
        let stale = match (&last, &updated_at) {
            (Some(Some(fetched_for)), Some(listed)) => fetched_for != listed,
            _ => true,
        };
        if !stale {
            continue;
        }
        if campaign.current_status == Some(CampaignStatus::Removed) {
            conn.execute(
                "UPDATE campaign_activities SET current_status = 'REMOVED', mirrored_at = ?3
                 WHERE account = ?1 AND campaign_id = ?2",
                params![account, campaign.campaign_id, now],
            )?;
            mark_fetched(conn, account, &campaign.campaign_id, updated_at.as_deref())?;
        } else {
            write
                .changed
                .push((campaign.campaign_id.clone(), updated_at));
        }
    }
    Ok(write)
}

fn mark_fetched(
    conn: &Connection,
    account: &str,
    campaign_id: &str,
    updated_at: Option<&str>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE campaigns SET details_updated_at = ?3 WHERE account = ?1 AND campaign_id = ?2",
        params![account, campaign_id, updated_at],
    )?;
    Ok(())
}

/// One activity as fetched, with its schedule when it is scheduled.
#[derive(Debug, Clone)]
pub struct FetchedActivity {
    pub activity: CampaignActivity,
    pub scheduled_date: Option<String>,
}

/// Replaces a campaign's activities with the fetched ones and records that its details are
/// current for `updated_at`. Returns the activities written.
pub fn write_details(
    conn: &Connection,
    account: &str,
    campaign_id: &str,
    updated_at: Option<&str>,
    activities: &[FetchedActivity],
    now: &str,
) -> Result<u64, StoreError> {
    conn.execute(
        "DELETE FROM campaign_activities WHERE account = ?1 AND campaign_id = ?2",
        params![account, campaign_id],
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO campaign_activities (account, campaign_activity_id, campaign_id,
             role, current_status, format_type, from_name, from_email, reply_to_email, subject,
             preheader, contact_list_ids, segment_ids, scheduled_date, mirrored_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for fetched in activities {
        let a = &fetched.activity;
        let mut lists = a.contact_list_ids.clone();
        lists.sort();
        insert.execute(params![
            account,
            a.campaign_activity_id,
            campaign_id,
            a.role.as_ref().map(|r| r.as_str()),
            a.current_status.as_ref().map(|s| s.as_str()),
            a.format_type,
            a.from_name,
            a.from_email,
            a.reply_to_email,
            a.subject,
            a.preheader.as_deref().filter(|p| !p.is_empty()),
            serde_json::to_string(&lists).unwrap_or_else(|_| "[]".into()),
            serde_json::to_string(&a.segment_ids).unwrap_or_else(|_| "[]".into()),
            fetched.scheduled_date,
            now
        ])?;
    }
    mark_fetched(conn, account, campaign_id, updated_at)?;
    Ok(activities.len() as u64)
}

/// Removes campaigns (and their activities) the listing `seen_run` did not show.
pub fn remove_unseen(conn: &Connection, account: &str, seen_run: i64) -> Result<u64, StoreError> {
    let activities = conn.execute(
        "DELETE FROM campaign_activities
         WHERE account = ?1 AND campaign_id IN (
             SELECT campaign_id FROM campaigns
             WHERE account = ?1 AND (seen_run IS NULL OR seen_run <> ?2))",
        params![account, seen_run],
    )?;
    let campaigns = conn.execute(
        "DELETE FROM campaigns WHERE account = ?1 AND (seen_run IS NULL OR seen_run <> ?2)",
        params![account, seen_run],
    )?;
    Ok((activities + campaigns) as u64)
}
