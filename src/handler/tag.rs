//! Tag commands against the API: `tag.create`, `tag.update` and `tag.delete`. A create that
//! meets a taken name (409) answers with the existing tag and `already_existed: true`, so it
//! is safe to repeat; a delete is an activity in the API, whose id the result carries.

use serde_json::{Value, json};

use crate::api::ApiError;
use crate::api::model::{Tag, TagCreate, TagPut};
use crate::command::tag::{TagRename, TagSpec};

use super::{Ctx, HandleError, to_value};

/// Tags per page when looking for a name: the most the API gives.
const PAGE_LIMIT: u32 = 500;

/// `tag.create`: POST, or on a 409 the live tag with this name (compared as the API does,
/// trimmed and ignoring case). The new tag's id goes into the ledger before anything else.
pub(super) async fn create(ctx: &Ctx<'_>, spec: &TagSpec) -> Result<Value, HandleError> {
    let body = TagCreate {
        name: spec.name.clone(),
        tag_source: spec.tag_source.clone(),
    };
    match ctx.api.create_tag(&body).await {
        Ok(tag) => {
            ctx.record_effect(&tag.tag_id).await?;
            Ok(json!({"tag_id": tag.tag_id, "already_existed": false, "tag": to_value(&tag)}))
        }
        Err(error @ ApiError::Conflict { .. }) => match find_by_name(ctx, &spec.name).await? {
            Some(tag) => Ok(json!({
                "tag_id": tag.tag_id,
                "already_existed": ctx.attempt.effect_ref.as_deref() != Some(tag.tag_id.as_str()),
                "tag": to_value(&tag),
            })),
            None => Err(error.into()),
        },
        Err(error) => Err(error.into()),
    }
}

/// The live tag named `name`, reading every page of `GET /contact_tags` (it has no filter).
async fn find_by_name(ctx: &Ctx<'_>, name: &str) -> Result<Option<Tag>, HandleError> {
    let wanted = name.trim().to_lowercase();
    let mut page = ctx.api.list_tags(Some(PAGE_LIMIT)).await?;
    loop {
        if let Some(tag) = page
            .tags
            .drain(..)
            .find(|t| t.name.trim().to_lowercase() == wanted)
        {
            return Ok(Some(tag));
        }
        match page.next.take() {
            Some(next) => page = ctx.api.next_tags_page(&next).await?,
            None => return Ok(None),
        }
    }
}

/// `tag.update`: renames the tag. An unknown id is `not_found`, a taken name `conflict`.
pub(super) async fn update(ctx: &Ctx<'_>, rename: &TagRename) -> Result<Value, HandleError> {
    let body = TagPut {
        name: rename.name.clone(),
    };
    let tag = ctx.api.update_tag(&rename.tag_id, &body).await?;
    Ok(json!({"tag_id": tag.tag_id, "tag": to_value(&tag)}))
}

/// `tag.delete`: the API accepts it (202) with an activity that un-assigns the tag from its
/// contacts; the result carries the activity's id and its state when accepted, without
/// waiting for it (the tag itself can no longer be read or renamed from then on). An
/// unknown id is `not_found`, except on a retry, when an earlier attempt may have deleted it:
/// then `already_deleted` is true and `activity_id` the one that attempt recorded, if any —
/// without a request when it recorded one.
pub(super) async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Value, HandleError> {
    if let Some(data) = ctx.deleted_earlier("tag_id", id).await? {
        return Ok(data);
    }
    match ctx.api.delete_tag(id).await {
        Ok(activity) => {
            ctx.record_effect(&activity.activity_id).await?;
            Ok(json!({
                "tag_id": id,
                "already_deleted": false,
                "activity_id": activity.activity_id,
                "activity_state": to_value(&activity.state),
            }))
        }
        Err(ApiError::NotFound { .. }) if ctx.attempt.is_retry() => Ok(json!({
            "tag_id": id,
            "already_deleted": true,
            "activity_id": ctx.attempt.effect_ref,
        })),
        Err(error) => Err(error.into()),
    }
}
