//! Faults of a PostgreSQL store: a server that does not answer at start is waited for (the
//! ops listener already answering `/readyz` 503 "state store unreachable", nothing
//! consumed); a refused login or a missing database ends the start at once with exit code 2
//! and the URL without its password; a server lost while the daemon runs pauses it like a
//! failing SQLite store, and it resumes by itself — every command answered once, none
//! applied twice.

use std::process::Output;
use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use serde_json::{Value, json};

use crate::support::api::TestApi;
use crate::support::ctct_sync_command;
use crate::support::daemon::TestDaemon;
use crate::support::eventually::eventually;
use crate::support::pg::{PgTestDb, admin_url};
use crate::support::proxy::TcpProxy;
use crate::support::temp_dir;

const SECS_60: Duration = Duration::from_secs(60);

/// GETs a path on the ops listener at `addr`: (status, body), or (0, "") if not answering.
async fn ops(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    match client.get(format!("http://{addr}{path}")).send().await {
        Ok(response) => (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

/// Polls `/readyz` until `accept` takes its answer (at most 60 s); returns the body.
async fn wait_readyz(addr: std::net::SocketAddr, accept: impl Fn(u16, &str) -> bool) -> String {
    eventually(SECS_60, "an accepted answer from /readyz", async || {
        let (status, body) = ops(addr, "/readyz").await;
        if accept(status, &body) {
            Ok(body)
        } else {
            Err(format!("/readyz stayed {status}: {body}"))
        }
    })
    .await
}

/// Ready messages in `queue`.
async fn ready_messages(d: &TestDaemon, queue: &str) -> u32 {
    d.channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_at_start_is_waited_for_with_readyz_503_and_nothing_consumed() {
    let db = PgTestDb::create().await;
    let mut api = TestApi::start_on_postgres(db.url()).await;
    let proxy = TcpProxy::postgres(db.url()).await;
    proxy.cut();
    api.state_url = Some(proxy.url_for(db.url()));
    let mut d = TestDaemon::start_unstarted(api, &[]).await;
    d.publish("pg-start-1", "list.list", json!({})).await;
    d.start_pipeline_in_background();
    let addr = d.ops_addr.unwrap();

    let body: Value = serde_json::from_str(
        &wait_readyz(addr, |status, body| {
            status == 503 && body.contains("state store unreachable")
        })
        .await,
    )
    .unwrap();
    assert_eq!(body["ready"], false, "{body}");
    let store = body["checks"]["store"].as_str().unwrap();
    assert!(
        store.contains(&proxy.addr().port().to_string()),
        "names the server: {body}"
    );
    let (health, _) = ops(addr, "/healthz").await;
    assert_eq!(health, 200, "the process answers while it waits");
    // Still waiting after a few attempts: the command stays in the queue, unanswered.
    d.drain(Duration::from_secs(2)).await;
    assert!(d.received.is_empty(), "{:?}", d.received);
    let queue = d.queue().to_owned();
    assert_eq!(ready_messages(&d, &queue).await, 1, "nothing consumed");
    let (status, body) = ops(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");

    // The database answers: the daemon finishes starting and takes the command.
    proxy.restore();
    wait_readyz(addr, |status, _| status == 200).await;
    assert_eq!(d.result("pg-start-1").await.outcome, Outcome::Succeeded);
    assert!(d.stop_pipeline(Duration::from_secs(30)).await);
    d.stop().await;
    drop(db);
}

/// A database that answers the daemon's first connection and goes away before the stores
/// are open (a restart at that moment; the replica drill met one) is waited for again as at
/// start, with /readyz 503 naming it, instead of ending the start with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_lost_while_the_stores_open_is_waited_for_again() {
    let db = PgTestDb::create().await;
    let mut api = TestApi::start_on_postgres(db.url()).await;
    let proxy = TcpProxy::postgres(db.url()).await;
    // The daemon's "does it answer?" connection goes through; the stores' own do not.
    proxy.cut_after(1);
    api.state_url = Some(proxy.url_for(db.url()));
    let mut d = TestDaemon::start_unstarted(api, &[]).await;
    d.publish("pg-open-1", "list.list", json!({})).await;
    d.start_pipeline_in_background();
    let addr = d.ops_addr.unwrap();

    wait_readyz(addr, |status, body| {
        status == 503 && body.contains("state store unreachable")
    })
    .await;
    let (health, _) = ops(addr, "/healthz").await;
    assert_eq!(health, 200, "the process still runs and waits");
    proxy.restore();
    wait_readyz(addr, |status, _| status == 200).await;
    assert_eq!(d.result("pg-open-1").await.outcome, Outcome::Succeeded);
    assert!(d.stop_pipeline(Duration::from_secs(30)).await);
    d.stop().await;
    drop(db);
}

/// Runs the binary with the state store at `url` and the broker on a closed port.
fn run_binary(args: &[&str], url: &str) -> Output {
    let dir = temp_dir();
    ctct_sync_command(dir.path())
        .args(args)
        .env("CTCT_SYNC__STORE__URL", url)
        .env("CTCT_SYNC__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env("CTCT_SYNC__OPS__LISTEN", "127.0.0.1:0")
        .output()
        .expect("the binary runs")
}

/// `admin_url()` with the user, password and database given.
fn pg_url(user: &str, password: &str, database: &str) -> String {
    let mut url = url::Url::parse(&admin_url()).unwrap();
    url.set_username(user).unwrap();
    url.set_password(Some(password)).unwrap();
    url.set_path(database);
    url.to_string()
}

fn assert_no_password(out: &Output) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        !stdout.contains("hunter2") && !stderr.contains("hunter2"),
        "the password leaked:\n{stdout}\n{stderr}"
    );
}

#[test]
fn a_missing_database_or_an_unknown_role_ends_run_and_migrate_with_exit_code_2_without_the_password()
 {
    let missing = format!("ctct_missing_{}", uuid::Uuid::new_v4().simple());
    let role = format!(
        "ctct_no_role_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let cases = [
        (
            pg_url("postgres", "hunter2", &missing),
            "does not exist",
            missing.clone(),
        ),
        (
            pg_url(&role, "hunter2", "postgres"),
            "refused the login",
            role.clone(),
        ),
    ];
    for (url, reason, named) in &cases {
        for command in ["run", "migrate"] {
            let out = run_binary(&[command], url);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {named}: {stderr}");
            assert!(stderr.contains(reason), "{command} {named}: {stderr}");
            assert!(stderr.contains(named.as_str()), "{command}: {stderr}");
            assert!(
                stderr.contains(":***@"),
                "the URL is shown redacted: {stderr}"
            );
            assert_no_password(&out);
        }
        // doctor: a failed check, exit code 1, still no password.
        let out = run_binary(&["doctor"], url);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "doctor {named}: {stdout}");
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("store") && l.contains("FAIL")),
            "{stdout}"
        );
        assert!(stdout.contains(reason), "doctor {named}: {stdout}");
        assert_no_password(&out);
        // config: both URLs printed redacted.
        let dir = temp_dir();
        let out = ctct_sync_command(dir.path())
            .arg("config")
            .env("CTCT_SYNC__STORE__URL", url)
            .env("CTCT_SYNC__MIRROR__URL", url)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert_eq!(
            stdout.matches(":***@127.0.0.1:5432/").count(),
            2,
            "{stdout}"
        );
        assert_no_password(&out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_a_postgres_store_reachable_and_its_schema_version_without_migrating() {
    let db = PgTestDb::create().await;
    let dir = temp_dir();
    let doctor = |url: &str| {
        ctct_sync_command(dir.path())
            .arg("doctor")
            .env("CTCT_SYNC__STORE__URL", url)
            .env("CTCT_SYNC__MIRROR__URL", url)
            .env("CTCT_SYNC__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f")
            .output()
            .unwrap()
    };
    // A database without ctct-sync's schemas: reachable, not migrated (a warning each).
    let out = doctor(db.url());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line:\n{stdout}"))
            .to_owned()
    };
    assert!(line("store schema").contains("warn"), "{stdout}");
    assert!(line("mirror schema").contains("warn"), "{stdout}");
    assert!(line("store ").contains("ok"), "{stdout}");
    let client = db.connect().await;
    let schemas = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('ctct_state', 'ctct_mirror')",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(schemas, 0, "the doctor changed nothing");

    // Migrated: current.
    let out = ctct_sync_command(dir.path())
        .arg("migrate")
        .env("CTCT_SYNC__STORE__URL", db.url())
        .env("CTCT_SYNC__MIRROR__URL", db.url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = doctor(db.url());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let schema_line = stdout
        .lines()
        .find(|l| l.starts_with("store schema"))
        .unwrap()
        .to_owned();
    assert!(
        schema_line.contains("ok") && schema_line.contains("current"),
        "{stdout}"
    );
    let mirror_line = stdout
        .lines()
        .find(|l| l.starts_with("mirror schema"))
        .unwrap()
        .to_owned();
    assert!(mirror_line.contains("ok"), "{stdout}");

    // Unreachable: a failed check naming the server.
    let proxy = TcpProxy::postgres(db.url()).await;
    proxy.cut();
    let out = doctor(&proxy.url_for(db.url()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("unreachable"), "{stdout}");
    drop(client);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_lost_mid_run_pauses_the_daemon_and_it_resumes_by_itself_applying_nothing_twice()
{
    let db = PgTestDb::create().await;
    let mut api = TestApi::start_on_postgres(db.url()).await;
    let proxy = TcpProxy::postgres(db.url()).await;
    api.state_url = Some(proxy.url_for(db.url()));
    let mut d = TestDaemon::start_unstarted(api, &[]).await;
    d.start_pipeline_in_background();
    let addr = d.ops_addr.unwrap();
    wait_readyz(addr, |status, _| status == 200).await;

    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let create = |i: usize| json!({"email": format!("pg-lost-{tag}-{i}@example.com")});
    let before: Vec<String> = (0..4).map(|i| format!("pg-before-{i}")).collect();
    for (i, id) in before.iter().enumerate() {
        d.publish(id, "contact.create", create(i)).await;
    }
    d.results(&before, SECS_60).await;

    // The database goes away: the daemon stops taking commands and says why.
    proxy.cut();
    let during: Vec<String> = (4..12).map(|i| format!("pg-during-{i}")).collect();
    for (i, id) in during.iter().enumerate() {
        d.publish(id, "contact.create", create(i + 4)).await;
    }
    let body = wait_readyz(addr, |status, body| {
        status == 503 && body.contains("failing: ")
    })
    .await;
    assert!(body.contains("unreachable"), "{body}");
    d.drain(Duration::from_secs(2)).await;
    let queue = d.queue().to_owned();
    eventually(SECS_60, "the commands wait in the queue", async || {
        let ready = ready_messages(&d, &queue).await;
        let answered = d
            .received
            .iter()
            .filter(|r| r.command_id.starts_with("pg-during-"))
            .count() as u32;
        if ready + answered == during.len() as u32 && ready > 0 {
            Ok(())
        } else {
            Err(format!("{ready} ready, {answered} answered"))
        }
    })
    .await;

    // It comes back: the daemon resumes by itself.
    proxy.restore();
    wait_readyz(addr, |status, _| status == 200).await;
    let after: Vec<String> = (12..16).map(|i| format!("pg-after-{i}")).collect();
    for (i, id) in after.iter().enumerate() {
        d.publish(id, "contact.create", create(i + 12)).await;
    }
    let all: Vec<String> = before
        .iter()
        .chain(&during)
        .chain(&after)
        .cloned()
        .collect();
    d.results(&all, SECS_60).await;
    d.drain(Duration::from_millis(500)).await;
    for id in &all {
        let got: Vec<_> = d.received.iter().filter(|r| &r.command_id == id).collect();
        assert_eq!(got.len(), 1, "{id}: one final result, got {got:?}");
        assert_eq!(got[0].outcome, Outcome::Succeeded, "{id}: {got:?}");
    }
    // Each contact was created once.
    let creates = d
        .api
        .sandbox
        .admin()
        .request_log()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/contacts"))
        .filter(|r| (200..300).contains(&r.status))
        .count();
    assert_eq!(creates, all.len(), "no command applied twice");
    assert!(d.stop_pipeline(Duration::from_secs(30)).await);
    d.stop().await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_mirror_store_lost_fails_the_mirror_run_and_commands_keep_flowing() {
    let db = PgTestDb::create().await;
    let proxy = TcpProxy::postgres(db.url()).await;
    let mirror_url = proxy.url_for(db.url());
    let mut d = TestDaemon::start_with_mirror(
        TestApi::start().await,
        &[("CTCT_SYNC__MIRROR__URL", mirror_url.as_str())],
    )
    .await;
    let addr = d.ops_addr.unwrap();
    d.publish("pgm-ok", "mirror.run", json!({"resource": "lists"}))
        .await;
    assert_eq!(d.result("pgm-ok").await.outcome, Outcome::Succeeded);

    proxy.cut();
    d.publish("pgm-cut", "mirror.run", json!({"resource": "lists"}))
        .await;
    let failed = d.result("pgm-cut").await;
    assert_eq!(failed.outcome, Outcome::Failed, "{failed:?}");
    assert!(
        d.receive_until(SECS_60, |d| d
            .events
            .iter()
            .any(|(key, _)| key == "event.mirror.failed"))
            .await,
        "a mirror.failed event: {:?}",
        d.events
    );
    // The daemon goes on: commands are answered and it stays ready.
    d.publish("pgm-list", "list.list", json!({})).await;
    assert_eq!(d.result("pgm-list").await.outcome, Outcome::Succeeded);
    let (status, body) = ops(addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");

    // The mirror's database is back: the next run succeeds.
    proxy.restore();
    d.publish("pgm-back", "mirror.run", json!({"resource": "lists"}))
        .await;
    assert_eq!(d.result("pgm-back").await.outcome, Outcome::Succeeded);
    assert!(d.stop_pipeline(Duration::from_secs(30)).await);
    d.stop().await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_waits_for_an_unreachable_postgres_logging_the_url_redacted_and_stops_cleanly_on_sigterm()
 {
    // A port nothing listens on: taken, then freed.
    let free = || {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let (db_addr, ops_addr) = (free(), free());
    let url = format!(
        "postgres://postgres:hunter2@{db_addr}/ctct_nowhere_{}",
        uuid::Uuid::new_v4().simple()
    );
    let dir = temp_dir();
    let mut child = crate::support::ctct_sync_process(dir.path())
        .arg("run")
        .env("CTCT_SYNC__STORE__URL", &url)
        .env("CTCT_SYNC__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env("CTCT_SYNC__OPS__LISTEN", ops_addr.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let body = wait_readyz(ops_addr, |status, body| {
        status == 503 && body.contains("state store unreachable")
    })
    .await;
    assert!(body.contains(":***@"), "{body}");
    assert!(!body.contains("hunter2"), "{body}");
    crate::support::daemon::terminate(&mut child).await;
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let logs = format!("{stdout}{stderr}");
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("unreachable"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning within 30 s:\n{logs}");
    assert!(warnings[0].contains(":***@"), "{logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
}
