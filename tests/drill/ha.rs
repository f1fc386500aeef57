//! The replica drill (docs/scaling.md, "The replica drill"): the drill's plan of mixed
//! commands goes through two or more `ctct-sync run` replicas sharing one PostgreSQL state
//! store (a private server, so that the drill can restart it) and one three-node RabbitMQ
//! cluster (scripts/cluster.sh, never the broker on 5672), while on a seeded schedule the
//! active replica is SIGKILLed or paused (SIGSTOP past the broker's heartbeat timeout, then
//! SIGCONT), the node leading the commands queue is stopped and started, PostgreSQL is
//! restarted, and the sandbox answers with 5xx, slow answers, dropped connections, 429s and
//! a token revocation, a 429 `quota_exceeded` (the next day simulated by restarting every
//! replica) and answers after the client's 30 s timeout. The contract is the single-daemon
//! drill's (report.rs), plus how long each takeover took.
//!
//! The active replica is the one whose `/readyz` says `"role": "active"` (each replica's ops
//! listener is on a port of its own); a takeover is the time from the fault to the first
//! result received after another replica says so.

use std::time::Duration;

use tokio::time::Instant;

use crate::faults::{self, Event};
use crate::plan::Rng;
use crate::run::Drill;
use crate::support::cluster::TestCluster;
use crate::support::tls_pg::TlsCluster;

/// How the replica drill runs (environment variables `CTCT_HA_DRILL_*`).
#[derive(Debug, Clone)]
pub struct HaOptions {
    pub replicas: usize,
    pub kills: usize,
    pub pauses: usize,
    pub node_stops: usize,
    pub pg_restarts: usize,
}

/// The AMQP heartbeat the replicas ask for (seconds): a paused replica's connection is
/// closed by the broker after about two missed beats.
pub const HEARTBEAT_S: u64 = 3;
/// The ledger's claim lease the replicas run with (ms).
pub const CLAIM_LEASE_MS: u64 = 5000;
/// How long every queue must stay empty after a fault, with no replica active, before the
/// fault counts as one with nothing waiting (no takeover to measure).
const NOTHING_WAITING_FOR: Duration = Duration::from_secs(5);
/// How long a paused replica stays paused after another replica took over.
const PAUSED_AFTER_TAKEOVER: Duration = Duration::from_secs(3);

/// The replica drill's own part of the test bed and its figures.
pub struct Ha {
    pub cluster: TestCluster,
    pub pg: TlsCluster,
    pub options: HaOptions,
    pub takeovers_after_kill: Vec<Duration>,
    pub takeovers_after_pause: Vec<Duration>,
    /// Faults after which no command was waiting, so no replica had reason to take over.
    pub idle_faults: u32,
    pub node_stops: Vec<String>,
    pub pg_restarts: u32,
}

impl Ha {
    pub fn new(cluster: TestCluster, pg: TlsCluster, options: HaOptions) -> Ha {
        Ha {
            cluster,
            pg,
            options,
            takeovers_after_kill: Vec::new(),
            takeovers_after_pause: Vec::new(),
            idle_faults: 0,
            node_stops: Vec::new(),
            pg_restarts: 0,
        }
    }

    /// The cluster's nodes as the replicas are given them (`amqp.urls`), with the heartbeat.
    pub fn replica_urls(cluster: &TestCluster) -> String {
        (1..=3)
            .map(|n| format!("{}?heartbeat={HEARTBEAT_S}", cluster.url(n)))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The events of a replica drill of `n` commands, each with the number of published commands
/// it waits for.
pub fn schedule(seed: u64, n: usize, o: &HaOptions) -> Vec<(usize, Event)> {
    let mut rng = Rng::new(seed.wrapping_mul(37).wrapping_add(11));
    let mut events: Vec<Event> = Vec::new();
    events.extend(std::iter::repeat_n(Event::KillActive, o.kills));
    events.extend(std::iter::repeat_n(Event::PauseActive, o.pauses));
    events.extend(std::iter::repeat_n(Event::LeaderNodeStop, o.node_stops));
    events.extend(std::iter::repeat_n(Event::PgRestart, o.pg_restarts));
    // Dropped connections on API requests only: a token refresh whose answer is lost after
    // the token rotated leaves the account needing authorisation (docs/operations.md), which
    // a person must give; the revocation covers that path.
    events.extend(faults::api_events(seed, n, Some("/v3/")));
    faults::place(&mut rng, n, events, faults::early_timeout(n))
}

/// A replica's role as its `/readyz` tells it (`None` when it does not answer).
async fn role(http: &reqwest::Client, ops_port: u16) -> Option<String> {
    let answer = http
        .get(format!("http://127.0.0.1:{ops_port}/readyz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = answer.json().await.ok()?;
    body["role"].as_str().map(str::to_owned)
}

impl Drill {
    fn ha(&mut self) -> &mut Ha {
        self.ha.as_mut().expect("a replica drill")
    }

    /// Commands published and not answered yet.
    fn in_flight(&self) -> usize {
        self.published
            .saturating_sub(self.results.len() + self.skipped.len())
    }

    /// The slot of the replica that says it is active, among the running ones other than
    /// `except`, reading results meanwhile; `None` when none said so within `within`.
    async fn active_replica(&mut self, except: Option<usize>, within: Duration) -> Option<usize> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            for (slot, port) in self.daemons.running() {
                if Some(slot) != except && role(&http, port).await.as_deref() == Some("active") {
                    return Some(slot);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.absorb(Duration::from_millis(50)).await;
        }
    }

    /// What a stuck takeover looks like: commands in flight, messages waiting, each running
    /// replica's `/readyz` and the end of its log.
    async fn diagnosis(&self) -> String {
        let http = reqwest::Client::new();
        let mut out = format!(
            "in flight: {}; waiting in the queues: {} ({} in the commands queue); consumers of \
             the commands queue: {}",
            self.in_flight(),
            self.link.waiting().await,
            self.link.depth(self.d.queue()).await,
            self.link.consumers(self.d.queue()).await,
        );
        for (slot, port) in self.daemons.running() {
            let readyz = match http
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(answer) => answer.text().await.unwrap_or_default(),
                Err(error) => format!("no answer ({error})"),
            };
            out.push_str(&format!("\nslot {slot} /readyz: {readyz}"));
        }
        out.push_str(&self.daemons.tails(40));
        out
    }

    /// Waits for another replica than `failed` to become active and for the first result
    /// after that; the time since `since`, or
    /// `None` when nothing was waiting to be worked on (no reason to take over).
    async fn takeover(&mut self, failed: usize, since: Instant) -> Option<Duration> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut empty_since: Option<Instant> = None;
        loop {
            if let Some(_slot) = self.active_replica(Some(failed), Duration::ZERO).await {
                // Then the new active replica's first result.
                let seen = self.link.received.len();
                while self.link.received.len() == seen {
                    assert!(
                        Instant::now() < deadline,
                        "the new active replica sent no result within 120 s of the fault"
                    );
                    self.absorb(Duration::from_millis(20)).await;
                }
                return Some(since.elapsed());
            }
            // Nothing in any queue: no replica has anything to take over. Commands still in
            // flight then are answers on their way to the drill (or publishes it repeats),
            // which the report accounts for; a moment's emptiness is not trusted, since a
            // killed replica's deliveries return to the queue as the broker sees it go.
            if self.link.waiting().await == 0 {
                let empty = *empty_since.get_or_insert_with(Instant::now);
                if self.in_flight() == 0 || empty.elapsed() >= NOTHING_WAITING_FOR {
                    self.ha().idle_faults += 1;
                    return None;
                }
            } else {
                empty_since = None;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no replica took over within 120 s of a fault to the active one; events so \
                     far: {:?}\n{}",
                    self.figures.events,
                    self.diagnosis().await
                );
            }
            self.absorb(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILLs the active replica, measures the takeover, and starts a replacement in its
    /// slot (it joins as a standby).
    pub async fn kill_active(&mut self) {
        // A request the killed replica sent is no timeout: let those under way strike first.
        self.let_timeouts_run(true).await;
        let Some(slot) = self.active_replica(None, Duration::from_secs(60)).await else {
            self.ha().idle_faults += 1;
            return;
        };
        let since = Instant::now();
        self.daemons.kill_slot(slot).await;
        if let Some(took) = self.takeover(slot, since).await {
            self.ha().takeovers_after_kill.push(took);
        }
        self.daemons.start_slot(&self.d, slot);
        self.figures.kills += 1;
    }

    /// SIGSTOPs the active replica until another one took over (the broker closed the paused
    /// one's connection after missed heartbeats, and its claims' leases lapsed), then lets it
    /// go on: what it still held must not be applied by it (the fence).
    pub async fn pause_active(&mut self) {
        let Some(slot) = self.active_replica(None, Duration::from_secs(60)).await else {
            self.ha().idle_faults += 1;
            return;
        };
        let since = Instant::now();
        self.daemons.pause_slot(slot, true).await;
        if let Some(took) = self.takeover(slot, since).await {
            self.ha().takeovers_after_pause.push(took);
            let until = Instant::now() + PAUSED_AFTER_TAKEOVER;
            while Instant::now() < until {
                self.absorb(Duration::from_millis(100)).await;
            }
        }
        self.daemons.pause_slot(slot, false).await;
    }

    /// Stops the node that leads the commands queue (`rabbitmqctl stop`: its connections are
    /// closed), keeps it down for a few seconds, and starts it again.
    pub async fn stop_leader_node(&mut self) {
        let queue = self.d.pipeline_settings.topology.commands_queue.clone();
        let mut leader = None;
        for via in 1..=3 {
            if let Ok(n) = self.ha().cluster.quorum_leader(via, &queue).await {
                leader = Some(n);
                break;
            }
        }
        let leader = leader.expect("the commands queue has a leader");
        self.ha().cluster.stop_node(leader).await;
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            self.absorb(Duration::from_millis(100)).await;
        }
        self.ha().cluster.start_node(leader).await;
        self.ha().node_stops.push(format!("node {leader}"));
    }

    /// Restarts PostgreSQL (fast shutdown: every session ends), 3 s down.
    pub async fn restart_postgres(&mut self) {
        tokio::task::block_in_place(|| self.ha().pg.stop_server());
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            self.absorb(Duration::from_millis(100)).await;
        }
        tokio::task::block_in_place(|| self.ha().pg.start_again());
        self.ha().pg_restarts += 1;
    }
}

/// The replica drill's rows of the report.
pub fn rows(drill: &Drill) -> Vec<(&'static str, String)> {
    let Some(ha) = &drill.ha else {
        return Vec::new();
    };
    let fence_yields = fence_yields(&drill.daemons.logs);
    vec![
        (
            "replicas",
            format!(
                "{} `ctct-sync run` on a 3-node RabbitMQ cluster (heartbeat {HEARTBEAT_S} s) and one PostgreSQL state store (claim lease {CLAIM_LEASE_MS} ms)",
                ha.options.replicas
            ),
        ),
        (
            "takeover after SIGKILL of the active replica",
            summary(&ha.takeovers_after_kill),
        ),
        (
            "takeover after SIGSTOP of the active replica",
            format!(
                "{}; commands the paused one held and let go when continued (fence): {fence_yields}",
                summary(&ha.takeovers_after_pause)
            ),
        ),
        (
            "faults with nothing waiting (no takeover to measure)",
            ha.idle_faults.to_string(),
        ),
        (
            "RabbitMQ node stops (the commands queue's leader, 5 s down)",
            format!("{} ({})", ha.node_stops.len(), ha.node_stops.join(", ")),
        ),
        (
            "PostgreSQL restarts (fast shutdown, 3 s down)",
            ha.pg_restarts.to_string(),
        ),
    ]
}

/// `n: p50 …, max …` of some durations.
fn summary(durations: &[Duration]) -> String {
    if durations.is_empty() {
        return "none measured".into();
    }
    let mut sorted = durations.to_vec();
    sorted.sort();
    let p50 = sorted[(sorted.len() - 1) / 2];
    let max = sorted[sorted.len() - 1];
    format!(
        "{}: p50 {:.2} s, max {:.2} s",
        sorted.len(),
        p50.as_secs_f64(),
        max.as_secs_f64()
    )
}

/// Commands a replica let go because another one had taken them over (its warning line).
fn fence_yields(logs: &[std::path::PathBuf]) -> usize {
    logs.iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("another replica took this command over"))
                .count()
        })
        .sum()
}
