//! Contact commands against the API.
//!
//! `PUT /contacts/{id}` replaces every core field (reference §12.1), so updates and upserts
//! fetch the contact with the subresources they manage, apply the changes to that, and send
//! the whole body — and send nothing when nothing changes, which saves a request.

use serde_json::{Value, json};

use crate::api::ApiError;
use crate::api::model::contact_input::{
    ContactCreate, ContactPut, EmailAddressInput, PhoneNumberInput, SignUpForm, StreetAddressInput,
};
use crate::api::model::contacts::{Contact, ContactCustomField, Include, PermissionToSend, Source};
use crate::command::contact::{
    Address, AddressKind, ContactChanges, ContactRef, CustomFieldKey, OptOut, Phone, PhoneKind,
    SignUp, UpdateChanges,
};
use crate::command::email::Email;
use crate::command::patch::Patch;

use super::{Ctx, HandleError, to_value};
use crate::command::outcome::ErrorCode;

/// The subresources ctct-sync manages on a contact.
const MANAGED: [Include; 4] = [
    Include::CustomFields,
    Include::ListMemberships,
    Include::PhoneNumbers,
    Include::StreetAddresses,
];

/// How a command's `list_ids` combine with the contact's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lists {
    /// Add to the contact's lists (create, upsert — like the bulk import does).
    Add,
    /// The contact's lists become exactly these (update).
    Replace,
}

/// Whether the contact's address is unsubscribed.
pub(super) fn is_unsubscribed(contact: &Contact) -> bool {
    contact
        .email_address
        .as_ref()
        .is_some_and(|e| e.permission_to_send == Some(PermissionToSend::Unsubscribed))
}

fn summary(contact: &Contact, action: &str) -> Value {
    json!({
        "contact_id": contact.contact_id,
        "email": contact.email(),
        "action": action,
        "contact": to_value(contact),
    })
}

async fn find(ctx: &Ctx<'_>, target: &ContactRef) -> Result<Option<Contact>, HandleError> {
    match target {
        ContactRef::Id(id) => match ctx.api.get_contact(id, &MANAGED).await {
            Ok(contact) => Ok(Some(contact)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        },
        ContactRef::Email(email) => Ok(ctx
            .api
            .find_contact_by_email(email.as_str(), &MANAGED, true)
            .await?),
    }
}

fn not_found(target: &ContactRef) -> HandleError {
    let what = match target {
        ContactRef::Id(id) => format!("contact {id}"),
        ContactRef::Email(_) => "a contact with this e-mail address".to_owned(),
    };
    HandleError::failed(
        ErrorCode::NotFound,
        format!("{what} does not exist in the account"),
    )
}

/// `contact.create`: creates the contact; when it exists already (409), answers with the
/// existing contact's id and `already_existed: true`.
pub(super) async fn create(ctx: &Ctx<'_>, changes: &ContactChanges) -> Result<Value, HandleError> {
    let email = changes.email.as_str();
    if ctx.attempt.is_retry()
        && let Some(existing) = ctx.api.find_contact_by_email(email, &MANAGED, true).await?
    {
        let ours = ctx.attempt.effect_ref.as_deref() == Some(existing.contact_id.as_str());
        let mut value = summary(&existing, if ours { "created" } else { "unchanged" });
        value["already_existed"] = json!(!ours);
        return Ok(value);
    }
    let body = create_body(ctx, changes).await?;
    match ctx.api.create_contact(&body).await {
        Ok(contact) => {
            ctx.record_effect(&contact.contact_id).await?;
            let mut value = summary(&contact, "created");
            value["already_existed"] = json!(false);
            Ok(value)
        }
        Err(error @ ApiError::Conflict { .. }) => match error.conflicting_contact_id() {
            Some(id) => Ok(
                json!({"contact_id": id, "email": email, "action": "unchanged", "already_existed": true}),
            ),
            None => Err(error.into()),
        },
        Err(error) => Err(error.into()),
    }
}

async fn create_body(
    ctx: &Ctx<'_>,
    changes: &ContactChanges,
) -> Result<ContactCreate, HandleError> {
    let custom = ctx
        .handler
        .fields
        .resolve(&ctx.api, &changes.custom_fields)
        .await?;
    let mut body = ContactCreate::new(Source::Account);
    body.email_address = Some(EmailAddressInput::new(changes.email.as_str(), None));
    // Create and upsert never carry `null` (the checks reject it): a patch here only sets.
    body.first_name = changes.first_name.value().cloned();
    body.last_name = changes.last_name.value().cloned();
    body.job_title = changes.job_title.value().cloned();
    body.company_name = changes.company_name.value().cloned();
    if let Patch::Value((month, day)) = changes.birthday {
        body.birthday_month = Some(u32::from(month));
        body.birthday_day = Some(u32::from(day));
    }
    body.anniversary = changes.anniversary.value().cloned();
    body.custom_fields = custom
        .into_iter()
        .filter_map(|(id, value)| value.map(|v| ContactCustomField::new(&id, &v)))
        .collect();
    body.phone_numbers = changes
        .phone_numbers
        .as_deref()
        .map(phones)
        .unwrap_or_default();
    body.street_addresses = changes
        .street_addresses
        .as_deref()
        .map(addresses)
        .unwrap_or_default();
    body.list_memberships = changes.list_ids.clone().unwrap_or_default();
    Ok(body)
}

/// `contact.upsert`: by e-mail, updates the contact when it exists (deleted ones are
/// revived), creates it otherwise — never through the sign-up form, so its permission
/// is left as it is.
pub(super) async fn upsert(ctx: &Ctx<'_>, changes: &ContactChanges) -> Result<Value, HandleError> {
    let email = &changes.email;
    match ctx
        .api
        .find_contact_by_email(email.as_str(), &MANAGED, true)
        .await?
    {
        Some(existing) => write_changes(ctx, existing, Some(email), changes, Lists::Add).await,
        None => {
            let body = create_body(ctx, changes).await?;
            match ctx.api.create_contact(&body).await {
                Ok(contact) => {
                    ctx.record_effect(&contact.contact_id).await?;
                    Ok(summary(&contact, "created"))
                }
                // Created meanwhile (by another writer, or by our earlier attempt whose
                // answer was lost): update it instead.
                Err(error @ ApiError::Conflict { .. }) => {
                    let id = error
                        .conflicting_contact_id()
                        .ok_or(HandleError::from(error))?;
                    let existing = ctx.api.get_contact(&id, &MANAGED).await?;
                    write_changes(ctx, existing, Some(email), changes, Lists::Add).await
                }
                Err(error) => Err(error.into()),
            }
        }
    }
}

/// `contact.update`: partial — fields not given are kept; `null` clears; `list_ids`
/// replaces the contact's lists.
pub(super) async fn update(
    ctx: &Ctx<'_>,
    target: &ContactRef,
    changes: &UpdateChanges,
) -> Result<Value, HandleError> {
    let existing = find(ctx, target).await?.ok_or_else(|| not_found(target))?;
    write_changes(
        ctx,
        existing,
        changes.email.as_ref(),
        changes,
        Lists::Replace,
    )
    .await
}

/// Applies `changes` (with `email`, the address the contact should have, if any) to the
/// existing contact and PUTs it when something changed.
async fn write_changes<E>(
    ctx: &Ctx<'_>,
    existing: Contact,
    email: Option<&Email>,
    changes: &ContactChanges<E>,
    lists: Lists,
) -> Result<Value, HandleError> {
    let custom = ctx
        .handler
        .fields
        .resolve(&ctx.api, &changes.custom_fields)
        .await?;
    // The body carries the contact's permission as it is: an unsubscribed address stays
    // unsubscribed, and the result says so.
    let unsubscribed = is_unsubscribed(&existing);
    let before = existing.to_put(Source::Account);
    let mut after = before.clone();
    apply(&mut after, email, changes, &custom, lists);
    let mut value = if after == before && !existing.is_deleted() {
        summary(&existing, "unchanged")
    } else {
        let updated = ctx.api.update_contact(&existing.contact_id, &after).await?;
        let action = if existing.is_deleted() {
            "revived"
        } else {
            "updated"
        };
        summary(&updated, action)
    };
    if unsubscribed {
        value["permission"] = json!("unchanged");
    }
    Ok(value)
}

/// Applies `changes` to a complete PUT body.
fn apply<E>(
    put: &mut ContactPut,
    email: Option<&Email>,
    changes: &ContactChanges<E>,
    custom: &[(String, Option<String>)],
    lists: Lists,
) {
    if let Some(email) = email {
        let email = email.as_str();
        match &mut put.email_address {
            Some(current) if current.address.eq_ignore_ascii_case(email) => {}
            Some(current) => current.address = email.to_owned(),
            None => put.email_address = Some(EmailAddressInput::new(email, None)),
        }
    }
    changes.first_name.apply_to(&mut put.first_name);
    changes.last_name.apply_to(&mut put.last_name);
    changes.job_title.apply_to(&mut put.job_title);
    changes.company_name.apply_to(&mut put.company_name);
    changes.anniversary.apply_to(&mut put.anniversary);
    match changes.birthday {
        Patch::Absent => {}
        Patch::Null => {
            put.birthday_month = None;
            put.birthday_day = None;
        }
        Patch::Value((month, day)) => {
            put.birthday_month = Some(u32::from(month));
            put.birthday_day = Some(u32::from(day));
        }
    }
    if let Some(list) = &changes.phone_numbers {
        put.phone_numbers = Some(phones(list));
    }
    if let Some(list) = &changes.street_addresses {
        put.street_addresses = Some(addresses(list));
    }
    if !custom.is_empty() {
        let values = put.custom_fields.get_or_insert_with(Vec::new);
        for (id, value) in custom {
            let existing = values.iter().position(|v| &v.custom_field_id == id);
            match (existing, value) {
                (Some(i), Some(v)) => values[i].value = Some(v.clone()),
                (None, Some(v)) => values.push(ContactCustomField::new(id, v)),
                (Some(i), None) => {
                    values.remove(i);
                }
                (None, None) => {}
            }
        }
    }
    if let Some(ids) = &changes.list_ids {
        let current = put.list_memberships.get_or_insert_with(Vec::new);
        match lists {
            Lists::Replace => *current = ids.clone(),
            Lists::Add => {
                for id in ids {
                    if !current.contains(id) {
                        current.push(id.clone());
                    }
                }
            }
        }
    }
}

fn phones(list: &[Phone]) -> Vec<PhoneNumberInput> {
    list.iter()
        .map(|p| PhoneNumberInput {
            phone_number: p.phone_number.clone(),
            kind: Some(p.kind.as_str().to_owned()),
        })
        .collect()
}

fn addresses(list: &[Address]) -> Vec<StreetAddressInput> {
    list.iter()
        .map(|a| StreetAddressInput {
            kind: a.kind.as_str().to_owned(),
            street: a.street.clone(),
            city: a.city.clone(),
            state: a.state.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
        })
        .collect()
}

/// `contact.sign_up`: the sign-up form (explicit consent; lists and custom fields merge).
/// The form re-subscribes an unsubscribed address, so without `consent` the contact is
/// looked up first and, when it is unsubscribed, the other fields are applied as
/// `contact.upsert` applies them and its permission is left as it is.
pub(super) async fn sign_up(ctx: &Ctx<'_>, sign_up: &SignUp) -> Result<Value, HandleError> {
    if sign_up.consent.is_none()
        && let Some(existing) = ctx
            .api
            .find_contact_by_email(sign_up.email.as_str(), &MANAGED, true)
            .await?
        && is_unsubscribed(&existing)
    {
        let changes = sign_up_changes(sign_up, &existing);
        let email = sign_up.email.clone();
        return write_changes(ctx, existing, Some(&email), &changes, Lists::Add).await;
    }
    let custom = ctx
        .handler
        .fields
        .resolve(&ctx.api, &sign_up.custom_fields)
        .await?;
    let form = SignUpForm {
        email_address: sign_up.email.as_str().to_owned(),
        first_name: sign_up.first_name.clone(),
        last_name: sign_up.last_name.clone(),
        job_title: sign_up.job_title.clone(),
        company_name: sign_up.company_name.clone(),
        phone_number: sign_up.phone_number.clone(),
        list_memberships: sign_up.list_ids.clone(),
        custom_fields: custom
            .iter()
            .map(|(id, v)| ContactCustomField::new(id, v))
            .collect(),
        anniversary: sign_up.anniversary.clone(),
        birthday_month: sign_up.birthday.map(|(m, _)| u32::from(m)),
        birthday_day: sign_up.birthday.map(|(_, d)| u32::from(d)),
        street_address: None,
    };
    let result = ctx.api.sign_up_form(&form).await?;
    Ok(json!({
        "contact_id": result.contact_id,
        "email": sign_up.email.as_str(),
        "action": if result.created { "created" } else { "updated" },
    }))
}

/// A sign-up's fields as changes to an existing contact: the phone number joins the
/// contact's numbers (as `other`, while it has fewer than 3); lists and custom fields are
/// added.
fn sign_up_changes(sign_up: &SignUp, existing: &Contact) -> ContactChanges {
    let text = |value: &Option<String>| match value {
        Some(v) => Patch::Value(v.clone()),
        None => Patch::Absent,
    };
    let phone_numbers = sign_up.phone_number.as_ref().and_then(|number| {
        let mut current: Vec<Phone> = existing
            .phone_numbers
            .iter()
            .flatten()
            .map(|p| Phone {
                phone_number: p.phone_number.clone(),
                kind: p
                    .kind
                    .as_deref()
                    .and_then(PhoneKind::parse)
                    .unwrap_or(PhoneKind::Other),
            })
            .collect();
        if current.iter().any(|p| &p.phone_number == number) || current.len() >= 3 {
            return None;
        }
        current.push(Phone {
            phone_number: number.clone(),
            kind: PhoneKind::Other,
        });
        Some(current)
    });
    ContactChanges {
        email: sign_up.email.clone(),
        first_name: text(&sign_up.first_name),
        last_name: text(&sign_up.last_name),
        job_title: text(&sign_up.job_title),
        company_name: text(&sign_up.company_name),
        birthday: sign_up.birthday.map_or(Patch::Absent, Patch::Value),
        anniversary: text(&sign_up.anniversary),
        phone_numbers,
        street_addresses: None,
        custom_fields: sign_up
            .custom_fields
            .iter()
            .map(|(key, value): &(CustomFieldKey, String)| (key.clone(), Some(value.clone())))
            .collect(),
        list_ids: Some(sign_up.list_ids.clone()),
    }
}

/// `contact.opt_out`: the contact's address becomes `unsubscribed` (PUT with
/// `permission_to_send: "unsubscribed"` and `opt_out_reason`; everything else as it is).
/// An address unsubscribed already is left as it is (`already_unsubscribed: true`, no
/// request); a deleted contact is not revived for it and fails as not found.
pub(super) async fn opt_out(ctx: &Ctx<'_>, opt_out: &OptOut) -> Result<Value, HandleError> {
    let target = &opt_out.target;
    let existing = find(ctx, target).await?.ok_or_else(|| not_found(target))?;
    if existing.is_deleted() {
        return Err(HandleError::failed(
            ErrorCode::NotFound,
            format!(
                "contact {} is deleted; it is not revived to record an opt-out",
                existing.contact_id
            ),
        ));
    }
    if is_unsubscribed(&existing) {
        let mut value = summary(&existing, "unchanged");
        value["already_unsubscribed"] = json!(true);
        return Ok(value);
    }
    let Some(email) = existing.email() else {
        return Err(HandleError::failed(
            ErrorCode::NotFound,
            format!(
                "contact {} has no e-mail address to unsubscribe",
                existing.contact_id
            ),
        ));
    };
    let mut put = existing.to_put(Source::Account);
    let mut address = EmailAddressInput::new(email, Some(PermissionToSend::Unsubscribed));
    address.opt_out_reason = opt_out.reason.clone();
    put.email_address = Some(address);
    let updated = ctx.api.update_contact(&existing.contact_id, &put).await?;
    let mut value = summary(&updated, "unsubscribed");
    value["already_unsubscribed"] = json!(false);
    Ok(value)
}

/// `contact.get`: the contact with its custom fields, lists, phones and addresses.
pub(super) async fn get(ctx: &Ctx<'_>, target: &ContactRef) -> Result<Value, HandleError> {
    let contact = find(ctx, target).await?.ok_or_else(|| not_found(target))?;
    Ok(json!({"contact_id": contact.contact_id, "contact": to_value(&contact)}))
}

/// `contact.delete`: soft delete. Deleting a contact that is already deleted succeeds with
/// `already_deleted: true`; so does a retry by id of a delete whose shared delete activity
/// was recorded and has completed (no DELETE sent again).
pub(super) async fn delete(ctx: &Ctx<'_>, target: &ContactRef) -> Result<Value, HandleError> {
    // By id, the activity an earlier attempt recorded tells whether it deleted the contact;
    // by address, the look-up just did (a live contact is deleted whatever was recorded).
    if let ContactRef::Id(id) = target
        && let Some(data) = ctx.deleted_earlier("contact_id", id).await?
    {
        return Ok(data);
    }
    let id = match delete_target(&ctx.api, target).await? {
        DeleteTarget::Live(id) => id,
        DeleteTarget::Answered(data) => return Ok(data),
    };
    let already_deleted = delete_by_id(ctx, &id).await?;
    Ok(json!({"contact_id": id, "already_deleted": already_deleted}))
}

/// The contact a `contact.delete` is about.
pub(crate) enum DeleteTarget {
    /// Its id (as given, or the live contact with the address).
    Live(String),
    /// Named by an address whose contact is deleted already: the command's `data`.
    Answered(Value),
}

/// The contact `target` names, for a delete: an id as given (no request), an address looked
/// up among live and deleted contacts. An address no contact has is `not_found`. Shared with
/// the gatherer, which deletes many contacts in one activity.
pub(crate) async fn delete_target(
    api: &crate::api::AccountApi,
    target: &ContactRef,
) -> Result<DeleteTarget, HandleError> {
    let email = match target {
        ContactRef::Id(id) => return Ok(DeleteTarget::Live(id.clone())),
        ContactRef::Email(email) => email,
    };
    match api.find_contact_by_email(email.as_str(), &[], true).await? {
        Some(contact) if contact.is_deleted() => Ok(DeleteTarget::Answered(
            json!({"contact_id": contact.contact_id, "already_deleted": true}),
        )),
        Some(contact) => Ok(DeleteTarget::Live(contact.contact_id)),
        None => Err(not_found(target)),
    }
}

/// `DELETE /contacts/{id}` (a soft delete): whether the contact was deleted already — a
/// retry that meets 404 knows an earlier attempt may have deleted it. A first attempt's 404
/// is the error.
async fn delete_by_id(ctx: &Ctx<'_>, id: &str) -> Result<bool, HandleError> {
    match ctx.api.delete_contact(id).await {
        Ok(()) => Ok(false),
        Err(ApiError::NotFound { .. }) if ctx.attempt.is_retry() => Ok(true),
        Err(error) => Err(error.into()),
    }
}

/// `contact.erase`: the GDPR path. The contact is found (by id, or by address among live and
/// deleted contacts), deleted in Constant Contact as `contact.delete` deletes it (no request
/// when it is deleted already), removed from the mirror with its id tombstoned, and the ledger's stored
/// results about it are scrubbed (see `crate::store::erasure`). A contact Constant Contact
/// does not know fails with `not_found` — unless, named by id, the mirror's tombstone shows it
/// was erased already: then the mirror and the ledger are scrubbed again and the result says
/// `already_erased: true`. The result names the contact by id only; its address is logged at
/// debug at most.
pub(super) async fn erase(ctx: &Ctx<'_>, target: &ContactRef) -> Result<Value, HandleError> {
    let account = ctx.attempt.account.as_str();
    let erasure = erasure_target(ctx.handler, &ctx.api, account, target).await?;
    // The read just made is the truth: a live contact is deleted, whatever activity an
    // earlier attempt recorded (it may not have completed).
    let already_deleted = if erasure.deleted {
        true
    } else {
        delete_by_id(ctx, &erasure.contact_id).await?
    };
    finish_erasure(
        ctx.handler,
        account,
        &ctx.attempt.command_id,
        &erasure,
        already_deleted,
    )
    .await
}

/// The contact a `contact.erase` is about. Its `Debug` leaves the address out.
#[derive(Clone)]
pub struct Erasure {
    pub contact_id: String,
    /// Its address, for the ledger scrub (never logged above debug).
    email: Option<String>,
    /// Deleted in Constant Contact already (or erased before, per the mirror's tombstone).
    pub deleted: bool,
}

impl std::fmt::Debug for Erasure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Erasure")
            .field("contact_id", &self.contact_id)
            .field("email", &self.email.as_ref().map(|_| "[redacted]"))
            .field("deleted", &self.deleted)
            .finish()
    }
}

/// Finds the contact `target` names for an erasure (see [`erase`]). Shared with the
/// gatherer, which deletes many erased contacts in one activity.
pub(crate) async fn erasure_target(
    handler: &super::Handler,
    api: &crate::api::AccountApi,
    account: &str,
    target: &ContactRef,
) -> Result<Erasure, HandleError> {
    let mirror = handler.mirror.as_ref().map(|m| m.db());
    let found = match target {
        ContactRef::Id(id) => match api.get_contact(id, &[]).await {
            Ok(contact) => Some(contact),
            Err(ApiError::NotFound { .. }) => None,
            Err(error) => return Err(error.into()),
        },
        ContactRef::Email(email) => api.find_contact_by_email(email.as_str(), &[], true).await?,
    };
    match (found, target) {
        (Some(contact), _) => {
            let email = contact.email().map(str::to_owned).or(match target {
                ContactRef::Email(email) => Some(email.as_str().to_owned()),
                ContactRef::Id(_) => None,
            });
            let deleted = contact.is_deleted();
            Ok(Erasure {
                contact_id: contact.contact_id,
                email,
                deleted,
            })
        }
        (None, ContactRef::Id(id)) => match mirror {
            Some(db) if db.is_erased(account, id).await.map_err(mirror_error)? => Ok(Erasure {
                contact_id: id.clone(),
                email: None,
                deleted: true,
            }),
            _ => Err(not_found(target)),
        },
        (None, ContactRef::Email(_)) => Err(not_found(target)),
    }
}

/// The rest of an erasure once the contact is deleted in Constant Contact: its mirror rows
/// removed and its id tombstoned, the ledger's stored results about it scrubbed; the
/// command's `data`.
pub(crate) async fn finish_erasure(
    handler: &super::Handler,
    account: &str,
    command_id: &str,
    erasure: &Erasure,
    already_deleted: bool,
) -> Result<Value, HandleError> {
    let id = erasure.contact_id.as_str();
    let mirror = handler.mirror.as_ref().map(|m| m.db());
    let already_erased = match mirror {
        Some(db) => db.is_erased(account, id).await.map_err(mirror_error)?,
        None => false,
    };
    tracing::debug!(contact_id = %id, address_known = erasure.email.is_some(), "erasing a contact");
    let removed = match mirror {
        Some(db) => Some(
            db.erase_contact(account, id, command_id, handler.now())
                .await
                .map_err(mirror_error)?,
        ),
        None => None,
    };
    let scrubbed = handler
        .store
        .ledger_scrub_contact(account, id, erasure.email.as_deref())
        .await
        .map_err(|e| HandleError::Storage(std::sync::Arc::new(e)))?;
    tracing::info!(
        contact_id = %id,
        already_deleted,
        already_erased,
        ledger_results_scrubbed = scrubbed.results,
        "contact erased"
    );
    Ok(json!({
        "contact_id": id,
        "erased": true,
        "already_deleted": already_deleted,
        "already_erased": already_erased,
        "mirror": removed.map(|r| json!({
            "contacts": r.contacts,
            "custom_field_values": r.custom_field_values,
            "list_memberships": r.list_memberships,
            "taggings": r.taggings,
            "tracking_events": r.tracking_events,
            "pass_rows": r.pass_rows,
        })),
        "ledger_results_scrubbed": scrubbed.results,
        "bulk_items_scrubbed": scrubbed.bulk_items,
    }))
}

/// A failed mirror-store call during an erasure: retried like a failed state-store call.
fn mirror_error(error: crate::mirror::MirrorDbError) -> HandleError {
    use crate::mirror::MirrorDbError;
    let error = match error {
        MirrorDbError::Store(error) => error,
        MirrorDbError::Postgres(error) => crate::store::StoreError::MirrorStore(error.to_string()),
    };
    HandleError::Storage(std::sync::Arc::new(error))
}

/// The import's limit on `email` (shared/reference/constant-contact-v3.md §7.1).
pub const IMPORT_MAX_EMAIL: usize = 50;

/// A `contact.upsert` as one row of a bulk JSON import, or `None` when some part of it has
/// no import column (no lists, an e-mail over 50 characters, a value to clear, two phones or
/// two addresses of one kind). Custom fields are resolved to their
/// `name` for the `cf:<name>` columns; an unknown field is an error (the one-by-one path
/// rejects it the same way).
impl super::Handler {
    pub async fn import_row(
        &self,
        account: &str,
        changes: &ContactChanges,
    ) -> Result<Option<crate::api::model::ImportRow>, HandleError> {
        let api = self.api().account(account);
        import_row(self, &api, changes).await
    }
}

async fn import_row(
    handler: &super::Handler,
    api: &crate::api::AccountApi,
    changes: &ContactChanges,
) -> Result<Option<crate::api::model::ImportRow>, HandleError> {
    use crate::api::model::ImportRow;
    if changes.email.chars() > IMPORT_MAX_EMAIL
        || changes.list_ids.as_ref().is_none_or(Vec::is_empty)
    {
        return Ok(None);
    }
    let mut row = ImportRow::new(changes.email.as_str());
    let text = |change: &Patch<String>, column: &mut Option<String>| match change {
        Patch::Absent => true,
        Patch::Value(value) => {
            *column = Some(value.clone());
            true
        }
        Patch::Null => false,
    };
    if !(text(&changes.first_name, &mut row.first_name)
        && text(&changes.last_name, &mut row.last_name)
        && text(&changes.job_title, &mut row.job_title)
        && text(&changes.company_name, &mut row.company_name)
        && text(&changes.anniversary, &mut row.anniversary))
    {
        return Ok(None);
    }
    match changes.birthday {
        Patch::Absent => {}
        Patch::Value((month, day)) => {
            row.birthday_month = Some(u32::from(month));
            row.birthday_day = Some(u32::from(day));
        }
        Patch::Null => return Ok(None),
    }
    for phone in changes.phone_numbers.iter().flatten() {
        let column = match phone.kind {
            PhoneKind::Home => &mut row.home_phone,
            PhoneKind::Work => &mut row.work_phone,
            PhoneKind::Mobile => &mut row.mobile_phone,
            PhoneKind::Other => &mut row.other_phone,
        };
        if column.replace(phone.phone_number.clone()).is_some() {
            return Ok(None);
        }
    }
    for address in changes.street_addresses.iter().flatten() {
        let columns = match address.kind {
            AddressKind::Home => [
                &mut row.street,
                &mut row.city,
                &mut row.state,
                &mut row.zip,
                &mut row.country,
            ],
            AddressKind::Work => [
                &mut row.work_street,
                &mut row.work_city,
                &mut row.work_state,
                &mut row.work_zip,
                &mut row.work_country,
            ],
            AddressKind::Other => [
                &mut row.other_street,
                &mut row.other_city,
                &mut row.other_state,
                &mut row.other_zip,
                &mut row.other_country,
            ],
        };
        let values = [
            &address.street,
            &address.city,
            &address.state,
            &address.postal_code,
            &address.country,
        ];
        if columns.iter().any(|c| c.is_some()) {
            return Ok(None);
        }
        for (column, value) in columns.into_iter().zip(values) {
            column.clone_from(value);
        }
    }
    if !changes.custom_fields.is_empty() {
        if changes.custom_fields.iter().any(|(_, v)| v.is_none()) {
            return Ok(None);
        }
        let resolved = handler.fields.resolve(api, &changes.custom_fields).await?;
        let fields = handler.fields.all(api).await?;
        for (id, value) in resolved {
            let name = fields
                .iter()
                .find(|f| f.custom_field_id == id)
                .and_then(|f| f.name.clone());
            match (name, value) {
                (Some(name), Some(value)) => {
                    row.custom_fields.insert(name, value);
                }
                _ => return Ok(None),
            }
        }
    }
    Ok(Some(row))
}
