//! What a finished import means for each command: row errors (`Line <n>: <email>: <reason>`)
//! turned into rejections naming the field, contact ids looked up cheaply (the list's pages
//! of contacts updated since the import began, 500 at a time), and copies of a batch-wide
//! failure for every command.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::api::model::ContactQuery;
use crate::api::{AccountApi, ApiError};
use crate::command::outcome::ErrorCode;
use crate::command::{FieldError, Rejection};
use crate::handler::HandleError;

/// The same failure for another command of the batch.
pub(super) fn copy(error: &HandleError) -> HandleError {
    match error {
        HandleError::Rejected(rejection) => HandleError::Rejected(rejection.clone()),
        HandleError::Failed(error) => HandleError::Failed(error.clone()),
        HandleError::Transient(error) => HandleError::Transient(ApiError::Transport {
            route: "POST /activities/contacts_json_import",
            maybe_applied: false,
            attempts: 1,
            detail: error.to_string(),
        }),
        HandleError::QuotaExhausted { resets_at } => HandleError::QuotaExhausted {
            resets_at: *resets_at,
        },
        HandleError::ReauthRequired { reason } => HandleError::ReauthRequired {
            reason: reason.clone(),
        },
        HandleError::Storage(error) => HandleError::Storage(error.clone()),
    }
}

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

/// Contacts per page of the listing the ids are read from (the API's maximum).
const PAGE: u64 = 500;

/// Pages read when the API does not say how many contacts the window holds.
const UNCOUNTED_PAGES: u64 = 400;

/// Contact ids of `emails` (lower-cased): pages of `list`'s contacts updated since `since`,
/// stopping once all are found; a few stragglers (e.g. unsubscribed contacts, which the
/// import does not add to lists) are looked up one by one. Returns the ids and the
/// requests spent; what cannot be had cheaply stays unknown.
///
/// The window also holds contacts that other writers updated meanwhile — above all other
/// batches on the same list completing together, whose contacts may come first — so the
/// pages to read are sized by the window's count (`include_count`), not by this batch.
pub(super) async fn contact_ids(
    api: &AccountApi,
    list: &str,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    emails: &[String],
) -> (HashMap<String, String>, u64) {
    let mut missing: HashSet<&str> = emails.iter().map(String::as_str).collect();
    let mut ids = HashMap::new();
    let mut requests = 0;
    // Set by the first page's count; one page more for contacts joining while we read.
    let mut max_pages = UNCOUNTED_PAGES;
    let query = ContactQuery {
        lists: vec![list.to_owned()],
        updated_after: Some(since),
        updated_before: until,
        include_count: true,
        limit: Some(PAGE as u32),
        ..ContactQuery::default()
    };
    let mut page: Option<String> = None;
    while !missing.is_empty() && requests < max_pages {
        requests += 1;
        let answer = match &page {
            None => api.list_contacts(&query).await,
            Some(href) => api.next_contacts_page(href).await,
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(error = %error, list, "listing the imported contacts failed");
                break;
            }
        };
        if let Some(count) = answer.contacts_count {
            max_pages = count.div_ceil(PAGE).max(1) + 1;
        }
        for contact in &answer.contacts {
            if let Some(email) = contact.email().map(str::to_lowercase)
                && missing.remove(email.as_str())
            {
                ids.insert(email, contact.contact_id.clone());
            }
        }
        match answer.next {
            Some(next) => page = Some(next),
            None => break,
        }
    }
    if missing.len() <= (emails.len() / 100).max(2) {
        for email in missing {
            requests += 1;
            if let Ok(Some(contact)) = api.find_contact_by_email(email, &[], true).await {
                ids.insert(email.to_owned(), contact.contact_id);
            }
        }
    } else {
        tracing::warn!(
            list,
            missing = missing.len(),
            requests,
            "contact ids of a bulk import not found in the list's pages"
        );
    }
    (ids, requests)
}

#[cfg(test)]
mod tests {
    use super::*;

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
