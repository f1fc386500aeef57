//! Cursor paging. Collections carry `_links.next.href`, a path from the host that already holds
//! `/v3` (e.g. `/v3/contacts?cursor=…`); on the last page `next` is missing or `_links` is `{}`
//! or absent (shared/reference/constant-contact-v3.md §0). The href is kept verbatim and
//! followed with `Request::href`; nothing here looks inside the cursor.

use serde::{Deserialize, Deserializer, Serialize};

/// One `{"href": …}` link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Link {
    #[serde(default)]
    pub href: Option<String>,
}

impl Link {
    /// The href, unless it is missing or blank.
    pub fn href(&self) -> Option<&str> {
        self.href.as_deref().filter(|href| !href.trim().is_empty())
    }
}

#[derive(Deserialize)]
struct PagingLinks {
    #[serde(default)]
    next: Option<Link>,
}

/// `deserialize_with` for a page's `_links` field: yields the next page's href, or `None` on the
/// last page (no `next`, an empty href, `{}`, null, or a shape this version does not know).
pub fn next_href<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    let links = value.and_then(|value| serde_json::from_value::<PagingLinks>(value).ok());
    Ok(links
        .and_then(|links| links.next)
        .and_then(|next| next.href().map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Page {
        #[serde(rename = "_links", default, deserialize_with = "next_href")]
        next: Option<String>,
    }

    fn next(body: &str) -> Option<String> {
        serde_json::from_str::<Page>(body).expect(body).next
    }

    #[test]
    fn the_next_href_is_kept_verbatim() {
        assert_eq!(
            next(r#"{"_links":{"next":{"href":"/v3/contacts?cursor=bGltaXQ9MSZuZXh0PTI="}}}"#)
                .as_deref(),
            Some("/v3/contacts?cursor=bGltaXQ9MSZuZXh0PTI=")
        );
    }

    #[test]
    fn every_way_of_saying_last_page_gives_none() {
        for body in [
            r#"{"_links":{}}"#,
            r#"{}"#,
            r#"{"_links":null}"#,
            r#"{"_links":{"next":null}}"#,
            r#"{"_links":{"next":{}}}"#,
            r#"{"_links":{"next":{"href":""}}}"#,
            r#"{"_links":"odd"}"#,
        ] {
            assert_eq!(next(body), None, "{body}");
        }
    }
}
