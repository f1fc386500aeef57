//! List membership: `list.add_contacts` and `list.remove_contacts` add (remove) contacts named
//! by id or by e-mail address to (from) one or more lists. The API does it as a bulk activity
//! (`POST /activities/add_list_memberships` / `remove_list_memberships`, OpenAPI spec
//! `createListAddActivity_request` / `createListRemoveActivity_request`): `source.contact_ids`
//! holds up to 500 ids and `list_ids` up to 50.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::check::{self, Checker};
use super::rejection::Rejection;
use super::tagging::{TaggingContacts, contacts_checked};

/// Most lists one command names (spec: `list_ids`, up to 50).
pub const MAX_MEMBERSHIP_LISTS: usize = 50;

/// `list.add_contacts` / `list.remove_contacts`: the contacts and the lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// By id (1 to 500) or by e-mail (1 to 500, looked up to ids first).
    pub contacts: TaggingContacts,
    pub list_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipData {
    #[serde(default)]
    contact_ids: Option<Vec<String>>,
    #[serde(default)]
    emails: Option<Vec<String>>,
    #[serde(default)]
    list_ids: Option<Vec<String>>,
}

/// `list.add_contacts` / `list.remove_contacts`: `list_ids` (1 to 50 UUIDs) and exactly one of
/// `contact_ids` (1 to 500 UUIDs) and `emails` (1 to 500 addresses).
pub fn parse(data: Map<String, Value>) -> Result<Membership, Rejection> {
    let raw: MembershipData = check::data(data)?;
    let mut c = Checker::new();
    let list_ids = raw.list_ids.unwrap_or_default();
    c.uuids("data.list_ids", &list_ids, 1, MAX_MEMBERSHIP_LISTS);
    let contacts = contacts_checked(&mut c, raw.contact_ids, raw.emails);
    c.finish_required(
        contacts,
        "data.contact_ids",
        "either contact_ids or emails is required",
    )
    .map(|contacts| Membership { contacts, list_ids })
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

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("3fa85f64-5717-4562-b3fc-{i:012}"))
            .collect()
    }

    #[test]
    fn valid_data_parses() {
        assert_eq!(
            parse(map(json!({"contact_ids": [ID, ID2], "list_ids": [ID]}))),
            Ok(Membership {
                contacts: TaggingContacts::Ids(vec![ID.into(), ID2.into()]),
                list_ids: vec![ID.into()],
            })
        );
        let membership =
            parse(map(json!({"emails": ["a@example.com"], "list_ids": [ID]}))).expect("valid");
        assert!(matches!(membership.contacts, TaggingContacts::Emails(e) if e.len() == 1));
        assert!(parse(map(json!({"contact_ids": ids(500), "list_ids": ids(50)}))).is_ok());
    }

    #[test]
    fn bad_data_names_the_field() {
        assert_eq!(fields(json!({"contact_ids": [ID]})), ["data.list_ids"]);
        assert_eq!(
            fields(json!({"contact_ids": [ID], "list_ids": []})),
            ["data.list_ids"]
        );
        assert_eq!(
            fields(json!({"contact_ids": [ID], "list_ids": ids(51)})),
            ["data.list_ids"]
        );
        assert_eq!(
            fields(json!({"contact_ids": [ID], "list_ids": [ID, "News"]})),
            ["data.list_ids[1]"]
        );
        assert_eq!(fields(json!({"list_ids": [ID]})), ["data.contact_ids"]);
        assert_eq!(
            fields(json!({"contact_ids": [ID], "emails": ["a@example.com"], "list_ids": [ID]})),
            ["data.emails"]
        );
        assert_eq!(
            fields(json!({"contact_ids": ids(501), "list_ids": [ID]})),
            ["data.contact_ids"]
        );
        assert_eq!(
            fields(json!({"contact_ids": ["14"], "list_ids": [ID]})),
            ["data.contact_ids[0]"]
        );
        assert_eq!(
            fields(json!({"emails": ["a@example.com", "nope"], "list_ids": [ID]})),
            ["data.emails[1]"]
        );
        assert_eq!(
            fields(json!({"emails": [], "list_ids": [ID]})),
            ["data.emails"]
        );
        assert_eq!(
            fields(json!({"list_ids": ["x"]})),
            ["data.list_ids[0]", "data.contact_ids"]
        );
        assert_eq!(
            fields(json!({"contact_ids": [ID], "list_ids": [ID], "tag_ids": [ID]})),
            ["data.tag_ids"]
        );
    }
}
