//! Real `ctct-sync` processes for the benchmarks that run them (`pipeline`, `shared-key`):
//! their stores, authorised for the sandbox's primary account (SQLite files, or a PostgreSQL
//! database of the measurement's own), their environment, and starting and stopping them.
//! The processes are the `ctct-sync` binary built beside `ctct-bench`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ctct_sync::amqp::topology::Topology;
use ctct_sync::config::{SecretUrl, StoreLocation};
use ctct_sync::store::Role;
use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use crate::authorise_store;
use crate::pg::BenchDb;

/// The stores of the `ctct-sync` processes of one measurement, authorised for the sandbox's
/// primary account: SQLite files in a directory, or both stores (`store.url`, `mirror.url`)
/// in a PostgreSQL database made for the measurement.
pub struct DaemonStores {
    /// The state file (the mirror's file goes beside it). On PostgreSQL, where the state was
    /// authorised before `store copy`'s code moved it to the database.
    db: PathBuf,
    pg: Option<BenchDb>,
}

impl DaemonStores {
    /// Authorises a state store in `dir` (a fresh refresh token, exchanged at once: no API
    /// request) and, with `postgres` (the server's URL), moves it into a new database
    /// `ctct_bench_<pid>_<tag>` there. The token endpoint then takes no request for a second.
    pub async fn authorised(
        sandbox: &ctct_sandbox::Sandbox,
        dir: &Path,
        postgres: Option<&str>,
        tag: &str,
    ) -> anyhow::Result<DaemonStores> {
        let db = dir.join("daemon.db");
        authorise_store(sandbox, &db).await?;
        // On PostgreSQL, the authorised state moves there with `store copy`'s own code.
        let pg = match postgres {
            Some(admin_url) => {
                let pg = BenchDb::create(admin_url, tag).await?;
                ctct_sync::store::copy::copy(
                    Role::State,
                    ctct_sync::store::copy::STATE_TABLES,
                    &StoreLocation::Sqlite(db.clone()),
                    &StoreLocation::Postgres {
                        url: SecretUrl::new(pg.url()),
                        schema: "ctct_state".into(),
                    },
                )
                .await
                .context("copying the authorised state to PostgreSQL")?;
                Some(pg)
            }
            None => None,
        };
        Ok(DaemonStores { db, pg })
    }

    /// `SQLite` or `PostgreSQL`.
    pub fn engine(&self) -> &'static str {
        if self.pg.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    /// Points a `ctct-sync` environment ([`daemon_env`]) at these stores.
    pub fn configure(&self, env: &mut HashMap<String, String>) {
        match &self.pg {
            Some(pg) => {
                env.insert("CTCT_SYNC__STORE__URL".into(), pg.url().to_owned());
                env.insert("CTCT_SYNC__MIRROR__URL".into(), pg.url().to_owned());
            }
            None => {
                env.insert(
                    "CTCT_SYNC__STORE__PATH".into(),
                    self.db.display().to_string(),
                );
            }
        }
    }

    /// Drops the PostgreSQL database, if any (the files go with their directory).
    pub async fn drop_now(self) -> anyhow::Result<()> {
        match self.pg {
            Some(pg) => pg.drop_now().await,
            None => Ok(()),
        }
    }
}

/// The environment of a `ctct-sync` process against `sandbox`, with queues and exchanges
/// named after `tag`, the real limits (4/s, 10,000/day) or none, and bulk coalescing on or
/// off; no scheduled mirror run. Its stores come from [`DaemonStores::configure`].
pub fn daemon_env(
    sandbox: &ctct_sandbox::Sandbox,
    tag: &str,
    amqp_url: &str,
    real_limits: bool,
    coalescing: bool,
) -> HashMap<String, String> {
    let c = sandbox.credentials();
    let (per_second, per_day) = if real_limits {
        ("4", "10000")
    } else {
        // The most the configuration accepts: the pacer must not be what is measured
        // (one by one, an upsert is two requests).
        ("100000", "100000000")
    };
    [
        ("CTCT_SYNC__API__BASE_URL", c.base_url.clone()),
        ("CTCT_SYNC__OAUTH__CLIENT_ID", c.client_id.clone()),
        ("CTCT_SYNC__OAUTH__CLIENT_SECRET", c.client_secret.clone()),
        ("CTCT_SYNC__OAUTH__TOKEN_URL", c.token_url.clone()),
        ("CTCT_SYNC__OAUTH__AUTHORIZE_URL", c.authorize_url.clone()),
        (
            "CTCT_SYNC__OAUTH__DEVICE_AUTHORIZE_URL",
            c.device_authorize_url.clone(),
        ),
        ("CTCT_SYNC__AMQP__URL", amqp_url.to_owned()),
        ("CTCT_SYNC__AMQP__COMMANDS_QUEUE", format!("{tag}.commands")),
        (
            "CTCT_SYNC__AMQP__RESULTS_EXCHANGE",
            format!("{tag}.results"),
        ),
        ("CTCT_SYNC__AMQP__DEAD_LETTER_QUEUE", format!("{tag}.dead")),
        ("CTCT_SYNC__AMQP__UNROUTED_QUEUE", format!("{tag}.unrouted")),
        ("CTCT_SYNC__LIMITS__PER_SECOND", per_second.to_owned()),
        ("CTCT_SYNC__LIMITS__PER_DAY", per_day.to_owned()),
        ("CTCT_SYNC__BULK__ENABLED", coalescing.to_string()),
        // No scheduled mirror run during a measurement.
        ("CTCT_SYNC__MIRROR__SCHEDULE", "0 0 2 1 1 *".to_owned()),
        (
            "CTCT_SYNC__MIRROR__INCREMENTAL_SCHEDULE",
            "0 0 3 1 1 *".to_owned(),
        ),
        ("CTCT_SYNC__OPS__LISTEN", "127.0.0.1:0".to_owned()),
        // The daemon's log level (stderr), `warn` unless CTCT_BENCH_DAEMON_LOG_LEVEL says
        // otherwise: `debug` shows where each command's time goes.
        (
            "CTCT_SYNC__LOG__LEVEL",
            std::env::var("CTCT_BENCH_DAEMON_LOG_LEVEL").unwrap_or_else(|_| "warn".to_owned()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(daemon_overrides())
    .collect()
}

/// Settings given to the measured daemon on top of the benchmark's own: every variable
/// `CTCT_BENCH_DAEMON__<KEY>` of this process becomes `CTCT_SYNC__<KEY>` (for instance
/// `CTCT_BENCH_DAEMON__AMQP__WORKERS=32`), to measure a setting without changing the code.
fn daemon_overrides() -> impl Iterator<Item = (String, String)> {
    std::env::vars().filter_map(|(key, value)| {
        key.strip_prefix("CTCT_BENCH_DAEMON__")
            .map(|rest| (format!("CTCT_SYNC__{rest}"), value))
    })
}

/// The `ctct-sync` binary built beside this one.
fn ctct_sync_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating ctct-bench")?;
    let binary = exe.with_file_name("ctct-sync");
    if !binary.exists() {
        bail!(
            "{} is missing: build both binaries (cargo build --release --workspace --bins)",
            binary.display()
        );
    }
    Ok(binary)
}

/// A child process that is killed if it still runs when this is dropped, so that a
/// benchmark stopping on an error leaves no process behind.
pub struct Process(std::process::Child);

impl std::ops::Deref for Process {
    type Target = std::process::Child;

    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Process {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `ctct-sync <args>` in `dir` with `env` alone of the CTCT_SYNC variables (and no
/// RUST_LOG); stdin closed, stderr shared with this process.
pub fn spawn_ctct_sync(
    dir: &Path,
    env: &HashMap<String, String>,
    args: &[&str],
    stdout: Stdio,
) -> anyhow::Result<Process> {
    let mut command = std::process::Command::new(ctct_sync_binary()?);
    command.args(args).current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CTCT_SYNC") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .envs(env)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit());
    command
        .spawn()
        .map(Process)
        .with_context(|| format!("starting ctct-sync {}", args.join(" ")))
}

/// Starts `ctct-sync run` (see [`spawn_ctct_sync`]), its stdout discarded.
pub fn spawn_daemon(dir: &Path, env: &HashMap<String, String>) -> anyhow::Result<Process> {
    spawn_ctct_sync(dir, env, &["run"], Stdio::null())
}

/// Waits (at most 60 s) until `queue` has at least `consumers` consumers.
pub async fn wait_for_consumers(
    channel: &Channel,
    queue: &str,
    consumers: u32,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        if state.consumer_count() >= consumers {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{consumers} daemon(s) did not start consuming {queue} within 60 s ({} did)",
                state.consumer_count()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A queue of this connection's own bound to every result of `topology`'s exchange.
pub async fn results_consumer(
    channel: &Channel,
    topology: &Topology,
) -> anyhow::Result<lapin::Consumer> {
    let (_, consumer) =
        ctct_sync::amqp::private_consumer(channel, Some(&topology.results_exchange)).await?;
    Ok(consumer)
}

/// Sends `signal` (`TERM`: a daemon drains and exits; `INT`: `ctct-sync mirror` stops at its
/// next page) and waits; kills the process after 30 s. Its exit status, if it exited by
/// itself.
pub async fn stop_process(
    process: &mut std::process::Child,
    signal: &str,
) -> Option<std::process::ExitStatus> {
    if let Ok(Some(status)) = process.try_wait() {
        return Some(status);
    }
    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &process.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = process.try_wait() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "ctct-bench: process {} did not stop within 30 s of SIG{signal}; killed",
        process.id()
    );
    let _ = process.kill();
    let _ = process.wait();
    None
}
