//! Every SQL statement of the mirror, by table family, and [`MirrorDb`], the only way the rest
//! of the mirror (and `ops`) reaches these tables. The statement functions take a connection
//! (or an open transaction) and domain types and stay inside this folder; `MirrorDb` composes
//! them into typed async methods, one transaction per page.
//!
//! ```text
//! runs       mirror_runs: start, figures per page, finish
//! cursor     mirror_cursors: the pass in progress and the incremental high-water mark
//! contacts   contacts, their custom-field values, list memberships and taggings
//! catalog    custom_fields, contact_lists, contact_tags and segments
//! campaigns  campaigns and campaign_activities
//! reports    campaign reports: activity statistics and their history, tracking events,
//!            links, the reporting pass's progress (and the types both engines share)
//! db         MirrorDb: typed async methods over the above (runs, cursors and leases, pages),
//!            each one job on the store's thread; no rusqlite type in its signatures
//! db_reports MirrorDb's methods for campaign reports
//! erasure   erased_contacts (contact.erase): a contact's rows removed, its id tombstoned, and
//!           which ids of a page were erased (every contacts and events page leaves them out)
//! lookup     contacts found by e-mail address (live, not erased, ASCII case folded) for the
//!            commands that name contacts by address
//! page       PageMark and PageEnd: what every page's transaction carries (run, lease, time)
//!            and whether it is the pass's last page
//! error      MirrorDbError: a failed mirror-store call, whichever the engine
//! postgres   PgMirrorDb: the same methods on a PostgreSQL schema (binary COPY for contacts),
//!            and the mirror schema's migrations there
//! engine_tests  (tests only) the same cases run against both engines
//! report_engine_tests  (tests only) campaign reports on both engines
//! tag_engine_tests  (tests only) tags, taggings and segments on both engines
//! ```
//!
//! The statement modules above are SQLite's; `MirrorDb` dispatches to them or to
//! [`postgres::PgMirrorDb`].

/// References to a contact's column fields after its id — in the order of both engines'
/// column lists (SQLite's `CORE_COLUMNS`, PostgreSQL's `CONTACT_COLUMNS` after `contact_id`)
/// — between `lead` and `trail` ones, as one array: each engine's statement parameters or
/// `COPY` values, typed by the caller (`[&dyn rusqlite::ToSql; N]`, `[&(dyn
/// postgres_types::ToSql + Sync); N]`). One list for both engines, so their orders cannot
/// drift apart.
macro_rules! contact_fields {
    ([$($lead:expr),* $(,)?], $row:expr, [$($trail:expr),* $(,)?]) => {
        [
            $($lead,)*
            &$row.email_address,
            &$row.permission_to_send,
            &$row.confirm_status,
            &$row.opt_in_source,
            &$row.opt_in_date,
            &$row.opt_out_source,
            &$row.opt_out_date,
            &$row.opt_out_reason,
            &$row.first_name,
            &$row.last_name,
            &$row.job_title,
            &$row.company_name,
            &$row.birthday_month,
            &$row.birthday_day,
            &$row.anniversary,
            &$row.create_source,
            &$row.update_source,
            &$row.created_at,
            &$row.updated_at,
            &$row.deleted_at,
            $($trail,)*
        ]
    };
}
pub(crate) use contact_fields;

pub mod campaigns;
pub mod catalog;
pub mod contacts;
pub mod cursor;
pub mod db;
mod db_reports;
#[cfg(test)]
pub(crate) mod engine_tests;
pub mod erasure;
mod error;
pub mod lookup;
mod page;
pub mod postgres;
#[cfg(test)]
mod report_engine_tests;
pub mod reports;
pub mod runs;
#[cfg(test)]
mod tag_engine_tests;

pub use db::MirrorDb;
pub use error::MirrorDbError;
pub use page::{PageEnd, PageMark};
pub use postgres::{PgMirrorDb, PgMirrorError};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::api::model::time;
use crate::store::StoreError;

/// How the mirror writes instants: RFC 3339, UTC, `Z`.
pub fn instant(at: &DateTime<Utc>) -> String {
    time::format(at)
}

/// Reads an instant written by [`instant`] (or by the API).
pub fn parse_instant(text: Option<String>) -> Option<DateTime<Utc>> {
    text.as_deref().and_then(time::parse)
}

/// The store connection's page cache while the mirror writes (32 MiB; SQLite's default is
/// 2 MiB). Random-key inserts into a large mirror miss a small cache on almost every row.
const MIRROR_CACHE_KIB: i64 = 32 * 1024;

/// WAL pages before an automatic checkpoint while the mirror writes (64 MiB; the default is
/// 1,000 pages, which a page of contacts alone exceeds, so every commit would checkpoint).
const MIRROR_WAL_AUTOCHECKPOINT: i64 = 16 * 1024;

/// Runs `f` in one IMMEDIATE transaction written with `synchronous = NORMAL`, a larger WAL
/// between checkpoints and foreign keys unchecked, then puts the three settings back (the
/// store also holds refresh tokens, and those are written with FULL). The page cache is
/// raised to 32 MiB and left there.
///
/// In WAL mode NORMAL skips the fsync of each commit. A power cut may then lose the last pages
/// committed — never half a page: a page and its pass position are one transaction, so they
/// are lost together and read again by the next run. Tokens are never written inside such a
/// transaction. Measurements: docs/performance.md, "Mirror".
pub fn page_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    let autocheckpoint: i64 = conn.pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))?;
    let cache: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
    if cache > -MIRROR_CACHE_KIB {
        conn.pragma_update(None, "cache_size", -MIRROR_CACHE_KIB)?;
    }
    let foreign_keys: i64 = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", MIRROR_WAL_AUTOCHECKPOINT)?;
    // The mirror writes a contact before its values and memberships and removes them
    // explicitly, so the foreign keys' per-row parent lookups only cost index searches.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result: Result<T, StoreError> = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    })();
    let restored = conn
        .pragma_update(None, "synchronous", synchronous)
        .and_then(|()| conn.pragma_update(None, "wal_autocheckpoint", autocheckpoint))
        .and_then(|()| conn.pragma_update(None, "foreign_keys", foreign_keys));
    let value = result?;
    restored?;
    Ok(value)
}

/// Copies what the mirror left in the WAL into the database without waiting for readers, so
/// the next command's commit does not pay for a large checkpoint.
pub fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outcome = Result<(), Box<dyn std::error::Error>>;

    fn settings(conn: &Connection) -> rusqlite::Result<(i64, i64, i64)> {
        let get = |name: &str| -> rusqlite::Result<i64> {
            conn.pragma_query_value(None, name, |r| r.get(0))
        };
        Ok((
            get("synchronous")?,
            get("wal_autocheckpoint")?,
            get("foreign_keys")?,
        ))
    }

    #[test]
    fn a_page_transaction_relaxes_its_settings_only_while_it_runs_even_when_it_fails() -> Outcome {
        let dir = tempfile::tempdir()?;
        let mut conn = Connection::open(dir.path().join("store.db"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             CREATE TABLE t (id INTEGER PRIMARY KEY);",
        )?;
        let before = settings(&conn)?;
        assert_eq!((before.0, before.2), (2, 1));
        let inside = page_transaction(&mut conn, |tx| Ok(settings(tx)?))?;
        assert_eq!(inside, (1, MIRROR_WAL_AUTOCHECKPOINT, 0));
        assert_eq!(settings(&conn)?, before);
        let failed = page_transaction(&mut conn, |tx| -> Result<(), StoreError> {
            tx.execute("INSERT INTO t (id) VALUES (1)", [])?;
            tx.execute("INSERT INTO t (id) VALUES (1)", [])?;
            Ok(())
        });
        assert!(failed.is_err());
        assert_eq!(settings(&conn)?, before, "restored after a failed page too");
        let rows: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        assert_eq!(rows, 0, "the failed page left nothing");
        Ok(())
    }
}
