//! Contact-list operations (`/contact_lists`, shared/reference/constant-contact-v3.md §6).

use reqwest::Method;

use crate::api::client::{AccountApi, Request};
use crate::api::endpoints::path_id;
use crate::api::error::ApiError;
use crate::api::model::{Activity, ContactList, ListInput, ListQuery, ListsPage, MembershipCount};

const GET_LIST: &str = "GET /contact_lists/{list_id}";
const PUT_LIST: &str = "PUT /contact_lists/{list_id}";
const DELETE_LIST: &str = "DELETE /contact_lists/{list_id}";

impl AccountApi {
    /// `GET /contact_lists` with filters: the first page.
    pub async fn list_lists(&self, query: &ListQuery) -> Result<ListsPage, ApiError> {
        let mut request = Request::get("GET /contact_lists", "/contact_lists");
        for (key, value) in query.to_pairs() {
            request = request.query(key, value);
        }
        self.json(request).await
    }

    /// The page a previous page's `next` href points to (followed verbatim).
    pub async fn next_lists_page(&self, href: &str) -> Result<ListsPage, ApiError> {
        self.json(Request::href("GET /contact_lists (next page)", href))
            .await
    }

    /// `GET /contact_lists/{id}`, with its member count when asked for.
    pub async fn get_list(
        &self,
        list_id: &str,
        membership_count: Option<MembershipCount>,
    ) -> Result<ContactList, ApiError> {
        let mut request = Request::get(
            GET_LIST,
            format!("/contact_lists/{}", path_id(GET_LIST, list_id)?),
        );
        if let Some(count) = membership_count {
            request = request.query("include_membership_count", count);
        }
        self.json(request).await
    }

    /// `POST /contact_lists` → 201. 409 on a duplicate name; at most 1,000 lists.
    pub async fn create_list(&self, list: &ListInput) -> Result<ContactList, ApiError> {
        let request = Request::new(Method::POST, "POST /contact_lists", "/contact_lists", false)
            .json(list)?;
        self.json(request).await
    }

    /// `PUT /contact_lists/{id}` (name required; build it with [`ContactList::to_input`]).
    pub async fn update_list(
        &self,
        list_id: &str,
        list: &ListInput,
    ) -> Result<ContactList, ApiError> {
        let path = format!("/contact_lists/{}", path_id(PUT_LIST, list_id)?);
        let request = Request::new(Method::PUT, PUT_LIST, path, true).json(list)?;
        self.json(request).await
    }

    /// `DELETE /contact_lists/{id}` → 202 with the activity that deletes it asynchronously.
    ///
    /// Not resent by the client after a failure that may have reached the API: a second DELETE
    /// would meet a 404 that the caller could not tell from an unknown id. The caller's own
    /// retry knows that an earlier attempt may have deleted the list.
    pub async fn delete_list(&self, list_id: &str) -> Result<Activity, ApiError> {
        let path = format!("/contact_lists/{}", path_id(DELETE_LIST, list_id)?);
        self.json(Request::new(Method::DELETE, DELETE_LIST, path, false))
            .await
    }
}
