//! Small HTTP helpers shared by the API handlers: query-string access, JSON bodies and
//! answers, id parsing, and the opaque base64 cursors carried in `_links.next.href`.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::errors::{ApiError, Area};

/// Decoded query-string pairs, in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct QueryMap(pub(crate) Vec<(String, String)>);

impl QueryMap {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// The last value given for `key`, if any (empty values count as absent).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// A comma-separated parameter split into trimmed, non-empty items.
    pub(crate) fn csv(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn bool(&self, area: Area, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::validation(
                area,
                format!("{key} must be true or false, got {v}"),
            )),
        }
    }

    /// `limit` within `1..=max`, `default` when absent.
    pub(crate) fn limit(&self, area: Area, default: u32, max: u32) -> Result<u32, ApiError> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::validation(
                    area,
                    format!("limit must be an integer between 1 and {max}"),
                )),
            },
        }
    }
}

/// A JSON answer with the given status.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

/// A JSON answer from bytes already serialised (under a state lock, typically).
pub(crate) fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// True when the request's Content-Type is JSON (`application/json`, `…+json`, any params).
pub(crate) fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Parses a JSON request body into `T`; 400 in the area's shape when it is missing or bad.
pub(crate) fn parse_body<T: DeserializeOwned>(area: Area, body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::validation(area, "A request body is required"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::validation(area, format!("Malformed request body: {e}")))
}

/// Parses a path id; a malformed one is a 404 "… is in an invalid format." (reference §3.2).
pub(crate) fn path_uuid(area: Area, what: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::not_found(area, format!("{what} is in an invalid format.")))
}

/// Encodes cursor parameters (`limit=…&next=…&…`) as URL-safe base64 with padding.
pub(crate) fn encode_cursor(pairs: &[(String, String)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    URL_SAFE.encode(ser.finish())
}

/// Decodes a cursor made by `encode_cursor` (any base64 alphabet, padded or not).
pub(crate) fn decode_cursor(area: Area, cursor: &str) -> Result<QueryMap, ApiError> {
    let trimmed = cursor.trim();
    let bytes = URL_SAFE
        .decode(trimmed)
        .or_else(|_| STANDARD.decode(trimmed))
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')))
        .map_err(|_| ApiError::validation(area, "cursor is invalid"))?;
    let text =
        String::from_utf8(bytes).map_err(|_| ApiError::validation(area, "cursor is invalid"))?;
    Ok(QueryMap::parse(Some(&text)))
}

/// The `_links` object of a collection page: `{"next": {"href": …}}` or `{}`.
#[derive(Debug, Serialize)]
pub(crate) struct Links {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next: Option<Href>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Href {
    pub(crate) href: String,
}

impl Links {
    pub(crate) fn next(path: &str, cursor: Option<String>) -> Self {
        Self {
            next: cursor.map(|c| Href {
                href: format!("{path}?cursor={c}"),
            }),
        }
    }
}

/// Offset paging for the small collections (lists, custom fields, activities, campaigns):
/// returns the page range and the cursor of the next page, if any.
pub(crate) struct OffsetPage {
    pub(crate) limit: u32,
    pub(crate) start: usize,
    /// The original filter parameters, carried in every cursor.
    pub(crate) carry: Vec<(String, String)>,
}

impl OffsetPage {
    /// Reads `cursor` (which wins over everything else) or `limit` + the `carried` keys.
    pub(crate) fn from_query(
        area: Area,
        query: &QueryMap,
        default: u32,
        max: u32,
        carried: &[&str],
    ) -> Result<(Self, QueryMap), ApiError> {
        let effective = match query.get("cursor") {
            Some(c) => decode_cursor(area, c)?,
            None => query.clone(),
        };
        let limit = effective.limit(area, default, max)?;
        let start = match effective.get("next") {
            Some(n) => n
                .parse::<usize>()
                .map_err(|_| ApiError::validation(area, "cursor is invalid"))?,
            None => 0,
        };
        let carry = carried
            .iter()
            .filter_map(|k| effective.get(k).map(|v| ((*k).to_owned(), v.to_owned())))
            .collect();
        Ok((
            Self {
                limit,
                start,
                carry,
            },
            effective,
        ))
    }

    /// The cursor that resumes at `next`.
    pub(crate) fn cursor_at(&self, next: usize) -> String {
        let mut pairs = vec![
            ("limit".to_owned(), self.limit.to_string()),
            ("next".to_owned(), next.to_string()),
        ];
        pairs.extend(self.carry.iter().cloned());
        encode_cursor(&pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_its_parameters() {
        let pairs = vec![
            ("limit".to_owned(), "1".to_owned()),
            ("next".to_owned(), "2".to_owned()),
            ("status".to_owned(), "all,deleted".to_owned()),
        ];
        let cursor = encode_cursor(&pairs);
        assert!(!cursor.contains('+') && !cursor.contains('/'));
        let decoded = decode_cursor(Area::Contacts, &cursor).expect("decodes");
        assert_eq!(decoded.get("status"), Some("all,deleted"));
        assert_eq!(decoded.get("next"), Some("2"));
    }

    #[test]
    fn the_captured_cursor_format_decodes() {
        let decoded = decode_cursor(Area::Contacts, "bGltaXQ9MSZuZXh0PTI=").expect("decodes");
        assert_eq!(decoded.get("limit"), Some("1"));
        assert_eq!(decoded.get("next"), Some("2"));
    }

    #[test]
    fn json_content_types_with_parameters_are_accepted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(is_json_content_type(&headers));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json_content_type(&headers));
    }
}
