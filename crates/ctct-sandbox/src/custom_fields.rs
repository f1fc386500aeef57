//! Contact custom fields (reference §5): storage, JSON shape and `/contact_custom_fields`
//! handlers. At most 100 live fields per account, labels unique (case-insensitive), `name`
//! derived once from the label (lower-cased, blanks → `_`) and kept on rename; only the
//! `string` and `date` types are accepted. Deleted fields keep their index so contacts'
//! values for them simply stop being reported.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::clock::{Millis, fmt_secs};
use super::errors::{ApiError, Area};
use super::http::{Links, OffsetPage, QueryMap, json, no_content, parse_body, path_uuid};
use super::state::{Account, Caller, Cx, Shared};

pub(crate) const MAX_FIELDS: usize = 100;
const TYPES: [&str; 2] = ["string", "date"];

/// `metadata` of a custom field (only the documented keys are kept).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    display_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_negative: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decimal_places: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    integer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_format: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FieldRec {
    pub(crate) id: Uuid,
    pub(crate) label: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) metadata: Option<Metadata>,
    pub(crate) version: Option<i64>,
    pub(crate) created_at: Millis,
    pub(crate) updated_at: Millis,
    pub(crate) deleted: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct CustomFields {
    pub(crate) rows: Vec<FieldRec>,
    #[serde(skip)]
    by_id: HashMap<Uuid, u32>,
}

/// `name` from `label`: lower-cased, blanks replaced by `_` (reference §5, UNCONFIRMED).
pub(crate) fn derive_name(label: &str) -> String {
    label
        .trim()
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect::<String>()
        .to_lowercase()
}

impl CustomFields {
    pub(crate) fn rebuild_indexes(&mut self) {
        self.by_id = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id, i as u32))
            .collect();
    }

    pub(crate) fn find_live(&self, id: &Uuid) -> Option<u32> {
        self.by_id.get(id).copied().filter(|&i| self.is_live(i))
    }

    pub(crate) fn is_live(&self, index: u32) -> bool {
        self.rows.get(index as usize).is_some_and(|f| !f.deleted)
    }

    pub(crate) fn id_of(&self, index: u32) -> Uuid {
        self.rows[index as usize].id
    }

    /// Index of the live field with this `name` (JSON import's `cf:<name>` keys).
    pub(crate) fn find_by_name(&self, name: &str) -> Option<u32> {
        self.rows
            .iter()
            .position(|f| !f.deleted && f.name == name)
            .map(|i| i as u32)
    }

    /// Live fields in creation order (export columns).
    pub(crate) fn live(&self) -> impl Iterator<Item = (u32, &FieldRec)> {
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.deleted)
            .map(|(i, f)| (i as u32, f))
    }

    fn label_taken(&self, label: &str, except: Option<u32>) -> bool {
        let (label, name) = (label.trim().to_lowercase(), derive_name(label));
        self.rows.iter().enumerate().any(|(i, f)| {
            !f.deleted
                && Some(i as u32) != except
                && (f.label.to_lowercase() == label || (except.is_none() && f.name == name))
        })
    }
}

#[derive(Serialize)]
struct FieldJson<'a> {
    custom_field_id: Uuid,
    label: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
    updated_at: String,
    created_at: String,
}

fn field_json(rec: &FieldRec) -> FieldJson<'_> {
    FieldJson {
        custom_field_id: rec.id,
        label: &rec.label,
        name: &rec.name,
        kind: &rec.kind,
        metadata: rec.metadata.as_ref(),
        version: rec.version,
        updated_at: fmt_secs(rec.updated_at),
        created_at: fmt_secs(rec.created_at),
    }
}

/// The JSON of one field (admin snapshots).
pub(crate) fn field_value(rec: &FieldRec) -> serde_json::Value {
    serde_json::to_value(field_json(rec)).unwrap_or_default()
}

#[derive(Debug, Deserialize)]
struct FieldIn {
    label: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    metadata: Option<Metadata>,
    version: Option<i64>,
}

fn check_label(label: Option<&str>) -> Result<String, ApiError> {
    let label = label.map(str::trim).unwrap_or_default();
    if label.is_empty() {
        return Err(ApiError::validation(Area::Contacts, "label is required"));
    }
    if label.chars().count() > 50 {
        return Err(ApiError::validation(
            Area::Contacts,
            "label exceeds 50 characters",
        ));
    }
    Ok(label.to_owned())
}

/// Creates a field for the API or the seeder.
pub(crate) fn create_field(
    account: &mut Account,
    cx: &mut Cx<'_>,
    label: &str,
    kind: &str,
    metadata: Option<Metadata>,
    version: Option<i64>,
) -> Result<u32, ApiError> {
    if !TYPES.contains(&kind) {
        return Err(ApiError::validation(
            Area::Contacts,
            format!("type {kind} is not supported; use string or date"),
        ));
    }
    if account.fields.label_taken(label, None) {
        return Err(ApiError::conflict(
            Area::Contacts,
            format!("A custom field labelled {label} already exists"),
        ));
    }
    if account.fields.live().count() >= MAX_FIELDS {
        return Err(ApiError::validation(
            Area::Contacts,
            "The account already has the maximum of 100 custom fields",
        ));
    }
    let id = account.rng.uuid();
    let index = account.fields.rows.len() as u32;
    account.fields.rows.push(FieldRec {
        id,
        label: label.to_owned(),
        name: derive_name(label),
        kind: kind.to_owned(),
        metadata,
        version,
        created_at: cx.now,
        updated_at: cx.now,
        deleted: false,
    });
    account.fields.by_id.insert(id, index);
    cx.effect(&account.id, "custom_field.created", id);
    Ok(index)
}

pub(crate) async fn get_fields(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let (page, _) = OffsetPage::from_query(Area::Contacts, &query, 50, 100, &[])?;
    shared.with_account(&caller, |account, _cx| {
        let mut fields = Vec::new();
        let mut next = None;
        for (index, rec) in account.fields.rows.iter().enumerate().skip(page.start) {
            if rec.deleted {
                continue;
            }
            if fields.len() == page.limit as usize {
                next = Some(page.cursor_at(index));
                break;
            }
            fields.push(field_json(rec));
        }
        #[derive(Serialize)]
        struct Page<'a> {
            custom_fields: Vec<FieldJson<'a>>,
            _links: Links,
        }
        let body = Page {
            custom_fields: fields,
            _links: Links::next("/v3/contact_custom_fields", next),
        };
        Ok(json(StatusCode::OK, &body))
    })
}

pub(crate) async fn post_field(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: FieldIn = parse_body(Area::Contacts, &body)?;
    let label = check_label(input.label.as_deref())?;
    let kind = input
        .kind
        .clone()
        .ok_or_else(|| ApiError::validation(Area::Contacts, "type is required"))?;
    shared.with_account(&caller, |account, cx| {
        let index = create_field(account, cx, &label, &kind, input.metadata, input.version)?;
        let rec = &account.fields.rows[index as usize];
        Ok(json(StatusCode::CREATED, &field_json(rec)))
    })
}

fn live_index(account: &Account, raw: &str) -> Result<u32, ApiError> {
    let id = path_uuid(Area::Contacts, "custom_field_id", raw)?;
    account
        .fields
        .find_live(&id)
        .ok_or_else(|| ApiError::not_found(Area::Contacts, "Custom field not found"))
}

pub(crate) async fn get_field(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(field_id): Path<String>,
) -> Result<Response, ApiError> {
    shared.with_account(&caller, |account, _cx| {
        let index = live_index(account, &field_id)?;
        Ok(json(
            StatusCode::OK,
            &field_json(&account.fields.rows[index as usize]),
        ))
    })
}

pub(crate) async fn put_field(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(field_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: FieldIn = parse_body(Area::Contacts, &body)?;
    let label = check_label(input.label.as_deref())?;
    shared.with_account(&caller, |account, cx| {
        let index = live_index(account, &field_id)?;
        // PUT declares no 409 (spec): a taken label is a validation error here.
        if account.fields.label_taken(&label, Some(index)) {
            return Err(ApiError::validation(
                Area::Contacts,
                format!("A custom field labelled {label} already exists"),
            ));
        }
        let rec = &mut account.fields.rows[index as usize];
        // Full replacement (reference §5): omitted properties become null; name and type stay.
        rec.label = label;
        rec.metadata = input.metadata;
        rec.version = input.version;
        rec.updated_at = cx.now;
        let id = rec.id;
        cx.effect(&account.id, "custom_field.updated", id);
        Ok(json(
            StatusCode::OK,
            &field_json(&account.fields.rows[index as usize]),
        ))
    })
}

/// Deletes the live field at `index`; contacts' values for it stop being reported at once:
/// what `DELETE /contact_custom_fields/{id}` and the bulk `custom_fields_delete` activity do
/// to each field.
pub(crate) fn delete(account: &mut Account, cx: &mut Cx<'_>, index: u32) {
    let rec = &mut account.fields.rows[index as usize];
    rec.deleted = true;
    rec.updated_at = cx.now;
    let id = rec.id;
    cx.effect(&account.id, "custom_field.deleted", id);
}

pub(crate) async fn delete_field(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(field_id): Path<String>,
) -> Result<Response, ApiError> {
    shared.with_account(&caller, |account, cx| {
        let index = live_index(account, &field_id)?;
        delete(account, cx, index);
        Ok(no_content())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_lower_cased_label_with_underscores() {
        assert_eq!(derive_name("Hobby"), "hobby");
        assert_eq!(derive_name(" Favorite  Color "), "favorite__color");
    }
}
