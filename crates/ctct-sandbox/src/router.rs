//! The route table: `/v3/...` API operations and `/oauth2/default/v1/...` behind the gate,
//! `/__sandbox/...` admin routes behind the loopback check, JSON 404/405 answers.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::account;
use super::activities::{self, deletes, export, import, memberships, taggings};
use super::admin;
use super::campaigns::{handlers as emails, schedule};
use super::contacts::handlers as contacts;
use super::custom_fields;
use super::errors::ApiError;
use super::gate::gate;
use super::lists;
use super::oauth::{authorize, revoke, token};
use super::reports::handlers as reports;
use super::segments;
use super::state::Shared;
use super::tags;

/// Bodies up to this size are read; the JSON import enforces its own 4 MB limit.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

async fn not_found() -> Response {
    ApiError::unknown_path().into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::method_not_allowed().into_response()
}

fn api() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/contacts",
            get(contacts::get_contacts).post(contacts::post_contact),
        )
        .route("/contacts/sign_up_form", post(contacts::sign_up_form))
        .route("/contacts/counts", get(contacts::contact_counts))
        .route(
            "/contacts/{contact_id}",
            get(contacts::get_contact)
                .put(contacts::put_contact)
                .delete(contacts::delete_contact),
        )
        .route(
            "/contact_custom_fields",
            get(custom_fields::get_fields).post(custom_fields::post_field),
        )
        .route(
            "/contact_custom_fields/{custom_field_id}",
            get(custom_fields::get_field)
                .put(custom_fields::put_field)
                .delete(custom_fields::delete_field),
        )
        .route(
            "/contact_lists",
            get(lists::get_lists).post(lists::post_list),
        )
        .route(
            "/contact_lists/{list_id}",
            get(lists::get_list)
                .put(lists::put_list)
                .delete(lists::delete_list),
        )
        .route("/segments", get(segments::get_segments))
        .route("/segments/{segment_id}", get(segments::get_segment))
        .route("/contact_tags", get(tags::get_tags).post(tags::post_tag))
        .route(
            "/contact_tags/{tag_id}",
            get(tags::get_tag)
                .put(tags::put_tag)
                .delete(tags::delete_tag),
        )
        .route("/activities", get(activities::get_activities))
        .route("/activities/{activity_id}", get(activities::get_activity))
        .route(
            "/activities/contacts_json_import",
            post(import::post_import),
        )
        .route("/activities/contact_exports", post(export::post_export))
        .route(
            "/activities/contacts_taggings_add",
            post(taggings::post_taggings_add),
        )
        .route(
            "/activities/contacts_taggings_remove",
            post(taggings::post_taggings_remove),
        )
        .route(
            "/activities/add_list_memberships",
            post(memberships::post_add),
        )
        .route(
            "/activities/remove_list_memberships",
            post(memberships::post_remove),
        )
        .route(
            "/activities/contact_delete",
            post(deletes::post_contact_delete),
        )
        .route("/activities/list_delete", post(deletes::post_list_delete))
        .route(
            "/activities/contacts_tags_delete",
            post(deletes::post_tags_delete),
        )
        .route(
            "/activities/custom_fields_delete",
            post(deletes::post_custom_fields_delete),
        )
        .route(
            "/contact_exports/{file_export_id}",
            get(export::get_export_file),
        )
        .route("/emails", get(emails::get_emails).post(emails::post_email))
        .route(
            "/emails/{campaign_id}",
            get(emails::get_email)
                .patch(emails::patch_email)
                .delete(emails::delete_email),
        )
        .route(
            "/emails/activities/{campaign_activity_id}",
            get(emails::get_campaign_activity).put(emails::put_campaign_activity),
        )
        .route(
            "/emails/activities/{campaign_activity_id}/schedules",
            get(schedule::get_schedule)
                .post(schedule::post_schedule)
                .delete(schedule::delete_schedule),
        )
        .route(
            "/emails/activities/{campaign_activity_id}/tests",
            post(schedule::post_tests),
        )
        .route(
            "/account/emails",
            get(account::get_account_emails).post(account::post_account_email),
        )
        .route("/account/user/privileges", get(account::get_privileges))
        .route("/account/summary", get(account::get_summary))
        .route(
            "/reports/summary_reports/email_campaign_summaries",
            get(reports::get_campaign_summaries),
        )
        .route(
            "/reports/stats/email_campaigns/{campaign_ids}",
            get(reports::get_campaign_stats),
        )
        .route(
            "/reports/stats/email_campaign_activities/{campaign_activity_ids}",
            get(reports::get_activity_stats),
        )
        .route(
            "/reports/email_reports/{campaign_activity_id}/links",
            get(reports::get_links),
        )
        .route(
            "/reports/email_reports/{campaign_activity_id}/tracking/{report}",
            get(reports::get_tracking),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

fn oauth_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/token", post(token::token))
        .route("/revoke", post(revoke::revoke))
        .route("/device/authorize", post(authorize::device_authorize))
        .route("/device/verify", get(authorize::device_verify))
        .method_not_allowed_fallback(method_not_allowed)
}

/// The whole application.
pub(crate) fn build(shared: Arc<Shared>) -> Router {
    let gated = Router::new()
        .nest("/v3", api())
        .nest("/oauth2/default/v1", oauth_routes())
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    Router::new()
        .merge(gated)
        .nest("/__sandbox", admin::http::routes(shared.clone()))
        .fallback(not_found)
        .with_state(shared)
}
