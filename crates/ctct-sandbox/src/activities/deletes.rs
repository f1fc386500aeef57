//! Bulk delete activities: `POST /activities/contact_delete`, `POST /activities/list_delete`,
//! `POST /activities/contacts_tags_delete` and `POST /activities/custom_fields_delete` (the
//! spec's `createDeleteActivity`, `createListDeleteActivity`, `createTagDeleteActivity` and
//! `postCustomFieldDelete`, bodies `createDeleteActivity_request`,
//! `createListDeleteActivity_request`, `createTagDeleteActivity_request` and
//! `postCustomFieldDelete_request`, scope `contact_data`).
//!
//! From the spec: `contact_delete` takes `contact_ids` (up to 500 UUIDs) or `list_ids` (up to
//! 50; every member of the lists is deleted), mutually exclusive; `list_delete` takes
//! `list_ids` (up to 100); `contacts_tags_delete` takes `tag_ids` (up to 500) and deleted tags
//! are removed from their contacts; `custom_fields_delete` takes `custom_field_ids` (the
//! schema says `maxItems: 0`, its description and the reference "up to 100": the sandbox
//! takes 100). Each answers 201 with an activity shaped as its own `*_201_response`:
//! `contact_delete`'s `status` has `items_total_count` (contacts), `items_completed_count` and
//! `list_count` (given only for the `list_ids` form); `list_delete`'s has only `list_count`,
//! the lists deleted; `contacts_tags_delete` answers `createTagRemoveActivity_201_response`
//! (`items_total_count`, `items_completed_count`, tags); `custom_fields_delete`'s has no
//! `status`. Only `custom_fields_delete` documents 404.
//!
//! Chosen here, not confirmed by the reference: an absent or empty array, an id that is not a
//! UUID, both `contact_ids` and `list_ids`, or more ids than the limit is a 400 naming the
//! field; an unknown id is a 404 naming it, for the whole request, before any activity starts
//! (lists, tags and custom fields already deleted are unknown, as their single DELETE says; a
//! contact already deleted is accepted and counted completed, deleting twice ends the same);
//! repeated ids count once. `contact_delete` by `list_ids` deletes the lists' members at the
//! time of the request (`items_total_count`), not whoever joins the lists later. Nothing is
//! deleted until the activity completes; then each item goes exactly as its single DELETE
//! does it (`DELETE /contacts/{id}`: soft delete with `deleted_at`, lists stripped;
//! `DELETE /contact_lists/{id}`: memberships dropped; `DELETE /contact_tags/{id}`: taggings
//! dropped; `DELETE /contact_custom_fields/{id}`: contacts' values no longer reported), and an
//! item someone else deleted meanwhile is counted completed. Reads (`GET /activities/{id}`,
//! `GET /activities`) use the generic status: `items_total_count` and `items_completed_count`
//! for all four, plus `list_count` for `list_delete` (lists deleted so far) and for
//! `contact_delete` by lists.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Counters, Job, Shape, created, drop_dead_memberships, ids, untag_all};
use crate::errors::{ApiError, Area};
use crate::http::parse_body;
use crate::state::{Account, Caller, Cx, Shared};

/// Most contacts one `contact_delete` names (spec: `contact_ids` `maxItems: 500`).
const MAX_CONTACTS: usize = 500;
/// Most lists whose members one `contact_delete` deletes (spec: `list_ids` `maxItems: 50`).
const MAX_MEMBER_LISTS: usize = 50;
/// Most lists one `list_delete` deletes (spec: `list_ids` `maxItems: 100`).
const MAX_LISTS: usize = 100;
/// Most tags one `contacts_tags_delete` deletes (spec: `TagIdList500Limit`).
const MAX_TAGS: usize = 500;
/// Most custom fields one `custom_fields_delete` deletes (the spec's description and the
/// reference: up to 100; its schema's `maxItems: 0` is taken as an error).
const MAX_FIELDS: usize = 100;

/// What a bulk delete activity deletes when it completes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum DeleteSpec {
    /// `contact_delete`: the contacts named, or the members of `lists` lists at the time of
    /// the request (`lists` is 0 for the `contact_ids` form).
    Contacts { contacts: Vec<Uuid>, lists: u32 },
    /// `list_delete`.
    Lists(Vec<Uuid>),
    /// `contacts_tags_delete`.
    Tags(Vec<Uuid>),
    /// `custom_fields_delete`.
    CustomFields(Vec<Uuid>),
}

impl DeleteSpec {
    /// The activity's name in effects (`<name>.created`, `<name>.completed`): its endpoint's.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            DeleteSpec::Contacts { .. } => "contact_delete",
            DeleteSpec::Lists(_) => "list_delete",
            DeleteSpec::Tags(_) => "contacts_tags_delete",
            DeleteSpec::CustomFields(_) => "custom_fields_delete",
        }
    }
}

#[derive(Debug, Deserialize)]
struct ContactDeleteIn {
    contact_ids: Option<Vec<String>>,
    list_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct ListDeleteIn {
    list_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct TagDeleteIn {
    tag_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct FieldDeleteIn {
    custom_field_ids: Option<Vec<String>>,
}

/// The checked `contact_delete` body: `(contact ids, list ids)`, one of them empty.
fn check_contacts(input: ContactDeleteIn) -> Result<(Vec<Uuid>, Vec<Uuid>), ApiError> {
    match (input.contact_ids, input.list_ids) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            Area::Contacts,
            "contact_ids and list_ids are mutually exclusive; send one of them",
        )),
        (None, None) => Err(ApiError::validation(
            Area::Contacts,
            "contact_ids or list_ids is required",
        )),
        (contacts @ Some(_), None) => Ok((ids("contact_ids", contacts, MAX_CONTACTS)?, Vec::new())),
        (None, lists) => Ok((Vec::new(), ids("list_ids", lists, MAX_MEMBER_LISTS)?)),
    }
}

/// 404 naming the first of `items` that `live` does not find.
fn all_known(what: &str, items: &[Uuid], live: impl Fn(&Uuid) -> bool) -> Result<(), ApiError> {
    match items.iter().find(|id| !live(id)) {
        Some(id) => Err(ApiError::not_found(
            Area::Contacts,
            format!("{what} not found: {id}"),
        )),
        None => Ok(()),
    }
}

/// The contacts a `contact_delete` deletes, checked against the account: the named ones
/// (each must exist, deleted or not) or the current members of the named live lists.
fn contacts_of(
    account: &Account,
    contacts: Vec<Uuid>,
    lists: &[Uuid],
) -> Result<Vec<Uuid>, ApiError> {
    if lists.is_empty() {
        all_known("Contact", &contacts, |id| {
            account.contacts.find(id).is_some()
        })?;
        return Ok(contacts);
    }
    let mut indexes = Vec::with_capacity(lists.len());
    for list in lists {
        let index = account.lists.find_live(list).ok_or_else(|| {
            ApiError::not_found(Area::Contacts, format!("List not found: {list}"))
        })?;
        indexes.push(index);
    }
    Ok(account
        .contacts
        .rows
        .iter()
        .filter(|c| !c.is_deleted() && c.lists.iter().any(|l| indexes.contains(l)))
        .map(|c| c.id)
        .collect())
}

/// A bulk delete's `status` (`Null`: none): each 201 as its spec response has it
/// (`createDeleteActivity_201_response_status`, `createListDeleteActivity_201_response_status`,
/// `createTagRemoveActivity_201_response_status`, none for `postCustomFieldDelete`), reads
/// with the generic counts (see the module doc).
pub(crate) fn status(spec: &DeleteSpec, shape: Shape, c: &Counters, done: i64) -> Value {
    let mut status = json!({
        "items_total_count": c.items_total,
        "items_completed_count": done,
    });
    match (spec, shape) {
        (DeleteSpec::Contacts { lists: 0, .. }, _) => {}
        (DeleteSpec::Contacts { .. }, _) => status["list_count"] = c.lists.into(),
        (DeleteSpec::Lists(_), Shape::Created) => status = json!({"list_count": done}),
        (DeleteSpec::Lists(_), _) => status["list_count"] = done.into(),
        (DeleteSpec::CustomFields(_), Shape::Created) => status = Value::Null,
        (DeleteSpec::Tags(_) | DeleteSpec::CustomFields(_), _) => {}
    }
    status
}

/// Checks `spec` against the account, queues its activity and answers the 201.
fn start(account: &mut Account, cx: &mut Cx<'_>, spec: DeleteSpec) -> Result<Response, ApiError> {
    let counters = match &spec {
        DeleteSpec::Contacts { contacts, lists } => Counters {
            items_total: contacts.len() as u32,
            lists: *lists,
            ..Counters::default()
        },
        DeleteSpec::Lists(lists) => {
            all_known("List", lists, |id| account.lists.find_live(id).is_some())?;
            Counters {
                items_total: lists.len() as u32,
                ..Counters::default()
            }
        }
        DeleteSpec::Tags(tags) => {
            all_known("Tag", tags, |id| account.tags.find_live(id).is_some())?;
            Counters {
                items_total: tags.len() as u32,
                ..Counters::default()
            }
        }
        DeleteSpec::CustomFields(fields) => {
            all_known("Custom field", fields, |id| {
                account.fields.find_live(id).is_some()
            })?;
            Counters {
                items_total: fields.len() as u32,
                ..Counters::default()
            }
        }
    };
    let kind = format!("{}.created", spec.kind());
    created(account, cx, Job::BulkDelete(spec), counters, &kind)
}

/// `POST /activities/contact_delete` → 201 with the activity.
pub(crate) async fn post_contact_delete(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: ContactDeleteIn = parse_body(Area::Contacts, &body)?;
    let (contacts, lists) = check_contacts(input)?;
    shared.with_account(&caller, |account, cx| {
        let contacts = contacts_of(account, contacts, &lists)?;
        let spec = DeleteSpec::Contacts {
            contacts,
            lists: lists.len() as u32,
        };
        start(account, cx, spec)
    })
}

/// `POST /activities/list_delete` → 201 with the activity.
pub(crate) async fn post_list_delete(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: ListDeleteIn = parse_body(Area::Contacts, &body)?;
    let lists = ids("list_ids", input.list_ids, MAX_LISTS)?;
    shared.with_account(&caller, |account, cx| {
        start(account, cx, DeleteSpec::Lists(lists))
    })
}

/// `POST /activities/contacts_tags_delete` → 201 with the activity.
pub(crate) async fn post_tags_delete(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: TagDeleteIn = parse_body(Area::Contacts, &body)?;
    let tags = ids("tag_ids", input.tag_ids, MAX_TAGS)?;
    shared.with_account(&caller, |account, cx| {
        start(account, cx, DeleteSpec::Tags(tags))
    })
}

/// `POST /activities/custom_fields_delete` → 201 with the activity.
pub(crate) async fn post_custom_fields_delete(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: FieldDeleteIn = parse_body(Area::Contacts, &body)?;
    let fields = ids("custom_field_ids", input.custom_field_ids, MAX_FIELDS)?;
    shared.with_account(&caller, |account, cx| {
        start(account, cx, DeleteSpec::CustomFields(fields))
    })
}

/// Deletes a completed activity's items as their single DELETEs do; answers how many were not
/// completed and the activity errors naming them (only a contact the account no longer holds
/// at all: one deleted meanwhile is completed).
pub(crate) fn apply(
    account: &mut Account,
    cx: &mut Cx<'_>,
    spec: &DeleteSpec,
) -> (u32, Vec<String>) {
    let mut skipped = 0u32;
    let mut errors = Vec::new();
    match spec {
        DeleteSpec::Contacts { contacts, .. } => {
            for id in contacts {
                match account.contacts.find(id) {
                    Some(index) => {
                        crate::contacts::write::delete(account, cx, index);
                    }
                    None => {
                        skipped += 1;
                        errors.push(format!("Contact not found: {id}"));
                    }
                }
            }
        }
        DeleteSpec::Lists(lists) => {
            for id in lists {
                if let Some(index) = account.lists.find_live(id) {
                    crate::lists::delete(account, cx, index);
                }
            }
            drop_dead_memberships(account);
        }
        DeleteSpec::Tags(tags) => {
            for id in tags {
                if let Some(index) = account.tags.find_live(id) {
                    crate::tags::delete(account, cx, index);
                }
                untag_all(account, *id);
            }
        }
        DeleteSpec::CustomFields(fields) => {
            for id in fields {
                if let Some(index) = account.fields.find_live(id) {
                    crate::custom_fields::delete(account, cx, index);
                }
            }
        }
    }
    (skipped, errors)
}
