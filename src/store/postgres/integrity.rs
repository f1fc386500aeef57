//! The start-up check and the failing-store probe on PostgreSQL. The server looks after its
//! own pages (checksums, WAL replay), so the start-up check asks what ctct-sync can see: that
//! each of its tables exists in the schema and can be read to the end. The probe is the
//! SQLite probe's write and reads.

use tokio_postgres::error::SqlState;

use super::PgStore;
use crate::store::error::StoreError;
use crate::store::integrity::OWN_TABLES;

/// The tables checked at start: SQLite's list and the budget's holds.
fn checked_tables() -> impl Iterator<Item = &'static str> {
    OWN_TABLES.iter().copied().chain(["rate_budget_holds"])
}

impl PgStore {
    /// Reads every row of each of ctct-sync's own tables; a missing or unreadable table is
    /// named in a [`StoreError::Damaged`]. An unreachable server is reported as such.
    pub async fn integrity_check_own_tables(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        for table in checked_tables() {
            if let Err(e) = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
            {
                let problems = match e.as_db_error() {
                    Some(db) if *db.code() == SqlState::UNDEFINED_TABLE => {
                        format!("the table is missing from schema {}", self.schema())
                    }
                    Some(db) => db.message().to_owned(),
                    None => return Err(self.error(e)),
                };
                return Err(StoreError::Damaged { table, problems });
            }
        }
        Ok(())
    }

    /// The check of a store that failed while the daemon ran: a 16 KiB ledger row inserted
    /// and deleted in one committed transaction, and reads of the token and budget tables.
    pub async fn integrity_probe(&self) -> Result<(), StoreError> {
        let err = |e| self.error(e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err)?;
        tx.execute(
            "INSERT INTO command_ledger (account, command_id, type, status, received_at, result)
             VALUES ('', 'ctct-sync store probe', 'probe', 'in_progress', now(), repeat('x', 16384))
             ON CONFLICT (account, command_id) DO NOTHING",
            &[],
        )
        .await
        .map_err(err)?;
        tx.execute(
            "DELETE FROM command_ledger WHERE account = '' AND command_id = 'ctct-sync store probe'",
            &[],
        )
        .await
        .map_err(err)?;
        for table in ["accounts", "rate_budget", "rate_budget_holds"] {
            tx.query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }
}
