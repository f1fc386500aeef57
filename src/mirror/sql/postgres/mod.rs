//! [`PgMirrorDb`]: the mirror's tables in a PostgreSQL schema, with the same methods and
//! semantics as the SQLite statements beside this folder. The pool it is given selects the
//! schema (every connection's search_path names it first); nothing here qualifies a name.
//!
//! Each method is one transaction. A page (or export batch) goes in with everything recorded
//! with it: the renewed lease, the rows, the pass's position or its end, the run's figures.
//! Contacts, their values and memberships are loaded with binary `COPY` into session-local
//! tables emptied at commit, then merged with `INSERT … SELECT … ON CONFLICT`. Leases are
//! kept on the database's clock (`now()`), never a host's.
//!
//! ```text
//! mod       PgMirrorDb, its errors, runs, cursors and leases, catalog and campaign pages
//! contacts  a page of contacts through COPY
//! erasure   erased contacts: removed and tombstoned; which ids of a page were erased
//! lookup    live contacts' ids by e-mail address (ASCII case folded), for commands
//! reports   campaign reports: statistics and their history, events, links, progress
//! migrate   the mirror schema's migration history (schema_migrations, advisory lock)
//! ```

mod contacts;
mod erasure;
mod error;
mod lookup;
mod migrate;
mod reports;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use chrono::{DateTime, SubsecRound, Utc};
use deadpool_postgres::{Pool, Transaction};
use tokio_postgres::Row;

use super::campaigns::FetchedActivity;
use super::contacts::Written;
use super::cursor::{Cursor, Lease, Pass};
use super::page::{PageEnd, PageMark};
use super::runs::{Figures, Finish, LastSuccess, NewRun};
use crate::api::model::time;
use crate::api::model::{CampaignStatus, ContactList, CustomField, EmailCampaign, Segment, Tag};
use crate::mirror::{ContactRow, ContactsPath, Mode, Resource};
use crate::store::MigrationReport;
pub use error::PgMirrorError;
use error::PgResult;

/// A catalog listing's page: custom fields, lists, tags or segments.
#[derive(Debug, Clone)]
pub enum CatalogPage {
    Fields(Vec<CustomField>),
    Lists(Vec<ContactList>),
    Tags(Vec<Tag>),
    Segments(Vec<Segment>),
}

/// The mirror's tables in the PostgreSQL schema the pool's connections are set to. Cheap to
/// clone; clones share the pool.
#[derive(Clone)]
pub struct PgMirrorDb {
    pool: Pool,
}

impl std::fmt::Debug for PgMirrorDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgMirrorDb")
            .field("pool_size", &status.size)
            .field("pool_max", &status.max_size)
            .finish()
    }
}

/// Which rows the end of a full pass removes.
#[derive(Debug, Clone, Copy)]
enum Unseen {
    Contacts,
    Fields,
    Lists,
    Tags,
    Segments,
    Campaigns,
}

/// What a page is part of (see the SQLite `PageKind`): its resource, how many API pages it
/// counts for, what its last page removes and where the incremental cursor moves then.
struct PageKind {
    resource: Resource,
    pages: u64,
    remove_unseen: Option<Unseen>,
    high_water: Option<DateTime<Utc>>,
}

impl PageKind {
    fn listing(resource: Resource, unseen: Unseen) -> Self {
        PageKind {
            resource,
            pages: 1,
            remove_unseen: Some(unseen),
            high_water: None,
        }
    }
}

/// An instant the API (or an export file) gave as text, for a `timestamptz` column.
fn parse_instant(what: &'static str, text: Option<&str>) -> PgResult<Option<DateTime<Utc>>> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => time::parse(text)
            .map(Some)
            .ok_or_else(|| PgMirrorError::Instant {
                what,
                value: text.to_owned(),
            }),
    }
}

impl PgMirrorDb {
    /// The mirror in the schema `pool`'s connections select (their search_path names it
    /// first). Call [`PgMirrorDb::migrate`] before any other method.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Creates the mirror schema if needed and applies the embedded mirror migrations it
    /// lacks, under an advisory lock; refuses a schema migrated by a newer ctct-sync or whose
    /// applied migrations were edited.
    pub async fn migrate(&self) -> PgResult<MigrationReport> {
        let mut client = self.pool.get().await?;
        migrate::apply_embedded(&mut client).await
    }

    // --- runs ---

    /// See `MirrorDb::start_run`.
    pub async fn start_run(&self, run: &NewRun) -> PgResult<i64> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE mirror_runs
             SET outcome = 'interrupted', finished_at = $3,
                 error = coalesce(error, 'the process stopped during the run')
             WHERE account = $1 AND resource = $2 AND outcome = 'running'",
            &[&run.account, &run.resource.as_str(), &run.started_at],
        )
        .await?;
        let id = insert_run(&tx, run, "running", None).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// See `MirrorDb::record_skipped`.
    pub async fn record_skipped(&self, run: &NewRun) -> PgResult<i64> {
        let client = self.pool.get().await?;
        insert_run(&client, run, "skipped", Some(run.started_at)).await
    }

    /// See `MirrorDb::describe_run`.
    pub async fn describe_run(
        &self,
        run_id: i64,
        mode: Mode,
        path: Option<ContactsPath>,
        resumed_from: Option<i64>,
    ) -> PgResult<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE mirror_runs SET mode = $2, path = $3, resumed_from = $4 WHERE id = $1",
                &[
                    &run_id,
                    &mode.as_str(),
                    &path.map(ContactsPath::as_str),
                    &resumed_from,
                ],
            )
            .await?;
        Ok(())
    }

    /// See `MirrorDb::finish_run`.
    pub async fn finish_run(&self, run_id: i64, end: &Finish, lease: &Lease) -> PgResult<Figures> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "UPDATE mirror_runs
                 SET outcome = $2, error = $3, resets_at = $4,
                     api_requests = greatest(api_requests, $5), finished_at = $6
                 WHERE id = $1
                 RETURNING pages, rows_upserted, rows_deleted, api_requests",
                &[
                    &run_id,
                    &end.outcome.as_str(),
                    &end.error,
                    &end.resets_at,
                    &(end.api_requests as i64),
                    &end.finished_at,
                ],
            )
            .await?;
        release_lease(&tx, lease).await?;
        tx.commit().await?;
        Ok(row.map(|r| figures(&r)).unwrap_or_default())
    }

    /// See `MirrorDb::last_successes`.
    pub async fn last_successes(&self) -> PgResult<Vec<LastSuccess>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT DISTINCT ON (resource, mode)
                        resource, mode, finished_at, pages, rows_upserted, rows_deleted,
                        api_requests
                 FROM mirror_runs WHERE outcome = 'succeeded' AND finished_at IS NOT NULL
                 ORDER BY resource, mode, finished_at DESC",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| LastSuccess {
                resource: r.get(0),
                mode: r.get(1),
                finished_at: r.get(2),
                pages: r.get(3),
                rows_upserted: r.get(4),
                rows_deleted: r.get(5),
                api_requests: r.get(6),
            })
            .collect())
    }

    // --- cursors and leases ---

    /// Takes the lease unless another owner holds one that has not lapsed on the database's
    /// clock. The lease runs for `lease.until - now` from the database's `now()`, and every
    /// renewal extends it by as much.
    pub async fn take_lease(&self, lease: &Lease, now: DateTime<Utc>) -> PgResult<bool> {
        let ttl_ms = (lease.until - now).num_milliseconds().max(0);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO mirror_cursors (account, resource, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (account, resource) DO NOTHING",
            &[&lease.account, &lease.resource.as_str(), &now],
        )
        .await?;
        // Row-locked: of two takers at once, the second re-reads the first's lease.
        let taken = tx
            .execute(
                "UPDATE mirror_cursors
                 SET lease_owner = $3, lease_ttl = $4::float8 * interval '1 millisecond',
                     lease_until = now() + $4::float8 * interval '1 millisecond'
                 WHERE account = $1 AND resource = $2
                   AND (lease_owner IS NULL OR lease_owner = $3 OR lease_until IS NULL
                        OR lease_until <= now())",
                &[
                    &lease.account,
                    &lease.resource.as_str(),
                    &lease.owner,
                    &(ttl_ms as f64),
                ],
            )
            .await?
            == 1;
        tx.commit().await?;
        Ok(taken)
    }

    /// Extends a lease this owner holds by the lifetime it was taken with.
    pub async fn renew_lease(&self, lease: &Lease) -> PgResult<()> {
        let client = self.pool.get().await?;
        renew_lease(&client, lease).await
    }

    /// See `MirrorDb::load_cursor`.
    pub async fn load_cursor(&self, account: &str, resource: Resource) -> PgResult<Cursor> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT updated_after, run_id, pass_mode, pass_path, pass_started_at,
                        pass_updated_after, next_href, export_activity_id, rows_done
                 FROM mirror_cursors WHERE account = $1 AND resource = $2",
                &[&account, &resource.as_str()],
            )
            .await?;
        let Some(row) = row else {
            return Ok(Cursor::default());
        };
        let run_id: Option<i64> = row.get(1);
        let mode: Option<String> = row.get(2);
        let path: Option<String> = row.get(3);
        let pass = match (run_id, mode.as_deref().and_then(Mode::parse)) {
            (Some(run_id), Some(mode)) => Some(Pass {
                run_id,
                mode,
                path: path.as_deref().and_then(ContactsPath::parse),
                started_at: row.get::<_, Option<DateTime<Utc>>>(4).unwrap_or_default(),
                updated_after: row.get(5),
                next_href: row.get(6),
                export_activity_id: row.get(7),
                rows_done: row.get::<_, i64>(8).max(0) as u64,
            }),
            _ => None,
        };
        Ok(Cursor {
            updated_after: row.get(0),
            pass,
        })
    }

    /// See `MirrorDb::pending_passes`.
    pub async fn pending_passes(&self) -> PgResult<Vec<(String, Resource, Mode)>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT account, resource, pass_mode FROM mirror_cursors
                 WHERE run_id IS NOT NULL AND pass_mode IS NOT NULL ORDER BY account, resource",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let (account, resource, mode): (String, String, String) =
                    (r.get(0), r.get(1), r.get(2));
                Some((account, Resource::parse(&resource)?, Mode::parse(&mode)?))
            })
            .collect())
    }

    /// See `MirrorDb::orphaned_passes`.
    pub async fn orphaned_passes(&self) -> PgResult<Vec<(String, Resource, Mode)>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT account, resource, pass_mode FROM mirror_cursors
                 WHERE run_id IS NOT NULL AND pass_mode IS NOT NULL
                   AND lease_owner IS NOT NULL AND lease_until <= now()
                 ORDER BY account, resource",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let (account, resource, mode): (String, String, String) =
                    (r.get(0), r.get(1), r.get(2));
                Some((account, Resource::parse(&resource)?, Mode::parse(&mode)?))
            })
            .collect())
    }

    /// See `MirrorDb::save_contacts_pass`.
    pub async fn save_contacts_pass(&self, mark: &PageMark, pass: &Pass) -> PgResult<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        renew_lease(&tx, &mark.lease).await?;
        save_pass(&tx, &mark.account, Resource::Contacts, pass, mark.now).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- pages ---

    /// See `MirrorDb::write_contacts`: one page or export batch, through `COPY`.
    pub async fn write_contacts(
        &self,
        mark: &PageMark,
        pass: &Pass,
        rows: &[ContactRow],
        pages: u64,
        end: PageEnd,
    ) -> PgResult<Written> {
        let full = pass.mode == Mode::Full;
        let kind = PageKind {
            resource: Resource::Contacts,
            pages,
            remove_unseen: full.then_some(Unseen::Contacts),
            high_water: Some(pass.started_at),
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        renew_lease(&tx, &mark.lease).await?;
        // Erased contacts never come back (Constant Contact keeps them deleted, and the
        // passes read deleted contacts too).
        let ids: Vec<&str> = rows.iter().map(|r| r.contact_id.as_str()).collect();
        let erased = contacts::erased_among(&tx, &mark.account, &ids).await?;
        let kept = crate::mirror::sql::erasure::not_erased(rows, &erased, |r| &r.contact_id);
        let rows = &kept[..];
        // A full pass into an account the mirror has no contact of holds its pages and moves
        // them in with its last page.
        let written = if full && contacts::holds_load(&tx, &mark.account).await? {
            contacts::hold(&tx, &mark.account, rows).await?
        } else {
            contacts::write(
                &tx,
                &mark.account,
                rows,
                full.then_some(pass.run_id),
                mark.now,
            )
            .await?
        };
        let applied = if full && end == PageEnd::Last {
            contacts::apply_load(&tx, &mark.account, Some(pass.run_id), mark.now).await?
        } else {
            Written::default()
        };
        let deleted = end_page(
            &tx,
            mark,
            pass,
            end,
            &kind,
            written.upserted,
            written.deleted + applied.deleted,
        )
        .await?;
        tx.commit().await?;
        Ok(Written {
            upserted: written.upserted,
            deleted,
        })
    }

    /// See `MirrorDb::clear_contacts_load`.
    pub async fn clear_contacts_load(&self, account: &str) -> PgResult<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        contacts::clear_load(&tx, account).await?;
        tx.commit().await?;
        Ok(())
    }

    /// See `MirrorDb::write_catalog`.
    pub async fn write_catalog(
        &self,
        mark: &PageMark,
        pass: &Pass,
        page: CatalogPage,
        end: PageEnd,
    ) -> PgResult<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        renew_lease(&tx, &mark.lease).await?;
        let (kind, upserted) = match &page {
            CatalogPage::Fields(fields) => (
                PageKind::listing(Resource::CustomFields, Unseen::Fields),
                write_fields(&tx, &mark.account, fields, pass.run_id, mark.now).await?,
            ),
            CatalogPage::Lists(lists) => (
                PageKind::listing(Resource::Lists, Unseen::Lists),
                write_lists(&tx, &mark.account, lists, pass.run_id, mark.now).await?,
            ),
            CatalogPage::Tags(tags) => (
                PageKind::listing(Resource::Tags, Unseen::Tags),
                write_tags(&tx, &mark.account, tags, pass.run_id, mark.now).await?,
            ),
            CatalogPage::Segments(segments) => (
                PageKind::listing(Resource::Segments, Unseen::Segments),
                write_segments(&tx, &mark.account, segments, pass.run_id, mark.now).await?,
            ),
        };
        end_page(&tx, mark, pass, end, &kind, upserted, 0).await?;
        tx.commit().await?;
        Ok(())
    }

    /// See `MirrorDb::segment_criteria_stamps`.
    pub async fn segment_criteria_stamps(
        &self,
        account: &str,
    ) -> PgResult<std::collections::HashMap<u32, Option<DateTime<Utc>>>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT segment_id, criteria_edited_at FROM segments WHERE account = $1",
                &[&account],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((u32::try_from(r.get::<_, i64>(0)).ok()?, r.get(1))))
            .collect())
    }

    /// See `MirrorDb::write_campaigns`.
    pub async fn write_campaigns(
        &self,
        mark: &PageMark,
        pass: &Pass,
        listed: &[EmailCampaign],
        end: PageEnd,
    ) -> PgResult<Vec<(String, Option<String>)>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        renew_lease(&tx, &mark.lease).await?;
        let account = mark.account.as_str();
        let fetched = tx
            .prepare_cached(
                "SELECT details_updated_at FROM campaigns WHERE account = $1 AND campaign_id = $2",
            )
            .await?;
        let upsert = tx
            .prepare_cached(
                "INSERT INTO campaigns (account, campaign_id, name, current_status, type,
                     type_code, created_at, updated_at, mirrored_at, seen_run)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (account, campaign_id) DO UPDATE SET
                     name = excluded.name, current_status = excluded.current_status,
                     type = excluded.type, type_code = excluded.type_code,
                     created_at = excluded.created_at, updated_at = excluded.updated_at,
                     mirrored_at = excluded.mirrored_at, seen_run = excluded.seen_run",
            )
            .await?;
        let mut changed = Vec::new();
        for campaign in listed {
            let last: Option<Option<DateTime<Utc>>> = tx
                .query_opt(&fetched, &[&account, &campaign.campaign_id])
                .await?
                .map(|r| r.get(0));
            tx.execute(
                &upsert,
                &[
                    &account,
                    &campaign.campaign_id,
                    &campaign.name,
                    &campaign.current_status.as_ref().map(|s| s.as_str()),
                    &campaign.campaign_type,
                    &campaign.type_code,
                    &campaign.created_at,
                    &campaign.updated_at,
                    &mark.now,
                    &pass.run_id,
                ],
            )
            .await?;
            // timestamptz keeps microseconds: compare at that precision.
            let listed_at = campaign.updated_at.map(|at| at.trunc_subsecs(6));
            let stale = match (last, listed_at) {
                (Some(Some(fetched_for)), Some(listed_at)) => fetched_for != listed_at,
                _ => true,
            };
            if !stale {
                continue;
            }
            if campaign.current_status == Some(CampaignStatus::Removed) {
                tx.execute(
                    "UPDATE campaign_activities SET current_status = 'REMOVED', mirrored_at = $3
                     WHERE account = $1 AND campaign_id = $2",
                    &[&account, &campaign.campaign_id, &mark.now],
                )
                .await?;
                mark_fetched(&tx, account, &campaign.campaign_id, campaign.updated_at).await?;
            } else {
                changed.push((
                    campaign.campaign_id.clone(),
                    campaign.updated_at.as_ref().map(super::instant),
                ));
            }
        }
        let kind = PageKind::listing(Resource::Campaigns, Unseen::Campaigns);
        end_page(&tx, mark, pass, end, &kind, listed.len() as u64, 0).await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// See `MirrorDb::write_campaign_details`.
    pub async fn write_campaign_details(
        &self,
        mark: &PageMark,
        campaign_id: &str,
        updated_at: Option<&str>,
        activities: &[FetchedActivity],
    ) -> PgResult<()> {
        let updated_at = parse_instant("campaign updated_at", updated_at)?;
        let account = mark.account.as_str();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        renew_lease(&tx, &mark.lease).await?;
        tx.execute(
            "DELETE FROM campaign_activities WHERE account = $1 AND campaign_id = $2",
            &[&account, &campaign_id],
        )
        .await?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO campaign_activities (account, campaign_activity_id, campaign_id,
                     role, current_status, format_type, from_name, from_email, reply_to_email,
                     subject, preheader, contact_list_ids, segment_ids, scheduled_date,
                     mirrored_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 ON CONFLICT (account, campaign_activity_id) DO UPDATE SET
                     campaign_id = excluded.campaign_id, role = excluded.role,
                     current_status = excluded.current_status,
                     format_type = excluded.format_type, from_name = excluded.from_name,
                     from_email = excluded.from_email, reply_to_email = excluded.reply_to_email,
                     subject = excluded.subject, preheader = excluded.preheader,
                     contact_list_ids = excluded.contact_list_ids,
                     segment_ids = excluded.segment_ids,
                     scheduled_date = excluded.scheduled_date,
                     mirrored_at = excluded.mirrored_at",
            )
            .await?;
        for fetched in activities {
            let a = &fetched.activity;
            let mut lists = a.contact_list_ids.clone();
            lists.sort();
            let scheduled = parse_instant("scheduled_date", fetched.scheduled_date.as_deref())?;
            tx.execute(
                &insert,
                &[
                    &account,
                    &a.campaign_activity_id,
                    &campaign_id,
                    &a.role.as_ref().map(|r| r.as_str()),
                    &a.current_status.as_ref().map(|s| s.as_str()),
                    &a.format_type,
                    &a.from_name,
                    &a.from_email,
                    &a.reply_to_email,
                    &a.subject,
                    &a.preheader.as_deref().filter(|p| !p.is_empty()),
                    &serde_json::json!(lists),
                    &serde_json::json!(a.segment_ids),
                    &scheduled,
                    &mark.now,
                ],
            )
            .await?;
        }
        mark_fetched(&tx, account, campaign_id, updated_at).await?;
        add_to_run(&tx, mark, 0, activities.len() as u64, 0).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A run's figures from a row of `pages, rows_upserted, rows_deleted, api_requests`.
fn figures(r: &Row) -> Figures {
    Figures {
        pages: r.get::<_, i64>(0).max(0) as u64,
        rows_upserted: r.get::<_, i64>(1).max(0) as u64,
        rows_deleted: r.get::<_, i64>(2).max(0) as u64,
        api_requests: r.get::<_, i64>(3).max(0) as u64,
    }
}

async fn insert_run(
    client: &impl deadpool_postgres::GenericClient,
    run: &NewRun,
    outcome: &str,
    finished_at: Option<DateTime<Utc>>,
) -> PgResult<i64> {
    let row = client
        .query_one(
            "INSERT INTO mirror_runs (account, resource, mode, trigger, started_at, finished_at,
                 outcome)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &run.account,
                &run.resource.as_str(),
                &run.mode.as_str(),
                &run.trigger.as_str(),
                &run.started_at,
                &finished_at,
                &outcome,
            ],
        )
        .await?;
    Ok(row.get(0))
}

async fn renew_lease(
    client: &impl deadpool_postgres::GenericClient,
    lease: &Lease,
) -> PgResult<()> {
    client
        .execute(
            "UPDATE mirror_cursors SET lease_until = now() + coalesce(lease_ttl, interval '0')
             WHERE account = $1 AND resource = $2 AND lease_owner = $3",
            &[&lease.account, &lease.resource.as_str(), &lease.owner],
        )
        .await?;
    Ok(())
}

async fn release_lease(tx: &Transaction<'_>, lease: &Lease) -> PgResult<()> {
    tx.execute(
        "UPDATE mirror_cursors SET lease_owner = NULL, lease_until = NULL, lease_ttl = NULL
         WHERE account = $1 AND resource = $2 AND lease_owner = $3",
        &[&lease.account, &lease.resource.as_str(), &lease.owner],
    )
    .await?;
    Ok(())
}

async fn save_pass(
    tx: &Transaction<'_>,
    account: &str,
    resource: Resource,
    pass: &Pass,
    now: DateTime<Utc>,
) -> PgResult<()> {
    tx.execute(
        "INSERT INTO mirror_cursors (account, resource, run_id, pass_mode, pass_path,
             pass_started_at, pass_updated_after, next_href, export_activity_id, rows_done,
             updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (account, resource) DO UPDATE SET
             run_id = excluded.run_id, pass_mode = excluded.pass_mode,
             pass_path = excluded.pass_path, pass_started_at = excluded.pass_started_at,
             pass_updated_after = excluded.pass_updated_after, next_href = excluded.next_href,
             export_activity_id = excluded.export_activity_id, rows_done = excluded.rows_done,
             updated_at = excluded.updated_at",
        &[
            &account,
            &resource.as_str(),
            &pass.run_id,
            &pass.mode.as_str(),
            &pass.path.map(ContactsPath::as_str),
            &pass.started_at,
            &pass.updated_after,
            &pass.next_href,
            &pass.export_activity_id,
            &(pass.rows_done as i64),
            &now,
        ],
    )
    .await?;
    Ok(())
}

async fn complete(
    tx: &Transaction<'_>,
    account: &str,
    resource: Resource,
    high_water: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> PgResult<()> {
    tx.execute(
        "INSERT INTO mirror_cursors (account, resource, updated_after, updated_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (account, resource) DO UPDATE SET
             updated_after = coalesce(excluded.updated_after, mirror_cursors.updated_after),
             run_id = NULL, pass_mode = NULL, pass_path = NULL, pass_started_at = NULL,
             pass_updated_after = NULL, next_href = NULL, export_activity_id = NULL,
             rows_done = 0, updated_at = excluded.updated_at",
        &[&account, &resource.as_str(), &high_water, &now],
    )
    .await?;
    Ok(())
}

/// Adds a page to its run's figures (`api_requests` is the run's total so far).
async fn add_to_run(
    tx: &Transaction<'_>,
    mark: &PageMark,
    pages: u64,
    upserted: u64,
    deleted: u64,
) -> PgResult<()> {
    tx.execute(
        "UPDATE mirror_runs
         SET pages = pages + $2, rows_upserted = rows_upserted + $3,
             rows_deleted = rows_deleted + $4, api_requests = greatest(api_requests, $5)
         WHERE id = $1",
        &[
            &mark.run_id,
            &(pages as i64),
            &(upserted as i64),
            &(deleted as i64),
            &(mark.requests as i64),
        ],
    )
    .await?;
    Ok(())
}

/// The end of a page's transaction: on the last page the rows the pass did not see removed
/// and the pass completed, on any other its position saved; the page added to the run's
/// figures. Returns the rows deleted, the page's and the removed ones.
async fn end_page(
    tx: &Transaction<'_>,
    mark: &PageMark,
    pass: &Pass,
    end: PageEnd,
    kind: &PageKind,
    upserted: u64,
    mut deleted: u64,
) -> PgResult<u64> {
    if end == PageEnd::Last {
        if let Some(unseen) = kind.remove_unseen {
            deleted += remove_unseen(tx, unseen, &mark.account, pass.run_id).await?;
        }
        complete(tx, &mark.account, kind.resource, kind.high_water, mark.now).await?;
    } else {
        save_pass(tx, &mark.account, kind.resource, pass, mark.now).await?;
    }
    add_to_run(tx, mark, kind.pages, upserted, deleted).await?;
    Ok(deleted)
}

/// Removes the rows of `account` the full pass `seen_run` did not see, with what hangs on
/// them; returns how many rows of the resource (for campaigns: campaigns and activities).
async fn remove_unseen(
    tx: &Transaction<'_>,
    unseen: Unseen,
    account: &str,
    seen_run: i64,
) -> PgResult<u64> {
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&account, &seen_run];
    let (dependents, parents): (&[&str], &str) = match unseen {
        Unseen::Contacts => (
            // Contacts noted unchanged in contacts_seen (by a SQLite pass a store copy
            // brought here) count as seen.
            &[
                "DELETE FROM contact_custom_field_values WHERE account = $1 AND contact_id IN (
                     SELECT contact_id FROM contacts
                     WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2)
                       AND contact_id NOT IN (
                           SELECT contact_id FROM contacts_seen WHERE account = $1))",
                "DELETE FROM contact_list_memberships WHERE account = $1 AND contact_id IN (
                     SELECT contact_id FROM contacts
                     WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2)
                       AND contact_id NOT IN (
                           SELECT contact_id FROM contacts_seen WHERE account = $1))",
                "DELETE FROM contact_taggings WHERE account = $1 AND contact_id IN (
                     SELECT contact_id FROM contacts
                     WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2)
                       AND contact_id NOT IN (
                           SELECT contact_id FROM contacts_seen WHERE account = $1))",
            ],
            "DELETE FROM contacts WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2)
               AND contact_id NOT IN (SELECT contact_id FROM contacts_seen WHERE account = $1)",
        ),
        Unseen::Fields => (
            &["DELETE FROM contact_custom_field_values
               WHERE account = $1 AND custom_field_id IN (
                   SELECT custom_field_id FROM custom_fields
                   WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2))"],
            "DELETE FROM custom_fields
             WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2)",
        ),
        Unseen::Lists => (
            &["DELETE FROM contact_list_memberships
               WHERE account = $1 AND list_id IN (
                   SELECT list_id FROM contact_lists
                   WHERE account = $1
                     AND (seen_run IS NULL OR seen_run <> $2 OR deleted_at IS NOT NULL))"],
            "DELETE FROM contact_lists
             WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2)",
        ),
        Unseen::Tags => (
            &["DELETE FROM contact_taggings
               WHERE account = $1 AND tag_id IN (
                   SELECT tag_id FROM contact_tags
                   WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2))"],
            "DELETE FROM contact_tags WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2)",
        ),
        Unseen::Segments => (
            &[],
            "DELETE FROM segments WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2)",
        ),
        Unseen::Campaigns => (
            &[],
            "DELETE FROM campaigns WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2)",
        ),
    };
    let mut removed = 0;
    if let Unseen::Campaigns = unseen {
        removed += tx
            .execute(
                "DELETE FROM campaign_activities WHERE account = $1 AND campaign_id IN (
                     SELECT campaign_id FROM campaigns
                     WHERE account = $1 AND (seen_run IS NULL OR seen_run <> $2))",
                &params,
            )
            .await?;
    }
    for statement in dependents {
        tx.execute(*statement, &params).await?;
    }
    removed += tx.execute(parents, &params).await?;
    if let Unseen::Contacts = unseen {
        tx.execute("DELETE FROM contacts_seen WHERE account = $1", &[&account])
            .await?;
    }
    Ok(removed)
}

async fn write_fields(
    tx: &Transaction<'_>,
    account: &str,
    fields: &[CustomField],
    seen_run: i64,
    now: DateTime<Utc>,
) -> PgResult<u64> {
    let upsert = tx
        .prepare_cached(
            "INSERT INTO custom_fields (account, custom_field_id, name, label, type, created_at,
                 updated_at, mirrored_at, seen_run)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (account, custom_field_id) DO UPDATE SET
                 name = excluded.name, label = excluded.label, type = excluded.type,
                 created_at = excluded.created_at, updated_at = excluded.updated_at,
                 mirrored_at = excluded.mirrored_at, seen_run = excluded.seen_run",
        )
        .await?;
    for field in fields {
        tx.execute(
            &upsert,
            &[
                &account,
                &field.custom_field_id,
                &field.name.clone().unwrap_or_default(),
                &field.label,
                &Some(field.field_type.as_str()).filter(|t| !t.is_empty()),
                &field.created_at,
                &field.updated_at,
                &now,
                &seen_run,
            ],
        )
        .await?;
    }
    Ok(fields.len() as u64)
}

async fn write_lists(
    tx: &Transaction<'_>,
    account: &str,
    lists: &[ContactList],
    seen_run: i64,
    now: DateTime<Utc>,
) -> PgResult<u64> {
    let upsert = tx
        .prepare_cached(
            "INSERT INTO contact_lists (account, list_id, name, description, favorite,
                 membership_count, created_at, updated_at, deleted_at, mirrored_at, seen_run)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (account, list_id) DO UPDATE SET
                 name = excluded.name, description = excluded.description,
                 favorite = excluded.favorite, membership_count = excluded.membership_count,
                 created_at = excluded.created_at, updated_at = excluded.updated_at,
                 deleted_at = excluded.deleted_at, mirrored_at = excluded.mirrored_at,
                 seen_run = excluded.seen_run",
        )
        .await?;
    for list in lists {
        tx.execute(
            &upsert,
            &[
                &account,
                &list.list_id,
                &list.name,
                &list.description.as_deref().filter(|d| !d.is_empty()),
                &list.favorite,
                &list.membership_count.map(|c| c as i64),
                &list.created_at,
                &list.updated_at,
                &list.deleted_at,
                &now,
                &seen_run,
            ],
        )
        .await?;
    }
    Ok(lists.len() as u64)
}

async fn write_tags(
    tx: &Transaction<'_>,
    account: &str,
    tags: &[Tag],
    seen_run: i64,
    now: DateTime<Utc>,
) -> PgResult<u64> {
    let upsert = tx
        .prepare_cached(
            "INSERT INTO contact_tags (account, tag_id, name, tag_source, contacts_count,
                 created_at, updated_at, mirrored_at, seen_run)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (account, tag_id) DO UPDATE SET
                 name = excluded.name, tag_source = excluded.tag_source,
                 contacts_count = excluded.contacts_count, created_at = excluded.created_at,
                 updated_at = excluded.updated_at, mirrored_at = excluded.mirrored_at,
                 seen_run = excluded.seen_run",
        )
        .await?;
    for tag in tags {
        tx.execute(
            &upsert,
            &[
                &account,
                &tag.tag_id,
                &tag.name,
                &tag.tag_source.as_deref().filter(|s| !s.is_empty()),
                &tag.contacts_count.map(|c| c as i64),
                &tag.created_at,
                &tag.updated_at,
                &now,
                &seen_run,
            ],
        )
        .await?;
    }
    Ok(tags.len() as u64)
}

/// A segment's criteria as `jsonb`: the API's JSON text parsed (text that is not JSON is kept
/// as a JSON string).
fn criteria_json(criteria: Option<&str>) -> Option<serde_json::Value> {
    criteria.map(|text| {
        serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
    })
}

async fn write_segments(
    tx: &Transaction<'_>,
    account: &str,
    segments: &[Segment],
    seen_run: i64,
    now: DateTime<Utc>,
) -> PgResult<u64> {
    let upsert = tx
        .prepare_cached(
            "INSERT INTO segments (account, segment_id, name, segment_criteria, created_at,
                 edited_at, criteria_edited_at, mirrored_at, seen_run)
             VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $4::jsonb IS NULL THEN NULL::timestamptz ELSE $6::timestamptz END,
                 $7, $8)
             ON CONFLICT (account, segment_id) DO UPDATE SET
                 name = excluded.name,
                 segment_criteria = coalesce(excluded.segment_criteria, segments.segment_criteria),
                 created_at = excluded.created_at, edited_at = excluded.edited_at,
                 criteria_edited_at = CASE WHEN excluded.segment_criteria IS NULL
                     THEN segments.criteria_edited_at ELSE excluded.criteria_edited_at END,
                 mirrored_at = excluded.mirrored_at, seen_run = excluded.seen_run",
        )
        .await?;
    for segment in segments {
        tx.execute(
            &upsert,
            &[
                &account,
                &i64::from(segment.segment_id),
                &segment.name,
                &criteria_json(segment.segment_criteria.as_deref()),
                &segment.created_at,
                &segment.edited_at,
                &now,
                &seen_run,
            ],
        )
        .await?;
    }
    Ok(segments.len() as u64)
}

async fn mark_fetched(
    tx: &Transaction<'_>,
    account: &str,
    campaign_id: &str,
    updated_at: Option<DateTime<Utc>>,
) -> PgResult<()> {
    tx.execute(
        "UPDATE campaigns SET details_updated_at = $3 WHERE account = $1 AND campaign_id = $2",
        &[&account, &campaign_id, &updated_at],
    )
    .await?;
    Ok(())
}
