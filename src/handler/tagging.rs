//! `contact.tag`, `contact.untag`, `list.add_contacts` and `list.remove_contacts` against the
//! API: contacts named by e-mail are resolved to ids — through the mirror for the addresses
//! it holds when it is fresh (`mirror.lookup_max_age_secs`), one `GET /contacts?email=` each
//! otherwise — then one activity
//! (`POST /activities/contacts_taggings_add` / `_remove`, `/activities/add_list_memberships` /
//! `remove_list_memberships`) applies or removes the tags (lists). The result carries the activity's id and its state when
//! accepted, without waiting for it. The activity's id goes into the ledger as soon as it is
//! known, so a retry after that answers with it instead of starting a second activity.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::model::{
    Activity, MembershipRequest, MembershipSource, TaggingRequest, TaggingSource,
};
use crate::api::{AccountApi, ApiError};
use crate::command::FieldError;
use crate::command::email::Email;
use crate::command::outcome::{ErrorCode, ResultError};
use crate::command::tagging::{ActivityKind, Gathering, TaggingContacts};
use crate::mirror::{Mirror, Resource};

use super::{Ctx, HandleError, to_value};

/// Where the e-mail addresses of a command are resolved to contact ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Through the mirror for the addresses it holds a live contact of, when its last
    /// complete contacts pass of the account started within `mirror.lookup_max_age_secs`;
    /// through the API (one request each) for the others, or for all when it is not fresh.
    MirrorFirst,
    /// Through the API only, one request per address (after an activity over ids from the
    /// mirror was refused).
    ApiOnly,
}

/// A command's contacts as ids, in the command's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactIds {
    pub ids: Vec<String>,
    /// How many of `ids` came from the mirror (0: given as ids, or all looked up through
    /// the API). An activity over such ids that the API refuses with 404 may only show the
    /// mirror to be behind (a contact deleted since its last pass): resolve the addresses
    /// again with [`Resolve::ApiOnly`] before concluding.
    pub from_mirror: usize,
}

/// `contact.tag`, `contact.untag`, `list.add_contacts` or `list.remove_contacts` applied alone:
/// one activity of `gathering.kind` for the command's contacts and targets. An unknown or
/// deleted contact e-mail is `not_found` naming the field (`data.emails[i]`) and the address;
/// an unknown tag, list or contact id is `not_found` as the API answers it.
pub(super) async fn apply(ctx: &Ctx<'_>, gathering: Gathering<'_>) -> Result<Value, HandleError> {
    let mirror = ctx.handler.mirror.as_ref();
    let account = ctx.attempt.account.as_str();
    let now = ctx.handler.now();
    let contacts = &*gathering.contacts;
    let mut resolved = contact_ids(
        &ctx.api,
        mirror,
        account,
        now,
        contacts,
        Resolve::MirrorFirst,
    )
    .await?;
    let (activity_id, state) = match ctx.attempt.effect_ref.as_deref() {
        Some(activity_id) => (activity_id.to_owned(), Value::Null),
        None => {
            let targets = gathering.targets.to_vec();
            let started = start_activity(
                &ctx.api,
                gathering.kind,
                resolved.ids.clone(),
                targets.clone(),
            )
            .await;
            let activity = match started {
                // A 404 starts nothing: the mirror may be behind (a contact deleted since its
                // last pass), so the addresses are looked up and the activity tried once more
                // when that changes the ids; an unknown tag or list stays the API's answer.
                Err(refused @ ApiError::NotFound { .. }) => {
                    let route = gathering.kind.route();
                    match looked_up_again(&ctx.api, account, now, contacts, &resolved, route)
                        .await?
                    {
                        Some(looked_up) => resolved = looked_up,
                        None => return Err(refused.into()),
                    }
                    start_activity(&ctx.api, gathering.kind, resolved.ids.clone(), targets).await?
                }
                started => started?,
            };
            ctx.record_effect(&activity.activity_id).await?;
            (activity.activity_id, to_value(&activity.state))
        }
    };
    let mut data = json!({
        "contact_ids": resolved.ids,
        "activity_id": activity_id,
        "activity_state": state,
    });
    if let Some(key) = gathering.kind.targets_key() {
        data[key] = json!(gathering.targets);
    }
    Ok(data)
}

/// Starts one activity of `kind` applying `targets` (tags or lists) to `items` (contact ids,
/// at most 500), or deleting `items` (contacts, lists, tags or custom fields by id; `targets`
/// unused), and answers it as accepted. An unknown id is a 404 for the whole request.
pub(super) async fn start_activity(
    api: &AccountApi,
    kind: ActivityKind,
    items: Vec<String>,
    targets: Vec<String>,
) -> Result<Activity, ApiError> {
    match kind {
        ActivityKind::TagAdd | ActivityKind::TagRemove => {
            let request = TaggingRequest {
                source: TaggingSource { contact_ids: items },
                tag_ids: targets,
            };
            api.tagging_activity(kind == ActivityKind::TagAdd, &request)
                .await
        }
        ActivityKind::ListAdd | ActivityKind::ListRemove => {
            let request = MembershipRequest {
                source: MembershipSource { contact_ids: items },
                list_ids: targets,
            };
            api.membership_activity(kind == ActivityKind::ListAdd, &request)
                .await
        }
        ActivityKind::ContactDelete | ActivityKind::ContactErase => {
            api.delete_contacts_activity(&items).await
        }
        ActivityKind::ListDelete => api.delete_lists_activity(&items).await,
        ActivityKind::TagDelete => api.delete_tags_activity(&items).await,
        ActivityKind::FieldDelete => api.delete_custom_fields_activity(&items).await,
    }
}

/// The contacts' ids: as given, or resolved by e-mail as `resolve` says (live contacts
/// only): from `mirror` for the addresses it holds when it is fresh at `now`, one
/// `GET /contacts?email=` for each other address (the mirror may not have a contact created
/// since its last pass). An address no live contact has is `not_found` with one
/// `data.emails[i]` entry per such address. Shared with the list membership commands and the
/// gatherer.
pub(super) async fn contact_ids(
    api: &AccountApi,
    mirror: Option<&Mirror>,
    account: &str,
    now: DateTime<Utc>,
    contacts: &TaggingContacts,
    resolve: Resolve,
) -> Result<ContactIds, HandleError> {
    let emails = match contacts {
        TaggingContacts::Ids(ids) => {
            return Ok(ContactIds {
                ids: ids.clone(),
                from_mirror: 0,
            });
        }
        TaggingContacts::Emails(emails) => emails,
    };
    let mirrored = match (resolve, mirror) {
        (Resolve::MirrorFirst, Some(mirror)) => from_mirror(mirror, account, now, emails).await,
        _ => Vec::new(),
    };
    let mut ids = Vec::with_capacity(emails.len());
    let mut from_mirror = 0;
    let mut missing = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        if let Some(Some(id)) = mirrored.get(i) {
            ids.push(id.clone());
            from_mirror += 1;
            continue;
        }
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
    tracing::debug!(
        addresses = emails.len(),
        from_mirror,
        "contacts named by e-mail resolved"
    );
    if missing.is_empty() {
        return Ok(ContactIds { ids, from_mirror });
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

/// After an activity over `resolved` was refused with 404: when some of its ids came from the
/// mirror (which may be behind: a contact deleted since its last pass), the addresses looked
/// up through the API — `Some` when that changes the ids (the activity is tried once more),
/// `None` when the 404 stands. Shared with the gatherer.
pub(super) async fn looked_up_again(
    api: &AccountApi,
    account: &str,
    now: DateTime<Utc>,
    contacts: &TaggingContacts,
    resolved: &ContactIds,
    route: &str,
) -> Result<Option<ContactIds>, HandleError> {
    if resolved.from_mirror == 0 {
        return Ok(None);
    }
    tracing::info!(
        route,
        "the API refused an activity over contact ids from the mirror; looking the addresses up"
    );
    let looked_up = contact_ids(api, None, account, now, contacts, Resolve::ApiOnly).await?;
    Ok((looked_up.ids != resolved.ids).then_some(looked_up))
}

/// For each of `emails`, the id of the live contact the mirror holds with it, when the
/// mirror's last complete contacts pass of `account` started within
/// `mirror.lookup_max_age_secs` of `now`; empty when it did not (or never ran, or the
/// setting is 0). A mirror that cannot be read is not fresh: the API answers instead.
async fn from_mirror(
    mirror: &Mirror,
    account: &str,
    now: DateTime<Utc>,
    emails: &[Email],
) -> Vec<Option<String>> {
    let max_age = mirror.options().lookup_max_age;
    if max_age.is_zero() {
        return Vec::new();
    }
    let db = mirror.db();
    let current_as_of = match db.load_cursor(account, Resource::Contacts).await {
        Ok(cursor) => cursor.updated_after,
        Err(error) => {
            tracing::warn!(error = %error, "could not read the mirror's contacts cursor; looking the addresses up through the API");
            return Vec::new();
        }
    };
    let fresh = current_as_of.is_some_and(|at| {
        chrono::Duration::from_std(max_age).is_ok_and(|max_age| now - at <= max_age)
    });
    if !fresh {
        return Vec::new();
    }
    let addresses = emails.iter().map(|e| e.as_str().to_owned()).collect();
    match db.live_contact_ids_by_email(account, addresses).await {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(error = %error, "could not read contacts from the mirror; looking the addresses up through the API");
            Vec::new()
        }
    }
}
