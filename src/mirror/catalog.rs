//! Custom fields and lists: small (≤ 100 fields, ≤ 1,000 lists per account, §5–§6), so every
//! run lists them in full — one page each as a rule — whatever the mode. Lists are read with
//! `status=all` (deleted lists stay, with `deleted_at`) and their membership counts. Rows the
//! listing did not show are removed at its end with what pointed at them.

use super::Resource;
use super::pass::{Run, Stop, begin};
use super::sql::PageEnd;
use super::sql::cursor::Pass;
use super::sql::db::CatalogRows;
use crate::api::model::{ListQuery, ListStatus, MembershipCount};

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
    run.db()
        .write_catalog(run.page_mark(), pass.clone(), page.items, PageEnd::of(last))
        .await?;
    run.page_written(count);
    Ok(last)
}
