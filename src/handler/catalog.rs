//! Custom-field, list and account commands against the API. Creates answer a duplicate
//! (409) with the existing resource and `already_existed: true`, so they are safe to repeat.

use serde_json::{Value, json};

use crate::api::ApiError;
use crate::api::model::account::AccountEmailFilter;
use crate::api::model::custom_fields::{CustomFieldCreate, CustomFieldPut};
use crate::api::model::lists::{ListInput, ListQuery};
use crate::command::catalog::{CustomFieldSpec, ListChanges, ListSpec};
use crate::command::outcome::ErrorCode;

use super::{Ctx, HandleError, to_value};

pub(super) async fn create_custom_field(
    ctx: &Ctx<'_>,
    spec: &CustomFieldSpec,
) -> Result<Value, HandleError> {
    let field_type = spec.field_type.as_deref().unwrap_or("string");
    let account = ctx.api.account().to_owned();
    let result = ctx
        .api
        .create_custom_field(&CustomFieldCreate::new(&spec.label, field_type))
        .await;
    ctx.handler.fields.invalidate(&account);
    match result {
        Ok(field) => {
            ctx.record_effect(&field.custom_field_id).await?;
            Ok(
                json!({"custom_field_id": field.custom_field_id, "already_existed": false, "custom_field": to_value(&field)}),
            )
        }
        Err(error @ ApiError::Conflict { .. }) => {
            let fields = ctx.handler.fields.all(&ctx.api).await?;
            match fields
                .iter()
                .find(|f| f.label.eq_ignore_ascii_case(&spec.label))
            {
                Some(field) => Ok(json!({
                    "custom_field_id": field.custom_field_id,
                    "already_existed": ctx.attempt.effect_ref.as_deref() != Some(field.custom_field_id.as_str()),
                    "custom_field": to_value(field),
                })),
                None => Err(error.into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn update_custom_field(
    ctx: &Ctx<'_>,
    spec: &CustomFieldSpec,
) -> Result<Value, HandleError> {
    let id = spec.custom_field_id.clone().unwrap_or_default();
    let current = ctx.api.get_custom_field(&id).await?;
    let mut body: CustomFieldPut = current.to_put();
    body.label = spec.label.clone();
    if let Some(field_type) = &spec.field_type {
        body.field_type = field_type.clone();
    }
    let updated = ctx.api.update_custom_field(&id, &body).await?;
    ctx.handler.fields.invalidate(ctx.api.account());
    Ok(json!({"custom_field_id": updated.custom_field_id, "custom_field": to_value(&updated)}))
}

pub(super) async fn delete_custom_field(ctx: &Ctx<'_>, id: &str) -> Result<Value, HandleError> {
    if let Some(data) = ctx.deleted_earlier("custom_field_id", id).await? {
        return Ok(data);
    }
    let result = ctx.api.delete_custom_field(id).await;
    ctx.handler.fields.invalidate(ctx.api.account());
    match result {
        Ok(()) => Ok(json!({"custom_field_id": id, "already_deleted": false})),
        Err(ApiError::NotFound { .. }) if ctx.attempt.is_retry() => {
            Ok(json!({"custom_field_id": id, "already_deleted": true}))
        }
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn list_custom_fields(ctx: &Ctx<'_>) -> Result<Value, HandleError> {
    ctx.handler.fields.invalidate(ctx.api.account());
    let fields = ctx.handler.fields.all(&ctx.api).await?;
    Ok(json!({"count": fields.len(), "custom_fields": to_value(&fields)}))
}

pub(super) async fn create_list(ctx: &Ctx<'_>, spec: &ListSpec) -> Result<Value, HandleError> {
    let mut input = ListInput::new(&spec.name);
    input.description = spec.description.clone();
    input.favorite = Some(spec.favorite);
    match ctx.api.create_list(&input).await {
        Ok(list) => {
            ctx.record_effect(&list.list_id).await?;
            Ok(json!({"list_id": list.list_id, "already_existed": false, "list": to_value(&list)}))
        }
        Err(error @ ApiError::Conflict { .. }) => {
            let query = ListQuery {
                name: Some(spec.name.clone()),
                ..ListQuery::default()
            };
            let page = ctx.api.list_lists(&query).await?;
            match page.lists.into_iter().find(|l| l.name == spec.name) {
                Some(list) => Ok(json!({
                    "list_id": list.list_id,
                    "already_existed": ctx.attempt.effect_ref.as_deref() != Some(list.list_id.as_str()),
                    "list": to_value(&list),
                })),
                None => Err(error.into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// `list.update`: reads the list (an unknown or deleted id is `not_found`), applies the
/// changes to it and PUTs the whole list, since the PUT body replaces description and
/// favorite. A new name another live list has (compared ignoring case and surrounding blanks,
/// as the API does) is `conflict` before the PUT: the spec declares no 409 on PUT, so the
/// name is looked up with `GET /contact_lists?name=`; a 409 the API gives anyway is
/// `conflict` too.
pub(super) async fn update_list(
    ctx: &Ctx<'_>,
    changes: &ListChanges,
) -> Result<Value, HandleError> {
    let list = ctx.api.get_list(&changes.list_id, None).await?;
    let mut input = list.to_input();
    if let Some(name) = &changes.name {
        let wanted = name.trim().to_lowercase();
        if wanted != list.name.trim().to_lowercase() {
            let query = ListQuery {
                name: Some(name.clone()),
                ..ListQuery::default()
            };
            let page = ctx.api.list_lists(&query).await?;
            if page.lists.iter().any(|l| {
                l.list_id != list.list_id
                    && l.deleted_at.is_none()
                    && l.name.trim().to_lowercase() == wanted
            }) {
                return Err(HandleError::failed(
                    ErrorCode::Conflict,
                    "another list already has this name",
                ));
            }
        }
        input.name = name.clone();
    }
    if let Some(description) = &changes.description {
        input.description = Some(description.clone());
    }
    if let Some(favorite) = changes.favorite {
        input.favorite = Some(favorite);
    }
    let list = ctx.api.update_list(&changes.list_id, &input).await?;
    Ok(json!({"list_id": list.list_id, "list": to_value(&list)}))
}

/// `list.delete`: the API accepts it (202) with an activity that deletes the list and its
/// memberships; the result carries the activity's id and its state when accepted, without
/// waiting for it. An unknown id is `not_found`, except on a retry, when an earlier attempt
/// may have deleted it: then `already_deleted` is true and `activity_id` the one that attempt
/// recorded, if any — without a request when it recorded one.
pub(super) async fn delete_list(ctx: &Ctx<'_>, id: &str) -> Result<Value, HandleError> {
    if let Some(data) = ctx.deleted_earlier("list_id", id).await? {
        return Ok(data);
    }
    match ctx.api.delete_list(id).await {
        Ok(activity) => {
            ctx.record_effect(&activity.activity_id).await?;
            Ok(json!({
                "list_id": id,
                "already_deleted": false,
                "activity_id": activity.activity_id,
                "activity_state": to_value(&activity.state),
            }))
        }
        Err(ApiError::NotFound { .. }) if ctx.attempt.is_retry() => Ok(json!({
            "list_id": id,
            "already_deleted": true,
            "activity_id": ctx.attempt.effect_ref,
        })),
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn list_lists(ctx: &Ctx<'_>) -> Result<Value, HandleError> {
    let mut page = ctx
        .api
        .list_lists(&ListQuery {
            limit: Some(500),
            ..ListQuery::default()
        })
        .await?;
    let mut lists = std::mem::take(&mut page.lists);
    while let Some(next) = page.next.take() {
        page = ctx.api.next_lists_page(&next).await?;
        lists.append(&mut page.lists);
    }
    Ok(json!({"count": lists.len(), "lists": to_value(&lists)}))
}

pub(super) async fn list_account_emails(
    ctx: &Ctx<'_>,
    confirm_status: Option<&str>,
) -> Result<Value, HandleError> {
    let filter = match confirm_status {
        Some("CONFIRMED") => AccountEmailFilter::Confirmed,
        Some("UNCONFIRMED") => AccountEmailFilter::Unconfirmed,
        _ => AccountEmailFilter::All,
    };
    let emails = ctx.api.list_account_emails(&filter).await?;
    Ok(json!({"count": emails.len(), "account_emails": to_value(&emails)}))
}

pub(super) async fn add_account_email(ctx: &Ctx<'_>, email: &str) -> Result<Value, HandleError> {
    match ctx.api.add_account_email(email).await {
        Ok(added) => Ok(json!({"already_existed": false, "account_email": to_value(&added)})),
        Err(error @ ApiError::Conflict { .. }) => {
            let found = ctx
                .api
                .list_account_emails(&AccountEmailFilter::Address(email.to_owned()))
                .await?;
            match found
                .into_iter()
                .find(|e| e.email_address.eq_ignore_ascii_case(email))
            {
                Some(existing) => {
                    Ok(json!({"already_existed": true, "account_email": to_value(&existing)}))
                }
                None => Err(error.into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn privileges(ctx: &Ctx<'_>) -> Result<Value, HandleError> {
    let privileges = ctx.api.get_user_privileges().await?;
    Ok(json!({"count": privileges.len(), "privileges": to_value(&privileges)}))
}
