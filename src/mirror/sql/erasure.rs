//! Erased contacts (`contact.erase`, mirror migration 0004): the contact's rows removed from
//! every mirror table that names it, and its id kept in `erased_contacts` (no personal data)
//! so that no later pass writes it back. The types here are both engines'.

use std::collections::HashSet;

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::store::StoreError;

/// What erasing a contact removed from the mirror, by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErasedRows {
    /// `contacts` (0 or 1).
    pub contacts: u64,
    pub custom_field_values: u64,
    pub list_memberships: u64,
    /// `contact_taggings` (the contact's tags).
    pub taggings: u64,
    pub tracking_events: u64,
    /// Rows a full pass in progress held for its end (`contacts_load`, `contacts_seen`).
    pub pass_rows: u64,
    /// False when the contact was tombstoned already (an erasure done before).
    pub tombstoned_now: bool,
}

/// The tables that hold a contact's rows, keyed by `(account, contact_id)`, children first.
pub const CONTACT_TABLES: [&str; 7] = [
    "contact_custom_field_values",
    "contact_list_memberships",
    "contact_taggings",
    "tracking_events",
    "contacts_load",
    "contacts_seen",
    "contacts",
];

/// Tombstones `contact_id` (first erasure kept: its time and command) and removes its rows,
/// in the caller's transaction.
pub fn erase(
    conn: &Connection,
    account: &str,
    contact_id: &str,
    command_id: &str,
    now: &str,
) -> Result<ErasedRows, StoreError> {
    let tombstoned_now = conn.execute(
        "INSERT INTO erased_contacts (account, contact_id, erased_at, command_id)
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (account, contact_id) DO NOTHING",
        params![account, contact_id, now, command_id],
    )? == 1;
    let mut removed = [0u64; CONTACT_TABLES.len()];
    for (table, count) in CONTACT_TABLES.iter().zip(removed.iter_mut()) {
        *count = conn.execute(
            &format!("DELETE FROM {table} WHERE account = ?1 AND contact_id = ?2"),
            params![account, contact_id],
        )? as u64;
    }
    Ok(ErasedRows::from_counts(removed, tombstoned_now))
}

impl ErasedRows {
    /// From the rows removed per table of [`CONTACT_TABLES`] (in its order).
    pub fn from_counts(removed: [u64; CONTACT_TABLES.len()], tombstoned_now: bool) -> Self {
        ErasedRows {
            contacts: removed[6],
            custom_field_values: removed[0],
            list_memberships: removed[1],
            taggings: removed[2],
            tracking_events: removed[3],
            pass_rows: removed[4] + removed[5],
            tombstoned_now,
        }
    }
}

/// `rows` without those whose contact (`id_of`) is among the `erased` ids; borrowed when none is.
pub fn not_erased<'r, T: Clone>(
    rows: &'r [T],
    erased: &HashSet<String>,
    id_of: impl Fn(&T) -> &str,
) -> std::borrow::Cow<'r, [T]> {
    if erased.is_empty() {
        return std::borrow::Cow::Borrowed(rows);
    }
    std::borrow::Cow::Owned(
        rows.iter()
            .filter(|r| !erased.contains(id_of(r)))
            .cloned()
            .collect(),
    )
}

/// Whether `contact_id` of `account` was erased.
pub fn is_erased(conn: &Connection, account: &str, contact_id: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM erased_contacts WHERE account = ?1 AND contact_id = ?2)",
        params![account, contact_id],
        |r| r.get(0),
    )?)
}

/// Which of `ids` were erased (one look-up each, by the primary key; nothing is read when
/// the account has no erasure).
pub fn erased_among<'a>(
    conn: &Connection,
    account: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<HashSet<String>, StoreError> {
    let any: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM erased_contacts WHERE account = ?1)")?
        .query_row(params![account], |r| r.get(0))?;
    let mut erased = HashSet::new();
    if !any {
        return Ok(erased);
    }
    let mut look = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM erased_contacts WHERE account = ?1 AND contact_id = ?2)",
    )?;
    for id in ids {
        if look.query_row(params![account, id], |r| r.get::<_, bool>(0))? {
            erased.insert(id.to_owned());
        }
    }
    Ok(erased)
}
