//! `ctct-sync auth …` run as a process against the sandbox: login (PKCE + loopback
//! redirect), device flow, import from stdin, status — and no secret on stdout or stderr.

use std::process::Stdio;
use std::time::Duration;

use ctct_sync::store::tokens::AccountState;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::api::TestApi;
use crate::support::engine::Engine;

/// `ctct-sync auth ARGS` against the test's sandbox and store, every stream piped.
pub(crate) fn auth(t: &TestApi, args: &[&str]) -> Command {
    let mut cmd = crate::support::ctct_sync_process(t.dir.path());
    cmd.arg("auth")
        .args(args)
        .envs(t.cli_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Reads stdout lines until one holds an http URL; returns it.
async fn url_from_stdout(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("stdout readable") {
            if let Some(start) = line.find("http://") {
                let url: String = line[start..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                return url.trim_end_matches(['.', ',', ')']).to_owned();
            }
        }
        String::new()
    })
    .await
    .expect("a URL within the deadline");
    if found.is_empty() {
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut err, &mut stderr).await;
        }
        panic!("the command printed no URL; stderr: {stderr}");
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found
}

async fn finish(child: Child) -> (bool, String) {
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the command ends within the deadline")
        .expect("the command ran");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    login_authorises_an_account_through_the_browser_redirect_with_pkce
);
async fn login_authorises_an_account_through_the_browser_redirect_with_pkce(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    let mut child = auth(&t, &["login", "--account", "browser"])
        .spawn()
        .unwrap();
    let authorize = url_from_stdout(&mut child).await;
    assert!(
        authorize.contains("code_challenge=") && authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    assert!(authorize.contains("offline_access"), "{authorize}");

    // The "browser": follow the sandbox's redirect to ctct-sync's loopback listener.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let approved = browser.get(&authorize).send().await.unwrap();
    assert_eq!(approved.status(), 302);
    let back = approved.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with("http://127.0.0.1:"), "{back}");
    let page = browser.get(&back).send().await.unwrap();
    assert!(page.status().is_success());

    let (ok, stderr) = finish(child).await;
    assert!(ok, "{stderr}");
    let row = t
        .client
        .tokens()
        .account("browser")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(row.state, AccountState::Active);
    assert!(row.scopes.contains("contact_data"), "{}", row.scopes);
    t.client
        .account("browser")
        .get_user_privileges()
        .await
        .expect("the new account works");
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_login_redirect_with_a_forged_state_stores_nothing
);
async fn a_login_redirect_with_a_forged_state_stores_nothing(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    let mut child = auth(&t, &["login", "--account", "forged"]).spawn().unwrap();
    let authorize = url_from_stdout(&mut child).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let approved = browser.get(&authorize).send().await.unwrap();
    let back = approved.headers()["location"].to_str().unwrap().to_owned();
    let mut forged = url::Url::parse(&back).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let forged = k == "state";
            (
                k.into_owned(),
                if forged {
                    "attacker".into()
                } else {
                    v.into_owned()
                },
            )
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let _ = browser.get(forged.as_str()).send().await.unwrap();
    let (ok, stderr) = finish(child).await;
    assert!(!ok);
    assert!(stderr.contains("state does not match"), "{stderr}");
    assert!(t.client.tokens().account("forged").await.unwrap().is_none());
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_device_flow_authorises_an_account_once_the_user_approves
);
async fn the_device_flow_authorises_an_account_once_the_user_approves(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    let mut child = auth(&t, &["device", "--account", "kiosk"]).spawn().unwrap();
    let verification = url_from_stdout(&mut child).await;
    let approval = reqwest::get(&verification).await.unwrap();
    assert!(approval.status().is_success(), "{}", approval.status());
    let (ok, stderr) = finish(child).await;
    assert!(ok, "{stderr}");
    let row = t
        .client
        .tokens()
        .account("kiosk")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(row.state, AccountState::Active);
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    import_reads_a_refresh_token_from_stdin_and_status_shows_no_secret
);
async fn import_reads_a_refresh_token_from_stdin_and_status_shows_no_secret(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    let account = t.sandbox.admin().primary_account();
    let refresh = t.sandbox.admin().issue_refresh_token(&account).unwrap();
    let mut child = auth(&t, &["import", "--account", "imported"])
        .env("RUST_LOG", "trace")
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{refresh}\n").as_bytes())
        .await
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("account `imported` authorised"), "{stdout}");

    let status = auth(&t, &["status"]).output().await.unwrap();
    let status_out = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.status.success());
    assert!(
        status_out.contains("imported") && status_out.contains("active"),
        "{status_out}"
    );
    assert!(status_out.contains("requests left today"), "{status_out}");

    let row = t
        .client
        .tokens()
        .account("imported")
        .await
        .unwrap()
        .unwrap();
    let stored_refresh =
        secrecy::ExposeSecret::expose_secret(row.refresh_token.as_ref().unwrap()).to_owned();
    let secret = t.sandbox.credentials().client_secret.clone();
    for text in [
        &stdout,
        &stderr,
        &status_out,
        &String::from_utf8_lossy(&status.stderr).into_owned(),
    ] {
        for value in [&refresh, &stored_refresh, &secret] {
            assert!(
                !text.contains(value.as_str()),
                "a secret reached the output"
            );
        }
    }
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    import_refuses_a_spent_refresh_token_clearly
);
async fn import_refuses_a_spent_refresh_token_clearly(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    // The sandbox's ready token was spent when the harness imported it.
    let spent = t.sandbox.credentials().refresh_token.clone();
    let mut child = auth(&t, &["import", "--account", "late"]).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spent.as_bytes())
        .await
        .unwrap();
    let (ok, stderr) = finish(child).await;
    assert!(!ok);
    assert!(stderr.contains("refresh token was refused"), "{stderr}");
    assert!(!stderr.contains(&spent));
    t.stop().await;
}

/// `auth status` with a refresh token imported for `account`.
async fn status_with_account(t: &TestApi, account: &str) -> String {
    let refresh = t
        .sandbox
        .admin()
        .issue_refresh_token(&t.sandbox.admin().primary_account())
        .unwrap();
    t.client
        .tokens()
        .import_refresh_token(account, secrecy::SecretString::from(refresh))
        .await
        .unwrap();
    let status = auth(t, &["status"]).output().await.unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    String::from_utf8_lossy(&status.stdout).into_owned()
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    status_columns_line_up_under_their_titles_with_a_long_account_name
);
async fn status_columns_line_up_under_their_titles_with_a_long_account_name(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    let long = "a-rather-long-account-name-for-the-eu-shop";
    let out = status_with_account(&t, long).await;
    let lines: Vec<&str> = out.lines().collect();
    let header = lines[0];
    let state_at = header.find("state").expect("a state column");
    let expires_at = header
        .find("access token expires")
        .expect("an expiry column");
    let refresh_at = header.find("last refresh").expect("a last refresh column");
    let scopes_at = header.find("scopes").expect("a scopes column");
    let rows: Vec<&str> = lines[1..]
        .iter()
        .copied()
        .filter(|l| l.starts_with("default ") || l.starts_with(long))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    for row in rows {
        for (at, title) in [
            (state_at, "state"),
            (expires_at, "access token expires"),
            (refresh_at, "last refresh"),
            (scopes_at, "scopes"),
        ] {
            assert!(
                row.len() > at && row[..at].ends_with("  ") && !row[at..].starts_with(' '),
                "the {title} cell of {row:?} does not start under its title:\n{out}"
            );
        }
        assert!(row[state_at..].starts_with("active"), "{out}");
    }
    t.stop().await;
}

/// Runs `ctct-sync ARGS` with its stdout a pipe nobody reads (closed before the first
/// write): returns the exit code and stderr.
fn run_with_stdout_closed(t: &TestApi, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = crate::support::ctct_sync_command(t.dir.path())
        .args(args)
        .envs(t.cli_env())
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_reader_that_goes_away_ends_the_command_quietly
);
async fn a_reader_that_goes_away_ends_the_command_quietly(engine: Engine) {
    // `ctct-sync auth status | head -1`: the reader closes the pipe early.
    let t = TestApi::start_on(engine).await;
    for args in [&["auth", "status"][..], &["config"][..]] {
        let (code, stderr) = run_with_stdout_closed(&t, args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{args:?}: {stderr}"
        );
    }
    t.stop().await;
}
