//! The producers in `examples/` (Python with pika, Node with amqplib, Go with amqp091-go)
//! against a running daemon with its own queues: each sends a `contact.upsert`, prints the
//! `succeeded` result for its command id and exits 0, and prints the `rejected` result of a
//! bad address and exits 1 — the same result the daemon published on its results exchange.
//!
//! A test is skipped, saying why, only when its interpreter or library is missing; .ci/run
//! installs them (pika from PyPI; amqplib from npm into a directory of its own, named by
//! `CTCT_EXAMPLES_NODE_MODULES`; Go and amqp091-go from Debian's packages, found in
//! `CTCT_EXAMPLES_GOPATH`, default `/usr/share/gocode`). `CTCT_PYTHON` names the Python
//! interpreter (default `python3`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use serde_json::Value;
use tokio::process::Command;

use crate::support::daemon::{TestDaemon, amqp_url};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

/// Why a test cannot run here: `None` when `program` with `args` starts and exits 0.
async fn missing(mut probe: Command, program: &str, what: &str) -> Option<String> {
    match probe
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
    {
        Err(error) => Some(format!("{program} cannot be started ({error})")),
        Ok(status) if !status.success() => Some(format!("{what} is not installed")),
        Ok(_) => None,
    }
}

/// What a producer run printed and how it ended.
struct Run {
    code: Option<i32>,
    result: Value,
    stderr: String,
}

/// Runs a producer (`command`, with its arguments) against `d`'s broker and commands queue
/// as command `id`; at most 60 s.
async fn run(d: &TestDaemon, mut command: Command, id: &str) -> Run {
    command
        .env("CTCT_SYNC__AMQP__URL", amqp_url())
        .env("CTCT_SYNC__AMQP__COMMANDS_QUEUE", d.queue())
        .env("CTCT_WAIT_SECONDS", "30")
        .env("CTCT_COMMAND_ID", id)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the producer ends within 60 s")
        .expect("the producer starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let result = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!("the producer printed no JSON ({error}):\n{stdout}\nstderr:\n{stderr}")
    });
    Run {
        code: output.status.code(),
        result,
        stderr,
    }
}

/// Sends a good and a bad `contact.upsert` with the producer `command(args)` gives, and
/// checks what it printed, its exit codes and the daemon's own results.
async fn producer_sends_and_reports(language: &str, command: impl Fn(&[&str]) -> Command) {
    let mut d = TestDaemon::start().await;
    let email = format!("{language}.example@example.com");
    let id = format!("example-{language}-{}", uuid::Uuid::new_v4());
    let good = run(&d, command(&[email.as_str(), "Pat"]), &id).await;
    assert_eq!(good.code, Some(0), "{language}: {}", good.stderr);
    assert!(
        good.stderr.contains(&format!("sent contact.upsert {id}")),
        "{language}: {}",
        good.stderr
    );
    let printed = &good.result;
    assert_eq!(printed["command_id"], id.as_str(), "{language}: {printed}");
    assert_eq!(printed["type"], "contact.upsert", "{language}: {printed}");
    assert_eq!(printed["outcome"], "succeeded", "{language}: {printed}");
    assert_eq!(printed["data"]["email"], email.as_str(), "{language}");
    assert_eq!(
        printed["data"]["contact"]["first_name"], "Pat",
        "{language}"
    );
    let published = d.result(&id).await;
    assert_eq!(published.outcome, Outcome::Succeeded);
    assert_eq!(
        printed["data"]["contact_id"],
        published.data.as_ref().expect("data")["contact_id"],
        "{language}: the reply is the result the daemon published"
    );

    let bad_id = format!("example-{language}-bad-{}", uuid::Uuid::new_v4());
    let bad = run(&d, command(&["not an address"]), &bad_id).await;
    assert_eq!(bad.code, Some(1), "{language}: {}", bad.stderr);
    assert_eq!(bad.result["command_id"], bad_id.as_str());
    assert_eq!(
        bad.result["outcome"], "rejected",
        "{language}: {}",
        bad.result
    );
    assert_eq!(bad.result["error"]["code"], "invalid_data");
    assert_eq!(d.result(&bad_id).await.outcome, Outcome::Rejected);
    d.stop().await;
}

fn python() -> String {
    std::env::var("CTCT_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_producer_sends_a_command_and_prints_its_result() {
    let mut probe = Command::new(python());
    probe.args(["-c", "import pika"]);
    if let Some(reason) = missing(probe, &python(), "pika").await {
        eprintln!("skipped: {reason} (pip install -r examples/python/requirements.txt)");
        return;
    }
    let script = format!("{EXAMPLES}/python/producer.py");
    producer_sends_and_reports("python", |args| {
        let mut command = Command::new(python());
        command.arg(&script).args(args);
        command
    })
    .await;
}

/// `node` finding amqplib in `CTCT_EXAMPLES_NODE_MODULES` when set, else beside the example.
fn node() -> Command {
    let mut command = Command::new("node");
    command.current_dir(format!("{EXAMPLES}/node"));
    if let Some(modules) = std::env::var_os("CTCT_EXAMPLES_NODE_MODULES") {
        command.env("NODE_PATH", modules);
    }
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_producer_sends_a_command_and_prints_its_result() {
    let mut probe = node();
    probe.args(["-e", "require('amqplib')"]);
    if let Some(reason) = missing(probe, "node", "amqplib").await {
        eprintln!(
            "skipped: {reason} (npm install in examples/node, or set CTCT_EXAMPLES_NODE_MODULES)"
        );
        return;
    }
    producer_sends_and_reports("node", |args| {
        let mut command = node();
        command.arg("producer.js").args(args);
        command
    })
    .await;
}

/// `go` in GOPATH mode, on the packages in `CTCT_EXAMPLES_GOPATH` (Debian's by default).
fn go(gopath: &Path) -> Command {
    let mut command = Command::new("go");
    command
        .current_dir(format!("{EXAMPLES}/go"))
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath);
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn the_go_producer_sends_a_command_and_prints_its_result() {
    let gopath = PathBuf::from(
        std::env::var_os("CTCT_EXAMPLES_GOPATH").unwrap_or_else(|| "/usr/share/gocode".into()),
    );
    let mut probe = go(&gopath);
    probe.arg("version");
    let library = gopath.join("src/github.com/rabbitmq/amqp091-go");
    let reason = match missing(probe, "go", "go").await {
        None if !library.is_dir() => Some(format!("amqp091-go is not in {}", library.display())),
        reason => reason,
    };
    if let Some(reason) = reason {
        eprintln!(
            "skipped: {reason} (apt-get install golang-go golang-github-rabbitmq-amqp091-go-dev)"
        );
        return;
    }
    let dir = crate::support::temp_dir();
    let binary = dir.path().join("producer");
    let built = tokio::time::timeout(
        Duration::from_secs(300),
        go(&gopath)
            .arg("build")
            .arg("-o")
            .arg(&binary)
            .arg(".")
            .output(),
    )
    .await
    .expect("go build ends within 300 s")
    .expect("go build starts");
    assert!(
        built.status.success(),
        "the Go producer builds: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    producer_sends_and_reports("go", |args| {
        let mut command = Command::new(&binary);
        command.args(args);
        command
    })
    .await;
}
