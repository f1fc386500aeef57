//! Contact writes with the real API's semantics (reference §4.3–4.7): create (409 on any
//! existing e-mail, deleted contacts included), PUT (core replaced, omitted subresources
//! kept, deleted contacts revived), soft delete (lists stripped, `deleted_at` set,
//! `updated_at` bumped) and sign_up_form (create-or-merge by e-mail, permission → explicit).

use super::input::{AddressOk, ContactIn, CoreOk, Problems, SignUpIn, SubsOk};
use super::model::{Address, Contact, Note, Permission, Phone, Secs, Source};
use crate::errors::{ApiError, Area};
use crate::rng::SplitMix64;
use crate::state::{Account, Cx};

/// The 409 body clients parse to find the owner of an e-mail (reference §3.2).
pub(crate) fn email_conflict(owner: uuid::Uuid) -> ApiError {
    ApiError::conflict(
        Area::Contacts,
        format!("Email already exists for contact {owner}"),
    )
}

fn boxed(value: Option<String>) -> Option<Box<str>> {
    value.map(String::into_boxed_str)
}

/// Sets every core property (PUT semantics: absent → cleared).
fn replace_core(contact: &mut Contact, core: CoreOk) {
    contact.first_name = boxed(core.first_name);
    contact.last_name = boxed(core.last_name);
    contact.job_title = boxed(core.job_title);
    contact.company_name = boxed(core.company_name);
    let (month, day) = core.birthday.unwrap_or((0, 0));
    contact.birthday_month = month;
    contact.birthday_day = day;
    contact.anniversary = boxed(core.anniversary);
}

/// Sets only the core properties that were supplied (sign_up_form and import semantics).
pub(crate) fn merge_core(contact: &mut Contact, core: CoreOk) {
    if let Some(v) = core.first_name {
        contact.first_name = Some(v.into());
    }
    if let Some(v) = core.last_name {
        contact.last_name = Some(v.into());
    }
    if let Some(v) = core.job_title {
        contact.job_title = Some(v.into());
    }
    if let Some(v) = core.company_name {
        contact.company_name = Some(v.into());
    }
    if let Some((month, day)) = core.birthday {
        contact.birthday_month = month;
        contact.birthday_day = day;
    }
    if let Some(v) = core.anniversary {
        contact.anniversary = Some(v.into());
    }
}

fn make_address(rng: &mut SplitMix64, a: AddressOk, now: Secs) -> Address {
    Address {
        id: rng.uuid(),
        kind: a.kind,
        street: a.street,
        city: a.city,
        state: a.state,
        postal_code: a.postal_code,
        country: a.country,
        created_at: now,
        updated_at: now,
    }
}

/// Replaces the subresources present in the body; keeps the omitted ones.
fn replace_subs(
    contact: &mut Contact,
    subs: SubsOk,
    rng: &mut SplitMix64,
    source: Source,
    now: Secs,
) {
    if let Some(custom) = subs.custom {
        contact.custom = custom.into_boxed_slice();
    }
    if let Some(lists) = subs.lists {
        contact.lists = lists.into_boxed_slice();
    }
    contact.with_extras(|extra| {
        if let Some(phones) = subs.phones {
            let old = std::mem::take(&mut extra.phones);
            extra.phones = phones
                .into_iter()
                .map(|(kind, number)| {
                    old.iter()
                        .find(|p| p.kind == kind && p.number == number)
                        .cloned()
                        .unwrap_or_else(|| Phone {
                            id: rng.uuid(),
                            number,
                            kind,
                            created_at: now,
                            updated_at: now,
                            create_source: source,
                            update_source: source,
                        })
                })
                .collect();
        }
        if let Some(addresses) = subs.addresses {
            extra.addresses = addresses
                .into_iter()
                .map(|a| make_address(rng, a, now))
                .collect();
        }
        if let Some(taggings) = subs.taggings {
            extra.taggings = taggings;
        }
        if let Some(notes) = subs.notes {
            extra.notes = notes
                .into_iter()
                .map(|content| Note {
                    id: rng.uuid(),
                    created_at: now,
                    content,
                })
                .collect();
        }
    });
}

/// `POST /contacts`.
pub(crate) fn create(
    account: &mut Account,
    cx: &mut Cx<'_>,
    input: ContactIn,
) -> Result<u32, ApiError> {
    let mut problems = Problems::default();
    let source = problems.source("create_source", input.create_source.as_deref());
    let email_in = input.email_address.as_ref();
    let email = email_in.and_then(|e| problems.email(e.address.as_deref(), 80));
    let permission = email_in.and_then(|e| problems.permission(e.permission_to_send.as_deref()));
    let reason =
        email_in.and_then(|e| problems.text("opt_out_reason", e.opt_out_reason.as_deref(), 255));
    let core = problems.core(
        input.first_name.as_deref(),
        input.last_name.as_deref(),
        input.job_title.as_deref(),
        input.company_name.as_deref(),
        (input.birthday_month, input.birthday_day),
        input.anniversary.as_deref(),
    );
    if email_in.is_none() && core.first_name.is_none() && core.last_name.is_none() {
        if input.sms_channel.is_some() {
            problems.push("sms_channel is not supported by the sandbox; send an email_address");
        } else {
            problems.push("at least one of email_address, first_name or last_name is required");
        }
    }
    let subs = problems.subresources(&input, &account.fields, &account.lists);
    problems.into_result()?;
    let source = source.unwrap_or(Source::Account);
    if let Some(owner) = email
        .as_deref()
        .and_then(|e| account.contacts.find_email(e))
    {
        return Err(email_conflict(account.contacts.get(owner).id));
    }
    let now = cx.now_secs();
    let id = account.rng.uuid();
    let mut contact = Contact::new(id, now, source);
    replace_core(&mut contact, core);
    if let Some(email) = email {
        contact.email = Some(email.into());
        contact.email_created_at = now;
        contact.email_updated_at = now;
        contact.set_permission(permission.unwrap_or(Permission::Implicit), source, now);
        if contact.permission == Permission::Unsubscribed {
            contact.opt_out_reason = boxed(reason);
        }
    }
    replace_subs(&mut contact, subs, &mut account.rng, source, now);
    let index = account.contacts.insert(contact);
    cx.effect(&account.id, "contact.created", id);
    Ok(index)
}

/// `PUT /contacts/{id}`.
pub(crate) fn replace(
    account: &mut Account,
    cx: &mut Cx<'_>,
    index: u32,
    input: ContactIn,
) -> Result<(), ApiError> {
    let mut problems = Problems::default();
    let source = problems.source("update_source", input.update_source.as_deref());
    let email_in = input.email_address.as_ref();
    let email = email_in.and_then(|e| problems.email(e.address.as_deref(), 80));
    let permission = email_in.and_then(|e| problems.permission(e.permission_to_send.as_deref()));
    let reason =
        email_in.and_then(|e| problems.text("opt_out_reason", e.opt_out_reason.as_deref(), 255));
    let core = problems.core(
        input.first_name.as_deref(),
        input.last_name.as_deref(),
        input.job_title.as_deref(),
        input.company_name.as_deref(),
        (input.birthday_month, input.birthday_day),
        input.anniversary.as_deref(),
    );
    let subs = problems.subresources(&input, &account.fields, &account.lists);
    problems.into_result()?;
    let source = source.unwrap_or(Source::Account);
    if let Some(email) = email.as_deref()
        && let Some(owner) = account.contacts.find_email(email)
        && owner != index
    {
        return Err(email_conflict(account.contacts.get(owner).id));
    }
    let now = cx.now_secs();
    let changed_email = email
        .as_deref()
        .is_some_and(|e| account.contacts.get(index).email.as_deref() != Some(e));
    if changed_email {
        account
            .contacts
            .set_email(index, email.map(String::into_boxed_str), now);
    }
    let contact = account.contacts.get_mut(index);
    replace_core(contact, core);
    if let Some(permission) = permission {
        contact.set_permission(permission, source, now);
    } else if contact.email.is_some() && contact.permission == Permission::NotSet && changed_email {
        contact.set_permission(Permission::Implicit, source, now);
    }
    if contact.permission == Permission::Unsubscribed && reason.is_some() {
        contact.opt_out_reason = boxed(reason);
    }
    replace_subs(contact, subs, &mut account.rng, source, now);
    contact.deleted_at = 0;
    contact.update_source = Some(source);
    contact.updated_at = now;
    let id = contact.id;
    cx.effect(&account.id, "contact.updated", id);
    Ok(())
}

/// `DELETE /contacts/{id}`: soft delete; `false` when it was already deleted (no change).
pub(crate) fn delete(account: &mut Account, cx: &mut Cx<'_>, index: u32) -> bool {
    let now = cx.now_secs();
    let contact = account.contacts.get_mut(index);
    if contact.is_deleted() {
        return false;
    }
    contact.deleted_at = now;
    contact.updated_at = now;
    contact.lists = Box::new([]);
    let id = contact.id;
    cx.effect(&account.id, "contact.deleted", id);
    true
}

/// `POST /contacts/sign_up_form`: `(index, created)`.
pub(crate) fn sign_up(
    account: &mut Account,
    cx: &mut Cx<'_>,
    input: SignUpIn,
) -> Result<(u32, bool), ApiError> {
    let mut problems = Problems::default();
    let email = match input.email_address.as_deref() {
        Some(raw) => problems.email(Some(raw), 50),
        None if input.sms_channel.is_some() => {
            problems.push("sms_channel is not supported by the sandbox; send an email_address");
            None
        }
        None => {
            problems.push("email_address is required");
            None
        }
    };
    let lists = match input.list_memberships.as_deref() {
        Some(items) if !items.is_empty() => problems.lists(&account.lists, items, 50),
        _ => {
            problems.push("list_memberships must contain at least one list id");
            Vec::new()
        }
    };
    let custom = input
        .custom_fields
        .as_deref()
        .map(|items| problems.custom_fields(&account.fields, items, 50))
        .unwrap_or_default();
    let phone = problems.text("phone_number", input.phone_number.as_deref(), 25);
    let address = input
        .street_address
        .as_ref()
        .and_then(|a| problems.address(a));
    let core = problems.core(
        input.first_name.as_deref(),
        input.last_name.as_deref(),
        input.job_title.as_deref(),
        input.company_name.as_deref(),
        (input.birthday_month, input.birthday_day),
        input.anniversary.as_deref(),
    );
    problems.into_result()?;
    let Some(email) = email else {
        return Err(ApiError::validation(
            Area::Contacts,
            "email_address is required",
        ));
    };
    let now = cx.now_secs();
    let (index, created) = match account.contacts.find_email(&email) {
        Some(index) => (index, false),
        None => {
            let id = account.rng.uuid();
            let mut contact = Contact::new(id, now, Source::Contact);
            contact.email = Some(email.into());
            contact.email_created_at = now;
            contact.email_updated_at = now;
            (account.contacts.insert(contact), true)
        }
    };
    let merged_lists: Vec<u32> = {
        let contact = account.contacts.get(index);
        let mut all: Vec<u32> = contact
            .lists
            .iter()
            .copied()
            .filter(|&l| account.lists.is_live(l))
            .collect();
        for list in lists {
            if !all.contains(&list) {
                all.push(list);
            }
        }
        all
    };
    if merged_lists.len() > 50 {
        return Err(ApiError::validation(
            Area::Contacts,
            "A contact can be a member of at most 50 lists",
        ));
    }
    let fields = &account.fields;
    let rng = &mut account.rng;
    let contact = account.contacts.get_mut(index);
    merge_core(contact, core);
    contact.lists = merged_lists.into_boxed_slice();
    let mut values: Vec<(u32, Box<str>)> = contact
        .custom
        .iter()
        .filter(|(f, _)| fields.is_live(*f))
        .cloned()
        .collect();
    for (field, value) in custom {
        match values.iter_mut().find(|(f, _)| *f == field) {
            Some(slot) => slot.1 = value,
            None => values.push((field, value)),
        }
    }
    values.truncate(25);
    contact.custom = values.into_boxed_slice();
    contact.with_extras(|extra| {
        if let Some(number) = phone
            && !extra.phones.iter().any(|p| p.number == number)
            && extra.phones.len() < 3
        {
            extra.phones.push(Phone {
                id: rng.uuid(),
                number,
                kind: "other".into(),
                created_at: now,
                updated_at: now,
                create_source: Source::Contact,
                update_source: Source::Contact,
            });
        }
        if let Some(address) = address {
            extra.addresses.retain(|a| a.kind != address.kind);
            if extra.addresses.len() < 3 {
                extra.addresses.push(make_address(rng, address, now));
            }
        }
    });
    // Sign-up forms are genuine opt-ins: permission becomes explicit, even if unsubscribed.
    contact.set_permission(Permission::Explicit, Source::Contact, now);
    contact.deleted_at = 0;
    if !created {
        contact.update_source = Some(Source::Contact);
    }
    contact.updated_at = now;
    let id = contact.id;
    let kind = if created {
        "contact.created"
    } else {
        "contact.updated"
    };
    cx.effect(&account.id, kind, id);
    Ok((index, created))
}
