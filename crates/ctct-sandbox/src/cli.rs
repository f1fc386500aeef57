//! `ctct-sync sandbox`: the command-line face of the sandbox. Prints ONE line of JSON with
//! the credentials to stdout (the only place secrets ever appear), logs to stderr through
//! tracing, runs until ctrl-c or SIGTERM, then shuts down gracefully (saving `--state`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

use super::{LimitsMode, SandboxOptions, start};

/// Arguments of `ctct-sync sandbox`.
#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on; non-loopback addresses need --public.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Contacts to seed into the first account (ignored when --state exists; 0 = empty).
    #[arg(long, default_value_t = 1_000)]
    pub seed_contacts: usize,
    /// Seed of the generated data and of the client id/secret.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `real` enforces 4 requests/s and 10,000/day per client id; `off` lifts all limits.
    #[arg(long, value_enum, default_value_t = LimitsArg::Real)]
    pub limits: LimitsArg,
    /// Requests per second per client id with --limits real.
    #[arg(long, default_value_t = 4)]
    pub per_second: u32,
    /// Requests per UTC day per client id with --limits real.
    #[arg(long, default_value_t = 10_000)]
    pub per_day: u32,
    /// State file: loaded at start if present, written on shutdown.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Allow listening on a non-loopback address.
    #[arg(long)]
    pub public: bool,
}

/// `--limits` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LimitsArg {
    Real,
    Off,
}

impl From<&SandboxArgs> for SandboxOptions {
    fn from(args: &SandboxArgs) -> Self {
        SandboxOptions {
            listen: args.listen,
            public: args.public,
            seed_contacts: args.seed_contacts,
            seed: args.seed,
            limits: match args.limits {
                LimitsArg::Real => LimitsMode::Real,
                LimitsArg::Off => LimitsMode::Off,
            },
            per_second: args.per_second,
            per_day: args.per_day,
            state_file: args.state.clone(),
            ..SandboxOptions::default()
        }
    }
}

async fn terminate_signal() {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::warn!(error = %error, "sigterm_handler_unavailable");
                std::future::pending::<()>().await;
            }
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
}

/// Runs the sandbox until ctrl-c or SIGTERM.
pub async fn run_cli(args: SandboxArgs) -> anyhow::Result<()> {
    let sandbox = start(SandboxOptions::from(&args))
        .await
        .context("starting the sandbox")?;
    let line = serde_json::to_string(sandbox.credentials()).context("encoding the credentials")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}").context("writing the credentials line")?;
        stdout.flush().context("flushing stdout")?;
    }
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            result.context("listening for ctrl-c")?;
        }
        () = terminate_signal() => {}
    }
    tracing::info!("sandbox_shutdown_requested");
    sandbox.shutdown().await;
    Ok(())
}
