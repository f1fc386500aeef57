//! `ctct-sync send` and `ctct-sync dlq` as processes against a running pipeline.

use std::time::Duration;

use ctct_sync::command::outcome::{CommandResult, Outcome};
use serde_json::json;

use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;
use crate::support::eventually::eventually;

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

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    send_publishes_a_command_and_prints_its_result
);
async fn send_publishes_a_command_and_prints_its_result(engine: Engine) {
    let d = TestDaemon::start_on(engine).await;
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

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_dead_letter_is_listed_with_its_reason_and_replayed_once_its_cause_is_fixed
);
async fn a_dead_letter_is_listed_with_its_reason_and_replayed_once_its_cause_is_fixed(
    engine: Engine,
) {
    let mut d = TestDaemon::start_on(engine).await;
    d.publish(
        "needs-field",
        "contact.upsert",
        json!({"email": "loyal@example.com", "custom_fields": {"Loyalty": "gold"}}),
    )
    .await;
    let first = d.result("needs-field").await;
    assert_eq!(first.outcome, Outcome::Rejected);
    let dead_queue = d.settings.amqp.dead_letter_queue.clone();
    eventually(
        Duration::from_secs(30),
        "the command dead-lettered",
        async || d.depth(&dead_queue).await > 0,
    )
    .await;

    let (code, stdout, stderr) = output(cli(&d, &["dlq", "list"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("needs-field")
            && stdout.contains("contact.upsert")
            && stdout.contains("invalid_data"),
        "{stdout}"
    );
    // The listing puts the messages back; the quorum queue applies that asynchronously.
    eventually(
        Duration::from_secs(30),
        "listing leaves the dead letters in place",
        async || d.depth(&dead_queue).await == 1,
    )
    .await;

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

    let all = |d: &TestDaemon| -> Vec<CommandResult> {
        d.received
            .iter()
            .filter(|r| r.command_id == "needs-field")
            .cloned()
            .collect()
    };
    assert!(
        d.receive_until(Duration::from_secs(30), |d| all(d).len() == 2)
            .await,
        "the replay produced no result"
    );
    let all = all(&d);
    assert_eq!(all[1].outcome, Outcome::Succeeded, "{:?}", all[1].error);
    assert!(
        !all[1].replayed,
        "processed afresh, not answered from the ledger"
    );
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

/// Reads results from `consumer` until the `nth` (from 0) result for `id` has arrived
/// (60 s at most) and returns it.
async fn nth_result(
    consumer: &mut lapin::Consumer,
    received: &mut Vec<CommandResult>,
    id: &str,
    nth: usize,
) -> CommandResult {
    use futures_util::StreamExt as _;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = received.iter().filter(|r| r.command_id == id).nth(nth) {
            return found.clone();
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "no result #{nth} for {id}: {received:?}");
        if let Ok(Some(Ok(delivery))) = tokio::time::timeout(left, consumer.next()).await {
            delivery
                .ack(lapin::options::BasicAckOptions::default())
                .await
                .unwrap();
            if let Ok(result) = serde_json::from_slice::<CommandResult>(&delivery.data) {
                received.push(result);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_replay_with_sandbox_forgets_the_result_in_the_store_of_run_sandbox() {
    // The hand-testing flow of docs/messages.md: a daemon under `run --sandbox` keeps its
    // ledger in `<stem>-sandbox.db`; `dlq replay --sandbox` must forget the rejected result
    // there, or the replay is answered from the ledger instead of being applied.
    use crate::support::daemon::{amqp_url, exclusive_queue, json_properties, unique_settings};
    use lapin::options::{BasicConsumeOptions, QueueBindOptions};
    use lapin::types::FieldTable;

    let dir = crate::support::temp_dir();
    let store = crate::support::fresh_db_path(dir.path());
    let settings = unique_settings(&[]);
    let amqp = settings.amqp.clone();
    let env = [
        ("CTCT_SYNC__STORE__PATH", store.display().to_string()),
        ("CTCT_SYNC__AMQP__URL", amqp_url()),
        (
            "CTCT_SYNC__AMQP__COMMANDS_QUEUE",
            amqp.commands_queue.clone(),
        ),
        (
            "CTCT_SYNC__AMQP__RESULTS_EXCHANGE",
            amqp.results_exchange.clone(),
        ),
        (
            "CTCT_SYNC__AMQP__DEAD_LETTER_QUEUE",
            amqp.dead_letter_queue.clone(),
        ),
        ("CTCT_SYNC__AMQP__RETRY_DELAYS_MS", "200,400".into()),
        ("CTCT_SYNC__AMQP__PARK_JITTER_MS", "0".into()),
        ("CTCT_SYNC__OPS__LISTEN", "127.0.0.1:0".into()),
        // No scheduled mirror run takes the sandbox's 4 requests a second.
        ("CTCT_SYNC__MIRROR__SCHEDULE", "0 0 2 1 1 *".into()),
        (
            "CTCT_SYNC__MIRROR__INCREMENTAL_SCHEDULE",
            "0 0 3 1 1 *".into(),
        ),
    ];
    let cli = |args: &[&str]| {
        let mut cmd = crate::support::ctct_sync_process(dir.path());
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    };

    // The topology first, so the results can be watched from the daemon's first one.
    let topology = ctct_sync::pipeline::PipelineSettings::from_settings(&settings).topology;
    let conn = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (see README)");
    let channel = conn.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    topology.declare(&channel).await.unwrap();
    let results_queue = exclusive_queue(&channel).await;
    channel
        .queue_bind(
            results_queue.as_str().into(),
            topology.results_exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut results = channel
        .basic_consume(
            results_queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut received = Vec::new();

    let mut daemon = cli(&["run", "--sandbox"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the daemon starts");
    let publish = |id: &'static str, command_type: &'static str, data: serde_json::Value| {
        let channel = channel.clone();
        let queue = topology.commands_queue.clone();
        async move {
            let body = json!({"id": id, "type": command_type, "data": data});
            let confirm = channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    Default::default(),
                    &serde_json::to_vec(&body).unwrap(),
                    json_properties(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            assert!(confirm.is_ack());
        }
    };

    publish(
        "sbx-needs-field",
        "contact.upsert",
        json!({"email": "loyal@example.com", "custom_fields": {"Loyalty": "gold"}}),
    )
    .await;
    let first = nth_result(&mut results, &mut received, "sbx-needs-field", 0).await;
    assert_eq!(first.outcome, Outcome::Rejected, "{:?}", first.error);
    eventually(
        Duration::from_secs(30),
        "the command dead-lettered",
        async || depth(&channel, &topology.dead_letter_queue).await == 1,
    )
    .await;

    publish(
        "sbx-make-field",
        "custom_field.create",
        json!({"label": "Loyalty", "type": "string"}),
    )
    .await;
    let made = nth_result(&mut results, &mut received, "sbx-make-field", 0).await;
    assert_eq!(made.outcome, Outcome::Succeeded, "{:?}", made.error);

    let (code, stdout, stderr) = output(cli(&[
        "dlq",
        "replay",
        "--id",
        "sbx-needs-field",
        "--sandbox",
    ]))
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 command(s) sent back"), "{stdout}");

    let again = nth_result(&mut results, &mut received, "sbx-needs-field", 1).await;
    assert!(
        !again.replayed,
        "the replay was answered from the ledger instead of being applied: {again:?}"
    );
    assert_eq!(again.outcome, Outcome::Succeeded, "{:?}", again.error);
    eventually(
        Duration::from_secs(30),
        "the replayed command gone from the dead-letter queue",
        async || depth(&channel, &topology.dead_letter_queue).await == 0,
    )
    .await;

    daemon.start_kill().unwrap();
    let _ = daemon.wait().await;
    let _ = topology.delete(&channel).await;
    let _ = conn.close(200, "test done".into()).await;
}

/// Messages ready in `queue`.
async fn depth(channel: &lapin::Channel, queue: &str) -> u32 {
    channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .map(|q| q.message_count())
        .unwrap_or(u32::MAX)
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    dlq_replay_of_an_id_that_is_not_dead_lettered_fails_naming_it
);
async fn dlq_replay_of_an_id_that_is_not_dead_lettered_fails_naming_it(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    // One dead letter that is not the one asked for: it must stay where it is.
    d.publish("dead-one", "contact.upsert", json!({"email": "nope"}))
        .await;
    assert_eq!(d.result("dead-one").await.outcome, Outcome::Rejected);
    let dead_queue = d.settings.amqp.dead_letter_queue.clone();
    eventually(
        Duration::from_secs(30),
        "the command dead-lettered",
        async || d.depth(&dead_queue).await > 0,
    )
    .await;

    let (code, stdout, stderr) = output(cli(&d, &["dlq", "replay", "--id", "no-such-id"])).await;
    assert_eq!(code, 1, "stdout: {stdout} stderr: {stderr}");
    assert!(
        stderr.contains("\"no-such-id\"") && stderr.contains("nothing was sent back"),
        "{stderr}"
    );
    assert!(!stdout.contains("sent back"), "{stdout}");
    eventually(
        Duration::from_secs(30),
        "the other dead letter stays queued",
        async || d.depth(&dead_queue).await == 1,
    )
    .await;

    // The dead letter is intact: `--all` sends it back.
    let (code, stdout, stderr) = output(cli(&d, &["dlq", "replay", "--all"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 command(s) sent back"), "{stdout}");
    d.stop().await;
}
