//! Fault injection: 5xx statuses, latency, dropped connections, 429s and token revocation,
//! for the next N requests or a seeded share, narrowed by method and path, before or after
//! the request's effect.

use std::time::Duration;

use ctct_sandbox::{FaultSpec, SandboxOptions};
use reqwest::Method;
use serde_json::json;

use super::harness::{ALL_SCOPES, Env, client, read};

fn new_contact(email: &str) -> serde_json::Value {
    json!({"create_source": "Account", "email_address": {"address": email}})
}

async fn exists(env: &Env, email: &str) -> bool {
    let r = env
        .get(&format!("/contacts?email={email}&status=all"))
        .await;
    !r.body["contacts"].as_array().expect("contacts").is_empty()
}

#[tokio::test]
async fn a_status_fault_answers_the_next_matching_requests_with_5xx_bodies() {
    let env = Env::start().await;
    env.admin
        .inject_fault(FaultSpec::status(503).times(2).path_prefix("/v3/contacts"))
        .expect("valid");
    assert_eq!(
        env.get("/contact_lists").await.status,
        200,
        "other paths are untouched"
    );
    let first = env.get("/contacts").await;
    assert_eq!(first.status, 503);
    assert_eq!(first.body["message"], "Service Unavailable");
    assert_eq!(env.get("/contacts").await.status, 503);
    assert_eq!(env.get("/contacts").await.status, 200, "only the next two");
    env.admin
        .inject_fault(FaultSpec::status(500))
        .expect("valid");
    let r = env.get("/contacts").await;
    assert_eq!(r.status, 500);
    assert!(
        r.body[0]["error_key"].is_string(),
        "500 uses the API's array shape"
    );
    env.admin
        .inject_fault(FaultSpec::status(504).method("POST"))
        .expect("valid");
    assert_eq!(env.get("/contacts").await.status, 200, "narrowed to POST");
    assert_eq!(
        env.post("/contacts", new_contact("a@example.com"))
            .await
            .status,
        504
    );
    assert!(
        !exists(&env, "a@example.com").await,
        "a fault before the effect changes nothing"
    );
    assert!(env.admin.inject_fault(FaultSpec::status(418)).is_err());
    let log = env.admin.request_log();
    assert_eq!(
        log.iter()
            .filter(|e| e.fault.as_deref() == Some("status"))
            .count(),
        4
    );
}

#[tokio::test]
async fn after_effect_faults_apply_the_write_and_then_fail_the_answer() {
    let env = Env::start().await;
    env.admin
        .inject_fault(FaultSpec::status(502).after_effect().method("POST"))
        .expect("valid");
    let r = read(
        env.http
            .post(env.url("/contacts"))
            .bearer_auth(&env.token)
            .header("x-ctct-command-id", "cmd-7")
            .json(&new_contact("written@example.com"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(r.status, 502);
    assert!(
        exists(&env, "written@example.com").await,
        "the write happened"
    );
    assert_eq!(env.admin.effects_for_command("cmd-7").len(), 1);
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error_for_the_client() {
    let env = Env::start().await;
    env.admin
        .inject_fault(FaultSpec::drop_connection())
        .expect("valid");
    let err = env
        .http
        .get(env.url("/contacts"))
        .bearer_auth(&env.token)
        .send()
        .await
        .expect_err("the connection is closed without an answer");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(
        err.is_request() || err.is_connect() || err.is_body(),
        "{err:?}"
    );
    assert_eq!(
        env.get("/contacts").await.status,
        200,
        "the next request is served"
    );
    assert_eq!(env.admin.request_log()[0].status, 0, "logged as unanswered");

    env.admin
        .inject_fault(
            FaultSpec::drop_connection()
                .after_effect()
                .path_prefix("/v3/contacts"),
        )
        .expect("valid");
    let err = env
        .http
        .post(env.url("/contacts"))
        .bearer_auth(&env.token)
        .json(&new_contact("lost-reply@example.com"))
        .send()
        .await;
    assert!(err.is_err(), "the reply is lost");
    assert!(
        exists(&env, "lost-reply@example.com").await,
        "but the contact was created"
    );
    let retry = env
        .post("/contacts", new_contact("lost-reply@example.com"))
        .await;
    assert_eq!(retry.status, 409, "a blind retry meets the conflict");
}

#[tokio::test]
async fn latency_before_the_effect_can_cancel_it_but_latency_after_cannot() {
    let env = Env::start().await;
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    env.admin
        .inject_fault(FaultSpec::latency(3_000))
        .expect("valid");
    let err = impatient
        .post(env.url("/contacts"))
        .bearer_auth(&env.token)
        .json(&new_contact("slow@example.com"))
        .send()
        .await
        .expect_err("times out");
    assert!(err.is_timeout());
    env.admin
        .inject_fault(FaultSpec::latency(3_000).after_effect())
        .expect("valid");
    let err = impatient
        .post(env.url("/contacts"))
        .bearer_auth(&env.token)
        .json(&new_contact("slow-after@example.com"))
        .send()
        .await
        .expect_err("times out");
    assert!(err.is_timeout());
    assert!(
        exists(&env, "slow-after@example.com").await,
        "the effect preceded the delay"
    );
    assert!(
        !exists(&env, "slow@example.com").await,
        "the client gave up before the effect"
    );
    env.admin
        .inject_fault(FaultSpec::latency(50))
        .expect("valid");
    let started = std::time::Instant::now();
    assert_eq!(env.get("/contacts").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn throttled_and_quota_faults_answer_in_the_real_429_shapes() {
    let env = Env::start().await;
    env.admin
        .inject_fault(FaultSpec::throttled())
        .expect("valid");
    env.admin
        .inject_fault(FaultSpec::quota_exceeded())
        .expect("valid");
    let r = env.get("/contacts").await;
    assert_eq!(
        (r.status, r.body["error_key"].as_str()),
        (429, Some("throttled"))
    );
    let r = env.get("/contacts").await;
    assert_eq!(
        (r.status, r.body["error_key"].as_str()),
        (429, Some("quota_exceeded"))
    );
    assert_eq!(env.get("/contacts").await.status, 200);
    assert_eq!(
        env.admin.requests_today(),
        1,
        "faulted requests do not count"
    );
}

#[tokio::test]
async fn a_revoke_fault_kills_the_family_of_the_presented_token() {
    let env = Env::start().await;
    let tokens = env
        .admin
        .issue_tokens(&env.account, ALL_SCOPES)
        .expect("tokens");
    env.admin
        .inject_fault(FaultSpec::revoke_tokens())
        .expect("valid");
    let r = env
        .call_as(&tokens.access_token, Method::GET, "/contacts", None)
        .await;
    assert_eq!(r.status, 401);
    let creds = env.sandbox.credentials();
    let refresh = read(
        client()
            .post(&creds.token_url)
            .basic_auth(&creds.client_id, Some(&creds.client_secret))
            .form_body(&tokens.refresh_token.clone().expect("offline_access"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(refresh.status, 400);
    assert_eq!(refresh.body["error"], "invalid_grant");
    assert_eq!(
        env.get("/contacts").await.status,
        200,
        "other families live on"
    );

    let tokens = env
        .admin
        .issue_tokens(&env.account, ALL_SCOPES)
        .expect("tokens");
    env.admin
        .inject_fault(FaultSpec::revoke_tokens().after_effect())
        .expect("valid");
    let r = env
        .call_as(
            &tokens.access_token,
            Method::POST,
            "/contacts",
            Some(new_contact("rv@example.com")),
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(
        exists(&env, "rv@example.com").await,
        "the write happened before the revocation"
    );

    env.admin
        .inject_fault(FaultSpec::revoke_tokens().path_prefix("/oauth2/"))
        .expect("valid");
    let r = read(
        client()
            .post(&creds.token_url)
            .basic_auth(&creds.client_id, Some(&creds.client_secret))
            .form_body(&creds.refresh_token)
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(
        r.body["error"], "invalid_grant",
        "on the token endpoint the refresh is refused"
    );
}

trait FormBody {
    fn form_body(self, refresh_token: &str) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, refresh_token: &str) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh_token)
                    .finish(),
            )
    }
}

#[tokio::test]
async fn a_ratio_fault_strikes_a_reproducible_share_of_requests() {
    async fn pattern() -> Vec<u16> {
        let env = Env::start_with(SandboxOptions::for_tests()).await;
        env.admin
            .inject_fault(
                FaultSpec::status(503)
                    .ratio(0.5, 7)
                    .path_prefix("/v3/account"),
            )
            .expect("valid");
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(env.get("/account/user/privileges").await.status);
        }
        statuses
    }
    let first = pattern().await;
    let failures = first.iter().filter(|s| **s == 503).count();
    assert!((10..=30).contains(&failures), "{failures} of 40");
    assert_eq!(first, pattern().await, "same seed, same pattern");
}
