//! `ctct-bench shared-key`: one API key at its real limits (4 requests/s, 10,000/day) shared
//! by three processes on one state store, for `--seconds`: two `ctct-sync run` daemons, each
//! consuming a commands queue of its own (a commands queue has a single active consumer: on
//! one queue the second daemon would be a standby that sends nothing), and
//! `ctct-sync mirror --resource contacts --full --paging`, started again whenever it
//! finishes, so that all three compete the whole time.
//!
//! The sandbox runs in this process with its real limits and seeded contacts for the mirror
//! to page through. `contact.upsert` commands (each a new e-mail address, no list, bulk
//! coalescing off: two requests each) are published to each daemon at a steady `--rate`,
//! more than the key can serve. At the end the mirror is interrupted (SIGINT) and the
//! daemons drain and stop (SIGTERM), then the sandbox's request log (`/v3` paths) gives the
//! figures: requests, 429s (with the log of the second before each), the busiest window of
//! one second (sliding over the requests' arrival times, and per calendar second), the
//! requests of each daemon (they carry their command's id, `a-…` or `b-…`) and the others
//! (the mirror's), and the day's count: the sandbox's, the requests sent, and the store's
//! (spent, and still held) once every process has stopped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read as _;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use ctct_sandbox::{LimitsMode, LoggedRequest, SandboxOptions};
use ctct_sync::amqp::topology::Topology;
use ctct_sync::command::outcome::CommandResult;
use ctct_sync::config::Settings;
use ctct_sync::store::budget::DayBudget;
use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use tokio::time::Instant;

use crate::daemon::{
    DaemonStores, Process, daemon_env, results_consumer, spawn_ctct_sync, spawn_daemon,
    stop_process, wait_for_consumers,
};

/// The key's limits, as the sandbox enforces them and the processes are configured.
const PER_SECOND: usize = 4;
const PER_DAY: u32 = 10_000;

/// The daemons, by the prefix of their commands' ids (which their requests carry).
const DAEMONS: [&str; 2] = ["a", "b"];

/// One measurement.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seconds: u64,
    /// `contact.upsert` commands published to each daemon per second.
    pub rate: f64,
    /// Contacts seeded in the sandbox for the mirror.
    pub contacts: usize,
    /// The stores in a fresh database on the PostgreSQL server of this URL (otherwise SQLite
    /// files).
    pub postgres: Option<String>,
}

/// What one measurement found.
pub struct Figures {
    engine: &'static str,
    seconds: u64,
    requests: usize,
    throttled: usize,
    sliding: usize,
    calendar: usize,
    sandbox_today: u32,
    store_today: DayBudget,
}

pub const HEADER: &str = "| engine | seconds | requests | 429 throttled | busiest 1-s window (sliding) | busiest calendar second | daily count sandbox / store |\n|---|---:|---:|---:|---:|---:|---|";

impl Figures {
    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {} / {} ({} held; {} sent) |",
            self.engine,
            self.seconds,
            self.requests,
            self.throttled,
            self.sliding,
            self.calendar,
            self.sandbox_today,
            self.store_today.counted(),
            self.store_today.held,
            self.requests,
        )
    }
}

pub async fn run(scenario: &Scenario, amqp_url: &str) -> anyhow::Result<Figures> {
    let dir = std::env::temp_dir().join(format!(
        "ctct-bench-shared-key-{}-{}",
        std::process::id(),
        if scenario.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    ));
    std::fs::create_dir_all(&dir)?;
    let sandbox = ctct_sandbox::start(SandboxOptions {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        seed_contacts: scenario.contacts,
        limits: LimitsMode::Real,
        per_second: PER_SECOND as u32,
        per_day: PER_DAY,
        ..SandboxOptions::default()
    })
    .await?;
    let stores =
        DaemonStores::authorised(&sandbox, &dir, scenario.postgres.as_deref(), "shared_key").await;
    let mut declared = Vec::new();
    let measured = match &stores {
        Ok(stores) => measure(scenario, amqp_url, &sandbox, stores, &dir, &mut declared).await,
        Err(error) => Err(anyhow::anyhow!("authorising the store: {error:#}")),
    };
    // Also after an error (the processes are gone: their handles killed them): the queues
    // and exchanges, on a connection of their own; the sandbox, the files, the database.
    if !declared.is_empty()
        && let Ok(conn) = ctct_sync::amqp::connect(amqp_url, "ctct-bench shared-key cleanup").await
    {
        if let Ok(channel) = conn.create_channel().await {
            for topology in &declared {
                topology.delete(&channel).await.ok();
            }
        }
        conn.close(200, "bench done".into()).await.ok();
    }
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let dropped = match stores {
        Ok(stores) => stores.drop_now().await,
        Err(_) => Ok(()),
    };
    let figures = measured?;
    dropped?;
    Ok(figures)
}

/// The measurement itself; `declared` gets each topology it declares.
async fn measure(
    scenario: &Scenario,
    amqp_url: &str,
    sandbox: &ctct_sandbox::Sandbox,
    stores: &DaemonStores,
    dir: &std::path::Path,
    declared: &mut Vec<Topology>,
) -> anyhow::Result<Figures> {
    let engine = stores.engine();
    let tag = format!(
        "bench-{}-shared-key-{}",
        std::process::id(),
        engine.to_lowercase()
    );
    let conn = ctct_sync::amqp::connect(amqp_url, "ctct-bench shared-key")
        .await
        .context("connecting to RabbitMQ")?;
    let channel = ctct_sync::amqp::confirm_channel(&conn).await?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    // One commands queue per daemon: a commands queue has a single active consumer, so two
    // daemons on one queue would be one working and one standby.
    let mut daemons = Vec::new();
    for name in DAEMONS {
        let mut env = daemon_env(sandbox, &format!("{tag}-{name}"), amqp_url, true, false);
        stores.configure(&mut env);
        let settings = Settings::load(None, env.clone()).context("the daemons' settings")?;
        let topology = Topology::from_settings(&settings.amqp);
        declared.push(topology.clone());
        topology.declare(&channel).await?;
        let mut results = results_consumer(&channel, &topology).await?;
        let tally = tally.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = results.next().await {
                if let Ok(result) = serde_json::from_slice::<CommandResult>(&delivery.data) {
                    lock(&tally).record(&result);
                }
            }
        });
        let process = spawn_daemon(dir, &env)?;
        daemons.push((name, env, settings, topology, process));
    }
    for (_, _, _, topology, _) in &daemons {
        wait_for_consumers(&channel, &topology.commands_queue, 1).await?;
    }
    let (_, env, settings, _, _) = &daemons[0];
    let settings = settings.clone();
    let mut mirror = MirrorCli::start(dir, env)?;
    eprintln!(
        "{engine}: two daemons and the CLI mirror on one key for {} s ({} upserts/s published to each daemon, {} contacts seeded)",
        scenario.seconds, scenario.rate, scenario.contacts
    );

    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2);
    let every = Duration::from_secs_f64(1.0 / scenario.rate.max(0.01));
    let started = Instant::now();
    let until = started + Duration::from_secs(scenario.seconds);
    let mut next_publish = started;
    let mut published = 0usize;
    while Instant::now() < until {
        if Instant::now() >= next_publish {
            for (name, _, _, topology, _) in &daemons {
                let body = serde_json::json!({
                    "id": format!("{name}-{published}"),
                    "type": "contact.upsert",
                    "account": "default",
                    "data": {
                        "email": format!("shared.{name}.{published}@example.com"),
                        "first_name": format!("Shared {published}"),
                    }
                });
                channel
                    .basic_publish(
                        "".into(),
                        topology.commands_queue.as_str().into(),
                        BasicPublishOptions::default(),
                        &serde_json::to_vec(&body)?,
                        properties.clone(),
                    )
                    .await?
                    .await?;
            }
            published += 1;
            next_publish += every;
        }
        mirror.keep_running()?;
        let nap = (Instant::now() + Duration::from_millis(100)).min(next_publish);
        tokio::time::sleep_until(nap.min(until)).await;
    }

    // Everyone stops at once: the mirror at its next page, the daemons after their in-flight
    // commands.
    let (stopped, ()) = tokio::join!(
        futures_util::future::join_all(
            daemons
                .iter_mut()
                .map(|(_, _, _, _, process)| stop_process(process, "TERM"))
        ),
        mirror.stop()
    );
    let stopped_s = started.elapsed().as_secs_f64();
    for status in stopped {
        match status {
            Some(status) if status.success() => {}
            Some(status) => eprintln!("ctct-bench: a daemon exited with {status}"),
            None => eprintln!("ctct-bench: a daemon had to be killed"),
        }
    }

    // The day as the store has it, right after the last process stopped (a hold left behind
    // would lapse 5 s later).
    let admin = sandbox.admin();
    let sandbox_today = admin.requests_today();
    let store_today = {
        let opened = ctct_sync::daemon::open_stores(&settings).await?;
        let now = admin.now();
        opened
            .state
            .budget_load_day(
                &sandbox.credentials().client_id,
                now.date_naive(),
                now.timestamp_millis(),
            )
            .await?
    };
    // The last results on their way.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut log: Vec<LoggedRequest> = admin
        .request_log()
        .into_iter()
        .filter(|r| r.path == "/v3" || r.path.starts_with("/v3/"))
        .collect();
    log.sort_by_key(|r| (r.time, r.seq));
    let times: Vec<i64> = log.iter().map(|r| r.time.timestamp_millis()).collect();
    let (sliding, sliding_from) = busiest_window(&times);
    let (calendar, calendar_second) = busiest_calendar_second(&times);
    let refused: Vec<usize> = (0..log.len()).filter(|&i| log[i].status == 429).collect();
    let by_daemon: Vec<(&str, usize)> = DAEMONS
        .iter()
        .map(|name| {
            let prefix = format!("{name}-");
            let n = log
                .iter()
                .filter(|r| {
                    r.command_id
                        .as_deref()
                        .is_some_and(|id| id.starts_with(&prefix))
                })
                .count();
            (*name, n)
        })
        .collect();
    let for_commands: usize = by_daemon.iter().map(|(_, n)| n).sum();
    let span_s = match (times.first(), times.last()) {
        (Some(first), Some(last)) => (last - first) as f64 / 1_000.0,
        _ => 0.0,
    };

    println!();
    println!(
        "### {engine}: {} s, then {:.1} s to stop",
        scenario.seconds,
        stopped_s - scenario.seconds as f64
    );
    println!(
        "- published {published} contact.upsert commands to each daemon; results: {}",
        lock(&tally).describe()
    );
    println!("- CLI mirror: {}", mirror.describe());
    println!(
        "- {} `/v3` requests ({:.2}/s from the first to the last, {:.1} s apart): {} (by the command ids they carry), {} with no command id (the CLI mirror's)",
        log.len(),
        log.len() as f64 / span_s.max(0.001),
        span_s,
        by_daemon
            .iter()
            .map(|(name, n)| format!("{n} by daemon {name}"))
            .collect::<Vec<_>>()
            .join(", "),
        log.len() - for_commands
    );
    println!(
        "- busiest window of one second (sliding over arrival times): {sliding} requests from {}; busiest calendar second: {calendar} requests at {}",
        log.get(sliding_from).map_or("-".to_owned(), |r| r
            .time
            .format("%H:%M:%S%.3f")
            .to_string()),
        log.iter()
            .find(|r| r.time.timestamp_millis().div_euclid(1_000) == calendar_second)
            .map_or("-".to_owned(), |r| r.time.format("%H:%M:%S").to_string()),
    );
    println!(
        "- daily count: sandbox {sandbox_today} (it does not count its 429s), requests sent {}, store {} ({} spent + {} held)",
        log.len(),
        store_today.counted(),
        store_today.spent,
        store_today.held
    );
    if sliding > PER_SECOND {
        println!("- the busiest window's requests:");
        let end = times[sliding_from] + 1_000;
        for r in log[sliding_from..]
            .iter()
            .take_while(|r| r.time.timestamp_millis() < end)
        {
            println!("{}", describe(r, times[sliding_from]));
        }
    }
    for (n, &i) in refused.iter().enumerate() {
        if n == 20 {
            println!("- … and {} more 429s", refused.len() - n);
            break;
        }
        let at = times[i];
        println!(
            "- 429 at {} ({} {}); the sandbox's log of the second before it:",
            log[i].time.format("%H:%M:%S%.3f"),
            log[i].method,
            log[i].path
        );
        let first = times.partition_point(|&t| t <= at - 1_000);
        for r in &log[first..=i] {
            println!("{}", describe(r, at));
        }
    }
    let mut failures = Vec::new();
    if !refused.is_empty() {
        failures.push(format!("{} × 429", refused.len()));
    }
    if sliding > PER_SECOND {
        failures.push(format!("{sliding} requests in one second"));
    }
    // What the store should hold once everyone stopped: every request sent (a 429 too: the
    // store cannot know which ones the API will not count), nothing held.
    let exact = store_today.held == 0 && store_today.spent as usize == log.len();
    println!(
        "{}: {engine}, {} s — {} × 429, at most {sliding} requests in any second (target: 0 and ≤ {PER_SECOND}){}; daily count {}",
        if failures.is_empty() { "PASS" } else { "FAIL" },
        scenario.seconds,
        refused.len(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(" [{}]", failures.join(", "))
        },
        if exact {
            format!(
                "exact ({} sent = {} spent, 0 held; the sandbox counted {sandbox_today})",
                log.len(),
                store_today.spent
            )
        } else {
            format!(
                "NOT exact ({} sent; store {} spent + {} held; the sandbox counted {sandbox_today})",
                log.len(),
                store_today.spent,
                store_today.held
            )
        }
    );

    conn.close(200, "bench done".into()).await.ok();
    Ok(Figures {
        engine,
        seconds: scenario.seconds,
        requests: log.len(),
        throttled: refused.len(),
        sliding,
        calendar,
        sandbox_today,
        store_today,
    })
}

/// The most arrival times (milliseconds, sorted) within one second (`[t, t + 1000)`: as the
/// sandbox's limiter counts), and the index of the first of them.
fn busiest_window(times: &[i64]) -> (usize, usize) {
    let mut best = (0, 0);
    let mut end = 0;
    for (start, &t) in times.iter().enumerate() {
        while end < times.len() && times[end] < t + 1_000 {
            end += 1;
        }
        if end - start > best.0 {
            best = (end - start, start);
        }
    }
    best
}

/// The most arrival times in one calendar second, and that second (Unix seconds).
fn busiest_calendar_second(times: &[i64]) -> (usize, i64) {
    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    for &t in times {
        *per_second.entry(t.div_euclid(1_000)).or_default() += 1;
    }
    per_second
        .into_iter()
        .map(|(second, count)| (count, second))
        .max_by_key(|&(count, second)| (count, std::cmp::Reverse(second)))
        .unwrap_or((0, 0))
}

/// `  12:00:00.361  -873 ms  200 GET /v3/contacts?… [shared-12]`: one request of the log,
/// its time relative to `at_ms`, and the command it was for (none: the mirror).
fn describe(r: &LoggedRequest, at_ms: i64) -> String {
    format!(
        "  {}  {:>+5} ms  {} {} {} [{}]",
        r.time.format("%H:%M:%S%.3f"),
        r.time.timestamp_millis() - at_ms,
        r.status,
        r.method,
        r.path,
        r.command_id.as_deref().unwrap_or("mirror")
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The commands' results as they arrived: the first per command, by outcome.
#[derive(Default)]
struct Tally {
    seen: HashSet<String>,
    outcomes: BTreeMap<&'static str, usize>,
    errors: BTreeMap<String, usize>,
}

impl Tally {
    fn record(&mut self, result: &CommandResult) {
        if !self.seen.insert(result.command_id.clone()) {
            return;
        }
        *self.outcomes.entry(result.outcome.as_str()).or_default() += 1;
        if let Some(error) = &result.error {
            *self
                .errors
                .entry(error.code.as_str().to_owned())
                .or_default() += 1;
        }
    }

    fn describe(&self) -> String {
        if self.seen.is_empty() {
            return "none".to_owned();
        }
        let mut parts: Vec<String> = self
            .outcomes
            .iter()
            .map(|(outcome, n)| format!("{n} {outcome}"))
            .collect();
        parts.extend(self.errors.iter().map(|(code, n)| format!("{n} × {code}")));
        parts.join(", ")
    }
}

/// `ctct-sync mirror --resource contacts --full --paging`, started again whenever it exits.
struct MirrorCli {
    dir: std::path::PathBuf,
    env: HashMap<String, String>,
    process: Option<Process>,
    /// Runs that finished by themselves, by exit status (0 done, 75 interrupted, 1 failed;
    /// -1 killed by a signal).
    exits: BTreeMap<i32, usize>,
    /// The summary line of the first of them that did not succeed.
    first_trouble: Option<String>,
    /// How the run stopped at the end exited (`None`: it had to be killed).
    last: Option<i32>,
    /// That run's summary line.
    last_line: String,
    /// The API requests every run's summary line reports, the last one's included.
    reported: u64,
}

const MIRROR_ARGS: [&str; 6] = [
    "mirror",
    "--resource",
    "contacts",
    "--full",
    "--paging",
    "--account=default",
];

impl MirrorCli {
    fn start(dir: &std::path::Path, env: &HashMap<String, String>) -> anyhow::Result<MirrorCli> {
        let mut cli = MirrorCli {
            dir: dir.to_owned(),
            env: env.clone(),
            process: None,
            exits: BTreeMap::new(),
            first_trouble: None,
            last: None,
            last_line: String::new(),
            reported: 0,
        };
        cli.spawn()?;
        Ok(cli)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        self.process = Some(spawn_ctct_sync(
            &self.dir,
            &self.env,
            &MIRROR_ARGS,
            Stdio::piped(),
        )?);
        Ok(())
    }

    /// Starts the mirror again if its run finished.
    fn keep_running(&mut self) -> anyhow::Result<()> {
        let Some(process) = self.process.as_mut() else {
            return self.spawn();
        };
        if let Some(status) = process.try_wait()? {
            self.finished(status.code().unwrap_or(-1));
            self.spawn()?;
        }
        Ok(())
    }

    /// Notes how the current run ended (its summary line is on its stdout).
    fn finished(&mut self, code: i32) {
        let out = self.summary();
        self.process = None;
        *self.exits.entry(code).or_default() += 1;
        if code != 0 && self.first_trouble.is_none() {
            self.first_trouble = Some(format!("exit {code}: {}", out.trim()));
        }
    }

    /// Interrupts the current run (SIGINT: it stops at its next page and gives its hold back).
    async fn stop(&mut self) {
        let Some(process) = self.process.as_mut() else {
            return;
        };
        self.last = stop_process(process, "INT")
            .await
            .map(|status| status.code().unwrap_or(-1));
        self.last_line = self.summary();
        self.process = None;
    }

    /// The finished run's summary line (its stdout), its API requests added to `reported`.
    fn summary(&mut self) -> String {
        let mut out = String::new();
        if let Some(mut stdout) = self.process.as_mut().and_then(|p| p.stdout.take()) {
            let _ = stdout.read_to_string(&mut out);
        }
        self.reported += api_requests(&out);
        out.trim().to_owned()
    }

    fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .exits
            .iter()
            .map(|(&code, &n)| match code {
                0 => format!("{n} run{} finished", if n == 1 { "" } else { "s" }),
                75 => format!("{n} interrupted (exit 75)"),
                c => format!("{n} ended with exit {c}"),
            })
            .collect();
        parts.push(match self.last {
            Some(code) => format!(
                "the one running at the end stopped on SIGINT with exit {code} (`{}`)",
                self.last_line
            ),
            None => "the one running at the end had to be killed".to_owned(),
        });
        parts.push(format!(
            "{} API requests in all by their summary lines",
            self.reported
        ));
        if let Some(trouble) = &self.first_trouble {
            parts.push(format!("first trouble: {trouble}"));
        }
        parts.join(", ")
    }
}

/// The API requests a `ctct-sync mirror` summary line reports (`…, 1,234 API requests in …`).
fn api_requests(summary: &str) -> u64 {
    summary
        .lines()
        .filter_map(|line| {
            let (before, _) = line.split_once(" API request")?;
            before
                .rsplit(' ')
                .next()?
                .replace(',', "")
                .parse::<u64>()
                .ok()
        })
        .sum()
}
