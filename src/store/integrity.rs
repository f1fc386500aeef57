//! The start-up check: `PRAGMA quick_check` of the tables ctct-sync keeps for itself (the
//! command ledger, tokens, the request budget, bulk batches, the migration history). They are
//! small (the ledger is pruned after `store.ledger_retention_days`), so the check costs
//! milliseconds; a damaged one refuses the start instead of letting the daemon take commands
//! it cannot record.
//!
//! The mirror's tables are not checked at start: they may hold millions of rows, a full read
//! of them would delay every start, and they hold nothing that is not on Constant Contact — a
//! damaged page there fails the mirror run that reads it (`mirror.failed`), and `ctct-sync
//! mirror --full` on a restored or fresh store rebuilds them.

use rusqlite::{Connection, TransactionBehavior};

use super::Store;
use super::error::StoreError;

/// The tables checked at start.
pub const OWN_TABLES: &[&str] = &[
    "schema_migrations",
    "accounts",
    "rate_budget",
    "command_ledger",
    "bulk_batches",
    "bulk_items",
];

/// Runs `PRAGMA quick_check` on each of [`OWN_TABLES`] (and their indexes); the first table
/// with a problem is named in the error, with at most a few of SQLite's findings.
pub fn check_own_tables(conn: &mut Connection) -> Result<(), StoreError> {
    for table in OWN_TABLES {
        let problems = quick_check(conn, table);
        if !problems.is_empty() {
            return Err(StoreError::Damaged {
                table,
                problems: problems.join("; "),
            });
        }
    }
    Ok(())
}

/// The probe of a store that failed while the daemon ran: a small write transaction against
/// the command ledger (a row of 16 KiB inserted and deleted, so the commit has to write pages:
/// a full disk or an I/O error fails it) and reads of every page of the token and budget tables
/// (small; a damaged page fails them).
fn probe(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO command_ledger (account, command_id, type, status, received_at, result)
         VALUES ('', 'ctct-sync store probe', 'probe', 'in_progress', '', printf('%.*c', 16384, 'x'))",
        [],
    )?;
    tx.execute(
        "DELETE FROM command_ledger WHERE account = '' AND command_id = 'ctct-sync store probe'",
        [],
    )?;
    for table in ["accounts", "rate_budget"] {
        tx.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get::<_, i64>(0)
        })?;
    }
    tx.commit()?;
    Ok(())
}

impl Store {
    /// [`check_own_tables`] on the store thread: the start-up check.
    pub async fn integrity_check_own_tables(&self) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.integrity_check_own_tables().await;
        }
        self.call(check_own_tables).await
    }

    /// The check of a store that failed while the daemon ran (see `probe` above).
    pub async fn integrity_probe(&self) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.integrity_probe().await;
        }
        self.call(probe).await
    }
}

/// SQLite's findings for one table: empty when it is sound. A page too damaged to read fails
/// the pragma itself; that error is the finding.
fn quick_check(conn: &Connection, table: &str) -> Vec<String> {
    let found = conn
        .prepare(&format!("PRAGMA quick_check('{table}')"))
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .take(5)
                .collect::<Result<Vec<_>, _>>()
        });
    match found {
        Ok(rows) => rows.into_iter().filter(|row| row != "ok").collect(),
        Err(error) => vec![error.to_string()],
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;
    use crate::store::Store;

    /// A migrated store at `path` with the root page of `table` overwritten with garbage.
    pub(crate) fn damaged_store(path: &std::path::Path, table: &str) {
        let (conn, _) = Store::open_and_migrate(path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        drop(conn);
        let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.seek(SeekFrom::Start(((root - 1) * page) as u64))
            .unwrap();
        file.write_all(&vec![0xAB; page as usize]).unwrap();
    }

    #[test]
    fn a_sound_store_passes_and_a_damaged_table_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let sound = dir.path().join("sound.db");
        let (mut conn, _) = Store::open_and_migrate(&sound).unwrap();
        check_own_tables(&mut conn).unwrap();
        for table in ["command_ledger", "accounts", "bulk_items"] {
            let path = dir.path().join(format!("{table}.db"));
            damaged_store(&path, table);
            let (mut conn, _) = Store::open_and_migrate(&path).unwrap();
            match check_own_tables(&mut conn) {
                Err(StoreError::Damaged { table: named, .. }) => assert_eq!(named, table),
                other => panic!("{table}: {other:?}"),
            }
        }
    }
}
