//! Custom-field, list, account and mirror commands: wire shapes and checks.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::check::{self, Checker};
use super::rejection::Rejection;

/// Types Constant Contact accepts for new custom fields on every account (§5).
pub const CUSTOM_FIELD_TYPES: [&str; 2] = ["string", "date"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomFieldData {
    #[serde(default)]
    custom_field_id: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default, rename = "type")]
    field_type: Option<String>,
}

/// `custom_field.create` / `custom_field.update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFieldSpec {
    pub custom_field_id: Option<String>,
    pub label: String,
    pub field_type: Option<String>,
}

pub fn parse_custom_field(
    update: bool,
    data: Map<String, Value>,
) -> Result<CustomFieldSpec, Rejection> {
    let raw: CustomFieldData = check::data(data)?;
    let mut c = Checker::new();
    match (&raw.custom_field_id, update) {
        (Some(id), true) => {
            c.uuid("data.custom_field_id", id);
        }
        (None, true) => c.fail("data.custom_field_id", "is required"),
        (Some(_), false) => c.fail(
            "data.custom_field_id",
            "is assigned by Constant Contact; leave it out",
        ),
        (None, false) => {}
    }
    let label = raw.label.unwrap_or_default();
    c.required_text("data.label", &label, 50);
    match (&raw.field_type, update) {
        (Some(t), _) if !CUSTOM_FIELD_TYPES.contains(&t.as_str()) => {
            c.fail("data.type", "must be \"string\" or \"date\"")
        }
        (None, false) => c.fail("data.type", "is required (\"string\" or \"date\")"),
        _ => {}
    }
    c.finish(CustomFieldSpec {
        custom_field_id: raw.custom_field_id,
        label,
        field_type: raw.field_type,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdData {
    #[serde(default)]
    custom_field_id: Option<String>,
}

/// `custom_field.delete`.
pub fn parse_custom_field_id(data: Map<String, Value>) -> Result<String, Rejection> {
    let raw: IdData = check::data(data)?;
    let mut c = Checker::new();
    let id = raw.custom_field_id.unwrap_or_default();
    c.required_uuid("data.custom_field_id", &id);
    c.finish(id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoData {}

/// Commands without data (`custom_field.list`, `list.list`, `segment.list`,
/// `account.privileges.get`).
pub fn parse_empty(data: Map<String, Value>) -> Result<(), Rejection> {
    let _: NoData = check::data(data)?;
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListData {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    favorite: Option<bool>,
}

/// `list.create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSpec {
    pub name: String,
    pub description: Option<String>,
    pub favorite: bool,
}

pub fn parse_list(data: Map<String, Value>) -> Result<ListSpec, Rejection> {
    let raw: ListData = check::data(data)?;
    let mut c = Checker::new();
    let name = raw.name.unwrap_or_default();
    c.required_text("data.name", &name, 255);
    if let Some(description) = &raw.description {
        c.long_text("data.description", description, 1000);
    }
    c.finish(ListSpec {
        name,
        description: raw.description,
        favorite: raw.favorite.unwrap_or(false),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListUpdateData {
    #[serde(default)]
    list_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    favorite: Option<bool>,
}

/// `list.update`: which list and what changes; fields left out keep their value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListChanges {
    pub list_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub favorite: Option<bool>,
}

/// `list.update`: `list_id` (a UUID) and at least one of `name` (1-255, spec
/// `updateList_request`), `description` (at most 1,000, as for `list.create`) and `favorite`.
pub fn parse_list_update(data: Map<String, Value>) -> Result<ListChanges, Rejection> {
    let raw: ListUpdateData = check::data(data)?;
    let mut c = Checker::new();
    let list_id = raw.list_id.unwrap_or_default();
    c.required_uuid("data.list_id", &list_id);
    if let Some(name) = &raw.name {
        c.required_text("data.name", name, 255);
    }
    if let Some(description) = &raw.description {
        c.long_text("data.description", description, 1000);
    }
    if raw.name.is_none() && raw.description.is_none() && raw.favorite.is_none() {
        c.fail(
            "data",
            "needs at least one of name, description or favorite to change",
        );
    }
    c.finish(ListChanges {
        list_id,
        name: raw.name,
        description: raw.description,
        favorite: raw.favorite,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListIdData {
    #[serde(default)]
    list_id: Option<String>,
}

/// `list.delete`: `list_id`, a UUID.
pub fn parse_list_delete(data: Map<String, Value>) -> Result<String, Rejection> {
    let raw: ListIdData = check::data(data)?;
    let mut c = Checker::new();
    let list_id = raw.list_id.unwrap_or_default();
    c.required_uuid("data.list_id", &list_id);
    c.finish(list_id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailsData {
    #[serde(default)]
    confirm_status: Option<String>,
}

/// `account.emails.list`: optional `confirm_status` filter (CONFIRMED or UNCONFIRMED).
pub fn parse_account_emails(data: Map<String, Value>) -> Result<Option<String>, Rejection> {
    let raw: EmailsData = check::data(data)?;
    let mut c = Checker::new();
    if let Some(status) = &raw.confirm_status
        && !matches!(status.as_str(), "CONFIRMED" | "UNCONFIRMED")
    {
        c.fail("data.confirm_status", "must be CONFIRMED or UNCONFIRMED");
    }
    c.finish(raw.confirm_status)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailAddData {
    #[serde(default)]
    email_address: Option<String>,
}

/// `account.email.add`.
pub fn parse_account_email_add(data: Map<String, Value>) -> Result<String, Rejection> {
    let raw: EmailAddData = check::data(data)?;
    let mut c = Checker::new();
    let email = raw.email_address.unwrap_or_default();
    if email.is_empty() {
        c.fail("data.email_address", "is required");
    } else {
        c.email("data.email_address", &email, 80);
    }
    c.finish(email)
}

/// Mirrored resources.
pub const MIRROR_RESOURCES: [&str; 7] = [
    "contacts",
    "custom_fields",
    "lists",
    "tags",
    "segments",
    "campaigns",
    "reports",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MirrorData {
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    full: Option<bool>,
}

/// `mirror.run`: which resource (all when absent) and whether to run a full pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSpec {
    pub resource: Option<String>,
    pub full: bool,
}

pub fn parse_mirror(data: Map<String, Value>) -> Result<MirrorSpec, Rejection> {
    let raw: MirrorData = check::data(data)?;
    let mut c = Checker::new();
    if let Some(resource) = &raw.resource
        && !MIRROR_RESOURCES.contains(&resource.as_str())
    {
        c.fail(
            "data.resource",
            "must be contacts, custom_fields, lists, tags, segments, campaigns or reports",
        );
    }
    c.finish(MirrorSpec {
        resource: raw.resource,
        full: raw.full.unwrap_or(false),
    })
}
