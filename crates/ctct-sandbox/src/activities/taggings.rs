//! Tagging activities: `POST /activities/contacts_taggings_add` and
//! `POST /activities/contacts_taggings_remove` (the spec's `createTagAddContactActivity` and
//! `createTagRemoveActivity`, body `createTagRemoveActivity_request`, scope `contact_data`).
//!
//! From the spec: `source` picks the contacts and its kinds are mutually exclusive;
//! `source.contact_ids` holds at most 500 UUIDs; `tag_ids` is required and holds at most 50
//! UUIDs; the answer is 201 with an activity; 404 is documented. Chosen here, not confirmed by
//! the reference: only `source.contact_ids` is emulated (another source kind is a 400 that says
//! so); an empty `contact_ids` or `tag_ids`, or an id that is not a UUID, is a 400; an unknown
//! or deleted tag or contact is a 404 naming it. The taggings change when the activity
//! completes: tags deleted meanwhile are skipped, a contact deleted meanwhile is left alone, and
//! a contact already holding 50 tags gets no more (an activity error says which).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{Counters, Job, created, ids};
use crate::errors::{ApiError, Area};
use crate::http::parse_body;
use crate::state::{Account, Caller, Shared};

/// Most contacts one activity names (spec: `source.contact_ids` `maxItems: 500`).
const MAX_CONTACTS: usize = 500;
/// Most tags one activity applies (spec: `tag_ids` `maxItems: 50`).
const MAX_TAGS: usize = 50;
/// Most tags one contact holds (reference: `taggings` ≤ 50).
const MAX_TAGGINGS: usize = 50;

/// What a tagging activity does when it completes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaggingSpec {
    pub(crate) add: bool,
    pub(crate) contacts: Vec<Uuid>,
    pub(crate) tags: Vec<Uuid>,
}

#[derive(Debug, Deserialize)]
struct TaggingIn {
    source: Option<SourceIn>,
    exclude: Option<Value>,
    tag_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct SourceIn {
    contact_ids: Option<Vec<String>>,
    list_ids: Option<Value>,
    tag_ids: Option<Value>,
    all_active_contacts: Option<Value>,
    new_subscriber: Option<Value>,
}

fn check(input: TaggingIn, add: bool) -> Result<TaggingSpec, ApiError> {
    let source = input
        .source
        .ok_or_else(|| ApiError::validation(Area::Contacts, "source is required"))?;
    let others = [
        ("list_ids", &source.list_ids),
        ("tag_ids", &source.tag_ids),
        ("all_active_contacts", &source.all_active_contacts),
        ("new_subscriber", &source.new_subscriber),
    ];
    if let Some((name, _)) = others.iter().find(|(_, v)| v.is_some()) {
        return Err(ApiError::validation(
            Area::Contacts,
            format!("source.{name} is not supported by the sandbox; use source.contact_ids"),
        ));
    }
    if input.exclude.is_some() {
        return Err(ApiError::validation(
            Area::Contacts,
            "exclude applies only to the all_active_contacts and list_ids sources",
        ));
    }
    let contacts = ids("source.contact_ids", source.contact_ids, MAX_CONTACTS)?;
    let tags = ids("tag_ids", input.tag_ids, MAX_TAGS)?;
    Ok(TaggingSpec {
        add,
        contacts,
        tags,
    })
}

fn known(account: &Account, spec: &TaggingSpec) -> Result<(), ApiError> {
    for tag in &spec.tags {
        if !account.tags.rows.iter().any(|t| t.id == *tag && !t.deleted) {
            return Err(ApiError::not_found(
                Area::Contacts,
                format!("Tag not found: {tag}"),
            ));
        }
    }
    for contact in &spec.contacts {
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
    Ok(())
}

async fn post(
    shared: Arc<Shared>,
    caller: Caller,
    body: Bytes,
    add: bool,
) -> Result<Response, ApiError> {
    let input: TaggingIn = parse_body(Area::Contacts, &body)?;
    let spec = check(input, add)?;
    shared.with_account(&caller, |account, cx| {
        known(account, &spec)?;
        let counters = Counters {
            items_total: spec.contacts.len() as u32,
            ..Counters::default()
        };
        let kind = if add {
            "taggings_add.created"
        } else {
            "taggings_remove.created"
        };
        created(account, cx, Job::Tagging(spec), counters, kind)
    })
}

/// `POST /activities/contacts_taggings_add` → 201 with the activity.
pub(crate) async fn post_taggings_add(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    post(shared, caller, body, true).await
}

/// `POST /activities/contacts_taggings_remove` → 201 with the activity.
pub(crate) async fn post_taggings_remove(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    post(shared, caller, body, false).await
}

/// Applies a completed activity's taggings; returns its activity errors.
pub(crate) fn apply(account: &mut Account, spec: &TaggingSpec) -> Vec<String> {
    let live: Vec<Uuid> = spec
        .tags
        .iter()
        .copied()
        .filter(|tag| account.tags.rows.iter().any(|t| t.id == *tag && !t.deleted))
        .collect();
    let mut errors = Vec::new();
    for contact_id in &spec.contacts {
        let Some(index) = account.contacts.find(contact_id) else {
            continue;
        };
        let contact = account.contacts.get_mut(index);
        if contact.is_deleted() {
            continue;
        }
        let have = &contact.extras().taggings;
        if spec.add {
            let new: Vec<Uuid> = live.iter().copied().filter(|t| !have.contains(t)).collect();
            if new.is_empty() {
                continue;
            }
            if have.len() + new.len() > MAX_TAGGINGS {
                errors.push(format!(
                    "Contact {contact_id} would exceed {MAX_TAGGINGS} tags"
                ));
                continue;
            }
            contact.with_extras(|extras| extras.taggings.extend(new));
        } else if have.iter().any(|t| spec.tags.contains(t)) {
            contact.with_extras(|extras| extras.taggings.retain(|t| !spec.tags.contains(t)));
        }
    }
    errors
}
