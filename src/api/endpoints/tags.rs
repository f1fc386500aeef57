//! Contact tags (`/contact_tags`, OpenAPI spec `getAllTags`, `postTag`, `getTag`, `putTag`,
//! `deleteTag`, scope `contact_data`).

use reqwest::Method;

use crate::api::client::{AccountApi, Request};
use crate::api::endpoints::path_id;
use crate::api::error::ApiError;
use crate::api::model::{Activity, Tag, TagCreate, TagPut, TagsPage};

const GET_TAG: &str = "GET /contact_tags/{tag_id}";
const PUT_TAG: &str = "PUT /contact_tags/{tag_id}";
const DELETE_TAG: &str = "DELETE /contact_tags/{tag_id}";

impl AccountApi {
    /// `GET /contact_tags` (limit 1–500, the API's default 50): the first page.
    pub async fn list_tags(&self, limit: Option<u32>) -> Result<TagsPage, ApiError> {
        let mut request = Request::get("GET /contact_tags", "/contact_tags");
        if let Some(limit) = limit {
            request = request.query("limit", limit);
        }
        self.json(request).await
    }

    /// `GET /contact_tags?include_count=true`: the first page of tags, each with the number
    /// of contacts it applies to (`contacts_count`); the next pages' links carry the flag.
    pub async fn list_tags_counted(&self, limit: Option<u32>) -> Result<TagsPage, ApiError> {
        let mut request =
            Request::get("GET /contact_tags", "/contact_tags").query("include_count", true);
        if let Some(limit) = limit {
            request = request.query("limit", limit);
        }
        self.json(request).await
    }

    /// The page a previous page's `next` href points to (followed verbatim).
    pub async fn next_tags_page(&self, href: &str) -> Result<TagsPage, ApiError> {
        self.json(Request::href("GET /contact_tags (next page)", href))
            .await
    }

    /// `GET /contact_tags/{id}`.
    pub async fn get_tag(&self, tag_id: &str) -> Result<Tag, ApiError> {
        let path = format!("/contact_tags/{}", path_id(GET_TAG, tag_id)?);
        self.json(Request::get(GET_TAG, path)).await
    }

    /// `POST /contact_tags` → 201. 409 when the name is taken.
    pub async fn create_tag(&self, tag: &TagCreate) -> Result<Tag, ApiError> {
        let request =
            Request::new(Method::POST, "POST /contact_tags", "/contact_tags", false).json(tag)?;
        self.json(request).await
    }

    /// `PUT /contact_tags/{id}` → 200: renames. 409 when the name is taken.
    pub async fn update_tag(&self, tag_id: &str, tag: &TagPut) -> Result<Tag, ApiError> {
        let path = format!("/contact_tags/{}", path_id(PUT_TAG, tag_id)?);
        let request = Request::new(Method::PUT, PUT_TAG, path, true).json(tag)?;
        self.json(request).await
    }

    /// `DELETE /contact_tags/{id}` → 202 with the activity that un-assigns the tag from its
    /// contacts and deletes it asynchronously.
    ///
    /// Not resent by the client after a failure that may have reached the API: a second DELETE
    /// would meet a 404 that the caller could not tell from an unknown id. The caller's own
    /// retry knows that an earlier attempt may have deleted it.
    pub async fn delete_tag(&self, tag_id: &str) -> Result<Activity, ApiError> {
        let path = format!("/contact_tags/{}", path_id(DELETE_TAG, tag_id)?);
        self.json(Request::new(Method::DELETE, DELETE_TAG, path, false))
            .await
    }
}
