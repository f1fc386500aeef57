//! Schema migrations: numbered SQL files from `migrations/<engine>/<store>/`, embedded at
//! build time (see build.rs and migrations/README.md). On SQLite they are applied in one
//! exclusive transaction and tracked by `PRAGMA user_version`; the state store and the mirror
//! store each have their own history.
//!
//! Migrations are append-only. Each applied migration is recorded with a SHA-256 of its SQL
//! in `schema_migrations`; a released migration that was edited afterwards is refused rather
//! than silently skipped, and a database newer than the binary is refused too.

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use sha2::{Digest, Sha256};

use super::error::StoreError;

/// One numbered migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// What a migration pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub from_version: u32,
    pub to_version: u32,
    /// `NNNN_name` of each migration applied by this pass, in order.
    pub applied: Vec<String>,
}

impl MigrationReport {
    pub fn is_noop(&self) -> bool {
        self.applied.is_empty()
    }
}

/// The schema version of the SQLite state store this binary brings.
pub fn latest_version() -> u32 {
    SQLITE_STATE.last().map_or(0, |m| m.version)
}

/// The schema version of the SQLite mirror store this binary brings.
pub fn latest_mirror_version() -> u32 {
    SQLITE_MIRROR.last().map_or(0, |m| m.version)
}

/// The schema version of a PostgreSQL state store this binary brings.
pub fn latest_postgres_version() -> u32 {
    POSTGRES_STATE.last().map_or(0, |m| m.version)
}

/// The schema version of a PostgreSQL mirror store this binary brings.
pub fn latest_postgres_mirror_version() -> u32 {
    POSTGRES_MIRROR.last().map_or(0, |m| m.version)
}

/// The schema version of the store file at `path`, read without changing it (`doctor`).
pub fn file_version(path: &std::path::Path) -> Result<u32, rusqlite::Error> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|conn| conn.pragma_query_value(None, "user_version", |r| r.get::<_, u32>(0)))
}

/// Brings a SQLite state store up to the embedded schema.
pub fn migrate(conn: &mut Connection) -> Result<MigrationReport, StoreError> {
    apply(conn, SQLITE_STATE)
}

/// Brings a SQLite mirror store up to the embedded schema.
pub fn migrate_mirror(conn: &mut Connection) -> Result<MigrationReport, StoreError> {
    apply(conn, SQLITE_MIRROR)
}

/// Applies `migrations` (numbered 1..=n, in order) that the database does not have yet,
/// all in one exclusive transaction: either every pending migration lands or none does.
pub fn apply(
    conn: &mut Connection,
    migrations: &[Migration],
) -> Result<MigrationReport, StoreError> {
    let latest = migrations.last().map_or(0, |m| m.version);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let current: u32 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if current > latest {
        return Err(StoreError::SchemaTooNew {
            found: current,
            latest,
        });
    }
    if current == 0 {
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 sha256     TEXT NOT NULL,
                 applied_at TEXT NOT NULL
             ) STRICT;",
        )?;
    }
    verify_applied(&tx, migrations, current)?;

    let mut applied = Vec::new();
    for migration in migrations.iter().filter(|m| m.version > current) {
        tx.execute_batch(migration.sql)
            .map_err(|source| StoreError::Migration {
                version: migration.version,
                name: migration.name,
                source: Box::new(source),
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, sha256, applied_at)
             VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            rusqlite::params![migration.version, migration.name, checksum(migration.sql)],
        )?;
        applied.push(format!("{:04}_{}", migration.version, migration.name));
    }
    if !applied.is_empty() {
        tx.pragma_update(None, "user_version", latest)?;
    }
    tx.commit()?;
    Ok(MigrationReport {
        from_version: current,
        to_version: if applied.is_empty() { current } else { latest },
        applied,
    })
}

/// Refuses a database whose recorded migrations differ from the embedded ones.
fn verify_applied(
    conn: &Connection,
    migrations: &[Migration],
    current: u32,
) -> Result<(), StoreError> {
    let mut stmt =
        conn.prepare("SELECT version, sha256 FROM schema_migrations ORDER BY version")?;
    let recorded = stmt
        .query_map([], |row| {
            Ok((row.get::<_, u32>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if recorded.len() != current as usize {
        return Err(StoreError::MigrationHistory {
            user_version: current,
            recorded: recorded.len(),
        });
    }
    for (version, sha) in recorded {
        let embedded = migrations.iter().find(|m| m.version == version).ok_or(
            StoreError::MigrationHistory {
                user_version: current,
                recorded: version as usize,
            },
        )?;
        if checksum(embedded.sql) != sha {
            return Err(StoreError::MigrationChanged {
                version,
                name: embedded.name,
            });
        }
    }
    Ok(())
}

/// The SHA-256 (hex) recorded for an applied migration.
pub(crate) fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_are_numbered_from_one_without_gaps() {
        for (index, m) in SQLITE_STATE.iter().enumerate() {
            assert_eq!(m.version as usize, index + 1, "{}", m.name);
        }
        assert!(latest_version() >= 2);
        for (index, m) in SQLITE_MIRROR.iter().enumerate() {
            assert_eq!(m.version as usize, index + 1, "{}", m.name);
        }
    }

    #[test]
    fn migrating_an_in_memory_database_twice_applies_once() {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        let first = migrate(&mut conn).expect("first pass");
        assert_eq!(first.from_version, 0);
        assert_eq!(first.to_version, latest_version());
        assert_eq!(first.applied.len(), SQLITE_STATE.len());
        let second = migrate(&mut conn).expect("second pass");
        assert!(second.is_noop());
        assert_eq!(second.to_version, latest_version());
    }
}
