//! [`MirrorDb`]: the one way into the mirror's tables. Each method is one job on the store's
//! thread composed of the statements of this folder; a page (or export batch) and everything
//! recorded with it (the pass's position, the renewed lease, the run's figures) is one method
//! and one transaction. No signature names a connection, a transaction or a rusqlite type, so
//! another engine can sit behind the same methods.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::campaigns::{self, FetchedActivity};
use super::contacts::{self, Written};
use super::cursor::{self, Cursor, Lease, Pass};
use super::erasure::{self, ErasedRows};
use super::error::MirrorDbError;
use super::lookup;
use super::page::{PageEnd, PageMark};
use super::postgres::{CatalogPage, PgMirrorDb};
use super::runs::{self, Figures, Finish, LastSuccess, NewRun};
use super::{catalog, checkpoint, instant, page_transaction};
use crate::api::model::{ContactList, CustomField, EmailCampaign, Segment, Tag};
use crate::mirror::{ContactRow, ContactsPath, Mode, Resource};
use crate::store::{Store, StoreError};

/// The mirror's tables, on SQLite or PostgreSQL. Cheap to clone; clones share the store's
/// thread (SQLite) or the pool (PostgreSQL).
#[derive(Clone, Debug)]
pub struct MirrorDb {
    pub(super) engine: Engine,
}

/// Where the mirror's tables are.
#[derive(Clone, Debug)]
pub(super) enum Engine {
    /// In the SQLite store, reached on its thread through the statements of this folder.
    Sqlite(Store),
    /// In a PostgreSQL schema.
    Postgres(PgMirrorDb),
}

impl MirrorDb {
    /// The mirror's tables in `store` (SQLite).
    pub fn new(store: Store) -> Self {
        Self {
            engine: Engine::Sqlite(store),
        }
    }

    /// The mirror's tables in a PostgreSQL schema (migrated with [`PgMirrorDb::migrate`]).
    pub fn postgres(db: PgMirrorDb) -> Self {
        Self {
            engine: Engine::Postgres(db),
        }
    }

    /// The SQLite store the tables live in (tests and tools read them directly); `None` when
    /// the mirror is on PostgreSQL.
    pub fn store(&self) -> Option<&Store> {
        match &self.engine {
            Engine::Sqlite(store) => Some(store),
            Engine::Postgres(_) => None,
        }
    }

    // --- runs ---

    /// Opens a run's `mirror_runs` row (`running`); runs of the resource left `running` by a
    /// process that stopped become `interrupted`. Returns the run id.
    pub async fn start_run(&self, run: NewRun) -> Result<i64, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => Ok(store.call(move |conn| runs::start(conn, &run)).await?),
            Engine::Postgres(pg) => Ok(pg.start_run(&run).await?),
        }
    }

    /// Records a run skipped because another run of the resource was going.
    pub async fn record_skipped(&self, run: NewRun) -> Result<i64, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => Ok(store.call(move |conn| runs::skipped(conn, &run)).await?),
            Engine::Postgres(pg) => Ok(pg.record_skipped(&run).await?),
        }
    }

    /// Records the mode a run really takes, its path and the run whose pass it continues.
    pub async fn describe_run(
        &self,
        run_id: i64,
        mode: Mode,
        path: Option<ContactsPath>,
        resumed_from: Option<i64>,
    ) -> Result<(), MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => Ok(store
                .call(move |conn| runs::describe(conn, run_id, mode, path, resumed_from))
                .await?),
            Engine::Postgres(pg) => Ok(pg.describe_run(run_id, mode, path, resumed_from).await?),
        }
    }

    /// Closes a run's row, gives its lease back (and on SQLite checkpoints the WAL); returns
    /// the run's stored figures.
    pub async fn finish_run(
        &self,
        run_id: i64,
        end: Finish,
        lease: Lease,
    ) -> Result<Figures, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => Ok(store
                .call(move |conn| {
                    let figures = runs::finish(conn, run_id, &end)?;
                    cursor::release_lease(conn, &lease)?;
                    checkpoint(conn)?;
                    Ok(figures)
                })
                .await?),
            Engine::Postgres(pg) => Ok(pg.finish_run(run_id, &end, &lease).await?),
        }
    }

    /// The last successful run of every resource and mode, over all accounts.
    pub async fn last_successes(&self) -> Result<Vec<LastSuccess>, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => Ok(store.call(|conn| runs::last_successes(conn)).await?),
            Engine::Postgres(pg) => Ok(pg.last_successes().await?),
        }
    }

    // --- cursors and leases ---

    /// Takes the lease unless another owner holds one that has not lapsed at `now`. On
    /// PostgreSQL "now" is the database's clock: the lease runs for `lease.until - now` from
    /// the database's `now()`, so hosts with skewed clocks still exclude each other.
    pub async fn take_lease(
        &self,
        lease: Lease,
        now: DateTime<Utc>,
    ) -> Result<bool, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => Ok(store
                .call(move |conn| cursor::take_lease(conn, &lease, now))
                .await?),
            Engine::Postgres(pg) => Ok(pg.take_lease(&lease, now).await?),
        }
    }

    /// Extends a lease this owner holds (on PostgreSQL by the lifetime it was taken with,
    /// from the database's `now()`).
    pub async fn renew_lease(&self, lease: Lease) -> Result<(), MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => Ok(store
                .call(move |conn| cursor::renew_lease(conn, &lease))
                .await?),
            Engine::Postgres(pg) => Ok(pg.renew_lease(&lease).await?),
        }
    }

    /// The stored state of `resource`; empty when it never ran.
    pub async fn load_cursor(
        &self,
        account: &str,
        resource: Resource,
    ) -> Result<Cursor, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let account = account.to_owned();
                Ok(store
                    .call(move |conn| cursor::load(conn, &account, resource))
                    .await?)
            }
            Engine::Postgres(pg) => Ok(pg.load_cursor(account, resource).await?),
        }
    }

    /// Every pass in progress: `(account, resource, mode)`.
    pub async fn pending_passes(&self) -> Result<Vec<(String, Resource, Mode)>, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => Ok(store.call(|conn| cursor::pending(conn)).await?),
            Engine::Postgres(pg) => Ok(pg.pending_passes().await?),
        }
    }

    /// The pending passes whose process died while running them (lease lapsed, never given
    /// back): another replica's scheduler continues them.
    pub async fn orphaned_passes(&self) -> Result<Vec<(String, Resource, Mode)>, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let now = Utc::now();
                Ok(store.call(move |conn| cursor::orphaned(conn, now)).await?)
            }
            Engine::Postgres(pg) => Ok(pg.orphaned_passes().await?),
        }
    }

    /// Renews the lease and saves the position of a contacts pass that wrote no rows (the
    /// export's activity id or file link).
    pub async fn save_contacts_pass(
        &self,
        mark: PageMark,
        pass: Pass,
    ) -> Result<(), MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => Ok(store
                .call(move |conn| {
                    cursor::renew_lease(conn, &mark.lease)?;
                    cursor::save_pass(conn, &mark.account, Resource::Contacts, &pass, mark.now)
                })
                .await?),
            Engine::Postgres(pg) => Ok(pg.save_contacts_pass(&mark, &pass).await?),
        }
    }

    /// Empties what an earlier full contacts pass of `account` held for its end (a new full
    /// pass starts from nothing).
    pub async fn clear_contacts_load(&self, account: &str) -> Result<(), MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let account = account.to_owned();
                Ok(store
                    .call(move |conn| contacts::clear_load(conn, &account))
                    .await?)
            }
            Engine::Postgres(pg) => Ok(pg.clear_contacts_load(account).await?),
        }
    }

    // --- erasures ---

    /// Erases `contact_id` of `account` from the mirror (`contact.erase`): its rows, custom
    /// field values, list memberships and tracking events removed, and its id tombstoned so
    /// that no later pass writes it back, in one transaction. Erasing it again removes
    /// whatever came back meanwhile (nothing, normally) and keeps the first tombstone.
    pub async fn erase_contact(
        &self,
        account: &str,
        contact_id: &str,
        command_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ErasedRows, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let (account, id, command) = (
                    account.to_owned(),
                    contact_id.to_owned(),
                    command_id.to_owned(),
                );
                Ok(store
                    .call(move |conn| {
                        let tx = conn
                            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                        let erased = erasure::erase(&tx, &account, &id, &command, &instant(&now))?;
                        tx.commit()?;
                        Ok(erased)
                    })
                    .await?)
            }
            Engine::Postgres(pg) => Ok(pg
                .erase_contact(account, contact_id, command_id, now)
                .await?),
        }
    }

    /// Whether `contact_id` of `account` was erased (`contact.erase`).
    pub async fn is_erased(&self, account: &str, contact_id: &str) -> Result<bool, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let (account, id) = (account.to_owned(), contact_id.to_owned());
                Ok(store
                    .call(move |conn| erasure::is_erased(conn, &account, &id))
                    .await?)
            }
            Engine::Postgres(pg) => Ok(pg.is_erased(account, contact_id).await?),
        }
    }

    // --- look-ups ---

    /// For each of `emails`, in order, the id of the one live contact of `account` the mirror
    /// holds with that address: not deleted, not erased, the address matched without regard
    /// to ASCII case (index `contacts_by_folded_email`). `None` when the mirror holds no such
    /// contact, or two whose addresses differ only in case. Whether the mirror is recent
    /// enough to be asked is the caller's (see `load_cursor`'s `updated_after`).
    pub async fn live_contact_ids_by_email(
        &self,
        account: &str,
        emails: Vec<String>,
    ) -> Result<Vec<Option<String>>, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let account = account.to_owned();
                Ok(store
                    .call(move |conn| lookup::live_ids_by_email(conn, &account, &emails))
                    .await?)
            }
            Engine::Postgres(pg) => Ok(pg.live_contact_ids_by_email(account, &emails).await?),
        }
    }

    // --- pages ---

    /// Writes one page (or export batch) of contacts with the pass's new position, in one
    /// transaction. On the last page the pass completes: a full pass removes the contacts it
    /// did not see, and the incremental cursor moves to the pass's start.
    pub async fn write_contacts(
        &self,
        mark: PageMark,
        pass: Pass,
        rows: Vec<ContactRow>,
        pages: u64,
        end: PageEnd,
    ) -> Result<Written, MirrorDbError> {
        let store = match &self.engine {
            Engine::Sqlite(store) => store,
            Engine::Postgres(pg) => {
                return Ok(pg.write_contacts(&mark, &pass, &rows, pages, end).await?);
            }
        };
        Ok(store
            .call(move |conn| {
                let full = pass.mode == Mode::Full;
                let seen = full.then_some(pass.run_id);
                let kind = PageKind {
                    resource: Resource::Contacts,
                    pages,
                    remove_unseen: full.then_some(contacts::remove_unseen as RemoveUnseen),
                    high_water: Some(pass.started_at),
                };
                let page = write_page(conn, mark, &pass, end, kind, |conn, account, now| {
                    // Erased contacts never come back (Constant Contact keeps them deleted,
                    // and the passes read deleted contacts too).
                    let rows = without_erased(conn, account, &rows)?;
                    // A full pass into an account the mirror has no contact of holds its
                    // pages and moves them in, in key order, with its last page.
                    let written = if full && contacts::holds_load(conn, account)? {
                        contacts::hold(conn, account, &rows)?;
                        contacts::Written {
                            upserted: rows.len() as u64,
                            deleted: 0,
                        }
                    } else {
                        contacts::write(conn, account, &rows, seen, now)?
                    };
                    let applied = if full && end == PageEnd::Last {
                        contacts::apply_load(conn, account, seen, now)?
                    } else {
                        contacts::Written::default()
                    };
                    Ok(PageRows {
                        value: (),
                        upserted: written.upserted,
                        deleted: written.deleted + applied.deleted,
                    })
                })?;
                Ok(Written {
                    upserted: page.upserted,
                    deleted: page.deleted,
                })
            })
            .await?)
    }

    /// Writes one page of a catalog listing (custom fields or lists) with the pass's
    /// position; the last page removes the rows the listing did not show and completes the
    /// pass.
    pub(crate) async fn write_catalog<T: CatalogRows>(
        &self,
        mark: PageMark,
        pass: Pass,
        items: Vec<T>,
        end: PageEnd,
    ) -> Result<(), MirrorDbError> {
        let store = match &self.engine {
            Engine::Sqlite(store) => store,
            Engine::Postgres(pg) => {
                return Ok(pg.write_catalog(&mark, &pass, T::page(items), end).await?);
            }
        };
        Ok(store
            .call(move |conn| {
                let kind = PageKind::listing(T::RESOURCE, T::remove_unseen);
                let run_id = pass.run_id;
                write_page(conn, mark, &pass, end, kind, |conn, account, now| {
                    Ok(PageRows {
                        value: (),
                        upserted: T::write(conn, account, &items, run_id, now)?,
                        deleted: 0,
                    })
                })?;
                Ok(())
            })
            .await?)
    }

    /// The `edited_at` each of `account`'s segments had when its stored criteria were read
    /// (`None`: never read), by segment id.
    pub async fn segment_criteria_stamps(
        &self,
        account: &str,
    ) -> Result<std::collections::HashMap<u32, Option<DateTime<Utc>>>, MirrorDbError> {
        match &self.engine {
            Engine::Sqlite(store) => {
                let account = account.to_owned();
                Ok(store
                    .call(move |conn| catalog::segment_criteria_stamps(conn, &account))
                    .await?)
            }
            Engine::Postgres(pg) => Ok(pg.segment_criteria_stamps(account).await?),
        }
    }

    /// Writes one page of listed campaigns with the pass's position (the last page removes
    /// the campaigns not listed and completes the pass). Returns the campaigns whose details
    /// are stale: `(campaign_id, listed updated_at)`.
    pub async fn write_campaigns(
        &self,
        mark: PageMark,
        pass: Pass,
        listed: Vec<EmailCampaign>,
        end: PageEnd,
    ) -> Result<Vec<(String, Option<String>)>, MirrorDbError> {
        let store = match &self.engine {
            Engine::Sqlite(store) => store,
            Engine::Postgres(pg) => {
                return Ok(pg.write_campaigns(&mark, &pass, &listed, end).await?);
            }
        };
        Ok(store
            .call(move |conn| {
                let kind = PageKind::listing(Resource::Campaigns, campaigns::remove_unseen);
                let run_id = pass.run_id;
                let page = write_page(conn, mark, &pass, end, kind, |conn, account, now| {
                    let written = campaigns::write_page(conn, account, &listed, run_id, now)?;
                    Ok(PageRows {
                        value: written.changed,
                        upserted: written.upserted,
                        deleted: 0,
                    })
                })?;
                Ok(page.value)
            })
            .await?)
    }

    /// Replaces one campaign's activities with the fetched ones, in one transaction with the
    /// renewed lease and the run's figures.
    pub async fn write_campaign_details(
        &self,
        mark: PageMark,
        campaign_id: String,
        updated_at: Option<String>,
        activities: Vec<FetchedActivity>,
    ) -> Result<(), MirrorDbError> {
        let store = match &self.engine {
            Engine::Sqlite(store) => store,
            Engine::Postgres(pg) => {
                return Ok(pg
                    .write_campaign_details(&mark, &campaign_id, updated_at.as_deref(), &activities)
                    .await?);
            }
        };
        Ok(store
            .call(move |conn| {
                let PageMark {
                    account,
                    run_id,
                    requests,
                    now,
                    lease,
                } = mark;
                page_transaction(conn, |tx| {
                    cursor::renew_lease(tx, &lease)?;
                    let written = campaigns::write_details(
                        tx,
                        &account,
                        &campaign_id,
                        updated_at.as_deref(),
                        &activities,
                        &instant(&now),
                    )?;
                    runs::add(tx, run_id, 0, written, 0, requests)?;
                    Ok(())
                })
            })
            .await?)
    }
}

/// Removes the rows of an account that a pass (its run id) did not see; returns how many.
type RemoveUnseen = fn(&Connection, &str, i64) -> Result<u64, StoreError>;

/// What a page is part of: its resource, how many API pages it counts for, and how its pass
/// ends on the last page (what removes the rows the pass did not see, where the incremental
/// cursor moves).
struct PageKind {
    resource: Resource,
    pages: u64,
    remove_unseen: Option<RemoveUnseen>,
    high_water: Option<DateTime<Utc>>,
}

impl PageKind {
    /// A page of a listing read in full every run: one API page, unseen rows removed at its
    /// end, no incremental cursor.
    fn listing(resource: Resource, remove_unseen: RemoveUnseen) -> Self {
        PageKind {
            resource,
            pages: 1,
            remove_unseen: Some(remove_unseen),
            high_water: None,
        }
    }
}

/// What a page's rows came to: the writer's own answer, and the rows upserted and deleted.
struct PageRows<T> {
    value: T,
    upserted: u64,
    deleted: u64,
}

/// One page in one transaction: the run's lease renewed, the rows written by `write` (given
/// the account and the page's time); then, on the last page, the rows the pass did not see
/// removed and the pass completed, on any other page the pass's position saved; and the page
/// added to the run's figures.
fn write_page<T>(
    conn: &mut Connection,
    mark: PageMark,
    pass: &Pass,
    end: PageEnd,
    kind: PageKind,
    write: impl FnOnce(&Connection, &str, &str) -> Result<PageRows<T>, StoreError>,
) -> Result<PageRows<T>, StoreError> {
    let PageMark {
        account,
        run_id,
        requests,
        now,
        lease,
    } = mark;
    page_transaction(conn, |tx| {
        cursor::renew_lease(tx, &lease)?;
        let mut rows = write(tx, &account, &instant(&now))?;
        if end == PageEnd::Last {
            if let Some(remove_unseen) = kind.remove_unseen {
                rows.deleted += remove_unseen(tx, &account, pass.run_id)?;
            }
            cursor::complete(tx, &account, kind.resource, kind.high_water, now)?;
        } else {
            cursor::save_pass(tx, &account, kind.resource, pass, now)?;
        }
        runs::add(
            tx,
            run_id,
            kind.pages,
            rows.upserted,
            rows.deleted,
            requests,
        )?;
        Ok(rows)
    })
}

/// The rows of a catalog listing (custom fields, lists, tags or segments): the resource they mirror and the
/// statements that write them and remove the ones a listing did not show.
pub(crate) trait CatalogRows: Send + Sized + 'static {
    const RESOURCE: Resource;
    /// The page as the PostgreSQL engine takes it.
    fn page(items: Vec<Self>) -> CatalogPage;
    fn write(
        conn: &Connection,
        account: &str,
        items: &[Self],
        seen_run: i64,
        now: &str,
    ) -> Result<u64, StoreError>;
    fn remove_unseen(conn: &Connection, account: &str, seen_run: i64) -> Result<u64, StoreError>;
}

impl CatalogRows for CustomField {
    const RESOURCE: Resource = Resource::CustomFields;
    fn page(items: Vec<Self>) -> CatalogPage {
        CatalogPage::Fields(items)
    }
    fn write(
        conn: &Connection,
        account: &str,
        items: &[Self],
        seen_run: i64,
        now: &str,
    ) -> Result<u64, StoreError> {
        catalog::write_fields(conn, account, items, seen_run, now)
    }
    fn remove_unseen(conn: &Connection, account: &str, seen_run: i64) -> Result<u64, StoreError> {
        catalog::remove_unseen_fields(conn, account, seen_run)
    }
}

impl CatalogRows for ContactList {
    const RESOURCE: Resource = Resource::Lists;
    fn page(items: Vec<Self>) -> CatalogPage {
        CatalogPage::Lists(items)
    }
    fn write(
        conn: &Connection,
        account: &str,
        items: &[Self],
        seen_run: i64,
        now: &str,
    ) -> Result<u64, StoreError> {
        catalog::write_lists(conn, account, items, seen_run, now)
    }
    fn remove_unseen(conn: &Connection, account: &str, seen_run: i64) -> Result<u64, StoreError> {
        catalog::remove_unseen_lists(conn, account, seen_run)
    }
}

/// `rows` without the contacts of `account` that were erased (read in the page's
/// transaction, so an erasure committed before the page is never undone by it).
fn without_erased<'r>(
    conn: &Connection,
    account: &str,
    rows: &'r [ContactRow],
) -> Result<std::borrow::Cow<'r, [ContactRow]>, StoreError> {
    let erased = erasure::erased_among(conn, account, rows.iter().map(|r| r.contact_id.as_str()))?;
    Ok(erasure::not_erased(rows, &erased, |r| &r.contact_id))
}

impl CatalogRows for Tag {
    const RESOURCE: Resource = Resource::Tags;
    fn page(items: Vec<Self>) -> CatalogPage {
        CatalogPage::Tags(items)
    }
    fn write(
        conn: &Connection,
        account: &str,
        items: &[Self],
        seen_run: i64,
        now: &str,
    ) -> Result<u64, StoreError> {
        catalog::write_tags(conn, account, items, seen_run, now)
    }
    fn remove_unseen(conn: &Connection, account: &str, seen_run: i64) -> Result<u64, StoreError> {
        catalog::remove_unseen_tags(conn, account, seen_run)
    }
}

impl CatalogRows for Segment {
    const RESOURCE: Resource = Resource::Segments;
    fn page(items: Vec<Self>) -> CatalogPage {
        CatalogPage::Segments(items)
    }
    fn write(
        conn: &Connection,
        account: &str,
        items: &[Self],
        seen_run: i64,
        now: &str,
    ) -> Result<u64, StoreError> {
        catalog::write_segments(conn, account, items, seen_run, now)
    }
    fn remove_unseen(conn: &Connection, account: &str, seen_run: i64) -> Result<u64, StoreError> {
        catalog::remove_unseen_segments(conn, account, seen_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::Trigger;

    type Outcome = Result<(), Box<dyn std::error::Error>>;

    fn lease(owner: &str, until: DateTime<Utc>) -> Lease {
        Lease {
            account: "acme".into(),
            resource: Resource::CustomFields,
            owner: owner.into(),
            until,
        }
    }

    #[tokio::test]
    async fn a_run_goes_through_the_typed_methods_from_lease_to_last_success() -> Outcome {
        let dir = tempfile::tempdir()?;
        let (store, _) = Store::open_mirror(&dir.path().join("mirror.db"))?;
        let db = MirrorDb::new(store);
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 2, 3, 4, 5).unwrap();
        let ttl = chrono::Duration::minutes(30);

        assert!(db.take_lease(lease("a", now + ttl), now).await?);
        assert!(
            !db.take_lease(lease("b", now + ttl), now).await?,
            "another owner waits while the lease holds"
        );

        let new = NewRun {
            account: "acme".into(),
            resource: Resource::CustomFields,
            mode: Mode::Full,
            trigger: Trigger::Cli,
            started_at: now,
        };
        let run_id = db.start_run(new.clone()).await?;
        db.describe_run(run_id, Mode::Full, None, None).await?;
        let pass = Pass::new(run_id, Mode::Full, now);
        let field: CustomField = serde_json::from_value(serde_json::json!({
            "custom_field_id": "f1", "label": "Tier", "name": "tier", "type": "string"
        }))?;
        let mark = PageMark {
            account: "acme".into(),
            run_id,
            requests: 1,
            now,
            lease: lease("a", now + ttl),
        };
        db.write_catalog(
            mark.clone(),
            pass.clone(),
            vec![field.clone()],
            PageEnd::More,
        )
        .await?;
        assert_eq!(
            db.pending_passes().await?,
            vec![("acme".to_owned(), Resource::CustomFields, Mode::Full)]
        );
        assert_eq!(
            db.load_cursor("acme", Resource::CustomFields).await?.pass,
            Some(pass.clone())
        );
        db.write_catalog(mark, pass, vec![field], PageEnd::Last)
            .await?;
        assert!(
            db.pending_passes().await?.is_empty(),
            "the last page completes the pass"
        );

        let end = Finish {
            outcome: crate::mirror::RunOutcome::Succeeded,
            error: None,
            resets_at: None,
            api_requests: 2,
            finished_at: now,
        };
        let figures = db.finish_run(run_id, end, lease("a", now + ttl)).await?;
        assert_eq!((figures.pages, figures.rows_upserted), (2, 2));
        assert_eq!(figures.api_requests, 2);
        assert!(
            db.take_lease(lease("b", now + ttl), now).await?,
            "finishing gives the lease back"
        );
        let last = db.last_successes().await?;
        assert_eq!(last.len(), 1);
        assert_eq!(
            (last[0].resource.as_str(), last[0].mode.as_str()),
            ("custom_fields", "full")
        );
        assert!(db.record_skipped(new).await? > run_id);
        Ok(())
    }
}
