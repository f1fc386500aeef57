//! Limits in Real mode: 429 `throttled` past the per-second window, 429 `quota_exceeded`
//! past the daily quota until 00:00 UTC of the sandbox clock, both per client id across
//! accounts, no rate-limit headers, 1 request/second on the token endpoint; Off lifts all.

use std::time::Duration;

use base64::Engine as _;
use ctct_sandbox::{LimitsMode, SandboxOptions};
use reqwest::Method;

use super::harness::{Env, read};

fn real(per_second: u32, per_day: u32) -> SandboxOptions {
    SandboxOptions {
        limits: LimitsMode::Real,
        per_second,
        per_day,
        ..SandboxOptions::for_tests()
    }
}

#[tokio::test]
async fn requests_beyond_the_per_second_window_are_throttled_without_limit_headers() {
    let env = Env::start_with(real(2, 1_000)).await;
    env.admin.freeze_clock();
    assert_eq!(env.get("/contacts").await.status, 200);
    assert_eq!(env.get("/contacts").await.status, 200);
    let r = env.get("/contacts").await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.body,
        serde_json::json!({"error_key": "throttled", "error_message": "Too Many Requests"})
    );
    for name in r.headers.keys() {
        let name = name.as_str();
        assert!(
            !name.contains("ratelimit") && name != "retry-after",
            "unexpected header {name}"
        );
    }
    env.admin.advance_clock(Duration::from_millis(999));
    assert_eq!(env.get("/contacts").await.status, 429);
    env.admin.advance_clock(Duration::from_millis(1));
    assert_eq!(env.get("/contacts").await.status, 200, "the window slid");
    assert_eq!(env.admin.requests_today(), 3, "429s do not count");
}

#[tokio::test]
async fn the_daily_quota_runs_out_and_comes_back_at_utc_midnight() {
    let env = Env::start_with(real(100, 3)).await;
    env.admin.freeze_clock();
    env.admin
        .set_clock("2024-03-10T23:59:58Z".parse().expect("instant"));
    for _ in 0..3 {
        assert_eq!(env.get("/contacts").await.status, 200);
    }
    let r = env.get("/contacts").await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.body,
        serde_json::json!({"error_key": "quota_exceeded", "error_message": "Limit Exceeded"})
    );
    env.admin.advance_clock(Duration::from_secs(1));
    assert_eq!(
        env.get("/contacts").await.status,
        429,
        "23:59:59 is still the same day"
    );
    env.admin.advance_clock(Duration::from_secs(1));
    assert_eq!(
        env.get("/contacts").await.status,
        200,
        "00:00:00 UTC starts a new day"
    );
    for _ in 0..2 {
        env.get("/contacts").await;
    }
    assert_eq!(env.get("/contacts").await.status, 429);
    let next = env.admin.start_new_day();
    assert_eq!(next.to_rfc3339(), "2024-03-12T00:00:00+00:00");
    assert_eq!(env.get("/contacts").await.status, 200);
}

#[tokio::test]
async fn limits_are_per_client_id_and_shared_by_every_account() {
    let env = Env::start_with(real(100, 2)).await;
    env.admin.freeze_clock();
    let (other, _) = env.admin.add_account();
    let other_token = env
        .admin
        .issue_tokens(&other, super::harness::ALL_SCOPES)
        .expect("tokens")
        .access_token;
    assert_eq!(env.get("/contacts").await.status, 200);
    assert_eq!(
        env.call_as(&other_token, Method::GET, "/contacts", None)
            .await
            .status,
        200
    );
    let r = env
        .call_as(&other_token, Method::GET, "/contacts", None)
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["error_key"], "quota_exceeded");
}

#[tokio::test]
async fn the_token_endpoint_takes_one_request_per_second_per_client() {
    let env = Env::start_with(real(4, 10_000)).await;
    env.admin.freeze_clock();
    let creds = env.sandbox.credentials().clone();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.client_id, creds.client_secret));
    let refresh = |rt: String| {
        let env = &env;
        let basic = basic.clone();
        let url = creds.token_url.clone();
        async move {
            read(
                env.http
                    .post(url)
                    .header("authorization", format!("Basic {basic}"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("grant_type=refresh_token&refresh_token={rt}"))
                    .send()
                    .await
                    .expect("answers"),
            )
            .await
        }
    };
    let first = refresh(creds.refresh_token.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let rt = first.body["refresh_token"].as_str().expect("rt").to_owned();
    let second = refresh(rt.clone()).await;
    assert_eq!(second.status, 429);
    assert_eq!(second.body["error"], "slow_down");
    env.admin.advance_clock(Duration::from_secs(1));
    assert_eq!(
        refresh(rt).await.status,
        200,
        "the refused request did not consume the token"
    );
    assert_eq!(
        env.admin.requests_today(),
        0,
        "token requests do not count toward the API quota"
    );
}

#[tokio::test]
async fn with_limits_off_bursts_go_through() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    for _ in 0..50 {
        assert_eq!(env.get("/account/user/privileges").await.status, 200);
    }
    env.admin.set_limits(LimitsMode::Real, 1, 100);
    assert_eq!(env.get("/account/user/privileges").await.status, 200);
    assert_eq!(
        env.get("/account/user/privileges").await.status,
        429,
        "limits can be switched at run time"
    );
}
