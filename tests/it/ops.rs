//! The ops listener: `/metrics` series with their labels after real commands, `/healthz`,
//! and `/readyz` flipping when the broker is out of reach or no account is usable.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::api::TestApi;
use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;
use crate::support::eventually::eventually;
use crate::support::proxy::BrokerProxy;

async fn wait_for(d: &TestDaemon, path: &str, status: u16) -> String {
    eventually(
        Duration::from_secs(30),
        &format!("{path} answers {status}"),
        async || {
            let (got, body) = d.ops(path).await;
            if got == status {
                Ok(body)
            } else {
                Err(format!("{path} stayed {got}: {body}"))
            }
        },
    )
    .await
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    metrics_expose_the_named_series_with_their_labels_after_a_run_of_commands
);
async fn metrics_expose_the_named_series_with_their_labels_after_a_run_of_commands(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    d.publish("m-ok", "list.list", json!({})).await;
    d.publish("m-bad", "contact.upsert", json!({"email": "nope"}))
        .await;
    d.publish("m-evil", "x\"injected\"", json!({})).await;
    d.results(
        &["m-ok".into(), "m-bad".into(), "m-evil".into()],
        Duration::from_secs(30),
    )
    .await;
    let expected = [
        r#"ctct_commands_total{type="list.list",outcome="succeeded"} 1"#,
        r#"ctct_commands_total{type="contact.upsert",outcome="rejected"} 1"#,
        r#"ctct_commands_total{type="unknown",outcome="rejected"} 1"#,
        r#"ctct_command_duration_seconds_count{type="list.list"} 1"#,
        r#"ctct_api_requests_total{route="GET /contact_lists",status="200"} 1"#,
        r#"ctct_dead_lettered_total 2"#,
        r#"ctct_amqp_connected 1"#,
        r#"ctct_quota_limit 1000000"#,
        r#"ctct_accounts_reauth_required 0"#,
        r#"ctct_account_reauth_required{account="default"} 0"#,
    ];
    // Dead letters are counted once their publish is confirmed, just after the result.
    let metrics = eventually(
        Duration::from_secs(30),
        "every expected series in /metrics",
        async || {
            let (status, metrics) = d.ops("/metrics").await;
            assert_eq!(status, 200);
            let missing: Vec<_> = expected
                .iter()
                .filter(|series| !metrics.contains(*series))
                .collect();
            if missing.is_empty() {
                Ok(metrics)
            } else {
                Err(format!("missing {missing:?} in:\n{metrics}"))
            }
        },
    )
    .await;
    for name in [
        "ctct_quota_remaining",
        "ctct_token_expires_in_seconds{account=\"default\"}",
        "ctct_api_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "missing {name}");
    }
    assert!(
        !metrics.contains("injected"),
        "hostile types never become labels"
    );
    assert_eq!(d.ops("/healthz").await.0, 200);
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    readiness_needs_the_broker_the_store_and_an_authorised_account
);
async fn readiness_needs_the_broker_the_store_and_an_authorised_account(engine: Engine) {
    let mut d = TestDaemon::start_on(engine).await;
    let ready: Value = serde_json::from_str(&wait_for(&d, "/readyz", 200).await).unwrap();
    assert_eq!(ready["checks"]["store"], "writable");

    // The only account needs re-authorisation: not ready, and the body says why.
    let primary = d.api.sandbox.admin().primary_account();
    d.api.sandbox.admin().revoke_tokens(&primary).unwrap();
    d.api.advance_clocks(Duration::from_secs(25 * 3600));
    d.publish("r-1", "list.list", json!({})).await;
    let body: Value = serde_json::from_str(&wait_for(&d, "/readyz", 503).await).unwrap();
    assert_eq!(body["accounts_needing_reauthorisation"], json!(["default"]));
    assert!(
        body["checks"]["accounts"]
            .as_str()
            .unwrap()
            .contains("auth login")
    );

    // Authorised again: ready again, and the parked command completes.
    d.api.reauthorise().await;
    wait_for(&d, "/readyz", 200).await;
    assert_eq!(
        d.result("r-1").await.outcome,
        ctct_sync::command::outcome::Outcome::Succeeded
    );
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    readiness_fails_while_the_broker_is_out_of_reach
);
async fn readiness_fails_while_the_broker_is_out_of_reach(engine: Engine) {
    let api = TestApi::start_on(engine).await;
    // Nothing listens on port 1: the pipeline keeps trying, the daemon is not ready.
    let mut d = TestDaemon::start_with(api, &[]).await;
    assert!(d.stop_pipeline(Duration::from_secs(15)).await);
    let amqp = d.settings.amqp.clone();
    let unreachable = crate::support::daemon::unique_settings(&[
        ("CTCT_SYNC__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f"),
        ("CTCT_SYNC__AMQP__COMMANDS_QUEUE", &amqp.commands_queue),
        ("CTCT_SYNC__AMQP__RESULTS_EXCHANGE", &amqp.results_exchange),
        (
            "CTCT_SYNC__AMQP__DEAD_LETTER_QUEUE",
            &amqp.dead_letter_queue,
        ),
        ("CTCT_SYNC__AMQP__UNROUTED_QUEUE", &amqp.unrouted_queue),
    ]);
    d.settings = unreachable;
    d.start_pipeline().await;
    let body: Value = serde_json::from_str(&wait_for(&d, "/readyz", 503).await).unwrap();
    assert_eq!(body["checks"]["broker"], "not connected");
    assert_eq!(d.ops("/healthz").await.0, 200, "alive, just not ready");
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    readiness_fails_when_the_broker_goes_away_and_returns_with_it_losing_no_command
);
async fn readiness_fails_when_the_broker_goes_away_and_returns_with_it_losing_no_command(
    engine: Engine,
) {
    use ctct_sync::command::outcome::Outcome;

    // The daemon reaches the broker through a proxy the test can cut; the test's own
    // connection goes straight to the broker, so it can publish during the cut.
    let proxy = BrokerProxy::start().await;
    let url = proxy.url();
    let mut d = TestDaemon::start_with(
        TestApi::start_on(engine).await,
        &[("CTCT_SYNC__AMQP__URL", &url)],
    )
    .await;
    let ready: Value = serde_json::from_str(&wait_for(&d, "/readyz", 200).await).unwrap();
    assert_eq!(ready["checks"]["broker"], "connected");
    d.publish("g-before", "list.list", json!({})).await;
    assert_eq!(d.result("g-before").await.outcome, Outcome::Succeeded);

    // The broker goes away while the daemon runs: not ready, and the body says it is the broker.
    proxy.cut();
    let body: Value = serde_json::from_str(&wait_for(&d, "/readyz", 503).await).unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["checks"]["broker"], "not connected");
    assert_eq!(
        body["checks"]["store"], "writable",
        "only the broker is missing"
    );
    assert_eq!(body["checks"]["accounts"], "1 authorised");
    assert_eq!(d.ops("/healthz").await.0, 200, "alive, just not ready");
    d.publish("g-during", "list.list", json!({})).await;

    // The broker is back: ready again, and the commands waiting for it are done.
    proxy.restore();
    let ready: Value = serde_json::from_str(&wait_for(&d, "/readyz", 200).await).unwrap();
    assert_eq!(ready["checks"]["broker"], "connected");
    d.publish("g-after", "list.list", json!({})).await;
    let ids = ["g-before".to_owned(), "g-during".into(), "g-after".into()];
    d.results(&ids, Duration::from_secs(30)).await;
    // Anything extra (a duplicate, a replay) would arrive right behind the results.
    d.drain(Duration::from_millis(500)).await;
    for id in &ids {
        let got: Vec<_> = d.received.iter().filter(|r| &r.command_id == id).collect();
        let fresh = got.iter().filter(|r| !r.replayed).count();
        assert_eq!(fresh, 1, "{id}: exactly one result, got {got:?}");
        assert!(
            got.iter().all(|r| r.outcome == Outcome::Succeeded),
            "{id}: {got:?}"
        );
        // The cut can land between g-before's result and its ack: the broker then
        // redelivers it and the ledger sends the stored result again, marked
        // (docs/messages.md, "replayed"). Commands handled after the cut get exactly one.
        if id != "g-before" {
            assert_eq!(got.len(), 1, "{id}: no copies, got {got:?}");
        }
    }
    let (_, metrics) = d.ops("/metrics").await;
    assert!(
        metrics.contains("ctct_amqp_reconnects_total 1"),
        "one session lost and rebuilt:\n{metrics}"
    );
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    metrics_show_every_resources_last_success_from_the_start_and_mirror_runs_in_units
);
async fn metrics_show_every_resources_last_success_from_the_start_and_mirror_runs_in_units(
    engine: Engine,
) {
    use crate::support::scrape::value;
    use ctct_sync::command::outcome::Outcome;

    let api = TestApi::start_on(engine).await;
    crate::mirror::seed(&api, 40);
    let mut d = TestDaemon::start_with_mirror(api, &[]).await;

    // Before any run: every resource's last success is 0 (an alert on its age can fire),
    // no run is counted, and the process reports itself.
    let (status, before) = d.ops("/metrics").await;
    assert_eq!(status, 200);
    for resource in [
        "contacts",
        "custom_fields",
        "lists",
        "tags",
        "segments",
        "campaigns",
        "reports",
    ] {
        let full = format!(
            "ctct_mirror_last_success_timestamp_seconds{{resource=\"{resource}\",mode=\"full\"}}"
        );
        assert_eq!(value(&before, &full), Some(0.0), "{full}:\n{before}");
        let runs =
            format!("ctct_mirror_runs_total{{resource=\"{resource}\",outcome=\"succeeded\"}}");
        assert_eq!(value(&before, &runs), Some(0.0), "{runs}:\n{before}");
    }
    assert_eq!(
        value(
            &before,
            "ctct_mirror_last_success_timestamp_seconds{resource=\"reports\",mode=\"incremental\"}"
        ),
        None,
        "reports never run incrementally"
    );
    assert!(!before.contains("ctct_mirror_lag_seconds{"), "{before}");
    assert!(!before.contains("ctct_mirror_last_run_pages{"), "{before}");
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(value(&before, name).is_some(), "{name}:\n{before}");
    }
    assert!(value(&before, "process_resident_memory_bytes").unwrap() > 0.0);

    d.publish(
        "mm-contacts",
        "mirror.run",
        json!({"resource": "contacts", "full": true}),
    )
    .await;
    let result = d.result("mm-contacts").await;
    assert_eq!(result.outcome, Outcome::Succeeded, "{result:?}");
    let data = result.data.expect("the run's summary");
    let run = &data["runs"][0];
    assert_eq!(run["outcome"], "succeeded", "{data}");
    let figure = |key: &str| run[key].as_f64().expect(key);
    assert!(figure("rows_upserted") >= 40.0, "{data}");

    let (_, after) = d.ops("/metrics").await;
    let series = |name: &str, extra: &str| {
        let labels = format!("resource=\"contacts\",mode=\"full\"{extra}");
        value(&after, &format!("{name}{{{labels}}}"))
            .unwrap_or_else(|| panic!("{name}{{{labels}}} missing:\n{after}"))
    };
    assert_eq!(series("ctct_mirror_last_run_pages", ""), figure("pages"));
    assert_eq!(
        series("ctct_mirror_last_run_rows", ",kind=\"upserted\""),
        figure("rows_upserted")
    );
    assert_eq!(
        series("ctct_mirror_last_run_rows", ",kind=\"deleted\""),
        figure("rows_deleted")
    );
    assert_eq!(
        series("ctct_mirror_last_run_api_requests", ""),
        figure("api_requests")
    );
    let finished = series("ctct_mirror_last_success_timestamp_seconds", "");
    let reported = chrono::DateTime::parse_from_rfc3339(run["finished_at"].as_str().unwrap())
        .unwrap()
        .timestamp() as f64;
    assert!(
        (finished - reported).abs() <= 1.0,
        "{finished} vs {reported}"
    );
    assert!(series("ctct_mirror_lag_seconds", "").is_finite());
    assert_eq!(
        value(
            &after,
            "ctct_mirror_runs_total{resource=\"contacts\",outcome=\"succeeded\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "ctct_mirror_last_success_timestamp_seconds{resource=\"lists\",mode=\"full\"}"
        ),
        Some(0.0),
        "resources not run yet stay at 0"
    );
    assert!(
        !after.contains("ctct_mirror_last_run{"),
        "the old mixed series is gone:\n{after}"
    );
    d.stop().await;
}
