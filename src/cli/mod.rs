//! The command line: one subcommand per job, each a thin call into the library.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

pub mod auth;
pub mod dlq;
pub mod doctor;
pub mod mirror;
pub mod send;
pub mod store;

use crate::config::Settings;
use crate::store::Store;
use crate::telemetry;

/// ctct-sync keeps a Constant Contact account in step with your backend: it applies
/// commands queued on RabbitMQ to the Constant Contact V3 API and mirrors the account
/// into SQLite.
#[derive(Debug, Parser)]
#[command(name = "ctct-sync", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file layered over the built-in defaults (see config/default.toml).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "CTCT_SYNC_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the SQLite store if needed and apply pending schema migrations, then exit.
    ///
    /// The daemon also migrates at start; run this before an upgrade to see what changes.
    Migrate,
    /// Print the effective configuration (defaults, file and environment layered) as TOML,
    /// with every secret redacted.
    Config,
    /// Run the daemon: consume commands from RabbitMQ, apply them to Constant Contact,
    /// publish one result per command. Stops cleanly on ctrl-c or SIGTERM.
    Run {
        /// Start a local sandbox of the Constant Contact API in-process and run against it
        /// (no real account needed; its data and tokens live beside the store).
        #[arg(long)]
        sandbox: bool,
    },
    /// Check the configuration, the broker, the store, each account's tokens and scopes and
    /// the API (one request per account), and say what to do about each failure. Exits 1
    /// when a check fails.
    Doctor,
    /// Publish one command and print its result (how to try the daemon by hand).
    Send(send::SendArgs),
    /// Inspect dead-lettered commands, or send them back for another try.
    Dlq(dlq::DlqArgs),
    /// Run a local sandbox of the Constant Contact V3 API. Prints one line of JSON with its
    /// URLs and a ready client and refresh token, then serves until ctrl-c.
    Sandbox(crate::sandbox::cli::SandboxArgs),
    /// Mirror the account into the SQLite store now (the daemon also does it on its schedule):
    /// incremental by default, `--full` for everything.
    Mirror(mirror::MirrorArgs),
    /// Connect Constant Contact accounts (browser, device flow or an existing refresh
    /// token) and show their token state.
    Auth(auth::AuthArgs),
    /// Work on the SQLite store itself: `store backup PATH` copies it safely while the
    /// daemon runs.
    Store(store::StoreArgs),
}

/// Runs the parsed command line. Errors are returned to `main`, which prints them.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Doctor = cli.command {
        // The doctor reports a broken configuration instead of stopping on it.
        telemetry::init(crate::config::LogFormat::Text, "warn,lapin=off");
        return Ok(doctor::run(cli.config.as_deref()).await);
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = Settings::load(cli.config.as_deref(), env)?;
    telemetry::init(settings.log.format, &settings.log.level);
    match cli.command {
        Command::Migrate => migrate(&settings).await,
        Command::Config => {
            print!("{}", settings.to_redacted_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { sandbox } => {
            let daemon = crate::daemon::Daemon::build(settings, sandbox).await?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                crate::daemon::shutdown_signal().await;
                trigger.cancel();
            });
            daemon.run(shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor => unreachable!("handled before the configuration is loaded"),
        Command::Send(args) => send::run(&settings, args).await,
        Command::Dlq(args) => {
            dlq::run(&settings, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sandbox(args) => {
            crate::sandbox::cli::run_cli(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Mirror(args) => mirror::run(&settings, args).await,
        Command::Auth(args) => {
            auth::run(&settings, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Store(args) => store::run(&settings, args).await,
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    let path = settings.store.path.clone();
    let (_conn, report) = tokio::task::spawn_blocking(move || Store::open_and_migrate(&path))
        .await
        .context("the migration task stopped unexpectedly")??;
    let shown = settings.store.path.display();
    if report.is_noop() {
        println!(
            "store {shown} is up to date (schema version {})",
            report.to_version
        );
    } else {
        println!(
            "store {shown} migrated from schema version {} to {} (applied {})",
            report.from_version,
            report.to_version,
            report.applied.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
