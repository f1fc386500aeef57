//! Contact tags (`/contact_tags`; OpenAPI spec `getAllTags`, `postTag`, `getTag`, `putTag`,
//! `deleteTag`; the reference only says the CRUD exists and that `tag_id` is a UUID): a tag,
//! its create and rename bodies and a page of them. Deleting a tag is asynchronous: the API
//! answers 202 with an [`Activity`](crate::api::model::Activity).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::model::{paging, time};

/// A contact tag.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Tag {
    pub tag_id: String,
    /// Unique in the account, 1 to 255 characters.
    #[serde(default)]
    pub name: String,
    /// The source used to tag contacts (set on create only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_source: Option<String>,
    /// Only when asked for with `include_count=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts_count: Option<u64>,
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

/// `POST /contact_tags` body (`postTag_request`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagCreate {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_source: Option<String>,
}

/// `PUT /contact_tags/{id}` body (`putTag_request`): a rename; `tag_source` cannot change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagPut {
    pub name: String,
}

/// One page of `GET /contact_tags`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TagsPage {
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(rename = "_links", default, deserialize_with = "paging::next_href")]
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_page_of_tags_decodes_with_its_next_link() {
        let page: TagsPage = serde_json::from_value(json!({
            "tags": [
                {"tag_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "name": "Gold card member",
                 "tag_source": "ESTY", "contacts_count": 325,
                 "created_at": "2019-04-25T11:08:00Z", "updated_at": "not a time", "extra": 1}
            ],
            "_links": {"next": {"href": "/v3/contact_tags?cursor=x"}}
        }))
        .expect("decodes");
        assert_eq!(page.next.as_deref(), Some("/v3/contact_tags?cursor=x"));
        let tag = &page.tags[0];
        assert_eq!(tag.contacts_count, Some(325));
        assert!(tag.created_at.is_some());
        assert_eq!(tag.updated_at, None, "a bad time is left out");
    }

    #[test]
    fn bodies_send_only_what_was_set() {
        let create = TagCreate {
            name: "Gold".into(),
            tag_source: None,
        };
        assert_eq!(
            serde_json::to_value(&create).expect("encodes"),
            json!({"name": "Gold"})
        );
        let put = TagPut {
            name: "Silver".into(),
        };
        assert_eq!(
            serde_json::to_value(&put).expect("encodes"),
            json!({"name": "Silver"})
        );
    }
}
