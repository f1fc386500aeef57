//! OAuth2 tests: `tokens` (rotation and replay revocation, client authentication, JWT access
//! tokens and expiry, scopes), `flows` (authorization code with PKCE, device flow) and
//! `revocation` (RFC 7009); the helpers here talk to the token and authorize endpoints.

mod flows;
mod revocation;
mod tokens;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use sha2::{Digest, Sha256};

use super::harness::{Env, Resp, read};

pub(super) const REDIRECT: &str = "http://127.0.0.1:9/callback";

pub(super) fn form(pairs: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

/// POST to the token endpoint; `basic` sends the client secret with HTTP Basic.
pub(super) async fn token(env: &Env, pairs: &[(&str, &str)], basic: bool) -> Resp {
    let creds = env.sandbox.credentials();
    let mut request = env
        .http
        .post(&creds.token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form(pairs));
    if basic {
        let pair = format!("{}:{}", creds.client_id, creds.client_secret);
        request = request.header("authorization", format!("Basic {}", STANDARD.encode(pair)));
    }
    read(request.send().await.expect("token endpoint answers")).await
}

pub(super) async fn refresh(env: &Env, refresh_token: &str) -> Resp {
    token(
        env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        true,
    )
    .await
}

pub(super) async fn status_with(env: &Env, access_token: &str, path: &str) -> u16 {
    env.call_as(access_token, Method::GET, path, None)
        .await
        .status
}

/// GET authorize; returns the redirect's query pairs.
pub(super) async fn authorize(env: &Env, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let creds = env.sandbox.credentials();
    let mut pairs = vec![
        ("client_id", creds.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("state", "xyz"),
    ];
    pairs.extend_from_slice(extra);
    let url = format!("{}?{}", creds.authorize_url, form(&pairs));
    let response = env.http.get(url).send().await.expect("authorize answers");
    assert_eq!(response.status(), 302, "authorize redirects");
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    url::Url::parse(&location)
        .expect("a URL")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(super) fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub(super) fn pkce(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}
