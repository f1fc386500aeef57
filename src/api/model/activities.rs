//! Bulk activities (shared/reference/constant-contact-v3.md §7): the activity status object
//! every `POST /activities/*` (and `DELETE /contact_lists/{id}`) answers with, the JSON import
//! body, the export body and the bodies of the four bulk delete activities.
//!
//! JSON import rows name custom fields `cf:<field name>` (the field's derived `name`, not its
//! label or id). Addresses use the unprefixed keys (`street`, `city`, …, kind `home` by default)
//! plus the `work_*` and `other_*` variants; the `home_*` variants are left out because the spec
//! spells the home country key `home country` (with a space) and the doc calls that a likely typo,
//! so nothing here depends on which spelling the API accepts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::api::model::enums::string_enum;
use crate::api::model::paging::Link;
use crate::api::model::time;

string_enum! {
    /// Where a bulk activity is: `initialized` → `processing` → a terminal state.
    pub enum ActivityState {
        Initialized = "initialized",
        Processing = "processing",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
        TimedOut = "timed_out",
    }
}

impl ActivityState {
    /// Whether the activity will not change any more. A state this version does not know is
    /// treated as still running: the poller's own deadline ends the wait.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ActivityState::Completed
                | ActivityState::Failed
                | ActivityState::Cancelled
                | ActivityState::TimedOut
        )
    }
}

/// An activity's counters (which ones are present depends on the kind and the stage). The bulk
/// deletes differ (spec `*_201_response_status`): `contact_delete` and `contacts_tags_delete`
/// give `items_total_count`/`items_completed_count` (contact_delete adds `list_count` when it
/// was given lists); `list_delete` gives only `list_count`, the lists deleted; and
/// `custom_fields_delete` has no `status` at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ActivityCounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_total_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_completed_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correctable_count: Option<u64>,
    /// Contacts not added to the lists, e.g. because they had unsubscribed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cannot_add_to_list_count: Option<u64>,
    /// Lists targeted (membership activities, `contact_delete` by `list_ids`) or, for
    /// `list_delete`, lists deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_count: Option<u64>,
}

/// `_links` of an activity: itself, and the results (the export file) once completed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ActivityLinks {
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub self_link: Option<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Link>,
}

/// A bulk activity's status.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Activity {
    pub activity_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ActivityState>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_done: Option<f64>,
    /// Problems with the job, as text (the spec has strings; objects with a `message` decode too).
    #[serde(
        default,
        deserialize_with = "error_texts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub activity_errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ActivityCounts>,
    #[serde(rename = "_links", default)]
    pub links: ActivityLinks,
}

impl Activity {
    /// Whether the activity has reached a terminal state.
    pub fn is_terminal(&self) -> bool {
        self.state.as_ref().is_some_and(ActivityState::is_terminal)
    }

    /// The export file's href (follow verbatim), once the export has completed.
    pub fn results_href(&self) -> Option<&str> {
        self.links.results.as_ref().and_then(Link::href)
    }
}

/// One contact of a JSON import. Unset fields are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportRow {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday_month: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday_day: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anniversary: Option<String>,
    /// A phone of kind `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_phone: Option<String>,
    /// The home address (the unprefixed keys default to kind `home`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_street2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_zip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_street2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_zip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_country: Option<String>,
    /// Custom-field values by field `name` (without the prefix); sent as `cf:<name>` keys.
    #[serde(flatten, serialize_with = "cf_columns")]
    pub custom_fields: BTreeMap<String, String>,
}

impl ImportRow {
    pub fn new(email: &str) -> Self {
        Self {
            email: email.to_owned(),
            ..Self::default()
        }
    }
}

fn cf_columns<S: Serializer>(
    columns: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(
        columns
            .iter()
            .map(|(name, value)| (format!("cf:{name}"), value)),
    )
}

/// The body of `POST /activities/contacts_json_import` (≤ 40,000 rows, < 4 MB, 1–50 lists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContactsJsonImport {
    pub import_data: Vec<ImportRow>,
    pub list_ids: Vec<String>,
}

/// The body of `POST /activities/contacts_taggings_add` and `_remove` (the spec's
/// `createTagRemoveActivity_request`) with the only source ctct-sync uses: contact ids
/// (at most 500), and the tags (at most 50).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaggingRequest {
    pub source: TaggingSource,
    pub tag_ids: Vec<String>,
}

/// The contacts a tagging activity applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaggingSource {
    pub contact_ids: Vec<String>,
}

/// The body of `POST /activities/add_list_memberships` and `remove_list_memberships` (the
/// spec's `createListAddActivity_request` / `createListRemoveActivity_request`) with the only
/// source ctct-sync uses: contact ids (at most 500), and the target lists (at most 50).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipRequest {
    pub source: MembershipSource,
    pub list_ids: Vec<String>,
}

/// The contacts a membership activity adds to (removes from) the lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipSource {
    pub contact_ids: Vec<String>,
}

/// The body of one of the four bulk delete activities: a single array of ids under the key
/// the endpoint names (`{"contact_ids": [...]}` and so on). Limits per the spec: 500 contacts,
/// 100 lists, 500 tags, 100 custom fields (the spec's `maxItems: 0` for custom fields
/// contradicts its own description of "up to 100"). `contact_delete` also takes `list_ids`
/// (≤ 50, every member deleted); ctct-sync does not use that form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeleteRequest<'a> {
    /// `POST /activities/contact_delete` (`createDeleteActivity`).
    #[serde(rename = "contact_ids")]
    Contacts(&'a [String]),
    /// `POST /activities/list_delete` (`createListDeleteActivity`).
    #[serde(rename = "list_ids")]
    Lists(&'a [String]),
    /// `POST /activities/contacts_tags_delete` (`createTagDeleteActivity`).
    #[serde(rename = "tag_ids")]
    Tags(&'a [String]),
    /// `POST /activities/custom_fields_delete` (`postCustomFieldDelete`).
    #[serde(rename = "custom_field_ids")]
    CustomFields(&'a [String]),
}

impl DeleteRequest<'_> {
    /// The route's name (for spans and errors) and its path.
    pub fn route(&self) -> (&'static str, &'static str) {
        match self {
            DeleteRequest::Contacts(_) => (
                "POST /activities/contact_delete",
                "/activities/contact_delete",
            ),
            DeleteRequest::Lists(_) => ("POST /activities/list_delete", "/activities/list_delete"),
            DeleteRequest::Tags(_) => (
                "POST /activities/contacts_tags_delete",
                "/activities/contacts_tags_delete",
            ),
            DeleteRequest::CustomFields(_) => (
                "POST /activities/custom_fields_delete",
                "/activities/custom_fields_delete",
            ),
        }
    }
}

/// The body of `POST /activities/contact_exports`; all optional, the default exports every
/// contact. Filters combine only as documented (e.g. `contact_ids` only with `status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contact_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub list_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_subscriber: Option<bool>,
    /// Column names, e.g. `email_address`, `first_name`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// e.g. `active`, `unsubscribed`, `removed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ExportExclude>,
}

/// Contacts to leave out of an export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportExclude {
    pub contact_ids: Vec<String>,
}

/// Decodes `activity_errors` written as strings or as `{"message": …}` objects.
fn error_texts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let values = Option::<Vec<serde_json::Value>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(values
        .into_iter()
        .filter_map(|value| match value {
            serde_json::Value::String(text) => Some(text),
            serde_json::Value::Null => None,
            serde_json::Value::Object(object) => match object.get("message") {
                Some(serde_json::Value::String(message)) => Some(message.clone()),
                _ => Some(serde_json::Value::Object(object).to_string()),
            },
            other => Some(other.to_string()),
        })
        .collect())
}

#[cfg(test)]
#[path = "activities_tests.rs"]
mod tests;
