//! Contacts as the API returns them: core properties, the `email_address` object and the
//! subresources that only come back when asked for with `include=`
//! (shared/reference/constant-contact-v3.md §4.1), and a page of them.
//!
//! Subresource fields are `Option<Vec<_>>`: `None` means "not included in the answer", which
//! [`Contact::to_put`](crate::api::model::contact_input) relies on to leave them untouched.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::api::model::enums::string_enum;
use crate::api::model::{paging, time};

string_enum! {
    /// Who created or last updated a contact (`create_source`, `update_source`, `opt_in_source`).
    pub enum Source {
        Contact = "Contact",
        Account = "Account",
    }
}

string_enum! {
    /// `email_address.permission_to_send`.
    pub enum PermissionToSend {
        Explicit = "explicit",
        Implicit = "implicit",
        NotSet = "not_set",
        PendingConfirmation = "pending_confirmation",
        TempHold = "temp_hold",
        Unsubscribed = "unsubscribed",
    }
}

string_enum! {
    /// A subresource to ask for with `include=`.
    pub enum Include {
        CustomFields = "custom_fields",
        ListMemberships = "list_memberships",
        PhoneNumbers = "phone_numbers",
        StreetAddresses = "street_addresses",
        Taggings = "taggings",
        Notes = "notes",
    }
}

impl Include {
    /// Every subresource, for a full read before a PUT.
    pub const ALL: [Include; 6] = [
        Include::CustomFields,
        Include::ListMemberships,
        Include::PhoneNumbers,
        Include::StreetAddresses,
        Include::Taggings,
        Include::Notes,
    ];

    /// The comma-separated value of the `include` parameter.
    pub fn join(includes: &[Include]) -> String {
        includes
            .iter()
            .map(Include::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A contact. Core fields are present when set; subresources only when included.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Contact {
    pub contact_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<EmailAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday_month: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday_day: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anniversary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_source: Option<Source>,
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
    /// Only on deleted contacts; the API sends a bare date (midnight UTC here).
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<Vec<ContactCustomField>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_memberships: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_numbers: Option<Vec<PhoneNumber>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_addresses: Option<Vec<StreetAddress>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taggings: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<Note>>,
}

impl Contact {
    /// The e-mail address, if the contact has one.
    pub fn email(&self) -> Option<&str> {
        self.email_address.as_ref().map(|e| e.address.as_str())
    }

    /// Whether the contact is soft-deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

/// The `email_address` object of a contact.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EmailAddress {
    #[serde(default)]
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_to_send: Option<PermissionToSend>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_in_source: Option<Source>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub opt_in_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_source: Option<Source>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub opt_out_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_reason: Option<String>,
    /// `pending`, `confirmed` or `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_status: Option<String>,
}

/// A custom-field value on a contact, keyed by `custom_field_id` (JSON import uses `cf:<name>`
/// instead, see [`ImportRow`](crate::api::model::ImportRow)).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ContactCustomField {
    pub custom_field_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Choice ids of select-type fields. The spec types them as strings, the custom-field
    /// resource as integers; both decode, and they are written back as strings.
    #[serde(
        default,
        deserialize_with = "strings_or_numbers",
        skip_serializing_if = "Option::is_none"
    )]
    pub choice_ids: Option<Vec<String>>,
}

impl ContactCustomField {
    /// A plain value for the field.
    pub fn new(custom_field_id: &str, value: &str) -> Self {
        Self {
            custom_field_id: custom_field_id.to_owned(),
            value: Some(value.to_owned()),
            choice_ids: None,
        }
    }
}

/// A phone number subresource.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PhoneNumber {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    #[serde(default)]
    pub phone_number: String,
    /// `home`, `work`, `mobile` or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_source: Option<Source>,
}

/// A street address subresource.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StreetAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address_id: Option<String>,
    /// `home`, `work` or `other` (required by the API on input).
    #[serde(default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
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
}

/// A note about the contact (also the shape sent back in a PUT).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Note {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub content: String,
}

/// One page of `GET /contacts`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContactsPage {
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Total matching, only when asked for with `include_count`.
    #[serde(default)]
    pub contacts_count: Option<u64>,
    /// The next page's href (follow verbatim), `None` on the last page.
    #[serde(rename = "_links", default, deserialize_with = "paging::next_href")]
    pub next: Option<String>,
}

/// Decodes a list of ids written as strings or as numbers.
fn strings_or_numbers<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    let values = Option::<Vec<serde_json::Value>>::deserialize(deserializer)?;
    Ok(values.map(|values| {
        values
            .into_iter()
            .filter_map(|value| match value {
                serde_json::Value::String(text) => Some(text),
                serde_json::Value::Number(number) => Some(number.to_string()),
                _ => None,
            })
            .collect()
    }))
}

#[cfg(test)]
#[path = "contacts_tests.rs"]
mod tests;
