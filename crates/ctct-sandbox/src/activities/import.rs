//! `POST /activities/contacts_json_import` (reference §7.1): request checks (1–50 lists,
//! ≤ 40,000 rows, < 4 MB) and, at completion, row-by-row application. A bad row is skipped
//! and reported in `activity_errors` as `Line <n>: <email>: <reason>` (n = 1-based index in
//! `import_data`). New contacts get implicit permission from the Account; existing contacts
//! only get the supplied properties and keep their permission; unsubscribed contacts are not
//! added to lists (`cannot_add_to_list_count`).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::{Counters, Job, Shape, activity_json};
use crate::contacts::input::{AddressOk, CoreOk, Problems, normalize_anniversary, valid_email};
use crate::contacts::model::{Address, Contact, Permission, Phone, Source};
use crate::contacts::write::merge_core;
use crate::errors::{ApiError, Area};
use crate::http::{json, parse_body};
use crate::state::{Account, Caller, Cx, Shared};

pub(crate) const MAX_ROWS: usize = 40_000;
pub(crate) const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

const PHONE_KEYS: [(&str, &str); 5] = [
    ("phone", "other"),
    ("home_phone", "home"),
    ("work_phone", "work"),
    ("mobile_phone", "mobile"),
    ("other_phone", "other"),
];

pub(crate) async fn post_import(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.len() >= MAX_BODY_BYTES {
        return Err(ApiError::validation(
            Area::Contacts,
            "The request body must be smaller than 4 MB",
        ));
    }
    let mut input: Map<String, Value> = parse_body(Area::Contacts, &body)?;
    let rows = match input.remove("import_data") {
        Some(Value::Array(rows)) => rows,
        _ => {
            return Err(ApiError::validation(
                Area::Contacts,
                "import_data is required and must be an array",
            ));
        }
    };
    if rows.is_empty() || rows.len() > MAX_ROWS {
        return Err(ApiError::validation(
            Area::Contacts,
            "import_data must contain between 1 and 40,000 contacts",
        ));
    }
    let list_ids: Vec<String> = match input.remove("list_ids") {
        Some(Value::Array(ids)) => ids
            .into_iter()
            .map(|v| v.as_str().map(str::to_owned).unwrap_or_default())
            .collect(),
        _ => Vec::new(),
    };
    if list_ids.is_empty() || list_ids.len() > 50 {
        return Err(ApiError::validation(
            Area::Contacts,
            "list_ids must contain between 1 and 50 list ids",
        ));
    }
    shared.with_account(&caller, |account, cx| {
        let mut problems = Problems::default();
        let lists = problems.lists(&account.lists, &list_ids, 50);
        problems.into_result()?;
        let id = account.rng.uuid();
        let counters = Counters {
            items_total: rows.len() as u32,
            lists: lists.len() as u32,
            ..Counters::default()
        };
        let index = account
            .activities
            .queue(id, Job::Import { rows, lists }, counters, cx)?;
        account.touch();
        cx.effect(&account.id, "import.created", id);
        let body = activity_json(
            &account.activities.rows[index as usize],
            cx.now,
            cx.rows_per_sec,
            Shape::Created,
        );
        Ok(json(StatusCode::CREATED, &body))
    })
}

/// A row value as text: strings as-is, numbers printed, null/absent → `None`.
fn text(row: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn limited(row: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>, String> {
    let value = text(row, key)?;
    if value.as_ref().is_some_and(|v| v.chars().count() > max) {
        return Err(format!("{key} exceeds the maximum length of {max}"));
    }
    Ok(value)
}

/// One checked row.
struct RowOk {
    email: String,
    core: CoreOk,
    phones: Vec<(String, String)>,
    addresses: Vec<AddressOk>,
    custom: Vec<(u32, Box<str>)>,
}

fn address_of(
    row: &Map<String, Value>,
    prefix: &str,
    kind: &str,
) -> Result<Option<AddressOk>, String> {
    let key = |name: &str| format!("{prefix}{name}");
    let street = limited(row, &key("street"), 255)?;
    let street2 = limited(row, &key("street2"), 255)?;
    let country_key = if prefix == "home_" && row.contains_key("home country") {
        "home country".to_owned()
    } else {
        key("country")
    };
    let address = AddressOk {
        kind: kind.to_owned(),
        street: match (street, street2) {
            (Some(a), Some(b)) => Some(format!("{a} {b}")).filter(|s| s.chars().count() <= 255),
            (a, b) => a.or(b),
        },
        city: limited(row, &key("city"), 50)?,
        state: limited(row, &key("state"), 50)?,
        postal_code: limited(row, &key("zip"), 50)?,
        country: limited(row, &country_key, 50)?,
    };
    let empty = address.street.is_none()
        && address.city.is_none()
        && address.state.is_none()
        && address.postal_code.is_none()
        && address.country.is_none();
    Ok((!empty).then_some(address))
}

fn check_row(account: &Account, value: &Value) -> Result<RowOk, (String, String)> {
    let Some(row) = value.as_object() else {
        return Err((String::new(), "the row is not a JSON object".into()));
    };
    let email_text = text(row, "email").ok().flatten().unwrap_or_default();
    let fail = |reason: String| (email_text.clone(), reason);
    if email_text.is_empty() {
        return Err(fail("email is required".into()));
    }
    if email_text.chars().count() > 50 {
        return Err(fail("email exceeds the maximum length of 50".into()));
    }
    if !valid_email(&email_text) {
        return Err(fail("invalid email address".into()));
    }
    let mut problems = Problems::default();
    let month = text(row, "birthday_month").map_err(fail)?;
    let day = text(row, "birthday_day").map_err(fail)?;
    let parse_int = |v: Option<String>| -> Result<Option<i64>, (String, String)> {
        v.map(|s| {
            s.parse::<i64>()
                .map_err(|_| fail("birthday_month and birthday_day must be numbers".into()))
        })
        .transpose()
    };
    let anniversary = text(row, "anniversary").map_err(fail)?;
    if let Some(a) = anniversary.as_deref()
        && normalize_anniversary(a).is_none()
    {
        return Err(fail("anniversary does not have a valid date format".into()));
    }
    let core = problems.core(
        limited(row, "first_name", 50).map_err(fail)?.as_deref(),
        limited(row, "last_name", 50).map_err(fail)?.as_deref(),
        limited(row, "job_title", 50).map_err(fail)?.as_deref(),
        limited(row, "company_name", 50).map_err(fail)?.as_deref(),
        (parse_int(month)?, parse_int(day)?),
        anniversary.as_deref(),
    );
    if let Some(problem) = problems.0.first() {
        return Err(fail(problem.clone()));
    }
    let mut phones = Vec::new();
    for (key, kind) in PHONE_KEYS {
        // Stored phone numbers are at most 25 characters (response schema).
        if let Some(number) = limited(row, key, 25).map_err(fail)? {
            phones.retain(|(k, _): &(String, String)| k != kind);
            phones.push((kind.to_owned(), number));
        }
    }
    let mut addresses = Vec::new();
    for (prefix, kind) in [
        ("", "home"),
        ("home_", "home"),
        ("work_", "work"),
        ("other_", "other"),
    ] {
        if let Some(address) = address_of(row, prefix, kind).map_err(fail)? {
            addresses.retain(|a: &AddressOk| a.kind != kind);
            addresses.push(address);
        }
    }
    let mut custom = Vec::new();
    for (key, _) in row.iter().filter(|(k, _)| k.starts_with("cf:")) {
        let name = &key[3..];
        let Some(field) = account.fields.find_by_name(name) else {
            return Err(fail(format!("unknown custom field {key}")));
        };
        let value = limited(row, key, 255).map_err(fail)?.unwrap_or_default();
        custom.push((field, value.into_boxed_str()));
    }
    if custom.len() > 25 {
        return Err(fail("more than 25 custom fields".into()));
    }
    Ok(RowOk {
        email: email_text.clone(),
        core,
        phones,
        addresses,
        custom,
    })
}

/// Applies the rows; returns the final counters and `activity_errors`.
pub(crate) fn apply(
    account: &mut Account,
    cx: &mut Cx<'_>,
    rows: &[Value],
    lists: &[u32],
) -> (Counters, Vec<String>) {
    let mut counters = Counters {
        items_total: rows.len() as u32,
        lists: lists.len() as u32,
        ..Counters::default()
    };
    let mut errors = Vec::new();
    let now = cx.now_secs();
    let live_lists: Vec<u32> = lists
        .iter()
        .copied()
        .filter(|l| account.lists.is_live(*l))
        .collect();
    for (line, value) in rows.iter().enumerate() {
        let row = match check_row(account, value) {
            Ok(row) => row,
            Err((email, reason)) => {
                counters.errors += 1;
                errors.push(format!("Line {}: {email}: {reason}", line + 1));
                continue;
            }
        };
        let (index, created) = match account.contacts.find_email(&row.email) {
            Some(index) => (index, false),
            None => {
                let id = account.rng.uuid();
                let mut contact = Contact::new(id, now, Source::Account);
                contact.email = Some(row.email.clone().into_boxed_str());
                contact.email_created_at = now;
                contact.email_updated_at = now;
                contact.set_permission(Permission::Implicit, Source::Account, now);
                (account.contacts.insert(contact), true)
            }
        };
        let fields = &account.fields;
        let rng = &mut account.rng;
        let contact = account.contacts.get_mut(index);
        merge_core(contact, row.core);
        let mut values: Vec<(u32, Box<str>)> = contact
            .custom
            .iter()
            .filter(|(f, _)| fields.is_live(*f))
            .cloned()
            .collect();
        for (field, value) in row.custom {
            match values.iter_mut().find(|(f, _)| *f == field) {
                Some(slot) => slot.1 = value,
                None => values.push((field, value)),
            }
        }
        values.truncate(25);
        contact.custom = values.into_boxed_slice();
        contact.with_extras(|extra| {
            for (kind, number) in row.phones {
                extra.phones.retain(|p| p.kind != kind);
                if extra.phones.len() < 3 {
                    extra.phones.push(Phone {
                        id: rng.uuid(),
                        number,
                        kind,
                        created_at: now,
                        updated_at: now,
                        create_source: Source::Account,
                        update_source: Source::Account,
                    });
                }
            }
            for a in row.addresses {
                extra.addresses.retain(|x| x.kind != a.kind);
                if extra.addresses.len() < 3 {
                    extra.addresses.push(Address {
                        id: rng.uuid(),
                        kind: a.kind,
                        street: a.street,
                        city: a.city,
                        state: a.state,
                        postal_code: a.postal_code,
                        country: a.country,
                        created_at: now,
                        updated_at: now,
                    });
                }
            }
        });
        contact.deleted_at = 0;
        if contact.permission == Permission::Unsubscribed {
            counters.cannot_add_to_list += 1;
        } else {
            let mut all: Vec<u32> = contact.lists.to_vec();
            for list in &live_lists {
                if !all.contains(list) && all.len() < 50 {
                    all.push(*list);
                }
            }
            contact.lists = all.into_boxed_slice();
        }
        if !created {
            contact.update_source = Some(Source::Account);
            contact.updated_at = now;
        }
        counters.person += 1;
        let id = contact.id;
        let kind = if created {
            "contact.created"
        } else {
            "contact.updated"
        };
        cx.effect(&account.id, kind, id);
    }
    (counters, errors)
}
