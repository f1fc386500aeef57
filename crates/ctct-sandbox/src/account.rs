//! Account endpoints (reference §9): the account summary, account e-mail addresses (new ones
//! start UNCONFIRMED; the admin API confirms them; only CONFIRMED ones may send campaigns) and
//! the user's privileges (the authorising user is an Account Owner: every privilege).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::clock::{Millis, fmt_secs};
use super::contacts::input::valid_email;
use super::errors::{ApiError, Area};
use super::http::{QueryMap, json as json_response, parse_body};
use super::state::{Caller, Cx, Shared};

/// Privileges of an Account Owner (names from the spec's `x-authorization-privileges`).
const PRIVILEGES: [(i64, &str); 13] = [
    (1, "account:read"),
    (2, "account:update"),
    (10, "contacts:read"),
    (11, "contacts:write"),
    (12, "contacts:lists:read"),
    (13, "contacts:lists:write"),
    (20, "campaign:read"),
    (21, "campaign:write"),
    (22, "campaign:send"),
    (23, "campaign:delete"),
    (30, "campaign:create"),
    (40, "reports:read"),
    (50, "ui:all"),
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccountEmail {
    pub(crate) email_id: i64,
    pub(crate) email_address: String,
    pub(crate) confirmed: bool,
    pub(crate) confirm_time: Option<Millis>,
    pub(crate) confirm_source_type: Option<String>,
    pub(crate) roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccountInfo {
    pub(crate) organization_name: String,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    pub(crate) emails: Vec<AccountEmail>,
}

impl AccountInfo {
    /// A new account's details with one confirmed owner e-mail `owner@<id>.example`.
    pub(crate) fn new(account_id: &str, number: usize, now: Millis) -> Self {
        Self {
            organization_name: format!("Sandbox Organisation {number}"),
            first_name: "Sandbox".into(),
            last_name: format!("Owner {number}"),
            emails: vec![AccountEmail {
                email_id: 1,
                email_address: format!("owner@{account_id}.example"),
                confirmed: true,
                confirm_time: Some(now),
                confirm_source_type: Some("SITE_OWNER".into()),
                roles: vec!["CONTACT".into(), "BILLING".into(), "REPLY_TO".into()],
            }],
        }
    }

    pub(crate) fn owner_email(&self) -> &str {
        self.emails
            .first()
            .map(|e| e.email_address.as_str())
            .unwrap_or_default()
    }

    pub(crate) fn is_confirmed(&self, email: &str) -> bool {
        self.emails
            .iter()
            .any(|e| e.confirmed && e.email_address.eq_ignore_ascii_case(email.trim()))
    }

    /// Confirms an account e-mail (admin); `false` when the address is unknown.
    pub(crate) fn confirm(&mut self, email: &str, now: Millis) -> bool {
        match self
            .emails
            .iter_mut()
            .find(|e| e.email_address.eq_ignore_ascii_case(email.trim()))
        {
            Some(e) => {
                e.confirmed = true;
                e.confirm_time = Some(now);
                e.confirm_source_type = Some("SUPPORT".into());
                true
            }
            None => false,
        }
    }
}

pub(crate) fn email_json(e: &AccountEmail) -> Value {
    let mut body = json!({
        "email_address": e.email_address,
        "email_id": e.email_id,
        "confirm_status": if e.confirmed { "CONFIRMED" } else { "UNCONFIRMED" },
        "roles": e.roles,
        "pending_roles": [],
    });
    if let Some(t) = e.confirm_time {
        body["confirm_time"] = fmt_secs(t).into();
    }
    if let Some(s) = &e.confirm_source_type {
        body["confirm_source_type"] = s.as_str().into();
    }
    body
}

fn role_matches(roles: &[String], code: &str) -> Option<bool> {
    let full = match code {
        "CONTACT" | "C" => "CONTACT",
        "BILLING" | "B" => "BILLING",
        "JOURNALING" | "J" => "JOURNALING",
        "REPLY_TO" | "R" => "REPLY_TO",
        "OTHER" | "O" => "OTHER",
        _ => return None,
    };
    Some(roles.iter().any(|r| r == full))
}

pub(crate) async fn get_account_emails(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let filters: Vec<&(String, String)> = query
        .0
        .iter()
        .filter(|(k, v)| {
            !v.is_empty() && matches!(k.as_str(), "confirm_status" | "role_code" | "email_address")
        })
        .collect();
    if filters.len() > 1 {
        return Err(ApiError::validation(
            Area::Account,
            "Only one of confirm_status, role_code or email_address may be used at a time",
        ));
    }
    let filter = filters.first().map(|(k, v)| (k.clone(), v.clone()));
    shared.with_account(&caller, |account, _cx| {
        let mut out = Vec::new();
        for e in &account.info.emails {
            let keep = match &filter {
                None => true,
                Some((k, v)) if k == "confirm_status" => match v.as_str() {
                    "CONFIRMED" | "C" => e.confirmed,
                    "UNCONFIRMED" | "U" => !e.confirmed,
                    _ => {
                        return Err(ApiError::validation(
                            Area::Account,
                            "confirm_status must be CONFIRMED, C, UNCONFIRMED or U",
                        ));
                    }
                },
                Some((k, v)) if k == "role_code" => role_matches(&e.roles, v).ok_or_else(|| {
                    ApiError::validation(Area::Account, "role_code is not a valid value")
                })?,
                Some((_, v)) => e.email_address.eq_ignore_ascii_case(v),
            };
            if keep {
                out.push(email_json(e));
            }
        }
        Ok(json_response(StatusCode::OK, &out))
    })
}

#[derive(Debug, Deserialize)]
struct EmailIn {
    email_address: Option<String>,
}

pub(crate) fn add_email(
    info: &mut AccountInfo,
    account_id: &str,
    cx: &mut Cx<'_>,
    address: &str,
) -> Result<i64, ApiError> {
    let address = address.trim();
    if address.is_empty() || address.chars().count() > 80 || !valid_email(address) {
        return Err(ApiError::validation(
            Area::Account,
            "email_address must be a valid e-mail address of at most 80 characters",
        ));
    }
    if info
        .emails
        .iter()
        .any(|e| e.email_address.eq_ignore_ascii_case(address))
    {
        return Err(ApiError::conflict(
            Area::Account,
            format!("{address} is already an account email address"),
        ));
    }
    let email_id = info.emails.iter().map(|e| e.email_id).max().unwrap_or(0) + 1;
    info.emails.push(AccountEmail {
        email_id,
        email_address: address.to_owned(),
        confirmed: false,
        confirm_time: None,
        confirm_source_type: None,
        roles: vec!["OTHER".into()],
    });
    cx.effect(account_id, "account_email.created", email_id);
    Ok(email_id)
}

pub(crate) async fn post_account_email(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: EmailIn = parse_body(Area::Account, &body)?;
    let address = input.email_address.unwrap_or_default();
    shared.with_account(&caller, |account, cx| {
        let email_id = add_email(&mut account.info, &account.id, cx, &address)?;
        Ok(json_response(
            StatusCode::CREATED,
            &json!({
                "email_address": address.trim(),
                "email_id": email_id,
                "confirm_status": "UNCONFIRMED",
            }),
        ))
    })
}

pub(crate) async fn get_privileges(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    shared.with_account(&caller, |_account, _cx| {
        let body: Vec<Value> = PRIVILEGES
            .iter()
            .map(|(id, name)| json!({"privilege_id": id, "privilege_name": name}))
            .collect();
        Ok(json_response(StatusCode::OK, &body))
    })
}

pub(crate) async fn get_summary(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryMap::parse(raw.as_deref());
    let extra = query.csv("extra_fields");
    for item in &extra {
        if item != "physical_address" && item != "company_logo" {
            return Err(ApiError::validation(
                Area::Account,
                format!("extra_fields {item} is not a valid value"),
            ));
        }
    }
    shared.with_account(&caller, |account, _cx| {
        let info = &account.info;
        let mut body = json!({
            "contact_email": info.owner_email(),
            "contact_phone": "555-0100",
            "country_code": "US",
            "encoded_account_id": account.id,
            "first_name": info.first_name,
            "last_name": info.last_name,
            "organization_name": info.organization_name,
            "organization_phone": "555-0100",
            "state_code": "MA",
            "time_zone_id": "US/Eastern",
            "website": format!("https://{}.example", account.id),
        });
        if extra.iter().any(|e| e == "physical_address") {
            body["physical_address"] = json!({
                "address_line1": "1 Sandbox Way",
                "city": "Waltham",
                "state_code": "MA",
                "postal_code": "02451",
                "country_code": "US",
            });
        }
        if extra.iter().any(|e| e == "company_logo") {
            body["company_logo"] = json!({
                "url": format!("https://{}.example/logo.png", account.id),
                "external_url": format!("https://{}.example/logo.png", account.id),
                "internal_id": "1",
            });
        }
        Ok(json_response(StatusCode::OK, &body))
    })
}
