//! Erasing a contact's personal data from the state store (`contact.erase`): the stored
//! results of earlier commands about the contact are scrubbed, and the e-mail addresses kept
//! by ended bulk batches are blanked.
//!
//! A stored result is about the contact when its text holds the contact's id or (ASCII case
//! aside) its e-mail address. Scrubbing it ([`scrub_result`]) keeps the result message as it
//! is — command id, type, outcome, attempts, times — and changes only what names the person:
//! every object under `data` whose `contact_id` is the contact's or whose `email` is its
//! address becomes `{"contact_id": "<id>", "erased": true}` (for the contact commands that
//! is their whole `data`), and the address anywhere else in the message (an error message
//! echoing it) becomes `[erased]`. A redelivered or re-sent command answered from the ledger
//! then replays that scrubbed result (`replayed: true`), without an API call, as any stored
//! result. The stored results of `contact.erase` itself name no personal data and are left
//! as they are. The row's fingerprint (a SHA-256 of the whole command) stays, so that the
//! same command sent again still replays instead of running again.

use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::{Map, Value, json};

use super::Store;
use super::error::StoreError;

/// What replaces the e-mail address inside a scrubbed result's texts.
pub const ERASED_TEXT: &str = "[erased]";

/// What scrubbing a contact changed in the state store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scrubbed {
    /// Stored results rewritten.
    pub results: u64,
    /// `bulk_items` rows of ended batches whose address was blanked.
    pub bulk_items: u64,
}

/// `text` (a stored result message) with the contact's personal data scrubbed (see the
/// module's documentation), or `None` when nothing in it is about the contact. `email` is
/// the contact's address when known.
pub fn scrub_result(text: &str, contact_id: &str, email: Option<&str>) -> Option<String> {
    let email = email
        .map(str::to_ascii_lowercase)
        .filter(|e| !e.trim().is_empty());
    let mut value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(_) => {
            // Never written so, but then at least the address goes.
            let replaced = replace_address(text, email.as_deref()?);
            return (replaced != text).then_some(replaced);
        }
    };
    let mut changed = false;
    if let Some(data) = value.get_mut("data") {
        changed |= scrub_objects(data, contact_id, email.as_deref());
    }
    if let Some(email) = &email {
        changed |= scrub_strings(&mut value, email);
    }
    changed.then(|| value.to_string())
}

fn is_about(object: &Map<String, Value>, contact_id: &str, email: Option<&str>) -> bool {
    object.get("contact_id").and_then(Value::as_str) == Some(contact_id)
        || email.is_some_and(|email| {
            object
                .get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| e.to_ascii_lowercase() == email)
        })
}

fn scrub_objects(value: &mut Value, contact_id: &str, email: Option<&str>) -> bool {
    match value {
        Value::Object(object) if is_about(object, contact_id, email) => {
            let marker = json!({"contact_id": contact_id, "erased": true});
            if *value == marker {
                return false;
            }
            *value = marker;
            true
        }
        Value::Object(object) => object.values_mut().fold(false, |changed, child| {
            scrub_objects(child, contact_id, email) | changed
        }),
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            scrub_objects(item, contact_id, email) | changed
        }),
        _ => false,
    }
}

fn scrub_strings(value: &mut Value, email: &str) -> bool {
    match value {
        Value::String(text) => {
            let replaced = replace_address(text, email);
            let changed = replaced != *text;
            *text = replaced;
            changed
        }
        Value::Object(object) => object.values_mut().fold(false, |changed, child| {
            scrub_strings(child, email) | changed
        }),
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| scrub_strings(item, email) | changed),
        _ => false,
    }
}

/// `text` with every occurrence of `email` (lower case; compared ASCII case aside) replaced
/// by [`ERASED_TEXT`].
fn replace_address(text: &str, email: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(email) {
        out.push_str(&text[at..at + found]);
        out.push_str(ERASED_TEXT);
        at += found + email.len();
    }
    out.push_str(&text[at..]);
    out
}

/// Scrubs the stored results about the contact and blanks its address in ended bulk batches
/// of `account`, in one transaction.
pub fn scrub_contact(
    conn: &mut Connection,
    account: &str,
    contact_id: &str,
    email: Option<&str>,
) -> Result<Scrubbed, StoreError> {
    let email = email.map(str::to_ascii_lowercase);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let candidates: Vec<(String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT command_id, result FROM command_ledger
             WHERE account = ?1 AND status = 'done' AND type <> 'contact.erase'
               AND result IS NOT NULL
               AND (instr(result, ?2) > 0 OR (?3 IS NOT NULL AND instr(lower(result), ?3) > 0))",
        )?;
        stmt.query_map(params![account, contact_id, email], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?
    };
    let mut scrubbed = Scrubbed::default();
    for (command_id, result) in candidates {
        if let Some(clean) = scrub_result(&result, contact_id, email.as_deref()) {
            tx.execute(
                "UPDATE command_ledger SET result = ?3 WHERE account = ?1 AND command_id = ?2",
                params![account, command_id, clean],
            )?;
            scrubbed.results += 1;
        }
    }
    if let Some(email) = &email {
        scrubbed.bulk_items = tx.execute(
            "UPDATE bulk_items SET email = '' WHERE lower(email) = ?2 AND batch_id IN (
                 SELECT id FROM bulk_batches
                 WHERE account = ?1 AND status IN ('done', 'failed', 'abandoned'))",
            params![account, email],
        )? as u64;
    }
    tx.commit()?;
    Ok(scrubbed)
}

impl Store {
    /// [`scrub_contact`]: the personal data of the contact `contact_id` (address `email`, when
    /// known) scrubbed from the stored results and ended bulk batches of `account`.
    pub async fn ledger_scrub_contact(
        &self,
        account: &str,
        contact_id: &str,
        email: Option<&str>,
    ) -> Result<Scrubbed, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ledger_scrub_contact(account, contact_id, email).await;
        }
        let (account, id, email) = (
            account.to_owned(),
            contact_id.to_owned(),
            email.map(str::to_owned),
        );
        self.call(move |conn| scrub_contact(conn, &account, &id, email.as_deref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::scrub_result;

    const ID: &str = "07936f78-662a-11eb-af0a-fa163e56c9b0";

    #[test]
    fn a_contact_result_keeps_its_outcome_and_loses_the_person() {
        let stored = json!({
            "command_id": "c1", "type": "contact.upsert", "account": "default",
            "outcome": "succeeded", "attempts": 1, "replayed": false,
            "data": {"contact_id": ID, "email": "Pat@Example.com", "action": "created",
                     "contact": {"contact_id": ID, "first_name": "Pat", "last_name": "Lee"}},
            "error": null
        })
        .to_string();
        let clean: Value =
            serde_json::from_str(&scrub_result(&stored, ID, Some("pat@example.com")).unwrap())
                .unwrap();
        assert_eq!(clean["data"], json!({"contact_id": ID, "erased": true}));
        assert_eq!(clean["outcome"], "succeeded");
        assert_eq!(clean["command_id"], "c1");
        let again = clean.to_string();
        assert_eq!(scrub_result(&again, ID, Some("pat@example.com")), None);
    }

    #[test]
    fn an_address_is_found_by_email_and_in_texts_whatever_its_case() {
        let stored = json!({
            "outcome": "failed",
            "data": {"contact_id": null, "email": "PAT@example.com", "action": "imported"},
            "error": {"code": "api_validation", "message": "pat@EXAMPLE.com is refused"}
        })
        .to_string();
        let clean: Value =
            serde_json::from_str(&scrub_result(&stored, ID, Some("pat@example.com")).unwrap())
                .unwrap();
        assert_eq!(clean["data"], json!({"contact_id": ID, "erased": true}));
        assert_eq!(clean["error"]["message"], "[erased] is refused");
        let other = json!({"data": {"contact_id": "x", "email": "sam@example.com"}}).to_string();
        assert_eq!(scrub_result(&other, ID, Some("pat@example.com")), None);
        assert_eq!(scrub_result(&other, ID, None), None);
    }

    #[test]
    fn other_contacts_in_one_result_are_left_as_they_are() {
        let stored = json!({"data": {"contacts": [
            {"contact_id": ID, "email": "pat@example.com"},
            {"contact_id": "other", "email": "sam@example.com"}
        ]}})
        .to_string();
        let clean: Value = serde_json::from_str(&scrub_result(&stored, ID, None).unwrap()).unwrap();
        assert_eq!(
            clean["data"]["contacts"],
            json!([{"contact_id": ID, "erased": true},
                   {"contact_id": "other", "email": "sam@example.com"}])
        );
    }
}
