//! A three-node RabbitMQ cluster of a test's own, run by `scripts/cluster.sh` (docs/
//! operations.md, "A three-node test bed") in a temporary directory, with node names and
//! ports no other cluster on this machine uses. Cluster tests take turns (three Erlang VMs
//! at once are plenty on two cores), and a cluster is shut down when its [`TestCluster`] is
//! dropped, also when the test fails.
//!
//! [`TestCluster::up_from`] starts node 1 from a node's packed data (a fixture of
//! `scripts/make-queue-fixture.sh`) instead of an empty one. Such data carries its node's name,
//! so those clusters cannot take names of their own: tests of every process on this machine
//! that start one take turns through a lock file (see [`TestCluster::up_from`]).

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

/// The script that runs the cluster.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh")
}

/// One cluster at a time in this test binary.
static TURN: Mutex<()> = Mutex::const_new(());

/// Ports a cluster takes from its base port (see scripts/cluster.sh).
const PORTS: u16 = 16;

/// Where base ports are chosen: below the ephemeral range (32768–60999, where outgoing
/// connections take their local ports), above the well-known services, and clear of the
/// system broker's distribution port 25672.
const FIRST_BASE: u16 = 20_000;
const BASES: u16 = 500;

pub struct TestCluster {
    dir: tempfile::TempDir,
    base: u16,
    name: String,
    /// How long `up` took.
    pub boot_time: Duration,
    _turn: MutexGuard<'static, ()>,
    /// Held by a cluster whose node names are fixed (see [`TestCluster::up_from`]); released
    /// after the cluster is down (fields are dropped after [`Drop::drop`] ran).
    _name_lock: Option<std::fs::File>,
}

impl TestCluster {
    /// Starts three clustered nodes and waits until all run (`cluster.sh up`).
    pub async fn up() -> TestCluster {
        let turn = TURN.lock().await;
        let base = free_base_port();
        let mut cluster = TestCluster {
            dir: super::temp_dir(),
            base,
            name: format!("ctcttest{base}n"),
            boot_time: Duration::ZERO,
            _turn: turn,
            _name_lock: None,
        };
        cluster.boot().await;
        cluster
    }

    /// Starts node 1 from `archive` — a node's data packed by `scripts/cluster.sh pack`,
    /// whose node name is `{name}1@localhost` — then nodes 2 and 3, which join node 1's
    /// cluster (`cluster.sh restore 1 ARCHIVE`, then `up`). The queues of the archive keep
    /// their one member until [`TestCluster::grow`].
    ///
    /// Node names are registered machine-wide (epmd), and these cannot be made unique: a
    /// lock file, `/tmp/ctct-cluster-{name}.lock`, makes every test process on this machine
    /// that starts a cluster of `name` wait for the one running.
    pub async fn up_from(archive: &std::path::Path, name: &str) -> TestCluster {
        let turn = TURN.lock().await;
        let lock_path = std::env::temp_dir().join(format!("ctct-cluster-{name}.lock"));
        let lock = tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
            file.lock()
                .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
            file
        })
        .await
        .expect("the lock is taken");
        let base = free_base_port();
        let mut cluster = TestCluster {
            dir: super::temp_dir(),
            base,
            name: name.to_owned(),
            boot_time: Duration::ZERO,
            _turn: turn,
            _name_lock: Some(lock),
        };
        let archive = archive.to_str().expect("a UTF-8 path");
        cluster.script(&["restore", "1", archive]).await;
        cluster.boot().await;
        cluster
    }

    /// `cluster.sh up`, timed.
    async fn boot(&mut self) {
        let started = Instant::now();
        let out = self.run(&["up"]).await;
        self.boot_time = started.elapsed();
        assert!(
            out.status.success(),
            "cluster.sh up failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Gives every quorum queue a member on each running node (`cluster.sh grow`:
    /// `rabbitmq-queues grow NODE all` for each).
    pub async fn grow(&self) {
        self.script(&["grow"]).await;
    }

    fn cluster_dir(&self) -> PathBuf {
        self.dir.path().join("cluster")
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(script())
            .args(args)
            .env("CTCT_CLUSTER_DIR", self.cluster_dir())
            .env("CTCT_CLUSTER_BASE_PORT", self.base.to_string())
            .env("CTCT_CLUSTER_NAME", &self.name)
            .stdin(std::process::Stdio::null());
        cmd
    }

    async fn run(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::from(self.command(args))
            .kill_on_drop(true)
            .output()
            .await
            .expect("bash runs scripts/cluster.sh")
    }

    /// Runs `cluster.sh ARGS…` and returns its standard output; panics when it fails.
    pub async fn script(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "cluster.sh {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Node `n`'s AMQP URL (guest may log in from this machine only, which is where we are).
    pub fn url(&self, n: u16) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port(n))
    }

    /// The three nodes' URLs, comma-separated: `CTCT_SYNC__AMQP__URLS`.
    pub fn urls(&self) -> String {
        (1..=3).map(|n| self.url(n)).collect::<Vec<_>>().join(",")
    }

    /// Node `n`'s AMQP port.
    pub fn port(&self, n: u16) -> u16 {
        self.base + n - 1
    }

    /// The node (1–3) whose AMQP port is `port`.
    fn node_of_port(&self, port: u16) -> Option<u16> {
        (1..=3).find(|n| self.port(*n) == port)
    }

    /// The node's full name (`…@localhost`).
    pub fn node_name(&self, n: u16) -> String {
        format!("{}{n}@localhost", self.name)
    }

    /// Stops node `n` gracefully (`rabbitmqctl stop`): its connections are closed.
    pub async fn stop_node(&self, n: u16) {
        self.script(&["stop-node", &n.to_string()]).await;
    }

    /// Kills node `n`'s Erlang VM: its connections just drop.
    pub async fn kill_node(&self, n: u16) {
        self.script(&["kill-node", &n.to_string()]).await;
    }

    /// Starts node `n` again; it rejoins the cluster.
    pub async fn start_node(&self, n: u16) {
        self.script(&["start-node", &n.to_string()]).await;
    }

    /// The nodes (1–3, one entry per connection) of the connections whose client
    /// properties mention `needle` (a daemon's connection names end with its commands
    /// queue), as node `via` lists the cluster's connections.
    pub async fn connections_of(&self, via: u16, needle: &str) -> Result<Vec<u16>, String> {
        let out = self
            .run(&[
                "ctl",
                &via.to_string(),
                "-q",
                "list_connections",
                "port",
                "client_properties",
            ])
            .await;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let listing = String::from_utf8_lossy(&out.stdout);
        Ok(listing
            .lines()
            .filter(|line| line.contains(needle))
            .filter_map(|line| line.split_whitespace().next()?.parse().ok())
            .filter_map(|port| self.node_of_port(port))
            .collect())
    }

    /// The members of quorum queue `queue` as node `via` reports them: (node 1–3, its Raft
    /// state: `leader`, `follower`, … or `down`).
    pub async fn quorum_members(
        &self,
        via: u16,
        queue: &str,
    ) -> Result<Vec<(u16, String)>, String> {
        let out = self
            .run(&[
                "queues",
                &via.to_string(),
                "-q",
                "quorum_status",
                queue,
                "--formatter",
                "json",
            ])
            .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
        }
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&stdout).map_err(|e| format!("{e}: {stdout}"))?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let name = row["Node Name"].as_str()?;
                let n = (1..=3).find(|n| self.node_name(*n) == name)?;
                // A member whose node is down shows ["nodedown", node].
                let state = row["Raft State"].as_str().unwrap_or("down");
                Some((n, state.to_owned()))
            })
            .collect())
    }

    /// Every queue as node `via` lists it: name, messages (ready and unacknowledged), and for
    /// a quorum queue its members (nodes 1–3; a member on a node of another name is left
    /// out) and leader.
    pub async fn queues(&self, via: u16) -> Result<Vec<QueueListing>, String> {
        let out = self
            .run(&[
                "ctl",
                &via.to_string(),
                "-q",
                "list_queues",
                "name",
                "messages",
                "members",
                "leader",
                "--formatter",
                "json",
            ])
            .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
        }
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&stdout).map_err(|e| format!("{e}: {stdout}"))?;
        let node = |name: &serde_json::Value| {
            let name = name.as_str()?;
            (1..=3).find(|n| self.node_name(*n) == name)
        };
        Ok(rows
            .iter()
            .filter_map(|row| {
                Some(QueueListing {
                    name: row["name"].as_str()?.to_owned(),
                    messages: row["messages"].as_u64().unwrap_or(0),
                    members: {
                        let mut members: Vec<u16> = row["members"]
                            .as_array()
                            .map(|members| members.iter().filter_map(node).collect())
                            .unwrap_or_default();
                        members.sort_unstable();
                        members
                    },
                    leader: node(&row["leader"]),
                })
            })
            .collect())
    }

    /// The node of the leader of quorum queue `queue`, as node `via` reports it.
    pub async fn quorum_leader(&self, via: u16, queue: &str) -> Result<u16, String> {
        let members = self.quorum_members(via, queue).await?;
        members
            .iter()
            .find(|(_, state)| state == "leader")
            .map(|(n, _)| *n)
            .ok_or_else(|| format!("no leader among {members:?}"))
    }
}

/// One queue of [`TestCluster::queues`].
#[derive(Debug, Clone)]
pub struct QueueListing {
    pub name: String,
    /// Ready and unacknowledged.
    pub messages: u64,
    /// The nodes (1–3) of a quorum queue's members, in ascending order; empty for a classic
    /// queue.
    pub members: Vec<u16>,
    pub leader: Option<u16>,
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        match self.command(&["down"]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "cluster.sh down failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(error) => eprintln!("cluster.sh down did not run: {error}"),
        }
    }
}

/// A base port whose 16 ports are free now, starting the search at a place of this process's
/// own so that test runs at once look in different places first.
fn free_base_port() -> u16 {
    let first = (std::process::id() % u32::from(BASES)) as u16;
    (0..BASES)
        .map(|i| FIRST_BASE + ((first + i) % BASES) * PORTS)
        .filter(|base| !(*base..base + PORTS).contains(&25_672))
        .find(|base| (*base..base + PORTS).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()))
        .expect("16 free ports in a row between 20000 and 28000")
}
