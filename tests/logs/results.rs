//! What an operator sees at the default level: one info line per final result (replays and
//! bulk upserts included) naming the command and how it ended, without personal data; and
//! no chatter from the mirror's scheduler.

use std::collections::HashMap;
use std::time::Duration;

use ctct_sync::api::model::ListInput;
use ctct_sync::command::outcome::Outcome;
use serde_json::json;
use tracing::Level;

use crate::capture::{Capture, capture};
use crate::support::api::TestApi;
use crate::support::daemon::{TestDaemon, terminate};
use crate::support::eventually::eventually;

const FIELDS: [&str; 8] = [
    "command_id=",
    "command_type=",
    "account=",
    "outcome=",
    "error_code=",
    "attempts=",
    "duration_ms=",
    "replayed=",
];

/// Personal data the commands below carry; none may show in a line above debug level.
const PERSONAL: [&str; 7] = [
    "result.one@example.com",
    "result.bad@example",
    "bulk.0@example.com",
    "bulk.1@example.com",
    "bulk.2@example.com",
    "Zebulon",
    "Quixotic",
];

/// The `command finished` info lines, by command id, once `expected` of them are there.
async fn finished_lines(capture: &Capture, expected: usize) -> HashMap<String, Vec<String>> {
    let lines = eventually(
        Duration::from_secs(10),
        &format!("{expected} `command finished` lines"),
        async || {
            let lines: Vec<String> = capture
                .records_at(Level::INFO)
                .into_iter()
                .filter(|r| r.contains("command finished"))
                .collect();
            if lines.len() >= expected {
                Ok(lines)
            } else {
                Err(format!("{lines:#?}"))
            }
        },
    )
    .await;
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for line in lines {
        let id = field(&line, "command_id").unwrap_or_default();
        by_id.entry(id).or_default().push(line);
    }
    by_id
}

/// The value of `name=` in a line (its last occurrence: the event's own field, after the
/// span's).
fn field(line: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=");
    let at = line.rfind(&key)? + key.len();
    Some(
        line[at..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_final_result_leaves_one_info_line_without_personal_data() {
    let capture = capture().await;
    let api = TestApi::start().await;
    let list = api
        .api()
        .create_list(&ListInput::new("Result lines"))
        .await
        .unwrap()
        .list_id;
    let mut d = TestDaemon::start_with(
        api,
        &[
            ("CTCT_SYNC__BULK__WINDOW_MS", "500"),
            ("CTCT_SYNC__BULK__POLL_INITIAL_MS", "100"),
            ("CTCT_SYNC__BULK__POLL_MAX_MS", "200"),
            // The three upserts below are published one after another: the first would
            // reach an idle daemon and go one by one at once; this test is about the lines
            // of a bulk import's results.
            ("CTCT_SYNC__BULK__IDLE_ONE_BY_ONE", "false"),
        ],
    )
    .await;
    let one = json!({"email": PERSONAL[0], "first_name": PERSONAL[5], "last_name": PERSONAL[6]});
    d.publish("one", "contact.create", one.clone()).await;
    assert_eq!(d.result("one").await.outcome, Outcome::Succeeded);
    d.publish("bad", "contact.create", json!({"email": PERSONAL[1]}))
        .await;
    assert_eq!(d.result("bad").await.outcome, Outcome::Rejected);
    // The same id again: its stored result is sent again, marked replayed.
    d.publish("one", "contact.create", one).await;
    // Three upserts in one window: one bulk import, one result each.
    let bulk: Vec<String> = (0..3).map(|i| format!("bulk-{i}")).collect();
    for (i, id) in bulk.iter().enumerate() {
        d.publish(
            id,
            "contact.upsert",
            json!({"email": PERSONAL[2 + i], "first_name": PERSONAL[5], "list_ids": [list]}),
        )
        .await;
    }
    let results = d.results(&bulk, Duration::from_secs(30)).await;
    for id in &bulk {
        assert_eq!(results[id][0].outcome, Outcome::Succeeded, "{id}");
    }
    assert_eq!(
        d.processor()
            .stats
            .bulk_commands
            .load(std::sync::atomic::Ordering::Relaxed),
        3,
        "the upserts went through a bulk import"
    );
    assert!(
        d.receive_until(Duration::from_secs(30), |d| {
            d.received.iter().filter(|r| r.command_id == "one").count() >= 2
        })
        .await,
        "no replayed result"
    );
    // Six results: one line each, nothing more.
    let by_id = finished_lines(&capture, 6).await;
    let count: usize = by_id.values().map(Vec::len).sum();
    assert_eq!(count, 6, "one line per final result: {by_id:#?}");
    assert_eq!(d.received.len(), 6, "six results went out");
    for lines in by_id.values() {
        for line in lines {
            for name in FIELDS {
                assert!(line.contains(name), "{name} missing from: {line}");
            }
            assert_eq!(field(line, "account").as_deref(), Some("default"), "{line}");
        }
    }
    let one = &by_id["one"];
    assert_eq!(one.len(), 2, "{one:?}");
    let replayed: Vec<_> = one.iter().filter_map(|l| field(l, "replayed")).collect();
    assert!(replayed.contains(&"false".to_owned()), "{one:?}");
    assert!(replayed.contains(&"true".to_owned()), "{one:?}");
    for line in one {
        assert_eq!(
            field(line, "command_type").as_deref(),
            Some("contact.create")
        );
        assert_eq!(field(line, "outcome").as_deref(), Some("succeeded"));
        assert_eq!(field(line, "attempts").as_deref(), Some("1"));
    }
    let bad = &by_id["bad"];
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(field(&bad[0], "outcome").as_deref(), Some("rejected"));
    assert_eq!(
        field(&bad[0], "error_code").as_deref(),
        Some(d.result("bad").await.error.unwrap().code.as_str())
    );
    for id in &bulk {
        assert_eq!(by_id[id].len(), 1, "{id}: {:?}", by_id[id]);
        assert_eq!(
            field(&by_id[id][0], "command_type").as_deref(),
            Some("contact.upsert")
        );
    }
    for level in [Level::INFO, Level::WARN, Level::ERROR] {
        for record in capture.records_at(level) {
            for personal in PERSONAL {
                assert!(
                    !record.contains(personal),
                    "{personal} shows at {level}: {record}"
                );
            }
        }
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_at_its_default_level_logs_each_result_and_no_scheduler_chatter() {
    let _capture = capture().await;
    let mut d = TestDaemon::start().await;
    assert!(
        d.stop_pipeline(Duration::from_secs(10)).await,
        "the in-process pipeline steps aside"
    );
    let (mut daemon, log) = d.spawn_with_log("daemon", &[]);
    d.publish("default-level", "list.list", json!({})).await;
    assert_eq!(d.result("default-level").await.outcome, Outcome::Succeeded);
    let finished = eventually(
        Duration::from_secs(10),
        "a `command finished` line",
        async || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            match text
                .lines()
                .find(|l| l.contains("command finished") && l.contains("default-level"))
            {
                Some(line) => Ok(line.to_owned()),
                None => Err(format!("the daemon said:\n{text}")),
            }
        },
    )
    .await;
    assert!(finished.contains(" INFO "), "{finished}");
    for name in FIELDS {
        assert!(finished.contains(name), "{name} missing from: {finished}");
    }
    terminate(&mut daemon).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("shutdown requested"), "{text}");
    assert!(
        !text.contains("tokio_cron_scheduler"),
        "the scheduler's lines show at the default level:\n{text}"
    );
    d.stop().await;
}
