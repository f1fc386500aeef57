//! `ctct-bench pipeline`: `contact.upsert` commands (or, with `--command`, `list.add_contacts`,
//! `contact.tag` or `contact.delete` commands naming one seeded contact each by id) through a
//! real `ctct-sync run` process.
//!
//! The sandbox runs in this process; the daemon is the release `ctct-sync` binary beside this
//! one, started as a child with its own store and uniquely named queues, so its CPU time and
//! peak RSS (from /proc) are its alone. All commands are published as fast as the broker
//! confirms them; each command's latency runs from its publish to its result's arrival. The
//! same messages then pass through RabbitMQ alone (publish, consume, ack; no work) for the
//! floor the daemon is compared with.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ctct_sandbox::{LimitsMode, SandboxOptions};
use ctct_sync::amqp::topology::Topology;
use ctct_sync::api::model::ListInput;
use ctct_sync::command::outcome::CommandResult;
use ctct_sync::config::Settings;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};

use crate::daemon::{
    DaemonStores, daemon_env, results_consumer, spawn_daemon, stop_process, wait_for_consumers,
};
use crate::sandbox_client;

/// One scenario: how many upserts, against which limits, with coalescing on or off.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub upserts: usize,
    /// The command type sent: `contact.upsert`, `list.add_contacts`, `contact.tag` or
    /// `contact.delete`.
    pub command: String,
    pub real_limits: bool,
    pub coalescing: bool,
    /// Give up waiting for results after this long.
    pub deadline: Duration,
    /// Then publish the same commands again (same ids) and time their replays.
    pub replay: bool,
    /// Both of the daemon's stores on PostgreSQL: a fresh database made on the server of this
    /// URL (otherwise both are SQLite files).
    pub postgres: Option<String>,
    /// A second `ctct-sync run` on the same queue and stores, started after the measured one
    /// has its consumer: a standby replica, idle unless the first one fails.
    pub standby: bool,
}

/// The second pass of a replay scenario.
struct Replayed {
    results: usize,
    replayed: usize,
    seconds: f64,
    requests: u64,
    daemon_cpu_s: f64,
}

/// What one scenario measured.
struct Figures {
    results: usize,
    succeeded: usize,
    wall_s: f64,
    latencies_ms: Vec<f64>,
    requests: u64,
    refused: u64,
    daemon_cpu_s: f64,
    daemon_rss_mib: f64,
    floor_s: f64,
    replay: Option<Replayed>,
}

pub const HEADER: &str = "| store | upserts | limits | coalescing | results (ok) | wall (s) | cmd/s | p50 / p99 / max (ms) | API requests (429s) | req/1,000 | daemon CPU (s) | daemon RSS (MiB) | RabbitMQ alone (s) | ratio |\n|---|---:|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|";

pub async fn run(scenario: &Scenario, amqp_url: &str) -> anyhow::Result<()> {
    let figures = measure(scenario, amqp_url).await?;
    print_row(scenario, &figures);
    Ok(())
}

/// Seeds the sandbox's primary account with enough contacts for `n` subscribed ones and
/// answers their ids.
fn subscribed_contacts(sandbox: &ctct_sandbox::Sandbox, n: usize) -> anyhow::Result<Vec<String>> {
    let admin = sandbox.admin();
    let account = admin.primary_account();
    admin.seed(&account, n + n / 2 + 100, 11)?;
    let ids: Vec<String> = admin
        .snapshot(&account)?
        .contacts
        .iter()
        .filter(|c| {
            c["deleted_at"].is_null() && c["email_address"]["permission_to_send"] != "unsubscribed"
        })
        .filter_map(|c| c["contact_id"].as_str().map(str::to_owned))
        .take(n)
        .collect();
    if ids.len() < n {
        bail!(
            "the sandbox seeded {} subscribed contacts, not {n}",
            ids.len()
        );
    }
    Ok(ids)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Waits (at most 60 s) until `queue` has two consumers as `rabbitmqctl list_consumers` lists
/// them: for a quorum queue with a single active consumer the passive declare's count holds
/// only the active one.
async fn wait_for_standby(queue: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = std::process::Command::new("rabbitmqctl")
            .args(["-q", "list_consumers", "queue_name"])
            .output()
            .context("rabbitmqctl list_consumers (the standby's consumer)")?;
        let listed = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| line.trim() == queue)
            .count();
        if listed >= 2 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the standby did not consume {queue} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print_row(s: &Scenario, f: &Figures) {
    let mut sorted = f.latencies_ms.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "| {}{} | {} | {} | {} | {} ({}) | {:.1} | {:.0} | {:.0} / {:.0} / {:.0} | {} ({} × 429) | {:.1} | {:.1} | {:.1} | {:.2} | {:.1}× |",
        if s.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        if s.standby { " + standby" } else { "" },
        if s.command == "contact.upsert" {
            s.upserts.to_string()
        } else {
            format!("{} × {}", s.upserts, s.command)
        },
        if s.real_limits { "real" } else { "off" },
        if s.coalescing { "on" } else { "off" },
        f.results,
        f.succeeded,
        f.wall_s,
        f.results as f64 / f.wall_s.max(0.001),
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        sorted.last().copied().unwrap_or(f64::NAN),
        f.requests,
        f.refused,
        f.requests as f64 * 1000.0 / s.upserts.max(1) as f64,
        f.daemon_cpu_s,
        f.daemon_rss_mib,
        f.floor_s,
        f.wall_s / f.floor_s.max(0.001),
    );
    if let Some(r) = &f.replay {
        println!(
            "| | | replay of the same {} commands | | {} ({} replayed) | {:.1} | {:.0} | | {} | | {:.1} | | | |",
            s.upserts,
            r.results,
            r.replayed,
            r.seconds,
            r.results as f64 / r.seconds.max(0.001),
            r.requests,
            r.daemon_cpu_s,
        );
    }
}

async fn measure(scenario: &Scenario, amqp_url: &str) -> anyhow::Result<Figures> {
    let dir = std::env::temp_dir().join(format!(
        "ctct-bench-pipeline-{}-{}",
        std::process::id(),
        scenario.upserts
    ));
    std::fs::create_dir_all(&dir)?;
    let sandbox = ctct_sandbox::start(SandboxOptions {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        limits: if scenario.real_limits {
            LimitsMode::Real
        } else {
            LimitsMode::Off
        },
        ..SandboxOptions::default()
    })
    .await?;
    let db_tag = format!(
        "{}_{}_{}",
        scenario.upserts,
        u8::from(scenario.coalescing),
        u8::from(scenario.standby)
    );
    let stores =
        DaemonStores::authorised(&sandbox, &dir, scenario.postgres.as_deref(), &db_tag).await?;
    // The token endpoint takes one request a second per client.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // Contacts for the commands naming contacts by id: seeded, subscribed ones only (an
    // unsubscribed contact is never added to a list).
    let contact_ids = if scenario.command == "contact.upsert" {
        Vec::new()
    } else {
        subscribed_contacts(&sandbox, scenario.upserts)?
    };
    let (list, tag) = {
        // The list the commands name, made by a client with a store of its own; a tag for
        // `contact.tag`.
        let client = sandbox_client(&sandbox, &dir.join("bench.db")).await?;
        let account = client.account("default");
        let list = account
            .create_list(&ListInput {
                name: "Bench list".into(),
                description: None,
                favorite: None,
            })
            .await?
            .list_id;
        let tag = if scenario.command == "contact.tag" {
            account
                .create_tag(&ctct_sync::api::model::TagCreate {
                    name: "Bench tag".into(),
                    tag_source: None,
                })
                .await?
                .tag_id
        } else {
            String::new()
        };
        (list, tag)
    };

    let queues = format!("bench-{}-{}", std::process::id(), scenario.upserts);
    let mut env = daemon_env(
        &sandbox,
        &queues,
        amqp_url,
        scenario.real_limits,
        scenario.coalescing,
    );
    stores.configure(&mut env);
    let settings = Settings::load(None, env.clone()).context("the daemon's settings")?;
    let topology = Topology::from_settings(&settings.amqp);
    let conn = ctct_sync::amqp::connect(amqp_url, "ctct-bench pipeline")
        .await
        .context("connecting to RabbitMQ")?;
    let channel = ctct_sync::amqp::confirm_channel(&conn).await?;
    topology.declare(&channel).await?;
    let results = results_consumer(&channel, &topology).await?;

    let mut daemon = spawn_daemon(&dir, &env)?;
    wait_for_consumers(&channel, &topology.commands_queue, 1).await?;
    let mut standby = if scenario.standby {
        let standby_dir = dir.join("standby");
        std::fs::create_dir_all(&standby_dir)?;
        let process = spawn_daemon(&standby_dir, &env)?;
        wait_for_standby(&topology.commands_queue).await?;
        Some(process)
    } else {
        None
    };

    let bodies: Vec<(String, Vec<u8>)> = (0..scenario.upserts)
        .map(|i| {
            let id = format!("up-{i}");
            let data = match scenario.command.as_str() {
                "list.add_contacts" => {
                    serde_json::json!({"contact_ids": [contact_ids[i]], "list_ids": [list]})
                }
                "contact.tag" => {
                    serde_json::json!({"contact_ids": [contact_ids[i]], "tag_ids": [tag]})
                }
                "contact.delete" => serde_json::json!({"contact_id": contact_ids[i]}),
                _ => serde_json::json!({
                    "email": format!("bench.{i}@example.com"),
                    "first_name": format!("Bench {i}"),
                    "list_ids": [list],
                }),
            };
            let body = serde_json::json!({
                "id": id,
                "type": scenario.command,
                "account": "default",
                "data": data,
            });
            (id, serde_json::to_vec(&body).expect("JSON"))
        })
        .collect();

    let mut counter = RequestCounter::default();
    counter.update(&sandbox);
    counter.v3 = 0;
    counter.refused = 0;
    let started = Instant::now();
    let mut sent_at: HashMap<String, Instant> = HashMap::with_capacity(bodies.len());
    let collector = tokio::spawn(collect(results, scenario.upserts, scenario.deadline));
    publish_all(&channel, &topology.commands_queue, &bodies, &mut sent_at).await?;
    let mut waiting = collector;
    let received = loop {
        tokio::select! {
            done = &mut waiting => break done.context("the result collector stopped")?,
            _ = tokio::time::sleep(Duration::from_millis(500)) => counter.update(&sandbox),
        }
    };
    counter.update(&sandbox);
    let wall_s = started.elapsed().as_secs_f64();
    let (daemon_cpu_s, daemon_rss_mib) = daemon_usage(daemon.id());
    let replay = if scenario.replay {
        let results = results_consumer(&channel, &topology).await?;
        let requests_before = counter.v3;
        let started = Instant::now();
        let collector = tokio::spawn(collect(results, scenario.upserts, scenario.deadline));
        publish_all(
            &channel,
            &topology.commands_queue,
            &bodies,
            &mut HashMap::new(),
        )
        .await?;
        let again = collector.await.context("the replay collector stopped")?;
        let seconds = started.elapsed().as_secs_f64();
        counter.update(&sandbox);
        Some(Replayed {
            results: again.len(),
            replayed: again.iter().filter(|(r, _)| r.replayed).count(),
            seconds,
            requests: counter.v3 - requests_before,
            daemon_cpu_s: daemon_usage(daemon.id()).0 - daemon_cpu_s,
        })
    } else {
        None
    };
    stop_process(&mut daemon, "TERM").await;
    if let Some(standby) = standby.as_mut() {
        stop_process(standby, "TERM").await;
    }

    let succeeded = received
        .iter()
        .filter(|(r, _)| r.outcome.as_str() == "succeeded")
        .count();
    let latencies_ms = received
        .iter()
        .filter_map(|(r, at)| {
            sent_at
                .get(&r.command_id)
                .map(|sent| at.saturating_duration_since(*sent).as_secs_f64() * 1000.0)
        })
        .collect();
    let floor_s = rabbitmq_alone(&conn, &channel, &bodies).await?;
    topology.delete(&channel).await.ok();
    conn.close(200, "bench done".into()).await.ok();
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    stores.drop_now().await?;
    Ok(Figures {
        results: received.len(),
        succeeded,
        wall_s,
        latencies_ms,
        requests: counter.v3,
        refused: counter.refused,
        daemon_cpu_s,
        daemon_rss_mib,
        floor_s,
        replay,
    })
}

/// `/v3` requests the sandbox logged, read as the run goes (the log keeps the latest 200,000).
#[derive(Default)]
struct RequestCounter {
    last_seq: u64,
    v3: u64,
    /// Of those, answered 429 (throttled or quota): requests the daemon should not have sent.
    refused: u64,
}

impl RequestCounter {
    fn update(&mut self, sandbox: &ctct_sandbox::Sandbox) {
        for request in sandbox.admin().requests_since(self.last_seq, usize::MAX) {
            self.last_seq = request.seq;
            if request.path.starts_with("/v3/") {
                self.v3 += 1;
                if request.status == 429 {
                    self.refused += 1;
                }
            }
        }
    }
}

/// Publishes every body, confirms awaited in windows of 1,000 so the broker is never idle.
async fn publish_all(
    channel: &Channel,
    queue: &str,
    bodies: &[(String, Vec<u8>)],
    sent_at: &mut HashMap<String, Instant>,
) -> anyhow::Result<()> {
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2);
    for window in bodies.chunks(1_000) {
        let mut confirms = Vec::with_capacity(window.len());
        for (id, body) in window {
            sent_at.insert(id.clone(), Instant::now());
            confirms.push(
                channel
                    .basic_publish(
                        "".into(),
                        queue.into(),
                        BasicPublishOptions::default(),
                        body,
                        properties.clone(),
                    )
                    .await?,
            );
        }
        for confirm in confirms {
            confirm.await?;
        }
    }
    Ok(())
}

/// Final results (the first per command) with their arrival times; events are skipped.
async fn collect(
    mut results: lapin::Consumer,
    expected: usize,
    deadline: Duration,
) -> Vec<(CommandResult, Instant)> {
    let until = tokio::time::Instant::now() + deadline;
    let mut seen = std::collections::HashSet::with_capacity(expected);
    let mut received = Vec::with_capacity(expected);
    while received.len() < expected {
        let Ok(Some(Ok(delivery))) = tokio::time::timeout_at(until, results.next()).await else {
            eprintln!(
                "ctct-bench: {} of {expected} results before the deadline",
                received.len()
            );
            break;
        };
        let at = Instant::now();
        if let Ok(result) = serde_json::from_slice::<CommandResult>(&delivery.data)
            && seen.insert(result.command_id.clone())
        {
            received.push((result, at));
        }
    }
    received
}

/// CPU seconds (user + system) and peak RSS of a live process, from /proc.
fn daemon_usage(pid: u32) -> (f64, f64) {
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which is in parentheses and may hold spaces).
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            // The kernel counts in clock ticks: 100 a second on Linux.
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN);
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(f64::NAN, |kib| kib / 1024.0);
    (cpu, rss)
}

/// The floor: the same messages published (confirmed the same way) to a fresh queue and
/// consumed with an ack each by one consumer, with no work between.
async fn rabbitmq_alone(
    conn: &Connection,
    channel: &Channel,
    bodies: &[(String, Vec<u8>)],
) -> anyhow::Result<f64> {
    let queue = format!("bench-floor-{}", std::process::id());
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let consumer_channel = conn.create_channel().await?;
    consumer_channel
        .basic_qos(256, BasicQosOptions::default())
        .await?;
    let mut consumer = consumer_channel
        .basic_consume(
            queue.as_str().into(),
            "bench-floor".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let expected = bodies.len();
    let started = Instant::now();
    let consuming = tokio::spawn(async move {
        let mut done = 0;
        while done < expected {
            match consumer.next().await {
                Some(Ok(delivery)) => {
                    delivery.ack(BasicAckOptions::default()).await?;
                    done += 1;
                }
                _ => bail!("the floor consumer stopped after {done} messages"),
            }
        }
        Ok(())
    });
    let mut ignored = HashMap::new();
    publish_all(channel, &queue, bodies, &mut ignored).await?;
    consuming.await.context("the floor consumer")??;
    let elapsed = started.elapsed().as_secs_f64();
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    Ok(elapsed)
}
