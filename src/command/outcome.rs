//! The result message: exactly one final result per command, published to the results
//! exchange with routing key `<type>.<outcome>` (and to `reply_to` when the command asked).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::field::FieldError;

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

/// Defines [`ErrorCode`] with its names and [`ErrorCode::ALL`] from one list, so no code can
/// be left out of either.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)*) => {
        /// Every `error.code` a result can carry: the one list the code makes results from and
        /// the documentation (docs/messages.md, `result.schema.json`) is checked against.
        /// Serialised as its name (`invalid_data`). Codes are never removed: stored results
        /// carry them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* #[serde(rename = $name)] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order docs/messages.md lists them.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code's name, as results carry it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                }
            }
        }
    };
}

error_codes! {

    /// The message's `content_type` is set and is not `application/json`.
    UnsupportedContentType = "unsupported_content_type",
    /// The message's `content_encoding` is not unset, `identity`, `utf-8` or `utf8`.
    UnsupportedContentEncoding = "unsupported_content_encoding",
    /// The body is over 256 KiB.
    TooLarge = "too_large",
    /// The body is not UTF-8.
    InvalidUtf8 = "invalid_utf8",
    /// The body is not JSON (or too deep, or repeats a key).
    InvalidJson = "invalid_json",
    /// Not an object, or `id`/`type`/`account`/`data` missing or malformed, or other keys.
    InvalidEnvelope = "invalid_envelope",
    /// `type` is not a command type.
    UnknownType = "unknown_type",
    /// `data` breaks a rule (also an unknown custom field name, a schedule time passed).
    InvalidData = "invalid_data",
    /// The `account` was never connected.
    AccountNotAuthorised = "account_not_authorised",
    /// Constant Contact refused the data (HTTP 400, or a bulk import skipped the row).
    ApiValidation = "api_validation",
    /// The id was already used for a different command within the ledger's retention.
    IdReused = "id_reused",
    /// The contact, campaign, custom field, list, segment or tag does not exist (or, for
    /// `report.campaign.get`, the campaign has no statistics).
    NotFound = "not_found",
    /// Constant Contact reports a conflict ctct-sync could not resolve (HTTP 409).
    Conflict = "conflict",
    /// The connected user lacks a scope or privilege (HTTP 403).
    Forbidden = "forbidden",
    /// An unexpected answer from Constant Contact.
    ApiError = "api_error",
    /// The campaign has no primary e-mail.
    NoPrimaryEmail = "no_primary_email",
    /// `campaign.send_test`: an earlier attempt's answer was lost; the test may have gone out.
    OutcomeUnknown = "outcome_unknown",
    /// `mirror.run` handled by a process without the mirror (never by the daemon).
    Unsupported = "unsupported",
    /// `mirror.run`: a run was stopped (cancelled, shut down) before it finished; resumable.
    Interrupted = "interrupted",
    /// `mirror.run`: a run failed; what it wrote stays and the next run continues.
    MirrorFailed = "mirror_failed",
    /// Transient failures through every attempt (`amqp.max_attempts`).
    RetriesExhausted = "retries_exhausted",
    /// The broker dead-lettered the command after `amqp.delivery_limit` deliveries without a
    /// final result.
    DeliveryLimit = "delivery_limit",
    /// The broker dead-lettered the command for another reason (expired, rejected by another
    /// consumer, queue length) before ctct-sync gave a verdict.
    DeadLettered = "dead_lettered",
}

impl ErrorCode {
    /// The outcome a result with this code has: rejected (the input broke a rule; sending it
    /// again unchanged will not help) or failed.
    pub fn outcome(self) -> Outcome {
        match self {
            ErrorCode::UnsupportedContentType
            | ErrorCode::UnsupportedContentEncoding
            | ErrorCode::TooLarge
            | ErrorCode::InvalidUtf8
            | ErrorCode::InvalidJson
            | ErrorCode::InvalidEnvelope
            | ErrorCode::UnknownType
            | ErrorCode::InvalidData
            | ErrorCode::AccountNotAuthorised
            | ErrorCode::ApiValidation
            | ErrorCode::IdReused => Outcome::Rejected,
            ErrorCode::NotFound
            | ErrorCode::Conflict
            | ErrorCode::Forbidden
            | ErrorCode::ApiError
            | ErrorCode::NoPrimaryEmail
            | ErrorCode::OutcomeUnknown
            | ErrorCode::Unsupported
            | ErrorCode::Interrupted
            | ErrorCode::MirrorFailed
            | ErrorCode::RetriesExhausted
            | ErrorCode::DeliveryLimit
            | ErrorCode::DeadLettered => Outcome::Failed,
        }
    }

    /// Reads a code's name.
    pub fn parse(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What went wrong, for machines (`code`, `retryable`, `fields`) and people (`message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultError {
    pub code: ErrorCode,
    pub message: String,
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_error_key: Option<String>,
    #[serde(default)]
    pub fields: Vec<FieldError>,
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
    /// RFC 3339, UTC, milliseconds: `2026-12-03T10:00:00.123Z`.
    #[serde(with = "super::timestamp")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "super::timestamp")]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_serialises_as_its_name_and_reads_back() {
        for &code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                Value::from(code.as_str())
            );
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert_eq!(
                serde_json::from_value::<ErrorCode>(Value::from(code.as_str())).unwrap(),
                code
            );
            assert_ne!(code.outcome(), Outcome::Succeeded);
        }
        let names: std::collections::BTreeSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len(), "no code twice");
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }
}
