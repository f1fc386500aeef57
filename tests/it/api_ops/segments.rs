//! Segments: paging with `limit` and `sort_by`, one segment with its criteria, an unknown id.

use ctct_sync::api::ApiError;
use ctct_sync::api::model::{SegmentQuery, SegmentSort};

use crate::support::api::TestApi;

const CRITERIA: &str = r#"{"version":"1.0.0","criteria":{"type":"and","group":[]}}"#;

#[tokio::test]
async fn segments_page_by_name_and_one_reads_with_its_criteria() {
    let test = TestApi::start().await;
    let admin = test.sandbox.admin();
    let account = admin.primary_account();
    for name in ["Delta", "alpha", "Charlie", "bravo", "Echo"] {
        admin
            .add_segment(&account, name, CRITERIA)
            .expect("a segment");
    }
    let api = test.api();
    let query = SegmentQuery {
        limit: Some(2),
        sort_by: Some(SegmentSort::Name),
    };
    let mut page = api.list_segments(&query).await.expect("first page");
    let mut names = Vec::new();
    let mut pages = 1;
    loop {
        names.extend(page.segments.iter().map(|s| s.name.clone()));
        assert!(page.segments.iter().all(|s| s.segment_criteria.is_none()));
        let Some(next) = page.next.take() else { break };
        page = api.next_segments_page(&next).await.expect("next page");
        pages += 1;
    }
    assert_eq!(names, ["alpha", "bravo", "Charlie", "Delta", "Echo"]);
    assert_eq!(
        pages, 3,
        "the sort order and the limit travel in the cursor"
    );

    let segment = api.get_segment(2).await.expect("segment 2");
    assert_eq!(segment.segment_id, 2);
    assert_eq!(segment.name, "alpha");
    assert_eq!(segment.segment_criteria.as_deref(), Some(CRITERIA));
    assert!(segment.created_at.is_some() && segment.edited_at.is_some());

    let error = api.get_segment(99).await.expect_err("unknown");
    assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    test.stop().await;
}
