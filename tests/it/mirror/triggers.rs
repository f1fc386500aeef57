//! How runs start and what they tell: the `mirror.run` command, the events on the results
//! exchange, the cron schedule (with overlapping ticks skipped), and `ctct-sync mirror`.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use ctct_sandbox::FaultSpec;
use ctct_sync::command::Command;
use ctct_sync::command::catalog::MirrorSpec;
use ctct_sync::config::{AmqpUrl, MirrorSettings};
use ctct_sync::handler::{Attempt, HandleError, Handler};
use ctct_sync::mirror::{
    EventSender, MirrorEvents, Mode, Resource, RunOutcome, Trigger, start_scheduler,
};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;

use super::{fast_options, mirror_for, run, seed};
use crate::support::api::TestApi;
use crate::support::daemon::{amqp_url, exclusive_queue};
use crate::support::engine::Engine;

fn attempt(id: &str) -> Attempt {
    Attempt {
        command_id: id.into(),
        account: "default".into(),
        number: 1,
        effect_ref: None,
        fence: None,
    }
}

crate::both_engines!(
    #[tokio::test]
    a_mirror_run_command_answers_with_its_runs_and_parks_when_the_quota_is_spent
);
async fn a_mirror_run_command_answers_with_its_runs_and_parks_when_the_quota_is_spent(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 120);
    let handler = Handler::new(t.client.clone(), t.store.clone(), t.clock.clone())
        .with_mirror(mirror_for(&t, fast_options()));
    let command = Command::MirrorRun(MirrorSpec {
        resource: Some("lists".into()),
        full: false,
    });
    let data = handler
        .handle(&attempt("mirror-1"), &command)
        .await
        .expect("the run succeeds");
    let runs = data["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{data}");
    assert_eq!(runs[0]["resource"], "lists");
    assert_eq!(runs[0]["outcome"], "succeeded");
    assert_eq!(runs[0]["trigger"], "command");
    assert!(
        runs[0]["rows_upserted"].as_u64().unwrap_or_default() > 0,
        "{data}"
    );

    t.sandbox
        .admin()
        .inject_fault(FaultSpec::quota_exceeded())
        .expect("a fault");
    let all = Command::MirrorRun(MirrorSpec {
        resource: None,
        full: true,
    });
    match handler.handle(&attempt("mirror-2"), &all).await {
        Err(HandleError::QuotaExhausted { resets_at }) => assert!(resets_at > Utc::now()),
        other => panic!("expected the command to wait for the quota: {other:?}"),
    }
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    every_run_publishes_mirror_completed_or_mirror_failed_with_its_figures
);
async fn every_run_publishes_mirror_completed_or_mirror_failed_with_its_figures(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 50);
    let exchange = format!(
        "t-{}.results",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (see README)");
    let channel = conn.create_channel().await.expect("a channel");
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the exchange");
    let queue = exclusive_queue(&channel).await;
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "event.mirror.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bound");
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "mirror-events".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consuming");
    let events = MirrorEvents::start(AmqpUrl::new(&amqp_url()), exchange.clone());
    let mirror = mirror_for(&t, fast_options()).with_events(events.sender());

    let ok = run(&mirror, Resource::CustomFields, Mode::Full).await;
    let failed = mirror
        .run_once("nobody", Resource::Lists, Mode::Full, Trigger::Cli)
        .await;
    assert_eq!(failed.outcome, RunOutcome::Failed, "{failed:?}");

    let mut received = Vec::new();
    while received.len() < 2 {
        let delivery = tokio::time::timeout(Duration::from_secs(20), consumer.next())
            .await
            .expect("an event within the deadline")
            .expect("the consumer runs")
            .expect("a delivery");
        delivery
            .ack(BasicAckOptions::default())
            .await
            .expect("acked");
        let body: Value = serde_json::from_slice(&delivery.data).expect("JSON");
        received.push((delivery.routing_key.to_string(), body));
    }
    let (key, body) = &received[0];
    assert_eq!(key, "event.mirror.completed");
    assert_eq!(body["type"], "mirror.completed");
    assert_eq!(body["status"], "succeeded");
    assert!(
        body.get("outcome").is_none(),
        "events have no outcome: {body}"
    );
    assert_eq!(body["run_id"], ok.run_id);
    assert_eq!(body["resource"], "custom_fields");
    assert_eq!(body["pages"], 1);
    assert_eq!(body["rows_upserted"], ok.rows_upserted);
    assert_eq!(body["api_requests"], 1);
    let (key, body) = &received[1];
    assert_eq!(key, "event.mirror.failed");
    assert_eq!(body["account"], "nobody");
    assert_eq!(body["status"], "failed");
    assert!(
        body.get("outcome").is_none(),
        "events have no outcome: {body}"
    );
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );

    events.stop(Duration::from_secs(5)).await;
    let _ = channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = conn.close(200, "test done".into()).await;
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    the_schedule_runs_the_mirror_and_skips_ticks_while_a_run_is_going
);
async fn the_schedule_runs_the_mirror_and_skips_ticks_while_a_run_is_going(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 50);
    let (sender, mut summaries) = EventSender::channel(64);
    let mirror = mirror_for(&t, fast_options()).with_events(sender);
    // The first run's first request takes 2.5 s: the ticks meanwhile find it going.
    t.sandbox
        .admin()
        .inject_fault(FaultSpec::latency(2500).path_prefix("/v3/contact_custom_fields"))
        .expect("a fault");
    let settings = MirrorSettings {
        url: None,
        url_file: None,
        schema: "ctct_mirror".into(),
        schedule: "0 0 0 1 1 *".into(),
        incremental_schedule: "* * * * * *".into(),
        reports: Default::default(),
        lookup_max_age_secs: ctct_sync::config::DEFAULT_LOOKUP_MAX_AGE_SECS,
    };
    let scheduler = start_scheduler(mirror.clone(), &settings, None)
        .await
        .expect("the schedule starts");

    // The hourly schedule runs every resource but the nightly-only reports.
    let hourly = Resource::ALL
        .into_iter()
        .filter(|r| r.scheduled_hourly())
        .count();
    assert_eq!(hourly, Resource::ALL.len() - 1);
    let mut seen = BTreeSet::new();
    while seen.len() < hourly {
        let summary = tokio::time::timeout(Duration::from_secs(30), summaries.recv())
            .await
            .expect("scheduled runs within the deadline")
            .expect("the channel is open");
        assert_eq!(summary.trigger, Trigger::Schedule);
        assert_eq!(summary.outcome, RunOutcome::Succeeded, "{summary:?}");
        assert_ne!(
            summary.resource,
            Resource::Reports,
            "reports run nightly only"
        );
        seen.insert(summary.resource.as_str());
    }
    assert!(
        mirror.skipped_overlaps() >= 1,
        "ticks during the slow run were skipped"
    );
    let skipped = t
        .mirror_tables()
        .number("SELECT count(*) FROM mirror_runs WHERE outcome = 'skipped'")
        .await;
    assert!(skipped >= 1, "skipped runs are recorded");

    mirror.cancel_token().cancel();
    tokio::time::timeout(
        Duration::from_secs(20),
        scheduler.stop(Duration::from_secs(10)),
    )
    .await
    .expect("the scheduler stops");
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    two_processes_on_one_store_never_run_the_same_resource_at_once
);
async fn two_processes_on_one_store_never_run_the_same_resource_at_once(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 50);
    let daemon = mirror_for(&t, fast_options());
    let cli = mirror_for(&t, fast_options());
    t.sandbox
        .admin()
        .inject_fault(FaultSpec::latency(1500).path_prefix("/v3/contact_lists"))
        .expect("a fault");

    let (slow, overlapping) = tokio::join!(run(&daemon, Resource::Lists, Mode::Full), async {
        // Starts once the first run holds the resource: its request took the fault and
        // is being held for 1.5 s.
        let admin = t.sandbox.admin();
        while admin.faults().iter().any(|f| f.remaining != Some(0)) {
            tokio::task::yield_now().await;
        }
        run(&cli, Resource::Lists, Mode::Full).await
    });
    assert_eq!(slow.outcome, RunOutcome::Succeeded, "{slow:?}");
    assert_eq!(overlapping.outcome, RunOutcome::Skipped, "{overlapping:?}");
    assert_eq!(cli.skipped_overlaps(), 1);
    let after = run(&cli, Resource::Lists, Mode::Full).await;
    assert_eq!(
        after.outcome,
        RunOutcome::Succeeded,
        "the lease was given back: {after:?}"
    );
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    the_mirror_subcommand_prints_one_line_per_resource_when_not_on_a_terminal
);
async fn the_mirror_subcommand_prints_one_line_per_resource_when_not_on_a_terminal(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 80);
    let _completer = super::ActivityCompleter::start(t.sandbox.admin());
    let output = crate::support::ctct_sync_process(t.dir.path())
        .args(["mirror", "--full", "--resource", "contacts"])
        .envs(t.cli_env())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the mirror finishes within the deadline")
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].starts_with("mirror contacts full (export): succeeded"),
        "{stdout}"
    );
    assert!(!stdout.contains('\r'), "no progress bar off a terminal");
    let mirrored = t
        .mirror_tables()
        .number("SELECT count(*) FROM contacts")
        .await;
    assert_eq!(mirrored, 80);
    t.stop().await;
}
