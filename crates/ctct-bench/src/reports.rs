//! `ctct-bench reports`: the mirror's campaign-reports pass (issue 19) over an account of
//! many sent campaigns, a few of them within `mirror.reports.days`.
//!
//! The sandbox runs in this process with contacts seeded for the recipients; its admin API
//! adds the sent campaigns directly (`SandboxAdmin::add_sent_campaign`), the in-window ones
//! a day or more before now (every event visible), the others before the window. A campaigns
//! run mirrors their activities first; then each reports run is a child process (this
//! binary again, `reports-child`) on one state store and one mirror store, so its peak RSS
//! is the pass's alone. A run that the reports' share of the day stops is followed, after
//! the sandbox's clock and the child's are moved past the next UTC midnight, by the next
//! night's run, until one succeeds; then one more run on the next night measures an
//! unchanged account. Requests are the `/v3` requests the sandbox logged during each run.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use ctct_sandbox::{LimitsMode, SandboxOptions};
use ctct_sync::api::BudgetSettings;
use ctct_sync::clock::{Clock, next_utc_midnight};
use ctct_sync::mirror::{Mirror, MirrorOptions, Mode, ReportOptions, Resource, Trigger};
use ctct_sync::store::Store;
use serde::{Deserialize, Serialize};

use crate::{REFRESH_ENV, SECRET_ENV, mirror_file, peak_rss_kib};

/// The real API key's limits, and the reports' share of the day (`mirror.reports.share`
/// 0.2 of 10,000, within `limits.mirror_share` 0.6).
const REAL_PER_SECOND: u32 = 4;
const REAL_PER_DAY: u32 = 10_000;
const REAL_MIRROR_SHARE: f64 = 0.6;
const REAL_REPORTS_SHARE: u32 = 2_000;
/// "Unlimited": limits and share far beyond what a run spends.
const NO_LIMIT_PER_SECOND: u32 = 1_000_000;
const NO_LIMIT_PER_DAY: u32 = 100_000_000;

/// Share of seeded contacts that receive a send to every list (live, with an address and an
/// active permission: about 95% of the seeded ones); seeding is sized on this, and the sends
/// are cut to exactly the recipients asked for.
const RECIPIENT_SHARE: f64 = 0.92;

/// How the key is limited in one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    /// No limit: the sandbox does not limit, the client's budget and the reports' share
    /// are far beyond what a run spends.
    Off,
    /// The reports' real share of the day (2,000 requests), without the per-second limit.
    Share,
    /// 4 requests/s and 10,000/day in the sandbox and in the client, the share 2,000.
    Real,
}

impl Limits {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text {
            "off" => Ok(Limits::Off),
            "share" => Ok(Limits::Share),
            "real" => Ok(Limits::Real),
            other => bail!("--limits takes off, share or real, not {other}"),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Limits::Off => "off",
            Limits::Share => "share 2,000/day",
            Limits::Real => "real 4/s, share 2,000/day",
        }
    }

    fn daily_requests(self) -> u32 {
        match self {
            Limits::Off => NO_LIMIT_PER_DAY,
            Limits::Share | Limits::Real => REAL_REPORTS_SHARE,
        }
    }
}

/// One measurement's account and limits.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub campaigns: usize,
    pub in_window: usize,
    pub recipients: usize,
    /// Recipients of each campaign sent before the window.
    pub old_recipients: usize,
    pub days: u32,
    pub limits: Limits,
    pub postgres: Option<String>,
    pub max_nights: usize,
}

/// The hidden child: one mirror run of one resource.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportsChildArgs {
    #[command(flatten)]
    connection: crate::ChildConnection,
    /// campaigns or reports.
    #[arg(long)]
    resource: String,
    #[arg(long)]
    days: u32,
    #[arg(long)]
    daily_requests: u32,
    #[arg(long)]
    per_second: u32,
    #[arg(long)]
    per_day: u32,
    #[arg(long)]
    mirror_share: f64,
    /// Milliseconds the child's clock is ahead of the system clock (the sandbox's offset).
    #[arg(long, allow_hyphen_values = true)]
    clock_offset_ms: i64,
}

/// What a child reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChildReport {
    outcome: String,
    wall_s: f64,
    rows_upserted: u64,
    api_requests: u64,
    error: Option<String>,
    peak_rss_kib: u64,
}

/// The system clock moved by a fixed offset (the sandbox's), so the child's days are the
/// sandbox's.
struct OffsetClock(chrono::Duration);

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

pub async fn child(args: ReportsChildArgs) -> anyhow::Result<()> {
    let resource = match args.resource.as_str() {
        "campaigns" => Resource::Campaigns,
        "reports" => Resource::Reports,
        other => bail!("--resource takes campaigns or reports, not {other}"),
    };
    let clock: Arc<dyn Clock> = Arc::new(OffsetClock(chrono::Duration::milliseconds(
        args.clock_offset_ms,
    )));
    let (mirror_db, client) = args
        .connection
        .open(
            clock.clone(),
            BudgetSettings::new(args.per_second, args.per_day, args.mirror_share),
        )
        .await?;
    let options = MirrorOptions {
        reports: ReportOptions {
            days: args.days,
            daily_requests: args.daily_requests,
        },
        ..MirrorOptions::default()
    };
    let started = Instant::now();
    let mirror = Mirror::new(mirror_db, client, clock, options);
    let summary = mirror
        .run_once("default", resource, Mode::Full, Trigger::Cli)
        .await;
    let report = ChildReport {
        outcome: summary.outcome.as_str().to_owned(),
        wall_s: started.elapsed().as_secs_f64(),
        rows_upserted: summary.rows_upserted,
        api_requests: summary.api_requests,
        error: summary.error,
        peak_rss_kib: peak_rss_kib(),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Rows of the report tables after a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Rows {
    stats: i64,
    history: i64,
    events: i64,
    links: i64,
}

const COUNTED: [&str; 4] = [
    "campaign_activity_stats",
    "campaign_activity_stats_history",
    "tracking_events",
    "campaign_activity_links",
];

async fn count_rows(db: &std::path::Path, mirror_url: Option<&str>) -> anyhow::Result<Rows> {
    let counts: Vec<i64> = match mirror_url {
        Some(url) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .context("connecting to the benchmark's database")?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            let mut counts = Vec::new();
            for table in COUNTED {
                let row = client
                    .query_one(&format!("SELECT count(*) FROM ctct_mirror.{table}"), &[])
                    .await?;
                counts.push(row.get(0));
            }
            counts
        }
        None => {
            let (store, _) = Store::open_mirror(&mirror_file(db))?;
            store
                .call(|conn| {
                    let mut counts = Vec::new();
                    for table in COUNTED {
                        counts.push(conn.query_row(
                            &format!("SELECT count(*) FROM {table}"),
                            [],
                            |row| row.get::<_, i64>(0),
                        )?);
                    }
                    Ok(counts)
                })
                .await?
        }
    };
    Ok(Rows {
        stats: counts[0],
        history: counts[1],
        events: counts[2],
        links: counts[3],
    })
}

/// One child run as measured from outside.
struct Measured {
    report: ChildReport,
    /// `/v3` requests the sandbox logged during the run (429s included).
    requests: usize,
    too_many: usize,
    rows: Rows,
}

struct Bench<'a> {
    sandbox: &'a ctct_sandbox::Sandbox,
    scenario: &'a Scenario,
    db: std::path::PathBuf,
    mirror_url: Option<String>,
}

impl Bench<'_> {
    async fn run(&self, resource: &str) -> anyhow::Result<Measured> {
        let admin = self.sandbox.admin();
        let creds = self.sandbox.credentials();
        let refresh = admin.issue_refresh_token(&admin.primary_account())?;
        let since = admin.request_log().last().map_or(0, |r| r.seq);
        let offset_ms = (admin.now() - Utc::now()).num_milliseconds();
        let (per_second, per_day, share) = match self.scenario.limits {
            Limits::Real => (REAL_PER_SECOND, REAL_PER_DAY, REAL_MIRROR_SHARE),
            Limits::Off | Limits::Share => (NO_LIMIT_PER_SECOND, NO_LIMIT_PER_DAY, 1.0),
        };
        let exe = std::env::current_exe().context("locating ctct-bench")?;
        let mut command = std::process::Command::new(exe);
        command
            .arg("reports-child")
            .args(["--base-url", &creds.base_url])
            .args(["--token-url", &creds.token_url])
            .args(["--authorize-url", &creds.authorize_url])
            .args(["--client-id", &creds.client_id])
            .env(SECRET_ENV, &creds.client_secret)
            .env(REFRESH_ENV, &refresh)
            .arg("--db")
            .arg(&self.db)
            .args(
                self.mirror_url
                    .as_ref()
                    .map(|url| format!("--mirror-url={url}")),
            )
            .args(["--resource", resource])
            .arg(format!("--days={}", self.scenario.days))
            .arg(format!(
                "--daily-requests={}",
                self.scenario.limits.daily_requests()
            ))
            .arg(format!("--per-second={per_second}"))
            .arg(format!("--per-day={per_day}"))
            .arg(format!("--mirror-share={share}"))
            .arg(format!("--clock-offset-ms={offset_ms}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .context("the child's task stopped")?
            .context("running the child")?;
        if !output.status.success() {
            bail!("the child failed: {}", output.status);
        }
        let report: ChildReport = serde_json::from_slice(&output.stdout).with_context(|| {
            format!("child output {:?}", String::from_utf8_lossy(&output.stdout))
        })?;
        let log: Vec<_> = admin
            .requests_since(since, usize::MAX)
            .into_iter()
            .filter(|r| r.seq > since && r.path.starts_with("/v3/"))
            .collect();
        let too_many = log.iter().filter(|r| r.status == 429).count();
        let rows = count_rows(&self.db, self.mirror_url.as_deref()).await?;
        Ok(Measured {
            report,
            requests: log.len(),
            too_many,
            rows,
        })
    }

    /// Moves the sandbox's clock (and so the next child's) one minute past the next UTC
    /// midnight.
    fn next_night(&self) {
        let admin = self.sandbox.admin();
        let now = admin.now();
        let wait = (next_utc_midnight(now) - now)
            .to_std()
            .unwrap_or(Duration::ZERO);
        admin.advance_clock(wait + Duration::from_secs(60));
    }
}

pub const HEADER: &str = "| store | limits | run | night | outcome | API requests (429s) | wall (s) | stats | history | events | links | peak RSS (MiB) |\n|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|";

fn row(store: &str, scenario: &Scenario, run: &str, night: usize, m: &Measured) -> String {
    let r = &m.report;
    format!(
        "| {store} | {} | {run} | {night} | {} | {} ({}) | {:.1} | {} | {} | {} | {} | {:.1} |",
        scenario.limits.as_str(),
        r.outcome,
        m.requests,
        m.too_many,
        r.wall_s,
        m.rows.stats,
        m.rows.history,
        m.rows.events,
        m.rows.links,
        r.peak_rss_kib as f64 / 1024.0
    )
}

/// Seeds the account, adds the sent campaigns, mirrors the campaigns, then measures the
/// backfill night by night and one unchanged run; prints a row per run and a summary line.
pub async fn run(scenario: &Scenario, dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let store = if scenario.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let largest = scenario.recipients.max(scenario.old_recipients);
    let seed_contacts = (largest as f64 / RECIPIENT_SHARE).ceil() as usize;
    let started = Instant::now();
    let (limits, per_second, per_day) = match scenario.limits {
        Limits::Real => (LimitsMode::Real, REAL_PER_SECOND, REAL_PER_DAY),
        Limits::Off | Limits::Share => (LimitsMode::Off, REAL_PER_SECOND, REAL_PER_DAY),
    };
    let sandbox = ctct_sandbox::start(SandboxOptions {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        seed_contacts: 0,
        limits,
        per_second,
        per_day,
        ..SandboxOptions::default()
    })
    .await?;
    let admin = sandbox.admin();
    let account = admin.primary_account();
    // Seeded a year ago: the seeded account's own sent campaign (one, to one list) is then
    // long before the window, and it counts as one of the campaigns sent before it.
    let today = admin.now();
    admin.set_clock(today - chrono::Duration::days(365));
    admin.seed(&account, seed_contacts, 1)?;
    admin.set_clock(today);
    // Rendered whole (every event as JSON), so only while it holds the seeded send alone.
    let seeded: Vec<usize> = admin
        .campaign_reports(&account)?
        .iter()
        .map(|r| r.sends.len())
        .collect();
    let now = admin.now();
    let mut old_recipients = seeded.clone();
    for n in 0..scenario.campaigns.saturating_sub(seeded.len()) {
        let (sent_at, recipients) = if n < scenario.in_window {
            // A few hours apart, from a day ago back: every event visible, and still within
            // the window after the nights the backfill takes.
            (
                now - chrono::Duration::hours(24 + 6 * n as i64),
                scenario.recipients,
            )
        } else {
            let before = i64::from(scenario.days) + 10 + (n - scenario.in_window) as i64;
            (
                now - chrono::Duration::days(before),
                scenario.old_recipients,
            )
        };
        let (_, _, sent) = admin.add_sent_campaign(
            &account,
            &format!("Bench campaign {n}"),
            sent_at,
            Some(recipients),
        )?;
        if sent != recipients {
            bail!(
                "campaign {n} was sent to {sent} recipients, not {recipients}: seed more contacts"
            );
        }
        if n >= scenario.in_window {
            old_recipients.push(sent);
        }
    }
    old_recipients.sort_unstable();
    old_recipients.dedup();
    eprintln!(
        "{store}, limits {}: {} contacts seeded, {} campaigns sent ({} before the window, with {:?} recipients) in {:.1} s",
        scenario.limits.as_str(),
        seed_contacts,
        scenario.campaigns,
        scenario.campaigns - scenario.in_window,
        old_recipients,
        started.elapsed().as_secs_f64()
    );

    let db = dir.join(format!(
        "reports-{store}-{}.db",
        scenario.limits.as_str().split(' ').next().unwrap_or("x")
    ));
    let _ = std::fs::remove_file(&db);
    let _ = std::fs::remove_file(mirror_file(&db));
    let pg = match &scenario.postgres {
        Some(admin_url) => {
            let tag = format!(
                "reports_{}",
                scenario.limits.as_str().split(' ').next().unwrap_or("x")
            );
            let pg = crate::pg::BenchDb::create(admin_url, &tag).await?;
            crate::pg::prepare_mirror(pg.url(), false).await?;
            Some(pg)
        }
        None => None,
    };
    let bench = Bench {
        sandbox: &sandbox,
        scenario,
        db,
        mirror_url: pg.as_ref().map(|pg| pg.url().to_owned()),
    };
    let mut lines = Vec::new();
    let campaigns = bench.run("campaigns").await?;
    if campaigns.report.outcome != "succeeded" {
        bail!("the campaigns run did not succeed: {:?}", campaigns.report);
    }
    eprintln!(
        "campaigns run: {} requests, {:.1} s",
        campaigns.requests, campaigns.report.wall_s
    );

    let mut night = 1;
    let mut first_requests = 0;
    let mut first_wall = 0.0;
    let mut peak_kib = 0;
    loop {
        let m = bench.run("reports").await?;
        let line = row(store, scenario, "backfill", night, &m);
        println!("{line}");
        lines.push(line);
        first_requests += m.requests;
        first_wall += m.report.wall_s;
        peak_kib = peak_kib.max(m.report.peak_rss_kib);
        match m.report.outcome.as_str() {
            "succeeded" => break,
            "interrupted" if night < scenario.max_nights => {
                if let Some(error) = &m.report.error {
                    eprintln!("night {night}: {error}");
                }
                bench.next_night();
                night += 1;
            }
            other => bail!("night {night}: the run ended {other}: {:?}", m.report.error),
        }
    }
    bench.next_night();
    let second = bench.run("reports").await?;
    let line = row(store, scenario, "unchanged", night + 1, &second);
    println!("{line}");
    lines.push(line);
    let summary = format!(
        "{store}, limits {}: backfill {first_requests} requests over {night} night(s), {first_wall:.1} s of runs, peak RSS {:.1} MiB; unchanged run {} requests ({:.1}% of the backfill)",
        scenario.limits.as_str(),
        peak_kib as f64 / 1024.0,
        second.requests,
        100.0 * second.requests as f64 / first_requests.max(1) as f64
    );
    eprintln!("{summary}");
    lines.push(summary);
    if let Some(pg) = pg {
        pg.drop_now().await?;
    }
    sandbox.shutdown().await;
    Ok(lines)
}
