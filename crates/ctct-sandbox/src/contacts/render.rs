//! Contact JSON as the API renders it (spec `getContactById_200_response`): core properties
//! always, subresources only when asked for with `include=`; absent values are omitted rather
//! than sent as null. Serialised straight from the compact model, no intermediate values.

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::model::{Contact, Secs};
use crate::clock::{fmt_date, fmt_secs};
use crate::custom_fields::CustomFields;
use crate::lists::Lists;

/// The `include=` subresources, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Include(pub(crate) u8);

impl Include {
    pub(crate) const CUSTOM_FIELDS: u8 = 1;
    pub(crate) const LIST_MEMBERSHIPS: u8 = 2;
    pub(crate) const PHONE_NUMBERS: u8 = 4;
    pub(crate) const STREET_ADDRESSES: u8 = 8;
    pub(crate) const TAGGINGS: u8 = 16;
    pub(crate) const NOTES: u8 = 32;
    pub(crate) const ALL: Include = Include(63);

    const NAMES: [(&'static str, u8); 6] = [
        ("custom_fields", Self::CUSTOM_FIELDS),
        ("list_memberships", Self::LIST_MEMBERSHIPS),
        ("phone_numbers", Self::PHONE_NUMBERS),
        ("street_addresses", Self::STREET_ADDRESSES),
        ("taggings", Self::TAGGINGS),
        ("notes", Self::NOTES),
    ];

    /// Parses the csv items; `Err` names the first unknown one.
    pub(crate) fn parse(items: &[String]) -> Result<Self, String> {
        let mut bits = 0;
        for item in items {
            match Self::NAMES.iter().find(|(name, _)| name == item) {
                Some((_, bit)) => bits |= bit,
                None => return Err(item.clone()),
            }
        }
        Ok(Self(bits))
    }

    pub(crate) fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// Serialises one contact.
pub(crate) struct ContactJson<'a> {
    pub(crate) contact: &'a Contact,
    pub(crate) lists: &'a Lists,
    pub(crate) fields: &'a CustomFields,
    pub(crate) include: Include,
}

fn ts(secs: Secs) -> String {
    fmt_secs(secs * 1000)
}

struct EmailJson<'a>(&'a Contact);

impl Serialize for EmailJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("address", c.email.as_deref().unwrap_or_default())?;
        map.serialize_entry("permission_to_send", c.permission.as_str())?;
        map.serialize_entry("created_at", &ts(c.email_created_at.max(c.created_at)))?;
        map.serialize_entry("updated_at", &ts(c.email_updated_at.max(c.created_at)))?;
        if let Some(source) = c.opt_in_source {
            map.serialize_entry("opt_in_source", source.as_str())?;
        }
        if c.opt_in_date != 0 {
            map.serialize_entry("opt_in_date", &ts(c.opt_in_date))?;
        }
        if let Some(source) = c.opt_out_source {
            map.serialize_entry("opt_out_source", source.as_str())?;
        }
        if c.opt_out_date != 0 {
            map.serialize_entry("opt_out_date", &ts(c.opt_out_date))?;
        }
        if let Some(reason) = &c.opt_out_reason {
            map.serialize_entry("opt_out_reason", reason)?;
        }
        map.serialize_entry("confirm_status", c.confirm.as_str())?;
        map.end()
    }
}

struct CustomJson<'a>(&'a ContactJson<'a>);

impl Serialize for CustomJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Item<'b> {
            custom_field_id: uuid::Uuid,
            value: &'b str,
        }
        let fields = self.0.fields;
        serializer.collect_seq(
            self.0
                .contact
                .custom
                .iter()
                .filter(|(f, _)| fields.is_live(*f))
                .map(|(f, v)| Item {
                    custom_field_id: fields.id_of(*f),
                    value: v,
                }),
        )
    }
}

struct ListsJson<'a>(&'a ContactJson<'a>);

impl Serialize for ListsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let lists = self.0.lists;
        serializer.collect_seq(
            self.0
                .contact
                .lists
                .iter()
                .filter(|l| lists.is_live(**l))
                .map(|l| lists.id_of(*l)),
        )
    }
}

impl Serialize for ContactJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = self.contact;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("contact_id", &c.id)?;
        if c.email.is_some() {
            map.serialize_entry("email_address", &EmailJson(c))?;
        }
        for (key, value) in [
            ("first_name", &c.first_name),
            ("last_name", &c.last_name),
            ("job_title", &c.job_title),
            ("company_name", &c.company_name),
        ] {
            if let Some(value) = value {
                map.serialize_entry(key, value)?;
            }
        }
        if c.birthday_month != 0 {
            map.serialize_entry("birthday_month", &c.birthday_month)?;
            map.serialize_entry("birthday_day", &c.birthday_day)?;
        }
        if let Some(anniversary) = &c.anniversary {
            map.serialize_entry("anniversary", anniversary)?;
        }
        if let Some(source) = c.update_source {
            map.serialize_entry("update_source", source.as_str())?;
        }
        map.serialize_entry("create_source", c.create_source.as_str())?;
        map.serialize_entry("created_at", &ts(c.created_at))?;
        map.serialize_entry("updated_at", &ts(c.updated_at))?;
        if c.deleted_at != 0 {
            map.serialize_entry("deleted_at", &fmt_date(c.deleted_at * 1000))?;
        }
        if self.include.has(Include::CUSTOM_FIELDS) {
            map.serialize_entry("custom_fields", &CustomJson(self))?;
        }
        let extra = c.extras();
        if self.include.has(Include::PHONE_NUMBERS) {
            map.serialize_entry(
                "phone_numbers",
                &extra
                    .phones
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "phone_number_id": p.id,
                            "phone_number": p.number,
                            "kind": p.kind,
                            "created_at": ts(p.created_at),
                            "updated_at": ts(p.updated_at),
                            "create_source": p.create_source.as_str(),
                            "update_source": p.update_source.as_str(),
                        })
                    })
                    .collect::<Vec<_>>(),
            )?;
        }
        if self.include.has(Include::STREET_ADDRESSES) {
            map.serialize_entry(
                "street_addresses",
                &extra
                    .addresses
                    .iter()
                    .map(|a| {
                        let mut v = serde_json::json!({
                            "street_address_id": a.id,
                            "kind": a.kind,
                            "created_at": ts(a.created_at),
                            "updated_at": ts(a.updated_at),
                        });
                        for (key, value) in [
                            ("street", &a.street),
                            ("city", &a.city),
                            ("state", &a.state),
                            ("postal_code", &a.postal_code),
                            ("country", &a.country),
                        ] {
                            if let Some(value) = value {
                                v[key] = serde_json::Value::from(value.as_str());
                            }
                        }
                        v
                    })
                    .collect::<Vec<_>>(),
            )?;
        }
        if self.include.has(Include::LIST_MEMBERSHIPS) {
            map.serialize_entry("list_memberships", &ListsJson(self))?;
        }
        if self.include.has(Include::TAGGINGS) {
            map.serialize_entry("taggings", &extra.taggings)?;
        }
        if self.include.has(Include::NOTES) {
            map.serialize_entry(
                "notes",
                &extra
                    .notes
                    .iter()
                    .map(|n| {
                        serde_json::json!({
                            "note_id": n.id,
                            "created_at": ts(n.created_at),
                            "content": n.content,
                        })
                    })
                    .collect::<Vec<_>>(),
            )?;
        }
        map.end()
    }
}
