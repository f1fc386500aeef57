//! The move of the mirror out of the state store.
//!
//! Releases before the split kept the mirror's tables in the state file (state migrations
//! 0002 and 0003 created them); state migration 0007 drops them. Before it runs, their rows are
//! copied into the SQLite mirror file when there is one, so analysts keep their data and the
//! next mirror pass stays incremental. With the mirror elsewhere (PostgreSQL), they are dropped
//! and the mirror's next full pass rebuilds them from Constant Contact, which holds every row.
//!
//! The copy is one transaction in the mirror file that first empties the tables it fills, and
//! 0007 is applied only after it committed: a process killed in between copies again on its
//! next start, never twice over.

use std::path::Path;

use rusqlite::Connection;

use super::error::StoreError;
use super::migrate::{self, MigrationReport, SQLITE_STATE};

/// The last state migration with the mirror's tables still in the state file.
const LAST_WITH_MIRROR: u32 = 6;

/// The mirror store's tables, parents first: the order the upgrade of a file from before the
/// split and `store copy --mirror-to` (`super::copy`) copy their rows in, and the reverse the
/// order they are emptied in.
pub const MIRROR_TABLES: &[&str] = &[
    "mirror_runs",
    "contacts",
    "contact_custom_field_values",
    "contact_list_memberships",
    "custom_fields",
    "contact_lists",
    "campaigns",
    "campaign_activities",
    "mirror_cursors",
];

/// Brings a SQLite state file up to the embedded schema; a file from before the split has its
/// mirror rows copied into `mirror_file` first (when given).
pub fn migrate_state(
    conn: &mut Connection,
    mirror_file: Option<&Path>,
) -> Result<MigrationReport, StoreError> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if current == 0 || current > LAST_WITH_MIRROR {
        // A new file never held mirror rows; a newer one has moved them already (or is
        // refused as too new by the migration pass).
        return migrate::migrate(conn);
    }
    let first = migrate::apply(conn, &SQLITE_STATE[..LAST_WITH_MIRROR as usize])?;
    let contacts: i64 = conn.query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?;
    let runs: i64 = conn.query_row("SELECT count(*) FROM mirror_runs", [], |r| r.get(0))?;
    match mirror_file {
        Some(target) => {
            let copied = copy_mirror_rows(conn, target)?;
            tracing::info!(
                mirror = %target.display(),
                rows = copied,
                "the mirror's rows moved from the state store to the mirror store"
            );
        }
        None if contacts > 0 || runs > 0 => tracing::info!(
            contacts,
            runs,
            "the mirror's tables leave the state store; the mirror store is rebuilt by its next full pass"
        ),
        None => {}
    }
    let rest = migrate::migrate(conn)?;
    let mut applied = first.applied;
    applied.extend(rest.applied);
    Ok(MigrationReport {
        from_version: first.from_version,
        to_version: rest.to_version,
        applied,
    })
}

/// Copies every row of the state file's mirror tables into the mirror file `target`, whose
/// tables are emptied first; both files stay as they were if anything fails. Returns the
/// number of rows copied.
fn copy_mirror_rows(conn: &mut Connection, target: &Path) -> Result<u64, StoreError> {
    let target = target
        .to_str()
        .ok_or_else(|| StoreError::Io {
            path: target.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the mirror's path is not UTF-8",
            ),
        })?
        .to_owned();
    conn.execute("ATTACH DATABASE ?1 AS mirror", [&target])?;
    let copied = copy_attached(conn);
    let detached = conn.execute_batch("DETACH DATABASE mirror");
    let copied = copied?;
    detached?;
    Ok(copied)
}

fn copy_attached(conn: &mut Connection) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for table in MIRROR_TABLES.iter().rev() {
        tx.execute(&format!("DELETE FROM mirror.{table}"), [])?;
    }
    let mut copied = 0u64;
    for table in MIRROR_TABLES {
        let wanted = columns(&tx, "mirror", table)?;
        let present = columns(&tx, "main", table)?;
        let shared: Vec<&str> = wanted
            .iter()
            .filter(|c| present.contains(c))
            .map(String::as_str)
            .collect();
        let list = shared.join(", ");
        // The mirror store enforces activity → campaign; an old file may hold activities
        // whose campaign is gone (its key was not declared there), which are left behind.
        let only = match *table {
            "campaign_activities" => {
                " AS a WHERE EXISTS (SELECT 1 FROM main.campaigns AS c
                                     WHERE c.account = a.account AND c.campaign_id = a.campaign_id)"
            }
            _ => "",
        };
        copied += tx.execute(
            &format!("INSERT INTO mirror.{table} ({list}) SELECT {list} FROM main.{table}{only}"),
            [],
        )? as u64;
    }
    tx.commit()?;
    Ok(copied)
}

/// The column names of `schema.table`.
fn columns(conn: &Connection, schema: &str, table: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&format!("PRAGMA {schema}.table_info({table})"))?;
    let names = stmt
        .query_map([], |row| row.get::<_, String>(1))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names)
}
