//! `ctct-sandbox`: the emulator as a program of its own. Prints one line of JSON with the
//! credentials to stdout, logs to stderr (`RUST_LOG` honoured, `info` by default), and runs
//! until ctrl-c or SIGTERM. The same as `ctct-sync sandbox`.

use clap::Parser;
use ctct_sandbox::cli::{SandboxArgs, run_cli};

/// A local emulator of the Constant Contact V3 API.
#[derive(Debug, Parser)]
#[command(name = "ctct-sandbox", version, about)]
struct Cli {
    #[command(flatten)]
    args: SandboxArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run_cli(cli.args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ctct-sandbox: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
