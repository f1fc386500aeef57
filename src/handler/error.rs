//! Why a command did not succeed, in the terms the pipeline acts on, and how the API's
//! errors map to them.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::api::{ApiError, AuthError};
use crate::command::outcome::{ErrorCode, ResultError};
use crate::command::{FieldError, Rejection};
use crate::store::StoreError;

/// Why a command did not succeed, in the terms the pipeline acts on.
#[derive(Debug)]
pub enum HandleError {
    /// The input broke a rule (ours or the API's): a `rejected` result, dead-lettered.
    Rejected(Rejection),
    /// Valid, but it cannot be applied (not found, conflict, forbidden): a `failed` result.
    Failed(ResultError),
    /// Worth trying again later: the pipeline schedules a retry.
    Transient(ApiError),
    /// The API key's daily quota is spent: park until the reset.
    QuotaExhausted { resets_at: DateTime<Utc> },
    /// The account needs a person to authorise it again: park until then.
    ReauthRequired { reason: String },
    /// Our own store failed; the command is tried again later.
    Storage(Arc<StoreError>),
    /// Right before a write, this process found its claim on the command taken over by
    /// another replica: nothing more is applied here, and the command is left to the other.
    ClaimLost,
    /// Something an earlier attempt started has not ended yet (a recorded activity still
    /// running): nothing was tried, so the command comes back in a moment without spending
    /// an attempt.
    Pending(String),
}

impl HandleError {
    /// A final `failed` result with our own code.
    pub fn failed(code: ErrorCode, message: impl Into<String>) -> Self {
        HandleError::Failed(ResultError {
            code,
            message: message.into(),
            retryable: false,
            api_status: None,
            api_error_key: None,
            fields: Vec::new(),
        })
    }

    /// A rejection naming one field.
    pub fn rejected(field: &str, reason: impl Into<String>) -> Self {
        HandleError::Rejected(Rejection::with_fields(
            ErrorCode::InvalidData,
            "the command's data is invalid",
            vec![FieldError::new(field, reason)],
        ))
    }

    /// The result error for a final failure from the API.
    pub fn api_failure(code: ErrorCode, error: &ApiError) -> ResultError {
        ResultError {
            code,
            message: error.to_string(),
            retryable: error.is_retryable(),
            api_status: error.status(),
            api_error_key: error.error_key().map(str::to_owned),
            fields: Vec::new(),
        }
    }
}

impl From<ApiError> for HandleError {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::QuotaExhausted { resets_at } | ApiError::MirrorShareSpent { resets_at } => {
                HandleError::QuotaExhausted { resets_at }
            }
            ApiError::Auth(AuthError::ReauthRequired { reason, .. }) => {
                HandleError::ReauthRequired { reason }
            }
            // Our own store failed in the middle of the call (the rate budget or the tokens):
            // handed back like any other store failure, no attempt spent.
            ApiError::Budget(error)
            | ApiError::Auth(AuthError::Store(error))
            | ApiError::FenceUnchecked { error, .. } => HandleError::Storage(error),
            ApiError::ClaimLost { .. } => HandleError::ClaimLost,
            ApiError::Auth(AuthError::NotAuthorised { account }) => {
                HandleError::Rejected(Rejection::with_fields(
                    ErrorCode::AccountNotAuthorised,
                    format!("account `{account}` is not connected to ctct-sync"),
                    vec![FieldError::new(
                        "account",
                        format!(
                            "is not authorised; run `ctct-sync auth login --account {account}`"
                        ),
                    )],
                ))
            }
            ApiError::Invalid { ref message, .. } => {
                let mut rejection = Rejection::with_fields(
                    ErrorCode::ApiValidation,
                    format!("the API refused the data: {message}"),
                    vec![FieldError::new("data", message.clone())],
                );
                rejection.message = error.to_string();
                rejection.api_status = error.status();
                rejection.api_error_key = error.error_key().map(str::to_owned);
                HandleError::Rejected(rejection)
            }
            ApiError::NotFound { .. } => {
                HandleError::Failed(HandleError::api_failure(ErrorCode::NotFound, &error))
            }
            ApiError::Conflict { .. } => {
                HandleError::Failed(HandleError::api_failure(ErrorCode::Conflict, &error))
            }
            ApiError::Forbidden { .. } => {
                HandleError::Failed(HandleError::api_failure(ErrorCode::Forbidden, &error))
            }
            // A 401 after a refresh: the next refresh will tell whether the grant is gone.
            ApiError::Unauthorized { .. } => HandleError::Transient(error),
            ref e if e.is_retryable() => HandleError::Transient(error),
            ApiError::Auth(_) => HandleError::Transient(error),
            _ => HandleError::Failed(HandleError::api_failure(ErrorCode::ApiError, &error)),
        }
    }
}
