//! The `ctct-sync` binary: parses the command line and hands over to the library.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    ctct_sync::cli::exit_quietly_on_broken_pipe();
    let cli = ctct_sync::cli::Cli::parse();
    match ctct_sync::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            // The whole cause chain on one line; secrets never enter error values.
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
