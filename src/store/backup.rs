//! `ctct-sync store backup PATH [--mirror PATH]`: a consistent copy of a SQLite store (the
//! state's, or the mirror's) through SQLite's online
//! backup API, safe while a daemon is writing (WAL: the copy reads one snapshot and never
//! blocks the daemon's writes).
//!
//! The copy is written to `PATH.partial` (created with mode 0600: it holds refresh tokens),
//! checked with `PRAGMA integrity_check`, made durable and only then renamed onto `PATH`, so
//! `PATH` is never a half-written file. An existing `PATH` is kept unless `overwrite`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::StepResult;
use rusqlite::{Connection, OpenFlags};

/// What the copy holds: accounts and ledger rows of a state store, contacts of a mirror (0
/// for the tables a store does not have).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub accounts: i64,
    pub ledger_rows: i64,
    pub contacts: i64,
    pub bytes: u64,
}

/// Why a backup was not written.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("store {0} does not exist")]
    NoStore(PathBuf),
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    #[error("the backup must not be the store itself ({0})")]
    SameFile(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the copy failed its integrity check: {0}")]
    Integrity(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Copies the store at `source` to `dest` (see the module's documentation).
pub fn backup(source: &Path, dest: &Path, overwrite: bool) -> Result<BackupSummary, BackupError> {
    if !source.is_file() {
        return Err(BackupError::NoStore(source.to_owned()));
    }
    if dest.exists() {
        let same = match (source.canonicalize(), dest.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
            return Err(BackupError::SameFile(dest.to_owned()));
        }
        if !overwrite {
            return Err(BackupError::Exists(dest.to_owned()));
        }
    }
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // A leftover of an interrupted backup, with any journal of its own.
    for stale in [
        partial.clone(),
        with_suffix(&partial, "-wal"),
        with_suffix(&partial, "-shm"),
        with_suffix(&partial, "-journal"),
    ] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&stale)(e)),
        }
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(io(&partial))?;
    let copied = copy_into(source, &partial);
    let summary = match copied {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(io(&partial))?;
    std::fs::rename(&partial, dest).map_err(io(dest))?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename reaches the disk with its directory.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(summary)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn copy_into(source: &Path, partial: &Path) -> Result<BackupSummary, BackupError> {
    // Read-write without create: a read-only connection cannot always open a WAL database,
    // and nothing is written through this one.
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(Duration::from_secs(5))?;
    let mut dst = Connection::open(partial)?;
    {
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        // All pages in one step (-1): one consistent snapshot, never restarted by the
        // daemon's writes. A step that meets a lock is retried for a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => {}
                _ if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    return Err(BackupError::Sqlite(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the store stayed locked for 60 s".into()),
                    )));
                }
            }
        }
    }
    drop(src);
    // A plain rollback-journal file: complete on its own, readable from anywhere.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    let check: Vec<String> = dst
        .prepare("PRAGMA integrity_check")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if check != ["ok"] {
        return Err(BackupError::Integrity(check.join("; ")));
    }
    let count = |table: &str| -> Result<i64, rusqlite::Error> {
        let exists: bool = dst.query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |row| row.get(0),
        )?;
        if !exists {
            return Ok(0);
        }
        dst.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
    };
    let summary = BackupSummary {
        accounts: count("accounts")?,
        ledger_rows: count("command_ledger")?,
        contacts: count("contacts")?,
        bytes: 0,
    };
    drop(dst);
    let bytes = std::fs::metadata(partial).map_err(io(partial))?.len();
    Ok(BackupSummary { bytes, ..summary })
}
