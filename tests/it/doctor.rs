//! `ctct-sync doctor` names each failure and what to do about it.

use std::time::Duration;

use crate::support::api::TestApi;
use crate::support::daemon::{TestDaemon, amqp_url};
use crate::support::engine::Engine;

async fn doctor(t: &TestApi, extra: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = crate::support::ctct_sync_process(t.dir.path());
    cmd.arg("doctor")
        .envs(t.cli_env())
        .env("CTCT_SYNC__AMQP__URL", amqp_url());
    for (key, value) in extra {
        cmd.env(key, value);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout)
}

fn line<'a>(report: &'a str, check: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(check))
        .unwrap_or_else(|| panic!("no {check} line in:\n{report}"))
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_healthy_setup_passes_every_check
);
async fn a_healthy_setup_passes_every_check(engine: Engine) {
    // The daemon's topology (under this test's own names) is declared, as after a first run.
    let d = TestDaemon::start_on(engine).await;
    let out = tokio::time::timeout(Duration::from_secs(60), d.command(&["doctor"]).output())
        .await
        .unwrap()
        .unwrap();
    let (code, report) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    );
    assert_eq!(code, 0, "{report}");
    let store_checks = match engine {
        Engine::Sqlite => ["store file mode", "store schema"],
        Engine::Postgres => ["store ", "store schema"],
    };
    for check in ["configuration", "broker"]
        .into_iter()
        .chain(store_checks)
        .chain([
            "mirror schema",
            "account default scopes",
            "account default api",
        ])
    {
        assert!(line(&report, check).contains(" ok "), "{check}:\n{report}");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_configuration_is_reported_with_its_key() {
    let t = TestApi::start().await;
    let (code, report) = doctor(&t, &[("CTCT_SYNC__LIMITS__PER_SECOND", "fast")]).await;
    assert_eq!(code, 1);
    let config = line(&report, "configuration");
    assert!(
        config.contains("FAIL") && config.contains("limits.per_second") && config.contains("fast"),
        "{report}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_broker_is_reported_with_how_to_start_it() {
    let t = TestApi::start().await;
    // Nothing listens on port 1: a broker that is down.
    let (code, report) = doctor(
        &t,
        &[("CTCT_SYNC__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f")],
    )
    .await;
    assert_eq!(code, 1);
    assert!(line(&report, "broker").contains("FAIL"), "{report}");
    assert!(report.contains("start RabbitMQ"), "{report}");
    assert!(!report.contains("guest:guest"), "the password is masked");
    assert!(
        line(&report, "account default api").contains(" ok "),
        "other checks still run:\n{report}"
    );
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_revoked_token_is_reported_with_how_to_reauthorise
);
async fn a_revoked_token_is_reported_with_how_to_reauthorise(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    t.sandbox
        .admin()
        .revoke_tokens(&t.sandbox.admin().primary_account())
        .unwrap();
    let (code, report) = doctor(&t, &[]).await;
    assert_eq!(code, 1, "{report}");
    let api = line(&report, "account default api");
    assert!(api.contains("FAIL"), "{report}");
    assert!(
        report.contains("ctct-sync auth login --account default"),
        "{report}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_readable_store_fails_the_mode_check() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestApi::start().await;
    std::fs::set_permissions(t.store.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, report) = doctor(&t, &[]).await;
    assert_eq!(code, 1);
    let mode = line(&report, "store file mode");
    assert!(mode.contains("FAIL") && mode.contains("0644"), "{report}");
    assert!(report.contains("chmod 600"), "{report}");
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    doctor_runs_count_only_the_requests_they_make
);
async fn doctor_runs_count_only_the_requests_they_make(engine: Engine) {
    // Regression: each process reserved at least 20 requests of the day at its first one;
    // a doctor run every five minutes would have counted 5,760 of the day's 10,000.
    let t = TestApi::start_on(engine).await;
    for _ in 0..3 {
        let (code, report) = doctor(&t, &[]).await;
        assert!(
            line(&report, "account default api").contains(" ok "),
            "{code}: {report}"
        );
    }
    let today = t.client.budget().snapshot().await.unwrap();
    assert_eq!(today.used, 3, "one request per run: {today:?}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_behind_this_release_is_reported_and_left_as_it_is() {
    // A state store written by release 9147d43 (schema version 4), with an OAuth application
    // configured: the account checks would open (and so migrate) it; the doctor says so instead.
    let t = TestApi::start().await;
    let dir = crate::support::temp_dir();
    let store_path = dir.path().join("ctct-sync.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/store-9147d43/ctct-sync-9147d43.sqlite3"
        ),
        &store_path,
    )
    .expect("the fixture copies");
    std::fs::set_permissions(
        &store_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mirror_path = dir.path().join("mirror").join("ctct-mirror.db");
    let (code, report) = doctor(
        &t,
        &[
            ("CTCT_SYNC__STORE__PATH", store_path.to_str().unwrap()),
            (
                "CTCT_SYNC__MIRROR__URL",
                &format!("sqlite://{}", mirror_path.display()),
            ),
        ],
    )
    .await;
    assert!(
        line(&report, "store schema").contains("version 4;"),
        "{report}"
    );
    assert!(
        line(&report, "accounts").contains("not checked"),
        "{report}"
    );
    assert_eq!(code, 0, "warnings only:\n{report}");
    assert_eq!(
        ctct_sync::store::migrate::file_version(&store_path).unwrap(),
        4,
        "the doctor left the store at its version"
    );
    assert!(!mirror_path.exists(), "the doctor created no mirror file");
}
