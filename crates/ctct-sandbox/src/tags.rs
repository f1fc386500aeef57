//! Contact tags (`/contact_tags`, `/contact_tags/{tag_id}`; the OpenAPI spec's `getAllTags`,
//! `postTag`, `getTag`, `putTag` and `deleteTag`, scope `contact_data`): storage, JSON shape
//! and handlers.
//!
//! From the spec: UUID ids; `name` required, 1 to 255 characters and unique (409 on a
//! duplicate, for POST and PUT); `tag_source` settable only on create; `limit` up to 500,
//! default 50, pages by `_links.next.href`; `include_count=true` adds `contacts_count`; DELETE
//! answers 202 with an activity that un-assigns the tag from its contacts. Not confirmed by
//! the reference, and chosen here: names are trimmed and unique ignoring case, the tag itself
//! is gone (404) as soon as the DELETE is accepted, its taggings when the activity completes,
//! and a path id that is not a UUID is a 404 like any unknown id.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::activities::{Job, start_delete};
use super::clock::{Millis, fmt_secs};
use super::errors::{ApiError, Area};
use super::http::{Links, OffsetPage, QueryMap, json, json_bytes, parse_body};
use super::state::{Account, Caller, Cx, Shared};

/// The longest tag name (spec: `maxLength: 255`).
const MAX_NAME: usize = 255;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TagRec {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) source: Option<String>,
    pub(crate) created_at: Millis,
    pub(crate) updated_at: Millis,
    pub(crate) deleted: bool,
}

/// One account's tags, deleted ones kept (ids are never reused).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Tags {
    pub(crate) rows: Vec<TagRec>,
}

impl Tags {
    fn live_index(&self, raw: &str) -> Result<usize, ApiError> {
        Uuid::parse_str(raw)
            .ok()
            .and_then(|id| self.find_live(&id))
            .ok_or_else(|| ApiError::not_found(Area::Contacts, "Tag not found"))
    }

    /// Index of the live (not deleted) tag with this id.
    pub(crate) fn find_live(&self, id: &Uuid) -> Option<usize> {
        self.rows.iter().position(|t| t.id == *id && !t.deleted)
    }

    fn name_taken(&self, name: &str, except: Option<usize>) -> bool {
        let name = name.to_lowercase();
        self.rows
            .iter()
            .enumerate()
            .any(|(i, t)| !t.deleted && Some(i) != except && t.name.to_lowercase() == name)
    }
}

#[derive(Serialize)]
struct TagJson<'a> {
    tag_id: Uuid,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag_source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contacts_count: Option<usize>,
    created_at: String,
    updated_at: String,
}

fn tag_json<'a>(account: &Account, rec: &'a TagRec, count: bool) -> TagJson<'a> {
    TagJson {
        tag_id: rec.id,
        name: &rec.name,
        tag_source: rec.source.as_deref(),
        contacts_count: count.then(|| {
            account
                .contacts
                .rows
                .iter()
                .filter(|c| c.extras().taggings.contains(&rec.id))
                .count()
        }),
        created_at: fmt_secs(rec.created_at),
        updated_at: fmt_secs(rec.updated_at),
    }
}

#[derive(Debug, Deserialize)]
struct TagIn {
    name: Option<String>,
    tag_source: Option<String>,
}

fn check_name(name: Option<&str>) -> Result<String, ApiError> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::validation(Area::Contacts, "name is required"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::validation(
            Area::Contacts,
            "name exceeds 255 characters",
        ));
    }
    Ok(name.to_owned())
}

fn taken(name: &str) -> ApiError {
    ApiError::conflict(Area::Contacts, format!("A tag named {name} already exists"))
}

/// `GET /contact_tags`: live tags in creation order, one page at a time.
pub(crate) async fn get_tags(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let (page, effective) =
        OffsetPage::from_query(Area::Contacts, &query, 50, 500, &["include_count"])?;
    let count = effective.bool(Area::Contacts, "include_count")?;
    shared.with_account(&caller, |account, _cx| {
        let mut tags = Vec::new();
        let mut next = None;
        for (index, rec) in account.tags.rows.iter().enumerate().skip(page.start) {
            if rec.deleted {
                continue;
            }
            if tags.len() == page.limit as usize {
                next = Some(page.cursor_at(index));
                break;
            }
            tags.push(tag_json(account, rec, count));
        }
        #[derive(Serialize)]
        struct Page<'a> {
            tags: Vec<TagJson<'a>>,
            _links: Links,
        }
        let body = Page {
            tags,
            _links: Links::next("/v3/contact_tags", next),
        };
        Ok(json(StatusCode::OK, &body))
    })
}

/// `POST /contact_tags` → 201; 409 when a live tag has the name.
pub(crate) async fn post_tag(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: TagIn = parse_body(Area::Contacts, &body)?;
    let name = check_name(input.name.as_deref())?;
    shared.with_account(&caller, |account, cx| {
        if account.tags.name_taken(&name, None) {
            return Err(taken(&name));
        }
        let id = account.rng.uuid();
        account.tags.rows.push(TagRec {
            id,
            name,
            source: input.tag_source.filter(|s| !s.trim().is_empty()),
            created_at: cx.now,
            updated_at: cx.now,
            deleted: false,
        });
        cx.effect(&account.id, "tag.created", id);
        let rec = account.tags.rows.last().expect("just pushed");
        Ok(json(StatusCode::CREATED, &tag_json(account, rec, false)))
    })
}

/// `GET /contact_tags/{tag_id}`.
pub(crate) async fn get_tag(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(tag_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let count = QueryMap::parse(raw.as_deref()).bool(Area::Contacts, "include_count")?;
    shared.with_account(&caller, |account, _cx| {
        let index = account.tags.live_index(&tag_id)?;
        let rec = &account.tags.rows[index];
        Ok(json(StatusCode::OK, &tag_json(account, rec, count)))
    })
}

/// `PUT /contact_tags/{tag_id}`: renames; `tag_source` cannot change (ignored).
pub(crate) async fn put_tag(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(tag_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: TagIn = parse_body(Area::Contacts, &body)?;
    let name = check_name(input.name.as_deref())?;
    shared.with_account(&caller, |account, cx| {
        let index = account.tags.live_index(&tag_id)?;
        if account.tags.name_taken(&name, Some(index)) {
            return Err(taken(&name));
        }
        let rec = &mut account.tags.rows[index];
        rec.name = name;
        rec.updated_at = cx.now;
        let id = rec.id;
        cx.effect(&account.id, "tag.updated", id);
        Ok(json(
            StatusCode::OK,
            &tag_json(account, &account.tags.rows[index], false),
        ))
    })
}

/// `DELETE /contact_tags/{tag_id}` → 202 with the activity that un-assigns the tag.
/// Deletes the live tag at `index` and answers its id (its taggings go when an activity
/// completes, [`crate::activities::untag_all`]): what `DELETE /contact_tags/{id}` and the bulk
/// `contacts_tags_delete` activity do to each tag.
pub(crate) fn delete(account: &mut Account, cx: &mut Cx<'_>, index: usize) -> Uuid {
    let rec = &mut account.tags.rows[index];
    rec.deleted = true;
    rec.updated_at = cx.now;
    let id = rec.id;
    cx.effect(&account.id, "tag.deleted", id);
    id
}

pub(crate) async fn delete_tag(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(tag_id): Path<String>,
) -> Result<Response, ApiError> {
    shared.with_account(&caller, |account, cx| {
        let index = account.tags.live_index(&tag_id)?;
        let id = delete(account, cx, index);
        let (activity_id, body) = start_delete(account, cx, Job::TagDelete(id))?;
        let mut response = json_bytes(StatusCode::ACCEPTED, body);
        if let Ok(location) = HeaderValue::from_str(&format!("/v3/activities/{activity_id}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    })
}
