//! Tagging contacts: `contact.tag` and `contact.untag` apply (remove) tags to (from) contacts
//! named by id or by e-mail address. The API does it as a bulk activity
//! (`POST /activities/contacts_taggings_add` / `_remove`, OpenAPI spec
//! `createTagRemoveActivity_request`): `source.contact_ids` holds at most 500 ids and
//! `tag_ids` at most 50.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::check::{self, Checker};
use super::contact::MAX_EMAIL;
use super::email::Email;
use super::rejection::Rejection;

/// Most contacts one command names (spec: `source.contact_ids` `maxItems: 500`).
pub const MAX_TAGGING_CONTACTS: usize = 500;
/// Most tags one command applies or removes (spec: `tag_ids` `maxItems: 50`).
pub const MAX_TAGGING_TAGS: usize = 50;

/// Which contacts a tagging command (or a list membership command, see `membership`) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaggingContacts {
    Ids(Vec<String>),
    /// Looked up to ids before the activity starts.
    Emails(Vec<Email>),
}

/// The bulk activities the pipeline can share among several commands of the same kind and
/// targets: those applying a set of targets (tags, lists) to contacts by id, and those
/// deleting contacts, lists, tags or custom fields by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActivityKind {
    /// `POST /activities/contacts_taggings_add` (`contact.tag`).
    TagAdd,
    /// `POST /activities/contacts_taggings_remove` (`contact.untag`).
    TagRemove,
    /// `POST /activities/add_list_memberships` (`list.add_contacts`).
    ListAdd,
    /// `POST /activities/remove_list_memberships` (`list.remove_contacts`).
    ListRemove,
    /// `POST /activities/contact_delete` (`contact.delete`; up to 500 contacts).
    ContactDelete,
    /// `POST /activities/contact_delete` for `contact.erase`: each command's mirror rows and
    /// stored results are erased once the activity has completed.
    ContactErase,
    /// `POST /activities/list_delete` (`list.delete`; up to 100 lists).
    ListDelete,
    /// `POST /activities/contacts_tags_delete` (`tag.delete`; up to 500 tags).
    TagDelete,
    /// `POST /activities/custom_fields_delete` (`custom_field.delete`; up to 100 fields).
    FieldDelete,
}

impl ActivityKind {
    /// The API route, as logs and failures name it.
    pub fn route(self) -> &'static str {
        match self {
            ActivityKind::TagAdd => "POST /activities/contacts_taggings_add",
            ActivityKind::TagRemove => "POST /activities/contacts_taggings_remove",
            ActivityKind::ListAdd => "POST /activities/add_list_memberships",
            ActivityKind::ListRemove => "POST /activities/remove_list_memberships",
            ActivityKind::ContactDelete | ActivityKind::ContactErase => {
                "POST /activities/contact_delete"
            }
            ActivityKind::ListDelete => "POST /activities/list_delete",
            ActivityKind::TagDelete => "POST /activities/contacts_tags_delete",
            ActivityKind::FieldDelete => "POST /activities/custom_fields_delete",
        }
    }

    /// The key the result's `data` names the targets under (the activities applying targets
    /// to contacts).
    pub fn targets_key(self) -> Option<&'static str> {
        match self {
            ActivityKind::TagAdd | ActivityKind::TagRemove => Some("tag_ids"),
            ActivityKind::ListAdd | ActivityKind::ListRemove => Some("list_ids"),
            _ => None,
        }
    }

    /// The key the result's `data` names a deleted item under (the delete activities).
    pub fn deleted_key(self) -> Option<&'static str> {
        match self {
            ActivityKind::ContactDelete | ActivityKind::ContactErase => Some("contact_id"),
            ActivityKind::ListDelete => Some("list_id"),
            ActivityKind::TagDelete => Some("tag_id"),
            ActivityKind::FieldDelete => Some("custom_field_id"),
            _ => None,
        }
    }

    /// Whether the activity's items are contacts (commands about one contact keep their
    /// order across these kinds); the other delete activities' items are lists, tags or
    /// custom fields.
    pub fn about_contacts(self) -> bool {
        !matches!(
            self,
            ActivityKind::ListDelete | ActivityKind::TagDelete | ActivityKind::FieldDelete
        )
    }

    /// Most items one activity takes (spec: `contact_ids` 500; `list_ids` of `list_delete`
    /// 100; `tag_ids` 500; `custom_field_ids` 100).
    pub fn max_items(self) -> usize {
        match self {
            ActivityKind::ListDelete | ActivityKind::FieldDelete => 100,
            _ => MAX_TAGGING_CONTACTS,
        }
    }
}

/// A command's share of a bulk activity: see [`super::Command::gathering`].
#[derive(Debug, Clone)]
pub struct Gathering<'a> {
    pub kind: ActivityKind,
    /// The contacts (for a list, tag or custom field delete: the one id it deletes).
    pub contacts: Cow<'a, TaggingContacts>,
    /// Tag ids or list ids, as the command gives them (none for the delete activities).
    pub targets: &'a [String],
}

/// `contact.tag` / `contact.untag`: the contacts and the tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagging {
    pub contacts: TaggingContacts,
    pub tag_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaggingData {
    #[serde(default)]
    contact_ids: Option<Vec<String>>,
    #[serde(default)]
    emails: Option<Vec<String>>,
    #[serde(default)]
    tag_ids: Option<Vec<String>>,
}

/// `contact.tag` / `contact.untag`: exactly one of `contact_ids` (1 to 500 UUIDs) and
/// `emails` (1 to 500 addresses), and `tag_ids` (1 to 50 UUIDs).
pub fn parse(data: Map<String, Value>) -> Result<Tagging, Rejection> {
    let raw: TaggingData = check::data(data)?;
    let mut c = Checker::new();
    let contacts = contacts_checked(&mut c, raw.contact_ids, raw.emails);
    let tag_ids = raw.tag_ids.unwrap_or_default();
    c.uuids("data.tag_ids", &tag_ids, 1, MAX_TAGGING_TAGS);
    c.finish_required(
        contacts,
        "data.contact_ids",
        "either contact_ids or emails is required",
    )
    .map(|contacts| Tagging { contacts, tag_ids })
}

/// Exactly one of `contact_ids` (1 to 500 UUIDs) and `emails` (1 to 500 addresses, none
/// repeated ignoring case); each problem goes to `c` naming `data.contact_ids`,
/// `data.contact_ids[i]`, `data.emails` or `data.emails[i]`. Shared with the list membership
/// commands, whose contacts are named the same way.
pub(crate) fn contacts_checked(
    c: &mut Checker,
    contact_ids: Option<Vec<String>>,
    emails: Option<Vec<String>>,
) -> Option<TaggingContacts> {
    match (contact_ids, emails) {
        (Some(_), Some(_)) => {
            c.fail("data.emails", "give contact_ids or emails, not both");
            None
        }
        (None, None) => {
            c.fail(
                "data.contact_ids",
                "either contact_ids or emails is required",
            );
            None
        }
        (Some(ids), None) => c
            .uuids("data.contact_ids", &ids, 1, MAX_TAGGING_CONTACTS)
            .then_some(TaggingContacts::Ids(ids)),
        (None, Some(emails)) => emails_checked(c, emails).map(TaggingContacts::Emails),
    }
}

fn emails_checked(c: &mut Checker, emails: Vec<String>) -> Option<Vec<Email>> {
    let mut ok = true;
    if emails.is_empty() || emails.len() > MAX_TAGGING_CONTACTS {
        c.fail(
            "data.emails",
            format!(
                "must hold 1 to {MAX_TAGGING_CONTACTS} addresses (got {})",
                emails.len()
            ),
        );
        ok = false;
    }
    let mut out: Vec<Email> = Vec::with_capacity(emails.len());
    for (i, email) in emails
        .into_iter()
        .take(MAX_TAGGING_CONTACTS + 1)
        .enumerate()
    {
        match c.email_address(&format!("data.emails[{i}]"), email, MAX_EMAIL) {
            Some(email)
                if out
                    .iter()
                    .any(|e| e.as_str().eq_ignore_ascii_case(email.as_str())) =>
            {
                c.fail(format!("data.emails[{i}]"), "repeats an address");
                ok = false;
            }
            Some(email) => out.push(email),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    const ID2: &str = "4fa85f64-5717-4562-b3fc-2c963f66afa6";

    fn map(data: Value) -> Map<String, Value> {
        data.as_object().cloned().unwrap_or_default()
    }

    fn fields(data: Value) -> Vec<String> {
        parse(map(data))
            .expect_err("refused")
            .fields
            .into_iter()
            .map(|f| f.field)
            .collect()
    }

    #[test]
    fn valid_data_parses() {
        assert_eq!(
            parse(map(json!({"contact_ids": [ID, ID2], "tag_ids": [ID]}))),
            Ok(Tagging {
                contacts: TaggingContacts::Ids(vec![ID.into(), ID2.into()]),
                tag_ids: vec![ID.into()],
            })
        );
        let tagging =
            parse(map(json!({"emails": ["a@example.com"], "tag_ids": [ID]}))).expect("valid");
        assert!(matches!(tagging.contacts, TaggingContacts::Emails(e) if e.len() == 1));
        let ids: Vec<String> = (0..500)
            .map(|i| format!("3fa85f64-5717-4562-b3fc-{i:012}"))
            .collect();
        let tags: Vec<String> = (0..50)
            .map(|i| format!("3fa85f64-5717-4562-b3fc-{i:012}"))
            .collect();
        assert!(parse(map(json!({"contact_ids": ids, "tag_ids": tags}))).is_ok());
    }

    #[test]
    fn bad_data_names_the_field() {
        assert_eq!(fields(json!({"tag_ids": [ID]})), ["data.contact_ids"]);
        assert_eq!(
            fields(json!({"contact_ids": [ID], "emails": ["a@example.com"], "tag_ids": [ID]})),
            ["data.emails"]
        );
        assert_eq!(
            fields(json!({"contact_ids": [], "tag_ids": [ID]})),
            ["data.contact_ids"]
        );
        assert_eq!(
            fields(json!({"contact_ids": [ID, ID, ID, "x"], "tag_ids": [ID]})),
            ["data.contact_ids[3]", "data.contact_ids"]
        );
        let ids: Vec<String> = (0..501)
            .map(|i| format!("3fa85f64-5717-4562-b3fc-{i:012}"))
            .collect();
        assert_eq!(
            fields(json!({"contact_ids": ids, "tag_ids": [ID]})),
            ["data.contact_ids"]
        );
        assert_eq!(fields(json!({"contact_ids": [ID]})), ["data.tag_ids"]);
        assert_eq!(
            fields(json!({"contact_ids": [ID], "tag_ids": []})),
            ["data.tag_ids"]
        );
        let tags: Vec<String> = (0..51)
            .map(|i| format!("3fa85f64-5717-4562-b3fc-{i:012}"))
            .collect();
        assert_eq!(
            fields(json!({"contact_ids": [ID], "tag_ids": tags})),
            ["data.tag_ids"]
        );
        assert_eq!(
            fields(json!({"emails": ["a@example.com", "nope"], "tag_ids": [ID]})),
            ["data.emails[1]"]
        );
        assert_eq!(
            fields(json!({"emails": ["a@example.com", "A@example.com"], "tag_ids": [ID]})),
            ["data.emails[1]"]
        );
        assert_eq!(
            fields(json!({"emails": [], "tag_ids": [ID]})),
            ["data.emails"]
        );
        assert_eq!(
            fields(json!({"contact_ids": [ID], "tag_ids": [ID], "names": ["Gold"]})),
            ["data.names"]
        );
    }
}
