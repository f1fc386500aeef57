//! `ctct-sync mirror`: one mirror run now, in this process, without RabbitMQ. One summary
//! line per resource on stdout; while a resource runs, a progress bar on stderr when stderr is
//! a terminal (see [`super::progress`]); with `--json`, no progress bar and one JSON document
//! of every run's figures at the end. Ctrl-c stops at the next page; the next run (or the
//! daemon) continues from there.
//!
//! Exit status: 0 when every run succeeded (or was skipped because the daemon is running it),
//! 1 when one failed, 75 (EX_TEMPFAIL) when one was interrupted (quota spent, ctrl-c) and will
//! resume.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::progress::MirrorBars;
use crate::api;
use crate::cli::json;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::daemon::{Stores, open_stores};
use crate::mirror::{
    ContactsPath, Mirror, MirrorOptions, Mode, Resource, RunOutcome, RunSummary, Trigger,
};

/// Arguments of `ctct-sync mirror`.
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// A full pass (every contact, by bulk export; rows the account no longer has are
    /// removed). Default: incremental (contacts changed since the last pass).
    #[arg(long)]
    pub full: bool,
    /// Mirror one resource only (default: all, in the order custom_fields, lists, tags,
    /// segments, contacts, campaigns, reports).
    #[arg(long, value_parser = crate::command::catalog::MIRROR_RESOURCES)]
    pub resource: Option<String>,
    /// The connected account to mirror.
    #[arg(long, default_value = "default")]
    pub account: String,
    /// Read contacts page by page instead of by bulk export in full passes.
    #[arg(long)]
    pub paging: bool,
    /// Print one JSON document when done instead of a line per resource, and no progress
    /// bar: each run's resource, mode, outcome, pages, rows, API requests and seconds, as
    /// numbers. The exit code is the same.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(settings: &Settings, args: MirrorArgs) -> anyhow::Result<ExitCode> {
    let Stores {
        state: store,
        mirror: db,
        ..
    } = open_stores(settings).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let client = api::client_from_settings(settings, store.clone(), clock.clone())?;
    let options = MirrorOptions {
        contacts_path: if args.paging {
            ContactsPath::Paging
        } else {
            ContactsPath::Export
        },
        reports: crate::mirror::ReportOptions::from_settings(settings),
        ..MirrorOptions::default()
    };
    let cancel = CancellationToken::new();
    let mut mirror = Mirror::new(db, client.clone(), clock, options).with_cancel(cancel.clone());
    // No progress bar under `--json`: the document alone, at the end.
    let bars = if args.json {
        None
    } else {
        MirrorBars::on_stderr()
    };
    if let Some(bars) = &bars {
        mirror = mirror.with_progress(bars.hook());
    }
    let trigger = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            trigger.cancel();
        }
    });
    let resources = match args.resource.as_deref().and_then(Resource::parse) {
        Some(resource) => vec![resource],
        None => Resource::ALL.to_vec(),
    };
    let mode = if args.full {
        Mode::Full
    } else {
        Mode::Incremental
    };
    let mut code = ExitCode::SUCCESS;
    let mut worst = 0;
    let mut runs = Vec::new();
    for resource in resources {
        if cancel.is_cancelled() {
            break;
        }
        let started = Instant::now();
        if let Some(bars) = &bars {
            bars.begin(resource);
        }
        let summary = mirror
            .run_once(&args.account, resource, mode, Trigger::Cli)
            .await;
        if let Some(bars) = &bars {
            bars.end();
        }
        let seconds = started.elapsed().as_secs_f64();
        if args.json {
            runs.push(RunDocument::of(&summary, seconds));
        } else {
            println!("{}", summary_line(&summary, seconds));
        }
        let rank = match summary.outcome {
            RunOutcome::Succeeded | RunOutcome::Skipped => 0,
            RunOutcome::Interrupted => 1,
            RunOutcome::Failed => 2,
        };
        if rank > worst {
            worst = rank;
            code = if rank == 2 {
                ExitCode::FAILURE
            } else {
                ExitCode::from(75)
            };
        }
    }
    // Counts the requests made and gives the rest of the budget's hold back.
    let _ = client.budget().release().await;
    if let Err(error) = store.checkpoint().await {
        tracing::warn!(error = %error, "could not checkpoint the store's write-ahead log");
    }
    if args.json {
        json::print(&MirrorDocument {
            account: &args.account,
            runs,
        })?;
    }
    Ok(code)
}

/// `mirror --json`: one entry per resource run, in the order run.
#[derive(Debug, Serialize)]
struct MirrorDocument<'a> {
    account: &'a str,
    runs: Vec<RunDocument>,
}

/// One resource's run in `mirror --json`: the figures of its summary line, as numbers.
#[derive(Debug, Serialize)]
struct RunDocument {
    resource: &'static str,
    /// `full` or `incremental`: the mode actually run.
    mode: &'static str,
    /// Contacts only: `export` or `paging`; null for the other resources.
    path: Option<&'static str>,
    /// `succeeded`, `failed`, `interrupted` or `skipped`.
    outcome: &'static str,
    pages: u64,
    rows_upserted: u64,
    rows_deleted: u64,
    api_requests: u64,
    /// Wall-clock time of the run, to the millisecond.
    seconds: f64,
    /// Rows upserted per second, rounded; null when no time was measured.
    rows_per_second: Option<u64>,
    /// Interrupted by the daily quota: when it resets (RFC 3339 UTC), else null.
    resets_at: Option<String>,
    /// Why the run failed or stopped, else null.
    error: Option<String>,
}

impl RunDocument {
    fn of(summary: &RunSummary, seconds: f64) -> Self {
        Self {
            resource: summary.resource.as_str(),
            mode: summary.mode.as_str(),
            path: summary.path.map(|p| p.as_str()),
            outcome: summary.outcome.as_str(),
            pages: summary.pages,
            rows_upserted: summary.rows_upserted,
            rows_deleted: summary.rows_deleted,
            api_requests: summary.api_requests,
            seconds: (seconds * 1000.0).round() / 1000.0,
            rows_per_second: (seconds > 0.0)
                .then(|| (summary.rows_upserted as f64 / seconds).round() as u64),
            resets_at: summary.resets_at.map(json::time),
            error: summary.error.clone(),
        }
    }
}

/// `mirror contacts full (export): succeeded — 2 pages, 1,000 rows upserted, 0 deleted,
/// 6 API requests in 0.4 s (2,500 rows/s)`.
pub fn summary_line(summary: &RunSummary, seconds: f64) -> String {
    let path = summary
        .path
        .map(|p| format!(" ({})", p.as_str()))
        .unwrap_or_default();
    let rate = if seconds > 0.0 {
        format!(
            " ({} rows/s)",
            group(summary.rows_upserted as f64 / seconds)
        )
    } else {
        String::new()
    };
    let mut line = format!(
        "mirror {} {}{}: {} — {}, {} upserted, {} deleted, {} in {:.1} s{}",
        summary.resource,
        summary.mode.as_str(),
        path,
        summary.outcome.as_str(),
        count(summary.pages, "page"),
        count(summary.rows_upserted, "row"),
        group(summary.rows_deleted as f64),
        count(summary.api_requests, "API request"),
        seconds,
        rate
    );
    if let Some(resets_at) = summary.resets_at {
        line.push_str(&format!("; resumes after {resets_at}"));
    }
    if let Some(error) = &summary.error {
        line.push_str(&format!("; {error}"));
    }
    line
}

/// `3 pages`, `1 page`, `1,000 rows`.
fn count(n: u64, noun: &str) -> String {
    format!(
        "{} {noun}{}",
        group(n as f64),
        if n == 1 { "" } else { "s" }
    )
}

/// `1234567.8` → `1,234,568`.
fn group(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_numbers_are_grouped_by_thousands() {
        assert_eq!(group(0.0), "0");
        assert_eq!(group(999.0), "999");
        assert_eq!(group(1000.0), "1,000");
        assert_eq!(group(1_234_567.8), "1,234,568");
        assert_eq!(count(1, "page"), "1 page");
        assert_eq!(count(2_000, "row"), "2,000 rows");
    }

    fn summary(resource: Resource, path: Option<ContactsPath>) -> RunSummary {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T02:00:00Z")
            .unwrap()
            .to_utc();
        RunSummary {
            run_id: 7,
            account: "default".into(),
            resource,
            mode: Mode::Full,
            trigger: Trigger::Cli,
            path,
            resumed_from: None,
            started_at: at,
            finished_at: at,
            pages: 2,
            rows_upserted: 1_000,
            rows_deleted: 3,
            api_requests: 6,
            outcome: RunOutcome::Succeeded,
            error: None,
            resets_at: None,
        }
    }

    #[test]
    fn a_run_s_json_has_the_summary_line_s_figures_as_numbers() {
        let contacts = summary(Resource::Contacts, Some(ContactsPath::Export));
        let document = MirrorDocument {
            account: "default",
            runs: vec![RunDocument::of(&contacts, 0.4)],
        };
        assert_eq!(
            serde_json::to_value(&document).unwrap(),
            serde_json::json!({
                "account": "default",
                "runs": [{
                    "resource": "contacts",
                    "mode": "full",
                    "path": "export",
                    "outcome": "succeeded",
                    "pages": 2,
                    "rows_upserted": 1000,
                    "rows_deleted": 3,
                    "api_requests": 6,
                    "seconds": 0.4,
                    "rows_per_second": 2500,
                    "resets_at": null,
                    "error": null
                }]
            })
        );
    }

    #[test]
    fn an_interrupted_run_s_json_says_when_it_resumes_and_why() {
        let mut lists = summary(Resource::Lists, None);
        lists.outcome = RunOutcome::Interrupted;
        lists.error = Some("the daily quota is spent".into());
        lists.resets_at = Some(
            chrono::DateTime::parse_from_rfc3339("2026-12-04T00:00:00Z")
                .unwrap()
                .to_utc(),
        );
        let run = serde_json::to_value(RunDocument::of(&lists, 0.0)).unwrap();
        assert_eq!(run["path"], serde_json::Value::Null);
        assert_eq!(run["outcome"], "interrupted");
        assert_eq!(run["rows_per_second"], serde_json::Value::Null);
        assert_eq!(run["resets_at"], "2026-12-04T00:00:00Z");
        assert_eq!(run["error"], "the daily quota is spent");
    }
}
