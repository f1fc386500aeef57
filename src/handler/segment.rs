//! Segment commands against the API: `segment.list` and `segment.get`. Read only: segments
//! are made in Constant Contact's UI.

use serde_json::{Value, json};

use crate::api::model::SegmentQuery;

use super::{Ctx, HandleError, to_value};

/// Segments per page asked of the API: its own default and, as far as the spec tells, the
/// most a page holds.
const PAGE_LIMIT: u32 = 1_000;

/// `segment.list`: every live segment, through all pages, in the API's order (last edited
/// first). Deleted segments are not listed by the API.
pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Value, HandleError> {
    let mut page = ctx
        .api
        .list_segments(&SegmentQuery {
            limit: Some(PAGE_LIMIT),
            ..SegmentQuery::default()
        })
        .await?;
    let mut segments = std::mem::take(&mut page.segments);
    while let Some(next) = page.next.take() {
        page = ctx.api.next_segments_page(&next).await?;
        segments.append(&mut page.segments);
    }
    Ok(json!({"count": segments.len(), "segments": to_value(&segments)}))
}

/// `segment.get`: the segment with its criteria (also a deleted one, which the API still
/// answers for). An unknown id is `not_found`.
pub(super) async fn get(ctx: &Ctx<'_>, id: u32) -> Result<Value, HandleError> {
    let segment = ctx.api.get_segment(id).await?;
    Ok(json!({"segment_id": segment.segment_id, "segment": to_value(&segment)}))
}
