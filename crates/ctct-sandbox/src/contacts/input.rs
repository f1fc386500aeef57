//! Request bodies of the contact endpoints and their checks (reference §4.3–4.7): field
//! lengths, e-mail syntax, enums, anniversary formats, birthday pairs, subresource caps and
//! references to existing lists and custom fields. Problems are collected and reported
//! together, comma separated, in one `contacts.api.validation.error` (observed shape).

use serde::Deserialize;
use uuid::Uuid;

use super::model::{Permission, Source};
use crate::custom_fields::CustomFields;
use crate::errors::{ApiError, Area};
use crate::lists::Lists;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EmailIn {
    pub(crate) address: Option<String>,
    pub(crate) permission_to_send: Option<String>,
    pub(crate) opt_out_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CustomFieldIn {
    pub(crate) custom_field_id: Option<String>,
    pub(crate) value: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PhoneIn {
    pub(crate) phone_number: Option<String>,
    pub(crate) kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AddressIn {
    pub(crate) kind: Option<String>,
    pub(crate) street: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) postal_code: Option<String>,
    pub(crate) country: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NoteIn {
    pub(crate) content: Option<String>,
}

/// Body of `POST /contacts` and `PUT /contacts/{id}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ContactIn {
    pub(crate) email_address: Option<EmailIn>,
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) job_title: Option<String>,
    pub(crate) company_name: Option<String>,
    pub(crate) birthday_month: Option<i64>,
    pub(crate) birthday_day: Option<i64>,
    pub(crate) anniversary: Option<String>,
    pub(crate) create_source: Option<String>,
    pub(crate) update_source: Option<String>,
    pub(crate) custom_fields: Option<Vec<CustomFieldIn>>,
    pub(crate) phone_numbers: Option<Vec<PhoneIn>>,
    pub(crate) street_addresses: Option<Vec<AddressIn>>,
    pub(crate) list_memberships: Option<Vec<String>>,
    pub(crate) taggings: Option<Vec<String>>,
    pub(crate) notes: Option<Vec<NoteIn>>,
    pub(crate) sms_channel: Option<serde_json::Value>,
}

/// Body of `POST /contacts/sign_up_form` (e-mail is a plain string here).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignUpIn {
    pub(crate) email_address: Option<String>,
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) job_title: Option<String>,
    pub(crate) company_name: Option<String>,
    pub(crate) phone_number: Option<String>,
    pub(crate) list_memberships: Option<Vec<String>>,
    pub(crate) custom_fields: Option<Vec<CustomFieldIn>>,
    pub(crate) anniversary: Option<String>,
    pub(crate) birthday_month: Option<i64>,
    pub(crate) birthday_day: Option<i64>,
    pub(crate) street_address: Option<AddressIn>,
    pub(crate) sms_channel: Option<serde_json::Value>,
}

/// Checked address.
#[derive(Debug, Clone)]
pub(crate) struct AddressOk {
    pub(crate) kind: String,
    pub(crate) street: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) postal_code: Option<String>,
    pub(crate) country: Option<String>,
}

/// Checked core properties (`None` = absent or blank).
#[derive(Debug, Default)]
pub(crate) struct CoreOk {
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) job_title: Option<String>,
    pub(crate) company_name: Option<String>,
    pub(crate) birthday: Option<(u8, u8)>,
    pub(crate) anniversary: Option<String>,
}

/// Checked subresources (`None` = omitted from the body).
#[derive(Debug, Default)]
pub(crate) struct SubsOk {
    pub(crate) custom: Option<Vec<(u32, Box<str>)>>,
    pub(crate) lists: Option<Vec<u32>>,
    pub(crate) phones: Option<Vec<(String, String)>>,
    pub(crate) addresses: Option<Vec<AddressOk>>,
    pub(crate) taggings: Option<Vec<Uuid>>,
    pub(crate) notes: Option<Vec<String>>,
}

/// Collected validation problems.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<String>);

impl Problems {
    pub(crate) fn push(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    pub(crate) fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(Area::Contacts, self.0.join(", ")))
        }
    }

    /// Trims; blank → `None`; longer than `max` characters → a problem.
    pub(crate) fn text(&mut self, field: &str, value: Option<&str>, max: usize) -> Option<String> {
        let value = value.map(str::trim).filter(|v| !v.is_empty())?;
        if value.chars().count() > max {
            self.push(format!("{field} exceeds the maximum length of {max}"));
            return None;
        }
        Some(value.to_owned())
    }
}

/// A pragmatic e-mail syntax check: `local@domain.tld`, no blanks, one `@`.
pub(crate) fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Normalises the accepted anniversary formats (reference §4.1) to `YYYY-MM-DD`.
pub(crate) fn normalize_anniversary(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.trim().split(['/', '-']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let (year, month, day) = if a.len() == 4 {
        (*a, *b, *c)
    } else if c.len() == 4 {
        (*c, *a, *b)
    } else {
        return None;
    };
    let (year, month, day): (i32, u32, u32) =
        (year.parse().ok()?, month.parse().ok()?, day.parse().ok()?);
    let date = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
    Some(date.format("%Y-%m-%d").to_string())
}

impl Problems {
    pub(crate) fn core(
        &mut self,
        first_name: Option<&str>,
        last_name: Option<&str>,
        job_title: Option<&str>,
        company_name: Option<&str>,
        birthday: (Option<i64>, Option<i64>),
        anniversary: Option<&str>,
    ) -> CoreOk {
        let mut core = CoreOk {
            first_name: self.text("first_name", first_name, 50),
            last_name: self.text("last_name", last_name, 50),
            job_title: self.text("job_title", job_title, 50),
            company_name: self.text("company_name", company_name, 50),
            ..CoreOk::default()
        };
        match birthday {
            (None, None) => {}
            (Some(m), Some(d)) if (1..=12).contains(&m) && (1..=31).contains(&d) => {
                core.birthday = Some((m as u8, d as u8));
            }
            (Some(_), Some(_)) => {
                self.push("birthday_month must be 1-12 and birthday_day 1-31");
            }
            _ => self.push("birthday_month and birthday_day must be sent together"),
        }
        if let Some(text) = anniversary.map(str::trim).filter(|t| !t.is_empty()) {
            match normalize_anniversary(text).filter(|_| text.len() <= 10) {
                Some(date) => core.anniversary = Some(date),
                None => self.push("anniversary does not have a valid date format"),
            }
        }
        core
    }

    pub(crate) fn source(&mut self, field: &str, value: Option<&str>) -> Option<Source> {
        match value {
            None => {
                self.push(format!("{field} is missing"));
                None
            }
            Some(text) => {
                let parsed = Source::parse(text);
                if parsed.is_none() {
                    self.push(format!("{field} does not have a valid value"));
                }
                parsed
            }
        }
    }

    pub(crate) fn permission(&mut self, value: Option<&str>) -> Option<Permission> {
        let text = value?;
        let parsed = Permission::parse(text);
        if parsed.is_none() {
            self.push("permission_to_send does not have a valid value");
        }
        parsed
    }

    pub(crate) fn email(&mut self, address: Option<&str>, max: usize) -> Option<String> {
        let Some(address) = address.map(str::trim).filter(|a| !a.is_empty()) else {
            self.push("email_address.address is required");
            return None;
        };
        if address.chars().count() > max {
            self.push(format!("email_address exceeds the maximum length of {max}"));
            return None;
        }
        if !valid_email(address) {
            self.push("email_address is not a valid e-mail address");
            return None;
        }
        Some(address.to_owned())
    }

    pub(crate) fn custom_fields(
        &mut self,
        fields: &CustomFields,
        items: &[CustomFieldIn],
        max: usize,
    ) -> Vec<(u32, Box<str>)> {
        if items.len() > max {
            self.push(format!("custom_fields exceeds the maximum of {max} items"));
            return Vec::new();
        }
        let mut out: Vec<(u32, Box<str>)> = Vec::new();
        for item in items {
            let Some(raw) = item.custom_field_id.as_deref() else {
                self.push("custom_fields.custom_field_id is required");
                continue;
            };
            let Some(index) = Uuid::parse_str(raw.trim())
                .ok()
                .and_then(|id| fields.find_live(&id))
            else {
                self.push(format!("custom_field_id {raw} does not exist"));
                continue;
            };
            let value = item.value.as_deref().unwrap_or_default();
            if value.chars().count() > 255 {
                self.push("custom_fields.value exceeds the maximum length of 255");
                continue;
            }
            out.retain(|(i, _)| *i != index);
            out.push((index, value.into()));
        }
        out
    }

    pub(crate) fn lists(&mut self, lists: &Lists, items: &[String], max: usize) -> Vec<u32> {
        if items.len() > max {
            self.push(format!(
                "list_memberships exceeds the maximum of {max} items"
            ));
            return Vec::new();
        }
        let mut out = Vec::new();
        for raw in items {
            match Uuid::parse_str(raw.trim())
                .ok()
                .and_then(|id| lists.find_live(&id))
            {
                Some(index) if !out.contains(&index) => out.push(index),
                Some(_) => {}
                None => self.push(format!("list_id {raw} does not exist")),
            }
        }
        out
    }

    pub(crate) fn phones(&mut self, items: &[PhoneIn]) -> Vec<(String, String)> {
        if items.len() > 3 {
            self.push("phone_numbers exceeds the maximum of 3 items");
            return Vec::new();
        }
        let mut out = Vec::new();
        for item in items {
            let number = self.text("phone_number", item.phone_number.as_deref(), 25);
            let kind = item.kind.as_deref().unwrap_or("other");
            if !matches!(kind, "home" | "work" | "mobile" | "other") {
                self.push("phone_numbers.kind does not have a valid value");
                continue;
            }
            match number {
                Some(number) => out.push((kind.to_owned(), number)),
                None => self.push("phone_numbers.phone_number is required"),
            }
        }
        out
    }

    pub(crate) fn address(&mut self, item: &AddressIn) -> Option<AddressOk> {
        let kind = item.kind.as_deref().map(str::trim).unwrap_or_default();
        if !matches!(kind, "home" | "work" | "other") {
            self.push("street_addresses.kind is required and must be home, work or other");
            return None;
        }
        Some(AddressOk {
            kind: kind.to_owned(),
            street: self.text("street", item.street.as_deref(), 255),
            city: self.text("city", item.city.as_deref(), 50),
            state: self.text("state", item.state.as_deref(), 50),
            postal_code: self.text("postal_code", item.postal_code.as_deref(), 50),
            country: self.text("country", item.country.as_deref(), 50),
        })
    }

    pub(crate) fn addresses(&mut self, items: &[AddressIn]) -> Vec<AddressOk> {
        if items.len() > 3 {
            self.push("street_addresses exceeds the maximum of 3 items");
            return Vec::new();
        }
        items.iter().filter_map(|a| self.address(a)).collect()
    }

    pub(crate) fn taggings(&mut self, items: &[String]) -> Vec<Uuid> {
        if items.len() > 50 {
            self.push("taggings exceeds the maximum of 50 items");
            return Vec::new();
        }
        let mut out = Vec::new();
        for raw in items {
            match Uuid::parse_str(raw.trim()) {
                Ok(id) if !out.contains(&id) => out.push(id),
                Ok(_) => {}
                Err(_) => self.push(format!("taggings contains an invalid id: {raw}")),
            }
        }
        out
    }

    pub(crate) fn notes(&mut self, items: &[NoteIn]) -> Vec<String> {
        if items.len() > 150 {
            self.push("notes exceeds the maximum of 150 items");
            return Vec::new();
        }
        items
            .iter()
            .filter_map(|n| self.text("notes.content", n.content.as_deref(), 2000))
            .collect()
    }

    /// Checks every subresource present in a `POST`/`PUT` body.
    pub(crate) fn subresources(
        &mut self,
        input: &ContactIn,
        fields: &CustomFields,
        lists: &Lists,
    ) -> SubsOk {
        SubsOk {
            custom: input
                .custom_fields
                .as_deref()
                .map(|items| self.custom_fields(fields, items, 25)),
            lists: input
                .list_memberships
                .as_deref()
                .map(|items| self.lists(lists, items, 50)),
            phones: input
                .phone_numbers
                .as_deref()
                .map(|items| self.phones(items)),
            addresses: input
                .street_addresses
                .as_deref()
                .map(|items| self.addresses(items)),
            taggings: input.taggings.as_deref().map(|items| self.taggings(items)),
            notes: input.notes.as_deref().map(|items| self.notes(items)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_anniversary_format_normalises() {
        for text in [
            "11/15/2006",
            "11/15/2006",
            "2006/11/15",
            "2006-11-15",
            "11-15-2006",
        ] {
            assert_eq!(normalize_anniversary(text).as_deref(), Some("2006-11-15"));
        }
        assert_eq!(
            normalize_anniversary("1/5/2006").as_deref(),
            Some("2006-01-05")
        );
        assert_eq!(
            normalize_anniversary("2006/1/5").as_deref(),
            Some("2006-01-05")
        );
        assert_eq!(normalize_anniversary("13/45/2006"), None);
        assert_eq!(normalize_anniversary("soon"), None);
    }

    #[test]
    fn email_syntax_rejects_the_obvious_mistakes() {
        assert!(valid_email("pat@example.com"));
        assert!(!valid_email("pat@example"));
        assert!(!valid_email("pat example@x.com"));
        assert!(!valid_email("@x.com"));
        assert!(!valid_email("a@b@c.com"));
    }

    #[test]
    fn problems_are_joined_into_one_validation_error() {
        let mut problems = Problems::default();
        problems.source("create_source", None);
        problems.text("first_name", Some(&"x".repeat(51)), 50);
        let err = problems.into_result().expect_err("two problems");
        assert_eq!(err.key(), "contacts.api.validation.error");
    }
}
