//! `list.add_contacts` and `list.remove_contacts` against the API: contacts named by e-mail
//! are looked up to ids (as `contact.tag` does), then one membership activity
//! (`POST /activities/add_list_memberships` / `remove_list_memberships`) adds or removes them.
//! The result carries the activity's id and its state when accepted, without waiting for it.
//! The activity's id goes into the ledger as soon as it is known, so a retry after that answers
//! with it instead of starting a second activity.

use serde_json::{Value, json};

use crate::api::model::{Activity, MembershipRequest, MembershipSource};
use crate::api::{AccountApi, ApiError};
use crate::command::membership::Membership;

use super::tagging::contact_ids;
use super::{Ctx, HandleError, to_value};

/// Starts one membership activity: adds (`add`) or removes the contacts to (from) the lists,
/// and answers the accepted activity. The whole request is refused (404 `NotFound`) when a
/// list or contact id is unknown. Called by the commands here and by anything that combines
/// several commands into one activity (at most 500 contacts and 50 lists).
pub(crate) async fn start_membership_activity(
    api: &AccountApi,
    add: bool,
    contact_ids: Vec<String>,
    list_ids: Vec<String>,
) -> Result<Activity, ApiError> {
    let request = MembershipRequest {
        source: MembershipSource { contact_ids },
        list_ids,
    };
    api.membership_activity(add, &request).await
}

/// `list.add_contacts` (`add`) or `list.remove_contacts`. An unknown or deleted contact
/// e-mail is `not_found` naming the field (`data.emails[i]`) and the address; an unknown list
/// or contact id is `not_found` as the API answers it.
pub(super) async fn apply(
    ctx: &Ctx<'_>,
    add: bool,
    membership: &Membership,
) -> Result<Value, HandleError> {
    let contact_ids = contact_ids(&ctx.api, &membership.contacts).await?;
    if let Some(activity_id) = ctx.attempt.effect_ref.as_deref() {
        return Ok(json!({
            "contact_ids": contact_ids,
            "list_ids": membership.list_ids,
            "activity_id": activity_id,
            "activity_state": null,
        }));
    }
    let activity = start_membership_activity(
        &ctx.api,
        add,
        contact_ids.clone(),
        membership.list_ids.clone(),
    )
    .await?;
    ctx.record_effect(&activity.activity_id).await?;
    Ok(json!({
        "contact_ids": contact_ids,
        "list_ids": membership.list_ids,
        "activity_id": activity.activity_id,
        "activity_state": to_value(&activity.state),
    }))
}
