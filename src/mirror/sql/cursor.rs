//! `mirror_cursors`: per account and resource, the incremental high-water mark and the pass in
//! progress (its mode, path, start, and position: the next page's href or the export's rows
//! already applied). Saved in the same transaction as the page it follows.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{instant, parse_instant};
use crate::mirror::{ContactsPath, Mode, Resource};
use crate::store::StoreError;

/// A pass in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// The run that started the pass; rows it sees are marked with it (`seen_run`).
    pub run_id: i64,
    pub mode: Mode,
    pub path: Option<ContactsPath>,
    /// When the pass started (ctct-sync's clock): the next incremental pass reads from here.
    pub started_at: DateTime<Utc>,
    /// The `updated_after` an incremental pass queries with.
    pub updated_after: Option<DateTime<Utc>>,
    /// The next page to read (paging) or the export file (export); `None` before the first.
    pub next_href: Option<String>,
    /// The export activity being prepared or read.
    pub export_activity_id: Option<String>,
    /// Export records already applied.
    pub rows_done: u64,
}

impl Pass {
    pub fn new(run_id: i64, mode: Mode, started_at: DateTime<Utc>) -> Self {
        Self {
            run_id,
            mode,
            path: None,
            started_at,
            updated_after: None,
            next_href: None,
            export_activity_id: None,
            rows_done: 0,
        }
    }
}

/// The stored state of one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Start of the last complete pass.
    pub updated_after: Option<DateTime<Utc>>,
    pub pass: Option<Pass>,
}

type CursorRow = (
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// The state of `resource`; empty when it never ran.
pub fn load(conn: &Connection, account: &str, resource: Resource) -> Result<Cursor, StoreError> {
    let row: Option<CursorRow> = conn
        .query_row(
            "SELECT updated_after, run_id, pass_mode, pass_path, pass_started_at,
                    pass_updated_after, next_href, export_activity_id, rows_done
             FROM mirror_cursors WHERE account = ?1 AND resource = ?2",
            params![account, resource.as_str()],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            },
        )
        .optional()?;
    let Some((updated_after, run_id, mode, path, started, pass_after, next, export, done)) = row
    else {
        return Ok(Cursor::default());
    };
    let pass = match (run_id, mode.as_deref().and_then(Mode::parse)) {
        (Some(run_id), Some(mode)) => Some(Pass {
            run_id,
            mode,
            path: path.as_deref().and_then(ContactsPath::parse),
            started_at: parse_instant(started).unwrap_or_default(),
            updated_after: parse_instant(pass_after),
            next_href: next,
            export_activity_id: export,
            rows_done: done.max(0) as u64,
        }),
        _ => None,
    };
    Ok(Cursor {
        updated_after: parse_instant(updated_after),
        pass,
    })
}

/// Saves the pass's position.
pub fn save_pass(
    conn: &Connection,
    account: &str,
    resource: Resource,
    pass: &Pass,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO mirror_cursors (account, resource, run_id, pass_mode, pass_path,
             pass_started_at, pass_updated_after, next_href, export_activity_id, rows_done,
             updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (account, resource) DO UPDATE SET
             run_id = excluded.run_id, pass_mode = excluded.pass_mode,
             pass_path = excluded.pass_path, pass_started_at = excluded.pass_started_at,
             pass_updated_after = excluded.pass_updated_after, next_href = excluded.next_href,
             export_activity_id = excluded.export_activity_id, rows_done = excluded.rows_done,
             updated_at = excluded.updated_at",
        params![
            account,
            resource.as_str(),
            pass.run_id,
            pass.mode.as_str(),
            pass.path.map(ContactsPath::as_str),
            instant(&pass.started_at),
            pass.updated_after.as_ref().map(instant),
            pass.next_href,
            pass.export_activity_id,
            pass.rows_done as i64,
            instant(&now)
        ],
    )?;
    Ok(())
}

/// Ends the pass: nothing in progress any more; `updated_after` moves to `high_water` when
/// given (contacts), and stays as it was otherwise.
pub fn complete(
    conn: &Connection,
    account: &str,
    resource: Resource,
    high_water: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO mirror_cursors (account, resource, updated_after, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account, resource) DO UPDATE SET
             updated_after = coalesce(excluded.updated_after, mirror_cursors.updated_after),
             run_id = NULL, pass_mode = NULL, pass_path = NULL, pass_started_at = NULL,
             pass_updated_after = NULL, next_href = NULL, export_activity_id = NULL,
             rows_done = 0, updated_at = excluded.updated_at",
        params![
            account,
            resource.as_str(),
            high_water.as_ref().map(instant),
            instant(&now)
        ],
    )?;
    Ok(())
}

/// Every pass in progress: `(account, resource, mode)`.
pub fn pending(conn: &Connection) -> Result<Vec<(String, Resource, Mode)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT account, resource, pass_mode FROM mirror_cursors
         WHERE run_id IS NOT NULL AND pass_mode IS NOT NULL ORDER BY account, resource",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(account, resource, mode)| {
            Some((account, Resource::parse(&resource)?, Mode::parse(&mode)?))
        })
        .collect())
}

/// The pending passes whose run's process died: their lease lapsed without being given
/// back (a pass that ended, even stopped by the quota, gives its lease back).
pub fn orphaned(
    conn: &Connection,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Resource, Mode)>, StoreError> {
    let orphaned: std::collections::HashSet<(String, String)> = conn
        .prepare(
            "SELECT account, resource FROM mirror_cursors
             WHERE run_id IS NOT NULL AND pass_mode IS NOT NULL
               AND lease_owner IS NOT NULL AND lease_until <= ?1",
        )?
        .query_map(params![lease_time(&now)], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(pending(conn)?
        .into_iter()
        .filter(|(account, resource, _)| {
            orphaned.contains(&(account.clone(), resource.as_str().to_owned()))
        })
        .collect())
}

/// A claim on running one resource of one account, held by one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub account: String,
    pub resource: Resource,
    /// Unique per process (per `Mirror`).
    pub owner: String,
    /// The claim lapses then unless renewed.
    pub until: DateTime<Utc>,
}

/// Lease times are compared as text, so they are always written with milliseconds.
fn lease_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Takes the lease unless another owner holds one that has not lapsed at `now`.
pub fn take_lease(
    conn: &mut Connection,
    lease: &Lease,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO mirror_cursors (account, resource, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (account, resource) DO NOTHING",
        params![lease.account, lease.resource.as_str(), instant(&now)],
    )?;
    let taken = tx.execute(
        "UPDATE mirror_cursors SET lease_owner = ?3, lease_until = ?4
         WHERE account = ?1 AND resource = ?2
           AND (lease_owner IS NULL OR lease_owner = ?3 OR lease_until IS NULL
                OR lease_until <= ?5)",
        params![
            lease.account,
            lease.resource.as_str(),
            lease.owner,
            lease_time(&lease.until),
            lease_time(&now)
        ],
    )? == 1;
    tx.commit()?;
    Ok(taken)
}

/// Extends a lease this owner holds (in the transaction of a page, or between export polls).
pub fn renew_lease(conn: &Connection, lease: &Lease) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE mirror_cursors SET lease_until = ?4
         WHERE account = ?1 AND resource = ?2 AND lease_owner = ?3",
        params![
            lease.account,
            lease.resource.as_str(),
            lease.owner,
            lease_time(&lease.until)
        ],
    )?;
    Ok(())
}

/// Gives a lease back.
pub fn release_lease(conn: &Connection, lease: &Lease) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE mirror_cursors SET lease_owner = NULL, lease_until = NULL
         WHERE account = ?1 AND resource = ?2 AND lease_owner = ?3",
        params![lease.account, lease.resource.as_str(), lease.owner],
    )?;
    Ok(())
}
