//! A RabbitMQ cluster given as `amqp.urls`: the daemon carries on at another node when its
//! own is stopped or killed, or is down at start, and every command gets one result.
//!
//! Each test runs a three-node cluster of its own (support/cluster.rs, scripts/cluster.sh);
//! the test's own connection — publishing commands, reading results — stays on node 3, which
//! no test stops.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ctct_sync::command::outcome::Outcome;
use ctct_sync::config::Settings;
use ctct_sync::pipeline::PipelineSettings;
use serde_json::json;

use crate::support::api::TestApi;
use crate::support::cluster::TestCluster;
use crate::support::daemon::{TestDaemon, unique_settings};
use crate::support::eventually::eventually_every;

/// How long a node may take to let the daemon go and the daemon to reach another one (the
/// daemon itself takes well under a second; the margin is for a loaded machine).
pub(crate) const FAILOVER: Duration = Duration::from_secs(60);

/// How often the broker is asked (each ask runs a command-line tool, about half a second).
pub(crate) const POLL: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_moves_to_another_node_when_its_node_stops_or_dies_and_answers_each_command_once()
 {
    let cluster = TestCluster::up().await;
    eprintln!("cluster: three nodes up in {:?}", cluster.boot_time);
    let settings = unique_settings(&[("CTCT_SYNC__AMQP__URLS", &cluster.urls())]);
    let queue = settings.amqp.commands_queue.clone();
    // Declared through node 1 with the three nodes up: the commands queue has a member on
    // each and its leader on node 1 — the node the daemon connects to first, so stopping it
    // takes both the daemon's session and the queue's leader.
    declare_through(&cluster.url(1), &settings).await;
    let mut d =
        TestDaemon::start_unstarted_on(TestApi::start().await, &cluster.url(3), settings).await;
    let members = cluster.quorum_members(3, &queue).await.unwrap();
    assert_eq!(members.len(), 3, "a member on each node: {members:?}");
    assert_eq!(
        cluster.quorum_leader(3, &queue).await.unwrap(),
        1,
        "the leader where the queue was declared"
    );
    d.start_pipeline().await;
    let first = daemon_node(&cluster, &queue, |_| true).await;
    assert_eq!(first, 1, "the first node of amqp.urls");

    let mut ids = publish_batch(&d, "before", 5).await;
    d.results(&ids, Duration::from_secs(30)).await;

    // Node 1 stops while commands arrive.
    let stopping = Instant::now();
    let during = publish_while(&d, "during", cluster.stop_node(1)).await;
    eprintln!(
        "cluster: {} commands published while node 1 stopped",
        during.len()
    );
    ids.extend(during);
    let second = daemon_node(&cluster, &queue, |n| n != 1).await;
    let failover = stopping.elapsed();
    assert_eq!(second, 2, "the node after the lost one");
    let leader = eventually_every(
        POLL,
        FAILOVER,
        "a new leader of the commands queue",
        async || match cluster.quorum_leader(3, &queue).await {
            Ok(n) if n != 1 => Ok(n),
            Ok(n) => Err(format!("still node {n}")),
            Err(seen) => Err(seen),
        },
    )
    .await;
    eprintln!(
        "cluster: node 1 stopped; the daemon consumed from node 2 after {failover:?} \
         (measured from the stop's start, through the broker's connection list); \
         the queue's new leader is node {leader}"
    );
    let after = publish_batch(&d, "after-stop", 5).await;
    // Answered before the next switch, which could otherwise catch them in flight.
    d.results(&after, FAILOVER).await;
    ids.extend(after.iter().cloned());
    let mut exact = after;

    // Node 1 back in the cluster; then the node the daemon is on dies (SIGKILL).
    cluster.start_node(1).await;
    eventually_every(
        POLL,
        FAILOVER,
        "every member of the commands queue up",
        async || {
            let members = cluster.quorum_members(3, &queue).await?;
            if members.len() == 3 && members.iter().all(|(_, state)| state != "down") {
                Ok(())
            } else {
                Err(format!("{members:?}"))
            }
        },
    )
    .await;
    let killing = Instant::now();
    cluster.kill_node(2).await;
    let third = daemon_node(&cluster, &queue, |n| n != 2).await;
    eprintln!(
        "cluster: node 2 killed; the daemon consumed from node {third} after {:?}",
        killing.elapsed()
    );
    assert_eq!(third, 3, "the node after the lost one");
    let after = publish_batch(&d, "after-kill", 5).await;
    ids.extend(after.iter().cloned());
    exact.extend(after);

    assert_each_answered_once(&mut d, &ids, &exact).await;
    let (_, metrics) = d.ops("/metrics").await;
    assert!(
        metrics.contains("ctct_amqp_reconnects_total 2"),
        "two sessions lost and rebuilt:\n{metrics}"
    );
    stop(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_and_its_commands_use_the_second_node_when_the_first_is_down_at_start() {
    let cluster = TestCluster::up().await;
    cluster.stop_node(1).await;
    let urls = cluster.urls();
    let settings = unique_settings(&[("CTCT_SYNC__AMQP__URLS", &urls)]);
    let queue = settings.amqp.commands_queue.clone();
    let mut d =
        TestDaemon::start_unstarted_on(TestApi::start().await, &cluster.url(3), settings).await;
    let started = Instant::now();
    d.start_pipeline().await;
    let on = daemon_node(&cluster, &queue, |_| true).await;
    eprintln!(
        "cluster: node 1 down; the daemon consumed from node {on} {:?} after it started",
        started.elapsed()
    );
    assert_eq!(on, 2, "node 1 refuses: the next node of amqp.urls");
    let ids = publish_batch(&d, "c", 3).await;
    assert_each_answered_once(&mut d, &ids, &ids).await;

    // `ctct-sync send` passes over the node that is down too.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        d.command(&["send", "list.list", "--id", "sent-1", "--wait", "30"])
            .env("CTCT_SYNC__AMQP__URLS", &urls)
            .output(),
    )
    .await
    .expect("send finishes")
    .expect("send runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(d.result("sent-1").await.outcome, Outcome::Succeeded);

    // `ctct-sync doctor` names the node that does not answer, without its password, and
    // only warns: the daemon works on the others.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        d.command(&["doctor"])
            .env("CTCT_SYNC__AMQP__URLS", &urls)
            .output(),
    )
    .await
    .expect("doctor finishes")
    .expect("doctor runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let broker = report
        .lines()
        .find(|l| l.starts_with("broker"))
        .unwrap_or_else(|| panic!("no broker line in:\n{report}"));
    assert!(broker.contains("warn"), "{broker}");
    assert!(broker.contains("2 of 3 nodes connected"), "{broker}");
    let down = format!("amqp://guest:***@127.0.0.1:{}/%2f", cluster.port(1));
    assert!(
        broker.contains(&down),
        "names the node that is down: {broker}"
    );
    assert!(!report.contains(":guest@"), "a password leaked: {report}");
    stop(d).await;
}

/// Stops the daemon (it must stop in time) and the sandbox. The topology goes with the
/// cluster: deleting quorum queues one of whose members is down takes seconds each.
pub(crate) async fn stop(mut d: TestDaemon) {
    let stopping = Instant::now();
    assert!(
        d.stop_pipeline(Duration::from_secs(15)).await,
        "the daemon stops within 15 s"
    );
    eprintln!("cluster: the daemon stopped in {:?}", stopping.elapsed());
    d.api.stop().await;
}

/// Declares the topology of `settings` through a connection of its own to `url`.
async fn declare_through(url: &str, settings: &Settings) {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .expect("the node answers");
    let channel = conn.create_channel().await.unwrap();
    PipelineSettings::from_settings(settings)
        .topology
        .declare(&channel)
        .await
        .expect("the topology is declared");
    let _ = conn.close(200, "declared".into()).await;
}

/// Waits until the daemon of `queue` has both its connections (consuming and publishing) on
/// one node that `wanted` accepts, as node 3 lists them; returns that node.
pub(crate) async fn daemon_node(
    cluster: &TestCluster,
    queue: &str,
    wanted: impl Fn(u16) -> bool,
) -> u16 {
    // The connection names end with the queue's name.
    let needle = format!("{queue}\"");
    eventually_every(
        POLL,
        FAILOVER,
        "the daemon's connections on one node",
        async || {
            let nodes = cluster.connections_of(3, &needle).await?;
            match nodes.as_slice() {
                [a, b] if a == b && wanted(*a) => Ok(*a),
                _ => Err(format!("connections on nodes {nodes:?}")),
            }
        },
    )
    .await
}

/// Publishes a command `TAG-0`, `TAG-1`… every 50 ms (at most 200) until `until` is done;
/// returns their ids.
async fn publish_while(d: &TestDaemon, tag: &str, until: impl Future<Output = ()>) -> Vec<String> {
    let mut ids = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    let mut until = std::pin::pin!(until);
    loop {
        tokio::select! {
            () = &mut until => return ids,
            _ = ticks.tick(), if ids.len() < 200 => {
                let id = format!("{tag}-{}", ids.len());
                d.publish(&id, "list.list", json!({})).await;
                ids.push(id);
            }
        }
    }
}

/// Publishes `n` commands `TAG-0`… (through the test's own connection); returns their ids.
async fn publish_batch(d: &TestDaemon, tag: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("{tag}-{i}");
        d.publish(&id, "list.list", json!({})).await;
        ids.push(id);
    }
    ids
}

/// Every command of `ids` succeeded, with at most one fresh result; those of `exact` (sent
/// after a switch was over) got exactly one result. A command in flight when a session was
/// lost may come back and be answered again from the ledger, marked `replayed`
/// (docs/messages.md).
async fn assert_each_answered_once(d: &mut TestDaemon, ids: &[String], exact: &[String]) {
    d.results(ids, FAILOVER).await;
    // Anything extra (a duplicate, a replay) would arrive right behind the results.
    d.drain(Duration::from_millis(500)).await;
    let mut by_id: HashMap<&str, Vec<&ctct_sync::command::outcome::CommandResult>> = HashMap::new();
    for result in &d.received {
        by_id
            .entry(result.command_id.as_str())
            .or_default()
            .push(result);
    }
    for id in ids {
        let got = by_id.get(id.as_str()).cloned().unwrap_or_default();
        assert!(!got.is_empty(), "{id}: no result");
        // At most one fresh result: a result published as its node went down may be lost
        // unconfirmed; the delivery, never acked, comes back and is answered from the
        // ledger, marked `replayed` (then the replay is the only result the client sees).
        let fresh = got.iter().filter(|r| !r.replayed).count();
        assert!(fresh <= 1, "{id}: at most one fresh result, got {got:?}");
        assert!(
            got.iter().all(|r| r.outcome == Outcome::Succeeded),
            "{id}: {got:?}"
        );
        if exact.contains(id) {
            assert_eq!(got.len(), 1, "{id}: no copies, got {got:?}");
        }
    }
    let unexpected: Vec<&str> = by_id
        .keys()
        .copied()
        .filter(|id| !ids.iter().any(|i| i == id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "results of unknown commands: {unexpected:?}"
    );
}
