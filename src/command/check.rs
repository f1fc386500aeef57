//! Field checks shared by every command: collect each problem with its field path, then
//! fail once with all of them (a sender fixes everything in one go).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use serde_path_to_error::Segment;

use super::email::Email;
pub use super::email::is_email;
use super::field::{FieldError, truncate};
use super::outcome::ErrorCode;
use super::rejection::Rejection;

/// Deserialises `data` into `T`, naming the offending field on failure.
pub fn data<T: DeserializeOwned>(data: Map<String, Value>) -> Result<T, Rejection> {
    serde_path_to_error::deserialize(Value::Object(data)).map_err(|e| {
        // serde echoes the sender's keys and values: keep them short (a 200,000-character key
        // must not come back whole, nor overflow a dead letter's header frame).
        let mut field = "data".to_owned();
        for segment in e.path().iter() {
            match segment {
                Segment::Seq { index } => field.push_str(&format!("[{index}]")),
                Segment::Map { key } => field.push_str(&format!(".{}", truncate(key, 60))),
                Segment::Enum { variant } => field.push_str(&format!(".{}", truncate(variant, 60))),
                Segment::Unknown => field.push_str(".?"),
            }
        }
        // serde's messages end with " at line 1 column N" for text input only; none here.
        let reason = shorten_quotes(&e.inner().to_string(), 60);
        Rejection::with_fields(
            ErrorCode::InvalidData,
            "the command's data is invalid",
            vec![FieldError::new(field, truncate(&reason, MAX_REASON))],
        )
    })
}

/// Longest reason taken over from serde, in characters.
const MAX_REASON: usize = 400;

/// Shortens each `…` or "…" quoted run of a serde message (the sender's key or value) to
/// `max` characters, keeping the rest (`expected one of …`) readable.
fn shorten_quotes(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(4 * MAX_REASON));
    let mut rest = text;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=open]);
        let inner = &rest[open + 1..];
        match inner.find(quote) {
            Some(close) => {
                out.push_str(&truncate(&inner[..close], max));
                out.push(quote);
                rest = &inner[close + 1..];
            }
            None => {
                out.push_str(&truncate(inner, max));
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Collects field problems.
#[derive(Debug, Default)]
pub struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(FieldError::new(field, reason));
    }

    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Ends the checks: the value if nothing failed, else one rejection naming every field.
    pub fn finish<T>(self, value: T) -> Result<T, Rejection> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.rejection())
        }
    }

    /// Like [`Checker::finish`] for a value that only exists when its checks passed (a
    /// required field): `None` comes with their failure. Should it come without one, the
    /// rejection names `field` with `reason`.
    pub fn finish_required<T>(
        mut self,
        value: Option<T>,
        field: &str,
        reason: &str,
    ) -> Result<T, Rejection> {
        match value {
            Some(value) => self.finish(value),
            None => {
                if self.errors.is_empty() {
                    self.fail(field, reason);
                }
                Err(self.rejection())
            }
        }
    }

    fn rejection(self) -> Rejection {
        Rejection::with_fields(
            ErrorCode::InvalidData,
            "the command's data is invalid",
            self.errors,
        )
    }

    /// A single-line text of at most `max` characters with no control characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> bool {
        let count = value.chars().count();
        if count > max {
            self.fail(
                field,
                format!("must be at most {max} characters (got {count})"),
            );
            return false;
        }
        if value.chars().any(char::is_control) {
            self.fail(
                field,
                "must not contain control characters (line breaks, NUL, …)",
            );
            return false;
        }
        true
    }

    /// Like [`Checker::text`] but line breaks and tabs are allowed (content, descriptions).
    pub fn long_text(&mut self, field: &str, value: &str, max: usize) -> bool {
        let count = value.chars().count();
        if count > max {
            self.fail(
                field,
                format!("must be at most {max} characters (got {count})"),
            );
            return false;
        }
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            self.fail(
                field,
                "must not contain control characters other than line breaks and tabs",
            );
            return false;
        }
        true
    }

    /// A required, non-blank text.
    pub fn required_text(&mut self, field: &str, value: &str, max: usize) -> bool {
        if value.trim().is_empty() {
            self.fail(field, "must not be empty");
            return false;
        }
        self.text(field, value, max)
    }

    /// An e-mail address the API will accept: one `@`, a dotted domain, no spaces.
    pub fn email(&mut self, field: &str, value: &str, max: usize) -> bool {
        self.email_address(field, value, max).is_some()
    }

    /// Like [`Checker::email`], giving the checked address ([`Email::parse`]'s rules).
    pub fn email_address(
        &mut self,
        field: &str,
        value: impl Into<String>,
        max: usize,
    ) -> Option<Email> {
        match Email::parse(value, max) {
            Ok(email) => Some(email),
            Err(problem) => {
                self.fail(field, problem.to_string());
                None
            }
        }
    }

    /// A Constant Contact resource id (UUID).
    pub fn uuid(&mut self, field: &str, value: &str) -> bool {
        if uuid::Uuid::try_parse(value).is_err() || value.len() != 36 {
            self.fail(
                field,
                "must be a UUID such as 07936f78-662a-11eb-af0a-fa163e56c9b0",
            );
            return false;
        }
        true
    }

    /// A required resource id: present and a UUID.
    pub fn required_uuid(&mut self, field: &str, value: &str) -> bool {
        if value.is_empty() {
            self.fail(field, "is required");
            return false;
        }
        self.uuid(field, value)
    }

    /// A list of UUIDs with a size limit, without duplicates.
    pub fn uuids(&mut self, field: &str, values: &[String], min: usize, max: usize) -> bool {
        let mut ok = true;
        if values.len() < min || values.len() > max {
            self.fail(
                field,
                format!("must hold {min} to {max} ids (got {})", values.len()),
            );
            ok = false;
        }
        for (i, value) in values.iter().take(max + 1).enumerate() {
            ok &= self.uuid(&format!("{field}[{i}]"), value);
        }
        let mut seen = std::collections::HashSet::new();
        if values.iter().any(|v| !seen.insert(v)) {
            self.fail(field, "must not repeat an id");
            ok = false;
        }
        ok
    }

    /// A time that has not passed yet.
    pub fn future(&mut self, field: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        if at <= now {
            self.fail(field, format!("{} is in the past", at.to_rfc3339()));
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn a_required_value_is_missing_only_with_a_failure_that_names_it() {
        assert_eq!(
            Checker::new().finish_required(Some(3), "data.x", "is required"),
            Ok(3)
        );
        let mut check = Checker::new();
        check.fail("data.email", "is not a valid e-mail address");
        let rejection = check
            .finish_required(None::<u8>, "data.email", "is required")
            .unwrap_err();
        assert_eq!(rejection.fields.len(), 1);
        assert_eq!(rejection.fields[0].reason, "is not a valid e-mail address");
        let rejection = Checker::new()
            .finish_required(None::<u8>, "data.email", "is required")
            .unwrap_err();
        assert_eq!(rejection.fields[0].field, "data.email");
        assert_eq!(rejection.fields[0].reason, "is required");
    }

    #[test]
    fn text_checks_name_the_field_and_reason() {
        let mut check = Checker::new();
        assert!(!check.text("data.first_name", &"x".repeat(51), 50));
        assert!(!check.text("data.last_name", "Robert'); DROP TABLE contacts;--\0", 50));
        assert!(check.text("data.job_title", "Robert'); DROP TABLE contacts;--", 50));
        let rejection = check.finish(()).unwrap_err();
        assert_eq!(rejection.fields[0].field, "data.first_name");
        assert!(rejection.fields[0].reason.contains("at most 50"));
        assert_eq!(rejection.fields[1].field, "data.last_name");
        assert!(rejection.fields[1].reason.contains("control characters"));
    }

    #[test]
    fn keys_and_values_echoed_from_serde_are_shortened() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Month {
            month: Option<u8>,
        }
        let long = "z".repeat(200_000);
        let unknown: Map<String, Value> = [(long.clone(), Value::from(1))].into_iter().collect();
        let field = &data::<Month>(unknown).unwrap_err().fields[0];
        assert_eq!(field.field, format!("data.{}…", "z".repeat(60)));
        assert!(
            field.reason.starts_with("unknown field `zzz"),
            "{}",
            field.reason
        );
        assert!(
            field.reason.ends_with("expected `month`"),
            "{}",
            field.reason
        );
        let wrong: Map<String, Value> = [("month".to_owned(), Value::from(long))]
            .into_iter()
            .collect();
        let field = &data::<Month>(wrong).unwrap_err().fields[0];
        assert_eq!(field.field, "data.month");
        assert!(
            field.reason.len() < 200 && field.reason.ends_with("expected u8"),
            "{}",
            field.reason
        );
    }

    #[test]
    fn id_lists_are_checked_for_size_shape_and_repeats() {
        let id = "07936f78-662a-11eb-af0a-fa163e56c9b0".to_owned();
        let mut check = Checker::new();
        assert!(check.uuids("data.list_ids", std::slice::from_ref(&id), 1, 50));
        assert!(!check.uuids("data.list_ids", &[], 1, 50));
        assert!(!check.uuids("data.list_ids", &[id.clone(), id.clone()], 1, 50));
        assert!(!check.uuids("data.list_ids", &["../etc".to_owned()], 1, 50));
        assert_eq!(check.finish(()).unwrap_err().fields.len(), 3);
    }
}
