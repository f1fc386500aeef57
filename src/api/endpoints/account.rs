//! Account operations (shared/reference/constant-contact-v3.md §9): e-mail addresses, the
//! connected user's privileges, the account summary.

use reqwest::Method;

use crate::api::client::{AccountApi, Request};
use crate::api::error::ApiError;
use crate::api::model::{
    AccountEmail, AccountEmailFilter, AccountSummary, SummaryExtra, UserPrivilege,
};

#[derive(serde::Serialize)]
struct NewEmail<'a> {
    email_address: &'a str,
}

impl AccountApi {
    /// `GET /account/emails` with at most one filter (a bare array).
    pub async fn list_account_emails(
        &self,
        filter: &AccountEmailFilter,
    ) -> Result<Vec<AccountEmail>, ApiError> {
        let mut request = Request::get("GET /account/emails", "/account/emails");
        if let Some((key, value)) = filter.to_pair() {
            request = request.query(key, value);
        }
        self.json(request).await
    }

    /// `POST /account/emails` → 201, `UNCONFIRMED` until the owner follows the link Constant
    /// Contact mails. 409 when the address is already on the account.
    pub async fn add_account_email(&self, email_address: &str) -> Result<AccountEmail, ApiError> {
        let request = Request::new(
            Method::POST,
            "POST /account/emails",
            "/account/emails",
            false,
        )
        .json(&NewEmail { email_address })?;
        self.json(request).await
    }

    /// `GET /account/user/privileges` (needs no scope).
    pub async fn get_user_privileges(&self) -> Result<Vec<UserPrivilege>, ApiError> {
        self.json(Request::get(
            "GET /account/user/privileges",
            "/account/user/privileges",
        ))
        .await
    }

    /// `GET /account/summary`, with the optional parts asked for.
    pub async fn get_account_summary(
        &self,
        extras: &[SummaryExtra],
    ) -> Result<AccountSummary, ApiError> {
        let mut request = Request::get("GET /account/summary", "/account/summary");
        if !extras.is_empty() {
            let extras = extras
                .iter()
                .map(SummaryExtra::as_str)
                .collect::<Vec<_>>()
                .join(",");
            request = request.query("extra_fields", extras);
        }
        self.json(request).await
    }
}
