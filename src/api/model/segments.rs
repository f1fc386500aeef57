//! Segments (`/segments`; OpenAPI spec `getAllSegments`, `getSegmentById`; the reference's
//! §0 table notes only that `segment_id` is an integer): a segment, a page of them and the
//! list query. Segments are made in Constant Contact's UI; ctct-sync only reads them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::model::enums::string_enum;
use crate::api::model::{paging, time};

/// A segment. `GET /segments` items carry no `segment_criteria`; `GET /segments/{id}` does.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Segment {
    /// An integer (int32), unlike the UUIDs of other resources.
    pub segment_id: u32,
    #[serde(default)]
    pub name: String,
    /// The contact selection criteria as the API gives them: JSON escaped into one string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_criteria: Option<String>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<DateTime<Utc>>,
    /// When the name or the criteria last changed.
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub edited_at: Option<DateTime<Utc>>,
}

string_enum! {
    /// The `sort_by` of `GET /segments`: by name ascending, or by last edit, newest first
    /// (the API's default).
    pub enum SegmentSort {
        Name = "name",
        Date = "date",
    }
}

/// Parameters of `GET /segments`. `None` fields are not sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentQuery {
    /// Segments per page; the API's default is 1,000.
    pub limit: Option<u32>,
    pub sort_by: Option<SegmentSort>,
}

impl SegmentQuery {
    /// The query parameters, in a stable order.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(sort) = &self.sort_by {
            pairs.push(("sort_by", sort.as_str().to_owned()));
        }
        pairs
    }
}

/// One page of `GET /segments` (deleted segments are never listed).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SegmentsPage {
    #[serde(default)]
    pub segments: Vec<Segment>,
    #[serde(rename = "_links", default, deserialize_with = "paging::next_href")]
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_page_of_segments_decodes_with_integer_ids_and_its_next_link() {
        let page: SegmentsPage = serde_json::from_value(json!({
            "segments": [
                {"name": "Re-engage", "created_at": "2019-04-25T11:08:00Z",
                 "edited_at": "2019-04-25T11:08:00Z", "segment_id": 14},
                {"segment_id": 15, "name": "Other", "edited_at": "not a time", "extra": true}
            ],
            "_links": {"next": {"href": "/v3/segments?cursor=x"}}
        }))
        .expect("decodes");
        assert_eq!(page.next.as_deref(), Some("/v3/segments?cursor=x"));
        assert_eq!(page.segments[0].segment_id, 14);
        assert!(page.segments[0].created_at.is_some());
        assert_eq!(page.segments[1].edited_at, None, "a bad time is left out");
        assert_eq!(page.segments[0].segment_criteria, None);
    }

    #[test]
    fn a_segment_keeps_its_criteria_as_the_string_the_api_gave() {
        let criteria = r#"{"version":"1.0.0","criteria":{"type":"and","group":[]}}"#;
        let segment: Segment = serde_json::from_value(json!({
            "segment_id": 14, "name": "Re-engage", "segment_criteria": criteria
        }))
        .expect("decodes");
        assert_eq!(
            serde_json::to_value(&segment).expect("encodes"),
            json!({"segment_id": 14, "name": "Re-engage", "segment_criteria": criteria})
        );
    }

    #[test]
    fn a_segment_id_that_is_not_a_whole_number_does_not_decode() {
        for id in [json!("14"), json!(-1), json!(1.5)] {
            let decoded = serde_json::from_value::<Segment>(json!({"segment_id": id}));
            assert!(decoded.is_err(), "{id}");
        }
    }

    #[test]
    fn the_segment_query_sends_only_what_was_set() {
        assert!(SegmentQuery::default().to_pairs().is_empty());
        let query = SegmentQuery {
            limit: Some(1000),
            sort_by: Some(SegmentSort::Name),
        };
        let expected: Vec<(&str, String)> =
            vec![("limit", "1000".into()), ("sort_by", "name".into())];
        assert_eq!(query.to_pairs(), expected);
    }
}
