//! The ledger's claim on a command across processes, on both engines: two daemons on one
//! state store that both receive the same command (a redelivery during a failover) apply it
//! once; the one that finds it claimed sends it to wait and answers it from the ledger.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ctct_sandbox::FaultSpec;
use serde_json::json;

use crate::support::daemon::{TestDaemon, json_properties};
use crate::support::pg::PgTestDb;

const SECS_30: Duration = Duration::from_secs(30);

/// Two daemons on `d`'s store, each consuming a queue of its own; the same `contact.create`
/// is delivered to each at once (as a redelivery during a failover, or a publisher sending it
/// twice, would), and the first API call is held 3 s after it took effect.
async fn two_daemons_given_one_command_at_once_apply_it_once(mut d: TestDaemon) {
    let other = d.start_another_pipeline().await;
    d.api
        .sandbox
        .admin()
        .inject_fault(
            FaultSpec::latency(3000)
                .method("POST")
                .path_prefix("/v3/contacts")
                .after_effect()
                .times(1),
        )
        .unwrap();
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let id = format!("claimed-{tag}");
    let data = json!({"email": format!("claimed-{tag}@example.com")});
    let body =
        serde_json::to_vec(&json!({"id": id, "type": "contact.create", "data": data})).unwrap();
    tokio::join!(
        d.publish_body_to(d.queue(), &body, json_properties()),
        d.publish_body_to(&other.queue, &body, json_properties())
    );
    let both = d
        .receive_until(SECS_30, |d| {
            d.received.iter().filter(|r| r.command_id == id).count() >= 2
        })
        .await;
    assert!(both, "both deliveries got their result: {:?}", d.received);
    d.drain(Duration::from_millis(500)).await;
    let results: Vec<_> = d.received.iter().filter(|r| r.command_id == id).collect();
    assert_eq!(
        results.len(),
        2,
        "one final result per delivery: {results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| !r.replayed).count(),
        1,
        "the second is a replay: {results:?}"
    );
    assert!(
        results.iter().all(
            |r| r.outcome == ctct_sync::command::outcome::Outcome::Succeeded
                && r.data == results[0].data
        ),
        "{results:?}"
    );
    let calls = d
        .api
        .sandbox
        .admin()
        .request_log()
        .into_iter()
        .filter(|r| r.command_id.as_deref() == Some(id.as_str()))
        .count();
    assert_eq!(calls, 1, "exactly one API call for the command");
    let claimed = d.processor().stats.waited_claimed.load(Ordering::Relaxed)
        + other.processor.stats.waited_claimed.load(Ordering::Relaxed);
    assert!(claimed >= 1, "a delivery found the command claimed");
    let dead = d.pipeline_settings.topology.dead_letter_queue.clone();
    assert_eq!(d.depth(&dead).await, 0, "nothing dead-lettered");
    assert!(
        other.stop(&d, Duration::from_secs(15)).await,
        "the other daemon stops"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_sqlite_store_apply_a_command_delivered_to_both_once() {
    two_daemons_given_one_command_at_once_apply_it_once(TestDaemon::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_postgres_store_apply_a_command_delivered_to_both_once() {
    let db = PgTestDb::create().await;
    two_daemons_given_one_command_at_once_apply_it_once(TestDaemon::start_on_postgres(&db).await)
        .await;
}
