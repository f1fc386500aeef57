//! Browser and device flows: authorization code with PKCE (right and wrong verifier,
//! single-use codes, 5-minute expiry), offline_access, authorize's refusals, device flow.

use std::time::Duration;

use serde_json::Value;

use super::{REDIRECT, authorize, form, param, pkce, status_with, token};
use crate::harness::{Env, Resp, read};

#[tokio::test]
async fn the_code_flow_with_pkce_accepts_the_right_verifier_without_a_secret() {
    let env = Env::start().await;
    let verifier = "a-long-random-verifier-with-enough-entropy-0123456789";
    let pairs = authorize(
        &env,
        &[
            ("scope", "contact_data offline_access"),
            ("code_challenge", &pkce(verifier)),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(param(&pairs, "state"), Some("xyz"));
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
    assert_eq!(exchange.body["scope"], "contact_data offline_access");
    let access = exchange.body["access_token"].as_str().expect("access");
    assert_eq!(status_with(&env, access, "/contacts").await, 200);
    assert_eq!(
        status_with(&env, access, "/emails").await,
        403,
        "no campaign_data"
    );
    // A public client refreshes with its client_id only.
    let rt = exchange.body["refresh_token"]
        .as_str()
        .expect("offline_access");
    let refreshed = token(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &client_id),
        ],
        false,
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_rejected_and_the_code_works_only_once() {
    let env = Env::start().await;
    let verifier = "the-right-verifier-0123456789-0123456789-abcdef";
    let pairs = authorize(
        &env,
        &[
            ("scope", "contact_data"),
            ("code_challenge", &pkce(verifier)),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let code = param(&pairs, "code").expect("a code").to_owned();
    let exchange = |v: &'static str| {
        let code = code.clone();
        let env = &env;
        async move {
            token(
                env,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", v),
                ],
                true,
            )
            .await
        }
    };
    let wrong = exchange("not-the-verifier").await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.body["error"], "invalid_grant");
    let reused = exchange("the-right-verifier-0123456789-0123456789-abcdef").await;
    assert_eq!(reused.status, 400, "codes are single-use");
    assert_eq!(reused.body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_refresh_token_comes_only_with_offline_access_and_codes_expire_after_five_minutes() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    let pairs = authorize(&env, &[("scope", "contact_data campaign_data")]).await;
    let code = param(&pairs, "code").expect("code").to_owned();
    let ok = token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        true,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(
        ok.body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );

    let pairs = authorize(&env, &[("scope", "contact_data offline_access")]).await;
    let code = param(&pairs, "code").expect("code").to_owned();
    env.admin.advance_clock(Duration::from_secs(301));
    let late = token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        true,
    )
    .await;
    assert_eq!(late.status, 400);
    assert_eq!(late.body["error"], "invalid_grant");
}

#[tokio::test]
async fn authorize_refuses_foreign_redirects_and_missing_state_and_reports_bad_scopes() {
    let env = Env::start().await;
    let creds = env.sandbox.credentials();
    let url = format!(
        "{}?{}",
        creds.authorize_url,
        form(&[
            ("client_id", &creds.client_id),
            ("redirect_uri", "https://evil.example/cb"),
            ("response_type", "code"),
            ("state", "s"),
            ("scope", "contact_data"),
        ])
    );
    let r = read(env.http.get(url).send().await.expect("answers")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_request");
    let url = format!(
        "{}?{}",
        creds.authorize_url,
        form(&[
            ("client_id", &creds.client_id),
            ("redirect_uri", "http://localhost:1234/cb"),
            ("response_type", "code"),
            ("scope", "contact_data"),
        ])
    );
    let r = read(env.http.get(url).send().await.expect("answers")).await;
    assert_eq!(r.status, 400, "state is required");
    let pairs = authorize(&env, &[("scope", "contact_data bogus")]).await;
    assert_eq!(param(&pairs, "error"), Some("invalid_scope"));
    assert_eq!(param(&pairs, "state"), Some("xyz"));
    let pairs = authorize(
        &env,
        &[
            ("scope", "contact_data"),
            ("code_challenge", "abc"),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    assert_eq!(param(&pairs, "error"), Some("invalid_request"));
}

async fn start_device(env: &Env) -> Value {
    let creds = env.sandbox.credentials();
    let r = read(
        env.http
            .post(&creds.device_authorize_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("client_id", &creds.client_id),
                ("scope", "contact_data offline_access"),
            ]))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for key in [
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    ] {
        assert!(r.body.get(key).is_some(), "{key} in {}", r.text);
    }
    r.body
}

async fn poll_device(env: &Env, device_code: &str) -> Resp {
    let client_id = env.sandbox.credentials().client_id.clone();
    token(
        env,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", &client_id),
        ],
        false,
    )
    .await
}

#[tokio::test]
async fn the_device_flow_is_pending_until_the_page_is_visited_or_the_second_poll() {
    let env = Env::start().await;
    let visited = start_device(&env).await;
    let code = visited["device_code"].as_str().expect("code");
    let first = poll_device(&env, code).await;
    assert_eq!(first.status, 400);
    assert_eq!(first.body["error"], "authorization_pending");
    let page = env
        .http
        .get(visited["verification_uri_complete"].as_str().expect("uri"))
        .send()
        .await
        .expect("answers");
    assert_eq!(page.status(), 200);
    let approved = poll_device(&env, code).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert!(approved.body["refresh_token"].is_string());

    let unvisited = start_device(&env).await;
    let code = unvisited["device_code"].as_str().expect("code");
    assert_eq!(
        poll_device(&env, code).await.body["error"],
        "authorization_pending"
    );
    assert_eq!(
        poll_device(&env, code).await.status,
        200,
        "auto-approved on the second poll"
    );
}
