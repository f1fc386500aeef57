//! Contact commands: `contact.create`, `contact.update`, `contact.upsert`, `contact.sign_up`,
//! `contact.get`, `contact.delete`, `contact.opt_out`, `contact.erase` — their wire shapes and
//! checks.
//!
//! Limits follow shared/reference/constant-contact-v3.md §4: names ≤ 50 characters, e-mail
//! ≤ 80 (≤ 50 on the sign-up form), ≤ 25 custom-field values of ≤ 255 characters, ≤ 50
//! lists, ≤ 3 phone numbers and street addresses.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::check::{self, Checker};
use super::email::Email;
use super::patch::Patch;
use super::rejection::Rejection;

pub const MAX_NAME: usize = 50;
pub const MAX_EMAIL: usize = 80;
pub const MAX_SIGN_UP_EMAIL: usize = 50;
pub const MAX_CUSTOM_FIELDS: usize = 25;
pub const MAX_CUSTOM_VALUE: usize = 255;
pub const MAX_LISTS: usize = 50;
/// `email_address.opt_out_reason` (OpenAPI spec: `maxLength: 255`).
pub const MAX_OPT_OUT_REASON: usize = 255;
/// `consent.source` of a sign-up.
pub const MAX_CONSENT_SOURCE: usize = 255;

/// How a command names a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactRef {
    Id(String),
    Email(Email),
}

impl ContactRef {
    /// The ordering key: commands about the same contact apply in publish order.
    pub fn key(&self) -> String {
        match self {
            ContactRef::Id(id) => format!("contact:{id}"),
            ContactRef::Email(email) => format!("email:{}", email.as_str().to_lowercase()),
        }
    }
}

/// A custom field named by its id or by its name (resolved before the API call).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CustomFieldKey {
    Id(String),
    Name(String),
}

/// The kinds of phone number the API knows (reference §4: `home|work|mobile|other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneKind {
    Home,
    Work,
    Mobile,
    Other,
}

impl PhoneKind {
    /// Reads a command's `kind`, spelled exactly as the API spells it.
    pub fn parse(text: &str) -> Option<PhoneKind> {
        match text {
            "home" => Some(PhoneKind::Home),
            "work" => Some(PhoneKind::Work),
            "mobile" => Some(PhoneKind::Mobile),
            "other" => Some(PhoneKind::Other),
            _ => None,
        }
    }

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneKind::Home => "home",
            PhoneKind::Work => "work",
            PhoneKind::Mobile => "mobile",
            PhoneKind::Other => "other",
        }
    }
}

/// The kinds of street address the API knows (reference §4: `home|work|other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKind {
    Home,
    Work,
    Other,
}

impl AddressKind {
    /// Reads a command's `kind`, spelled exactly as the API spells it.
    pub fn parse(text: &str) -> Option<AddressKind> {
        match text {
            "home" => Some(AddressKind::Home),
            "work" => Some(AddressKind::Work),
            "other" => Some(AddressKind::Other),
            _ => None,
        }
    }

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressKind::Home => "home",
            AddressKind::Work => "work",
            AddressKind::Other => "other",
        }
    }
}

/// A checked phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    pub phone_number: String,
    pub kind: PhoneKind,
}

/// A checked street address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub kind: AddressKind,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// A phone number as a command writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneData {
    phone_number: String,
    #[serde(default = "default_phone_kind")]
    kind: String,
}

fn default_phone_kind() -> String {
    "other".into()
}

/// A street address as a command writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressData {
    kind: String,
    #[serde(default)]
    street: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    postal_code: Option<String>,
    #[serde(default)]
    country: Option<String>,
}

/// Changes to a contact. A [`Patch::Absent`] field is kept; [`Patch::Null`] clears it
/// (update only: create and upsert reject `null`).
///
/// `email` names the contact: create and upsert require it (`E` = [`Email`], the default);
/// an update names its contact apart and may give a new address ([`UpdateChanges`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactChanges<E = Email> {
    pub email: E,
    pub first_name: Patch<String>,
    pub last_name: Patch<String>,
    pub job_title: Patch<String>,
    pub company_name: Patch<String>,
    /// (month, day)
    pub birthday: Patch<(u8, u8)>,
    pub anniversary: Patch<String>,
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

/// A `contact.update`'s changes: a new e-mail address only when the contact is named by id.
pub type UpdateChanges = ContactChanges<Option<Email>>;

impl<E> ContactChanges<E> {
    /// The same changes with another `email`.
    fn with_email<F>(self, email: F) -> ContactChanges<F> {
        ContactChanges {
            email,
            first_name: self.first_name,
            last_name: self.last_name,
            job_title: self.job_title,
            company_name: self.company_name,
            birthday: self.birthday,
            anniversary: self.anniversary,
            phone_numbers: self.phone_numbers,
            street_addresses: self.street_addresses,
            custom_fields: self.custom_fields,
            list_ids: self.list_ids,
        }
    }
}

/// A sign-up's record of consent: where and when the person asked to be subscribed.
/// Required to re-subscribe an address that is unsubscribed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub source: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The sign-up form's fields (explicit consent: only for genuine opt-ins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUp {
    pub email: Email,
    pub list_ids: Vec<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub job_title: Option<String>,
    pub company_name: Option<String>,
    pub phone_number: Option<String>,
    pub birthday: Option<(u8, u8)>,
    pub anniversary: Option<String>,
    pub custom_fields: Vec<(CustomFieldKey, String)>,
    /// Without it, an unsubscribed address is not re-subscribed.
    pub consent: Option<Consent>,
}

/// A `contact.opt_out`: the contact and the reason, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    pub target: ContactRef,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesData {
    #[serde(default)]
    contact_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    first_name: Patch<String>,
    #[serde(default)]
    last_name: Patch<String>,
    #[serde(default)]
    job_title: Patch<String>,
    #[serde(default)]
    company_name: Patch<String>,
    #[serde(default)]
    birthday_month: Patch<u8>,
    #[serde(default)]
    birthday_day: Patch<u8>,
    #[serde(default)]
    anniversary: Patch<String>,
    #[serde(default)]
    phone_numbers: Option<Vec<PhoneData>>,
    #[serde(default)]
    street_addresses: Option<Vec<AddressData>>,
    #[serde(default)]
    custom_fields: Option<Map<String, Value>>,
    #[serde(default)]
    list_ids: Option<Vec<String>>,
}

/// Which command the changes belong to (the rules differ slightly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeKind {
    Create,
    Upsert,
    Update,
}

/// Checks `contact.create` data.
pub fn parse_create(data: Map<String, Value>) -> Result<ContactChanges, Rejection> {
    parse_new(ChangeKind::Create, data)
}

/// Checks `contact.upsert` data.
pub fn parse_upsert(data: Map<String, Value>) -> Result<ContactChanges, Rejection> {
    parse_new(ChangeKind::Upsert, data)
}

/// Checks `contact.update` data: the contact it targets and the changes.
pub fn parse_update(data: Map<String, Value>) -> Result<(ContactRef, UpdateChanges), Rejection> {
    let raw: ChangesData = check::data(data)?;
    let mut c = Checker::new();
    let (target, email, changes) = check_changes(&mut c, ChangeKind::Update, raw);
    c.finish_required(
        target,
        "data.contact_id",
        "either contact_id or email is required",
    )
    .map(|target| (target, changes.with_email(email)))
}

fn parse_new(kind: ChangeKind, data: Map<String, Value>) -> Result<ContactChanges, Rejection> {
    let raw: ChangesData = check::data(data)?;
    let mut c = Checker::new();
    let (_, email, changes) = check_changes(&mut c, kind, raw);
    c.finish_required(email, "data.email", "is required")
        .map(|email| changes.with_email(email))
}

/// Checks `contact.create`, `contact.upsert` or `contact.update` data: gives the target
/// (update only), the e-mail address (create and upsert: required; update: a new one, with
/// `contact_id` only) and the other changes, each `None` when its checks failed.
fn check_changes(
    c: &mut Checker,
    kind: ChangeKind,
    raw: ChangesData,
) -> (Option<ContactRef>, Option<Email>, ContactChanges<()>) {
    let (target, email) = match kind {
        ChangeKind::Update => match raw.contact_id {
            // With contact_id, an update may also change the e-mail address.
            Some(id) => {
                let target = c.uuid("data.contact_id", &id).then_some(ContactRef::Id(id));
                let email = raw
                    .email
                    .and_then(|email| c.email_address("data.email", email, MAX_EMAIL));
                (target, email)
            }
            None => (target(c, None, raw.email), None),
        },
        ChangeKind::Create | ChangeKind::Upsert => {
            if raw.contact_id.is_some() {
                c.fail(
                    "data.contact_id",
                    "is only accepted by contact.update, contact.get, contact.delete, contact.opt_out and contact.erase",
                );
            }
            let email = match raw.email {
                Some(email) => c.email_address("data.email", email, MAX_EMAIL),
                None => {
                    c.fail("data.email", "is required");
                    None
                }
            };
            (None, email)
        }
    };
    let clearing_allowed = kind == ChangeKind::Update;
    let text_patch = |c: &mut Checker, field: &str, value: Patch<String>| {
        match &value {
            Patch::Value(v) => {
                c.text(&format!("data.{field}"), v, MAX_NAME);
            }
            Patch::Null if !clearing_allowed => c.fail(
                format!("data.{field}"),
                "cannot be null here; use contact.update to clear a field",
            ),
            _ => {}
        }
        value
    };
    let first_name = text_patch(c, "first_name", raw.first_name);
    let last_name = text_patch(c, "last_name", raw.last_name);
    let job_title = text_patch(c, "job_title", raw.job_title);
    let company_name = text_patch(c, "company_name", raw.company_name);
    let anniversary = match raw.anniversary {
        Patch::Value(a) => {
            check_anniversary(c, "data.anniversary", &a);
            Patch::Value(a)
        }
        Patch::Null if !clearing_allowed => {
            c.fail(
                "data.anniversary",
                "cannot be null here; use contact.update to clear a field",
            );
            Patch::Absent
        }
        other => other,
    };
    let birthday = birthday(c, raw.birthday_month, raw.birthday_day, clearing_allowed);
    let phone_numbers = raw.phone_numbers.map(|phones| check_phones(c, phones));
    let street_addresses = raw
        .street_addresses
        .map(|addresses| check_addresses(c, addresses));
    let custom_fields = custom_fields(c, raw.custom_fields.unwrap_or_default(), clearing_allowed);
    if let Some(lists) = &raw.list_ids {
        let min = 0;
        c.uuids("data.list_ids", lists, min, MAX_LISTS);
    }
    let changes = ContactChanges {
        email: (),
        first_name,
        last_name,
        job_title,
        company_name,
        birthday,
        anniversary,
        phone_numbers,
        street_addresses,
        custom_fields,
        list_ids: raw.list_ids,
    };
    (target, email, changes)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefData {
    #[serde(default)]
    contact_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// Checks `contact.get` / `contact.delete` / `contact.erase` data: exactly one of
/// `contact_id` or `email`.
pub fn parse_ref(data: Map<String, Value>) -> Result<ContactRef, Rejection> {
    let raw: RefData = check::data(data)?;
    let mut c = Checker::new();
    if raw.contact_id.is_some() && raw.email.is_some() {
        c.fail("data.email", "give contact_id or email, not both");
    }
    let target = target(&mut c, raw.contact_id, raw.email);
    c.finish_required(
        target,
        "data.contact_id",
        "either contact_id or email is required",
    )
}

fn target(
    c: &mut Checker,
    contact_id: Option<String>,
    email: Option<String>,
) -> Option<ContactRef> {
    match (contact_id, email) {
        (Some(id), _) => c.uuid("data.contact_id", &id).then_some(ContactRef::Id(id)),
        (None, Some(email)) => c
            .email_address("data.email", email, MAX_EMAIL)
            .map(ContactRef::Email),
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
    #[serde(default)]
    consent: Option<ConsentData>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentData {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    at: Option<String>,
}

fn check_consent(c: &mut Checker, raw: ConsentData) -> Option<Consent> {
    let source = match raw.source {
        Some(source) => c
            .required_text("data.consent.source", &source, MAX_CONSENT_SOURCE)
            .then_some(source),
        None => {
            c.fail("data.consent.source", "is required");
            None
        }
    };
    let at = match raw.at {
        Some(at) => match chrono::DateTime::parse_from_rfc3339(&at) {
            Ok(at) => Some(at.with_timezone(&chrono::Utc)),
            Err(_) => {
                c.fail(
                    "data.consent.at",
                    "must be an RFC 3339 time such as 2026-12-03T10:00:00Z",
                );
                None
            }
        },
        None => {
            c.fail("data.consent.at", "is required");
            None
        }
    };
    Some(Consent {
        source: source?,
        at: at?,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptOutData {
    #[serde(default)]
    contact_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// Checks `contact.opt_out` data: exactly one of `contact_id` or `email`, and an optional
/// `reason` of at most 255 characters.
pub fn parse_opt_out(data: Map<String, Value>) -> Result<OptOut, Rejection> {
    let raw: OptOutData = check::data(data)?;
    let mut c = Checker::new();
    if raw.contact_id.is_some() && raw.email.is_some() {
        c.fail("data.email", "give contact_id or email, not both");
    }
    let target = target(&mut c, raw.contact_id, raw.email);
    if let Some(reason) = &raw.reason {
        c.required_text("data.reason", reason, MAX_OPT_OUT_REASON);
    }
    c.finish_required(
        target,
        "data.contact_id",
        "either contact_id or email is required",
    )
    .map(|target| OptOut {
        target,
        reason: raw.reason,
    })
}

/// Checks `contact.sign_up` data: e-mail and at least one list required.
pub fn parse_sign_up(data: Map<String, Value>) -> Result<SignUp, Rejection> {
    let raw: SignUpData = check::data(data)?;
    let mut c = Checker::new();
    let email = match raw.email {
        Some(email) if !email.is_empty() => c.email_address("data.email", email, MAX_SIGN_UP_EMAIL),
        _ => {
            c.fail("data.email", "is required");
            None
        }
    };
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
        raw.birthday_month.into(),
        raw.birthday_day.into(),
        false,
    )
    .into_value();
    let custom_fields = custom_fields(&mut c, raw.custom_fields.unwrap_or_default(), false)
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v)))
        .collect();
    let consent = raw.consent.map(|raw| check_consent(&mut c, raw));
    let (email, custom_fields) = c.finish_required(
        email.map(|email| (email, custom_fields)),
        "data.email",
        "is required",
    )?;
    Ok(SignUp {
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
        consent: consent.flatten(),
    })
}

fn birthday(
    c: &mut Checker,
    month: Patch<u8>,
    day: Patch<u8>,
    clearing_allowed: bool,
) -> Patch<(u8, u8)> {
    match (month, day) {
        (Patch::Absent, Patch::Absent) => Patch::Absent,
        (Patch::Value(m), Patch::Value(d)) => {
            let mut ok = true;
            if !(1..=12).contains(&m) {
                c.fail("data.birthday_month", "must be 1 to 12");
                ok = false;
            }
            if !(1..=31).contains(&d) {
                c.fail("data.birthday_day", "must be 1 to 31");
                ok = false;
            }
            if ok {
                Patch::Value((m, d))
            } else {
                Patch::Absent
            }
        }
        (Patch::Null, Patch::Null) if clearing_allowed => Patch::Null,
        (Patch::Null, Patch::Null) => {
            c.fail(
                "data.birthday_month",
                "cannot be null here; use contact.update to clear a field",
            );
            Patch::Absent
        }
        _ => {
            c.fail(
                "data.birthday_day",
                "birthday_month and birthday_day must be given together",
            );
            Patch::Absent
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

fn check_phones(c: &mut Checker, phones: Vec<PhoneData>) -> Vec<Phone> {
    if phones.len() > 3 {
        c.fail(
            "data.phone_numbers",
            format!("at most 3 phone numbers (got {})", phones.len()),
        );
    }
    let mut out = Vec::with_capacity(phones.len().min(4));
    for (i, phone) in phones.into_iter().enumerate().take(4) {
        c.required_text(
            &format!("data.phone_numbers[{i}].phone_number"),
            &phone.phone_number,
            25,
        );
        match PhoneKind::parse(&phone.kind) {
            Some(kind) => out.push(Phone {
                phone_number: phone.phone_number,
                kind,
            }),
            None => c.fail(
                format!("data.phone_numbers[{i}].kind"),
                "must be home, work, mobile or other",
            ),
        }
    }
    out
}

fn check_addresses(c: &mut Checker, addresses: Vec<AddressData>) -> Vec<Address> {
    if addresses.len() > 3 {
        c.fail(
            "data.street_addresses",
            format!("at most 3 addresses (got {})", addresses.len()),
        );
    }
    let mut out = Vec::with_capacity(addresses.len().min(4));
    for (i, address) in addresses.into_iter().enumerate().take(4) {
        let kind = AddressKind::parse(&address.kind);
        if kind.is_none() {
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
        if let Some(kind) = kind {
            out.push(Address {
                kind,
                street: address.street,
                city: address.city,
                state: address.state,
                postal_code: address.postal_code,
                country: address.country,
            });
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use crate::command::contact::{
        AddressKind, ContactRef, PhoneKind, parse_create, parse_opt_out, parse_ref, parse_sign_up,
        parse_update, parse_upsert,
    };
    use crate::command::patch::Patch;
    use crate::command::rejection::Rejection;

    const ID: &str = "07936f78-662a-11eb-af0a-fa163e56c9b0";

    fn data(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn reasons(rejection: Rejection) -> Vec<(String, String)> {
        rejection
            .fields
            .into_iter()
            .map(|f| (f.field, f.reason))
            .collect()
    }

    #[test]
    fn kinds_read_the_api_spelling_only() {
        for kind in [
            PhoneKind::Home,
            PhoneKind::Work,
            PhoneKind::Mobile,
            PhoneKind::Other,
        ] {
            assert_eq!(PhoneKind::parse(kind.as_str()), Some(kind));
        }
        for kind in [AddressKind::Home, AddressKind::Work, AddressKind::Other] {
            assert_eq!(AddressKind::parse(kind.as_str()), Some(kind));
        }
        for bad in ["pager", "Home", "HOME", " home", "fax", ""] {
            assert_eq!(PhoneKind::parse(bad), None, "{bad:?}");
            assert_eq!(AddressKind::parse(bad), None, "{bad:?}");
        }
        assert_eq!(AddressKind::parse("mobile"), None, "no mobile address");
    }

    #[test]
    fn phones_and_addresses_come_out_with_their_kinds() {
        let changes = parse_upsert(data(json!({
            "email": "pat@example.com",
            "phone_numbers": [
                {"phone_number": "+1 555-0100", "kind": "mobile"},
                {"phone_number": "+1 555-0101"}
            ],
            "street_addresses": [{"kind": "work", "city": "Boston"}]
        })))
        .expect("valid");
        let phones = changes.phone_numbers.expect("given");
        assert_eq!(phones[0].kind, PhoneKind::Mobile);
        assert_eq!(phones[1].kind, PhoneKind::Other, "the default kind");
        let addresses = changes.street_addresses.expect("given");
        assert_eq!(addresses[0].kind, AddressKind::Work);
        assert_eq!(addresses[0].city.as_deref(), Some("Boston"));
    }

    #[test]
    fn unknown_kinds_are_rejected_with_the_accepted_values() {
        let rejection = parse_create(data(json!({
            "email": "pat@example.com",
            "phone_numbers": [{"phone_number": "1", "kind": "pager"}],
            "street_addresses": [{"kind": "mobile"}]
        })))
        .unwrap_err();
        assert_eq!(
            reasons(rejection),
            vec![
                (
                    "data.phone_numbers[0].kind".to_owned(),
                    "must be home, work, mobile or other".to_owned()
                ),
                (
                    "data.street_addresses[0].kind".to_owned(),
                    "must be home, work or other".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn create_and_upsert_hold_the_checked_address() {
        let changes = parse_create(data(json!({"email": "Pat@Example.com"}))).expect("valid");
        assert_eq!(changes.email, "Pat@Example.com", "kept as written");
        assert_eq!(
            ContactRef::Email(changes.email).key(),
            "email:pat@example.com"
        );
        let rejection = parse_upsert(data(json!({"first_name": "Pat"}))).unwrap_err();
        assert_eq!(
            reasons(rejection),
            vec![("data.email".to_owned(), "is required".to_owned())]
        );
        let long = format!("{}@example.com", "x".repeat(70));
        let rejection = parse_upsert(data(json!({"email": long}))).unwrap_err();
        assert_eq!(
            reasons(rejection),
            vec![(
                "data.email".to_owned(),
                "must be at most 80 characters (got 82)".to_owned()
            )]
        );
    }

    #[test]
    fn an_update_by_id_may_change_the_address_and_one_by_address_does_not() {
        let (target, changes) =
            parse_update(data(json!({"contact_id": ID, "email": "new@example.com"})))
                .expect("valid");
        assert_eq!(target, ContactRef::Id(ID.to_owned()));
        assert_eq!(changes.email.expect("a new address"), "new@example.com");
        let (target, changes) = parse_update(data(
            json!({"email": "pat@example.com", "birthday_month": null, "birthday_day": null}),
        ))
        .expect("valid");
        let ContactRef::Email(email) = target else {
            panic!("by e-mail");
        };
        assert_eq!(email, "pat@example.com");
        assert_eq!(changes.email, None);
        assert_eq!(changes.birthday, Patch::Null);
        let rejection =
            parse_update(data(json!({"contact_id": ID, "email": "not an address"}))).unwrap_err();
        assert_eq!(
            reasons(rejection),
            vec![(
                "data.email".to_owned(),
                "is not a valid e-mail address".to_owned()
            )]
        );
    }

    #[test]
    fn the_sign_up_form_takes_at_most_50_characters() {
        let email = format!("{}@example.com", "x".repeat(38));
        let sign_up =
            parse_sign_up(data(json!({"email": email, "list_ids": [ID]}))).expect("50 is fine");
        assert_eq!(sign_up.email, email.as_str());
        let email = format!("{}@example.com", "x".repeat(39));
        let rejection = parse_sign_up(data(json!({"email": email, "list_ids": [ID]}))).unwrap_err();
        assert_eq!(
            reasons(rejection),
            vec![(
                "data.email".to_owned(),
                "must be at most 50 characters (got 51)".to_owned()
            )]
        );
        let rejection = parse_sign_up(data(json!({"email": "", "list_ids": [ID]}))).unwrap_err();
        assert_eq!(
            reasons(rejection),
            vec![("data.email".to_owned(), "is required".to_owned())]
        );
    }

    #[test]
    fn a_sign_up_s_consent_needs_a_source_and_an_rfc_3339_time() {
        let sign_up = parse_sign_up(data(json!({"email": "pat@example.com", "list_ids": [ID],
            "consent": {"source": "footer form", "at": "2026-12-01T10:30:00+01:00"}})))
        .expect("valid");
        let consent = sign_up.consent.expect("given");
        assert_eq!(consent.source, "footer form");
        assert_eq!(consent.at.to_rfc3339(), "2026-12-01T09:30:00+00:00");
        let none = parse_sign_up(data(json!({"email": "pat@example.com", "list_ids": [ID]})))
            .expect("valid");
        assert_eq!(none.consent, None);
        let rejection = parse_sign_up(data(json!({"email": "pat@example.com", "list_ids": [ID],
            "consent": {"at": "2026-12-01"}})))
        .unwrap_err();
        assert_eq!(
            reasons(rejection),
            vec![
                ("data.consent.source".to_owned(), "is required".to_owned()),
                (
                    "data.consent.at".to_owned(),
                    "must be an RFC 3339 time such as 2026-12-03T10:00:00Z".to_owned()
                ),
            ]
        );
        let rejection = parse_sign_up(data(json!({"email": "pat@example.com", "list_ids": [ID],
            "consent": {"source": "x", "at": "2026-12-01T10:30:00Z", "ip": "1"}})))
        .unwrap_err();
        assert_eq!(reasons(rejection)[0].0, "data.consent.ip");
    }

    #[test]
    fn an_opt_out_names_one_contact_and_a_reason_of_at_most_255_characters() {
        let opt_out = parse_opt_out(data(json!({"contact_id": ID, "reason": "r".repeat(255)})))
            .expect("valid");
        assert_eq!(opt_out.target, ContactRef::Id(ID.to_owned()));
        assert_eq!(opt_out.reason.map(|r| r.len()), Some(255));
        let rejection = parse_opt_out(data(
            json!({"email": "pat@example.com", "reason": "r".repeat(256)}),
        ))
        .unwrap_err();
        assert_eq!(
            reasons(rejection),
            vec![(
                "data.reason".to_owned(),
                "must be at most 255 characters (got 256)".to_owned()
            )]
        );
        let rejection = parse_opt_out(data(json!({"reason": "moved"}))).unwrap_err();
        assert_eq!(
            reasons(rejection),
            vec![(
                "data.contact_id".to_owned(),
                "either contact_id or email is required".to_owned()
            )]
        );
    }

    #[test]
    fn debug_output_of_contact_commands_hides_addresses() {
        let changes = parse_upsert(data(json!({"email": "pat.lee@example.com"}))).expect("valid");
        let target = parse_ref(data(json!({"email": "pat.lee@example.com"}))).expect("valid");
        let sign_up = parse_sign_up(data(
            json!({"email": "pat.lee@example.com", "list_ids": [ID]}),
        ))
        .expect("valid");
        let shown = format!("{changes:?} {target:?} {sign_up:?}");
        assert!(!shown.contains("pat.lee"), "{shown}");
    }
}
