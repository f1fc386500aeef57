//! List membership activities: `POST /activities/add_list_memberships` and
//! `POST /activities/remove_list_memberships` (the spec's `createListAddActivity` and
//! `createListRemoveActivity`, bodies `createListAddActivity_request` and
//! `createListRemoveActivity_request`, scope `contact_data`).
//!
//! From the spec: `source` picks the contacts and its kinds are mutually exclusive;
//! `source.contact_ids` holds up to 500 UUIDs; `list_ids` (the target lists) is required and
//! holds up to 50 UUIDs (the remove schema says `maxItems: 0`, its description 50: the sandbox
//! takes 50); a contact is a member of at most 50 lists; the answer is 201 with an activity
//! whose `status` has `items_total_count` (contacts), `items_completed_count` and `list_count`;
//! 404 is documented for remove only. Chosen here, not confirmed by the reference: only
//! `source.contact_ids` is emulated (another source kind is a 400 that says so); an empty
//! `contact_ids` or `list_ids`, or an id that is not a UUID, is a 400; an unknown or deleted
//! list or contact is a 404 naming it, for add as for remove. The memberships change when the
//! activity completes: lists deleted meanwhile are skipped; a contact deleted meanwhile, an
//! unsubscribed contact (add only, as the JSON import does) or one that would pass 50 lists
//! (add only) is left alone, is not counted in `items_completed_count` and gets an
//! `activity_errors` entry naming it.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{Counters, Job, created, ids};
use crate::contacts::model::Permission;
use crate::errors::{ApiError, Area};
use crate::http::parse_body;
use crate::state::{Account, Caller, Cx, Shared};

/// Most contacts one activity names (spec: `source.contact_ids`, up to 500).
const MAX_CONTACTS: usize = 500;
/// Most target lists of one activity (spec: `list_ids`, up to 50).
const MAX_LISTS: usize = 50;
/// Most lists one contact is a member of (spec: "Each contact can be a member of up to 50
/// lists").
const MAX_MEMBERSHIPS: usize = 50;

/// What a membership activity does when it completes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MembershipSpec {
    pub(crate) add: bool,
    pub(crate) contacts: Vec<Uuid>,
    /// Account-local list indexes (see `Lists`).
    pub(crate) lists: Vec<u32>,
}

#[derive(Debug, Deserialize)]
struct MembershipIn {
    source: Option<SourceIn>,
    exclude: Option<Value>,
    list_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct SourceIn {
    contact_ids: Option<Vec<String>>,
    list_ids: Option<Value>,
    all_active_contacts: Option<Value>,
    tag_ids: Option<Value>,
    engagement_level: Option<Value>,
    segment_id: Option<Value>,
}

/// The checked body: contact ids and target list ids.
fn check(input: MembershipIn) -> Result<(Vec<Uuid>, Vec<Uuid>), ApiError> {
    let source = input
        .source
        .ok_or_else(|| ApiError::validation(Area::Contacts, "source is required"))?;
    let others = [
        ("list_ids", &source.list_ids),
        ("all_active_contacts", &source.all_active_contacts),
        ("tag_ids", &source.tag_ids),
        ("engagement_level", &source.engagement_level),
        ("segment_id", &source.segment_id),
    ];
    // A source left unset: absent, null, or `false` (the official Python client always sends
    // `"all_active_contacts": false`).
    let set = |v: &Option<Value>| !matches!(v, None | Some(Value::Null) | Some(Value::Bool(false)));
    if let Some((name, _)) = others.iter().find(|(_, v)| set(v)) {
        return Err(ApiError::validation(
            Area::Contacts,
            format!("source.{name} is not emulated by the sandbox; use source.contact_ids"),
        ));
    }
    if input.exclude.is_some() {
        return Err(ApiError::validation(
            Area::Contacts,
            "exclude applies only to the all_active_contacts and list_ids sources",
        ));
    }
    let contacts = ids("source.contact_ids", source.contact_ids, MAX_CONTACTS)?;
    let lists = ids("list_ids", input.list_ids, MAX_LISTS)?;
    Ok((contacts, lists))
}

/// The live lists' indexes; 404 naming the first unknown or deleted list or contact.
fn known(account: &Account, contacts: &[Uuid], lists: &[Uuid]) -> Result<Vec<u32>, ApiError> {
    let mut indexes = Vec::with_capacity(lists.len());
    for list in lists {
        let index = account.lists.find_live(list).ok_or_else(|| {
            ApiError::not_found(Area::Contacts, format!("List not found: {list}"))
        })?;
        indexes.push(index);
    }
    for contact in contacts {
        let live = account
            .contacts
            .find(contact)
            .is_some_and(|i| !account.contacts.get(i).is_deleted());
        if !live {
            return Err(ApiError::not_found(
                Area::Contacts,
                format!("Contact not found: {contact}"),
            ));
        }
    }
    Ok(indexes)
}

async fn post(
    shared: Arc<Shared>,
    caller: Caller,
    body: Bytes,
    add: bool,
) -> Result<Response, ApiError> {
    let input: MembershipIn = parse_body(Area::Contacts, &body)?;
    let (contacts, lists) = check(input)?;
    shared.with_account(&caller, |account, cx| {
        let lists = known(account, &contacts, &lists)?;
        let counters = Counters {
            items_total: contacts.len() as u32,
            lists: lists.len() as u32,
            ..Counters::default()
        };
        let spec = MembershipSpec {
            add,
            contacts,
            lists,
        };
        let kind = if add {
            "memberships_add.created"
        } else {
            "memberships_remove.created"
        };
        created(account, cx, Job::Membership(spec), counters, kind)
    })
}

/// `POST /activities/add_list_memberships` → 201 with the activity.
pub(crate) async fn post_add(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    post(shared, caller, body, true).await
}

/// `POST /activities/remove_list_memberships` → 201 with the activity.
pub(crate) async fn post_remove(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    post(shared, caller, body, false).await
}

/// Applies a completed activity's memberships; returns how many contacts were not completed
/// and the activity errors naming them.
pub(crate) fn apply(
    account: &mut Account,
    cx: &Cx<'_>,
    spec: &MembershipSpec,
) -> (u32, Vec<String>) {
    let now = cx.now_secs();
    let targets: Vec<u32> = spec
        .lists
        .iter()
        .copied()
        .filter(|l| account.lists.is_live(*l))
        .collect();
    let mut skipped = 0u32;
    let mut errors = Vec::new();
    for contact_id in &spec.contacts {
        let live = account
            .contacts
            .find(contact_id)
            .filter(|&i| !account.contacts.get(i).is_deleted());
        let Some(index) = live else {
            skipped += 1;
            errors.push(format!("Contact not found: {contact_id}"));
            continue;
        };
        let lists = &account.lists;
        let contact = account.contacts.get_mut(index);
        let have: Vec<u32> = contact
            .lists
            .iter()
            .copied()
            .filter(|l| lists.is_live(*l))
            .collect();
        let changed: Vec<u32> = if spec.add {
            let new: Vec<u32> = targets
                .iter()
                .copied()
                .filter(|l| !have.contains(l))
                .collect();
            if new.is_empty() {
                continue;
            }
            if contact.permission == Permission::Unsubscribed {
                skipped += 1;
                errors.push(format!(
                    "Contact {contact_id} is unsubscribed and cannot be added to lists"
                ));
                continue;
            }
            if have.len() + new.len() > MAX_MEMBERSHIPS {
                skipped += 1;
                errors.push(format!(
                    "Contact {contact_id} would exceed {MAX_MEMBERSHIPS} lists"
                ));
                continue;
            }
            have.into_iter().chain(new).collect()
        } else {
            if !have.iter().any(|l| spec.lists.contains(l)) {
                continue;
            }
            have.into_iter()
                .filter(|l| !spec.lists.contains(l))
                .collect()
        };
        contact.lists = changed.into_boxed_slice();
        contact.updated_at = now;
    }
    (skipped, errors)
}
