//! Segments (`GET /segments`, `GET /segments/{segment_id}`; the OpenAPI spec's
//! `getAllSegments` and `getSegmentById`, scope `contact_data`): storage, JSON shapes and the
//! two read handlers. Segments are made in Constant Contact's UI; here the seeder and the admin
//! API (`SandboxAdmin::add_segment` / `delete_segment`) play that part.
//!
//! From the spec: ids are integers (int32), names unique; the list leaves deleted segments out,
//! while `GET /segments/{id}` still answers for them; `limit` defaults to 1,000 per page;
//! `sort_by=name` sorts by name ascending, `sort_by=date` (the default) by last edit,
//! newest first; pages follow `_links.next.href`. Not confirmed by the reference, and chosen
//! here: a `limit` above 1,000 or a `sort_by` of anything else is a 400, a path id that is not
//! a positive int32 is a 404 like any unknown id, and names are unique ignoring case.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::clock::{Millis, fmt_secs};
use super::errors::{ApiError, Area};
use super::http::{Links, OffsetPage, QueryMap, json};
use super::state::{Caller, Shared};

/// Segments on one page when `limit` is not given (the spec's default), and the most asked for.
const PAGE_LIMIT: u32 = 1_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SegmentRec {
    pub(crate) id: u32,
    pub(crate) name: String,
    /// Single-string escaped JSON, kept verbatim.
    pub(crate) criteria: String,
    pub(crate) created_at: Millis,
    pub(crate) edited_at: Millis,
    pub(crate) deleted_at: Option<Millis>,
}

/// One account's segments, deleted ones included (their details stay readable).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Segments {
    pub(crate) rows: Vec<SegmentRec>,
}

impl Segments {
    fn find(&self, id: u32) -> Option<&SegmentRec> {
        self.rows.iter().find(|s| s.id == id)
    }

    /// Adds a segment; `Err` names the problem (blank or taken name, blank criteria).
    pub(crate) fn add(&mut self, name: &str, criteria: &str, now: Millis) -> Result<u32, String> {
        let name = name.trim();
        if name.is_empty() || criteria.trim().is_empty() {
            return Err("a segment needs a name and segment_criteria".to_owned());
        }
        if criteria.chars().count() > 20_000 {
            return Err("segment_criteria exceeds 20,000 characters".to_owned());
        }
        let taken = self
            .rows
            .iter()
            .any(|s| s.deleted_at.is_none() && s.name.to_lowercase() == name.to_lowercase());
        if taken {
            return Err(format!("a segment named {name} already exists"));
        }
        // Ids are never reused: deleted segments keep theirs.
        let id = self.rows.iter().map(|s| s.id).max().unwrap_or(0) + 1;
        self.rows.push(SegmentRec {
            id,
            name: name.to_owned(),
            criteria: criteria.to_owned(),
            created_at: now,
            edited_at: now,
            deleted_at: None,
        });
        Ok(id)
    }

    /// Marks a live segment deleted; false when there is none with this id.
    pub(crate) fn delete(&mut self, id: u32, now: Millis) -> bool {
        match self
            .rows
            .iter_mut()
            .find(|s| s.id == id && s.deleted_at.is_none())
        {
            Some(segment) => {
                segment.deleted_at = Some(now);
                true
            }
            None => false,
        }
    }
}

/// An item of `GET /segments` (`getAllSegments_200_response_segments_inner`).
#[derive(Serialize)]
struct SegmentItem<'a> {
    segment_id: u32,
    name: &'a str,
    created_at: String,
    edited_at: String,
}

/// `GET /segments/{segment_id}` (`createSegment_201_response`): the item plus its criteria.
#[derive(Serialize)]
struct SegmentDetail<'a> {
    segment_id: u32,
    name: &'a str,
    segment_criteria: &'a str,
    created_at: String,
    edited_at: String,
}

fn item(rec: &SegmentRec) -> SegmentItem<'_> {
    SegmentItem {
        segment_id: rec.id,
        name: &rec.name,
        created_at: fmt_secs(rec.created_at),
        edited_at: fmt_secs(rec.edited_at),
    }
}

/// `GET /segments`: live segments, sorted, one page at a time.
pub(crate) async fn get_segments(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let (page, effective) =
        OffsetPage::from_query(Area::Contacts, &query, PAGE_LIMIT, PAGE_LIMIT, &["sort_by"])?;
    let by_name = match effective.get("sort_by").unwrap_or("date") {
        "date" => false,
        "name" => true,
        _ => {
            return Err(ApiError::validation(
                Area::Contacts,
                "sort_by must be name or date",
            ));
        }
    };
    shared.with_account(&caller, |account, _cx| {
        let mut live: Vec<&SegmentRec> = account
            .segments
            .rows
            .iter()
            .filter(|s| s.deleted_at.is_none())
            .collect();
        if by_name {
            live.sort_by_key(|s| (s.name.to_lowercase(), s.id));
        } else {
            live.sort_by_key(|s| std::cmp::Reverse((s.edited_at, s.id)));
        }
        let end = page.start.saturating_add(page.limit as usize);
        let segments: Vec<SegmentItem<'_>> = live
            .iter()
            .skip(page.start)
            .take(page.limit as usize)
            .map(|s| item(s))
            .collect();
        let next = (end < live.len()).then(|| page.cursor_at(end));
        // The spec's `_links` requires `next`: on the last page it is left out altogether.
        #[derive(Serialize)]
        struct Page<'a> {
            segments: Vec<SegmentItem<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            _links: Option<Links>,
        }
        let body = Page {
            segments,
            _links: next.map(|cursor| Links::next("/v3/segments", Some(cursor))),
        };
        Ok(json(StatusCode::OK, &body))
    })
}

/// `GET /segments/{segment_id}`: one segment with its criteria, deleted or not.
pub(crate) async fn get_segment(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(segment_id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(Area::Contacts, "Segment not found");
    let id = segment_id
        .parse::<u32>()
        .ok()
        .filter(|id| (1..=i32::MAX as u32).contains(id))
        .ok_or_else(not_found)?;
    shared.with_account(&caller, |account, _cx| {
        let rec = account.segments.find(id).ok_or_else(not_found)?;
        let body = SegmentDetail {
            segment_id: rec.id,
            name: &rec.name,
            segment_criteria: &rec.criteria,
            created_at: fmt_secs(rec.created_at),
            edited_at: fmt_secs(rec.edited_at),
        };
        Ok(json(StatusCode::OK, &body))
    })
}

/// The segments a seeded account has (criteria as in the spec's examples), the last one
/// deleted: `(name, criteria, deleted)`.
pub(crate) const SEEDED: [(&str, &str, bool); 4] = [
    (
        "Did not open the last 5 campaigns",
        r#"{"version":"1.0.0","criteria":{"type":"and","group":[{"source":"tracking","field":"not_opened","op":"contains-any","const_value":"last-n-campaigns","param":"5"}]}}"#,
        false,
    ),
    (
        "Opened the last campaign",
        r#"{"version":"1.0.0","criteria":{"type":"and","group":[{"source":"tracking","field":"opened","op":"contains-any","const_value":"last-n-campaigns","param":"1"}]}}"#,
        false,
    ),
    (
        "Clicked in the last 3 campaigns",
        r#"{"version":"1.0.0","criteria":{"type":"and","group":[{"source":"tracking","field":"clicked","op":"contains-any","const_value":"last-n-campaigns","param":"3"}]}}"#,
        false,
    ),
    (
        "Old promotion",
        r#"{"version":"1.0.0","criteria":{"type":"and","group":[{"source":"tracking","field":"opened","op":"contains-any","const_value":"last-n-campaigns","param":"10"}]}}"#,
        true,
    ),
];

/// Segments of a seeded account: [`SEEDED`], made a day apart ending at `now`.
pub(crate) fn seeded(now: Millis) -> Segments {
    let mut segments = Segments::default();
    let day = super::clock::MS_PER_DAY;
    for (n, (name, criteria, deleted)) in SEEDED.iter().enumerate() {
        let at = now - (SEEDED.len() - n) as Millis * day;
        if let Ok(id) = segments.add(name, criteria, at)
            && *deleted
        {
            segments.delete(id, now);
        }
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_up_and_are_not_reused_after_a_delete() {
        let mut segments = Segments::default();
        assert_eq!(segments.add("A", "{}", 0), Ok(1));
        assert!(segments.delete(1, 5));
        assert!(!segments.delete(1, 6), "already deleted");
        assert_eq!(segments.add("a", "{}", 7), Ok(2), "the name is free again");
        assert!(segments.add("A ", "{}", 8).is_err(), "taken, ignoring case");
        assert!(segments.add(" ", "{}", 8).is_err());
        assert!(segments.add("B", "", 8).is_err());
    }

    #[test]
    fn a_seeded_account_has_three_live_segments_and_one_deleted() {
        let segments = seeded(1_800_000_000_000);
        assert_eq!(segments.rows.len(), 4);
        let live = segments.rows.iter().filter(|s| s.deleted_at.is_none());
        assert_eq!(live.count(), 3);
        assert!(
            segments
                .rows
                .iter()
                .all(|s| s.created_at < 1_800_000_000_000)
        );
    }
}
