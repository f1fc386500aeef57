//! Custom fields and lists: small (≤ 100 fields, ≤ 1,000 lists per account, §5–§6), so every
//! run lists them in full — one page each as a rule — whatever the mode. Lists are read with
//! `status=all` (deleted lists stay, with `deleted_at`) and their membership counts. Rows the
//! listing did not show are removed at its end with what pointed at them.

use super::Resource;
use super::pass::{Run, Stop, begin};
use super::sql::cursor::Pass;
use super::sql::{MirrorDb, PageEnd, PageMark};
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
        if commit(run, &mut pass, page).await? {
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
        if commit(run, &mut pass, page).await? {
            return Ok(());
        }
    }
}

/// The rows a catalog page can hold, and the method of [`MirrorDb`] that writes them.
trait CatalogRows: Sized {
    fn write(
        db: &MirrorDb,
        mark: PageMark,
        pass: Pass,
        items: Vec<Self>,
        end: PageEnd,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + '_;
}

impl CatalogRows for CustomField {
    fn write(
        db: &MirrorDb,
        mark: PageMark,
        pass: Pass,
        items: Vec<Self>,
        end: PageEnd,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + '_ {
        db.write_custom_fields(mark, pass, items, end)
    }
}

impl CatalogRows for ContactList {
    fn write(
        db: &MirrorDb,
        mark: PageMark,
        pass: Pass,
        items: Vec<Self>,
        end: PageEnd,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + '_ {
        db.write_lists(mark, pass, items, end)
    }
}

/// Writes a page with the pass's new position; on the last page, reconciles and completes the
/// pass. True when the pass is complete.
async fn commit<T: CatalogRows>(
    run: &Run<'_>,
    pass: &mut Pass,
    page: Page<T>,
) -> Result<bool, Stop> {
    pass.next_href = page.next;
    let last = pass.next_href.is_none();
    let count = page.items.len() as u64;
    T::write(
        run.db(),
        run.page_mark(),
        pass.clone(),
        page.items,
        PageEnd::of(last),
    )
    .await?;
    run.page_written(count);
    Ok(last)
}
