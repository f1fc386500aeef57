//! `ApiError`: every way a Constant Contact call can fail, named by the decision the caller
//! has to make (retry later, fix the input, re-authorise, wait for the quota reset).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::api::budget::BudgetError;
use crate::api::tokens::AuthError;
use crate::store::StoreError;

/// One entry of the API's error body (`[{"error_key", "error_message"}]`, or a single object
/// for 401 and 429 — shared/reference/constant-contact-v3.md §3.1).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct ApiErrorBody {
    #[serde(default)]
    pub error_key: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
}

/// Parses an error body in either shape; anything else yields an empty list.
pub fn parse_error_body(body: &[u8]) -> Vec<ApiErrorBody> {
    if let Ok(list) = serde_json::from_slice::<Vec<ApiErrorBody>>(body) {
        return list;
    }
    if let Ok(single) = serde_json::from_slice::<ApiErrorBody>(body)
        && (single.error_key.is_some() || single.error_message.is_some())
    {
        return vec![single];
    }
    Vec::new()
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request was invalid; fix the input.
    #[error("{route}: the API rejected the request (HTTP {status}{}): {message}", key_suffix(.error_key))]
    Invalid {
        route: &'static str,
        status: u16,
        error_key: Option<String>,
        message: String,
    },
    /// 404.
    #[error("{route}: not found{}: {message}", key_suffix(.error_key))]
    NotFound {
        route: &'static str,
        error_key: Option<String>,
        message: String,
    },
    /// 409: duplicate (e-mail, name, label) or concurrent change.
    #[error("{route}: conflict{}: {message}", key_suffix(.error_key))]
    Conflict {
        route: &'static str,
        error_key: Option<String>,
        message: String,
    },
    /// 403: missing scope or user privilege, or the application is deactivated.
    #[error("{route}: forbidden (missing scope or user privilege){}: {message}", key_suffix(.error_key))]
    Forbidden {
        route: &'static str,
        error_key: Option<String>,
        message: String,
    },
    /// 401 even after a refresh.
    #[error("{route}: unauthorized after refreshing the access token")]
    Unauthorized { route: &'static str },
    /// No token can be had for the account.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The day's quota is spent.
    #[error("the API key's daily quota is spent; it resets at {resets_at}")]
    QuotaExhausted { resets_at: DateTime<Utc> },
    /// The mirror's share of the day is spent.
    #[error("the mirror's share of today's quota is spent; it resets at {resets_at}")]
    MirrorShareSpent { resets_at: DateTime<Utc> },
    /// 429 `throttled` that outlasted our patience.
    #[error("{route}: still throttled after {attempts} attempts")]
    Throttled { route: &'static str, attempts: u32 },
    /// 429 other than throttling (the 1,000 queued bulk activities cap).
    #[error("{route}: too many requests{}: {message}", key_suffix(.error_key))]
    TooMany {
        route: &'static str,
        error_key: Option<String>,
        message: String,
    },
    /// 5xx after the retries the request allows.
    #[error("{route}: server error HTTP {status} after {attempts} attempts")]
    Server {
        route: &'static str,
        status: u16,
        attempts: u32,
    },
    /// Timeout, reset or truncated answer. `maybe_applied`: the request may have taken effect.
    #[error("{route}: no complete answer after {attempts} attempts ({detail})")]
    Transport {
        route: &'static str,
        maybe_applied: bool,
        attempts: u32,
        detail: String,
    },
    /// Some other status.
    #[error("{route}: unexpected HTTP {status}{}: {message}", key_suffix(.error_key))]
    Status {
        route: &'static str,
        status: u16,
        error_key: Option<String>,
        message: String,
    },
    /// A 2xx answer that did not decode.
    #[error("{route}: the answer did not decode: {detail}")]
    Decode { route: &'static str, detail: String },
    /// The rate budget's store failed: not the API's doing, so the pipeline hands the
    /// command back instead of spending an attempt.
    #[error("rate budget: {0}")]
    Budget(Arc<StoreError>),
    /// Right before a write: this process no longer holds the claim on the command it
    /// serves (another replica took it over while this one was paused or cut off). Nothing
    /// was sent.
    #[error("{route}: not sent: another replica has taken this command over")]
    ClaimLost { route: &'static str },
    /// Right before a write: the claim could not be checked (the state store failed).
    /// Nothing was sent; handed back like any store failure.
    #[error("{route}: not sent: the command's claim could not be checked: {error}")]
    FenceUnchecked {
        route: &'static str,
        error: Arc<StoreError>,
    },
}

fn key_suffix(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!(", {k}")).unwrap_or_default()
}

impl From<BudgetError> for ApiError {
    fn from(error: BudgetError) -> Self {
        match error {
            BudgetError::QuotaExhausted { resets_at } => ApiError::QuotaExhausted { resets_at },
            BudgetError::MirrorShareSpent { resets_at } => ApiError::MirrorShareSpent { resets_at },
            BudgetError::Store(e) => ApiError::Budget(Arc::new(e)),
        }
    }
}

impl ApiError {
    /// Worth trying again later with the same input.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::Throttled { .. }
                | ApiError::TooMany { .. }
                | ApiError::Server { .. }
                | ApiError::Transport { .. }
                | ApiError::QuotaExhausted { .. }
                | ApiError::MirrorShareSpent { .. }
                | ApiError::Budget(_)
                | ApiError::FenceUnchecked { .. }
                | ApiError::Auth(AuthError::Unavailable { .. } | AuthError::Store(_))
        )
    }

    /// The HTTP status the API answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Invalid { status, .. }
            | ApiError::Status { status, .. }
            | ApiError::Server { status, .. } => Some(*status),
            ApiError::NotFound { .. } => Some(404),
            ApiError::Conflict { .. } => Some(409),
            ApiError::Forbidden { .. } => Some(403),
            ApiError::Unauthorized { .. } => Some(401),
            ApiError::Throttled { .. } | ApiError::TooMany { .. } => Some(429),
            _ => None,
        }
    }

    /// The API's `error_key`, when it sent one.
    pub fn error_key(&self) -> Option<&str> {
        match self {
            ApiError::Invalid { error_key, .. }
            | ApiError::NotFound { error_key, .. }
            | ApiError::Conflict { error_key, .. }
            | ApiError::Forbidden { error_key, .. }
            | ApiError::TooMany { error_key, .. }
            | ApiError::Status { error_key, .. } => error_key.as_deref(),
            ApiError::Throttled { .. } => Some("throttled"),
            ApiError::QuotaExhausted { .. } => Some("quota_exceeded"),
            _ => None,
        }
    }

    /// The API's message(s), when it sent any.
    pub fn api_message(&self) -> Option<&str> {
        match self {
            ApiError::Invalid { message, .. }
            | ApiError::NotFound { message, .. }
            | ApiError::Conflict { message, .. }
            | ApiError::Forbidden { message, .. }
            | ApiError::TooMany { message, .. }
            | ApiError::Status { message, .. } => Some(message),
            _ => None,
        }
    }

    /// For a 409 "Email already exists for contact <uuid>": the existing contact's id.
    pub fn conflicting_contact_id(&self) -> Option<String> {
        let ApiError::Conflict { message, .. } = self else {
            return None;
        };
        message
            .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
            .find(|word| uuid::Uuid::parse_str(word).is_ok() && word.len() == 36)
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_parse_as_arrays_or_single_objects() {
        let array = br#"[{"error_key":"contacts.api.validation.error","error_message":"create_source is missing"}]"#;
        assert_eq!(
            parse_error_body(array)[0].error_key.as_deref(),
            Some("contacts.api.validation.error")
        );
        let single = br#"{"error_key":"throttled","error_message":"Too Many Requests"}"#;
        assert_eq!(
            parse_error_body(single)[0].error_key.as_deref(),
            Some("throttled")
        );
        assert!(parse_error_body(b"<html>bad gateway</html>").is_empty());
        assert!(parse_error_body(b"").is_empty());
        assert!(parse_error_body(b"{}").is_empty());
    }

    #[test]
    fn the_existing_contact_id_is_read_from_a_conflict_message() {
        let error = ApiError::Conflict {
            route: "POST /contacts",
            error_key: Some("contacts.api.conflict".into()),
            message: "Email already exists for contact 9d0bc4a2-5a1e-11ef-9f3c-fa163e6b01c1".into(),
        };
        assert_eq!(
            error.conflicting_contact_id().as_deref(),
            Some("9d0bc4a2-5a1e-11ef-9f3c-fa163e6b01c1")
        );
    }
}
