//! The result message: exactly one final result per command, published to the results
//! exchange with routing key `<type>.<outcome>` (and to `reply_to` when the command asked).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::envelope::{FieldError, Rejection};

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Applied (or read) as asked.
    Succeeded,
    /// Valid, but could not be applied (the API refused it, or retries ran out).
    Failed,
    /// Invalid: the message or its data broke a rule; sending it again will not help.
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Rejected => "rejected",
        }
    }
}

/// What went wrong, for machines (`code`, `retryable`, `fields`) and people (`message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_error_key: Option<String>,
    #[serde(default)]
    pub fields: Vec<FieldError>,
}

impl From<&Rejection> for ResultError {
    fn from(rejection: &Rejection) -> Self {
        ResultError {
            code: rejection.code.to_owned(),
            message: rejection.message.clone(),
            retryable: false,
            api_status: rejection.api_status,
            api_error_key: rejection.api_error_key.clone(),
            fields: rejection.fields.clone(),
        }
    }
}

/// Something about the command's delivery its sender should know that did not change its
/// outcome (e.g. a `reply_to` the daemon refused to publish to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultWarning {
    /// Stable, machine-readable: `reply_to_refused`.
    pub code: String,
    /// For people; names what was refused and why.
    pub message: String,
}

/// `warnings[].code` when a command's `reply_to` names a queue the daemon does not publish to.
pub const WARNING_REPLY_TO_REFUSED: &str = "reply_to_refused";

/// The result message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    pub command_id: String,
    #[serde(rename = "type")]
    pub command_type: String,
    pub account: String,
    pub outcome: Outcome,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub error: Option<ResultError>,
    /// How many times ctct-sync started on this command (1 unless it was retried).
    pub attempts: u32,
    /// True when this is a stored result sent again for a redelivered or re-sent command.
    pub replayed: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Left out when there is none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ResultWarning>,
}

impl CommandResult {
    /// The routing key on the results exchange: `<type>.<outcome>`.
    pub fn routing_key(&self) -> String {
        let command_type = if self.command_type.is_empty() {
            "unknown"
        } else {
            &self.command_type
        };
        format!("{command_type}.{}", self.outcome.as_str())
    }
}
