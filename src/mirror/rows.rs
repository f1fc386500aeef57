//! `ContactRow`: one contact as the mirror stores it, built the same way from a
//! `GET /contacts` item and from an export CSV record, so both paths give the same database.
//!
//! Normalisation (docs/mirror.md, "Export and paging"): an empty value is NULL (the CSV cannot
//! tell an empty cell from a missing value, so neither can the mirror); timestamps are RFC 3339
//! UTC as [`time::format`] writes them; `deleted_at` is the bare date the API sends
//! (`YYYY-MM-DD`); enumerations are written in the API's spelling; custom-field values are
//! keyed by `custom_field_id` (the CSV's `cf:<name>` columns are mapped through the account's
//! custom fields) and empty values are left out; list ids are sorted and unique.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::api::model::time;
use crate::api::model::{Contact, PermissionToSend, Source};

/// One contact, normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactRow {
    pub contact_id: String,
    pub email_address: Option<String>,
    pub permission_to_send: Option<String>,
    pub confirm_status: Option<String>,
    pub opt_in_source: Option<String>,
    pub opt_in_date: Option<String>,
    pub opt_out_source: Option<String>,
    pub opt_out_date: Option<String>,
    pub opt_out_reason: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub job_title: Option<String>,
    pub company_name: Option<String>,
    pub birthday_month: Option<i64>,
    pub birthday_day: Option<i64>,
    pub anniversary: Option<String>,
    pub create_source: Option<String>,
    pub update_source: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub deleted_at: Option<String>,
    /// `(custom_field_id, value)`, sorted by id, no empty values.
    pub custom_fields: Vec<(String, String)>,
    /// Sorted, unique.
    pub list_ids: Vec<String>,
    /// The contact's tags (sorted, unique); `None` when the source did not say (an export
    /// without a `taggings` column): the mirror then keeps the taggings it holds.
    pub tag_ids: Option<Vec<String>>,
}

fn text(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_owned)
}

fn stamp(value: Option<&DateTime<Utc>>) -> Option<String> {
    value.map(time::format)
}

fn date(value: Option<&DateTime<Utc>>) -> Option<String> {
    value.map(|at| at.date_naive().to_string())
}

fn finish_lists(mut ids: Vec<String>) -> Vec<String> {
    ids.retain(|id| !id.is_empty());
    ids.sort();
    ids.dedup();
    ids
}

fn finish_fields(mut values: Vec<(String, String)>) -> Vec<(String, String)> {
    values.retain(|(id, value)| !id.is_empty() && !value.is_empty());
    values.sort();
    values.dedup_by(|a, b| a.0 == b.0);
    values
}

impl ContactRow {
    /// From a contact read with `include=custom_fields,list_memberships,taggings`.
    pub fn from_api(contact: &Contact) -> ContactRow {
        let email = contact.email_address.as_ref();
        let source = |s: Option<&Source>| s.map(|s| s.as_str().to_owned());
        ContactRow {
            contact_id: contact.contact_id.clone(),
            email_address: text(email.map(|e| e.address.as_str())),
            permission_to_send: email
                .and_then(|e| e.permission_to_send.as_ref())
                .map(|p| p.as_str().to_owned()),
            confirm_status: text(email.and_then(|e| e.confirm_status.as_deref())),
            opt_in_source: source(email.and_then(|e| e.opt_in_source.as_ref())),
            opt_in_date: stamp(email.and_then(|e| e.opt_in_date.as_ref())),
            opt_out_source: source(email.and_then(|e| e.opt_out_source.as_ref())),
            opt_out_date: stamp(email.and_then(|e| e.opt_out_date.as_ref())),
            opt_out_reason: text(email.and_then(|e| e.opt_out_reason.as_deref())),
            first_name: text(contact.first_name.as_deref()),
            last_name: text(contact.last_name.as_deref()),
            job_title: text(contact.job_title.as_deref()),
            company_name: text(contact.company_name.as_deref()),
            birthday_month: contact.birthday_month.map(i64::from),
            birthday_day: contact.birthday_day.map(i64::from),
            anniversary: text(contact.anniversary.as_deref()),
            create_source: source(contact.create_source.as_ref()),
            update_source: source(contact.update_source.as_ref()),
            created_at: stamp(contact.created_at.as_ref()),
            updated_at: stamp(contact.updated_at.as_ref()),
            deleted_at: date(contact.deleted_at.as_ref()),
            custom_fields: finish_fields(
                contact
                    .custom_fields
                    .iter()
                    .flatten()
                    .filter_map(|v| Some((v.custom_field_id.clone(), v.value.clone()?)))
                    .collect(),
            ),
            list_ids: finish_lists(contact.list_memberships.clone().unwrap_or_default()),
            tag_ids: contact.taggings.clone().map(finish_lists),
        }
    }
}

/// Where each column of an export file is (crates/ctct-sandbox/README.md lists the columns).
#[derive(Debug, Clone)]
pub struct CsvLayout {
    columns: HashMap<&'static str, usize>,
    /// `(column index, custom_field_id)` for every `cf:<name>` column of a known field.
    custom_fields: Vec<(usize, String)>,
}

const CORE: [&str; 23] = [
    "contact_id",
    "email_address",
    "permission_to_send",
    "first_name",
    "last_name",
    "job_title",
    "company_name",
    "birthday_month",
    "birthday_day",
    "anniversary",
    "create_source",
    "update_source",
    "created_at",
    "updated_at",
    "opt_in_source",
    "opt_in_date",
    "opt_out_source",
    "opt_out_date",
    "opt_out_reason",
    "confirm_status",
    "list_memberships",
    "taggings",
    "deleted_at",
];

impl CsvLayout {
    /// Reads the header. `field_ids` maps custom-field names to ids; a `cf:` column of a field
    /// the account no longer has is ignored. Fails when there is no `contact_id` column.
    pub fn new(header: &[String], field_ids: &HashMap<String, String>) -> Result<Self, String> {
        let mut columns = HashMap::new();
        let mut custom_fields = Vec::new();
        for (index, name) in header.iter().enumerate() {
            if let Some(core) = CORE.iter().find(|c| **c == name.as_str()) {
                columns.insert(*core, index);
            } else if let Some(id) = name.strip_prefix("cf:").and_then(|n| field_ids.get(n)) {
                custom_fields.push((index, id.clone()));
            }
        }
        if !columns.contains_key("contact_id") {
            return Err(format!(
                "the export has no contact_id column (header: {})",
                header.join(",")
            ));
        }
        Ok(Self {
            columns,
            custom_fields,
        })
    }

    fn cell<'r>(&self, record: &'r [String], column: &str) -> Option<&'r str> {
        self.columns
            .get(column)
            .and_then(|&i| record.get(i))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// One record as a row; `None` for a record without a contact id.
    pub fn row(&self, record: &[String]) -> Option<ContactRow> {
        let cell = |column| self.cell(record, column);
        let at = |column| stamp(cell(column).and_then(time::parse).as_ref());
        let source = |column| cell(column).map(|s| Source::parse(s).as_str().to_owned());
        let number = |column| cell(column).and_then(|v| v.trim().parse::<i64>().ok());
        Some(ContactRow {
            contact_id: cell("contact_id")?.to_owned(),
            email_address: text(cell("email_address")),
            permission_to_send: cell("permission_to_send")
                .map(|p| PermissionToSend::parse(p).as_str().to_owned()),
            confirm_status: text(cell("confirm_status")),
            opt_in_source: source("opt_in_source"),
            opt_in_date: at("opt_in_date"),
            opt_out_source: source("opt_out_source"),
            opt_out_date: at("opt_out_date"),
            opt_out_reason: text(cell("opt_out_reason")),
            first_name: text(cell("first_name")),
            last_name: text(cell("last_name")),
            job_title: text(cell("job_title")),
            company_name: text(cell("company_name")),
            birthday_month: number("birthday_month"),
            birthday_day: number("birthday_day"),
            anniversary: text(cell("anniversary")),
            create_source: source("create_source"),
            update_source: source("update_source"),
            created_at: at("created_at"),
            updated_at: at("updated_at"),
            deleted_at: date(cell("deleted_at").and_then(time::parse).as_ref()),
            custom_fields: finish_fields(
                self.custom_fields
                    .iter()
                    .filter_map(|(i, id)| Some((id.clone(), record.get(*i)?.clone())))
                    .collect(),
            ),
            list_ids: finish_lists(
                cell("list_memberships")
                    .map(|v| v.split(';').map(|id| id.trim().to_owned()).collect())
                    .unwrap_or_default(),
            ),
            // A file with the column says every contact's tags (an empty cell: none).
            tag_ids: self.columns.get("taggings").map(|_| {
                finish_lists(
                    cell("taggings")
                        .map(|v| v.split(';').map(|id| id.trim().to_owned()).collect())
                        .unwrap_or_default(),
                )
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<String> {
        let mut header: Vec<String> = CORE.iter().map(|c| (*c).to_owned()).collect();
        header.push("cf:hobby".into());
        header.push("cf:gone".into());
        header
    }

    #[test]
    fn a_csv_record_and_the_same_contact_as_json_give_the_same_row() {
        let contact: Contact = serde_json::from_value(serde_json::json!({
            "contact_id": "c1",
            "email_address": {"address": "pat@example.com", "permission_to_send": "implicit",
                              "opt_in_source": "Account", "opt_in_date": "2024-10-30T18:56:35Z",
                              "confirm_status": "off"},
            "first_name": "Pat", "last_name": "",
            "birthday_month": 3, "birthday_day": 14,
            "create_source": "Account", "update_source": "Contact",
            "created_at": "2024-10-30T18:56:35Z", "updated_at": "2024-11-02T09:01:12.000Z",
            "deleted_at": "2024-11-03",
            "custom_fields": [{"custom_field_id": "f1", "value": "Skiing"},
                              {"custom_field_id": "f9", "value": ""}],
            "list_memberships": ["l2", "l1"],
            "taggings": ["t2", "t1", "t2"]
        }))
        .expect("a contact");
        let fields = HashMap::from([("hobby".to_owned(), "f1".to_owned())]);
        let layout = CsvLayout::new(&header(), &fields).expect("layout");
        let mut record = vec![String::new(); header().len()];
        let set = |record: &mut Vec<String>, column: &str, value: &str| {
            let i = header().iter().position(|h| h == column).expect(column);
            record[i] = value.to_owned();
        };
        for (column, value) in [
            ("contact_id", "c1"),
            ("email_address", "pat@example.com"),
            ("permission_to_send", "IMPLICIT"),
            ("opt_in_source", "Account"),
            ("opt_in_date", "2024-10-30T18:56:35Z"),
            ("confirm_status", "off"),
            ("first_name", "Pat"),
            ("birthday_month", "3"),
            ("birthday_day", "14"),
            ("create_source", "Account"),
            ("update_source", "Contact"),
            ("created_at", "2024-10-30T18:56:35Z"),
            ("updated_at", "2024-11-02T09:01:12Z"),
            ("deleted_at", "2024-11-03"),
            ("list_memberships", "l1;l2"),
            ("taggings", "t1;t2"),
            ("cf:hobby", "Skiing"),
            ("cf:gone", "ignored"),
        ] {
            set(&mut record, column, value);
        }
        let from_csv = layout.row(&record).expect("a row");
        let from_json = ContactRow::from_api(&contact);
        assert_eq!(from_csv, from_json);
        assert_eq!(from_json.last_name, None, "empty is NULL");
        assert_eq!(from_json.deleted_at.as_deref(), Some("2024-11-03"));
        assert_eq!(from_json.permission_to_send.as_deref(), Some("implicit"));
        assert_eq!(from_json.custom_fields, [("f1".into(), "Skiing".into())]);
        assert_eq!(from_json.list_ids, ["l1", "l2"]);
        assert_eq!(from_json.tag_ids, Some(vec!["t1".into(), "t2".into()]));
    }

    #[test]
    fn taggings_are_unknown_only_when_the_source_does_not_carry_them() {
        let contact: Contact =
            serde_json::from_value(serde_json::json!({"contact_id": "c1"})).expect("a contact");
        assert_eq!(ContactRow::from_api(&contact).tag_ids, None);
        let with_column = CsvLayout::new(&header(), &HashMap::new()).expect("layout");
        let mut record = vec![String::new(); header().len()];
        record[0] = "c1".into();
        assert_eq!(
            with_column.row(&record).expect("a row").tag_ids,
            Some(Vec::new()),
            "an empty cell: no tags"
        );
        let without: Vec<String> = header().into_iter().filter(|h| h != "taggings").collect();
        let layout = CsvLayout::new(&without, &HashMap::new()).expect("layout");
        assert_eq!(
            layout.row(&record[..without.len()]).expect("a row").tag_ids,
            None
        );
    }

    #[test]
    fn a_header_without_contact_id_is_refused_and_a_record_without_one_is_skipped() {
        assert!(CsvLayout::new(&["email_address".into()], &HashMap::new()).is_err());
        let layout = CsvLayout::new(&header(), &HashMap::new()).expect("layout");
        assert_eq!(layout.row(&[String::new()]), None);
        assert_eq!(layout.row(&[]), None);
    }
}
