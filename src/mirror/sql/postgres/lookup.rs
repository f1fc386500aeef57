//! Contacts found by e-mail address on PostgreSQL: the same as the SQLite statement of
//! `sql/lookup.rs`, all addresses in one query on the index `contacts_by_folded_email`
//! (`lower(email_address COLLATE "C")`, ASCII case folded as SQLite's `lower()` does).

use std::collections::HashMap;

use super::PgMirrorDb;
use super::error::PgResult;
use crate::mirror::sql::lookup::{fold, in_order};

/// The live contacts (not deleted, not erased) of `account` (`$1`) whose folded address is
/// one of `$2`, with that folded address.
pub(super) const LIVE_BY_FOLDED_EMAILS: &str = "
SELECT lower(c.email_address COLLATE \"C\"), c.contact_id FROM contacts AS c
WHERE c.account = $1 AND lower(c.email_address COLLATE \"C\") = ANY($2)
  AND c.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM erased_contacts AS e
                  WHERE e.account = c.account AND e.contact_id = c.contact_id)";

impl PgMirrorDb {
    /// See `MirrorDb::live_contact_ids_by_email`.
    pub async fn live_contact_ids_by_email(
        &self,
        account: &str,
        emails: &[String],
    ) -> PgResult<Vec<Option<String>>> {
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        let mut folded: Vec<String> = emails.iter().map(|e| fold(e)).collect();
        folded.sort();
        folded.dedup();
        let client = self.pool.get().await?;
        let rows = client
            .query(LIVE_BY_FOLDED_EMAILS, &[&account, &folded])
            .await?;
        let mut found: HashMap<String, Vec<String>> = HashMap::new();
        for row in rows {
            found.entry(row.get(0)).or_default().push(row.get(1));
        }
        Ok(in_order(emails, &found))
    }
}
