//! Segment reads (`/segments`, OpenAPI spec `getAllSegments` and `getSegmentById`, scope
//! `contact_data`). Segments are made in Constant Contact's UI; ctct-sync never writes them.

use crate::api::client::{AccountApi, Request};
use crate::api::error::ApiError;
use crate::api::model::{Segment, SegmentQuery, SegmentsPage};

const GET_SEGMENT: &str = "GET /segments/{segment_id}";

impl AccountApi {
    /// `GET /segments`: the first page of the live segments (deleted ones are not listed).
    pub async fn list_segments(&self, query: &SegmentQuery) -> Result<SegmentsPage, ApiError> {
        let mut request = Request::get("GET /segments", "/segments");
        for (key, value) in query.to_pairs() {
            request = request.query(key, value);
        }
        self.json(request).await
    }

    /// The page a previous page's `next` href points to (followed verbatim).
    pub async fn next_segments_page(&self, href: &str) -> Result<SegmentsPage, ApiError> {
        self.json(Request::href("GET /segments (next page)", href))
            .await
    }

    /// `GET /segments/{id}`, with its criteria; a deleted segment is answered too (spec).
    /// The id is an integer, so it needs no encoding.
    pub async fn get_segment(&self, segment_id: u32) -> Result<Segment, ApiError> {
        self.json(Request::get(GET_SEGMENT, format!("/segments/{segment_id}")))
            .await
    }
}
