//! README's first command, `scripts/dev`, on a machine where no broker answers: it starts a
//! private RabbitMQ node from the installed package on the configured port, runs the daemon
//! against it (the sandbox in-process), and stops the node when the daemon stops.
//!
//! The configured broker is a free private port instead of 5672 (where the tests' own broker
//! answers), and the script runs the binary of this test run (`CTCT_SYNC_BIN`) instead of
//! building one. It needs rabbitmq-server installed, as the cluster tests do.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use tokio::time::Instant;

use crate::support::{self, daemon::terminate};

const DEV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/dev");

/// A port from which the 16 ports scripts/cluster.sh takes for one node are free (and far
/// from the system broker's 25672).
fn free_port_range() -> u16 {
    for _ in 0..200 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if !(1024..=65_000).contains(&port) || (port..=port + 15).contains(&25_672) {
            continue;
        }
        let held: Vec<_> = (port..=port + 15)
            .map_while(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == 16 {
            return port;
        }
    }
    panic!("no 16 free consecutive ports found");
}

fn answers(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_command_starts_a_private_broker_where_none_answers_and_stops_it_with_the_daemon()
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port_range();
    assert!(!answers(port), "nothing answers on the broker's port yet");
    let ops_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let amqp_url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let env: Vec<(String, String)> = [
        ("CTCT_SYNC__AMQP__URL", amqp_url.clone()),
        (
            "CTCT_SYNC__AMQP__COMMANDS_QUEUE",
            format!("dev-{tag}.commands"),
        ),
        (
            "CTCT_SYNC__AMQP__RESULTS_EXCHANGE",
            format!("dev-{tag}.results"),
        ),
        (
            "CTCT_SYNC__AMQP__DEAD_LETTER_QUEUE",
            format!("dev-{tag}.dead"),
        ),
        (
            "CTCT_SYNC__AMQP__UNROUTED_QUEUE",
            format!("dev-{tag}.unrouted"),
        ),
        (
            "CTCT_SYNC__STORE__URL",
            format!("sqlite://{}/ctct-sync.db", dir.path().display()),
        ),
        (
            "CTCT_SYNC__MIRROR__URL",
            format!("sqlite://{}/ctct-mirror.db", dir.path().display()),
        ),
        ("CTCT_SYNC__OPS__LISTEN", format!("127.0.0.1:{ops_port}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let log_path = dir.path().join("dev.log");
    let log = std::fs::File::create(&log_path).expect("the log file");
    let mut script = tokio::process::Command::new("bash");
    script.arg(DEV).current_dir(dir.path()).kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("CTCT_SYNC") || key == "RUST_LOG" {
            script.env_remove(key);
        }
    }
    let mut script = script
        .envs(env.iter().cloned())
        .env("CTCT_SYNC_BIN", env!("CARGO_BIN_EXE_ctct-sync"))
        .env("CTCT_DEV_DIR", dir.path().join("rabbitmq"))
        .env("CTCT_SETUP_INSTALL", "no")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the log file"))
        .stderr(log)
        .spawn()
        .expect("scripts/dev starts");
    let printed = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // Ready once the node has booted and the daemon consumes (a node takes seconds to boot).
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{ops_port}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|answer| answer.status().is_success());
        if ready {
            break;
        }
        if let Ok(Some(status)) = script.try_wait() {
            panic!(
                "scripts/dev ended ({status}) before the daemon was ready:\n{}",
                printed()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the daemon was not ready within 180 s:\n{}",
            printed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        printed().contains(&format!(
            "nothing answers on 127.0.0.1:{port}; starting a private RabbitMQ node there"
        )),
        "{}",
        printed()
    );
    assert!(
        answers(port),
        "the private node answers on the configured port"
    );

    // A command through the private broker, as a newcomer would send one.
    let email = format!("dev-{tag}@example.com");
    let sent = tokio::time::timeout(
        Duration::from_secs(60),
        support::ctct_sync_process(dir.path())
            .envs(env.iter().cloned())
            .args(["send", "contact.upsert", "--data"])
            .arg(format!(r#"{{"email": "{email}", "first_name": "Pat"}}"#))
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("send ends within 60 s")
    .expect("send starts");
    let result: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap_or_else(|e| {
        panic!(
            "send printed no result ({e}): {}\n{}",
            String::from_utf8_lossy(&sent.stdout),
            String::from_utf8_lossy(&sent.stderr)
        )
    });
    assert!(sent.status.success(), "{result}");
    assert_eq!(result["outcome"], "succeeded", "{result}");
    assert_eq!(result["data"]["email"], email.as_str(), "{result}");

    // SIGTERM to the script: the daemon stops cleanly, then the node.
    terminate(&mut script).await;
    let said = printed();
    assert!(
        said.contains(&format!(
            "stopping the private RabbitMQ node on 127.0.0.1:{port}"
        )),
        "{said}"
    );
    assert!(said.contains("ctct_sync::pipeline: stopped"), "{said}");
    assert!(!answers(port), "the node stopped with the daemon:\n{said}");
}
