//! Custom-field operations (`/contact_custom_fields`, shared/reference/constant-contact-v3.md §5).

use reqwest::Method;

use crate::api::client::{AccountApi, Request};
use crate::api::endpoints::path_id;
use crate::api::error::ApiError;
use crate::api::model::{CustomField, CustomFieldCreate, CustomFieldPut, CustomFieldsPage};

const GET_FIELD: &str = "GET /contact_custom_fields/{custom_field_id}";
const PUT_FIELD: &str = "PUT /contact_custom_fields/{custom_field_id}";
const DELETE_FIELD: &str = "DELETE /contact_custom_fields/{custom_field_id}";

impl AccountApi {
    /// `GET /contact_custom_fields` (limit 1–100, the API's default 50): the first page.
    pub async fn list_custom_fields(
        &self,
        limit: Option<u32>,
    ) -> Result<CustomFieldsPage, ApiError> {
        let mut request = Request::get("GET /contact_custom_fields", "/contact_custom_fields");
        if let Some(limit) = limit {
            request = request.query("limit", limit);
        }
        self.json(request).await
    }

    /// The page a previous page's `next` href points to (followed verbatim).
    pub async fn next_custom_fields_page(&self, href: &str) -> Result<CustomFieldsPage, ApiError> {
        self.json(Request::href(
            "GET /contact_custom_fields (next page)",
            href,
        ))
        .await
    }

    /// `GET /contact_custom_fields/{id}`.
    pub async fn get_custom_field(&self, custom_field_id: &str) -> Result<CustomField, ApiError> {
        let path = format!(
            "/contact_custom_fields/{}",
            path_id(GET_FIELD, custom_field_id)?
        );
        self.json(Request::get(GET_FIELD, path)).await
    }

    /// `POST /contact_custom_fields` → 201. 409 on a duplicate label; at most 100 per account.
    pub async fn create_custom_field(
        &self,
        field: &CustomFieldCreate,
    ) -> Result<CustomField, ApiError> {
        let request = Request::new(
            Method::POST,
            "POST /contact_custom_fields",
            "/contact_custom_fields",
            false,
        )
        .json(field)?;
        self.json(request).await
    }

    /// `PUT /contact_custom_fields/{id}`: a full replacement (build it with
    /// [`CustomField::to_put`] so label and type are always sent).
    pub async fn update_custom_field(
        &self,
        custom_field_id: &str,
        field: &CustomFieldPut,
    ) -> Result<CustomField, ApiError> {
        let path = format!(
            "/contact_custom_fields/{}",
            path_id(PUT_FIELD, custom_field_id)?
        );
        let request = Request::new(Method::PUT, PUT_FIELD, path, true).json(field)?;
        self.json(request).await
    }

    /// `DELETE /contact_custom_fields/{id}` → 204.
    ///
    /// Not resent by the client after a failure that may have reached the API: a second DELETE
    /// would meet a 404 that the caller could not tell from an unknown id. The caller's own
    /// retry knows that an earlier attempt may have deleted it.
    pub async fn delete_custom_field(&self, custom_field_id: &str) -> Result<(), ApiError> {
        let path = format!(
            "/contact_custom_fields/{}",
            path_id(DELETE_FIELD, custom_field_id)?
        );
        self.send(Request::new(Method::DELETE, DELETE_FIELD, path, false))
            .await?;
        Ok(())
    }
}
