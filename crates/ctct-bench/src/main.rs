//! `ctct-bench`: benchmark programs (not timed tests). Figures and the exact commands are in
//! docs/performance.md.
//!
//! `ctct-bench pipeline --upserts 20000 --limits off --coalescing on` runs `contact.upsert`
//! commands through a real `ctct-sync run` process (see `pipeline.rs`), whose stores are SQLite
//! files and then a PostgreSQL database (`--engines sqlite,postgres`).
//!
//! `ctct-bench mirror --contacts 100000,1000000 --paths export,paging` starts an in-process
//! sandbox with limits off and the given number of seeded contacts, then mirrors the
//! contacts into a fresh mirror store (`--engines sqlite,postgres`: a SQLite file, and a
//! PostgreSQL database made for the run and dropped after it) **in a child process** (this binary again, `mirror-child`),
//! so the child's peak memory (VmHWM from /proc/self/status) is the mirror's alone and not the
//! sandbox's. Reported per size and path: wall time, contacts per second, API requests (as the
//! sandbox logged them, export polls separately) and peak RSS. With `--changed K`, K contacts
//! are then updated through the API and an incremental run is measured the same way.
//!
//! `ctct-bench reports --campaigns 200 --in-window 20 --recipients 100000 --limits off,share`
//! measures the mirror's campaign-reports pass (see `reports.rs`): each run in a child
//! process (`reports-child`) on one store, night after night (the sandbox's clock and the
//! child's moved past UTC midnight) until the backfill is complete, then an unchanged run.
//!
//! `ctct-bench latency --rate 50 --seconds 60 --coalescing off,on` sends commands one at a time
//! by request/reply to a freshly started `ctct-sync run` process (see `latency.rs`) and prints
//! p50/p99/max from publish to reply per command type, and the first command after start.
//!
//! `ctct-bench shared-key --seconds 300` shares one API key at its real limits between two
//! `ctct-sync run` daemons and a `ctct-sync mirror` on one state store (see `shared_key.rs`),
//! and reads the sandbox's request log for 429s and the busiest second.

mod daemon;
mod latency;
mod pg;
mod pipeline;
mod reports;
mod shared_key;

use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use ctct_sandbox::{LimitsMode, SandboxOptions};
use ctct_sync::api::model::{ContactQuery, Include, Source};
use ctct_sync::api::{
    ApiClient, BudgetSettings, ClientSettings, OAuthConfig, RateBudget, TokenManager,
};
use ctct_sync::clock::{Clock, SystemClock};
use ctct_sync::mirror::{
    ContactsPath, Mirror, MirrorDb, MirrorOptions, Mode, PgMirrorDb, Resource, Trigger,
};
use ctct_sync::store::{PgStore, Store};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
#[command(
    name = "ctct-bench",
    about = "ctct-sync benchmarks (see docs/performance.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mirror N sandbox contacts (by export, or by paging) into each engine's mirror store, each
    /// run in a child process.
    Mirror {
        /// Sizes to measure, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1000000")]
        contacts: Vec<usize>,
        /// Paths to measure, comma separated: export, paging.
        #[arg(long, value_delimiter = ',', default_value = "export")]
        paths: Vec<String>,
        /// The mirror store: sqlite, postgres, or both (comma separated), side by side.
        #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
        engines: Vec<String>,
        /// A database of the PostgreSQL server to measure on; each run creates a database of
        /// its own there and drops it afterwards.
        #[arg(long, default_value = DEFAULT_POSTGRES_URL)]
        postgres_url: String,
        /// Also measure PostgreSQL without the foreign keys of custom-field values and list
        /// memberships to contacts (dropped in the benchmark's database only).
        #[arg(long)]
        without_fks: bool,
        /// After the full runs, update this many contacts and measure an incremental run.
        #[arg(long, default_value_t = 0)]
        changed: usize,
        /// After the first full run, update this many contacts and measure a second full run
        /// over the same store (most rows unchanged).
        #[arg(long)]
        repeat_changed: Option<usize>,
        /// Where the stores are written (a temporary directory by default).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Queued contact.upsert commands through a `ctct-sync run` process, against RabbitMQ alone.
    Pipeline {
        /// Command counts to measure, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "20000")]
        upserts: Vec<usize>,
        /// The command sent: contact.upsert, or list.add_contacts / contact.tag /
        /// contact.delete naming one seeded contact each by id.
        #[arg(long, default_value = "contact.upsert")]
        command: String,
        /// The sandbox's and the daemon's limits: off, or real (4/s, 10,000/day).
        #[arg(long, default_value = "off")]
        limits: String,
        /// Bulk coalescing: on, off, or both (comma separated).
        #[arg(long, value_delimiter = ',', default_value = "on")]
        coalescing: Vec<String>,
        /// Give up waiting for results after this many seconds.
        #[arg(long, default_value_t = 3600)]
        deadline_s: u64,
        /// Then publish the same commands again and time their replays from the ledger.
        #[arg(long)]
        replay: bool,
        /// The broker.
        #[arg(long, default_value = DEFAULT_AMQP_URL)]
        amqp_url: String,
        /// The daemon's stores: sqlite, postgres, or both (comma separated), side by side.
        #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
        engines: Vec<String>,
        /// A database of the PostgreSQL server to measure on; each measurement creates a
        /// database of its own there and drops it afterwards.
        #[arg(long, default_value = DEFAULT_POSTGRES_URL)]
        postgres_url: String,
        /// A standby replica beside the measured daemon: off, on, or both (comma separated).
        #[arg(long, value_delimiter = ',', default_value = "off")]
        standby: Vec<String>,
    },
    /// Commands one at a time by request/reply at a steady rate well below capacity, through
    /// a freshly started `ctct-sync run` process: p50/p99/max from publish to reply per
    /// command type, and the first command after start.
    Latency {
        /// Commands sent per second (the next one waits for the previous reply).
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// How long to send for (rate × seconds commands).
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// Bulk coalescing: on, off, or both (comma separated).
        #[arg(long, value_delimiter = ',', default_value = "off,on")]
        coalescing: Vec<String>,
        /// Give up on a reply after this many seconds.
        #[arg(long, default_value_t = 30)]
        reply_deadline_s: u64,
        /// The broker.
        #[arg(long, default_value = DEFAULT_AMQP_URL)]
        amqp_url: String,
        /// The daemon's stores: sqlite, postgres, or both (comma separated), one after the
        /// other.
        #[arg(long, value_delimiter = ',', default_value = "sqlite")]
        engines: Vec<String>,
        /// A database of the PostgreSQL server to measure on; each measurement creates a
        /// database of its own there and drops it afterwards.
        #[arg(long, default_value = DEFAULT_POSTGRES_URL)]
        postgres_url: String,
    },
    /// One API key at its real limits shared by two `ctct-sync run` daemons and a
    /// `ctct-sync mirror` on one state store: 429s and the busiest second, from the sandbox's
    /// request log.
    SharedKey {
        /// How long the three processes compete.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// contact.upsert commands published to each daemon per second (two requests each;
        /// the key serves four requests a second in all).
        #[arg(long, default_value_t = 4.0)]
        rate: f64,
        /// Contacts seeded in the sandbox for the mirror to page through (500 a request).
        #[arg(long, default_value_t = 2_000)]
        contacts: usize,
        /// The broker.
        #[arg(long, default_value = DEFAULT_AMQP_URL)]
        amqp_url: String,
        /// The processes' stores: sqlite, postgres, or both (comma separated), one after the
        /// other.
        #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
        engines: Vec<String>,
        /// A database of the PostgreSQL server to measure on; each measurement creates a
        /// database of its own there and drops it afterwards.
        #[arg(long, default_value = DEFAULT_POSTGRES_URL)]
        postgres_url: String,
    },
    /// The mirror's campaign-reports pass over many sent campaigns, a few within
    /// `mirror.reports.days`: the backfill night by night, then an unchanged run.
    Reports {
        /// Sent campaigns in all (the seeded account's own sent campaign among them).
        #[arg(long, default_value_t = 200)]
        campaigns: usize,
        /// How many of them were sent within the window.
        #[arg(long, default_value_t = 20)]
        in_window: usize,
        /// Recipients of each campaign sent within the window.
        #[arg(long, default_value_t = 100_000)]
        recipients: usize,
        /// Recipients of each campaign sent before the window (default: --recipients).
        #[arg(long)]
        old_recipients: Option<usize>,
        /// mirror.reports.days.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// off (no limit), share (the reports' 2,000 requests a day, no per-second limit),
        /// real (4/s and 10,000/day, the share 2,000); comma separated.
        #[arg(long, value_delimiter = ',', default_value = "off,share")]
        limits: Vec<String>,
        /// The mirror store: sqlite, postgres, or both (comma separated), one after the other.
        #[arg(long, value_delimiter = ',', default_value = "sqlite")]
        engines: Vec<String>,
        /// A database of the PostgreSQL server to measure on; each measurement creates a
        /// database of its own there and drops it afterwards.
        #[arg(long, default_value = DEFAULT_POSTGRES_URL)]
        postgres_url: String,
        /// Give up when the backfill is not complete after this many nights.
        #[arg(long, default_value_t = 30)]
        max_nights: usize,
        /// Where the stores are written (a temporary directory by default).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// One mirror run of campaigns or reports (used by `reports`; prints one JSON line).
    #[command(hide = true)]
    ReportsChild(reports::ReportsChildArgs),
    /// One mirror run (used by `mirror`; prints one JSON line).
    #[command(hide = true)]
    MirrorChild(ChildArgs),
}

/// How a child process reaches the sandbox and its stores (the client secret and the refresh
/// token come from the environment, never the command line).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ChildConnection {
    #[arg(long)]
    base_url: String,
    #[arg(long)]
    token_url: String,
    #[arg(long)]
    authorize_url: String,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    db: std::path::PathBuf,
    /// The mirror store on PostgreSQL (already migrated), instead of a SQLite file beside --db.
    #[arg(long)]
    mirror_url: Option<String>,
}

impl ChildConnection {
    /// The child's mirror store and its API client on a budget of `budget`, authorised with
    /// the refresh token of the environment when the store has no account yet.
    pub(crate) async fn open(
        &self,
        clock: Arc<dyn Clock>,
        budget: BudgetSettings,
    ) -> anyhow::Result<(MirrorDb, ApiClient)> {
        let client_secret =
            std::env::var(SECRET_ENV).with_context(|| format!("{SECRET_ENV} is not set"))?;
        let refresh_token =
            std::env::var(REFRESH_ENV).with_context(|| format!("{REFRESH_ENV} is not set"))?;
        let (store, _) = Store::open(&self.db).context("opening the store")?;
        let mirror_db = match &self.mirror_url {
            Some(url) => {
                let pg = PgStore::connect(&SecretString::from(url.as_str()), "ctct_mirror").await?;
                MirrorDb::postgres(PgMirrorDb::new(pg.pool().clone()))
            }
            None => {
                let (mirror_store, _) = Store::open_mirror(&mirror_file(&self.db))
                    .context("opening the mirror store")?;
                MirrorDb::new(mirror_store)
            }
        };
        let tokens = TokenManager::new(
            OAuthConfig::new(
                &self.client_id,
                SecretString::from(client_secret),
                &self.token_url,
                &self.authorize_url,
            ),
            store.clone(),
            clock.clone(),
        )?;
        let budget = RateBudget::new(&self.client_id, budget, store, clock);
        let client = ApiClient::new(
            ClientSettings::new(&self.base_url),
            Arc::new(budget),
            tokens,
        )?;
        if client.tokens().accounts().await?.is_empty() {
            client
                .tokens()
                .import_refresh_token("default", SecretString::from(refresh_token))
                .await?;
        }
        Ok((mirror_db, client))
    }
}

#[derive(Debug, Clone, clap::Args)]
struct ChildArgs {
    #[command(flatten)]
    connection: ChildConnection,
    #[arg(long)]
    path: String,
    #[arg(long)]
    incremental: bool,
    /// Export records per transaction.
    #[arg(long, default_value_t = MirrorOptions::default().export_batch)]
    batch: usize,
}

/// What a child reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChildReport {
    outcome: String,
    wall_s: f64,
    /// From the run's start to its first batch written (export: creating and waiting for it).
    first_rows_s: f64,
    rows_upserted: u64,
    pages: u64,
    api_requests: u64,
    peak_rss_kib: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Mirror {
                contacts,
                paths,
                changed,
                repeat_changed,
                dir,
                engines,
                postgres_url,
                without_fks,
            } => {
                let mut engines = engine_choices(&engines, &postgres_url)?
                    .into_iter()
                    .map(|pg| (pg, false))
                    .collect::<Vec<_>>();
                if without_fks {
                    engines.push((Some(postgres_url), true));
                }
                bench_mirror(&contacts, &paths, &engines, changed, repeat_changed, dir).await
            }
            Command::MirrorChild(args) => child(args).await,
            Command::ReportsChild(args) => reports::child(args).await,
            Command::Reports {
                campaigns,
                in_window,
                recipients,
                old_recipients,
                days,
                limits,
                engines,
                postgres_url,
                max_nights,
                dir,
            } => {
                let scratch =
                    std::env::temp_dir().join(format!("ctct-bench-{}", std::process::id()));
                let dir = dir.unwrap_or_else(|| scratch.clone());
                std::fs::create_dir_all(&dir)?;
                let mut lines = Vec::new();
                for postgres in engine_choices(&engines, &postgres_url)? {
                    for limits in &limits {
                        let scenario = reports::Scenario {
                            campaigns,
                            in_window,
                            recipients,
                            old_recipients: old_recipients.unwrap_or(recipients),
                            days,
                            limits: reports::Limits::parse(limits)?,
                            postgres: postgres.clone(),
                            max_nights,
                        };
                        println!("{}", reports::HEADER);
                        lines.extend(reports::run(&scenario, &dir).await?);
                    }
                }
                println!();
                for line in lines {
                    println!("{line}");
                }
                let _ = std::fs::remove_dir_all(&scratch);
                Ok(())
            }
            Command::Pipeline {
                upserts,
                command,
                limits,
                coalescing,
                deadline_s,
                replay,
                amqp_url,
                engines,
                postgres_url,
                standby,
            } => {
                let postgres = engine_choices(&engines, &postgres_url)?;
                let standby = standby
                    .iter()
                    .map(|mode| match mode.as_str() {
                        "on" => Ok(true),
                        "off" => Ok(false),
                        other => bail!("--standby takes on or off, not {other}"),
                    })
                    .collect::<anyhow::Result<Vec<bool>>>()?;
                if ![
                    "contact.upsert",
                    "list.add_contacts",
                    "contact.tag",
                    "contact.delete",
                ]
                .contains(&command.as_str())
                {
                    bail!(
                        "--command takes contact.upsert, list.add_contacts, contact.tag or contact.delete"
                    );
                }
                let real_limits = match limits.as_str() {
                    "real" => true,
                    "off" => false,
                    other => bail!("--limits takes off or real, not {other}"),
                };
                println!("{}", pipeline::HEADER);
                for &count in &upserts {
                    for mode in &coalescing {
                        let coalescing = match mode.as_str() {
                            "on" => true,
                            "off" => false,
                            other => bail!("--coalescing takes on or off, not {other}"),
                        };
                        for postgres in &postgres {
                            for &standby in &standby {
                                let scenario = pipeline::Scenario {
                                    upserts: count,
                                    command: command.clone(),
                                    real_limits,
                                    coalescing,
                                    deadline: Duration::from_secs(deadline_s),
                                    replay,
                                    postgres: postgres.clone(),
                                    standby,
                                };
                                pipeline::run(&scenario, &amqp_url).await?;
                            }
                        }
                    }
                }
                Ok(())
            }
            Command::Latency {
                rate,
                seconds,
                coalescing,
                reply_deadline_s,
                amqp_url,
                engines,
                postgres_url,
            } => {
                println!("{}", latency::HEADER);
                for postgres in engine_choices(&engines, &postgres_url)? {
                    for mode in &coalescing {
                        let coalescing = match mode.as_str() {
                            "on" => true,
                            "off" => false,
                            other => bail!("--coalescing takes on or off, not {other}"),
                        };
                        let scenario = latency::Scenario {
                            rate,
                            seconds,
                            coalescing,
                            postgres: postgres.clone(),
                            reply_deadline: Duration::from_secs(reply_deadline_s),
                        };
                        latency::run(&scenario, &amqp_url).await?;
                    }
                }
                Ok(())
            }
            Command::SharedKey {
                seconds,
                rate,
                contacts,
                amqp_url,
                engines,
                postgres_url,
            } => {
                let mut rows = Vec::new();
                for postgres in engine_choices(&engines, &postgres_url)? {
                    let scenario = shared_key::Scenario {
                        seconds,
                        rate,
                        contacts,
                        postgres,
                    };
                    rows.push(shared_key::run(&scenario, &amqp_url).await?.row());
                }
                println!();
                println!("{}", shared_key::HEADER);
                for row in rows {
                    println!("{row}");
                }
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ctct-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The local RabbitMQ.
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The local PostgreSQL server's maintenance database (trust authentication).
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `--engines` as the measurements to make: `None` for SQLite, the server's URL for
/// PostgreSQL.
fn engine_choices(engines: &[String], postgres_url: &str) -> anyhow::Result<Vec<Option<String>>> {
    engines
        .iter()
        .map(|engine| match engine.as_str() {
            "sqlite" => Ok(None),
            "postgres" => Ok(Some(postgres_url.to_owned())),
            other => bail!("--engines takes sqlite and postgres, not {other}"),
        })
        .collect()
}

/// VmHWM (peak resident set) of this process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The child's secrets come through its environment, never its command line (which any
/// local user can read in /proc).
const SECRET_ENV: &str = "CTCT_BENCH_CLIENT_SECRET";
const REFRESH_ENV: &str = "CTCT_BENCH_REFRESH_TOKEN";

async fn child(args: ChildArgs) -> anyhow::Result<()> {
    // The mirror's own log lines (warnings, and at info where its phases took their time) on
    // stderr, beside the benchmark's table.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CTCT_BENCH_LOG")
                .unwrap_or_else(|_| "warn,ctct_sync::mirror=info".into()),
        )
        .try_init();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (mirror_db, client) = args
        .connection
        .open(
            clock.clone(),
            BudgetSettings::new(1_000_000, 100_000_000, 1.0),
        )
        .await?;
    let options = MirrorOptions {
        contacts_path: if args.path == "paging" {
            ContactsPath::Paging
        } else {
            ContactsPath::Export
        },
        export_poll_initial: Duration::from_millis(500),
        export_poll_max: Duration::from_secs(2),
        export_batch: args.batch,
        ..MirrorOptions::default()
    };
    let started = Instant::now();
    let first_rows = Arc::new(std::sync::Mutex::new(None::<f64>));
    let seen = first_rows.clone();
    let mirror =
        Mirror::new(mirror_db, client, clock, options).with_progress(Arc::new(move |_| {
            let mut first = seen.lock().unwrap_or_else(|e| e.into_inner());
            if first.is_none() {
                *first = Some(started.elapsed().as_secs_f64());
            }
        }));
    let mode = if args.incremental {
        Mode::Incremental
    } else {
        Mode::Full
    };
    let summary = mirror
        .run_once("default", Resource::Contacts, mode, Trigger::Cli)
        .await;
    let wall_s = started.elapsed().as_secs_f64();
    let first_rows_s = first_rows
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(wall_s);
    let report = ChildReport {
        outcome: summary.outcome.as_str().to_owned(),
        wall_s,
        first_rows_s,
        rows_upserted: summary.rows_upserted,
        pages: summary.pages,
        api_requests: summary.api_requests,
        peak_rss_kib: peak_rss_kib(),
    };
    println!("{}", serde_json::to_string(&report)?);
    if let Some(error) = summary.error {
        eprintln!("run error: {error}");
    }
    Ok(())
}

struct Measured {
    report: ChildReport,
    requests: usize,
    polls: usize,
}

async fn run_child(
    sandbox: &ctct_sandbox::Sandbox,
    db: &std::path::Path,
    mirror_url: Option<&str>,
    path: &str,
    incremental: bool,
) -> anyhow::Result<Measured> {
    let admin = sandbox.admin();
    let creds = sandbox.credentials();
    let refresh = admin.issue_refresh_token(&admin.primary_account())?;
    let since = admin.request_log().last().map_or(0, |r| r.seq);
    let exe = std::env::current_exe().context("locating ctct-bench")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("mirror-child")
        .args(["--base-url", &creds.base_url])
        .args(["--token-url", &creds.token_url])
        .args(["--authorize-url", &creds.authorize_url])
        .args(["--client-id", &creds.client_id])
        .env(SECRET_ENV, &creds.client_secret)
        .env(REFRESH_ENV, &refresh)
        .arg("--db")
        .arg(db)
        .args(["--path", path])
        .args(mirror_url.map(|url| format!("--mirror-url={url}")))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if incremental {
        command.arg("--incremental");
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("the child's task stopped")?
        .context("running the child")?;
    if !output.status.success() {
        bail!("the child failed: {}", output.status);
    }
    let report: ChildReport = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("child output {:?}", String::from_utf8_lossy(&output.stdout)))?;
    let log: Vec<_> = admin
        .request_log()
        .into_iter()
        .filter(|r| r.seq > since && r.path.starts_with("/v3/"))
        .collect();
    let polls = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v3/activities/"))
        .count();
    Ok(Measured {
        report,
        requests: log.len(),
        polls,
    })
}

fn print_row(store: &str, contacts: usize, path: &str, m: &Measured) {
    let r = &m.report;
    let writing = (r.wall_s - r.first_rows_s).max(0.001);
    println!(
        "| {store} | {:>9} | {:<11} | {:<9} | {:>8.1} | {:>10.0} | {:>10.0} | {:>5} ({} polls) | {:>7.1} |",
        contacts,
        path,
        r.outcome,
        r.wall_s,
        r.rows_upserted as f64 / r.wall_s.max(0.001),
        r.rows_upserted as f64 / writing,
        m.requests,
        m.polls,
        r.peak_rss_kib as f64 / 1024.0
    );
}

async fn bench_mirror(
    sizes: &[usize],
    paths: &[String],
    engines: &[(Option<String>, bool)],
    changed: usize,
    repeat_changed: Option<usize>,
    dir: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("ctct-bench-{}", std::process::id()));
    let dir = dir.unwrap_or_else(|| scratch.clone());
    std::fs::create_dir_all(&dir)?;
    println!(
        "| store | contacts  | path        | outcome   | wall (s) | contacts/s | write c/s  | API requests | peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &size in sizes {
        let seeding = Instant::now();
        let sandbox = ctct_sandbox::start(SandboxOptions {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            seed_contacts: size,
            limits: LimitsMode::Off,
            ..SandboxOptions::default()
        })
        .await?;
        // The sandbox's own export processing (20,000 rows/s by default) is not ctct-sync's
        // cost; let it finish at its 2-second minimum.
        sandbox.admin().set_activity_rate(u32::MAX);
        eprintln!(
            "seeded {size} contacts in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
        for path in paths {
            for (postgres, without_fks) in engines {
                let store = match (postgres, without_fks) {
                    (None, _) => "SQLite",
                    (Some(_), false) => "PostgreSQL",
                    (Some(_), true) => "PostgreSQL, no FKs",
                };
                let db = dir.join(format!("mirror-{size}-{path}.db"));
                let _ = std::fs::remove_file(&db);
                let _ = std::fs::remove_file(mirror_file(&db));
                let pg = match postgres {
                    Some(admin_url) => {
                        let tag = format!("mirror_{size}_{path}_{}", u8::from(*without_fks));
                        let pg = pg::BenchDb::create(admin_url, &tag).await?;
                        pg::prepare_mirror(pg.url(), *without_fks).await?;
                        Some(pg)
                    }
                    None => None,
                };
                let url = pg.as_ref().map(pg::BenchDb::url);
                let measured = run_child(&sandbox, &db, url, path, false).await?;
                print_row(store, size, path, &measured);
                if let Some(repeat_changed) = repeat_changed {
                    update_contacts(&sandbox, repeat_changed).await?;
                    let measured = run_child(&sandbox, &db, url, path, false).await?;
                    print_row(
                        store,
                        size,
                        &format!("again, {repeat_changed} chg."),
                        &measured,
                    );
                }
                if changed > 0 {
                    update_contacts(&sandbox, changed).await?;
                    let measured = run_child(&sandbox, &db, url, "paging", true).await?;
                    print_row(store, size, &format!("incr. {changed}"), &measured);
                }
                if let Some(pg) = pg {
                    pg.drop_now().await?;
                }
            }
        }
        sandbox.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// The mirror store of the state store at `db`.
fn mirror_file(db: &std::path::Path) -> std::path::PathBuf {
    db.with_extension("mirror.db")
}

/// Token manager over a store at `db` for `sandbox`'s client.
fn sandbox_tokens(
    sandbox: &ctct_sandbox::Sandbox,
    db: &std::path::Path,
) -> anyhow::Result<(Store, TokenManager)> {
    let creds = sandbox.credentials();
    let (store, _) = Store::open(db)?;
    let tokens = TokenManager::new(
        OAuthConfig::new(
            &creds.client_id,
            SecretString::from(creds.client_secret.clone()),
            &creds.token_url,
            &creds.authorize_url,
        ),
        store.clone(),
        Arc::new(SystemClock),
    )?;
    Ok((store, tokens))
}

/// Authorises the store at `db` for `sandbox`'s primary account (a fresh refresh token,
/// exchanged and rotated at once), spending no API request.
pub(crate) async fn authorise_store(
    sandbox: &ctct_sandbox::Sandbox,
    db: &std::path::Path,
) -> anyhow::Result<()> {
    let (_, tokens) = sandbox_tokens(sandbox, db)?;
    let admin = sandbox.admin();
    tokens
        .import_refresh_token(
            "default",
            SecretString::from(admin.issue_refresh_token(&admin.primary_account())?),
        )
        .await?;
    Ok(())
}

/// An API client of `sandbox`'s primary account over its own store at `db` (never a
/// daemon's: its budget has no limit and would take its holds there), authorised.
pub(crate) async fn sandbox_client(
    sandbox: &ctct_sandbox::Sandbox,
    db: &std::path::Path,
) -> anyhow::Result<ApiClient> {
    authorise_store(sandbox, db).await?;
    let creds = sandbox.credentials();
    let (store, tokens) = sandbox_tokens(sandbox, db)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let budget = RateBudget::new(
        &creds.client_id,
        BudgetSettings::new(1_000_000, 100_000_000, 1.0),
        store,
        clock,
    );
    Ok(ApiClient::new(
        ClientSettings::new(&creds.base_url),
        Arc::new(budget),
        tokens,
    )?)
}

/// Updates `count` contacts through the API (first names), from a client in this process.
async fn update_contacts(sandbox: &ctct_sandbox::Sandbox, count: usize) -> anyhow::Result<()> {
    let path = std::env::temp_dir()
        .join(format!("ctct-bench-{}", std::process::id()))
        .join("updater.db");
    let client = sandbox_client(sandbox, &path).await?;
    let api = client.account("default");
    let mut page = api
        .list_contacts(&ContactQuery {
            include: vec![Include::CustomFields, Include::ListMemberships],
            limit: Some(500),
            ..ContactQuery::default()
        })
        .await?;
    let mut done = 0;
    while done < count {
        for contact in &page.contacts {
            if done == count {
                break;
            }
            let mut put = contact.to_put(Source::Account);
            put.first_name = Some(format!("Bench {done}"));
            api.update_contact(&contact.contact_id, &put).await?;
            done += 1;
        }
        match page.next.take() {
            Some(next) if done < count => page = api.next_contacts_page(&next).await?,
            _ => break,
        }
    }
    Ok(())
}
