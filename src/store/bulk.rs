//! SQL for bulk-import batches (migration 0004): a batch is stored with its commands and
//! their row numbers before the import request, and each command's ledger `effect_ref`
//! becomes `batch:<id>` in the same transaction; the activity id is stored once the import
//! is accepted, so a restart resumes polling that activity instead of importing again.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::Store;
use super::error::StoreError;

/// One command of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    /// 1-based row number in `import_data`.
    pub row: u32,
    pub command_id: String,
    pub email: String,
    pub attempts: u32,
    pub started_at: DateTime<Utc>,
}

/// A batch whose activity was accepted but whose results are not stored yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenBatch {
    pub id: String,
    pub account: String,
    pub list_ids: Vec<String>,
    pub activity_id: String,
    pub created_at: DateTime<Utc>,
    pub items: Vec<StoredItem>,
}

/// Stores a batch about to be imported and points each command's ledger row at it.
pub fn create(
    conn: &mut Connection,
    id: &str,
    account: &str,
    list_ids: &[String],
    items: &[StoredItem],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO bulk_batches (id, account, list_ids, status, size, created_at)
         VALUES (?1, ?2, ?3, 'importing', ?4, ?5)",
        params![
            id,
            account,
            serde_json::to_string(list_ids).unwrap_or_default(),
            items.len() as i64,
            now.to_rfc3339()
        ],
    )?;
    {
        let mut item = tx.prepare(
            "INSERT INTO bulk_items (batch_id, row, command_id, email, attempts, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut effect = tx.prepare(
            "UPDATE command_ledger SET effect_ref = ?3 WHERE account = ?1 AND command_id = ?2",
        )?;
        let reference = format!("batch:{id}");
        for it in items {
            item.execute(params![
                id,
                it.row,
                it.command_id,
                it.email,
                it.attempts,
                it.started_at.to_rfc3339()
            ])?;
            effect.execute(params![account, it.command_id, reference])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The import was accepted: remember its activity.
pub fn set_activity(conn: &Connection, id: &str, activity_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE bulk_batches SET activity_id = ?2, status = 'polling' WHERE id = ?1",
        params![id, activity_id],
    )?;
    Ok(())
}

/// Ends a batch (`done`, `failed` or `abandoned`).
pub fn set_status(
    conn: &Connection,
    id: &str,
    status: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE bulk_batches SET status = ?2, finished_at = ?3 WHERE id = ?1",
        params![id, status, now.to_rfc3339()],
    )?;
    Ok(())
}

/// Deletes up to `limit` ended batches (`done`, `failed`, `abandoned`) that ended before
/// `before`, with their items; returns how many batches. Open batches are never deleted.
pub fn prune_ended(
    conn: &mut Connection,
    before: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ended: Vec<String> = tx
        .prepare(
            "SELECT id FROM bulk_batches
             WHERE status IN ('done', 'failed', 'abandoned') AND finished_at < ?1
             ORDER BY finished_at LIMIT ?2",
        )?
        .query_map(params![before.to_rfc3339(), limit as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    {
        let mut items = tx.prepare("DELETE FROM bulk_items WHERE batch_id = ?1")?;
        let mut batch = tx.prepare("DELETE FROM bulk_batches WHERE id = ?1")?;
        for id in &ended {
            items.execute([id])?;
            batch.execute([id])?;
        }
    }
    tx.commit()?;
    Ok(ended.len())
}

/// Batches to resume at start: those with an activity id and no results yet. Batches whose
/// import request was never answered are marked `abandoned` (their commands import again:
/// an upsert imported twice with the same values changes nothing more).
pub fn load_open(conn: &mut Connection, now: DateTime<Utc>) -> Result<Vec<OpenBatch>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "UPDATE bulk_batches SET status = 'abandoned', finished_at = ?1 WHERE status = 'importing'",
        params![now.to_rfc3339()],
    )?;
    let mut batches = Vec::new();
    {
        let mut select = tx.prepare(
            "SELECT id, account, list_ids, activity_id, created_at FROM bulk_batches
             WHERE status = 'polling' ORDER BY created_at",
        )?;
        let rows = select.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (id, account, lists, activity_id, created_at) = row?;
            batches.push(OpenBatch {
                id,
                account,
                list_ids: serde_json::from_str(&lists).unwrap_or_default(),
                activity_id,
                created_at: parse_time(&created_at),
                items: Vec::new(),
            });
        }
        let mut items = tx.prepare(
            "SELECT row, command_id, email, attempts, started_at FROM bulk_items
             WHERE batch_id = ?1 ORDER BY row",
        )?;
        for batch in &mut batches {
            let rows = items.query_map(params![batch.id], |r| {
                Ok(StoredItem {
                    row: r.get(0)?,
                    command_id: r.get(1)?,
                    email: r.get(2)?,
                    attempts: r.get(3)?,
                    started_at: parse_time(&r.get::<_, String>(4)?),
                })
            })?;
            for item in rows {
                batch.items.push(item?);
            }
        }
    }
    tx.commit()?;
    Ok(batches)
}

/// The status of a batch, if it exists.
pub fn status(conn: &Connection, id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT status FROM bulk_batches WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Stores many final results at once (as [`super::ledger::finish`] does, one transaction).
/// Each entry: (command_id, command_type, outcome, result JSON).
pub fn finish_all(
    conn: &mut Connection,
    account: &str,
    results: &[(String, String, String, String)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut finish = tx.prepare(
            "INSERT INTO command_ledger (account, command_id, type, status, attempts, outcome, result, received_at, finished_at)
             VALUES (?1, ?2, ?3, 'done', 1, ?4, ?5, ?6, ?6)
             ON CONFLICT (account, command_id) DO UPDATE SET
                 status = 'done', outcome = excluded.outcome, result = excluded.result, finished_at = excluded.finished_at,
                 owner = NULL, lease_until = NULL
             WHERE command_ledger.status <> 'done'",
        )?;
        let at = now.to_rfc3339();
        for (id, command_type, outcome, result) in results {
            finish.execute(params![account, id, command_type, outcome, result, at])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The bulk batches' typed operations: the only way code outside the store reaches
/// `bulk_batches` and `bulk_items`.
impl Store {
    /// The batches a previous run left open ([`load_open`]).
    pub async fn bulk_load_open(&self, now: DateTime<Utc>) -> Result<Vec<OpenBatch>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.bulk_load_open(now).await;
        }
        self.call(move |conn| load_open(conn, now)).await
    }

    /// Stores a batch about to be imported and points each command's ledger row at it
    /// ([`create`]).
    pub async fn bulk_create(
        &self,
        id: &str,
        account: &str,
        list_ids: &[String],
        items: Vec<StoredItem>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.bulk_create(id, account, list_ids, items, now).await;
        }
        let (id, account, list_ids) = (id.to_owned(), account.to_owned(), list_ids.to_vec());
        self.call(move |conn| create(conn, &id, &account, &list_ids, &items, now))
            .await
    }

    /// The import was accepted: remember its activity ([`set_activity`]).
    pub async fn bulk_set_activity(&self, id: &str, activity_id: &str) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.bulk_set_activity(id, activity_id).await;
        }
        let (id, activity_id) = (id.to_owned(), activity_id.to_owned());
        self.call(move |conn| set_activity(conn, &id, &activity_id))
            .await
    }

    /// Ends a batch (`done`, `failed` or `abandoned`; [`set_status`]).
    pub async fn bulk_set_status(
        &self,
        id: &str,
        status: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.bulk_set_status(id, status, now).await;
        }
        let (id, status) = (id.to_owned(), status.to_owned());
        self.call(move |conn| set_status(conn, &id, &status, now))
            .await
    }

    /// Stores many final results in one transaction ([`finish_all`]). Each entry:
    /// (command_id, command_type, outcome, result JSON).
    pub async fn bulk_finish_all(
        &self,
        account: &str,
        results: Vec<(String, String, String, String)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.bulk_finish_all(account, results, now).await;
        }
        let account = account.to_owned();
        self.call(move |conn| finish_all(conn, &account, &results, now))
            .await
    }
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ledger, migrate};

    const CLAIM: ledger::Claim<'static> = ledger::Claim {
        owner: "me",
        lease: std::time::Duration::from_secs(60),
    };

    #[test]
    fn pruning_deletes_ended_batches_and_their_items_but_never_open_ones() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate::migrate(&mut conn).unwrap();
        let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
        let long_ago = now - chrono::Duration::days(60);
        let item = |row: u32, id: &str| StoredItem {
            row,
            command_id: id.into(),
            email: format!("{id}@example.com"),
            attempts: 1,
            started_at: long_ago,
        };
        for (batch, command) in [("ended", "c1"), ("open", "c2"), ("recent", "c3")] {
            create(
                &mut conn,
                batch,
                "a",
                &["l1".into()],
                &[item(1, command)],
                long_ago,
            )
            .unwrap();
        }
        set_status(&conn, "ended", "done", long_ago).unwrap();
        set_activity(&conn, "open", "act-open").unwrap();
        set_status(&conn, "recent", "abandoned", now).unwrap();
        let cutoff = now - chrono::Duration::days(30);
        assert_eq!(prune_ended(&mut conn, cutoff, 100).unwrap(), 1);
        assert_eq!(prune_ended(&mut conn, cutoff, 100).unwrap(), 0);
        assert_eq!(status(&conn, "ended").unwrap(), None);
        assert_eq!(status(&conn, "open").unwrap().as_deref(), Some("polling"));
        assert_eq!(
            status(&conn, "recent").unwrap().as_deref(),
            Some("abandoned")
        );
        let items: Vec<String> = conn
            .prepare("SELECT batch_id FROM bulk_items ORDER BY batch_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            items,
            ["open", "recent"],
            "the ended batch's items went with it"
        );
    }

    #[test]
    fn a_batch_is_stored_resumed_and_points_the_ledger_at_itself() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate::migrate(&mut conn).unwrap();
        let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
        ledger::begin(&mut conn, "a", "c1", "contact.upsert", "fp", CLAIM, now).unwrap();
        let item = StoredItem {
            row: 1,
            command_id: "c1".into(),
            email: "pat@example.com".into(),
            attempts: 1,
            started_at: now,
        };
        create(
            &mut conn,
            "b1",
            "a",
            &["l1".into()],
            std::slice::from_ref(&item),
            now,
        )
        .unwrap();
        create(&mut conn, "b2", "a", &["l1".into()], &[], now).unwrap();
        set_activity(&conn, "b1", "act-1").unwrap();
        assert_eq!(
            ledger::begin(&mut conn, "a", "c1", "contact.upsert", "fp", CLAIM, now).unwrap(),
            ledger::Begun::Started {
                attempts: 2,
                effect_ref: Some("batch:b1".into())
            }
        );
        let open = load_open(&mut conn, now).unwrap();
        assert_eq!(open.len(), 1, "b2 never got an activity id");
        assert_eq!(open[0].activity_id, "act-1");
        assert_eq!(open[0].items, vec![item]);
        assert_eq!(status(&conn, "b2").unwrap().as_deref(), Some("abandoned"));
        finish_all(
            &mut conn,
            "a",
            &[(
                "c1".into(),
                "contact.upsert".into(),
                "succeeded".into(),
                "{}".into(),
            )],
            now,
        )
        .unwrap();
        set_status(&conn, "b1", "done", now).unwrap();
        assert!(load_open(&mut conn, now).unwrap().is_empty());
        assert_eq!(
            ledger::result_of(&conn, "a", "c1").unwrap().as_deref(),
            Some("{}")
        );
    }
}
