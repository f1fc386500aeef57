//! Bulk-import batches on PostgreSQL: the same operations as [`crate::store::bulk`], each
//! write that spans rows in one transaction.

use chrono::{DateTime, Utc};

use super::{PgStore, to_u32};
use crate::store::bulk::{OpenBatch, StoredItem};
use crate::store::error::StoreError;

impl PgStore {
    /// The batches a previous run left open: batches whose import request was never
    /// answered are marked `abandoned`; those with an activity id are returned to resume.
    pub async fn bulk_load_open(&self, now: DateTime<Utc>) -> Result<Vec<OpenBatch>, StoreError> {
        let err = |e| self.error(e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err)?;
        tx.execute(
            "UPDATE bulk_batches SET status = 'abandoned', finished_at = $1 WHERE status = 'importing'",
            &[&now],
        )
        .await
        .map_err(err)?;
        let mut batches: Vec<OpenBatch> = tx
            .query(
                "SELECT id, account, list_ids, activity_id, created_at FROM bulk_batches
                 WHERE status = 'polling' AND activity_id IS NOT NULL ORDER BY created_at",
                &[],
            )
            .await
            .map_err(err)?
            .iter()
            .map(|r| OpenBatch {
                id: r.get(0),
                account: r.get(1),
                list_ids: serde_json::from_str(r.get::<_, &str>(2)).unwrap_or_default(),
                activity_id: r.get(3),
                created_at: r.get(4),
                items: Vec::new(),
            })
            .collect();
        let items = tx
            .prepare(
                "SELECT row, command_id, email, attempts, started_at FROM bulk_items
                 WHERE batch_id = $1 ORDER BY row",
            )
            .await
            .map_err(err)?;
        for batch in &mut batches {
            batch.items = tx
                .query(&items, &[&batch.id])
                .await
                .map_err(err)?
                .iter()
                .map(|r| StoredItem {
                    row: to_u32(r.get(0)),
                    command_id: r.get(1),
                    email: r.get(2),
                    attempts: to_u32(r.get(3)),
                    started_at: r.get(4),
                })
                .collect();
        }
        tx.commit().await.map_err(err)?;
        Ok(batches)
    }

    /// Stores a batch about to be imported and points each command's ledger row at it, in
    /// one transaction.
    pub async fn bulk_create(
        &self,
        id: &str,
        account: &str,
        list_ids: &[String],
        items: Vec<StoredItem>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let err = |e| self.error(e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err)?;
        tx.execute(
            "INSERT INTO bulk_batches (id, account, list_ids, status, size, created_at)
             VALUES ($1, $2, $3, 'importing', $4, $5)",
            &[
                &id,
                &account,
                &serde_json::to_string(list_ids).unwrap_or_default(),
                &(items.len() as i64),
                &now,
            ],
        )
        .await
        .map_err(err)?;
        // Two statements for the whole batch (not two round trips per item): the transaction
        // holds the batch's ledger rows only as long as the statements take.
        let rows: Vec<i64> = items.iter().map(|it| i64::from(it.row)).collect();
        let command_ids: Vec<&str> = items.iter().map(|it| it.command_id.as_str()).collect();
        let emails: Vec<&str> = items.iter().map(|it| it.email.as_str()).collect();
        let attempts: Vec<i64> = items.iter().map(|it| i64::from(it.attempts)).collect();
        let started: Vec<DateTime<Utc>> = items.iter().map(|it| it.started_at).collect();
        tx.execute(
            "INSERT INTO bulk_items (batch_id, row, command_id, email, attempts, started_at)
             SELECT $1, r, c, e, a, s
             FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[])
                  AS t(r, c, e, a, s)",
            &[&id, &rows, &command_ids, &emails, &attempts, &started],
        )
        .await
        .map_err(err)?;
        let reference = format!("batch:{id}");
        tx.execute(
            "UPDATE command_ledger SET effect_ref = $3 WHERE account = $1 AND command_id = ANY($2)",
            &[&account, &command_ids, &reference],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)
    }

    /// The import was accepted: remember its activity.
    pub async fn bulk_set_activity(&self, id: &str, activity_id: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE bulk_batches SET activity_id = $2, status = 'polling' WHERE id = $1",
                &[&id, &activity_id],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Ends a batch (`done`, `failed` or `abandoned`).
    pub async fn bulk_set_status(
        &self,
        id: &str,
        status: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE bulk_batches SET status = $2, finished_at = $3 WHERE id = $1",
                &[&id, &status, &now],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Stores many final results in one transaction (never overwriting a stored result).
    /// Each entry: (command_id, command_type, outcome, result JSON).
    pub async fn bulk_finish_all(
        &self,
        account: &str,
        results: Vec<(String, String, String, String)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let err = |e| self.error(e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err)?;
        // One statement for all of them (not a round trip each, holding the rows meanwhile).
        // A command named twice keeps its first result, as a stored result is never
        // overwritten (and one statement may not update a row twice).
        let mut seen = std::collections::HashSet::new();
        let results: Vec<_> = results
            .iter()
            .filter(|(id, ..)| seen.insert(id.as_str()))
            .collect();
        let ids: Vec<&str> = results.iter().map(|r| r.0.as_str()).collect();
        let types: Vec<&str> = results.iter().map(|r| r.1.as_str()).collect();
        let outcomes: Vec<&str> = results.iter().map(|r| r.2.as_str()).collect();
        let bodies: Vec<&str> = results.iter().map(|r| r.3.as_str()).collect();
        tx.execute(
            "INSERT INTO command_ledger (account, command_id, type, status, attempts, outcome, result, received_at, finished_at)
             SELECT $1, c, t, 'done', 1, o, r, $6, $6
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(c, t, o, r)
             ON CONFLICT (account, command_id) DO UPDATE SET
                 status = 'done', outcome = excluded.outcome, result = excluded.result,
                 finished_at = excluded.finished_at, owner = NULL, lease_until = NULL
             WHERE command_ledger.status <> 'done'",
            &[&account, &ids, &types, &outcomes, &bodies, &now],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)
    }

    /// Deletes up to `limit` ended batches that ended before `before`, with their items;
    /// returns how many batches. Open batches are never deleted.
    pub(crate) async fn bulk_prune_ended(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let err = |e| self.error(e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err)?;
        let ended: Vec<String> = tx
            .query(
                "SELECT id FROM bulk_batches
                 WHERE status IN ('done', 'failed', 'abandoned') AND finished_at < $1
                 ORDER BY finished_at LIMIT $2 FOR UPDATE",
                &[&before, &(limit as i64)],
            )
            .await
            .map_err(err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        tx.execute("DELETE FROM bulk_items WHERE batch_id = ANY($1)", &[&ended])
            .await
            .map_err(err)?;
        tx.execute("DELETE FROM bulk_batches WHERE id = ANY($1)", &[&ended])
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(ended.len())
    }

    /// The status of a batch, if it exists.
    #[cfg(test)]
    pub(crate) async fn bulk_status(&self, id: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_opt("SELECT status FROM bulk_batches WHERE id = $1", &[&id])
            .await
            .map_err(|e| self.error(e))?
            .map(|r| r.get(0)))
    }
}
