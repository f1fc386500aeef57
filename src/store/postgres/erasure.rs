//! Erasing a contact's personal data from the state store on PostgreSQL: the same as
//! [`crate::store::erasure`] on SQLite.

use super::PgStore;
use crate::store::erasure::{Scrubbed, scrub_result};
use crate::store::error::StoreError;

impl PgStore {
    /// See [`crate::store::Store::ledger_scrub_contact`]: in one transaction, the rows read
    /// are locked until the scrubbed results are written.
    pub async fn ledger_scrub_contact(
        &self,
        account: &str,
        contact_id: &str,
        email: Option<&str>,
    ) -> Result<Scrubbed, StoreError> {
        let err = |e| self.error(e);
        let email = email.map(str::to_ascii_lowercase);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err)?;
        let candidates = tx
            .query(
                "SELECT command_id, result FROM command_ledger
                 WHERE account = $1 AND status = 'done' AND type <> 'contact.erase'
                   AND result IS NOT NULL
                   AND (strpos(result, $2) > 0
                        OR ($3::text IS NOT NULL
                            AND strpos(lower(result COLLATE \"C\"), $3::text) > 0))
                 FOR UPDATE",
                &[&account, &contact_id, &email],
            )
            .await
            .map_err(err)?;
        let mut scrubbed = Scrubbed::default();
        for row in candidates {
            let command_id: String = row.get(0);
            let result: String = row.get(1);
            if let Some(clean) = scrub_result(&result, contact_id, email.as_deref()) {
                tx.execute(
                    "UPDATE command_ledger SET result = $3 WHERE account = $1 AND command_id = $2",
                    &[&account, &command_id, &clean],
                )
                .await
                .map_err(err)?;
                scrubbed.results += 1;
            }
        }
        if let Some(email) = &email {
            scrubbed.bulk_items = tx
                .execute(
                    "UPDATE bulk_items SET email = '' WHERE lower(email COLLATE \"C\") = $2 AND batch_id IN (
                         SELECT id FROM bulk_batches
                         WHERE account = $1 AND status IN ('done', 'failed', 'abandoned'))",
                    &[&account, email],
                )
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(scrubbed)
    }
}
