//! Custom fields, lists, tags and segments: small (≤ 100 fields, ≤ 1,000 lists per account,
//! §5–§6; tags 500 and segments 1,000 to a page), so every run lists them in full — one page
//! each as a rule — whatever the mode. Lists are read with `status=all` (deleted lists stay,
//! with `deleted_at`) and their membership counts, tags with their contact counts. The API
//! lists neither deleted tags nor deleted segments. Rows the listing did not show are removed
//! at its end with what pointed at them (a tag's taggings).
//!
//! The segments listing does not carry a segment's criteria: they are read with
//! `GET /segments/{segment_id}`, one request per segment, only for a segment new to the mirror
//! or edited since its criteria were read (its `edited_at` differs).

use super::Resource;
use super::pass::{Run, Stop, begin};
use super::sql::PageEnd;
use super::sql::cursor::Pass;
use super::sql::db::CatalogRows;
use crate::api::ApiError;
use crate::api::model::{ListQuery, ListStatus, MembershipCount, Segment, SegmentQuery};

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

pub(super) async fn run_tags(run: &Run<'_>) -> Result<(), Stop> {
    let mut pass = begin(run, Resource::Tags).await?;
    loop {
        run.check_cancelled()?;
        let page = match pass.next_href.clone() {
            None => run.call(run.api.list_tags_counted(Some(500))).await?,
            Some(href) => run.call(run.api.next_tags_page(&href)).await?,
        };
        let page = Page {
            items: page.tags,
            next: page.next,
        };
        if commit(run, &mut pass, page).await? {
            return Ok(());
        }
    }
}

pub(super) async fn run_segments(run: &Run<'_>) -> Result<(), Stop> {
    let mut pass = begin(run, Resource::Segments).await?;
    let query = SegmentQuery {
        limit: Some(1000),
        sort_by: None,
    };
    loop {
        run.check_cancelled()?;
        let page = match pass.next_href.clone() {
            None => run.call(run.api.list_segments(&query)).await?,
            Some(href) => run.call(run.api.next_segments_page(&href)).await?,
        };
        let mut items = page.segments;
        with_criteria(run, &mut items).await?;
        let page = Page {
            items,
            next: page.next,
        };
        if commit(run, &mut pass, page).await? {
            return Ok(());
        }
    }
}

/// Reads the criteria of the listed segments whose stored criteria are missing or older than
/// their `edited_at`; the others keep the criteria the mirror holds. A segment deleted since
/// the listing (404) is written without them (the next listing drops it).
async fn with_criteria(run: &Run<'_>, segments: &mut [Segment]) -> Result<(), Stop> {
    let stamps = run.db().segment_criteria_stamps(&run.account).await?;
    for segment in segments.iter_mut() {
        if segment.segment_criteria.is_some() {
            continue;
        }
        let read_at = stamps.get(&segment.segment_id).copied().flatten();
        if read_at.is_some() && read_at == segment.edited_at {
            continue;
        }
        run.check_cancelled()?;
        match run.call(run.api.get_segment(segment.segment_id)).await {
            Ok(full) => segment.segment_criteria = full.segment_criteria,
            Err(Stop::Api(ApiError::NotFound { .. })) => {}
            Err(stop) => return Err(stop),
        }
    }
    Ok(())
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
