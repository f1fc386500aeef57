//! The browser-facing OAuth2 endpoints (reference §1.3): `authorize` (auto-approves for the
//! pre-registered client, loopback redirect URIs only, PKCE S256 challenges, `login_hint`
//! picks the account) and the device flow's `device/authorize` and verification page.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::token::{invalid_client, params, token_response};
use super::{AuthCode, CODE_TTL_MS, DEVICE_TTL_MS, DeviceGrant, random_token, scope};
use crate::errors::ApiError;
use crate::http::QueryMap;
use crate::state::Shared;

/// True for `http://127.0.0.1…`, `http://localhost…`, `http://[::1]…`.
fn loopback_redirect(uri: &str) -> Option<url::Url> {
    let url = url::Url::parse(uri).ok()?;
    let loopback = match url.host()? {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    (url.scheme() == "http" && loopback).then_some(url)
}

fn redirect(mut to: url::Url, pairs: &[(&str, &str)]) -> Response {
    {
        let mut query = to.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(to.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = QueryMap::parse(raw.as_deref());
    let client_id = q.get("client_id").unwrap_or_default().to_owned();
    let mut world = shared.world();
    if world.auth.client(&client_id).is_none() {
        return Err(ApiError::invalid_request("Unknown client_id"));
    }
    let redirect_uri = q.get("redirect_uri").unwrap_or_default().to_owned();
    let Some(target) = loopback_redirect(&redirect_uri) else {
        return Err(ApiError::invalid_request(
            "redirect_uri must be an http loopback address (127.0.0.1, localhost or [::1])",
        ));
    };
    let Some(state) = q.get("state").map(str::to_owned) else {
        return Err(ApiError::invalid_request("state is required"));
    };
    let fail = |error: &str, description: &str| {
        Ok(redirect(
            target.clone(),
            &[
                ("error", error),
                ("error_description", description),
                ("state", &state),
            ],
        ))
    };
    if q.get("response_type") != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let scopes = match scope::parse(q.get("scope").unwrap_or_default()) {
        Ok(bits) if bits != 0 => bits,
        Ok(_) => return fail("invalid_scope", "scope is required"),
        Err(bad) => return fail("invalid_scope", &format!("unknown scope {bad}")),
    };
    let challenge = q.get("code_challenge").map(str::to_owned);
    if challenge.is_some() && q.get("code_challenge_method").unwrap_or("plain") != "S256" {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    let account = match q.get("login_hint") {
        None => 0,
        Some(hint) => match world.account_index(hint) {
            Some(index) => index,
            None => return fail("access_denied", "login_hint names no sandbox account"),
        },
    };
    let now = shared.now_ms();
    world.auth.prune_codes(now);
    let code = random_token();
    world.auth.codes.insert(
        code.clone(),
        AuthCode {
            client_id,
            redirect_uri,
            scopes,
            account,
            challenge,
            expires: now + CODE_TTL_MS,
        },
    );
    Ok(redirect(target, &[("code", &code), ("state", &state)]))
}

pub(crate) async fn device_authorize(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = params(raw.as_deref(), &body);
    let client_id = params.get("client_id").unwrap_or_default().to_owned();
    let mut world = shared.world();
    if world.auth.client(&client_id).is_none() {
        return Err(invalid_client("Unknown client"));
    }
    let scopes = match scope::parse(params.get("scope").unwrap_or_default()) {
        Ok(bits) if bits != 0 => bits,
        Ok(_) => {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "scope is required",
            ));
        }
        Err(bad) => {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!("unknown scope {bad}"),
            ));
        }
    };
    let account = params
        .get("login_hint")
        .and_then(|hint| world.account_index(hint))
        .unwrap_or(0);
    let now = shared.now_ms();
    world.auth.prune_codes(now);
    let device_code = random_token();
    let letters: String = random_token()
        .bytes()
        .filter(u8::is_ascii_alphabetic)
        .map(|b| char::from(b.to_ascii_uppercase()))
        .take(8)
        .collect();
    let user_code = format!(
        "{}-{}",
        &letters[..4.min(letters.len())],
        &letters[4.min(letters.len())..]
    );
    world.auth.devices.insert(
        device_code.clone(),
        DeviceGrant {
            client_id,
            scopes,
            account,
            user_code: user_code.clone(),
            approved: false,
            polls: 0,
            expires: now + DEVICE_TTL_MS,
        },
    );
    let verification_uri = format!("{}/oauth2/default/v1/device/verify", shared.origin);
    Ok(token_response(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
        "expires_in": DEVICE_TTL_MS / 1000,
        "interval": 5,
    })))
}

pub(crate) async fn device_verify(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = QueryMap::parse(raw.as_deref());
    let code = q.get("user_code").unwrap_or_default().to_owned();
    let mut world = shared.world();
    let found = world
        .auth
        .devices
        .values_mut()
        .find(|d| d.user_code.eq_ignore_ascii_case(&code));
    let (status, text) = match found {
        Some(device) => {
            device.approved = true;
            (
                StatusCode::OK,
                "Device approved. You can close this window.",
            )
        }
        None => (StatusCode::NOT_FOUND, "Unknown or expired code."),
    };
    let mut response = (status, format!("<html><body><p>{text}</p></body></html>")).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
