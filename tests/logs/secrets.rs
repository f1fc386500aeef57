//! No access token, refresh token or client secret reaches a log line, at any level, nor a
//! Debug print of anything that holds one.

use std::time::Duration;

use crate::capture::capture;
use crate::support::api::TestApi;

const DAY: Duration = Duration::from_secs(25 * 3600);

#[tokio::test]
async fn no_token_or_client_secret_reaches_a_log_line_even_at_trace_level() {
    let capture = capture().await;

    let t = TestApi::start().await;
    let credentials = t.sandbox.credentials().clone();
    t.advance_clocks(DAY);
    let token = t
        .client
        .tokens()
        .access_token("default")
        .await
        .expect("refreshed");
    let stored = t.client.tokens().account("default").await.unwrap().unwrap();
    // A failed refresh too: revoke, expire, refuse.
    t.sandbox
        .admin()
        .revoke_tokens(&t.sandbox.admin().primary_account())
        .unwrap();
    t.advance_clocks(DAY);
    let _ = t.client.tokens().access_token("default").await.unwrap_err();

    let logs = capture.text();
    assert!(
        logs.contains("access token refreshed"),
        "the capture works: {logs}"
    );
    let secrets = [
        credentials.client_secret.clone(),
        credentials.refresh_token.clone(),
        token.bearer().to_owned(),
        secrecy::ExposeSecret::expose_secret(stored.refresh_token.as_ref().unwrap()).to_owned(),
    ];
    for secret in secrets {
        assert!(!logs.contains(&secret), "a secret reached the logs");
    }
    // Debug output of everything holding secrets is redacted too.
    let debug = format!(
        "{token:?} {stored:?} {credentials:?} {:?}",
        t.client.tokens().config()
    );
    assert!(!debug.contains(token.bearer()) && !debug.contains(&credentials.client_secret));
    t.stop().await;
}
