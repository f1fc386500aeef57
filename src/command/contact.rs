//! Contact commands: `contact.create`, `contact.update`, `contact.upsert`, `contact.sign_up`,
//! `contact.get`, `contact.delete` — their wire shapes and checks.
//!
//! Limits follow shared/reference/constant-contact-v3.md §4: names ≤ 50 characters, e-mail
//! ≤ 80 (≤ 50 on the sign-up form), ≤ 25 custom-field values of ≤ 255 characters, ≤ 50
//! lists, ≤ 3 phone numbers and street addresses.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::check::{self, Checker, patch};
use super::rejection::Rejection;

pub const MAX_NAME: usize = 50;
pub const MAX_EMAIL: usize = 80;
pub const MAX_SIGN_UP_EMAIL: usize = 50;
pub const MAX_CUSTOM_FIELDS: usize = 25;
pub const MAX_CUSTOM_VALUE: usize = 255;
pub const MAX_LISTS: usize = 50;

/// How a command names a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactRef {
    Id(String),
    Email(String),
}

impl ContactRef {
    /// The ordering key: commands about the same contact apply in publish order.
    pub fn key(&self) -> String {
        match self {
            ContactRef::Id(id) => format!("contact:{id}"),
            ContactRef::Email(email) => format!("email:{}", email.to_lowercase()),
        }
    }
}

/// A custom field named by its id or by its name (resolved before the API call).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CustomFieldKey {
    Id(String),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Phone {
    pub phone_number: String,
    #[serde(default = "default_phone_kind")]
    pub kind: String,
}

fn default_phone_kind() -> String {
    "other".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub kind: String,
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
}

/// Changes to a contact. `None` keeps a field; `Some(None)` clears it (update only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactChanges {
    pub email: Option<String>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub job_title: Option<Option<String>>,
    pub company_name: Option<Option<String>>,
    /// (month, day)
    pub birthday: Option<Option<(u8, u8)>>,
    pub anniversary: Option<Option<String>>,
    /// Replaces the contact's phone numbers when given.
    pub phone_numbers: Option<Vec<Phone>>,
    /// Replaces the contact's street addresses when given.
    pub street_addresses: Option<Vec<Address>>,
    /// Values to set (`Some`) or remove (`None`); others are kept.
    pub custom_fields: Vec<(CustomFieldKey, Option<String>)>,
    /// Lists: for create and upsert the contact is added to them; for update they replace
    /// the contact's memberships.
    pub list_ids: Option<Vec<String>>,
}

/// The sign-up form's fields (explicit consent: only for genuine opt-ins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUp {
    pub email: String,
    pub list_ids: Vec<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub job_title: Option<String>,
    pub company_name: Option<String>,
    pub phone_number: Option<String>,
    pub birthday: Option<(u8, u8)>,
    pub anniversary: Option<String>,
    pub custom_fields: Vec<(CustomFieldKey, String)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesData {
    #[serde(default)]
    contact_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, deserialize_with = "patch")]
    first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch")]
    last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch")]
    job_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch")]
    company_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch")]
    birthday_month: Option<Option<u8>>,
    #[serde(default, deserialize_with = "patch")]
    birthday_day: Option<Option<u8>>,
    #[serde(default, deserialize_with = "patch")]
    anniversary: Option<Option<String>>,
    #[serde(default)]
    phone_numbers: Option<Vec<Phone>>,
    #[serde(default)]
    street_addresses: Option<Vec<Address>>,
    #[serde(default)]
    custom_fields: Option<Map<String, Value>>,
    #[serde(default)]
    list_ids: Option<Vec<String>>,
}

/// Which command the changes belong to (the rules differ slightly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Upsert,
    Update,
}

/// Checks `contact.create`, `contact.upsert` or `contact.update` data. Update returns the
/// contact it targets.
pub fn parse_changes(
    kind: ChangeKind,
    data: Map<String, Value>,
) -> Result<(Option<ContactRef>, ContactChanges), Rejection> {
    let raw: ChangesData = check::data(data)?;
    let mut c = Checker::new();
    let target = match kind {
        ChangeKind::Update => target(&mut c, raw.contact_id.clone(), raw.email.clone()),
        _ => {
            if raw.contact_id.is_some() {
                c.fail(
                    "data.contact_id",
                    "is only accepted by contact.update, contact.get and contact.delete",
                );
            }
            match &raw.email {
                Some(email) => {
                    c.email("data.email", email, MAX_EMAIL);
                }
                None => c.fail("data.email", "is required"),
            }
            None
        }
    };
    // With contact_id, an update may also change the e-mail address.
    let email = match kind {
        ChangeKind::Update if raw.contact_id.is_some() => {
            if let Some(email) = &raw.email {
                c.email("data.email", email, MAX_EMAIL);
            }
            raw.email.clone()
        }
        ChangeKind::Update => None,
        _ => raw.email.clone(),
    };
    let clearing_allowed = kind == ChangeKind::Update;
    let text_patch = |c: &mut Checker, field: &str, value: Option<Option<String>>| {
        match &value {
            Some(Some(v)) => {
                c.text(&format!("data.{field}"), v, MAX_NAME);
            }
            Some(None) if !clearing_allowed => c.fail(
                format!("data.{field}"),
                "cannot be null here; use contact.update to clear a field",
            ),
            _ => {}
        }
        value
    };
    let first_name = text_patch(&mut c, "first_name", raw.first_name);
    let last_name = text_patch(&mut c, "last_name", raw.last_name);
    let job_title = text_patch(&mut c, "job_title", raw.job_title);
    let company_name = text_patch(&mut c, "company_name", raw.company_name);
    let anniversary = match raw.anniversary {
        Some(Some(a)) => {
            check_anniversary(&mut c, "data.anniversary", &a);
            Some(Some(a))
        }
        Some(None) if !clearing_allowed => {
            c.fail(
                "data.anniversary",
                "cannot be null here; use contact.update to clear a field",
            );
            None
        }
        other => other,
    };
    let birthday = birthday(
        &mut c,
        raw.birthday_month,
        raw.birthday_day,
        clearing_allowed,
    );
    if let Some(phones) = &raw.phone_numbers {
        check_phones(&mut c, phones);
    }
    if let Some(addresses) = &raw.street_addresses {
        check_addresses(&mut c, addresses);
    }
    let custom_fields = custom_fields(
        &mut c,
        raw.custom_fields.unwrap_or_default(),
        clearing_allowed,
    );
    if let Some(lists) = &raw.list_ids {
        let min = 0;
        c.uuids("data.list_ids", lists, min, MAX_LISTS);
    }
    let changes = ContactChanges {
        email,
        first_name,
        last_name,
        job_title,
        company_name,
        birthday,
        anniversary,
        phone_numbers: raw.phone_numbers,
        street_addresses: raw.street_addresses,
        custom_fields,
        list_ids: raw.list_ids,
    };
    c.finish((target, changes))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefData {
    #[serde(default)]
    contact_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// Checks `contact.get` / `contact.delete` data: exactly one of `contact_id` or `email`.
pub fn parse_ref(data: Map<String, Value>) -> Result<ContactRef, Rejection> {
    let raw: RefData = check::data(data)?;
    let mut c = Checker::new();
    if raw.contact_id.is_some() && raw.email.is_some() {
        c.fail("data.email", "give contact_id or email, not both");
    }
    let target = target(&mut c, raw.contact_id, raw.email);
    c.finish(target.unwrap_or(ContactRef::Id(String::new())))
}

fn target(
    c: &mut Checker,
    contact_id: Option<String>,
    email: Option<String>,
) -> Option<ContactRef> {
    match (contact_id, email) {
        (Some(id), _) => c.uuid("data.contact_id", &id).then_some(ContactRef::Id(id)),
        (None, Some(email)) => c
            .email("data.email", &email, MAX_EMAIL)
            .then_some(ContactRef::Email(email)),
        (None, None) => {
            c.fail("data.contact_id", "either contact_id or email is required");
            None
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignUpData {
    email: Option<String>,
    #[serde(default)]
    list_ids: Option<Vec<String>>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    job_title: Option<String>,
    #[serde(default)]
    company_name: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    birthday_month: Option<u8>,
    #[serde(default)]
    birthday_day: Option<u8>,
    #[serde(default)]
    anniversary: Option<String>,
    #[serde(default)]
    custom_fields: Option<Map<String, Value>>,
}

/// Checks `contact.sign_up` data: e-mail and at least one list required.
pub fn parse_sign_up(data: Map<String, Value>) -> Result<SignUp, Rejection> {
    let raw: SignUpData = check::data(data)?;
    let mut c = Checker::new();
    let email = raw.email.unwrap_or_default();
    if email.is_empty() {
        c.fail("data.email", "is required");
    } else {
        c.email("data.email", &email, MAX_SIGN_UP_EMAIL);
    }
    let list_ids = raw.list_ids.unwrap_or_default();
    if list_ids.is_empty() {
        c.fail(
            "data.list_ids",
            "at least one list is required by the sign-up form",
        );
    } else {
        c.uuids("data.list_ids", &list_ids, 1, MAX_LISTS);
    }
    for (field, value) in [
        ("first_name", &raw.first_name),
        ("last_name", &raw.last_name),
        ("job_title", &raw.job_title),
        ("company_name", &raw.company_name),
    ] {
        if let Some(value) = value {
            c.text(&format!("data.{field}"), value, MAX_NAME);
        }
    }
    if let Some(phone) = &raw.phone_number {
        c.text("data.phone_number", phone, 25);
    }
    if let Some(anniversary) = &raw.anniversary {
        check_anniversary(&mut c, "data.anniversary", anniversary);
    }
    let birthday = birthday(
        &mut c,
        raw.birthday_month.map(Some),
        raw.birthday_day.map(Some),
        false,
    )
    .flatten();
    let custom_fields = custom_fields(&mut c, raw.custom_fields.unwrap_or_default(), false)
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v)))
        .collect();
    c.finish(SignUp {
        email,
        list_ids,
        first_name: raw.first_name,
        last_name: raw.last_name,
        job_title: raw.job_title,
        company_name: raw.company_name,
        phone_number: raw.phone_number,
        birthday,
        anniversary: raw.anniversary,
        custom_fields,
    })
}

fn birthday(
    c: &mut Checker,
    month: Option<Option<u8>>,
    day: Option<Option<u8>>,
    clearing_allowed: bool,
) -> Option<Option<(u8, u8)>> {
    match (month, day) {
        (None, None) => None,
        (Some(Some(m)), Some(Some(d))) => {
            let mut ok = true;
            if !(1..=12).contains(&m) {
                c.fail("data.birthday_month", "must be 1 to 12");
                ok = false;
            }
            if !(1..=31).contains(&d) {
                c.fail("data.birthday_day", "must be 1 to 31");
                ok = false;
            }
            ok.then_some(Some((m, d)))
        }
        (Some(None), Some(None)) if clearing_allowed => Some(None),
        (Some(None), Some(None)) => {
            c.fail(
                "data.birthday_month",
                "cannot be null here; use contact.update to clear a field",
            );
            None
        }
        _ => {
            c.fail(
                "data.birthday_day",
                "birthday_month and birthday_day must be given together",
            );
            None
        }
    }
}

fn check_anniversary(c: &mut Checker, field: &str, value: &str) {
    // Accepted input forms (§4.1): MM/DD/YYYY, M/D/YYYY, YYYY/MM/DD, YYYY-MM-DD, MM-DD-YYYY, …
    let parts: Vec<&str> = value.split(['/', '-']).collect();
    let shape_ok = value.len() <= 10
        && parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|ch| ch.is_ascii_digit()))
        && (parts[0].len() == 4 || parts[2].len() == 4);
    if !shape_ok {
        c.fail(
            field,
            "must be a date such as 2006-11-15, 2006/11/15 or 11/15/2006",
        );
    }
}

fn check_phones(c: &mut Checker, phones: &[Phone]) {
    if phones.len() > 3 {
        c.fail(
            "data.phone_numbers",
            format!("at most 3 phone numbers (got {})", phones.len()),
        );
    }
    for (i, phone) in phones.iter().enumerate().take(4) {
        c.required_text(
            &format!("data.phone_numbers[{i}].phone_number"),
            &phone.phone_number,
            25,
        );
        if !matches!(phone.kind.as_str(), "home" | "work" | "mobile" | "other") {
            c.fail(
                format!("data.phone_numbers[{i}].kind"),
                "must be home, work, mobile or other",
            );
        }
    }
}

fn check_addresses(c: &mut Checker, addresses: &[Address]) {
    if addresses.len() > 3 {
        c.fail(
            "data.street_addresses",
            format!("at most 3 addresses (got {})", addresses.len()),
        );
    }
    for (i, address) in addresses.iter().enumerate().take(4) {
        if !matches!(address.kind.as_str(), "home" | "work" | "other") {
            c.fail(
                format!("data.street_addresses[{i}].kind"),
                "must be home, work or other",
            );
        }
        if let Some(street) = &address.street {
            c.text(&format!("data.street_addresses[{i}].street"), street, 255);
        }
        for (name, value) in [
            ("city", &address.city),
            ("state", &address.state),
            ("postal_code", &address.postal_code),
            ("country", &address.country),
        ] {
            if let Some(value) = value {
                c.text(&format!("data.street_addresses[{i}].{name}"), value, 50);
            }
        }
    }
}

/// `{"hobby": "Skiing", "<uuid>": "x", "old": null}` → keys by name or id, values to set or
/// (update only) remove.
fn custom_fields(
    c: &mut Checker,
    raw: Map<String, Value>,
    clearing_allowed: bool,
) -> Vec<(CustomFieldKey, Option<String>)> {
    if raw.len() > MAX_CUSTOM_FIELDS {
        c.fail(
            "data.custom_fields",
            format!(
                "at most {MAX_CUSTOM_FIELDS} custom fields per contact (got {})",
                raw.len()
            ),
        );
        return Vec::new();
    }
    let mut out = Vec::with_capacity(raw.len());
    for (key, value) in raw {
        let field = format!("data.custom_fields.{}", super::field::truncate(&key, 60));
        let key_ok = if uuid::Uuid::try_parse(&key).is_ok() && key.len() == 36 {
            true
        } else {
            c.required_text(&field, &key, 50)
        };
        let value = match value {
            Value::String(s) => c.text(&field, &s, MAX_CUSTOM_VALUE).then_some(Some(s)),
            Value::Number(n) => Some(Some(n.to_string())),
            Value::Bool(b) => Some(Some(b.to_string())),
            Value::Null if clearing_allowed => Some(None),
            Value::Null => {
                c.fail(
                    &field,
                    "cannot be null here; use contact.update to remove a value",
                );
                None
            }
            _ => {
                c.fail(&field, "must be a string, a number or a boolean");
                None
            }
        };
        if let (true, Some(value)) = (key_ok, value) {
            let key = if uuid::Uuid::try_parse(&key).is_ok() && key.len() == 36 {
                CustomFieldKey::Id(key.to_lowercase())
            } else {
                CustomFieldKey::Name(key)
            };
            out.push((key, value));
        }
    }
    out
}
