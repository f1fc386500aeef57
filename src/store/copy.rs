//! `ctct-sync store copy`: every row of one store's tables copied into another store, SQLite
//! or PostgreSQL on either side, in one transaction on the target.
//!
//! Both stores are created (if needed) and migrated first, so that both hold the tables of this
//! release. A target that already holds a row in any of the copied tables is refused before
//! anything is written ([`StoreError::CopyTargetNotEmpty`] names the table). Rows travel as
//! JSON objects keyed by column name; between engines each field is converted by the type of
//! its PostgreSQL column: an instant is RFC 3339 text on SQLite (written the way the SQLite
//! code writes it: `to_rfc3339()` in the state, [`crate::mirror::sql::instant`] in the
//! mirror) and `timestamptz` on PostgreSQL; SQLite's `0`/`1` is a `boolean`; JSON text is
//! `jsonb`; a day is `YYYY-MM-DD` text or a `date`; a SQLite column `<name>_ms` (Unix
//! milliseconds) is the `timestamptz` column `<name>`. A PostgreSQL-only column (the mirror
//! cursor's `lease_ttl`) is left empty on SQLite and dropped on the way back.
//!
//! The copy is meant for a stopped daemon: the source is read from one snapshot, but a daemon
//! still running on it keeps rotating tokens there that the copy would not see.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Number, Value};

use super::postgres::copy::{PgReader, PgWriter};
use super::{PgStore, Role, Store, StoreError};
use crate::config::StoreLocation;
use crate::mirror::sql::PgMirrorDb;

/// The state store's tables, parents first.
pub const STATE_TABLES: &[&str] = &[
    "accounts",
    "rate_budget",
    "rate_budget_holds",
    "rate_pace",
    "command_ledger",
    "bulk_batches",
    "bulk_items",
];

/// The mirror store's tables, parents first (kept beside the upgrade, which needs them too
/// and must not depend on this module).
pub use super::upgrade::MIRROR_TABLES;

/// The campaign reports' tables of the mirror's 0002, parents first; no store of before the
/// split holds them, so the upgrade does not move them.
pub const REPORT_TABLES: &[&str] = &[
    "campaign_activity_stats",
    "campaign_activity_stats_history",
    "tracking_events",
    "campaign_activity_links",
    "report_progress",
];

/// The tags' and segments' tables of the mirror's 0005, parents first (taggings hang on
/// contacts, copied before them).
pub const TAG_TABLES: &[&str] = &["contact_tags", "contact_taggings", "segments"];

/// The mirror's 0003 tables where a full contacts pass keeps what it has read until its end
/// (copied with the pass's cursor, so that the copy resumes the pass with them).
pub const PASS_TABLES: &[&str] = &["contacts_load", "contacts_seen"];

/// The mirror's 0004 table of erased contacts (`contact.erase`): copied, so that the copy
/// keeps leaving them out.
pub const ERASURE_TABLES: &[&str] = &["erased_contacts"];

const MIRROR_AND_REPORT_TABLES: [&str; MIRROR_TABLES.len() + REPORT_TABLES.len()] =
    concat_tables(MIRROR_TABLES, REPORT_TABLES);

const WITH_TAG_TABLES: [&str; MIRROR_AND_REPORT_TABLES.len() + TAG_TABLES.len()] =
    concat_tables(&MIRROR_AND_REPORT_TABLES, TAG_TABLES);

const WITH_PASS_TABLES: [&str; WITH_TAG_TABLES.len() + PASS_TABLES.len()] =
    concat_tables(&WITH_TAG_TABLES, PASS_TABLES);

/// Every table a mirror store copies: [`MIRROR_TABLES`], [`REPORT_TABLES`], [`TAG_TABLES`],
/// [`PASS_TABLES`], then [`ERASURE_TABLES`].
pub const MIRROR_COPY_TABLES: &[&str] = &concat_tables::<
    { WITH_PASS_TABLES.len() + ERASURE_TABLES.len() },
>(&WITH_PASS_TABLES, ERASURE_TABLES);

/// `a` then `b`, as one array of their combined length (checked when compiled).
const fn concat_tables<const N: usize>(
    a: &[&'static str],
    b: &[&'static str],
) -> [&'static str; N] {
    assert!(a.len() + b.len() == N, "N is the combined length");
    let mut out = [""; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[a.len() + j] = b[j];
        j += 1;
    }
    out
}

/// A row as a JSON object keyed by column name.
type JsonRow = Map<String, Value>;

/// Rows read from a SQLite source at a time.
const PAGE: i64 = 2_000;

/// How many rows each table received.
#[derive(Debug, Clone, Default)]
pub struct CopySummary {
    pub tables: Vec<(&'static str, u64)>,
}

impl CopySummary {
    /// `accounts 1, rate_budget 2, …`: for the command's output.
    pub fn describe(&self) -> String {
        self.tables
            .iter()
            .map(|(table, rows)| format!("{table} {rows}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rows copied into `table` (0 when it is not one of the copied tables).
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n)
    }
}

/// One side of a copy, opened and migrated.
enum Side {
    Sqlite(PathBuf),
    Postgres(PgStore),
}

/// Copies every row of `tables` (the state's [`STATE_TABLES`] or the mirror's
/// [`MIRROR_TABLES`], parents first) of the `role` store at `from` into the
/// one at `to`. The source must exist (a SQLite file is not created); the target is created
/// and migrated, and must hold no row in those tables.
pub async fn copy(
    role: Role,
    tables: &[&'static str],
    from: &StoreLocation,
    to: &StoreLocation,
) -> Result<CopySummary, StoreError> {
    if from.describe() == to.describe() {
        return Err(StoreError::CopySameStore(to.describe()));
    }
    if let StoreLocation::Sqlite(path) = from
        && !path.exists()
    {
        return Err(StoreError::CopyNoSource(path.display().to_string()));
    }
    let source = open_side(role, from).await?;
    let target = open_side(role, to).await?;
    let mut reader = Reader::begin(&source).await?;
    let mut writer = Writer::begin(role, &target, tables).await?;
    let copied = copy_tables(role, tables, &mut reader, &mut writer).await;
    match copied {
        Ok(summary) => {
            writer.commit(tables).await?;
            reader.finish().await?;
            Ok(summary)
        }
        Err(e) => {
            writer.rollback().await;
            Err(e)
        }
    }
}

async fn copy_tables(
    role: Role,
    tables: &[&'static str],
    reader: &mut Reader,
    writer: &mut Writer,
) -> Result<CopySummary, StoreError> {
    let mut summary = CopySummary::default();
    for table in tables {
        // The PostgreSQL side's column types drive the conversion between engines.
        let source_cols = reader.columns(table).await?;
        let target_cols = writer.columns(table).await?;
        let convert = match (reader.is_pg(), writer.is_pg()) {
            (false, true) => Convert::ToPg(target_cols),
            (true, false) => Convert::ToSqlite {
                role,
                pg: source_cols.into_iter().collect(),
                sqlite: target_cols.into_iter().map(|(name, _)| name).collect(),
            },
            _ => Convert::Same,
        };
        let mut count = 0u64;
        loop {
            let page = reader.page(table).await?;
            if page.is_empty() {
                break;
            }
            let rows = page
                .into_iter()
                .map(|row| convert.row(table, row))
                .collect::<Result<Vec<_>, _>>()?;
            count += rows.len() as u64;
            writer.insert(table, rows).await?;
        }
        tracing::debug!(table, rows = count, "table copied");
        summary.tables.push((table, count));
    }
    Ok(summary)
}

/// Creates (if needed) and migrates the `role` store at `at`.
async fn open_side(role: Role, at: &StoreLocation) -> Result<Side, StoreError> {
    match at {
        StoreLocation::Sqlite(path) => {
            let path = path.clone();
            let file = path.clone();
            run_blocking(move || match role {
                Role::State => {
                    Store::prepare_state_dir(&file)?;
                    Store::migrate_file(&file, None).map(drop)
                }
                Role::Mirror => Store::migrate_mirror_file(&file).map(drop),
            })
            .await??;
            Ok(Side::Sqlite(path))
        }
        StoreLocation::Postgres { url, schema } => match role {
            Role::State => {
                let (store, _) = Store::connect_postgres(url.secret(), schema).await?;
                Ok(Side::Postgres(
                    store.pg().expect("a PostgreSQL store").clone(),
                ))
            }
            Role::Mirror => {
                let pg = PgStore::connect(url.secret(), schema).await?;
                PgMirrorDb::new(pg.pool().clone())
                    .migrate()
                    .await
                    .map_err(|e| StoreError::Copy {
                        table: "schema_migrations".into(),
                        reason: e.to_string(),
                    })?;
                Ok(Side::Postgres(pg))
            }
        },
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StoreError::Closed)
}

/// How a row read on one engine becomes a row for the other.
enum Convert {
    /// Same engine: as read.
    Same,
    /// SQLite to PostgreSQL, by the target's columns and their types.
    ToPg(Vec<(String, String)>),
    /// PostgreSQL to SQLite: the source's column types, the target's column names.
    ToSqlite {
        role: Role,
        pg: HashMap<String, String>,
        sqlite: Vec<String>,
    },
}

impl Convert {
    fn row(
        &self,
        table: &str,
        mut row: Map<String, Value>,
    ) -> Result<Map<String, Value>, StoreError> {
        let bad = |column: &str, reason: &str| StoreError::Copy {
            table: table.to_owned(),
            reason: format!("column {column}: {reason}"),
        };
        match self {
            Convert::Same => Ok(row),
            Convert::ToPg(columns) => {
                let mut out = Map::with_capacity(columns.len());
                for (name, ty) in columns {
                    let value = match row.remove(name) {
                        Some(value) => value,
                        None => match row.remove(&format!("{name}_ms")) {
                            Some(Value::Number(ms)) if is_instant(ty) => ms
                                .as_i64()
                                .and_then(DateTime::<Utc>::from_timestamp_millis)
                                .map_or(Value::Null, |at| Value::String(at.to_rfc3339())),
                            _ => Value::Null,
                        },
                    };
                    let value = match (ty.as_str(), value) {
                        (_, Value::Null) => Value::Null,
                        (t, Value::String(text)) if is_instant(t) => {
                            parse_instant(&text).map_or(Value::Null, |at| at.to_rfc3339().into())
                        }
                        ("date", Value::String(text)) => parse_instant(&text)
                            .map_or(Value::Null, |at| at.date_naive().to_string().into()),
                        ("boolean", Value::Number(n)) => Value::Bool(n.as_i64() != Some(0)),
                        ("jsonb" | "json", Value::String(text)) => {
                            serde_json::from_str(&text).unwrap_or(Value::String(text))
                        }
                        (_, value) => value,
                    };
                    out.insert(name.clone(), value);
                }
                Ok(out)
            }
            Convert::ToSqlite { role, pg, sqlite } => {
                let mut out = Map::with_capacity(sqlite.len());
                for name in sqlite {
                    let value = if let Some(value) = row.remove(name) {
                        let ty = pg.get(name).map_or("", String::as_str);
                        match (ty, value) {
                            (_, Value::Null) => Value::Null,
                            (t, Value::String(text)) if is_instant(t) => {
                                let at = parse_instant(&text)
                                    .ok_or_else(|| bad(name, "an unreadable instant"))?;
                                Value::String(match role {
                                    Role::State => at.to_rfc3339(),
                                    Role::Mirror => crate::mirror::sql::instant(&at),
                                })
                            }
                            ("boolean", Value::Bool(b)) => Value::from(i64::from(b)),
                            ("jsonb" | "json", value) => Value::String(value.to_string()),
                            (_, value) => value,
                        }
                    } else if let Some(base) = name.strip_suffix("_ms")
                        && pg.get(base).is_some_and(|t| is_instant(t))
                    {
                        match row.remove(base) {
                            Some(Value::String(text)) => {
                                let at = parse_instant(&text)
                                    .ok_or_else(|| bad(base, "an unreadable instant"))?;
                                Value::Number(Number::from(at.timestamp_millis()))
                            }
                            _ => Value::Null,
                        }
                    } else {
                        Value::Null
                    };
                    out.insert(name.clone(), value);
                }
                Ok(out)
            }
        }
    }
}

fn is_instant(pg_type: &str) -> bool {
    pg_type == "timestamp with time zone"
}

fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    crate::api::model::time::parse(text)
}

/// The source of a copy, read from one snapshot.
enum Reader {
    Sqlite(SqliteReader),
    Postgres(PgReader),
}

impl Reader {
    async fn begin(side: &Side) -> Result<Reader, StoreError> {
        match side {
            Side::Sqlite(path) => {
                let path = path.clone();
                let conn = run_blocking(move || {
                    let conn = open_raw(&path)?;
                    // A read transaction: its snapshot starts with the first page's SELECT.
                    conn.execute_batch("BEGIN")?;
                    Ok::<_, StoreError>(conn)
                })
                .await??;
                Ok(Reader::Sqlite(SqliteReader {
                    conn: Some(conn),
                    after: None,
                }))
            }
            Side::Postgres(pg) => Ok(Reader::Postgres(PgReader::begin(pg).await?)),
        }
    }

    fn is_pg(&self) -> bool {
        matches!(self, Reader::Postgres(_))
    }

    async fn columns(&mut self, table: &'static str) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.with(move |conn| sqlite_columns(conn, table)).await,
            Reader::Postgres(r) => r.columns(table).await,
        }
    }

    async fn page(&mut self, table: &'static str) -> Result<Vec<Map<String, Value>>, StoreError> {
        match self {
            Reader::Sqlite(r) => {
                let after = r.after;
                let (rows, last) = r.with(move |conn| sqlite_page(conn, table, after)).await?;
                r.after = if rows.is_empty() { None } else { last };
                Ok(rows)
            }
            Reader::Postgres(r) => r.page(table).await,
        }
    }

    async fn finish(self) -> Result<(), StoreError> {
        match self {
            Reader::Sqlite(mut r) => r.with(|conn| Ok(conn.execute_batch("COMMIT")?)).await,
            Reader::Postgres(r) => r.finish().await,
        }
    }
}

/// A SQLite connection of its own, handed to a blocking thread for each step.
struct SqliteReader {
    conn: Option<Connection>,
    /// Where the current table's next page starts (see [`sqlite_page`]).
    after: Option<i64>,
}

impl SqliteReader {
    async fn with<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.take().ok_or(StoreError::Closed)?;
        let (conn, result) = run_blocking(move || {
            let result = f(&conn);
            (conn, result)
        })
        .await?;
        self.conn = Some(conn);
        result
    }
}

/// Opens an existing SQLite store (already migrated) for the copy.
fn open_raw(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Unusable {
        path: path.to_owned(),
        source,
    })?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")?;
    Ok(conn)
}

/// The columns of `table` (names; SQLite's declared types are not needed).
fn sqlite_columns(conn: &Connection, table: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let columns = stmt
        .query_map([], |row| {
            Ok((row.get::<_, String>(1)?, row.get::<_, String>(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(columns)
}

/// The rows of `table` after position `after`: by rowid (the last rowid read), or for a
/// `WITHOUT ROWID` table by offset (rows already read) in the table's key order, both stable
/// inside the reader's snapshot. Returns the rows and the position after them.
fn sqlite_page(
    conn: &Connection,
    table: &str,
    after: Option<i64>,
) -> Result<(Vec<JsonRow>, Option<i64>), StoreError> {
    let has_rowid = conn
        .prepare_cached(&format!("SELECT rowid FROM {table} LIMIT 0"))
        .is_ok();
    let mut stmt = if has_rowid {
        conn.prepare_cached(&format!(
            "SELECT rowid AS copy_position, * FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2"
        ))?
    } else {
        conn.prepare_cached(&format!(
            "SELECT ?1 AS copy_position, * FROM {table} LIMIT ?2 OFFSET ?1"
        ))?
    };
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let start = after.unwrap_or(if has_rowid { i64::MIN } else { 0 });
    let mut rows = stmt.query(rusqlite::params![start, PAGE])?;
    let (mut out, mut last) = (Vec::new(), None);
    while let Some(row) = rows.next()? {
        last = Some(if has_rowid {
            row.get::<_, i64>(0)?
        } else {
            start + out.len() as i64 + 1
        });
        let mut map = Map::with_capacity(names.len() - 1);
        for (i, name) in names.iter().enumerate().skip(1) {
            let value = match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::from(n),
                ValueRef::Real(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
                ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(_) => {
                    return Err(StoreError::Copy {
                        table: table.to_owned(),
                        reason: format!("column {name} holds a blob"),
                    });
                }
            };
            map.insert(name.clone(), value);
        }
        out.push(map);
    }
    Ok((out, last))
}

/// The target of a copy: one transaction, committed only when every table is in.
enum Writer {
    Sqlite(SqliteReader),
    Postgres(PgWriter),
}

impl Writer {
    async fn begin(role: Role, side: &Side, tables: &[&'static str]) -> Result<Writer, StoreError> {
        match side {
            Side::Sqlite(path) => {
                let path = path.clone();
                let tables = tables.to_vec();
                let conn = run_blocking(move || {
                    let conn = super::open_connection(&path, role)?;
                    conn.execute_batch("BEGIN IMMEDIATE")?;
                    for table in tables {
                        let any: bool = conn.query_row(
                            &format!("SELECT EXISTS (SELECT 1 FROM {table})"),
                            [],
                            |r| r.get(0),
                        )?;
                        if any {
                            conn.execute_batch("ROLLBACK")?;
                            return Err(StoreError::CopyTargetNotEmpty {
                                store: path.display().to_string(),
                                table: table.to_owned(),
                            });
                        }
                    }
                    Ok(conn)
                })
                .await??;
                Ok(Writer::Sqlite(SqliteReader {
                    conn: Some(conn),
                    after: None,
                }))
            }
            Side::Postgres(pg) => Ok(Writer::Postgres(PgWriter::begin(pg, tables).await?)),
        }
    }

    fn is_pg(&self) -> bool {
        matches!(self, Writer::Postgres(_))
    }

    async fn columns(&mut self, table: &'static str) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Writer::Sqlite(w) => w.with(move |conn| sqlite_columns(conn, table)).await,
            Writer::Postgres(w) => w.columns(table).await,
        }
    }

    async fn insert(
        &mut self,
        table: &'static str,
        rows: Vec<Map<String, Value>>,
    ) -> Result<(), StoreError> {
        match self {
            Writer::Sqlite(w) => w.with(move |conn| sqlite_insert(conn, table, &rows)).await,
            Writer::Postgres(w) => w.insert(table, &rows).await,
        }
    }

    async fn commit(self, tables: &[&str]) -> Result<(), StoreError> {
        match self {
            Writer::Sqlite(mut w) => {
                w.with(|conn| {
                    conn.execute_batch("COMMIT")?;
                    super::checkpoint(conn)
                })
                .await
            }
            Writer::Postgres(w) => w.commit(tables).await,
        }
    }

    async fn rollback(self) {
        match self {
            Writer::Sqlite(mut w) => {
                let _ = w
                    .with(|conn| {
                        super::rollback_if_open(conn);
                        Ok(())
                    })
                    .await;
            }
            Writer::Postgres(w) => w.rollback().await,
        }
    }
}

/// Inserts `rows` into `table` by the column names of the first row.
fn sqlite_insert(
    conn: &Connection,
    table: &str,
    rows: &[Map<String, Value>],
) -> Result<(), StoreError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let names: Vec<&String> = first.keys().collect();
    let marks = (1..=names.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let list = names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt =
        conn.prepare_cached(&format!("INSERT INTO {table} ({list}) VALUES ({marks})"))?;
    for row in rows {
        let values = names
            .iter()
            .map(|name| match row.get(name.as_str()) {
                None | Some(Value::Null) => SqlValue::Null,
                Some(Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map(SqlValue::Integer)
                    .unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or_default())),
                Some(Value::String(s)) => SqlValue::Text(s.clone()),
                Some(other) => SqlValue::Text(other.to_string()),
            })
            .collect::<Vec<_>>();
        stmt.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}
