//! The client's send path against the sandbox: 429s of both kinds, 401 → one refresh,
//! safe retries, one budget shared by every account and surviving restarts, real pacing.

use std::time::Duration;

use ctct_sandbox::FaultSpec;
use ctct_sync::api::ApiError;
use ctct_sync::api::model::contact_input::{ContactCreate, EmailAddressInput};
use ctct_sync::api::model::contacts::Source;
use secrecy::SecretString;

use crate::support::api::TestApi;

fn requests_to(t: &TestApi, prefix: &str) -> usize {
    t.sandbox
        .admin()
        .request_log()
        .iter()
        .filter(|r| r.path.starts_with(prefix))
        .count()
}

#[tokio::test]
async fn throttled_answers_are_waited_out_and_retried() {
    let t = TestApi::start().await;
    t.sandbox
        .admin()
        .inject_fault(FaultSpec::throttled().path_prefix("/v3/account").times(2))
        .unwrap();
    let privileges = t
        .api()
        .get_user_privileges()
        .await
        .expect("succeeds after two 429s");
    assert!(!privileges.is_empty());
    assert_eq!(requests_to(&t, "/v3/account/user/privileges"), 3);
    assert_eq!(
        t.client
            .counters()
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    t.stop().await;
}

#[tokio::test]
async fn quota_exceeded_stops_all_spending_until_the_reset() {
    let t = TestApi::start().await;
    t.sandbox
        .admin()
        .inject_fault(FaultSpec::quota_exceeded().path_prefix("/v3/").times(1))
        .unwrap();
    let error = t.api().get_user_privileges().await.unwrap_err();
    let ApiError::QuotaExhausted { resets_at } = error else {
        panic!("expected QuotaExhausted, got {error}");
    };
    assert_eq!(
        resets_at.time(),
        chrono::NaiveTime::MIN,
        "resets at 00:00 UTC"
    );
    let sent = t.sandbox.admin().request_log().len();
    for _ in 0..3 {
        assert!(matches!(
            t.api().get_user_privileges().await,
            Err(ApiError::QuotaExhausted { .. })
        ));
    }
    assert_eq!(
        t.sandbox.admin().request_log().len(),
        sent,
        "nothing more was sent"
    );
    assert!(
        matches!(
            t.another_process()
                .account("default")
                .get_user_privileges()
                .await,
            Err(ApiError::QuotaExhausted { .. })
        ),
        "a restarted process knows too"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_calls_rejected_with_401_share_one_refresh_and_are_each_retried_once() {
    let t = TestApi::start().await;
    // Only the sandbox's clock moves: ctct-sync believes its token is fine and learns
    // otherwise from the 401s.
    t.sandbox
        .admin()
        .advance_clock(Duration::from_secs(25 * 3600));
    let before = t.sandbox.admin().token_requests_count();
    let mut calls = Vec::new();
    for _ in 0..50 {
        let api = t.api();
        calls.push(tokio::spawn(async move { api.get_user_privileges().await }));
    }
    for call in calls {
        call.await.unwrap().expect("succeeds after the refresh");
    }
    assert_eq!(
        t.sandbox.admin().token_requests_count() - before,
        1,
        "one refresh for all"
    );
    let unauthorized = t
        .sandbox
        .admin()
        .request_log()
        .iter()
        .filter(|r| r.status == 401)
        .count();
    assert!((1..=50).contains(&unauthorized), "{unauthorized}");
    assert_eq!(
        requests_to(&t, "/v3/account/user/privileges"),
        50 + unauthorized,
        "each 401 retried once"
    );
    t.stop().await;
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_but_a_create_is_never_repeated_blindly() {
    let t = TestApi::start().await;
    t.sandbox
        .admin()
        .inject_fault(
            FaultSpec::status(503)
                .method("GET")
                .path_prefix("/v3/account")
                .times(2),
        )
        .unwrap();
    t.api()
        .get_user_privileges()
        .await
        .expect("a read survives two 503s");
    assert_eq!(requests_to(&t, "/v3/account/user/privileges"), 3);

    t.sandbox
        .admin()
        .inject_fault(
            FaultSpec::drop_connection()
                .method("POST")
                .path_prefix("/v3/contacts")
                .after_effect()
                .times(1),
        )
        .unwrap();
    let mut create = ContactCreate::new(Source::Account);
    create.email_address = Some(EmailAddressInput::new("blind@example.com", None));
    let error = t.api().create_contact(&create).await.unwrap_err();
    assert!(
        matches!(
            error,
            ApiError::Transport {
                maybe_applied: true,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        requests_to(&t, "/v3/contacts"),
        1,
        "the create was sent once"
    );
    let found = t
        .api()
        .find_contact_by_email("blind@example.com", &[], true)
        .await
        .unwrap();
    assert!(
        found.is_some(),
        "the effect happened; the caller reads before acting again"
    );
    t.stop().await;
}

#[tokio::test]
async fn one_budget_is_shared_by_every_account_and_survives_a_restart() {
    let t = TestApi::start_with(ctct_sandbox::SandboxOptions::for_tests(), 1000, 10).await;
    let (_, refresh) = t.sandbox.admin().add_account();
    t.client
        .tokens()
        .import_refresh_token("second", SecretString::from(refresh))
        .await
        .unwrap();
    for _ in 0..5 {
        t.api().get_user_privileges().await.unwrap();
        t.client
            .account("second")
            .get_user_privileges()
            .await
            .unwrap();
    }
    let sent = t.sandbox.admin().request_log().len();
    assert!(matches!(
        t.api().get_user_privileges().await,
        Err(ApiError::QuotaExhausted { .. })
    ));
    assert!(matches!(
        t.client.account("second").get_user_privileges().await,
        Err(ApiError::QuotaExhausted { .. })
    ));
    let restarted = t.another_process();
    assert!(matches!(
        restarted.account("second").get_user_privileges().await,
        Err(ApiError::QuotaExhausted { .. })
    ));
    assert_eq!(
        t.sandbox.admin().request_log().len(),
        sent,
        "our own count stopped us first"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_real_limits_no_request_is_ever_throttled() {
    let t = TestApi::start_limited(4, 10_000).await;
    let mut calls = Vec::new();
    for _ in 0..12 {
        let api = t.api();
        calls.push(tokio::spawn(async move { api.get_user_privileges().await }));
    }
    for call in calls {
        call.await.unwrap().expect("paced, never refused");
    }
    let log = t.sandbox.admin().request_log();
    assert!(
        log.iter().all(|r| r.status != 429),
        "no 429 at 4 requests per second"
    );
    assert_eq!(
        t.client
            .counters()
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    t.stop().await;
}
