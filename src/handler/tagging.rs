//! `contact.tag` and `contact.untag` against the API: contacts named by e-mail are looked up
//! to ids, then one tagging activity (`POST /activities/contacts_taggings_add` / `_remove`)
//! applies or removes the tags. The result carries the activity's id and its state when
//! accepted, without waiting for it. The activity's id goes into the ledger as soon as it is
//! known, so a retry after that answers with it instead of starting a second activity.

use serde_json::{Value, json};

use crate::api::AccountApi;
use crate::api::model::{TaggingRequest, TaggingSource};
use crate::command::FieldError;
use crate::command::outcome::{ErrorCode, ResultError};
use crate::command::tagging::{Tagging, TaggingContacts};

use super::{Ctx, HandleError, to_value};

/// `contact.tag` (`add`) or `contact.untag`. An unknown or deleted contact e-mail is
/// `not_found` naming the field (`data.emails[i]`) and the address; an unknown tag or contact
/// id is `not_found` as the API answers it.
pub(super) async fn apply(
    ctx: &Ctx<'_>,
    add: bool,
    tagging: &Tagging,
) -> Result<Value, HandleError> {
    let contact_ids = contact_ids(&ctx.api, &tagging.contacts).await?;
    if let Some(activity_id) = ctx.attempt.effect_ref.as_deref() {
        return Ok(json!({
            "contact_ids": contact_ids,
            "tag_ids": tagging.tag_ids,
            "activity_id": activity_id,
            "activity_state": null,
        }));
    }
    let request = TaggingRequest {
        source: TaggingSource {
            contact_ids: contact_ids.clone(),
        },
        tag_ids: tagging.tag_ids.clone(),
    };
    let activity = ctx.api.tagging_activity(add, &request).await?;
    ctx.record_effect(&activity.activity_id).await?;
    Ok(json!({
        "contact_ids": contact_ids,
        "tag_ids": tagging.tag_ids,
        "activity_id": activity.activity_id,
        "activity_state": to_value(&activity.state),
    }))
}

/// The contacts' ids: as given, or looked up by e-mail (live contacts only; one
/// `GET /contacts?email=` each). An address no live contact has is `not_found` with one
/// `data.emails[i]` entry per such address. Shared with the list membership commands and the
/// gatherer.
pub(super) async fn contact_ids(
    api: &AccountApi,
    contacts: &TaggingContacts,
) -> Result<Vec<String>, HandleError> {
    let emails = match contacts {
        TaggingContacts::Ids(ids) => return Ok(ids.clone()),
        TaggingContacts::Emails(emails) => emails,
    };
    let mut ids = Vec::with_capacity(emails.len());
    let mut missing = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        match api
            .find_contact_by_email(email.as_str(), &[], false)
            .await?
        {
            Some(contact) if !contact.is_deleted() => ids.push(contact.contact_id),
            _ => missing.push(FieldError::new(
                format!("data.emails[{i}]"),
                format!(
                    "no contact in the account has the address {}",
                    email.as_str()
                ),
            )),
        }
    }
    if missing.is_empty() {
        return Ok(ids);
    }
    Err(HandleError::Failed(ResultError {
        code: ErrorCode::NotFound,
        message: format!(
            "{} of the e-mail addresses belong to no contact in the account",
            missing.len()
        ),
        retryable: false,
        api_status: None,
        api_error_key: None,
        fields: missing,
    }))
}
