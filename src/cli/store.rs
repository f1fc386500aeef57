//! `ctct-sync store …`: the stores on their own.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use crate::config::{Settings, StoreLocation};
use crate::store::backup;

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy the SQLite state store to PATH with SQLite's online backup: consistent and safe
    /// while the daemon runs. The copy is checked (`PRAGMA integrity_check`) and created with
    /// mode 0600, since it holds refresh tokens. An existing PATH is kept unless --force.
    /// A store on PostgreSQL is backed up with `pg_dump` (docs/storage.md).
    Backup {
        /// Where to write the copy of the state store.
        path: PathBuf,
        /// Also copy the SQLite mirror store to MIRROR_PATH the same way.
        #[arg(long, value_name = "MIRROR_PATH")]
        mirror: Option<PathBuf>,
        /// Replace PATH (and MIRROR_PATH) if it exists.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(settings: &Settings, args: StoreArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StoreCommand::Backup {
            path,
            mirror,
            force,
        } => {
            let state = settings.state_store()?;
            backup_one("store", &state, path, force).await?;
            if let Some(mirror_path) = mirror {
                let location = settings.mirror_store()?;
                backup_one("mirror", &location, mirror_path, force).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Backs up the SQLite store at `location` to `dest` and says what the copy holds.
async fn backup_one(
    what: &str,
    location: &StoreLocation,
    dest: PathBuf,
    force: bool,
) -> anyhow::Result<()> {
    let Some(source) = location.sqlite_path().map(PathBuf::from) else {
        bail!(
            "{what} {} is on PostgreSQL: back it up with pg_dump (docs/storage.md, \"Backups\")",
            location.describe()
        );
    };
    let (from, to) = (source.clone(), dest.clone());
    let summary = tokio::task::spawn_blocking(move || backup::backup(&from, &to, force))
        .await
        .context("the backup task stopped unexpectedly")?
        .with_context(|| format!("backing up {} to {}", source.display(), dest.display()))?;
    let holds = if what == "mirror" {
        format!("{} contacts", summary.contacts)
    } else {
        format!(
            "{} accounts, {} ledger rows",
            summary.accounts, summary.ledger_rows
        )
    };
    println!(
        "{what} {} backed up to {} ({} bytes, {holds}, integrity ok)",
        source.display(),
        dest.display(),
        summary.bytes,
    );
    Ok(())
}
