//! Contact request bodies: `POST /contacts` ([`ContactCreate`]), `PUT /contacts/{id}`
//! ([`ContactPut`], built from a fetched contact by [`Contact::to_put`]) and
//! `POST /contacts/sign_up_form` ([`SignUpForm`]) with its answer.
//!
//! PUT replaces every core field: one left out is overwritten with null, while a subresource left
//! out is kept (shared/reference/constant-contact-v3.md §4.5, §12 fact 1). So `ContactPut`'s core
//! fields are copied from the fetched contact, and its subresources are `Option<Vec<_>>`: `None`
//! is not sent (kept as it is), `Some(vec![])` empties it.

use serde::{Deserialize, Serialize};

use crate::api::model::contacts::{Contact, ContactCustomField, Note, PermissionToSend, Source};

/// The `email_address` object sent in POST and PUT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailAddressInput {
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_to_send: Option<PermissionToSend>,
    /// Writable in PUT only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_out_reason: Option<String>,
}

impl EmailAddressInput {
    pub fn new(address: &str, permission_to_send: Option<PermissionToSend>) -> Self {
        Self {
            address: address.to_owned(),
            permission_to_send,
            opt_out_reason: None,
        }
    }
}

/// A phone number as sent (ids and timestamps are the API's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneNumberInput {
    pub phone_number: String,
    /// `home`, `work`, `mobile` or `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A street address as sent; `kind` (`home`, `work`, `other`) is required by the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreetAddressInput {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The body of `POST /contacts`. The API wants `create_source` and at least one of the names or
/// the e-mail address (§4.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactCreate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<EmailAddressInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    pub create_source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday_month: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday_day: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anniversary: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<ContactCustomField>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phone_numbers: Vec<PhoneNumberInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub street_addresses: Vec<StreetAddressInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub list_memberships: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub taggings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

impl ContactCreate {
    /// An empty body created by `create_source`; set the fields you need.
    pub fn new(create_source: Source) -> Self {
        Self {
            email_address: None,
            first_name: None,
            last_name: None,
            job_title: None,
            company_name: None,
            create_source,
            birthday_month: None,
            birthday_day: None,
            anniversary: None,
            custom_fields: Vec::new(),
            phone_numbers: Vec::new(),
            street_addresses: Vec::new(),
            list_memberships: Vec::new(),
            taggings: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// The body of `PUT /contacts/{contact_id}`: a complete replacement of the core fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactPut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<EmailAddressInput>,
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
    pub update_source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<Vec<ContactCustomField>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_numbers: Option<Vec<PhoneNumberInput>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_addresses: Option<Vec<StreetAddressInput>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_memberships: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taggings: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<Note>>,
}

impl ContactPut {
    /// A body holding only `update_source`: every core field would be nulled. Start from
    /// [`Contact::to_put`] instead unless that is what you mean.
    pub fn new(update_source: Source) -> Self {
        Self {
            email_address: None,
            first_name: None,
            last_name: None,
            job_title: None,
            company_name: None,
            birthday_month: None,
            birthday_day: None,
            anniversary: None,
            update_source,
            custom_fields: None,
            phone_numbers: None,
            street_addresses: None,
            list_memberships: None,
            taggings: None,
            notes: None,
        }
    }
}

impl Contact {
    /// A PUT body that changes nothing: every core field as fetched (the e-mail address with
    /// its permission and opt-out reason), and every subresource the fetch included. Fetch with
    /// the includes you intend to change, apply the change to the body, then PUT it.
    pub fn to_put(&self, update_source: Source) -> ContactPut {
        ContactPut {
            email_address: self.email_address.as_ref().map(|email| EmailAddressInput {
                address: email.address.clone(),
                permission_to_send: email.permission_to_send.clone(),
                opt_out_reason: email.opt_out_reason.clone(),
            }),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            job_title: self.job_title.clone(),
            company_name: self.company_name.clone(),
            birthday_month: self.birthday_month,
            birthday_day: self.birthday_day,
            anniversary: self.anniversary.clone(),
            update_source,
            custom_fields: self.custom_fields.clone(),
            phone_numbers: self.phone_numbers.as_ref().map(|phones| {
                phones
                    .iter()
                    .map(|phone| PhoneNumberInput {
                        phone_number: phone.phone_number.clone(),
                        kind: phone.kind.clone(),
                    })
                    .collect()
            }),
            street_addresses: self.street_addresses.as_ref().map(|addresses| {
                addresses
                    .iter()
                    .map(|address| StreetAddressInput {
                        kind: address.kind.clone(),
                        street: address.street.clone(),
                        city: address.city.clone(),
                        state: address.state.clone(),
                        postal_code: address.postal_code.clone(),
                        country: address.country.clone(),
                    })
                    .collect()
            }),
            list_memberships: self.list_memberships.clone(),
            taggings: self.taggings.clone(),
            notes: self.notes.clone(),
        }
    }
}

/// The body of `POST /contacts/sign_up_form`: create-or-update by e-mail. `email_address` is a
/// plain string here and `list_memberships` must hold 1–50 list ids. Updates are partial and
/// lists/custom fields are merged, never removed; the contact's permission becomes `explicit`
/// (§4.7), so use it only for genuine opt-ins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SignUpForm {
    pub email_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    pub list_memberships: Vec<String>,
    /// `{custom_field_id, value}` pairs (up to 50; `choice_ids` is not part of this body).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<ContactCustomField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anniversary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday_month: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday_day: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_address: Option<StreetAddressInput>,
}

/// The answer of `sign_up_form`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SignUpResult {
    pub contact_id: String,
    /// The API's word for what happened (`created`/`updated` per a third party; unconfirmed).
    #[serde(default)]
    pub action: Option<String>,
    /// Whether the API answered 201 (a new contact) rather than 200 (an existing one).
    #[serde(skip)]
    pub created: bool,
}

#[cfg(test)]
#[path = "contact_input_tests.rs"]
mod tests;
