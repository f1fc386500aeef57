//! `ctct-sync store …`: the SQLite store on its own.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::config::Settings;
use crate::store::backup;

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy the store to PATH with SQLite's online backup: consistent and safe while the
    /// daemon runs. The copy is checked (`PRAGMA integrity_check`) and created with mode
    /// 0600, since it holds refresh tokens. An existing PATH is kept unless --force.
    Backup {
        /// Where to write the copy.
        path: PathBuf,
        /// Replace PATH if it exists.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(settings: &Settings, args: StoreArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StoreCommand::Backup { path, force } => {
            let source = settings.store.path.clone();
            let dest = path.clone();
            let summary =
                tokio::task::spawn_blocking(move || backup::backup(&source, &dest, force))
                    .await
                    .context("the backup task stopped unexpectedly")?
                    .with_context(|| {
                        format!(
                            "backing up {} to {}",
                            settings.store.path.display(),
                            path.display()
                        )
                    })?;
            println!(
                "store {} backed up to {} ({} bytes, {} accounts, {} ledger rows, integrity ok)",
                settings.store.path.display(),
                path.display(),
                summary.bytes,
                summary.accounts,
                summary.ledger_rows
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
