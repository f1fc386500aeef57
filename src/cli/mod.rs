//! The command line: one subcommand per job, each a thin call into the library.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};

pub mod auth;
pub mod dlq;
pub mod doctor;
pub mod health;
pub mod json;
pub mod manual;
pub mod mirror;
pub mod progress;
pub mod send;
pub mod store;

use crate::config::Settings;
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

    /// Use the store of `run --sandbox` (`<stem>-sandbox.db` beside the configured store):
    /// with `run`, start a local sandbox of the Constant Contact API in-process and run
    /// against it; with `dlq`, `migrate`, `config`, `auth status` and `auth logout
    /// --local-only`, work on the store that daemon uses. Refused by commands that call the
    /// API (the sandbox lives inside `run`).
    #[arg(long, global = true)]
    pub sandbox: bool,

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
    #[command(after_help = "Examples:
  ctct-sync config
  ctct-sync --config /etc/ctct-sync/production.toml config --json")]
    Config {
        /// Print the same settings as one JSON object instead: a nested object per section,
        /// the TOML's keys and values with the same secrets redacted (an unset `store.url` or
        /// `mirror.url` is null).
        #[arg(long)]
        json: bool,
    },
    /// Run the daemon: consume commands from RabbitMQ, apply them to Constant Contact,
    /// publish one result per command. Stops cleanly on ctrl-c or SIGTERM. With `--sandbox`,
    /// a local sandbox of the Constant Contact API runs in-process and the daemon runs
    /// against it (no real account needed; its store and data live beside the configured
    /// store).
    #[command(after_help = "Examples:
  ctct-sync run --sandbox
  ctct-sync --config /etc/ctct-sync/production.toml run")]
    Run,
    /// Check the configuration, the broker, the store, each account's tokens and scopes and
    /// the API (one request per account), and say what to do about each failure. Exits 1
    /// when a check fails.
    #[command(after_help = "Examples:
  ctct-sync doctor
  ctct-sync doctor --json
  ctct-sync --config /etc/ctct-sync/production.toml doctor")]
    Doctor(doctor::DoctorArgs),
    /// Ask a running daemon's ops listener whether it is alive: GET http://<ops.listen>/healthz
    /// (or `--url`), exit 0 on a 200 answer and 1 otherwise, with one line saying which. For
    /// container health checks (the image has no curl).
    Health(health::HealthArgs),
    /// Publish one command and print its result (how to try the daemon by hand).
    #[command(after_help = send::HELP_AFTER)]
    Send(send::SendArgs),
    /// Inspect dead-lettered commands, or send them back for another try.
    #[command(after_help = "Examples:
  ctct-sync dlq list --limit 20
  ctct-sync dlq list --json
  ctct-sync dlq replay --id 7f9c0e4e-0d7a-4c1e-9d53-2f0f3c1a9b10
  ctct-sync dlq replay --all")]
    Dlq(dlq::DlqArgs),
    /// Run a local sandbox of the Constant Contact V3 API. Prints one line of JSON with its
    /// URLs and a ready client and refresh token, then serves until ctrl-c.
    #[cfg(feature = "sandbox")]
    Sandbox(ctct_sandbox::cli::SandboxArgs),
    /// Run a local sandbox of the Constant Contact V3 API (not in this build: the cargo
    /// feature `sandbox` is off; the `ctct-sandbox` program is the same emulator).
    #[cfg(not(feature = "sandbox"))]
    #[command(disable_help_flag = true)]
    Sandbox {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// Mirror the account into the SQLite store now (the daemon also does it on its schedule):
    /// incremental by default, `--full` for everything.
    #[command(after_help = "Examples:
  ctct-sync mirror
  ctct-sync mirror --full --resource contacts
  ctct-sync mirror --account eu --resource reports
  ctct-sync mirror --resource lists --json")]
    Mirror(mirror::MirrorArgs),
    /// Connect Constant Contact accounts (browser, device flow or an existing refresh
    /// token), show their token state, and log them out.
    #[command(after_help = "Examples:
  ctct-sync auth login
  ctct-sync auth device --account eu
  ctct-sync auth import --account eu < refresh-token.txt
  ctct-sync auth logout --account eu
  ctct-sync auth status
  ctct-sync auth status --json")]
    Auth(auth::AuthArgs),
    /// Work on the stores themselves: `store backup PATH` copies a SQLite store safely while
    /// the daemon runs; `store copy --to URL` moves the stores between SQLite and PostgreSQL.
    #[command(after_help = "Examples:
  ctct-sync store backup /var/backups/ctct-sync.db --mirror /var/backups/ctct-mirror.db
  ctct-sync store copy --to postgres://ctct@db.internal/ctct_sync")]
    Store(store::StoreArgs),
    /// Print a shell completion script (bash, elvish, fish, powershell, zsh) for this
    /// ctct-sync's commands.
    #[command(after_help = "Examples:
  ctct-sync completions bash > /etc/bash_completion.d/ctct-sync
  ctct-sync completions zsh > \"${fpath[1]}/_ctct-sync\"
  ctct-sync completions fish > ~/.config/fish/completions/ctct-sync.fish")]
    Completions(manual::CompletionsArgs),
    /// Print the manual page (roff) of this ctct-sync, or write one page per command into a
    /// directory.
    #[command(after_help = "Examples:
  ctct-sync man | man -l -
  ctct-sync man --dir /usr/local/share/man/man1 && man ctct-sync-auth-login")]
    Man(manual::ManArgs),
}

/// Makes a closed stdout or stderr end the process quietly, as for any command-line tool
/// whose reader went away (`ctct-sync auth status | head -1`): `println!` panics on a broken
/// pipe (Rust ignores SIGPIPE), and that panic would print a message and a backtrace. Every
/// other panic is reported as before.
pub fn exit_quietly_on_broken_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_broken_pipe_panic(message) {
            std::process::exit(0);
        }
        report(info);
    }));
}

/// True for the message of `print!`/`println!`/`eprintln!` failing on a closed pipe.
fn is_broken_pipe_panic(message: &str) -> bool {
    (message.starts_with("failed printing to stdout")
        || message.starts_with("failed printing to stderr"))
        && message.to_ascii_lowercase().contains("broken pipe")
}

/// Runs the parsed command line. Errors are returned to `main`, which prints them.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.sandbox
        && let Some(name) = calls_the_api(&cli.command)
    {
        anyhow::bail!(
            "--sandbox: `{name}` calls the Constant Contact API, and the sandbox's API runs only \
             inside `ctct-sync run --sandbox`; --sandbox works with run, send, dlq, migrate, \
             config, auth status and auth logout --local-only"
        );
    }
    if let Command::Doctor(args) = cli.command {
        // The doctor reports a broken configuration instead of stopping on it.
        telemetry::init(crate::config::LogFormat::Text, "warn,lapin=off");
        return Ok(doctor::run(cli.config.as_deref(), args).await);
    }
    // Generated from the command line itself: no configuration needed.
    if let Command::Completions(args) = &cli.command {
        return Ok(manual::completions(args, Cli::command()));
    }
    if let Command::Man(args) = &cli.command {
        return manual::man(args, Cli::command());
    }
    if let Command::Health(args) = cli.command {
        // One line and an exit code; a configuration that does not load is an answer too.
        return Ok(health::run(cli.config.as_deref(), args).await);
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut settings = Settings::load(cli.config.as_deref(), env)?;
    telemetry::init(settings.log.format, &settings.log.level);
    if cli.sandbox && !matches!(cli.command, Command::Run) {
        // The same store `run --sandbox` uses, so that `dlq replay` forgets the ledger entry
        // that daemon would otherwise answer from.
        crate::daemon::use_sandbox_stores(&mut settings)?;
    }
    match cli.command {
        Command::Migrate => migrate(&settings).await,
        Command::Config { json: false } => {
            print!("{}", settings.to_redacted_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { json: true } => {
            json::print(&settings.to_redacted_json()?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let shutdown = tokio_util::sync::CancellationToken::new();
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                crate::daemon::shutdown_signal().await;
                trigger.cancel();
            });
            let built = crate::daemon::Daemon::builder(settings)
                .sandbox(cli.sandbox)
                .shutdown(shutdown.clone())
                .build()
                .await;
            let daemon = match built {
                Ok(daemon) => daemon,
                // Stopped while waiting for an unreachable database: a clean stop.
                Err(error) if crate::daemon::Daemon::stopped_while_starting(&error) => {
                    tracing::info!("{error}");
                    return Ok(ExitCode::SUCCESS);
                }
                Err(error) => return Err(error),
            };
            daemon.run(shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor(_) | Command::Health(_) | Command::Completions(_) | Command::Man(_) => {
            unreachable!("handled before the configuration is loaded")
        }
        Command::Send(args) => send::run(&settings, args).await,
        Command::Dlq(args) => dlq::run(&settings, args).await,
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => {
            ctct_sandbox::cli::run_cli(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(not(feature = "sandbox"))]
        Command::Sandbox { .. } => anyhow::bail!(
            "`sandbox`: this ctct-sync was built without the sandbox (cargo feature `sandbox` is off); \
             run the `ctct-sandbox` program instead, or build ctct-sync with default features"
        ),
        Command::Mirror(args) => mirror::run(&settings, args).await,
        Command::Auth(args) => {
            auth::run(&settings, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Store(args) => store::run(&settings, args).await,
    }
}

/// The name of a command that sends requests to the Constant Contact API (or runs its own
/// sandbox), which `--sandbox` cannot point at the sandbox inside `run --sandbox`.
fn calls_the_api(command: &Command) -> Option<&'static str> {
    match command {
        Command::Doctor(_) => Some("doctor"),
        Command::Mirror(_) => Some("mirror"),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(_) => Some("sandbox"),
        #[cfg(not(feature = "sandbox"))]
        Command::Sandbox { .. } => Some("sandbox"),
        Command::Auth(args) => match args.command {
            auth::AuthCommand::Status { .. } => None,
            auth::AuthCommand::Login { .. } => Some("auth login"),
            auth::AuthCommand::Device { .. } => Some("auth device"),
            auth::AuthCommand::Import { .. } => Some("auth import"),
            auth::AuthCommand::Logout {
                local_only: false, ..
            } => Some("auth logout"),
            auth::AuthCommand::Logout {
                local_only: true, ..
            } => None,
        },
        Command::Migrate
        | Command::Completions(_)
        | Command::Man(_)
        | Command::Health(_)
        | Command::Config { .. }
        | Command::Run
        | Command::Send(_)
        | Command::Dlq(_)
        | Command::Store(_) => None,
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    let stores = crate::daemon::open_stores(settings).await?;
    // The files alone hold the migrations when this command exits.
    stores
        .checkpoint()
        .await
        .context("could not copy the stores' write-ahead logs into their files")?;
    for (what, shown, report) in &stores.migrated {
        if report.is_noop() {
            println!(
                "{what} {shown} is up to date (schema version {})",
                report.to_version
            );
        } else {
            println!(
                "{what} {shown} migrated from schema version {} to {} (applied {})",
                report.from_version,
                report.to_version,
                report.applied.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_print_to_a_closed_pipe_counts_as_a_broken_pipe() {
        assert!(is_broken_pipe_panic(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(is_broken_pipe_panic(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
        assert!(!is_broken_pipe_panic(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_broken_pipe_panic("broken pipe in the store thread"));
    }

    #[test]
    fn sandbox_is_accepted_before_or_after_the_subcommand() {
        let after = Cli::try_parse_from(["ctct-sync", "run", "--sandbox"]).unwrap();
        assert!(after.sandbox && matches!(after.command, Command::Run));
        let before = Cli::try_parse_from(["ctct-sync", "--sandbox", "dlq", "list"]).unwrap();
        assert!(before.sandbox);
        let replay =
            Cli::try_parse_from(["ctct-sync", "dlq", "replay", "--all", "--sandbox"]).unwrap();
        assert!(replay.sandbox && calls_the_api(&replay.command).is_none());
        let mirror = Cli::try_parse_from(["ctct-sync", "mirror", "--sandbox"]).unwrap();
        assert_eq!(calls_the_api(&mirror.command), Some("mirror"));
    }

    #[test]
    fn logout_calls_the_authorization_server_unless_it_is_local_only() {
        let revoking = Cli::try_parse_from(["ctct-sync", "auth", "logout", "--account", "eu"])
            .expect("parses");
        assert_eq!(calls_the_api(&revoking.command), Some("auth logout"));
        let local =
            Cli::try_parse_from(["ctct-sync", "auth", "logout", "--local-only"]).expect("parses");
        assert_eq!(calls_the_api(&local.command), None);
        let Command::Auth(args) = local.command else {
            panic!("an auth command");
        };
        assert!(matches!(
            args.command,
            auth::AuthCommand::Logout { account, local_only: true } if account == "default"
        ));
    }

    /// Without the cargo feature `sandbox`, `ctct-sync sandbox` still parses (any flags) and
    /// says the feature is off instead of failing as an unknown subcommand.
    #[cfg(not(feature = "sandbox"))]
    #[tokio::test]
    async fn without_the_sandbox_feature_the_sandbox_subcommand_says_it_is_off() {
        let cli = Cli::try_parse_from(["ctct-sync", "sandbox", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(matches!(cli.command, Command::Sandbox { .. }));
        let error = run(cli).await.expect_err("refused");
        assert!(
            error.to_string().contains("cargo feature `sandbox` is off"),
            "{error:#}"
        );
    }
}
