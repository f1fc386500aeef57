//! The revocation endpoint (RFC 7009): a revoked refresh token ends its grant, a revoked
//! access token only itself; unknown and already revoked tokens answer 200; client
//! authentication as at the token endpoint.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{REDIRECT, authorize, form, param, pkce, refresh, status_with, token};
use crate::harness::{Env, Resp, read};

/// POST to the revocation endpoint with `pairs`; `secret` is sent with HTTP Basic when given.
async fn revoke(env: &Env, pairs: &[(&str, &str)], secret: Option<&str>) -> Resp {
    let creds = env.sandbox.credentials();
    let mut request = env
        .http
        .post(&creds.revoke_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some(secret) = secret {
        let pair = format!("{}:{secret}", creds.client_id);
        request = request.header("authorization", format!("Basic {}", STANDARD.encode(pair)));
    }
    read(
        request
            .send()
            .await
            .expect("the revocation endpoint answers"),
    )
    .await
}

/// A fresh confidential grant: (refresh token, access token).
async fn grant(env: &Env) -> (String, String) {
    let first = refresh(env, &env.sandbox.credentials().refresh_token).await;
    assert_eq!(first.status, 200, "{}", first.text);
    (
        first.body["refresh_token"]
            .as_str()
            .expect("rotated")
            .to_owned(),
        first.body["access_token"]
            .as_str()
            .expect("access")
            .to_owned(),
    )
}

#[tokio::test]
async fn a_revoked_refresh_token_is_refused_and_its_access_tokens_stop_working() {
    let env = Env::start().await;
    let secret = env.sandbox.credentials().client_secret.clone();
    let (rt, at) = grant(&env).await;
    assert_eq!(status_with(&env, &at, "/contacts").await, 200);

    let revoked = revoke(
        &env,
        &[("token", &rt), ("token_type_hint", "refresh_token")],
        Some(&secret),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(revoked.text.is_empty(), "no body: {}", revoked.text);

    let refused = refresh(&env, &rt).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.body["error"], "invalid_grant");
    assert_eq!(
        status_with(&env, &at, "/contacts").await,
        401,
        "the grant's access token is revoked with it"
    );
    let again = revoke(
        &env,
        &[("token", &rt), ("token_type_hint", "refresh_token")],
        Some(&secret),
    )
    .await;
    assert_eq!(
        again.status, 200,
        "an already revoked token: {}",
        again.text
    );
    let kinds: Vec<String> = env.admin.effects().into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "token.family_revoked")
            .count(),
        1,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_revoked_access_token_stops_alone_and_the_refresh_token_still_works() {
    let env = Env::start().await;
    let secret = env.sandbox.credentials().client_secret.clone();
    let (rt, at) = grant(&env).await;
    // The hint only orders the search: a wrong one still finds the access token.
    let revoked = revoke(
        &env,
        &[("token", &at), ("token_type_hint", "refresh_token")],
        Some(&secret),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(status_with(&env, &at, "/contacts").await, 401);
    let refreshed = refresh(&env, &rt).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let fresh = refreshed.body["access_token"].as_str().expect("access");
    assert_eq!(status_with(&env, fresh, "/contacts").await, 200);
}

#[tokio::test]
async fn unknown_tokens_answer_200_and_a_missing_token_or_bad_client_is_refused() {
    let env = Env::start().await;
    let secret = env.sandbox.credentials().client_secret.clone();
    let unknown = revoke(
        &env,
        &[("token", "never-issued"), ("token_type_hint", "bogus_hint")],
        Some(&secret),
    )
    .await;
    assert_eq!(unknown.status, 200, "{}", unknown.text);

    let missing = revoke(&env, &[("token_type_hint", "refresh_token")], Some(&secret)).await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.body["error"], "invalid_request");

    let (rt, at) = grant(&env).await;
    let wrong = revoke(&env, &[("token", &rt)], Some("not-the-secret")).await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    assert_eq!(wrong.body["error"], "invalid_client");
    let client_id = env.sandbox.credentials().client_id.clone();
    let without_secret = revoke(&env, &[("token", &rt), ("client_id", &client_id)], None).await;
    assert_eq!(
        without_secret.status, 401,
        "a confidential grant needs the secret: {}",
        without_secret.text
    );
    let anonymous = revoke(&env, &[("token", &rt)], None).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert_eq!(anonymous.body["error"], "invalid_client");
    assert_eq!(
        status_with(&env, &at, "/contacts").await,
        200,
        "refused revocations revoke nothing"
    );
    assert_eq!(refresh(&env, &rt).await.status, 200);
}

#[tokio::test]
async fn a_public_client_revokes_its_pkce_grant_with_its_client_id_alone() {
    let env = Env::start().await;
    let verifier = "another-long-random-verifier-with-entropy-9876543210";
    let pairs = authorize(
        &env,
        &[
            ("scope", "contact_data offline_access"),
            ("code_challenge", &pkce(verifier)),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let code = param(&pairs, "code").expect("a code").to_owned();
    let client_id = env.sandbox.credentials().client_id.clone();
    let exchange = token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", verifier),
        ],
        false,
    )
    .await;
    assert_eq!(exchange.status, 200, "{}", exchange.text);
    let rt = exchange.body["refresh_token"]
        .as_str()
        .expect("offline_access");
    let revoked = revoke(&env, &[("token", rt), ("client_id", &client_id)], None).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let refused = token(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &client_id),
        ],
        false,
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.body["error"], "invalid_grant");
}
