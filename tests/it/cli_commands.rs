//! `ctct-sync send` and `ctct-sync dlq` as processes against a running pipeline.

use std::time::Duration;

use ctct_sync::command::outcome::{CommandResult, Outcome};
use serde_json::json;

use crate::support::daemon::TestDaemon;

fn cli(d: &TestDaemon, args: &[&str]) -> tokio::process::Command {
    d.command(args)
}

async fn output(mut cmd: tokio::process::Command) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_publishes_a_command_and_prints_its_result() {
    let d = TestDaemon::start().await;
    let (code, stdout, stderr) = output(cli(&d, &["send", "list.list", "--wait", "30"])).await;
    assert_eq!(code, 0, "{stderr}");
    let result: CommandResult = serde_json::from_str(&stdout).expect("the result as JSON");
    assert_eq!(result.outcome, Outcome::Succeeded);

    let (code, stdout, _) = output(cli(
        &d,
        &[
            "send",
            "contact.upsert",
            "--data",
            r#"{"email":"nope"}"#,
            "--id",
            "bad-1",
        ],
    ))
    .await;
    assert_eq!(code, 1);
    let result: CommandResult = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (result.command_id.as_str(), result.outcome),
        ("bad-1", Outcome::Rejected)
    );
    assert_eq!(result.error.unwrap().fields[0].field, "data.email");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_listed_with_its_reason_and_replayed_once_its_cause_is_fixed() {
    let mut d = TestDaemon::start().await;
    d.publish(
        "needs-field",
        "contact.upsert",
        json!({"email": "loyal@example.com", "custom_fields": {"Loyalty": "gold"}}),
    )
    .await;
    let first = d.result("needs-field").await;
    assert_eq!(first.outcome, Outcome::Rejected);
    let dead_queue = d.settings.amqp.dead_letter_queue.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while d.depth(&dead_queue).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (code, stdout, stderr) = output(cli(&d, &["dlq", "list"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("needs-field")
            && stdout.contains("contact.upsert")
            && stdout.contains("invalid_data"),
        "{stdout}"
    );
    // The listing puts the messages back; the quorum queue applies that asynchronously.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while d.depth(&dead_queue).await != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "listing leaves the dead letters in place"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    d.publish(
        "make-field",
        "custom_field.create",
        json!({"label": "Loyalty", "type": "string"}),
    )
    .await;
    assert_eq!(d.result("make-field").await.outcome, Outcome::Succeeded);
    let (code, stdout, stderr) = output(cli(&d, &["dlq", "replay", "--id", "needs-field"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 command(s) sent back"), "{stdout}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        d.drain(Duration::from_millis(100)).await;
        let all: Vec<_> = d
            .received
            .iter()
            .filter(|r| r.command_id == "needs-field")
            .collect();
        if all.len() == 2 {
            assert_eq!(all[1].outcome, Outcome::Succeeded, "{:?}", all[1].error);
            assert!(
                !all[1].replayed,
                "processed afresh, not answered from the ledger"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replay produced no result"
        );
    }
    assert_eq!(d.depth(&dead_queue).await, 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_written_to_a_pipe_carry_no_colour_codes() {
    let d = TestDaemon::start().await;
    let mut cmd = cli(&d, &["send", "list.list", "--wait", "30"]);
    cmd.env("CTCT_SYNC__LOG__LEVEL", "debug");
    let (code, _, stderr) = output(cmd).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("DEBUG"),
        "debug lines were written: {stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "no ANSI escape in a pipe: {stderr:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_replay_of_an_id_that_is_not_dead_lettered_fails_naming_it() {
    let mut d = TestDaemon::start().await;
    // One dead letter that is not the one asked for: it must stay where it is.
    d.publish("dead-one", "contact.upsert", json!({"email": "nope"}))
        .await;
    assert_eq!(d.result("dead-one").await.outcome, Outcome::Rejected);
    let dead_queue = d.settings.amqp.dead_letter_queue.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while d.depth(&dead_queue).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (code, stdout, stderr) = output(cli(&d, &["dlq", "replay", "--id", "no-such-id"])).await;
    assert_eq!(code, 1, "stdout: {stdout} stderr: {stderr}");
    assert!(
        stderr.contains("\"no-such-id\"") && stderr.contains("nothing was sent back"),
        "{stderr}"
    );
    assert!(!stdout.contains("sent back"), "{stdout}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while d.depth(&dead_queue).await != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other dead letter stays queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The dead letter is intact: `--all` sends it back.
    let (code, stdout, stderr) = output(cli(&d, &["dlq", "replay", "--all"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 command(s) sent back"), "{stdout}");
    d.stop().await;
}
