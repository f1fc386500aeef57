//! `mirror_runs`: one row per run of one resource, with its figures. Figures are added in the
//! same transaction as the page they count, so a killed run's row still tells what it did.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::instant;
use crate::mirror::{ContactsPath, Mode, Resource, RunOutcome, Trigger};
use crate::store::StoreError;

/// What a run is, as it starts.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub account: String,
    pub resource: Resource,
    pub mode: Mode,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
}

/// A run's stored figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub pages: u64,
    pub rows_upserted: u64,
    pub rows_deleted: u64,
    pub api_requests: u64,
}

/// Starts a run. Runs of the same account and resource still marked `running` were cut short
/// by a process that stopped (the caller holds the resource's lock, so none is really going):
/// they become `interrupted`.
pub fn start(conn: &Connection, run: &NewRun) -> Result<i64, StoreError> {
    let now = instant(&run.started_at);
    conn.execute(
        "UPDATE mirror_runs
         SET outcome = 'interrupted', finished_at = ?3,
             error = coalesce(error, 'the process stopped during the run')
         WHERE account = ?1 AND resource = ?2 AND outcome = 'running'",
        params![run.account, run.resource.as_str(), now],
    )?;
    insert(conn, run, "running", None)
}

/// Records a run that did not happen because another run of the resource was going.
pub fn skipped(conn: &Connection, run: &NewRun) -> Result<i64, StoreError> {
    let now = instant(&run.started_at);
    insert(conn, run, "skipped", Some(&now))
}

fn insert(
    conn: &Connection,
    run: &NewRun,
    outcome: &str,
    finished_at: Option<&str>,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO mirror_runs (account, resource, mode, trigger, started_at, finished_at, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            run.account,
            run.resource.as_str(),
            run.mode.as_str(),
            run.trigger.as_str(),
            instant(&run.started_at),
            finished_at,
            outcome
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// What the run turned out to be: the mode it ran in, the path, the pass it continued.
pub fn describe(
    conn: &Connection,
    run_id: i64,
    mode: Mode,
    path: Option<ContactsPath>,
    resumed_from: Option<i64>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE mirror_runs SET mode = ?2, path = ?3, resumed_from = ?4 WHERE id = ?1",
        params![
            run_id,
            mode.as_str(),
            path.map(ContactsPath::as_str),
            resumed_from
        ],
    )?;
    Ok(())
}

/// Adds `pages` pages (or export batches) and their rows; `api_requests` is the run's total
/// so far.
pub fn add(
    conn: &Connection,
    run_id: i64,
    pages: u64,
    upserted: u64,
    deleted: u64,
    api_requests: u64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE mirror_runs
         SET pages = pages + ?2, rows_upserted = rows_upserted + ?3,
             rows_deleted = rows_deleted + ?4, api_requests = max(api_requests, ?5)
         WHERE id = ?1",
        params![
            run_id,
            pages as i64,
            upserted as i64,
            deleted as i64,
            api_requests as i64
        ],
    )?;
    Ok(())
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Finish {
    pub outcome: RunOutcome,
    pub error: Option<String>,
    pub resets_at: Option<DateTime<Utc>>,
    pub api_requests: u64,
    pub finished_at: DateTime<Utc>,
}

/// Ends a run and returns its figures.
pub fn finish(conn: &Connection, run_id: i64, end: &Finish) -> Result<Figures, StoreError> {
    conn.execute(
        "UPDATE mirror_runs
         SET outcome = ?2, error = ?3, resets_at = ?4, api_requests = max(api_requests, ?5),
             finished_at = ?6
         WHERE id = ?1",
        params![
            run_id,
            end.outcome.as_str(),
            end.error,
            end.resets_at.as_ref().map(instant),
            end.api_requests as i64,
            instant(&end.finished_at)
        ],
    )?;
    figures(conn, run_id)
}

/// A run's figures as stored.
pub fn figures(conn: &Connection, run_id: i64) -> Result<Figures, StoreError> {
    let row = conn
        .query_row(
            "SELECT pages, rows_upserted, rows_deleted, api_requests FROM mirror_runs WHERE id = ?1",
            [run_id],
            |r| {
                Ok(Figures {
                    pages: r.get::<_, i64>(0)? as u64,
                    rows_upserted: r.get::<_, i64>(1)? as u64,
                    rows_deleted: r.get::<_, i64>(2)? as u64,
                    api_requests: r.get::<_, i64>(3)? as u64,
                })
            },
        )
        .optional()?;
    Ok(row.unwrap_or_default())
}

/// The last successful run of one resource in one mode, as `/metrics` reports it.
#[derive(Debug, Clone)]
pub struct LastSuccess {
    pub resource: String,
    pub mode: String,
    pub finished_at: DateTime<Utc>,
    pub pages: i64,
    pub rows_upserted: i64,
    pub rows_deleted: i64,
    pub api_requests: i64,
}

/// The last successful run of every resource and mode, over all accounts.
pub fn last_successes(conn: &Connection) -> Result<Vec<LastSuccess>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT resource, mode, max(finished_at), pages, rows_upserted, rows_deleted, api_requests
         FROM mirror_runs WHERE outcome = 'succeeded' AND finished_at IS NOT NULL
         GROUP BY resource, mode",
    )?;
    let rows = stmt
        .query_map([], |r| {
            let finished: String = r.get(2)?;
            Ok(LastSuccess {
                resource: r.get(0)?,
                mode: r.get(1)?,
                finished_at: DateTime::parse_from_rfc3339(&finished)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default(),
                pages: r.get(3)?,
                rows_upserted: r.get(4)?,
                rows_deleted: r.get(5)?,
                api_requests: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
