//! Bulk-activity operations (shared/reference/constant-contact-v3.md §7): JSON import, export,
//! taggings, list memberships, the four bulk deletes, and the status of any activity. Every `POST /activities/*` may answer 429 when the account
//! already has 1,000 queued activities ([`ApiError::TooMany`]).

use reqwest::Method;

use crate::api::client::{AccountApi, Request};
use crate::api::endpoints::{ExportDownload, path_id};
use crate::api::error::ApiError;
use crate::api::model::{
    Activity, ContactsJsonImport, DeleteRequest, ExportRequest, MembershipRequest, TaggingRequest,
};

const GET_ACTIVITY: &str = "GET /activities/{activity_id}";
const DOWNLOAD: &str = "GET /contact_exports/{file_export_id}";

impl AccountApi {
    /// `POST /activities/contacts_json_import` → 201 with an `initialized` activity.
    pub async fn import_contacts_json(
        &self,
        import: &ContactsJsonImport,
    ) -> Result<Activity, ApiError> {
        let request = Request::new(
            Method::POST,
            "POST /activities/contacts_json_import",
            "/activities/contacts_json_import",
            false,
        )
        .json(import)?;
        self.json(request).await
    }

    /// `POST /activities/contacts_taggings_add` (`add`) or `_remove` → 201 with the activity
    /// that applies (removes) the tags to (from) the contacts. An unknown tag or contact id
    /// is a 404. Not resent by the client after a failure that may have reached the API: a
    /// second POST would start a second activity.
    pub async fn tagging_activity(
        &self,
        add: bool,
        tagging: &TaggingRequest,
    ) -> Result<Activity, ApiError> {
        let (name, path) = if add {
            (
                "POST /activities/contacts_taggings_add",
                "/activities/contacts_taggings_add",
            )
        } else {
            (
                "POST /activities/contacts_taggings_remove",
                "/activities/contacts_taggings_remove",
            )
        };
        let request = Request::new(Method::POST, name, path, false).json(tagging)?;
        self.json(request).await
    }

    /// `POST /activities/add_list_memberships` (`add`) or `remove_list_memberships` → 201 with
    /// the activity that adds (removes) the contacts to (from) the lists. An unknown list or
    /// contact id is a 404 (documented for remove; assumed for add). The activity may complete
    /// fewer contacts than it was given (`items_completed_count` below `items_total_count`),
    /// e.g. a contact already on 50 lists. Not resent by the client after a failure that may
    /// have reached the API: a second POST would start a second activity.
    pub async fn membership_activity(
        &self,
        add: bool,
        membership: &MembershipRequest,
    ) -> Result<Activity, ApiError> {
        let (name, path) = if add {
            (
                "POST /activities/add_list_memberships",
                "/activities/add_list_memberships",
            )
        } else {
            (
                "POST /activities/remove_list_memberships",
                "/activities/remove_list_memberships",
            )
        };
        let request = Request::new(Method::POST, name, path, false).json(membership)?;
        self.json(request).await
    }

    /// `POST /activities/contact_delete` with `{"contact_ids": [...]}` (at most 500) → 201 with
    /// the activity that soft-deletes the contacts (as `DELETE /contacts/{id}` does: lists
    /// stripped, `deleted_at` set, revivable). Its `status` counts contacts
    /// (`items_total_count`, `items_completed_count`). Not resent by the client after a
    /// failure that may have reached the API: a second POST would start a second activity.
    pub async fn delete_contacts_activity(
        &self,
        contact_ids: &[String],
    ) -> Result<Activity, ApiError> {
        self.delete_activity(DeleteRequest::Contacts(contact_ids))
            .await
    }

    /// `POST /activities/list_delete` with `{"list_ids": [...]}` (at most 100) → 201 with the
    /// activity that deletes the lists. Its `status` has only `list_count`, the lists deleted
    /// (spec `createListDeleteActivity_201_response_status`), no item counts. Not resent by
    /// the client after a failure that may have reached the API.
    pub async fn delete_lists_activity(&self, list_ids: &[String]) -> Result<Activity, ApiError> {
        self.delete_activity(DeleteRequest::Lists(list_ids)).await
    }

    /// `POST /activities/contacts_tags_delete` with `{"tag_ids": [...]}` (at most 500) → 201
    /// with the activity that deletes the tags, which also removes them from every contact.
    /// Its `status` counts tags (`items_total_count`, `items_completed_count`). Not resent by
    /// the client after a failure that may have reached the API.
    pub async fn delete_tags_activity(&self, tag_ids: &[String]) -> Result<Activity, ApiError> {
        self.delete_activity(DeleteRequest::Tags(tag_ids)).await
    }

    /// `POST /activities/custom_fields_delete` with `{"custom_field_ids": [...]}` (at most
    /// 100 per the spec's description; its schema says `maxItems: 0`) → 201 with the activity
    /// that deletes the fields and their values on contacts. The spec gives this activity no
    /// `status`, so nothing says how many were deleted. Not resent by the client after a
    /// failure that may have reached the API.
    pub async fn delete_custom_fields_activity(
        &self,
        custom_field_ids: &[String],
    ) -> Result<Activity, ApiError> {
        self.delete_activity(DeleteRequest::CustomFields(custom_field_ids))
            .await
    }

    /// Starts one of the bulk delete activities; `false`: never resent blindly.
    async fn delete_activity(&self, body: DeleteRequest<'_>) -> Result<Activity, ApiError> {
        let (name, path) = body.route();
        let request = Request::new(Method::POST, name, path, false).json(&body)?;
        self.json(request).await
    }

    /// `POST /activities/contact_exports` → 201 with the export's activity; once it has
    /// completed, its [`Activity::results_href`] leads to the file.
    pub async fn create_export(&self, export: &ExportRequest) -> Result<Activity, ApiError> {
        let request = Request::new(
            Method::POST,
            "POST /activities/contact_exports",
            "/activities/contact_exports",
            false,
        )
        .json(export)?;
        self.json(request).await
    }

    /// `GET /activities/{id}`. Each poll costs quota: poll with backoff.
    pub async fn get_activity(&self, activity_id: &str) -> Result<Activity, ApiError> {
        let path = format!("/activities/{}", path_id(GET_ACTIVITY, activity_id)?);
        self.json(Request::get(GET_ACTIVITY, path)).await
    }

    /// Opens the export file at a completed export's `_links.results.href` (followed verbatim)
    /// and reads its header row; the records are then read one at a time, so memory stays flat
    /// whatever the size of the export.
    pub async fn download_export(&self, results_href: &str) -> Result<ExportDownload, ApiError> {
        let response = self
            .stream(Request::href(DOWNLOAD, results_href).accept("text/csv"))
            .await?;
        ExportDownload::open(DOWNLOAD, response).await
    }
}
