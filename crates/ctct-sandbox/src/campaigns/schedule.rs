//! Scheduling and test sends of a campaign's primary activity (reference §8.5):
//! `"0"` sends now (201 `[]`), a future date schedules (201 `[{scheduled_date}]`), a past date
//! is a 400; only `primary_email` activities in DRAFT/DONE/ERROR with recipients can be
//! scheduled; unscheduling reverts to the previous status; tests take 1–5 addresses and at
//! most 50 recipients per sandbox day.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::handlers::find_activity;
use super::{Role, Status};
use crate::clock::{fmt_millis, parse_instant, utc_day};
use crate::contacts::input::valid_email;
use crate::errors::{ApiError, Area};
use crate::http::{json as json_response, no_content, parse_body};
use crate::state::{Caller, Shared};

/// Test recipients allowed per account per sandbox UTC day.
pub(crate) const TESTS_PER_DAY: u32 = 50;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::validation(Area::Campaigns, message)
}

#[derive(Debug, Deserialize)]
struct ScheduleIn {
    scheduled_date: Option<serde_json::Value>,
}

pub(crate) async fn post_schedule(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(activity_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: ScheduleIn = parse_body(Area::Campaigns, &body)?;
    let when = match input.scheduled_date {
        Some(serde_json::Value::String(s)) if s.trim() == "0" => None,
        Some(serde_json::Value::Number(n)) if n.as_i64() == Some(0) => None,
        Some(serde_json::Value::String(s)) => Some(
            parse_instant(&s)
                .ok_or_else(|| invalid("scheduled_date must be an ISO-8601 date-time or \"0\""))?,
        ),
        _ => return Err(invalid("scheduled_date is required")),
    };
    shared.with_account(&caller, |account, cx| {
        let index = find_activity(account, &activity_id)?;
        let campaigns = &mut account.campaigns;
        let activity = &mut campaigns.activities[index as usize];
        if activity.role != Role::PrimaryEmail {
            return Err(invalid("Only primary_email activities can be scheduled"));
        }
        if !matches!(
            activity.status,
            Status::Draft | Status::Done | Status::Error
        ) {
            return Err(invalid(format!(
                "Only DRAFT, DONE or ERROR activities can be scheduled; this one is {}",
                activity.status.activity_str()
            )));
        }
        if activity.contact_list_ids.is_empty() && activity.segment_ids.is_empty() {
            return Err(invalid(
                "Set contact_list_ids or segment_ids with PUT before scheduling",
            ));
        }
        if let Some(at) = when
            && at <= cx.now
        {
            return Err(invalid("scheduled_date must be in the future"));
        }
        activity.prev_status = Some(activity.status);
        let answer = match when {
            None => {
                activity.status = Status::Executing;
                activity.executing_since = Some(cx.now);
                activity.scheduled_at = None;
                json!([])
            }
            Some(at) => {
                activity.status = Status::Scheduled;
                activity.scheduled_at = Some(at);
                json!([{"scheduled_date": fmt_millis(at)}])
            }
        };
        let (id, campaign) = (activity.id, activity.campaign);
        campaigns.campaigns[campaign as usize].updated_at = cx.now;
        cx.effect(&account.id, "schedule.created", id);
        account.touch();
        Ok(json_response(StatusCode::CREATED, &answer))
    })
}

pub(crate) async fn get_schedule(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(activity_id): Path<String>,
) -> Result<Response, ApiError> {
    shared.with_account(&caller, |account, _cx| {
        let index = find_activity(account, &activity_id)?;
        let activity = &account.campaigns.activities[index as usize];
        let body = match (activity.status, activity.scheduled_at) {
            (Status::Scheduled, Some(at)) => json!([{"scheduled_date": fmt_millis(at)}]),
            _ => json!([]),
        };
        Ok(json_response(StatusCode::OK, &body))
    })
}

pub(crate) async fn delete_schedule(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(activity_id): Path<String>,
) -> Result<Response, ApiError> {
    shared.with_account(&caller, |account, cx| {
        let index = find_activity(account, &activity_id)?;
        let campaigns = &mut account.campaigns;
        let activity = &mut campaigns.activities[index as usize];
        if activity.status != Status::Scheduled {
            return Err(invalid("Only SCHEDULED activities can be unscheduled"));
        }
        activity.status = activity.prev_status.take().unwrap_or(Status::Draft);
        activity.scheduled_at = None;
        let (id, campaign) = (activity.id, activity.campaign);
        campaigns.campaigns[campaign as usize].updated_at = cx.now;
        cx.effect(&account.id, "schedule.deleted", id);
        Ok(no_content())
    })
}

#[derive(Debug, Deserialize)]
struct TestIn {
    email_addresses: Option<Vec<String>>,
    #[allow(dead_code)]
    personal_message: Option<String>,
}

pub(crate) async fn post_tests(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(activity_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: TestIn = parse_body(Area::Campaigns, &body)?;
    let addresses = input.email_addresses.unwrap_or_default();
    if addresses.is_empty() || addresses.len() > 5 {
        return Err(invalid(
            "email_addresses must contain between 1 and 5 addresses",
        ));
    }
    if let Some(bad) = addresses.iter().find(|a| !valid_email(a.trim())) {
        return Err(invalid(format!("{bad} is not a valid e-mail address")));
    }
    shared.with_account(&caller, |account, cx| {
        let index = find_activity(account, &activity_id)?;
        let campaigns = &mut account.campaigns;
        if campaigns.activities[index as usize].role != Role::PrimaryEmail {
            return Err(invalid("Only primary_email activities can be test sent"));
        }
        let today = utc_day(cx.now);
        if campaigns.tests_today.0 != today {
            campaigns.tests_today = (today, 0);
        }
        let n = addresses.len() as u32;
        if campaigns.tests_today.1 + n > TESTS_PER_DAY {
            return Err(invalid(
                "The daily limit of 50 test email recipients has been reached",
            ));
        }
        campaigns.tests_today.1 += n;
        let id = campaigns.activities[index as usize].id;
        cx.effect(&account.id, "test_send", id);
        Ok(no_content())
    })
}
