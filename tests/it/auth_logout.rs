//! `ctct-sync auth logout` run as a process against the sandbox: the tokens are revoked at
//! the sandbox's revocation endpoint and forgotten in the store, `auth status` then shows
//! the account needing authorisation, and clients already holding its token stop using it;
//! an unknown account is named; a failing revocation endpoint leaves everything in place
//! unless `--local-only` is given.

use std::time::Duration;

use ctct_sandbox::FaultSpec;
use ctct_sync::api::{ApiError, AuthError};
use ctct_sync::command::outcome::Outcome;
use ctct_sync::store::tokens::AccountState;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::auth_cli::auth;
use crate::support::api::TestApi;
use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;

/// What a finished command printed.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn run(t: &TestApi, args: &[&str]) -> Run {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        auth(t, args).env("RUST_LOG", "trace").output(),
    )
    .await
    .expect("the command ends within the deadline")
    .expect("the command ran");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The stored (refresh, access) token values of `account`.
async fn stored_tokens(t: &TestApi, account: &str) -> (String, String) {
    let row = t
        .client
        .tokens()
        .account(account)
        .await
        .unwrap()
        .expect("stored");
    (
        row.refresh_token
            .expect("a refresh token")
            .expose_secret()
            .to_owned(),
        row.access_token
            .expect("an access token")
            .expose_secret()
            .to_owned(),
    )
}

/// Presents `refresh` at the sandbox's token endpoint (storing the grant as `probe`).
async fn try_refresh(t: &TestApi, refresh: &str) -> Result<i64, AuthError> {
    t.another_process()
        .tokens()
        .import_refresh_token("probe", SecretString::from(refresh.to_owned()))
        .await
}

fn assert_no_secret(t: &TestApi, texts: &[&str], secrets: &[&str]) {
    let client_secret = t.sandbox.credentials().client_secret.clone();
    for text in texts {
        for secret in secrets.iter().chain([&client_secret.as_str()]) {
            assert!(!text.contains(secret), "a secret reached the output");
        }
    }
}

fn needs_reauthorisation(result: Result<impl std::fmt::Debug, ApiError>) -> bool {
    matches!(
        result,
        Err(ApiError::Auth(AuthError::ReauthRequired { .. }))
    )
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    logout_revokes_the_tokens_at_the_server_and_forgets_them
);
async fn logout_revokes_the_tokens_at_the_server_and_forgets_them(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    // This client stands for a running daemon: it holds the account's access token.
    t.api()
        .get_user_privileges()
        .await
        .expect("the account works");
    let (refresh, access) = stored_tokens(&t, "default").await;

    let out = run(&t, &["logout"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout.contains("account `default` logged out")
            && out
                .stdout
                .contains("access token and refresh token revoked"),
        "{}",
        out.stdout
    );

    // Revoked at the sandbox: the refresh token is refused at its token endpoint.
    let refused = try_refresh(&t, &refresh).await.expect_err("revoked");
    assert!(
        matches!(&refused, AuthError::Refused { detail } if detail.contains("invalid_grant")),
        "{refused}"
    );
    let effects: Vec<String> = t
        .sandbox
        .admin()
        .effects()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        effects.iter().any(|k| k == "token.family_revoked"),
        "{effects:?}"
    );
    // Forgotten in the store; the account stays listed, needing authorisation.
    let row = t
        .client
        .tokens()
        .account("default")
        .await
        .unwrap()
        .expect("listed");
    assert_eq!(row.state, AccountState::ReauthRequired);
    assert!(row.refresh_token.is_none() && row.access_token.is_none());
    let status = run(&t, &["status"]).await;
    assert!(status.ok, "{}", status.stderr);
    let line = status
        .stdout
        .lines()
        .find(|l| l.starts_with("default "))
        .unwrap_or_else(|| panic!("a line for the account:\n{}", status.stdout));
    assert!(line.contains("reauth_required"), "{}", status.stdout);
    assert!(
        status
            .stdout
            .contains("logged out with `ctct-sync auth logout`")
            && status
                .stdout
                .contains("run `ctct-sync auth login --account default`"),
        "{}",
        status.stdout
    );
    // The client holding the old access token stops: the API refuses it, and the store
    // says the account needs authorisation.
    assert!(needs_reauthorisation(t.api().get_user_privileges().await));
    assert_no_secret(
        &t,
        &[&out.stdout, &out.stderr, &status.stdout, &status.stderr],
        &[&refresh, &access],
    );

    // Logging out again changes nothing.
    let again = run(&t, &["logout"]).await;
    assert!(again.ok, "{}", again.stderr);
    assert!(
        again
            .stdout
            .contains("holds no tokens (logged out already)"),
        "{}",
        again.stdout
    );
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    logout_of_an_unknown_account_names_it_and_changes_nothing
);
async fn logout_of_an_unknown_account_names_it_and_changes_nothing(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    let out = run(&t, &["logout", "--account", "nobody"]).await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("account `nobody` is not known to this store (`default` is)"),
        "{}",
        out.stderr
    );
    let row = t.client.tokens().account("default").await.unwrap().unwrap();
    assert_eq!(row.state, AccountState::Active);
    assert!(t.client.tokens().account("nobody").await.unwrap().is_none());
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_failing_revocation_endpoint_keeps_the_tokens_and_local_only_forgets_them
);
async fn a_failing_revocation_endpoint_keeps_the_tokens_and_local_only_forgets_them(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    t.sandbox
        .admin()
        .inject_fault(
            FaultSpec::status(503)
                .path_prefix("/oauth2/default/v1/revoke")
                .times(10),
        )
        .unwrap();
    let (refresh, access) = stored_tokens(&t, "default").await;

    let out = run(&t, &["logout"]).await;
    assert!(!out.ok, "{}", out.stdout);
    for needed in [
        "the access token of account `default` was not revoked",
        "HTTP 503",
        "nothing was forgotten",
        "--local-only",
    ] {
        assert!(out.stderr.contains(needed), "{needed}: {}", out.stderr);
    }
    assert_eq!(
        stored_tokens(&t, "default").await,
        (refresh.clone(), access.clone()),
        "the tokens stay in place"
    );
    let row = t.client.tokens().account("default").await.unwrap().unwrap();
    assert_eq!(row.state, AccountState::Active);
    t.api()
        .get_user_privileges()
        .await
        .expect("the account still works");

    // --local-only does not call the server: the tokens are forgotten here only.
    let mark = t
        .sandbox
        .admin()
        .requests_since(0, usize::MAX)
        .last()
        .map_or(0, |r| r.seq);
    let local = run(&t, &["logout", "--local-only"]).await;
    assert!(local.ok, "{}", local.stderr);
    assert!(
        local.stdout.contains("account `default` logged out here"),
        "{}",
        local.stdout
    );
    assert!(
        local.stderr.contains("the tokens were not revoked"),
        "{}",
        local.stderr
    );
    assert!(
        t.sandbox.admin().requests_since(mark, 100).is_empty(),
        "no request reached the sandbox"
    );
    let row = t.client.tokens().account("default").await.unwrap().unwrap();
    assert_eq!(row.state, AccountState::ReauthRequired);
    assert!(row.refresh_token.is_none() && row.access_token.is_none());
    assert!(
        row.state_reason
            .as_deref()
            .is_some_and(|r| r.contains("not revoked")),
        "{:?}",
        row.state_reason
    );
    // Nobody told the server, so it still accepts the access token this client holds; the
    // client reads the store again within `recheck_stored` (a minute) and stops then.
    t.clock.advance(chrono::Duration::seconds(61));
    assert!(needs_reauthorisation(t.api().get_user_privileges().await));
    assert_no_secret(
        &t,
        &[&out.stdout, &out.stderr, &local.stdout, &local.stderr],
        &[&refresh, &access],
    );
    // The refresh token was not revoked: it still works at the token endpoint.
    try_refresh(&t, &refresh)
        .await
        .expect("the forgotten refresh token is still valid at the server");
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_running_daemon_parks_the_commands_of_an_account_logged_out_elsewhere
);
async fn a_running_daemon_parks_the_commands_of_an_account_logged_out_elsewhere(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    d.publish("before", "list.list", json!({})).await;
    assert_eq!(d.result("before").await.outcome, Outcome::Succeeded);

    let out = d
        .command(&["auth", "logout"])
        .output()
        .await
        .expect("the command ran");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    d.publish("after", "list.list", json!({})).await;
    let announced = d
        .receive_until(Duration::from_secs(30), |d| {
            d.events.iter().any(|(key, body)| {
                key == "event.account.reauth_required" && body["account"] == "default"
            })
        })
        .await;
    assert!(announced, "announced: {:?}", d.events);
    d.drain(Duration::from_millis(1000)).await;
    assert!(
        d.received.iter().all(|r| r.command_id != "after"),
        "parked, not failed"
    );

    d.api.reauthorise().await;
    let result = d.result("after").await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{:?}", result.error);
    d.stop().await;
}
