//! Bulk activities (reference §7): the activity record, its life cycle on the sandbox clock
//! (`initialized` → `processing` once ≥ 1 s old or first read → `completed` after
//! `max(2 s, items / rows_per_sec)`), the 1,000-queued cap, JSON shapes and the
//! `/activities` read handlers. Job specifics live in `import`, `export`, `taggings`,
//! `memberships` and `deletes`.

pub(crate) mod deletes;
pub(crate) mod export;
pub(crate) mod import;
pub(crate) mod memberships;
pub(crate) mod taggings;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::clock::{MS_PER_DAY, Millis, fmt_secs};
use super::errors::{ApiError, Area};
use super::http::{Links, OffsetPage, QueryMap, json as json_response, path_uuid};
use super::state::{Account, Caller, Cx, Shared};

/// Queued (not yet finished) activities allowed per account (reference §2).
pub(crate) const QUEUE_CAP: usize = 1_000;
const MIN_DURATION_MS: Millis = 2_000;
const PROCESSING_AFTER_MS: Millis = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ActivityState {
    Initialized,
    Processing,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
}

impl ActivityState {
    fn as_str(self) -> &'static str {
        match self {
            ActivityState::Initialized => "initialized",
            ActivityState::Processing => "processing",
            ActivityState::Completed => "completed",
            ActivityState::Failed => "failed",
            ActivityState::Cancelled => "cancelled",
            ActivityState::TimedOut => "timed_out",
        }
    }

    fn is_queued(self) -> bool {
        matches!(self, ActivityState::Initialized | ActivityState::Processing)
    }
}

/// The ids of an activity's `field` (`source.contact_ids`, `tag_ids`, `list_ids`): 1 to `max`
/// UUIDs, repeats dropped; a 400 naming the field otherwise.
pub(crate) fn ids(
    field: &str,
    items: Option<Vec<String>>,
    max: usize,
) -> Result<Vec<Uuid>, ApiError> {
    let items = items.unwrap_or_default();
    if items.is_empty() {
        return Err(ApiError::validation(
            Area::Contacts,
            format!("{field} is required and must hold at least one id"),
        ));
    }
    if items.len() > max {
        return Err(ApiError::validation(
            Area::Contacts,
            format!("{field} exceeds the maximum of {max} items"),
        ));
    }
    let mut out: Vec<Uuid> = Vec::with_capacity(items.len());
    for raw in &items {
        let id = Uuid::parse_str(raw).map_err(|_| {
            ApiError::validation(
                Area::Contacts,
                format!("{field} contains an invalid id: {raw}"),
            )
        })?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// What an activity does when it completes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Job {
    /// Rows are kept until completion, then dropped.
    Import {
        rows: Vec<Value>,
        lists: Vec<u32>,
    },
    Export(export::ExportSpec),
    ListDelete,
    /// `DELETE /contact_tags/{id}`: the tag is gone at once; its taggings when this completes.
    TagDelete(Uuid),
    /// `POST /activities/contacts_taggings_add` or `_remove`: the taggings change on completion.
    Tagging(taggings::TaggingSpec),
    /// `POST /activities/add_list_memberships` or `remove_list_memberships`: the memberships
    /// change on completion.
    Membership(memberships::MembershipSpec),
    /// `POST /activities/contact_delete`, `list_delete`, `contacts_tags_delete` or
    /// `custom_fields_delete`: the items are deleted on completion.
    BulkDelete(deletes::DeleteSpec),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Counters {
    pub(crate) items_total: u32,
    pub(crate) person: u32,
    pub(crate) errors: u32,
    pub(crate) cannot_add_to_list: u32,
    pub(crate) lists: u32,
    /// Items the completed activity did not complete (`items_completed_count` is
    /// `items_total_count` less these).
    #[serde(default)]
    pub(crate) skipped: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Activity {
    pub(crate) id: Uuid,
    pub(crate) job: Job,
    pub(crate) state: ActivityState,
    pub(crate) created_at: Millis,
    pub(crate) updated_at: Millis,
    pub(crate) started_at: Option<Millis>,
    pub(crate) completed_at: Option<Millis>,
    pub(crate) counters: Counters,
    pub(crate) errors: Vec<String>,
    pub(crate) command_id: Option<String>,
}

impl Activity {
    fn due(&self, rows_per_sec: u32) -> Millis {
        let per_sec = i64::from(rows_per_sec.max(1));
        let work = i64::from(self.counters.items_total) * 1000 / per_sec;
        self.created_at + work.max(MIN_DURATION_MS)
    }

    pub(crate) fn is_export(&self) -> bool {
        matches!(self.job, Job::Export(_))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Activities {
    pub(crate) rows: Vec<Activity>,
    #[serde(skip)]
    by_id: HashMap<Uuid, u32>,
}

impl Activities {
    pub(crate) fn rebuild_indexes(&mut self) {
        self.by_id = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id, i as u32))
            .collect();
    }

    pub(crate) fn find(&self, id: &Uuid) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    fn queued(&self) -> usize {
        self.rows.iter().filter(|a| a.state.is_queued()).count()
    }

    /// When the next queued activity changes state, if any.
    pub(crate) fn next_due(&self, rows_per_sec: u32) -> Option<Millis> {
        self.rows
            .iter()
            .filter(|a| a.state.is_queued())
            .map(|a| match a.state {
                ActivityState::Initialized => {
                    (a.created_at + PROCESSING_AFTER_MS).min(a.due(rows_per_sec))
                }
                _ => a.due(rows_per_sec),
            })
            .min()
    }

    /// Queues a new activity; 429 past the cap.
    pub(crate) fn queue(
        &mut self,
        id: Uuid,
        job: Job,
        counters: Counters,
        cx: &Cx<'_>,
    ) -> Result<u32, ApiError> {
        if self.queued() >= QUEUE_CAP {
            return Err(ApiError::queue_full());
        }
        let index = self.rows.len() as u32;
        self.rows.push(Activity {
            id,
            job,
            state: ActivityState::Initialized,
            created_at: cx.now,
            updated_at: cx.now,
            started_at: None,
            completed_at: None,
            counters,
            errors: Vec::new(),
            command_id: cx.command_id.map(str::to_owned),
        });
        self.by_id.insert(id, index);
        Ok(index)
    }
}

/// Moves every queued activity of `account` along; `force` completes them all now.
pub(crate) fn progress(account: &mut Account, cx: &mut Cx<'_>, force: bool) {
    let rate = cx.rows_per_sec;
    for index in 0..account.activities.rows.len() {
        let activity = &mut account.activities.rows[index];
        if !activity.state.is_queued() {
            continue;
        }
        if force || cx.now >= activity.due(rate) {
            complete(account, cx, index);
        } else if activity.state == ActivityState::Initialized
            && cx.now >= activity.created_at + PROCESSING_AFTER_MS
        {
            activity.state = ActivityState::Processing;
            activity.started_at = Some(activity.created_at + PROCESSING_AFTER_MS);
            activity.updated_at = cx.now;
        }
    }
}

fn complete(account: &mut Account, cx: &mut Cx<'_>, index: usize) {
    let activity = &mut account.activities.rows[index];
    let job = std::mem::replace(&mut activity.job, Job::ListDelete);
    let command_id = activity.command_id.clone();
    let id = activity.id;
    let finished = job_done(account, cx, job, command_id.as_deref(), index);
    let activity = &mut account.activities.rows[index];
    activity.job = finished;
    activity.state = ActivityState::Completed;
    activity.started_at.get_or_insert(activity.created_at);
    activity.completed_at = Some(cx.now);
    activity.updated_at = cx.now;
    let kind = match activity.job {
        Job::Import { .. } => "import.completed".to_owned(),
        Job::Export(_) => "export.completed".to_owned(),
        Job::ListDelete => "list_delete.completed".to_owned(),
        Job::TagDelete(_) => "tag_delete.completed".to_owned(),
        Job::Tagging(ref spec) if spec.add => "taggings_add.completed".to_owned(),
        Job::Tagging(_) => "taggings_remove.completed".to_owned(),
        Job::Membership(ref spec) if spec.add => "memberships_add.completed".to_owned(),
        Job::Membership(_) => "memberships_remove.completed".to_owned(),
        Job::BulkDelete(ref spec) => format!("{}.completed", spec.kind()),
    };
    let mut job_cx = Cx {
        now: cx.now,
        command_id: command_id.as_deref(),
        effects: cx.effects,
        rows_per_sec: cx.rows_per_sec,
    };
    job_cx.effect(&account.id, &kind, id);
}

/// Drops every contact's memberships of deleted lists (a `list_delete` activity completing).
pub(crate) fn drop_dead_memberships(account: &mut Account) {
    let lists = &account.lists;
    for contact in account.contacts.rows.iter_mut() {
        if contact.lists.iter().any(|l| !lists.is_live(*l)) {
            contact.lists = contact
                .lists
                .iter()
                .copied()
                .filter(|l| lists.is_live(*l))
                .collect();
        }
    }
}

/// Removes `tag` from every contact (a tag's delete activity completing).
pub(crate) fn untag_all(account: &mut Account, tag: Uuid) {
    for contact in account.contacts.rows.iter_mut() {
        if contact.extras().taggings.contains(&tag) {
            contact.with_extras(|extras| extras.taggings.retain(|t| *t != tag));
        }
    }
}

/// Runs the job; returns what stays stored on the finished activity.
fn job_done(
    account: &mut Account,
    cx: &mut Cx<'_>,
    job: Job,
    command_id: Option<&str>,
    index: usize,
) -> Job {
    let mut job_cx = Cx {
        now: cx.now,
        command_id,
        effects: cx.effects,
        rows_per_sec: cx.rows_per_sec,
    };
    match job {
        Job::Import { rows, lists } => {
            let (counters, errors) = import::apply(account, &mut job_cx, &rows, &lists);
            let activity = &mut account.activities.rows[index];
            activity.counters = counters;
            activity.errors = errors;
            Job::Import {
                rows: Vec::new(),
                lists,
            }
        }
        Job::Export(spec) => {
            let total = export::count(account, &spec);
            account.activities.rows[index].counters.items_total = total;
            Job::Export(spec)
        }
        Job::ListDelete => {
            drop_dead_memberships(account);
            Job::ListDelete
        }
        Job::TagDelete(tag) => {
            untag_all(account, tag);
            Job::TagDelete(tag)
        }
        Job::Tagging(spec) => {
            let errors = taggings::apply(account, &spec);
            account.activities.rows[index].errors = errors;
            Job::Tagging(spec)
        }
        Job::Membership(spec) => {
            let (skipped, errors) = memberships::apply(account, &job_cx, &spec);
            let activity = &mut account.activities.rows[index];
            activity.counters.skipped = skipped;
            activity.errors = errors;
            Job::Membership(spec)
        }
        Job::BulkDelete(spec) => {
            let (skipped, errors) = deletes::apply(account, &mut job_cx, &spec);
            let activity = &mut account.activities.rows[index];
            activity.counters.skipped = skipped;
            activity.errors = errors;
            Job::BulkDelete(spec)
        }
    }
}

/// The JSON shape wanted: the 201 of a POST or a later read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Created,
    Read,
    ListDelete,
}

/// Queues `job` as a new activity of `account`, records the effect `effect` and answers 201
/// with the activity and its `Location` — the end of the tagging, membership and delete POSTs.
pub(crate) fn created(
    account: &mut Account,
    cx: &mut Cx<'_>,
    job: Job,
    counters: Counters,
    effect: &str,
) -> Result<Response, ApiError> {
    let id = account.rng.uuid();
    let index = account.activities.queue(id, job, counters, cx)?;
    account.touch();
    cx.effect(&account.id, effect, id);
    let body = activity_json(
        &account.activities.rows[index as usize],
        cx.now,
        cx.rows_per_sec,
        Shape::Created,
    );
    let mut response = json_response(StatusCode::CREATED, &body);
    if let Ok(location) = HeaderValue::from_str(&format!("/v3/activities/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub(crate) fn activity_json(activity: &Activity, now: Millis, rate: u32, shape: Shape) -> Value {
    let c = &activity.counters;
    let percent: i64 = match activity.state {
        ActivityState::Initialized => 0,
        ActivityState::Processing => {
            let span = (activity.due(rate) - activity.created_at).max(1);
            ((now - activity.created_at) * 100 / span).clamp(0, 99)
        }
        _ => 100,
    };
    let done_items = i64::from(c.items_total.saturating_sub(c.skipped)) * percent / 100;
    let mut body = json!({
        "activity_id": activity.id,
        "state": activity.state.as_str(),
        "created_at": fmt_secs(activity.created_at),
        "updated_at": fmt_secs(activity.updated_at),
        "percent_done": percent,
        "activity_errors": activity.errors,
        "_links": {"self": {"href": format!("/v3/activities/{}", activity.id)}},
    });
    if shape == Shape::ListDelete {
        return body;
    }
    if let Some(started) = activity.started_at {
        body["started_at"] = fmt_secs(started).into();
    }
    if let Some(completed) = activity.completed_at {
        body["completed_at"] = fmt_secs(completed).into();
    }
    let status = match (&activity.job, shape) {
        (Job::Import { .. }, Shape::Created) => json!({
            "items_total_count": c.items_total,
            "person_count": c.person,
            "error_count": c.errors,
            "correctable_count": 0,
            "cannot_add_to_list_count": c.cannot_add_to_list,
        }),
        (Job::Import { .. }, _) => json!({
            "items_total_count": c.items_total,
            "items_completed_count": done_items,
            "person_count": c.person,
            "error_count": c.errors,
            "correctable_count": 0,
            "cannot_add_to_list_count": c.cannot_add_to_list,
            "list_count": c.lists,
        }),
        (Job::Membership(_), _) => json!({
            "items_total_count": c.items_total,
            "items_completed_count": done_items,
            "list_count": c.lists,
        }),
        (Job::BulkDelete(spec), shape) => deletes::status(spec, shape, c, done_items),
        _ => json!({
            "items_total_count": c.items_total,
            "items_completed_count": done_items,
        }),
    };
    if !status.is_null() {
        body["status"] = status;
    }
    if activity.is_export() && activity.state == ActivityState::Completed {
        body["_links"]["results"] = json!({"href": format!("/v3/contact_exports/{}", activity.id)});
    }
    body
}

/// Queues a `list_delete` activity (`DELETE /contact_lists/{id}`) or a tag's delete
/// (`DELETE /contact_tags/{id}`, `job` [`Job::TagDelete`]); returns id and 202 body.
pub(crate) fn start_delete(
    account: &mut Account,
    cx: &mut Cx<'_>,
    job: Job,
) -> Result<(Uuid, Vec<u8>), ApiError> {
    let id = account.rng.uuid();
    let counters = Counters {
        items_total: 1,
        ..Counters::default()
    };
    let index = account.activities.queue(id, job, counters, cx)?;
    account.touch();
    let body = activity_json(
        &account.activities.rows[index as usize],
        cx.now,
        cx.rows_per_sec,
        Shape::ListDelete,
    );
    Ok((id, serde_json::to_vec(&body).unwrap_or_default()))
}

pub(crate) async fn get_activity(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(activity_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_uuid(Area::Contacts, "activity_id", &activity_id)?;
    shared.with_account(&caller, |account, cx| {
        let index = account
            .activities
            .find(&id)
            .ok_or_else(|| ApiError::not_found(Area::Contacts, "Activity not found"))?;
        let activity = &mut account.activities.rows[index as usize];
        // The first read finds the job already picked up.
        if activity.state == ActivityState::Initialized {
            activity.state = ActivityState::Processing;
            activity.started_at = Some(cx.now);
            activity.updated_at = cx.now;
        }
        let body = activity_json(activity, cx.now, cx.rows_per_sec, Shape::Read);
        Ok(json_response(StatusCode::OK, &body))
    })
}

pub(crate) async fn get_activities(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let (page, effective) = OffsetPage::from_query(Area::Contacts, &query, 50, 500, &["state"])?;
    let state = effective.get("state").map(str::to_owned);
    if let Some(s) = state.as_deref()
        && !matches!(
            s,
            "processing" | "completed" | "cancelled" | "failed" | "timed_out"
        )
    {
        return Err(ApiError::validation(
            Area::Contacts,
            format!("state {s} is not a valid value"),
        ));
    }
    shared.with_account(&caller, |account, cx| {
        let since = cx.now - 10 * MS_PER_DAY;
        let mut items = Vec::new();
        let mut next = None;
        for (index, activity) in account.activities.rows.iter().enumerate().skip(page.start) {
            if activity.created_at < since
                || state
                    .as_deref()
                    .is_some_and(|s| s != activity.state.as_str())
            {
                continue;
            }
            if items.len() == page.limit as usize {
                next = Some(page.cursor_at(index));
                break;
            }
            items.push(activity_json(
                activity,
                cx.now,
                cx.rows_per_sec,
                Shape::Read,
            ));
        }
        let body = json!({
            "activities": items,
            "_links": Links::next("/v3/activities", next),
        });
        Ok(json_response(StatusCode::OK, &body))
    })
}
