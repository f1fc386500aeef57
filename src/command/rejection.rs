//! `Rejection`: why a message or a command was not accepted, and the result error it becomes.

use super::field::FieldError;
use super::outcome::{ErrorCode, ResultError};

/// Why a message was not accepted. `code` is stable for machines; `message` for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
    pub fields: Vec<FieldError>,
    /// When the API itself refused the data: its status and error key.
    pub api_status: Option<u16>,
    pub api_error_key: Option<String>,
}

impl Rejection {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
            api_status: None,
            api_error_key: None,
        }
    }

    pub fn with_fields(
        code: ErrorCode,
        message: impl Into<String>,
        fields: Vec<FieldError>,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            fields,
            api_status: None,
            api_error_key: None,
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        for field in &self.fields {
            write!(f, "; {}: {}", field.field, field.reason)?;
        }
        Ok(())
    }
}

impl From<&Rejection> for ResultError {
    fn from(rejection: &Rejection) -> Self {
        ResultError {
            code: rejection.code,
            message: rejection.message.clone(),
            retryable: false,
            api_status: rejection.api_status,
            api_error_key: rejection.api_error_key.clone(),
            fields: rejection.fields.clone(),
        }
    }
}
