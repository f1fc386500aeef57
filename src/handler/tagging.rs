//! `contact.tag`, `contact.untag`, `list.add_contacts` and `list.remove_contacts` against the
//! API: contacts named by e-mail are looked up to ids, then one activity
//! (`POST /activities/contacts_taggings_add` / `_remove`, `/activities/add_list_memberships` /
//! `remove_list_memberships`) applies or removes the tags (lists). The result carries the activity's id and its state when
//! accepted, without waiting for it. The activity's id goes into the ledger as soon as it is
//! known, so a retry after that answers with it instead of starting a second activity.

use serde_json::{Value, json};

use crate::api::model::{
    Activity, MembershipRequest, MembershipSource, TaggingRequest, TaggingSource,
};
use crate::api::{AccountApi, ApiError};
use crate::command::FieldError;
use crate::command::outcome::{ErrorCode, ResultError};
use crate::command::tagging::{ActivityKind, Gathering, TaggingContacts};

use super::{Ctx, HandleError, to_value};

/// `contact.tag`, `contact.untag`, `list.add_contacts` or `list.remove_contacts` applied alone:
/// one activity of `gathering.kind` for the command's contacts and targets. An unknown or
/// deleted contact e-mail is `not_found` naming the field (`data.emails[i]`) and the address;
/// an unknown tag, list or contact id is `not_found` as the API answers it.
pub(super) async fn apply(ctx: &Ctx<'_>, gathering: Gathering<'_>) -> Result<Value, HandleError> {
    let contact_ids = contact_ids(&ctx.api, gathering.contacts).await?;
    let (activity_id, state) = match ctx.attempt.effect_ref.as_deref() {
        Some(activity_id) => (activity_id.to_owned(), Value::Null),
        None => {
            let activity = start_activity(
                &ctx.api,
                gathering.kind,
                contact_ids.clone(),
                gathering.targets.to_vec(),
            )
            .await?;
            ctx.record_effect(&activity.activity_id).await?;
            (activity.activity_id, to_value(&activity.state))
        }
    };
    let mut data = json!({
        "contact_ids": contact_ids,
        "activity_id": activity_id,
        "activity_state": state,
    });
    data[gathering.kind.targets_key()] = json!(gathering.targets);
    Ok(data)
}

/// Starts one activity of `kind` applying `targets` (tags or lists) to `contact_ids` (at most
/// 500) and answers it as accepted. An unknown id is a 404 for the whole request.
pub(super) async fn start_activity(
    api: &AccountApi,
    kind: ActivityKind,
    contact_ids: Vec<String>,
    targets: Vec<String>,
) -> Result<Activity, ApiError> {
    match kind {
        ActivityKind::TagAdd | ActivityKind::TagRemove => {
            let request = TaggingRequest {
                source: TaggingSource { contact_ids },
                tag_ids: targets,
            };
            api.tagging_activity(kind == ActivityKind::TagAdd, &request)
                .await
        }
        ActivityKind::ListAdd | ActivityKind::ListRemove => {
            let request = MembershipRequest {
                source: MembershipSource { contact_ids },
                list_ids: targets,
            };
            api.membership_activity(kind == ActivityKind::ListAdd, &request)
                .await
        }
    }
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
