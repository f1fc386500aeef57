//! What a finished import means for each command: row errors (`Line <n>: <email>: <reason>`)
//! turned into rejections naming the field. (The import's API work, contact-id lookups and
//! copies of a batch-wide failure are the handler's: `crate::handler::bulk`.)

use std::collections::HashMap;

use crate::command::outcome::ErrorCode;
use crate::command::{FieldError, Rejection};

/// Row number (1-based) → reason, from `activity_errors`.
pub(super) fn row_errors(errors: &[String]) -> HashMap<usize, String> {
    errors
        .iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("Line ")?;
            let (number, rest) = rest.split_once(": ")?;
            let (_email, reason) = rest.split_once(": ")?;
            Some((number.trim().parse().ok()?, reason.to_owned()))
        })
        .collect()
}

/// The command field a row error is about.
fn field_of(reason: &str) -> String {
    if let Some(name) = reason.strip_prefix("unknown custom field cf:") {
        return format!("data.custom_fields.{name}");
    }
    let column = reason.split_whitespace().next().unwrap_or_default();
    if let Some(name) = column.strip_prefix("cf:") {
        return format!("data.custom_fields.{name}");
    }
    match column {
        "email" | "invalid" => "data.email".into(),
        "first_name" | "last_name" | "job_title" | "company_name" | "anniversary" => {
            format!("data.{column}")
        }
        "birthday_month" | "birthday_day" => "data.birthday_month".into(),
        "more" => "data.custom_fields".into(),
        c if c.ends_with("phone") => "data.phone_numbers".into(),
        c if ["street", "street2", "city", "state", "zip", "country"]
            .iter()
            .any(|suffix| c.ends_with(suffix)) =>
        {
            "data.street_addresses".into()
        }
        _ => "data".into(),
    }
}

/// A row the import skipped, as the command's rejection.
pub(super) fn rejection(reason: &str) -> Rejection {
    let mut rejection = Rejection::with_fields(
        ErrorCode::ApiValidation,
        format!("the bulk import refused the contact: {reason}"),
        vec![FieldError::new(field_of(reason), reason)],
    );
    rejection.message = format!("the bulk import refused the contact: {reason}");
    rejection
}

#[cfg(test)]
mod tests {
    use crate::pipeline::bulk::outcome::{field_of, row_errors};

    #[test]
    fn row_errors_name_their_rows_and_fields() {
        let errors = row_errors(&[
            "Line 3: pat@example.com: cf:hobby exceeds the maximum length of 255".into(),
            "Line 12: bad@: invalid email address".into(),
            "not a row error".into(),
        ]);
        assert_eq!(errors.len(), 2);
        assert_eq!(field_of(&errors[&3]), "data.custom_fields.hobby");
        assert_eq!(field_of(&errors[&12]), "data.email");
        assert_eq!(
            field_of("work_city exceeds the maximum length of 80"),
            "data.street_addresses"
        );
        assert_eq!(
            field_of("unknown custom field cf:shoe"),
            "data.custom_fields.shoe"
        );
        assert_eq!(field_of("something new"), "data");
    }
}
