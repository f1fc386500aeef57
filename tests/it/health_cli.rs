//! `ctct-sync health`, the image's health check, as a process against a live ops listener
//! (the daemon's own, served in this test), a closed port and a port that never answers.

use std::time::{Duration, Instant};

use ctct_sync::ops::{self, OpsSlot};
use tokio_util::sync::CancellationToken;

use crate::support;

/// Runs `ctct-sync health` with `env` and returns its exit code, stdout and stderr.
async fn health(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let dir = support::temp_dir();
    let mut cmd = support::ctct_sync_process(dir.path());
    cmd.arg("health").args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("ctct-sync health ends within 30 s")
        .expect("ctct-sync runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A starting daemon's ops listener: `/healthz` answers 200, `/readyz` 503.
async fn live_listener(listen: &str, shutdown: &CancellationToken) -> std::net::SocketAddr {
    ops::serve(
        listen.parse().unwrap(),
        OpsSlot::starting("opening the store"),
        shutdown.clone(),
    )
    .await
    .expect("the ops listener binds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_exits_0_when_the_ops_listener_of_the_settings_answers_healthz() {
    let shutdown = CancellationToken::new();
    // As in the image: every address, asked on loopback.
    let bound = live_listener("0.0.0.0:0", &shutdown).await;
    let listen = format!("0.0.0.0:{}", bound.port());
    let (code, stdout, stderr) = health(&[], &[("CTCT_SYNC__OPS__LISTEN", listen)]).await;
    assert_eq!(code, 0, "stdout: {stdout} stderr: {stderr}");
    assert_eq!(
        stdout,
        format!(
            "healthy: http://127.0.0.1:{}/healthz answered 200 OK\n",
            bound.port()
        )
    );
    assert_eq!(stderr, "");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_exits_1_on_a_status_other_than_200() {
    let shutdown = CancellationToken::new();
    let bound = live_listener("127.0.0.1:0", &shutdown).await;
    // A starting daemon is alive but not ready.
    let url = format!("http://{bound}/readyz");
    let (code, stdout, stderr) = health(&["--url", &url], &[]).await;
    assert_eq!(code, 1, "stdout: {stdout} stderr: {stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("unhealthy: {url} answered 503 Service Unavailable\n")
    );
    let url = format!("http://{bound}/healthz");
    let (code, stdout, _) = health(&["--url", &url], &[]).await;
    assert_eq!(code, 0, "{stdout}");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_exits_1_when_nothing_listens_on_the_port() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (code, stdout, stderr) =
        health(&[], &[("CTCT_SYNC__OPS__LISTEN", closed.to_string())]).await;
    assert_eq!(code, 1, "stdout: {stdout} stderr: {stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.starts_with(&format!("unhealthy: http://{closed}/healthz: "))
            && stderr.contains("refused")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_exits_1_within_its_timeout_when_the_port_never_answers() {
    // Bound and listening, never accepting: the connection is made, no answer comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", silent.local_addr().unwrap());
    let started = Instant::now();
    let (code, stdout, stderr) = health(&["--url", &url, "--timeout-ms", "300"], &[]).await;
    assert_eq!(code, 1, "stdout: {stdout} stderr: {stderr}");
    assert_eq!(
        stderr,
        format!("unhealthy: {url}: no answer within 300 ms\n")
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout bounds the check: {:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test]
async fn health_exits_1_when_the_ops_listener_is_off_or_the_url_is_not_http() {
    let (code, _, stderr) = health(&[], &[("CTCT_SYNC__OPS__ENABLED", "false".into())]).await;
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "unhealthy: the ops listener is off (ops.enabled = false): nothing answers /healthz\n"
    );
    let (code, _, stderr) = health(&[], &[("CTCT_SYNC__OPS__LISTEN", "nowhere".into())]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("unhealthy: the configuration does not load: ")
            && stderr.contains("ops.listen"),
        "{stderr}"
    );
    let (code, _, stderr) = health(&["--url", "ftp://127.0.0.1/healthz"], &[]).await;
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "unhealthy: --url ftp://127.0.0.1/healthz: an http:// or https:// URL\n"
    );
}
