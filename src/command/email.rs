//! An e-mail address checked once, where a command enters: [`Email`] only exists when the
//! address passed the same rules every command applies (a length limit, no control
//! characters, [`is_email`]'s syntax). The address is kept as the sender wrote it — the API
//! matches addresses without regard to case, and so does the ordering key
//! ([`super::contact::ContactRef::key`]).
//!
//! An address is personal data: `Email`'s `Debug` does not show it, and it has no `Display`,
//! so it cannot slip into a log line by accident. [`Email::as_str`] gives it to the API.

use std::fmt;

/// A checked e-mail address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why a text is not an acceptable e-mail address. `Display` gives the reason a rejection
/// names for the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailError {
    /// More than the field's limit, in characters.
    TooLong { max: usize, got: usize },
    /// Line breaks, NUL or other control characters.
    ControlCharacters,
    /// Not the shape of an address ([`is_email`]).
    Syntax,
}

impl fmt::Display for EmailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmailError::TooLong { max, got } => {
                write!(f, "must be at most {max} characters (got {got})")
            }
            EmailError::ControlCharacters => {
                f.write_str("must not contain control characters (line breaks, NUL, …)")
            }
            EmailError::Syntax => f.write_str("is not a valid e-mail address"),
        }
    }
}

impl std::error::Error for EmailError {}

impl Email {
    /// Checks `value` as an address of at most `max` characters: the limit first, then
    /// control characters, then the syntax (the order, and the reasons, of
    /// [`super::check::Checker::email`]).
    pub fn parse(value: impl Into<String>, max: usize) -> Result<Email, EmailError> {
        let value = value.into();
        let got = value.chars().count();
        if got > max {
            return Err(EmailError::TooLong { max, got });
        }
        if value.chars().any(char::is_control) {
            return Err(EmailError::ControlCharacters);
        }
        if !is_email(&value) {
            return Err(EmailError::Syntax);
        }
        Ok(Email(value))
    }

    /// The address as the sender wrote it, for the API.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its length in characters (the bulk import takes at most 50).
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email([redacted])")
    }
}

impl PartialEq<str> for Email {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Email {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A pragmatic e-mail syntax check (RFC 5321 sizes, no spaces or quotes, a dotted domain).
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use crate::command::email::{Email, EmailError, is_email};

    #[test]
    fn email_syntax_accepts_real_addresses_and_refuses_broken_ones() {
        for good in [
            "pat@example.com",
            "p.lee+news@mail.example.co.uk",
            "x_y@a-b.example",
        ] {
            assert!(is_email(good), "{good}");
            assert_eq!(Email::parse(good, 80).expect("valid"), good);
        }
        for bad in [
            "",
            "pat",
            "pat@",
            "@example.com",
            "pat@example",
            "pat @example.com",
            "pat@exa mple.com",
            "pat..lee@example.com",
            ".pat@example.com",
            "pat@-example.com",
            "pat@example..com",
            "\"pat\"@example.com",
        ] {
            assert!(!is_email(bad), "{bad:?}");
            assert_eq!(Email::parse(bad, 80), Err(EmailError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn the_limit_counts_characters_and_comes_before_the_other_checks() {
        let local = "é".repeat(30);
        let address = format!("{local}@example.com");
        assert_eq!(address.chars().count(), 42);
        assert!(Email::parse(address.as_str(), 42).is_ok(), "42 characters");
        let error = Email::parse(address.as_str(), 40).unwrap_err();
        assert_eq!(error, EmailError::TooLong { max: 40, got: 42 });
        assert_eq!(error.to_string(), "must be at most 40 characters (got 42)");
        // Too long and broken: the limit is the reason given.
        assert_eq!(
            Email::parse("x".repeat(81), 80),
            Err(EmailError::TooLong { max: 80, got: 81 })
        );
    }

    #[test]
    fn control_characters_are_refused_before_the_syntax() {
        assert!(!is_email("pat@example.com\r\nBcc: x@y.z"));
        let error = Email::parse("pat@example.com\r\nBcc: x@y.z", 80).unwrap_err();
        assert_eq!(error, EmailError::ControlCharacters);
        assert_eq!(
            error.to_string(),
            "must not contain control characters (line breaks, NUL, …)"
        );
        assert_eq!(
            EmailError::Syntax.to_string(),
            "is not a valid e-mail address"
        );
    }

    #[test]
    fn the_address_keeps_its_case_and_is_never_shown_by_debug() {
        let email = Email::parse("Pat.Lee@Example.COM", 80).expect("valid");
        assert_eq!(email.as_str(), "Pat.Lee@Example.COM");
        assert_ne!(
            email,
            Email::parse("pat.lee@example.com", 80).expect("valid")
        );
        assert_eq!(email.chars(), 19);
        let shown = format!("{email:?} {:?}", Some(&email));
        assert!(!shown.contains("Pat") && !shown.contains('@'), "{shown}");
    }
}
