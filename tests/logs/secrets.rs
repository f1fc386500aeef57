//! No access token, refresh token, client secret or database password reaches a log line, at
//! any level, nor a Debug print of anything that holds one.

use std::time::Duration;

use ctct_sync::store::Store;
use secrecy::SecretString;

use crate::capture::capture;
use crate::support::api::TestApi;
use crate::support::pg::PgTestDb;

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

/// The state store on PostgreSQL, its URL carrying a password (the local server trusts the
/// user and ignores it): the password reaches no log line, at any level, nor the errors of a
/// store that cannot be opened, nor their Debug prints.
#[tokio::test]
async fn a_postgresql_password_reaches_no_log_line_and_no_error() {
    let capture = capture().await;

    let db = PgTestDb::create().await;
    let password = format!("pg-secret-{}", uuid::Uuid::new_v4().simple());
    let mut url = url::Url::parse(db.url()).unwrap();
    url.set_password(Some(&password)).unwrap();
    let t = TestApi::start_on_postgres(url.as_str()).await;
    t.advance_clocks(DAY);
    t.client
        .tokens()
        .access_token("default")
        .await
        .expect("refreshed through the PostgreSQL store");
    // A store that cannot be opened: a database that does not exist.
    let mut missing = url.clone();
    missing.set_path(&format!("{}_missing", db.name()));
    let error =
        match Store::connect_postgres(&SecretString::from(missing.to_string()), "ctct_state").await
        {
            Ok(_) => panic!("a missing database opens"),
            Err(error) => error,
        };
    tracing::error!(error = %error, "the state store could not be opened");

    let logs = capture.text();
    assert!(
        logs.contains("access token refreshed"),
        "the capture works: {logs}"
    );
    let shown = format!("{logs}\n{error}\n{error:?}");
    assert!(!shown.contains(&password), "the password was shown");
    assert!(
        format!("{error}").contains("***"),
        "the URL is named, redacted: {error}"
    );
    t.stop().await;
}
