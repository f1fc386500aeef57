//! `ctct-sync store …`: the stores on their own.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use crate::config::{SecretUrl, Settings, StoreLocation};
use crate::store::{Role, backup, copy};

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
    /// Copy the state store (accounts and tokens, rate budget, ledger, bulk batches) into a
    /// new store, SQLite or PostgreSQL on either side, in one transaction: the target is
    /// created and migrated, a target already holding rows is refused and nothing is written.
    /// With --mirror-to, the mirror store is copied as well. Stop the daemon first: it keeps
    /// rotating tokens in the source.
    Copy {
        /// The state store to copy (`sqlite://…` or `postgres://…`); the configured one if
        /// omitted.
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// The state store to copy into (`sqlite://…` or `postgres://…`).
        #[arg(long, value_name = "URL")]
        to: String,
        /// The PostgreSQL schema of --to (default: `store.schema`).
        #[arg(long, value_name = "NAME")]
        to_schema: Option<String>,
        /// Also copy the mirror store into URL.
        #[arg(long, value_name = "URL")]
        mirror_to: Option<String>,
        /// The mirror store to copy; the configured one if omitted.
        #[arg(long, value_name = "URL", requires = "mirror_to")]
        mirror_from: Option<String>,
        /// The PostgreSQL schema of --mirror-to (default: `mirror.schema`).
        #[arg(long, value_name = "NAME", requires = "mirror_to")]
        mirror_to_schema: Option<String>,
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
        StoreCommand::Copy {
            from,
            to,
            to_schema,
            mirror_to,
            mirror_from,
            mirror_to_schema,
        } => {
            let state_schema = &settings.store.schema;
            let from = match from {
                Some(url) => StoreLocation::parse("--from", &SecretUrl::new(&url), state_schema)?,
                None => settings.state_store()?,
            };
            let to_schema = to_schema.as_deref().unwrap_or(state_schema);
            let to = StoreLocation::parse("--to", &SecretUrl::new(&to), to_schema)?;
            // Both targets are checked before anything is copied.
            let mirror = match mirror_to {
                Some(mirror_to) => {
                    let schema = &settings.mirror.schema;
                    let from = match mirror_from {
                        Some(url) => {
                            StoreLocation::parse("--mirror-from", &SecretUrl::new(&url), schema)?
                        }
                        None => settings.mirror_store()?,
                    };
                    let to_schema = mirror_to_schema.as_deref().unwrap_or(schema);
                    let to = StoreLocation::parse(
                        "--mirror-to",
                        &SecretUrl::new(&mirror_to),
                        to_schema,
                    )?;
                    Some((from, to))
                }
                None => None,
            };
            copy_one("store", Role::State, copy::STATE_TABLES, &from, &to).await?;
            if let Some((from, to)) = mirror {
                copy_one("mirror", Role::Mirror, copy::MIRROR_COPY_TABLES, &from, &to).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Copies the `role` store at `from` into `to` and says how many rows each table received.
async fn copy_one(
    what: &str,
    role: Role,
    tables: &[&'static str],
    from: &StoreLocation,
    to: &StoreLocation,
) -> anyhow::Result<()> {
    let summary = copy::copy(role, tables, from, to)
        .await
        .with_context(|| format!("copying {what} {} to {}", from.describe(), to.describe()))?;
    println!(
        "{what} {} copied to {} ({})",
        from.describe(),
        to.describe(),
        summary.describe()
    );
    Ok(())
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
