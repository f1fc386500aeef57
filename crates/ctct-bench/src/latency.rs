//! `ctct-bench latency`: how long one command waits for its reply when the daemon is not busy
//! (issue 20, "Latency where users feel it").
//!
//! The sandbox runs in this process with limits off; a freshly started `ctct-sync run` child
//! (the release binary beside this one) takes the commands. They go **one at a time** by
//! request/reply, as `ctct-sync send` does: published with `reply_to` (a server-named queue of
//! this connection's own) and `correlation_id`, the next one sent only after the previous
//! reply, at a steady rate well below capacity. A command's latency runs from just before its
//! publish to its reply's arrival. The commands cycle through four types, each with input
//! that succeeds: `contact.upsert` (with a list, so coalescing can take it),
//! `contact.get` of the contact just upserted, `custom_field.create` and
//! `custom_field.delete` of the field just created (the account keeps at most 100 fields).
//! The first command after the daemon started is reported on its own row as well.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ctct_sandbox::{LimitsMode, SandboxOptions};
use ctct_sync::amqp::topology::Topology;
use ctct_sync::api::model::ListInput;
use ctct_sync::command::outcome::CommandResult;
use ctct_sync::config::Settings;
use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use tokio::sync::mpsc;

use crate::daemon::{
    DaemonStores, daemon_env, results_consumer, spawn_daemon, stop_process, wait_for_consumers,
};
use crate::sandbox_client;

/// One measurement.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Commands sent per second (one at a time: a slow reply delays the next send).
    pub rate: f64,
    pub seconds: f64,
    pub coalescing: bool,
    /// Both of the daemon's stores on PostgreSQL (a fresh database on this server).
    pub postgres: Option<String>,
    /// Give up on a reply after this long.
    pub reply_deadline: Duration,
}

pub const HEADER: &str = "| store | coalescing | command | count | failed | p50 (ms) | p99 (ms) | max (ms) |\n|---|---|---|---:|---:|---:|---:|---:|";

/// The command types, in the order they are sent.
const TYPES: [&str; 4] = [
    "contact.upsert",
    "contact.get",
    "custom_field.create",
    "custom_field.delete",
];

struct Sample {
    command_type: &'static str,
    ms: f64,
    ok: bool,
}

/// Measures `scenario` and prints its rows (after [`HEADER`]); failures are listed on stderr.
pub async fn run(scenario: &Scenario, amqp_url: &str) -> anyhow::Result<()> {
    let samples = measure(scenario, amqp_url).await?;
    let store = if scenario.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let coalescing = if scenario.coalescing { "on" } else { "off" };
    if let Some(first) = samples.first() {
        println!(
            "| {store} | {coalescing} | first after start ({}) | 1 | {} | {:.1} | {:.1} | {:.1} |",
            first.command_type,
            u8::from(!first.ok),
            first.ms,
            first.ms,
            first.ms
        );
    }
    let mut by_type: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for sample in samples.iter().skip(1) {
        by_type.entry(sample.command_type).or_default().push(sample);
    }
    for command_type in TYPES {
        if let Some(of_type) = by_type.get(command_type) {
            print_row(store, coalescing, command_type, of_type);
        }
    }
    print_row(
        store,
        coalescing,
        "all (first included)",
        &samples.iter().collect::<Vec<_>>(),
    );
    Ok(())
}

fn print_row(store: &str, coalescing: &str, label: &str, samples: &[&Sample]) {
    let mut ms: Vec<f64> = samples.iter().map(|s| s.ms).collect();
    ms.sort_by(f64::total_cmp);
    let failed = samples.iter().filter(|s| !s.ok).count();
    println!(
        "| {store} | {coalescing} | {label} | {} | {failed} | {:.1} | {:.1} | {:.1} |",
        ms.len(),
        percentile(&ms, 50.0),
        percentile(&ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN),
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn measure(scenario: &Scenario, amqp_url: &str) -> anyhow::Result<Vec<Sample>> {
    let tag_suffix = format!(
        "{}_{}",
        u8::from(scenario.coalescing),
        u8::from(scenario.postgres.is_some())
    );
    let dir = std::env::temp_dir().join(format!(
        "ctct-bench-latency-{}-{tag_suffix}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let sandbox = ctct_sandbox::start(SandboxOptions {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        limits: LimitsMode::Off,
        ..SandboxOptions::default()
    })
    .await?;
    let stores = DaemonStores::authorised(
        &sandbox,
        &dir,
        scenario.postgres.as_deref(),
        &format!("lat_{tag_suffix}"),
    )
    .await?;
    // The token endpoint takes one request a second per client.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let list = sandbox_client(&sandbox, &dir.join("bench.db"))
        .await?
        .account("default")
        .create_list(&ListInput {
            name: "Latency list".into(),
            description: None,
            favorite: None,
        })
        .await?
        .list_id;

    let tag = format!("bench-latency-{}-{tag_suffix}", std::process::id());
    let mut env = daemon_env(&sandbox, &tag, amqp_url, false, scenario.coalescing);
    stores.configure(&mut env);
    let settings = Settings::load(None, env.clone()).context("the daemon's settings")?;
    let topology = Topology::from_settings(&settings.amqp);
    let conn = ctct_sync::amqp::connect(amqp_url, "ctct-bench latency")
        .await
        .context("connecting to RabbitMQ")?;
    let channel = ctct_sync::amqp::confirm_channel(&conn).await?;
    topology.declare(&channel).await?;
    // Replies come to a server-named queue of this connection (allowed by the default
    // amqp.reply_to_prefixes), stamped with their arrival time as they come in.
    let (reply_queue, mut replies) = ctct_sync::amqp::private_consumer(&channel, None).await?;
    // A consumer bound to the results exchange, as in production: without one, every result
    // would also go to the unrouted queue (another publish, and a warning).
    let mut results = results_consumer(&channel, &topology).await?;
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = results.next().await {} });
    let (arrived, mut inbox) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = tokio::spawn(async move {
        while let Some(Ok(delivery)) = replies.next().await {
            if arrived.send((Instant::now(), delivery.data)).is_err() {
                return;
            }
        }
    });

    let mut daemon = spawn_daemon(&dir, &env)?;
    wait_for_consumers(&channel, &topology.commands_queue, 1).await?;

    let total = ((scenario.rate * scenario.seconds).round() as usize).max(1);
    let period = Duration::from_secs_f64(1.0 / scenario.rate.max(0.001));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples = Vec::with_capacity(total);
    let mut field_id: Option<String> = None;
    let run = std::process::id();
    for i in 0..total {
        tick.tick().await;
        let round = i / TYPES.len();
        let command_type = TYPES[i % TYPES.len()];
        let email = format!("latency.{run}.{round}@example.com");
        let data = match command_type {
            "contact.upsert" => serde_json::json!({
                "email": email,
                "first_name": format!("Latency {round}"),
                "list_ids": [list],
            }),
            "contact.get" => serde_json::json!({ "email": email }),
            "custom_field.create" => serde_json::json!({
                "label": format!("Latency {run} {round}"),
                "type": "string",
            }),
            _ => match field_id.take() {
                Some(id) => serde_json::json!({ "custom_field_id": id }),
                None => bail!("custom_field.create gave no custom_field_id to delete"),
            },
        };
        let id = format!("lat-{run}-{i}");
        let body = serde_json::to_vec(&serde_json::json!({
            "id": id,
            "type": command_type,
            "account": "default",
            "data": data,
        }))?;
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(id.as_str().into())
            .with_correlation_id(id.as_str().into())
            .with_reply_to(reply_queue.as_str().into());
        let sent = Instant::now();
        let confirm = channel
            .basic_publish(
                "".into(),
                topology.commands_queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await?;
        confirm.await?;
        let (at, result) = wait_for_reply(&mut inbox, &id, scenario.reply_deadline)
            .await
            .with_context(|| format!("{command_type} {id}: no reply"))?;
        let ok = result.outcome.as_str() == "succeeded";
        if !ok {
            eprintln!(
                "ctct-bench: {command_type} {id} {}: {:?}",
                result.outcome.as_str(),
                result.error
            );
        }
        if command_type == "custom_field.create" {
            field_id = result
                .data
                .as_ref()
                .and_then(|d| d.get("custom_field_id"))
                .and_then(|v| v.as_str())
                .map(str::to_owned);
        }
        samples.push(Sample {
            command_type,
            ms: at.saturating_duration_since(sent).as_secs_f64() * 1000.0,
            ok,
        });
    }

    stop_process(&mut daemon, "TERM").await;
    reader.abort();
    drain.abort();
    topology.delete(&channel).await.ok();
    conn.close(200, "bench done".into()).await.ok();
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    stores.drop_now().await?;
    Ok(samples)
}

/// The reply to command `id` and its arrival time (replies to other ids are skipped).
async fn wait_for_reply(
    inbox: &mut mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    id: &str,
    deadline: Duration,
) -> anyhow::Result<(Instant, CommandResult)> {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let Ok(Some((at, body))) = tokio::time::timeout_at(until, inbox.recv()).await else {
            bail!("none within {} s", deadline.as_secs());
        };
        let result: CommandResult = serde_json::from_slice(&body).context("a reply's body")?;
        if result.command_id == id {
            return Ok((at, result));
        }
    }
}
