//! The revocation endpoint `POST /oauth2/default/v1/revoke` (RFC 7009). The Constant Contact
//! reference does not document one (reference §1.1 lists authorize, token and device
//! authorize only); the auth server is Okta's, whose revocation endpoint this follows —
//! UNCONFIRMED for Constant Contact:
//!
//! - client authentication as at the token endpoint (HTTP Basic or form fields); a wrong or
//!   unknown client is `401 invalid_client`. Without a secret only tokens of a public grant
//!   (PKCE, device flow) may be revoked;
//! - `token` (required) and `token_type_hint` (`refresh_token`/`access_token`, which table
//!   is searched first; any other hint is ignored, RFC 7009 §2.1);
//! - a refresh token revokes its whole grant (every refresh and access token of the
//!   family); an access token revokes that access token alone;
//! - `200` with an empty body for a token revoked now, already revoked, expired or unknown
//!   (RFC 7009 §2.2); `400 invalid_request` without a token or for another client's token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::jwt;
use super::token::{client_credentials, invalid_client, params, revoke_family};
use crate::errors::ApiError;
use crate::state::Shared;

/// Which of the grant's tokens was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presented {
    Refresh(usize),
    Access(usize),
}

pub(crate) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = params(raw.as_deref(), &body);
    let (client_id, secret) = client_credentials(&headers, &params);
    let Some(client_id) = client_id.filter(|c| !c.is_empty()) else {
        return Err(invalid_client("Client authentication is required"));
    };
    let now = shared.now_ms();
    let mut world = shared.world();
    let Some(client) = world.auth.client(&client_id).cloned() else {
        return Err(invalid_client("Unknown client"));
    };
    let confidential = match &secret {
        Some(s) if *s == client.client_secret => true,
        Some(_) => return Err(invalid_client("Client authentication failed")),
        None => false,
    };
    let token = params
        .get("token")
        .ok_or_else(|| ApiError::invalid_request("token is required"))?;
    let hash = jwt::token_hash(token);
    let as_refresh = world
        .auth
        .refresh
        .get(&hash)
        .map(|r| Presented::Refresh(r.family));
    let as_access = world
        .auth
        .access
        .get(&hash)
        .map(|a| Presented::Access(a.family));
    let presented = match params.get("token_type_hint") {
        Some("access_token") => as_access.or(as_refresh),
        _ => as_refresh.or(as_access),
    };
    let Some(presented) = presented else {
        return Ok(revoked());
    };
    let (Presented::Refresh(family) | Presented::Access(family)) = presented;
    let Some(grant) = world.auth.families.get(family).cloned() else {
        return Ok(revoked());
    };
    if grant.client_id != client_id {
        return Err(ApiError::invalid_request(
            "The token was issued to another client.",
        ));
    }
    if !confidential && !grant.public_client {
        return Err(invalid_client("Client authentication failed"));
    }
    match presented {
        Presented::Refresh(family) => revoke_family(&mut world, family, now),
        Presented::Access(_) => {
            world.auth.access.remove(&hash);
        }
    }
    Ok(revoked())
}

/// RFC 7009 §2.2: 200, and the body is ignored by the client.
fn revoked() -> Response {
    let mut response = StatusCode::OK.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
