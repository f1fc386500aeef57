//! Custom fields and lists: small (≤ 100 fields, ≤ 1,000 lists per account, §5–§6), so every
//! run lists them in full — one page each as a rule — whatever the mode. Lists are read with
//! `status=all` (deleted lists stay, with `deleted_at`) and their membership counts. Rows the
//! listing did not show are removed at its end with what pointed at them.

use rusqlite::Connection;

use super::Resource;
use super::pass::{Run, Stop, begin};
use super::sql::catalog as sql;
use super::sql::cursor::{self, Pass};
use super::sql::{instant, page_transaction, runs};
use crate::api::model::{ContactList, CustomField, ListQuery, ListStatus, MembershipCount};
use crate::store::StoreError;

/// One listed page: the rows, and the next page's href.
pub(super) struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

pub(super) async fn run_custom_fields(run: &Run<'_>) -> Result<(), Stop> {
    let mut pass = begin(run, Resource::CustomFields).await?;
    loop {
        run.check_cancelled()?;
        let page = match pass.next_href.clone() {
            None => run.call(run.api.list_custom_fields(Some(100))).await?,
            Some(href) => run.call(run.api.next_custom_fields_page(&href)).await?,
        };
        let page = Page {
            items: page.custom_fields,
            next: page.next,
        };
        if commit(run, &mut pass, page, Resource::CustomFields).await? {
            return Ok(());
        }
    }
}

pub(super) async fn run_lists(run: &Run<'_>) -> Result<(), Stop> {
    let mut pass = begin(run, Resource::Lists).await?;
    let query = ListQuery {
        limit: Some(1000),
        include_membership_count: Some(MembershipCount::All),
        status: Some(ListStatus::All),
        ..ListQuery::default()
    };
    loop {
        run.check_cancelled()?;
        let page = match pass.next_href.clone() {
            None => run.call(run.api.list_lists(&query)).await?,
            Some(href) => run.call(run.api.next_lists_page(&href)).await?,
        };
        let page = Page {
            items: page.lists,
            next: page.next,
        };
        if commit(run, &mut pass, page, Resource::Lists).await? {
            return Ok(());
        }
    }
}

/// The rows a catalog page can hold.
trait CatalogRows: Send + 'static {
    fn write(
        conn: &Connection,
        account: &str,
        items: &[Self],
        seen_run: i64,
        now: &str,
    ) -> Result<u64, StoreError>
    where
        Self: Sized;
    fn remove_unseen(conn: &Connection, account: &str, seen_run: i64) -> Result<u64, StoreError>;
}

impl CatalogRows for CustomField {
    fn write(
        conn: &Connection,
        account: &str,
        items: &[Self],
        seen_run: i64,
        now: &str,
    ) -> Result<u64, StoreError> {
        sql::write_fields(conn, account, items, seen_run, now)
    }
    fn remove_unseen(conn: &Connection, account: &str, seen_run: i64) -> Result<u64, StoreError> {
        sql::remove_unseen_fields(conn, account, seen_run)
    }
}

impl CatalogRows for ContactList {
    fn write(
        conn: &Connection,
        account: &str,
        items: &[Self],
        seen_run: i64,
        now: &str,
    ) -> Result<u64, StoreError> {
        sql::write_lists(conn, account, items, seen_run, now)
    }
    fn remove_unseen(conn: &Connection, account: &str, seen_run: i64) -> Result<u64, StoreError> {
        sql::remove_unseen_lists(conn, account, seen_run)
    }
}

/// Writes a page with the pass's new position; on the last page, reconciles and completes the
/// pass. True when the pass is complete.
async fn commit<T: CatalogRows>(
    run: &Run<'_>,
    pass: &mut Pass,
    page: Page<T>,
    resource: Resource,
) -> Result<bool, Stop> {
    pass.next_href = page.next;
    let last = pass.next_href.is_none();
    let (account, state, run_id) = (run.account.clone(), pass.clone(), run.run_id);
    let (requests, now, lease) = (run.requests(), run.now(), run.lease());
    let count = page.items.len() as u64;
    run.db(move |conn| {
        page_transaction(conn, |tx| {
            cursor::renew_lease(tx, &lease)?;
            let upserted = T::write(tx, &account, &page.items, state.run_id, &instant(&now))?;
            let mut deleted = 0;
            if last {
                deleted = T::remove_unseen(tx, &account, state.run_id)?;
                cursor::complete(tx, &account, resource, None, now)?;
            } else {
                cursor::save_pass(tx, &account, resource, &state, now)?;
            }
            runs::add(tx, run_id, 1, upserted, deleted, requests)?;
            Ok(())
        })
    })
    .await?;
    run.page_written(count);
    Ok(last)
}
