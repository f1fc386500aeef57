//! Contact lists (reference §6): storage, JSON shape and the `/contact_lists` handlers.
//! Names are unique (case-insensitive) among live lists; at most 1,000 live lists; DELETE is
//! asynchronous (202 + a `list_delete` activity). Deleted lists keep their index so contacts'
//! memberships of them simply stop being reported.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::clock::{Millis, fmt_secs};
use super::errors::{ApiError, Area};
use super::http::{Links, OffsetPage, QueryMap, json, json_bytes, parse_body, path_uuid};
use super::state::{Account, Caller, Cx, Shared};

pub(crate) const MAX_LISTS: usize = 1_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ListRec {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) favorite: bool,
    pub(crate) created_at: Millis,
    pub(crate) updated_at: Millis,
    pub(crate) deleted_at: Option<Millis>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Lists {
    pub(crate) rows: Vec<ListRec>,
    #[serde(skip)]
    by_id: HashMap<Uuid, u32>,
}

impl Lists {
    pub(crate) fn rebuild_indexes(&mut self) {
        self.by_id = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, l)| (l.id, i as u32))
            .collect();
    }

    /// Index of a list, deleted or not.
    pub(crate) fn find(&self, id: &Uuid) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Index of a live list.
    pub(crate) fn find_live(&self, id: &Uuid) -> Option<u32> {
        self.find(id).filter(|&i| self.is_live(i))
    }

    pub(crate) fn is_live(&self, index: u32) -> bool {
        self.rows
            .get(index as usize)
            .is_some_and(|l| l.deleted_at.is_none())
    }

    pub(crate) fn id_of(&self, index: u32) -> Uuid {
        self.rows[index as usize].id
    }

    pub(crate) fn live_count(&self) -> usize {
        self.rows.iter().filter(|l| l.deleted_at.is_none()).count()
    }

    fn name_taken(&self, name: &str, except: Option<u32>) -> bool {
        self.rows.iter().enumerate().any(|(i, l)| {
            l.deleted_at.is_none()
                && Some(i as u32) != except
                && l.name.to_lowercase() == name.trim().to_lowercase()
        })
    }

    /// Adds a list (caller checked the name and the cap).
    pub(crate) fn insert(&mut self, rec: ListRec) -> u32 {
        let index = self.rows.len() as u32;
        self.by_id.insert(rec.id, index);
        self.rows.push(rec);
        index
    }
}

/// `(all, active)` member counts per list index, from one pass over the contacts.
fn membership_counts(account: &Account) -> (Vec<u32>, Vec<u32>) {
    let n = account.lists.rows.len();
    let (mut all, mut active) = (vec![0u32; n], vec![0u32; n]);
    for contact in account.contacts.rows.iter().filter(|c| !c.is_deleted()) {
        for &list in contact.lists.iter() {
            if let Some(slot) = all.get_mut(list as usize) {
                *slot += 1;
                if contact.permission.is_active() {
                    active[list as usize] += 1;
                }
            }
        }
    }
    (all, active)
}

#[derive(Serialize)]
struct ListJson<'a> {
    list_id: Uuid,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    favorite: bool,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    membership_count: Option<u32>,
}

fn list_json(rec: &ListRec, membership_count: Option<u32>) -> ListJson<'_> {
    ListJson {
        list_id: rec.id,
        name: &rec.name,
        description: rec.description.as_deref(),
        favorite: rec.favorite,
        created_at: fmt_secs(rec.created_at),
        updated_at: fmt_secs(rec.updated_at),
        deleted_at: rec.deleted_at.map(fmt_secs),
        membership_count,
    }
}

/// The full JSON of one list (admin snapshots).
pub(crate) fn list_value(rec: &ListRec) -> serde_json::Value {
    serde_json::to_value(list_json(rec, None)).unwrap_or_default()
}

#[derive(Debug, Deserialize)]
struct ListIn {
    name: Option<String>,
    description: Option<String>,
    favorite: Option<bool>,
}

fn check_list_in(body: &ListIn) -> Result<String, ApiError> {
    let name = body.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::validation(Area::Contacts, "name is required"));
    }
    if name.chars().count() > 255 {
        return Err(ApiError::validation(
            Area::Contacts,
            "name exceeds 255 characters",
        ));
    }
    Ok(name.to_owned())
}

/// Creates a list for the API or the seeder; `Err` on a taken name or the 1,000 cap.
pub(crate) fn create_list(
    account: &mut Account,
    cx: &mut Cx<'_>,
    name: &str,
    description: Option<String>,
    favorite: bool,
) -> Result<u32, ApiError> {
    if account.lists.name_taken(name, None) {
        return Err(ApiError::conflict(
            Area::Contacts,
            format!("A list named {name} already exists"),
        ));
    }
    if account.lists.live_count() >= MAX_LISTS {
        return Err(ApiError::validation(
            Area::Contacts,
            "The account already has the maximum of 1,000 lists",
        ));
    }
    let id = account.rng.uuid();
    let index = account.lists.insert(ListRec {
        id,
        name: name.to_owned(),
        description,
        favorite,
        created_at: cx.now,
        updated_at: cx.now,
        deleted_at: None,
    });
    cx.effect(&account.id, "list.created", id);
    Ok(index)
}

pub(crate) async fn get_lists(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let carried = [
        "include_count",
        "include_membership_count",
        "name",
        "status",
        "channel_type",
    ];
    let (page, effective) = OffsetPage::from_query(Area::Contacts, &query, 50, 1000, &carried)?;
    let status = effective.get("status").unwrap_or("active");
    if !matches!(status, "all" | "active" | "deleted") {
        return Err(ApiError::validation(
            Area::Contacts,
            "status must be all, active or deleted",
        ));
    }
    let counts_mode = effective.get("include_membership_count");
    if counts_mode.is_some_and(|m| m != "all" && m != "active") {
        return Err(ApiError::validation(
            Area::Contacts,
            "include_membership_count must be all or active",
        ));
    }
    let sms = effective.get("channel_type") == Some("sms");
    let include_count =
        query.get("cursor").is_none() && effective.bool(Area::Contacts, "include_count")?;
    let name = effective.get("name").map(str::to_lowercase);
    shared.with_account(&caller, |account, _cx| {
        let counts = counts_mode.map(|_| membership_counts(account));
        let matches = |rec: &&ListRec| {
            !sms && match status {
                "all" => true,
                "deleted" => rec.deleted_at.is_some(),
                _ => rec.deleted_at.is_none(),
            } && name.as_ref().is_none_or(|n| rec.name.to_lowercase() == *n)
        };
        let total = include_count.then(|| account.lists.rows.iter().filter(matches).count());
        let mut lists = Vec::new();
        let mut next = None;
        for (index, rec) in account.lists.rows.iter().enumerate().skip(page.start) {
            if !matches(&rec) {
                continue;
            }
            if lists.len() == page.limit as usize {
                next = Some(page.cursor_at(index));
                break;
            }
            let count = counts.as_ref().map(|(all, active)| {
                if counts_mode == Some("active") {
                    active[index]
                } else {
                    all[index]
                }
            });
            lists.push(list_json(rec, count));
        }
        #[derive(Serialize)]
        struct Page<'a> {
            lists: Vec<ListJson<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            lists_count: Option<usize>,
            _links: Links,
        }
        let body = Page {
            lists,
            lists_count: total,
            _links: Links::next("/v3/contact_lists", next),
        };
        Ok(json(StatusCode::OK, &body))
    })
}

pub(crate) async fn post_list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: ListIn = parse_body(Area::Contacts, &body)?;
    let name = check_list_in(&input)?;
    shared.with_account(&caller, |account, cx| {
        let index = create_list(
            account,
            cx,
            &name,
            input.description.clone(),
            input.favorite.unwrap_or(false),
        )?;
        let rec = &account.lists.rows[index as usize];
        Ok(json(StatusCode::CREATED, &list_json(rec, None)))
    })
}

fn live_index(account: &Account, raw: &str) -> Result<u32, ApiError> {
    let id = path_uuid(Area::Contacts, "list_id", raw)?;
    account
        .lists
        .find_live(&id)
        .ok_or_else(|| ApiError::not_found(Area::Contacts, "List not found"))
}

pub(crate) async fn get_list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(list_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let mode = query.get("include_membership_count").map(str::to_owned);
    shared.with_account(&caller, |account, _cx| {
        let index = live_index(account, &list_id)?;
        let count = match mode.as_deref() {
            None => None,
            Some("all") => Some(membership_counts(account).0[index as usize]),
            Some("active") => Some(membership_counts(account).1[index as usize]),
            Some(_) => {
                return Err(ApiError::validation(
                    Area::Contacts,
                    "include_membership_count must be all or active",
                ));
            }
        };
        let rec = &account.lists.rows[index as usize];
        Ok(json(StatusCode::OK, &list_json(rec, count)))
    })
}

pub(crate) async fn put_list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(list_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: ListIn = parse_body(Area::Contacts, &body)?;
    let name = check_list_in(&input)?;
    shared.with_account(&caller, |account, cx| {
        let index = live_index(account, &list_id)?;
        // PUT declares no 409 (spec): a taken name is a validation error here.
        if account.lists.name_taken(&name, Some(index)) {
            return Err(ApiError::validation(
                Area::Contacts,
                format!("A list named {name} already exists"),
            ));
        }
        let rec = &mut account.lists.rows[index as usize];
        rec.name = name;
        rec.description = input.description;
        rec.favorite = input.favorite.unwrap_or(false);
        rec.updated_at = cx.now;
        let id = rec.id;
        cx.effect(&account.id, "list.updated", id);
        let rec = &account.lists.rows[index as usize];
        Ok(json(StatusCode::OK, &list_json(rec, None)))
    })
}

/// Deletes the live list at `index` (its memberships stop being reported at once and are
/// dropped when a `list_delete` activity completes): what `DELETE /contact_lists/{id}` and the
/// bulk `list_delete` activity do to each list.
pub(crate) fn delete(account: &mut Account, cx: &mut Cx<'_>, index: u32) {
    let rec = &mut account.lists.rows[index as usize];
    rec.deleted_at = Some(cx.now);
    rec.updated_at = cx.now;
    let id = rec.id;
    cx.effect(&account.id, "list.deleted", id);
}

pub(crate) async fn delete_list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(list_id): Path<String>,
) -> Result<Response, ApiError> {
    shared.with_account(&caller, |account, cx| {
        let index = live_index(account, &list_id)?;
        delete(account, cx, index);
        let (activity_id, body) =
            super::activities::start_delete(account, cx, super::activities::Job::ListDelete)?;
        let mut response = json_bytes(StatusCode::ACCEPTED, body);
        if let Ok(location) = HeaderValue::from_str(&format!("/v3/activities/{activity_id}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    })
}
