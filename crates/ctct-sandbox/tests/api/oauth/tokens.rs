//! Tokens: rotating refresh tokens and replay revocation, client authentication, JWT access
//! tokens and their expiry on the sandbox clock, 401 shapes, scopes (403), revocation.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::Value;

use super::{form, refresh, status_with, token};
use crate::harness::{Env, read};

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replayed_one_revokes_the_whole_family() {
    let env = Env::start().await;
    let rt1 = env.sandbox.credentials().refresh_token.clone();

    let first = refresh(&env, &rt1).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let rt2 = first.body["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    let at1 = first.body["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    assert_ne!(rt1, rt2, "each use returns a new refresh token");
    assert_eq!(first.body["token_type"], "Bearer");
    assert_eq!(first.body["expires_in"], 86_400);
    let second = refresh(&env, &rt2).await;
    assert_eq!(second.status, 200, "{}", second.text);
    let rt3 = second.body["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    let at2 = second.body["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    assert_eq!(status_with(&env, &at1, "/contacts").await, 200);

    let replay = refresh(&env, &rt1).await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.body["error"], "invalid_grant");
    assert!(replay.body["error_description"].is_string());

    let after = refresh(&env, &rt3).await;
    assert_eq!(
        after.status, 400,
        "the newest token of the family is dead too"
    );
    assert_eq!(after.body["error"], "invalid_grant");
    for access in [&at1, &at2] {
        assert_eq!(status_with(&env, access, "/contacts").await, 401);
    }
    let kinds: Vec<String> = env.admin.effects().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "token.refreshed").count(), 2);
    assert!(kinds.iter().any(|k| k == "token.family_revoked"));
    assert_eq!(env.admin.token_requests_count(), 4);
}

#[tokio::test]
async fn client_authentication_accepts_basic_form_fields_and_query_parameters() {
    let env = Env::start().await;
    let creds = env.sandbox.credentials().clone();
    let r = token(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &creds.refresh_token),
            ("client_id", &creds.client_id),
            ("client_secret", &creds.client_secret),
        ],
        false,
    )
    .await;
    assert_eq!(r.status, 200, "form fields: {}", r.text);
    let rt = r.body["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    let url = format!(
        "{}?{}",
        creds.token_url,
        form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
    );
    let pair = STANDARD.encode(format!("{}:{}", creds.client_id, creds.client_secret));
    let r = read(
        env.http
            .post(url)
            .header("authorization", format!("Basic {pair}"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(r.status, 200, "query parameters: {}", r.text);
    let rt = r.body["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    let wrong = read(
        env.http
            .post(&creds.token_url)
            .header(
                "authorization",
                format!(
                    "Basic {}",
                    STANDARD.encode(format!("{}:nope", creds.client_id))
                ),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
            ]))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body["error"], "invalid_client");
    let no_secret = token(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &creds.client_id),
        ],
        false,
    )
    .await;
    assert_eq!(
        no_secret.status, 401,
        "a confidential grant needs the secret"
    );
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

#[tokio::test]
async fn access_tokens_are_jwts_that_expire_after_24_hours_of_sandbox_time() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    let r = refresh(&env, &env.sandbox.credentials().refresh_token).await;
    let access = r.body["access_token"].as_str().expect("access").to_owned();
    assert_eq!(access.split('.').count(), 3);
    let c = claims(&access);
    assert_eq!(
        c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
        86_400
    );
    for claim in [
        "iss",
        "sub",
        "jti",
        "platform_user_id",
        "encoded_account_id",
        "cid",
    ] {
        assert!(c[claim].is_string(), "{claim} in {c}");
    }
    assert_eq!(c["encoded_account_id"], env.account.as_str());
    assert!(
        c["scp"]
            .as_array()
            .expect("scp")
            .contains(&Value::from("contact_data"))
    );

    env.admin.advance_clock(Duration::from_secs(86_399));
    assert_eq!(status_with(&env, &access, "/contacts").await, 200);
    env.admin.advance_clock(Duration::from_secs(1));
    let expired = env.call_as(&access, Method::GET, "/contacts", None).await;
    assert_eq!(expired.status, 401);
    assert_eq!(
        expired.body,
        serde_json::json!({"error_key": "unauthorized", "error_message": "Unauthorized"})
    );
    assert_eq!(
        expired.headers["www-authenticate"],
        "Bearer realm=api.cc.email"
    );
}

#[tokio::test]
async fn missing_or_unknown_tokens_get_the_single_object_401() {
    let env = Env::start().await;
    let r = read(
        env.http
            .get(env.url("/contacts"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error_key"], "unauthorized");
    let r = env
        .call_as("not-a-token", Method::GET, "/contacts", None)
        .await;
    assert_eq!(r.status, 401);
    assert!(r.body.is_object());
}

#[tokio::test]
async fn each_endpoint_demands_its_scope_and_privileges_need_only_a_token() {
    let env = Env::start().await;
    let read_only = env.token_with("account_read");
    for (method, path, status) in [
        (Method::GET, "/contacts", 403),
        (Method::GET, "/contact_lists", 403),
        (Method::GET, "/contact_custom_fields", 403),
        (Method::GET, "/activities", 403),
        (Method::GET, "/emails", 403),
        (Method::GET, "/account/summary", 200),
        (Method::GET, "/account/emails", 200),
        (Method::GET, "/account/user/privileges", 200),
    ] {
        let r = env.call_as(&read_only, method.clone(), path, None).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        if status == 403 {
            assert_eq!(r.body[0]["error_key"], "forbidden", "array body");
        }
    }
    let r = env
        .call_as(
            &read_only,
            Method::POST,
            "/account/emails",
            Some(serde_json::json!({"email_address": "x@y.example"})),
        )
        .await;
    assert_eq!(r.status, 403, "POST needs account_update");
    let bare = env.token_with("offline_access");
    assert_eq!(
        status_with(&env, &bare, "/account/user/privileges").await,
        200
    );
    assert_eq!(status_with(&env, &bare, "/account/summary").await, 403);
}

#[tokio::test]
async fn revoked_accounts_lose_every_token_until_reauthorised() {
    let env = Env::start().await;
    let rt = env.sandbox.credentials().refresh_token.clone();
    let revoked = env
        .admin
        .revoke_tokens(&env.account)
        .expect("known account");
    assert!(
        revoked >= 2,
        "the start grant and the harness grant: {revoked}"
    );
    assert_eq!(env.get("/contacts").await.status, 401);
    assert_eq!(refresh(&env, &rt).await.body["error"], "invalid_grant");
    let fresh = env
        .admin
        .issue_refresh_token(&env.account)
        .expect("re-authorised");
    let r = refresh(&env, &fresh).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn refresh_tokens_unused_for_180_days_expire() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    let rt = env.sandbox.credentials().refresh_token.clone();
    env.admin.advance_clock(Duration::from_secs(181 * 86_400));
    let r = refresh(&env, &rt).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_grant");
}
