//! Erased contacts on PostgreSQL (`contact.erase`): the same as the SQLite statements of
//! `sql/erasure.rs`. A page that writes contacts or events takes `erased_contacts` in SHARE
//! mode before it reads which of its ids were erased (`contacts::erased_among`), and an erasure inserts its tombstone
//! (ROW EXCLUSIVE) before it removes the rows: the two wait for each other, so a page read
//! before an erasure committed can never write the contact back after it.

use chrono::{DateTime, Utc};

use super::PgMirrorDb;
use super::error::PgResult;
use crate::mirror::sql::erasure::{CONTACT_TABLES, ErasedRows};

impl PgMirrorDb {
    /// See `MirrorDb::erase_contact`.
    pub async fn erase_contact(
        &self,
        account: &str,
        contact_id: &str,
        command_id: &str,
        now: DateTime<Utc>,
    ) -> PgResult<ErasedRows> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let tombstoned_now = tx
            .execute(
                "INSERT INTO erased_contacts (account, contact_id, erased_at, command_id)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (account, contact_id) DO NOTHING",
                &[&account, &contact_id, &now, &command_id],
            )
            .await?
            == 1;
        let mut removed = [0u64; CONTACT_TABLES.len()];
        for (table, count) in CONTACT_TABLES.iter().zip(removed.iter_mut()) {
            *count = tx
                .execute(
                    &format!("DELETE FROM {table} WHERE account = $1 AND contact_id = $2"),
                    &[&account, &contact_id],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(ErasedRows::from_counts(removed, tombstoned_now))
    }

    /// See `MirrorDb::is_erased`.
    pub async fn is_erased(&self, account: &str, contact_id: &str) -> PgResult<bool> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM erased_contacts WHERE account = $1 AND contact_id = $2)",
                &[&account, &contact_id],
            )
            .await?;
        Ok(row.get(0))
    }
}
