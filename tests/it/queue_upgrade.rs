//! Upgrading a broker from the release at commit 9147d43 to a cluster and to this release: the
//! queues that release declared on one node, with commands still waiting in them
//! (tests/fixtures/rabbitmq-9147d43, made by scripts/make-queue-fixture.sh), become three-member
//! quorum queues with `rabbitmq-queues grow` once two nodes join (docs/operations.md,
//! "Upgrading a single broker to a cluster"); this release declares its topology over them
//! without a PRECONDITION_FAILED, answers each waiting command once, and keeps answering once
//! after the node of the commands queue's leader stops.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use ctct_sync::command::outcome::{CommandResult, Outcome};
use ctct_sync::pipeline::PipelineSettings;
use serde_json::json;

use crate::cluster::{FAILOVER, POLL, daemon_node, stop};
use crate::support::api::TestApi;
use crate::support::cluster::{QueueListing, TestCluster};
use crate::support::daemon::{TestDaemon, unique_settings};
use crate::support::eventually::eventually_every;

/// The fixture's directory.
fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rabbitmq-9147d43")
}

/// The fixture's node is `ctctupgrade1@localhost`: the cluster's nodes are named after it.
const FIXTURE_NODES: &str = "ctctupgrade";

/// The commands waiting in the fixture's commands queue: id, type and the outcome this
/// release gives each against a fresh sandbox (`commands.tsv`).
fn waiting_commands() -> Vec<(String, String, Outcome)> {
    let path = fixture_dir().join("commands.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [id, kind, outcome] = fields[..] else {
                panic!("{}: not id, type and outcome: {line:?}", path.display());
            };
            let outcome = match outcome {
                "succeeded" => Outcome::Succeeded,
                "rejected" => Outcome::Rejected,
                "failed" => Outcome::Failed,
                other => panic!("{}: unknown outcome {other:?}", path.display()),
            };
            (id.to_owned(), kind.to_owned(), outcome)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_of_release_9147d43_grow_to_three_members_and_their_waiting_commands_are_answered_once()
 {
    let waiting = waiting_commands();
    assert!(waiting.len() >= 30, "the fixture holds {}", waiting.len());
    let cluster = TestCluster::up_from(
        &fixture_dir().join("rabbitmq-9147d43.tar.gz"),
        FIXTURE_NODES,
    )
    .await;
    eprintln!(
        "queue upgrade: node 1 from the fixture and two new nodes up in {:?}",
        cluster.boot_time
    );
    // The names and delays of that release's defaults (which this release's defaults still
    // are), so the topology is the one it declared, plus what this release adds.
    let urls = cluster.urls();
    let mut settings = unique_settings(&[
        ("CTCT_SYNC__AMQP__URLS", urls.as_str()),
        ("CTCT_SYNC__AMQP__COMMANDS_QUEUE", "ctct.commands"),
        ("CTCT_SYNC__AMQP__RESULTS_EXCHANGE", "ctct.results"),
        ("CTCT_SYNC__AMQP__DEAD_LETTER_QUEUE", "ctct.commands.dead"),
        ("CTCT_SYNC__AMQP__UNROUTED_QUEUE", "ctct.results.unrouted"),
        (
            "CTCT_SYNC__AMQP__RETRY_DELAYS_MS",
            "5000,30000,300000,1800000",
        ),
        ("CTCT_SYNC__AMQP__REAUTH_RECHECK_MS", "60000"),
    ]);
    // The release's `send` gave each command a reply_to of its own reply queue, gone since:
    // every reply would come back unroutable. No replies (`[]`): the broker returns a
    // mandatory publish without saying which one, lapin hands the return to whichever
    // confirm of the channel it resolves first, and a return pinned on another publish of
    // the daemon's (the copy for the unrouted queue) rebuilds the session, so commands in
    // flight come back and are answered a second time, as replays.
    settings.amqp.reply_to_prefixes = Vec::new();
    let topology = PipelineSettings::from_settings(&settings).topology;
    let added = [
        topology.dead_letter_watch_queue.clone(),
        topology.unrouted_queue.clone(),
    ];
    let mut ours = vec![
        topology.commands_queue.clone(),
        topology.dead_letter_queue.clone(),
        topology.parked_quota_queue.clone(),
        topology.parked_auth_queue.clone(),
    ];
    ours.extend(topology.retry_queues.iter().map(|(name, _)| name.clone()));
    let queue = topology.commands_queue.clone();

    // As the release left them: one member each (node 1's), the commands waiting (the
    // broker's message counts come a few seconds after the queues are up).
    eventually_every(
        POLL,
        FAILOVER,
        "the fixture's queues, one member each, its commands waiting",
        async || {
            let before = listing(&cluster).await?;
            for name in &ours {
                match before.get(name) {
                    Some(q) if q.members == [1] => {}
                    other => return Err(format!("{name}: {other:?}")),
                }
            }
            match before[&queue].messages {
                n if n == waiting.len() as u64 => Ok(()),
                n => Err(format!("{n} messages in {queue}")),
            }
        },
    )
    .await;

    // The upgrade path: a member on each new node (docs/operations.md).
    cluster.grow().await;
    let grown = listing(&cluster).await.unwrap();
    for name in &ours {
        assert_eq!(
            grown[name].members,
            [1, 2, 3],
            "{name}: a member on each node"
        );
    }
    assert_eq!(
        grown[&queue].leader,
        Some(1),
        "the leader stays where the queue was declared"
    );

    // This release's topology over the old queues, declared through node 3: an argument
    // that differs would close the channel with PRECONDITION_FAILED.
    let conn = lapin::Connection::connect(&cluster.url(3), lapin::ConnectionProperties::default())
        .await
        .expect("node 3 answers");
    let channel = conn.create_channel().await.unwrap();
    if let Err(error) = topology.declare(&channel).await {
        panic!("this release's topology does not fit the queues of 9147d43: {error}");
    }
    let _ = conn.close(200, "declared".into()).await;

    // The daemon (its session on node 1, the first of amqp.urls); the test's own connection
    // on node 3, which stays up.
    let mut d =
        TestDaemon::start_unstarted_on(TestApi::start().await, &cluster.url(3), settings).await;
    d.start_pipeline().await;
    let ids: Vec<String> = waiting.iter().map(|(id, _, _)| id.clone()).collect();
    d.results(&ids, FAILOVER).await;
    // Every queue the daemon declares, the new ones too, has a member on each node; the
    // commands queue is empty and nothing is unacknowledged (so nothing can come back).
    eventually_every(
        POLL,
        FAILOVER,
        "every queue with three members, the commands queue empty",
        async || {
            let now = cluster.queues(3).await?;
            let by_name: HashMap<&str, _> = now.iter().map(|q| (q.name.as_str(), q)).collect();
            for name in ours.iter().chain(&added) {
                match by_name.get(name.as_str()) {
                    Some(q) if q.members == [1, 2, 3] => {}
                    other => return Err(format!("{name}: {other:?}")),
                }
            }
            match by_name.get(queue.as_str()).map(|q| q.messages) {
                Some(0) => Ok(()),
                n => Err(format!("{n:?} messages in {queue}")),
            }
        },
    )
    .await;
    d.drain(Duration::from_millis(500)).await;
    let by_id = results_by_id(&d.received);
    for (id, kind, outcome) in &waiting {
        let got = by_id.get(id.as_str()).cloned().unwrap_or_default();
        assert_eq!(got.len(), 1, "{id} ({kind}): one result, got {got:?}");
        assert_eq!(got[0].outcome, *outcome, "{id} ({kind}): {got:?}");
        assert!(!got[0].replayed, "{id} ({kind}): applied, not replayed");
    }
    eprintln!(
        "queue upgrade: {} commands left by 9147d43 answered once each",
        waiting.len()
    );

    // The node of the commands queue's leader stops.
    cluster.stop_node(1).await;
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
    let on = daemon_node(&cluster, &queue, |n| n != 1).await;
    eprintln!("queue upgrade: node 1 stopped; leader on node {leader}, the daemon on node {on}");
    let mut after = Vec::new();
    for i in 0..10 {
        let id = format!("after-stop-{i}");
        if i % 2 == 0 {
            d.publish(&id, "list.list", json!({})).await;
        } else {
            let email = format!("after{i}@example.com");
            d.publish(&id, "contact.upsert", json!({ "email": email }))
                .await;
        }
        after.push(id);
    }
    d.results(&after, FAILOVER).await;
    d.drain(Duration::from_millis(500)).await;
    let by_id = results_by_id(&d.received);
    for id in ids.iter().chain(&after) {
        let got = by_id.get(id.as_str()).cloned().unwrap_or_default();
        assert_eq!(got.len(), 1, "{id}: one result, got {got:?}");
    }
    for id in &after {
        assert_eq!(by_id[id.as_str()][0].outcome, Outcome::Succeeded, "{id}");
    }
    let unexpected: Vec<&str> = by_id
        .keys()
        .copied()
        .filter(|id| !ids.iter().chain(&after).any(|i| i == id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "results of unknown commands: {unexpected:?}"
    );
    stop(d).await;
}

/// Every queue as node 3 lists it, by name.
async fn listing(cluster: &TestCluster) -> Result<HashMap<String, QueueListing>, String> {
    Ok(cluster
        .queues(3)
        .await?
        .into_iter()
        .map(|q| (q.name.clone(), q))
        .collect())
}

fn results_by_id(received: &[CommandResult]) -> HashMap<&str, Vec<&CommandResult>> {
    let mut by_id: HashMap<&str, Vec<&CommandResult>> = HashMap::new();
    for result in received {
        by_id
            .entry(result.command_id.as_str())
            .or_default()
            .push(result);
    }
    by_id
}
