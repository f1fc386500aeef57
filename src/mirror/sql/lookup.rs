//! Contacts found by e-mail address (mirror migration 0006): for the commands that name
//! contacts by address (`contact.tag`, `contact.untag`, `list.add_contacts`,
//! `list.remove_contacts`), the id of the one live contact the mirror holds with each
//! address. Addresses match without regard to ASCII case, as the index
//! `contacts_by_folded_email` folds them; the helpers here are both engines'.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use crate::store::StoreError;

/// An address as the mirror's index folds it: ASCII letters lowered, anything else kept
/// (SQLite's `lower()`; PostgreSQL's `lower()` in the C collation).
pub fn fold(email: &str) -> String {
    email.to_ascii_lowercase()
}

/// For each of `emails`, in order, the contact id `found` holds under its folded address
/// when exactly one contact has it (none, or two contacts whose addresses differ only in
/// case, is no answer: the API decides).
pub fn in_order(emails: &[String], found: &HashMap<String, Vec<String>>) -> Vec<Option<String>> {
    emails
        .iter()
        .map(|email| match found.get(&fold(email)).map(Vec::as_slice) {
            Some([id]) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// The live contacts (not deleted, not erased) of `account` whose folded address is `?2`;
/// at most two (two mean the address is no answer).
pub(crate) const LIVE_BY_FOLDED_EMAIL: &str = "
SELECT c.contact_id FROM contacts AS c
WHERE c.account = ?1 AND lower(c.email_address) = ?2 AND c.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM erased_contacts AS e
                  WHERE e.account = c.account AND e.contact_id = c.contact_id)
LIMIT 2";

/// For each of `emails`, in order, the id of the one live contact of `account` the mirror
/// holds with that address (one index look-up each).
pub fn live_ids_by_email(
    conn: &Connection,
    account: &str,
    emails: &[String],
) -> Result<Vec<Option<String>>, StoreError> {
    let mut look = conn.prepare_cached(LIVE_BY_FOLDED_EMAIL)?;
    let mut found: HashMap<String, Vec<String>> = HashMap::new();
    for email in emails {
        let folded = fold(email);
        if found.contains_key(&folded) {
            continue;
        }
        let ids = look
            .query_map(params![account, folded], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        found.insert(folded, ids);
    }
    Ok(in_order(emails, &found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_look_up_searches_the_folded_address_index() -> Result<(), Box<dyn std::error::Error>> {
        let mut conn = Connection::open_in_memory()?;
        crate::store::migrate::migrate_mirror(&mut conn)?;
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {LIVE_BY_FOLDED_EMAIL}"))?
            .query_map(params!["acme", "ann@example.com"], |r| r.get(3))?
            .collect::<Result<_, _>>()?;
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX contacts_by_folded_email")),
            "{plan:?}"
        );
        Ok(())
    }

    #[test]
    fn addresses_fold_ascii_letters_only_and_a_doubled_address_is_no_answer() {
        assert_eq!(fold("Zoë.ÉTÉ@Example.COM"), "zoë.ÉtÉ@example.com");
        let found = HashMap::from([
            ("ann@example.com".to_owned(), vec!["c1".to_owned()]),
            ("dup@example.com".to_owned(), vec!["c4".into(), "c5".into()]),
        ]);
        let emails = ["ANN@example.com", "dup@example.com", "x@example.com"].map(String::from);
        assert_eq!(
            in_order(&emails, &found),
            [Some("c1".to_owned()), None, None]
        );
    }
}
