//! Contact operations (shared/reference/constant-contact-v3.md §4): create, read, find by
//! e-mail, replace, delete, the sign-up form, and the paged list.

use reqwest::Method;

use crate::api::client::{AccountApi, Request};
use crate::api::endpoints::path_id;
use crate::api::error::ApiError;
use crate::api::model::{
    Contact, ContactCreate, ContactPut, ContactQuery, ContactStatus, ContactsPage, Include,
    SignUpForm, SignUpResult,
};

const GET_CONTACT: &str = "GET /contacts/{contact_id}";
const PUT_CONTACT: &str = "PUT /contacts/{contact_id}";
const DELETE_CONTACT: &str = "DELETE /contacts/{contact_id}";
const SIGN_UP: &str = "POST /contacts/sign_up_form";

impl AccountApi {
    /// `POST /contacts` → 201 with the new contact. 409 (`conflicting_contact_id()` names the
    /// owner) when the address exists in any state, deleted included. Not repeated after an
    /// ambiguous failure: look the contact up by e-mail instead.
    pub async fn create_contact(&self, contact: &ContactCreate) -> Result<Contact, ApiError> {
        let request =
            Request::new(Method::POST, "POST /contacts", "/contacts", false).json(contact)?;
        self.json(request).await
    }

    /// `GET /contacts/{id}` with the given subresources.
    pub async fn get_contact(
        &self,
        contact_id: &str,
        includes: &[Include],
    ) -> Result<Contact, ApiError> {
        let mut request = Request::get(
            GET_CONTACT,
            format!("/contacts/{}", path_id(GET_CONTACT, contact_id)?),
        );
        if !includes.is_empty() {
            request = request.query("include", Include::join(includes));
        }
        self.json(request).await
    }

    /// The contact that owns `email`, if any: `GET /contacts?email=…`, with `status=all` when
    /// deleted contacts count too (they still own their address, §12 fact 5).
    pub async fn find_contact_by_email(
        &self,
        email: &str,
        includes: &[Include],
        include_deleted: bool,
    ) -> Result<Option<Contact>, ApiError> {
        let query = ContactQuery {
            email: Some(email.to_owned()),
            status: if include_deleted {
                vec![ContactStatus::All]
            } else {
                Vec::new()
            },
            include: includes.to_vec(),
            ..ContactQuery::default()
        };
        let page = self.list_contacts(&query).await?;
        Ok(page.contacts.into_iter().find(|contact| {
            contact
                .email()
                .is_some_and(|address| address.eq_ignore_ascii_case(email))
        }))
    }

    /// `PUT /contacts/{id}`: replaces every core field (build the body with
    /// [`Contact::to_put`]); subresources left out are kept. Revives a deleted contact. 409 when
    /// the new address belongs to another contact.
    pub async fn update_contact(
        &self,
        contact_id: &str,
        contact: &ContactPut,
    ) -> Result<Contact, ApiError> {
        let path = format!("/contacts/{}", path_id(PUT_CONTACT, contact_id)?);
        let request = Request::new(Method::PUT, PUT_CONTACT, path, true).json(contact)?;
        self.json(request).await
    }

    /// `DELETE /contacts/{id}` → 204 (a soft delete; the address stays reserved).
    pub async fn delete_contact(&self, contact_id: &str) -> Result<(), ApiError> {
        let path = format!("/contacts/{}", path_id(DELETE_CONTACT, contact_id)?);
        self.send(Request::new(Method::DELETE, DELETE_CONTACT, path, true))
            .await?;
        Ok(())
    }

    /// `POST /contacts/sign_up_form`: create (201) or update (200) by e-mail; `created` tells
    /// which. Lists and custom fields are merged, and permission becomes `explicit`.
    pub async fn sign_up_form(&self, form: &SignUpForm) -> Result<SignUpResult, ApiError> {
        let request =
            Request::new(Method::POST, SIGN_UP, "/contacts/sign_up_form", false).json(form)?;
        let response = self.send(request).await?;
        let mut result: SignUpResult =
            serde_json::from_slice(&response.body).map_err(|e| ApiError::Decode {
                route: SIGN_UP,
                detail: e.to_string(),
            })?;
        result.created = response.status == 201;
        Ok(result)
    }

    /// `GET /contacts` with filters: the first page.
    pub async fn list_contacts(&self, query: &ContactQuery) -> Result<ContactsPage, ApiError> {
        let mut request = Request::get("GET /contacts", "/contacts");
        for (key, value) in query.to_pairs() {
            request = request.query(key, value);
        }
        self.json(request).await
    }

    /// The page a previous page's `next` href points to (followed verbatim).
    pub async fn next_contacts_page(&self, href: &str) -> Result<ContactsPage, ApiError> {
        self.json(Request::href("GET /contacts (next page)", href))
            .await
    }
}
