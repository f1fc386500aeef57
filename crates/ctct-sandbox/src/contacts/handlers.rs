//! HTTP handlers of `/contacts` (reference §4): list/search, create, read, replace, delete,
//! sign_up_form and counts. Each locks the world once, works, serialises, unlocks.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::input::{ContactIn, SignUpIn};
use super::query::ContactQuery;
use super::render::{ContactJson, Include};
use super::write;
use crate::errors::{ApiError, Area};
use crate::http::{Links, QueryMap, json, json_bytes, no_content, parse_body, path_uuid};
use crate::state::{Account, Caller, Shared};

/// Renders one contact of `account` as JSON bytes.
pub(crate) fn contact_bytes(account: &Account, index: u32, include: Include) -> Vec<u8> {
    serde_json::to_vec(&ContactJson {
        contact: account.contacts.get(index),
        lists: &account.lists,
        fields: &account.fields,
        include,
    })
    .unwrap_or_default()
}

fn find(account: &Account, raw: &str) -> Result<u32, ApiError> {
    let id = path_uuid(Area::Contacts, "contact_id", raw)?;
    account
        .contacts
        .find(&id)
        .ok_or_else(|| ApiError::not_found(Area::Contacts, "Contact not found"))
}

fn include_param(query: &QueryMap) -> Result<Include, ApiError> {
    Include::parse(&query.csv("include")).map_err(|bad| {
        ApiError::validation(
            Area::Contacts,
            format!("include {bad} is not a valid value"),
        )
    })
}

pub(crate) async fn get_contacts(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    shared.with_account(&caller, |account, _cx| {
        let parsed = ContactQuery::parse(account, &query)?;
        let (indexes, next) = parsed.page(account);
        let count = parsed.include_count.then(|| parsed.count(account));
        #[derive(Serialize)]
        struct Page<'a> {
            contacts: Vec<ContactJson<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            contacts_count: Option<usize>,
            _links: Links,
        }
        let page = Page {
            contacts: indexes
                .iter()
                .map(|&i| ContactJson {
                    contact: account.contacts.get(i),
                    lists: &account.lists,
                    fields: &account.fields,
                    include: parsed.include,
                })
                .collect(),
            contacts_count: count,
            _links: Links::next("/v3/contacts", next),
        };
        Ok(json(StatusCode::OK, &page))
    })
}

pub(crate) async fn post_contact(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: ContactIn = parse_body(Area::Contacts, &body)?;
    shared.with_account(&caller, |account, cx| {
        let index = write::create(account, cx, input)?;
        // The captured 201 body holds only core properties (fixtures/write-contact.json).
        Ok(json_bytes(
            StatusCode::CREATED,
            contact_bytes(account, index, Include::default()),
        ))
    })
}

pub(crate) async fn get_contact(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(contact_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let include = include_param(&query)?;
    shared.with_account(&caller, |account, _cx| {
        let index = find(account, &contact_id)?;
        Ok(json_bytes(
            StatusCode::OK,
            contact_bytes(account, index, include),
        ))
    })
}

pub(crate) async fn put_contact(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(contact_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: ContactIn = parse_body(Area::Contacts, &body)?;
    // The answer carries the subresources the body carried.
    let mut include = 0;
    for (present, bit) in [
        (input.custom_fields.is_some(), Include::CUSTOM_FIELDS),
        (input.list_memberships.is_some(), Include::LIST_MEMBERSHIPS),
        (input.phone_numbers.is_some(), Include::PHONE_NUMBERS),
        (input.street_addresses.is_some(), Include::STREET_ADDRESSES),
        (input.taggings.is_some(), Include::TAGGINGS),
        (input.notes.is_some(), Include::NOTES),
    ] {
        if present {
            include |= bit;
        }
    }
    shared.with_account(&caller, |account, cx| {
        let index = find(account, &contact_id)?;
        write::replace(account, cx, index, input)?;
        Ok(json_bytes(
            StatusCode::OK,
            contact_bytes(account, index, Include(include)),
        ))
    })
}

pub(crate) async fn delete_contact(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(contact_id): Path<String>,
) -> Result<Response, ApiError> {
    shared.with_account(&caller, |account, cx| {
        let index = find(account, &contact_id)?;
        write::delete(account, cx, index);
        Ok(no_content())
    })
}

pub(crate) async fn sign_up_form(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: SignUpIn = parse_body(Area::Contacts, &body)?;
    shared.with_account(&caller, |account, cx| {
        let (index, created) = write::sign_up(account, cx, input)?;
        let (status, action) = if created {
            (StatusCode::CREATED, "created")
        } else {
            (StatusCode::OK, "updated")
        };
        Ok(json(
            status,
            &serde_json::json!({
                "contact_id": account.contacts.get(index).id,
                "action": action,
            }),
        ))
    })
}

pub(crate) async fn contact_counts(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let new_subscriber = match query.get("include") {
        None => false,
        Some("new_subscriber") => true,
        Some(other) => {
            return Err(ApiError::validation(
                Area::Contacts,
                format!("include {other} is not a valid value"),
            ));
        }
    };
    shared.with_account(&caller, |account, cx| {
        let since = cx.now_secs() - 30 * 86_400;
        let (mut total, mut explicit, mut implicit, mut pending, mut unsubscribed, mut new) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        for c in account.contacts.rows.iter().filter(|c| !c.is_deleted()) {
            total += 1;
            match c.permission {
                super::model::Permission::Explicit => explicit += 1,
                super::model::Permission::Implicit => implicit += 1,
                super::model::Permission::PendingConfirmation => pending += 1,
                super::model::Permission::Unsubscribed => unsubscribed += 1,
                _ => {}
            }
            if c.permission.is_active() && c.opt_in_date >= since {
                new += 1;
            }
        }
        let mut body = serde_json::json!({
            "total": total,
            "explicit": explicit,
            "implicit": implicit,
            "pending": pending,
            "unsubscribed": unsubscribed,
        });
        if new_subscriber {
            body["new_subscriber"] = new.into();
        }
        Ok(json(StatusCode::OK, &body))
    })
}
