//! Contact lists (`/contact_lists`, shared/reference/constant-contact-v3.md §6): the resource,
//! the body of POST and PUT, the list query and a page of lists. Deleting a list is
//! asynchronous and answers with an [`Activity`](crate::api::model::Activity).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::model::enums::string_enum;
use crate::api::model::{paging, time};

/// A contact list.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ContactList {
    pub list_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub favorite: Option<bool>,
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
    pub deleted_at: Option<DateTime<Utc>>,
    /// Only when asked for with `include_membership_count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership_count: Option<u64>,
}

impl ContactList {
    /// A PUT body that changes nothing.
    pub fn to_input(&self) -> ListInput {
        ListInput {
            name: self.name.clone(),
            description: self.description.clone(),
            favorite: self.favorite,
        }
    }
}

/// The body of `POST /contact_lists` and `PUT /contact_lists/{id}` (`name` unique, ≤ 255).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListInput {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub favorite: Option<bool>,
}

impl ListInput {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }
}

string_enum! {
    /// Which members `include_membership_count` counts.
    pub enum MembershipCount {
        All = "all",
        Active = "active",
    }
}

string_enum! {
    /// The `status` filter of `GET /contact_lists`.
    pub enum ListStatus {
        All = "all",
        Active = "active",
        Deleted = "deleted",
    }
}

/// Filters of `GET /contact_lists`. Empty or `None` fields are not sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// The API's default is 50.
    pub limit: Option<u32>,
    pub include_count: bool,
    pub include_membership_count: Option<MembershipCount>,
    /// Exact full name.
    pub name: Option<String>,
    pub status: Option<ListStatus>,
}

impl ListQuery {
    /// The query parameters, in a stable order.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if self.include_count {
            pairs.push(("include_count", "true".to_owned()));
        }
        if let Some(count) = &self.include_membership_count {
            pairs.push(("include_membership_count", count.as_str().to_owned()));
        }
        if let Some(name) = &self.name {
            pairs.push(("name", name.clone()));
        }
        if let Some(status) = &self.status {
            pairs.push(("status", status.as_str().to_owned()));
        }
        pairs
    }
}

/// One page of `GET /contact_lists`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListsPage {
    #[serde(default)]
    pub lists: Vec<ContactList>,
    /// Only with `include_count`.
    #[serde(default)]
    pub lists_count: Option<u64>,
    #[serde(rename = "_links", default, deserialize_with = "paging::next_href")]
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_page_of_lists_decodes_with_counts_and_next_link() {
        let page: ListsPage = serde_json::from_value(json!({
            "lists": [
                {"list_id": "l1", "name": "VIP", "favorite": true, "membership_count": 327,
                 "created_at": "2016-01-23T13:48:44.108Z", "updated_at": "2016-03-03T10:56:29-05:00"},
                {"list_id": "l2", "name": "Gone", "deleted_at": "2016-03-03T10:56:29-05:00", "channel": "sms"}
            ],
            "lists_count": 2,
            "_links": {"next": {"href": "/v3/contact_lists?cursor=x"}}
        }))
        .expect("decodes");
        assert_eq!(page.lists_count, Some(2));
        assert_eq!(page.next.as_deref(), Some("/v3/contact_lists?cursor=x"));
        assert_eq!(page.lists[0].membership_count, Some(327));
        assert_eq!(page.lists[0].favorite, Some(true));
        assert!(page.lists[1].deleted_at.is_some());
        assert_eq!(page.lists[1].description, None);
    }

    #[test]
    fn the_list_body_sends_only_what_was_set_and_to_input_keeps_everything() {
        assert_eq!(
            serde_json::to_value(ListInput::new("VIP")).expect("encodes"),
            json!({"name": "VIP"})
        );
        let list: ContactList = serde_json::from_value(
            json!({"list_id": "l1", "name": "VIP", "description": "d", "favorite": false}),
        )
        .expect("decodes");
        assert_eq!(
            serde_json::to_value(list.to_input()).expect("encodes"),
            json!({"name": "VIP", "description": "d", "favorite": false})
        );
    }

    #[test]
    fn the_list_query_sends_only_what_was_set() {
        assert!(ListQuery::default().to_pairs().is_empty());
        let query = ListQuery {
            limit: Some(1000),
            include_count: true,
            include_membership_count: Some(MembershipCount::Active),
            name: Some("VIP".into()),
            status: Some(ListStatus::All),
        };
        let expected: Vec<(&str, String)> = vec![
            ("limit", "1000".into()),
            ("include_count", "true".into()),
            ("include_membership_count", "active".into()),
            ("name", "VIP".into()),
            ("status", "all".into()),
        ];
        assert_eq!(query.to_pairs(), expected);
    }
}
