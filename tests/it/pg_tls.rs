//! TLS to PostgreSQL, against private clusters of the tests' own (support/tls_pg.rs: a CA of
//! their own, a server certificate for `localhost` and 127.0.0.1, TCP logins only over TLS),
//! never the shared server:
//!
//! * `verify-full` with `sslrootcert` naming the right CA connects, migrates and keeps what
//!   it writes, by name or by the address the certificate holds; `ctct-sync migrate` does
//!   the same for both stores from its settings;
//! * `verify-full` refuses a certificate of another CA (or of no web root) and a host the
//!   certificate does not name, saying which, with the URL but never its password (also from
//!   `ctct-sync migrate` and `doctor`);
//! * `require` encrypts without checking the certificate, and so does the default (`prefer`)
//!   where the server offers TLS;
//! * a connection without TLS is refused by a server that takes logins only over TLS, and
//!   `require` refuses a server that offers no TLS — each with what to change.

use std::process::Output;

use chrono::Utc;
use ctct_sync::store::ledger::Finish;
use ctct_sync::store::{PgStore, Store, StoreError};
use secrecy::SecretString;

use crate::support::tls_pg::TlsCluster;
use crate::support::{ctct_sync_command, temp_dir};

const PASSWORD: &str = "tls-hunter2-secret";

fn secret(url: &str) -> SecretString {
    SecretString::from(url.to_owned())
}

/// `sslmode=verify-full&sslrootcert=<path>`.
fn verify_full(root: &std::path::Path) -> String {
    format!("sslmode=verify-full&sslrootcert={}", root.display())
}

/// Whether the store's own connection is encrypted, as the server sees it.
async fn encrypted(store: &PgStore) -> bool {
    store
        .pool()
        .get()
        .await
        .expect("a connection of the pool")
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl can be read")
        .get(0)
}

/// The error of connecting a store to `url`.
async fn refused(url: &str) -> StoreError {
    PgStore::connect(&secret(url), "ctct_state")
        .await
        .expect_err("the connection is refused")
}

#[tokio::test]
async fn verify_full_with_the_right_root_connects_migrates_and_keeps_what_it_writes() {
    let pg = TlsCluster::start();
    let url = pg.url("localhost", &verify_full(&pg.ca_pem()));
    let (store, report) = Store::connect_postgres(&secret(&url), "ctct_state")
        .await
        .unwrap_or_else(|e| {
            panic!(
                "verify-full with the right root connects: {e}\n{}",
                pg.log()
            )
        });
    assert!(!report.applied.is_empty(), "the schema was migrated");

    // A round trip through the state store.
    let finish = Finish {
        account: "default",
        command_id: "tls-1",
        command_type: "list.list",
        outcome: "succeeded",
        result: r#"{"over":"tls"}"#,
        fingerprint: Some("tls"),
    };
    assert_eq!(
        store
            .ledger_finish_or_stored(finish, Utc::now())
            .await
            .unwrap(),
        None,
        "the first result is stored"
    );
    assert_eq!(
        store.ledger_result_of("default", "tls-1").await.unwrap(),
        Some(r#"{"over":"tls"}"#.to_owned())
    );
    // Written where the test's own connection reads it.
    let admin = pg.admin().await;
    let rows: i64 = admin
        .query_one(
            "SELECT count(*) FROM ctct_state.command_ledger WHERE command_id = 'tls-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);

    // Encrypted, and by the certificate's address as well as its name.
    let by_name = PgStore::connect(&secret(&url), "ctct_state").await.unwrap();
    assert!(encrypted(&by_name).await);
    let by_address = pg.url("127.0.0.1", &verify_full(&pg.ca_pem()));
    let by_address = PgStore::connect(&secret(&by_address), "ctct_state")
        .await
        .unwrap_or_else(|e| panic!("the certificate holds IP:127.0.0.1: {e}"));
    assert!(encrypted(&by_address).await);
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_of_another_ca_naming_the_url_without_its_password() {
    let pg = TlsCluster::start();
    let url = pg.url_with_password("localhost", PASSWORD, &verify_full(&pg.other_ca_pem()));
    let error = Store::connect_postgres(&secret(&url), "ctct_state")
        .await
        .expect_err("a root that did not sign the server's certificate");
    assert!(matches!(error, StoreError::PgTls { .. }), "{error:?}");
    assert!(!error.is_unreachable(), "not worth retrying: {error:?}");
    let shown = error.to_string();
    for expected in [
        "TLS failed",
        "certificate verification failed",
        "not signed by a CA of sslrootcert=",
        &pg.other_ca_pem().display().to_string(),
        &format!("postgres://postgres:***@localhost:{}/postgres", pg.port()),
    ] {
        assert!(shown.contains(expected), "{expected:?} in {shown}");
    }
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!format!("{error:?}").contains(PASSWORD), "{error:?}");

    // Without sslrootcert the web's roots are the only ones trusted: the test CA is not one.
    let url = pg.url_with_password("localhost", PASSWORD, "sslmode=verify-full");
    let shown = refused(&url).await.to_string();
    assert!(
        shown.contains("not signed by any of the web's root authorities")
            && shown.contains("set sslrootcert="),
        "{shown}"
    );
    assert!(!shown.contains(PASSWORD), "{shown}");
}

#[tokio::test]
async fn verify_full_refuses_a_host_the_certificate_does_not_name() {
    let pg = TlsCluster::start();
    // The server's address, under a name its certificate (localhost, 127.0.0.1) lacks.
    let query = format!("hostaddr=127.0.0.1&{}", verify_full(&pg.ca_pem()));
    let url = pg.url_with_password("db.ctct-sync.invalid", PASSWORD, &query);
    let error = refused(&url).await;
    assert!(matches!(error, StoreError::PgTls { .. }), "{error:?}");
    let shown = error.to_string();
    assert!(
        shown.contains("certificate verification failed")
            && shown.contains("does not name the host db.ctct-sync.invalid"),
        "{shown}"
    );
    assert!(
        shown.contains(":***@db.ctct-sync.invalid:") && !shown.contains(PASSWORD),
        "{shown}"
    );

    // The same server by a name the certificate holds is accepted.
    let query = format!("hostaddr=127.0.0.1&{}", verify_full(&pg.ca_pem()));
    let store = PgStore::connect(&secret(&pg.url("localhost", &query)), "ctct_state")
        .await
        .unwrap();
    assert!(encrypted(&store).await);
}

#[tokio::test]
async fn require_and_the_default_encrypt_without_checking_the_certificate() {
    let pg = TlsCluster::start();
    // No root given, and the name connected to is not in the certificate: not checked.
    for query in ["sslmode=require", "sslmode=prefer", ""] {
        for host in ["localhost", "127.0.0.1"] {
            let store = PgStore::connect(&secret(&pg.url(host, query)), "ctct_state")
                .await
                .unwrap_or_else(|e| panic!("{query:?} to {host} connects: {e}"));
            assert!(encrypted(&store).await, "{query:?} to {host} encrypts");
        }
    }
    let query = "hostaddr=127.0.0.1&sslmode=require";
    let store = PgStore::connect(
        &secret(&pg.url("db.ctct-sync.invalid", query)),
        "ctct_state",
    )
    .await
    .unwrap();
    assert!(encrypted(&store).await);
}

#[tokio::test]
async fn a_connection_without_tls_is_refused_where_the_server_takes_logins_only_over_tls() {
    let pg = TlsCluster::start();
    let url = pg.url_with_password("127.0.0.1", PASSWORD, "sslmode=disable");
    let error = refused(&url).await;
    assert!(
        matches!(error, StoreError::PgAuthFailed { .. }),
        "{error:?}"
    );
    let shown = error.to_string();
    for expected in [
        "refused the login",
        "no pg_hba.conf entry",
        "no encryption",
        "the connection was not encrypted",
        "set sslmode=verify-full",
        &format!("postgres://postgres:***@127.0.0.1:{}/", pg.port()),
    ] {
        assert!(shown.contains(expected), "{expected:?} in {shown}");
    }
    assert!(!shown.contains(PASSWORD), "{shown}");
}

#[tokio::test]
async fn require_and_verify_full_refuse_a_server_without_tls() {
    let pg = TlsCluster::start_without_tls();
    let plain = PgStore::connect(
        &secret(&pg.url("localhost", "sslmode=disable")),
        "ctct_state",
    )
    .await
    .unwrap_or_else(|e| panic!("the server answers without TLS: {e}\n{}", pg.log()));
    assert!(!encrypted(&plain).await);
    let fallback = PgStore::connect(&secret(&pg.url("localhost", "")), "ctct_state")
        .await
        .unwrap();
    assert!(!encrypted(&fallback).await, "prefer falls back to plain");
    for query in ["sslmode=require", "sslmode=verify-full"] {
        let url = pg.url_with_password("localhost", PASSWORD, query);
        let error = refused(&url).await;
        assert!(matches!(error, StoreError::PgTls { .. }), "{error:?}");
        let shown = error.to_string();
        assert!(
            shown.contains(&format!(
                "the server does not offer TLS, and {query} requires it"
            )),
            "{shown}"
        );
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
}

/// Runs `ctct-sync <args>` with both stores at `url` and the broker on a closed port.
fn run_binary(args: &[&str], url: &str) -> Output {
    let dir = temp_dir();
    ctct_sync_command(dir.path())
        .args(args)
        .env("CTCT_SYNC__STORE__URL", url)
        .env("CTCT_SYNC__MIRROR__URL", url)
        .env("CTCT_SYNC__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env("CTCT_SYNC__OPS__LISTEN", "127.0.0.1:0")
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn migrate_and_doctor_use_tls_from_the_settings_and_report_a_refused_certificate() {
    let pg = TlsCluster::start();
    // Both stores over verify-full, from the settings.
    let url = pg.url_with_password("localhost", PASSWORD, &verify_full(&pg.ca_pem()));
    let out = run_binary(&["migrate"], &url);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stdout}\n{stderr}"
    );
    let admin = pg.admin().await;
    let schemas: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('ctct_state', 'ctct_mirror')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(schemas, 2, "both stores migrated over TLS");
    let out = run_binary(&["doctor"], &url);
    let (stdout, _) = text(&out);
    let line = |stdout: &str, name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line:\n{stdout}"))
            .to_owned()
    };
    assert!(line(&stdout, "store ").contains("ok"), "{stdout}");
    assert!(
        line(&stdout, "store schema").contains("current"),
        "{stdout}"
    );

    // The wrong root: migrate ends with exit code 2, doctor fails the check; both say why.
    let wrong = pg.url_with_password("localhost", PASSWORD, &verify_full(&pg.other_ca_pem()));
    let out = run_binary(&["migrate"], &wrong);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("TLS failed")
            && stderr.contains("certificate verification failed")
            && stderr.contains(":***@localhost:"),
        "{stderr}"
    );
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stdout}\n{stderr}"
    );
    let out = run_binary(&["doctor"], &wrong);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let store = line(&stdout, "store ");
    assert!(
        store.contains("FAIL") && store.contains("certificate verification failed"),
        "{stdout}"
    );
    assert!(stdout.contains("sslrootcert"), "the advice: {stdout}");
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stdout}\n{stderr}"
    );
}
