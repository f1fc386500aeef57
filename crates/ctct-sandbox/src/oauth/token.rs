//! The token endpoint `POST /oauth2/default/v1/token` (reference §1.2–1.4): client
//! authentication (Basic or form fields), the authorization_code grant (single-use codes,
//! PKCE S256), the rotating refresh_token grant (replay of a used token revokes the whole
//! family) and the device_code grant; access tokens are minted by `issue`. Errors use OAuth's
//! `{error, error_description}`; `invalid_client` is a 401.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::jwt::{self, Claims};
use super::{REFRESH_IDLE_MS, scope};
use crate::errors::ApiError;
use crate::http::QueryMap;
use crate::state::{Shared, World, lock};

/// Set by the gate when a `revoke_tokens` fault strikes a token request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RevokeNow;

pub(super) fn invalid_client(description: &str) -> ApiError {
    ApiError::oauth(StatusCode::UNAUTHORIZED, "invalid_client", description)
}

/// Query parameters plus form-body parameters (body wins).
pub(super) fn params(raw_query: Option<&str>, body: &Bytes) -> QueryMap {
    let mut all = QueryMap::parse(raw_query);
    if let Ok(text) = std::str::from_utf8(body) {
        all.0.extend(QueryMap::parse(Some(text)).0);
    }
    all
}

/// `(client_id, client_secret)` from HTTP Basic, else from the parameters.
pub(super) fn client_credentials(
    headers: &HeaderMap,
    params: &QueryMap,
) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| {
            pair.split_once(':').map(|(id, secret)| {
                let decode = |s: &str| {
                    url::form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (decode(id), decode(secret))
            })
        });
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            params.get("client_id").map(str::to_owned),
            params.get("client_secret").map(str::to_owned),
        ),
    }
}

pub(super) fn token_response(body: serde_json::Value) -> Response {
    let mut response = (
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Mints an access token (and a refresh token with offline_access) for `family`.
pub(crate) fn issue(
    shared: &Shared,
    world: &mut World,
    family: usize,
    now: i64,
) -> serde_json::Value {
    let Some(f) = world.auth.families.get(family).cloned() else {
        return json!({});
    };
    let Some(account) = world.accounts.get(f.account) else {
        return json!({});
    };
    let iss = format!("{}/oauth2/default", shared.origin);
    let aud = format!("{}/v3", shared.origin);
    let exp = now + shared.access_token_ttl_ms;
    let claims = Claims {
        ver: 1,
        jti: format!("AT.{}", uuid::Uuid::new_v4().simple()),
        iss: &iss,
        aud: &aud,
        iat: now / 1000,
        exp: exp / 1000,
        cid: &f.client_id,
        uid: &account.platform_user_id,
        scp: scope::names(f.scopes),
        auth_time: now / 1000,
        sub: account.info.owner_email(),
        platform_user_id: &account.platform_user_id,
        encoded_account_id: &account.id,
    };
    let key = world.auth.signing_key.clone();
    let access = jwt::sign(key.as_bytes(), &claims);
    world.auth.remember_access(&access, family, exp, now);
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": shared.access_token_ttl_ms / 1000,
        "access_token": access,
        "scope": scope::names(f.scopes).join(" "),
    });
    if let Some(refresh) = world.auth.mint_refresh(family, now) {
        body["refresh_token"] = refresh.into();
    }
    body
}

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    revoke: Option<Extension<RevokeNow>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    shared.token_requests.fetch_add(1, Ordering::Relaxed);
    let params = params(raw.as_deref(), &body);
    let (client_id, secret) = client_credentials(&headers, &params);
    let Some(client_id) = client_id.filter(|c| !c.is_empty()) else {
        return Err(invalid_client("Client authentication is required"));
    };
    let now = shared.now_ms();
    if !lock(&shared.limiter).check_token(&client_id, now) {
        return Err(ApiError::oauth(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "The token endpoint allows 1 request per second per client",
        ));
    }
    let mut world = shared.world();
    let Some(client) = world.auth.client(&client_id).cloned() else {
        return Err(invalid_client("Unknown client"));
    };
    let confidential = match &secret {
        Some(s) if *s == client.client_secret => true,
        Some(_) => return Err(invalid_client("Client authentication failed")),
        None => false,
    };
    world.auth.prune_codes(now);
    if revoke.is_some()
        && let Some(family) = params
            .get("refresh_token")
            .and_then(|rt| world.auth.refresh_family(rt))
    {
        revoke_family(&mut world, family, now);
    }
    let grant = params.get("grant_type").unwrap_or_default().to_owned();
    let family = match grant.as_str() {
        "authorization_code" => exchange_code(&mut world, &params, &client_id, confidential)?,
        "refresh_token" => refresh(&mut world, &params, &client_id, confidential, now)?,
        "urn:ietf:params:oauth:grant-type:device_code" => {
            poll_device(&mut world, &params, &client_id)?
        }
        "" => return Err(ApiError::invalid_request("grant_type is required")),
        _ => {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type {grant} is not supported"),
            ));
        }
    };
    let body = issue(&shared, &mut world, family, now);
    let account = world.auth.families[family].account;
    let kind = if grant == "refresh_token" {
        "token.refreshed"
    } else {
        "token.issued"
    };
    if let Some(account_id) = world.accounts.get(account).map(|a| a.id.clone()) {
        world.effects.push(
            now,
            &account_id,
            kind,
            Some(format!("family-{family}")),
            None,
        );
    }
    Ok(token_response(body))
}

pub(super) fn revoke_family(world: &mut World, family: usize, now: i64) {
    if world.auth.revoke_family(family) {
        let account = world.auth.families[family].account;
        if let Some(account_id) = world.accounts.get(account).map(|a| a.id.clone()) {
            world.effects.push(
                now,
                &account_id,
                "token.family_revoked",
                Some(format!("family-{family}")),
                None,
            );
        }
    }
}

fn exchange_code(
    world: &mut World,
    params: &QueryMap,
    client_id: &str,
    confidential: bool,
) -> Result<usize, ApiError> {
    let code = params
        .get("code")
        .ok_or_else(|| ApiError::invalid_request("code is required"))?;
    // Single use: the code is gone whatever happens next.
    let grant = world.auth.codes.remove(code).ok_or_else(|| {
        ApiError::invalid_grant("The authorization code is invalid or has expired.")
    })?;
    if grant.client_id != client_id {
        return Err(ApiError::invalid_grant(
            "The authorization code was issued to another client.",
        ));
    }
    if params.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(ApiError::invalid_grant(
            "The redirect_uri does not match the authorization request.",
        ));
    }
    match (&grant.challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if computed != *challenge {
                return Err(ApiError::invalid_grant("PKCE verification failed."));
            }
        }
        (Some(_), None) => {
            return Err(ApiError::invalid_grant("code_verifier is required (PKCE)."));
        }
        (None, _) if !confidential => {
            return Err(invalid_client("Client authentication failed"));
        }
        (None, _) => {}
    }
    Ok(world
        .auth
        .new_family(grant.account, client_id, grant.scopes, !confidential))
}

fn refresh(
    world: &mut World,
    params: &QueryMap,
    client_id: &str,
    confidential: bool,
    now: i64,
) -> Result<usize, ApiError> {
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| ApiError::invalid_request("refresh_token is required"))?;
    let hash = jwt::token_hash(presented);
    let Some(rec) = world.auth.refresh.get(&hash).cloned() else {
        return Err(ApiError::invalid_grant(
            "The refresh token is invalid or expired.",
        ));
    };
    let family = world.auth.families[rec.family].clone();
    if family.client_id != client_id {
        return Err(ApiError::invalid_grant(
            "The refresh token was issued to another client.",
        ));
    }
    if !confidential && !family.public_client {
        return Err(invalid_client("Client authentication failed"));
    }
    if family.revoked {
        return Err(ApiError::invalid_grant(
            "The refresh token is invalid or expired.",
        ));
    }
    if rec.used {
        // Replay of a rotated token: punish the whole family (reference §1.4).
        revoke_family(world, rec.family, now);
        return Err(ApiError::invalid_grant(
            "The refresh token is invalid or expired.",
        ));
    }
    if now - rec.issued_at > REFRESH_IDLE_MS {
        return Err(ApiError::invalid_grant(
            "The refresh token is invalid or expired.",
        ));
    }
    if let Some(r) = world.auth.refresh.get_mut(&hash) {
        r.used = true;
    }
    Ok(rec.family)
}

fn poll_device(world: &mut World, params: &QueryMap, client_id: &str) -> Result<usize, ApiError> {
    let code = params
        .get("device_code")
        .ok_or_else(|| ApiError::invalid_request("device_code is required"))?
        .to_owned();
    let Some(device) = world.auth.devices.get_mut(&code) else {
        return Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "The device code is invalid or has expired.",
        ));
    };
    if device.client_id != client_id {
        return Err(ApiError::invalid_grant(
            "The device code was issued to another client.",
        ));
    }
    device.polls += 1;
    // Approved when the verification page was visited, or automatically on the second poll.
    if !device.approved && device.polls < 2 {
        return Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            "The user has not yet approved this device.",
        ));
    }
    let (account, scopes) = (device.account, device.scopes);
    world.auth.devices.remove(&code);
    Ok(world.auth.new_family(account, client_id, scopes, true))
}
