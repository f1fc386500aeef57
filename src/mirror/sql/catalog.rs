//! Custom fields and contact lists. Both are listed in full on every run; rows the listing no
//! longer has are removed at its end, with the contact values or memberships that pointed at
//! them (the API hides a deleted field's values and strips a deleted list's members without
//! touching the contacts' `updated_at`, so a contacts pass alone would never notice).

use rusqlite::{Connection, params};

use super::instant;
use crate::api::model::{ContactList, CustomField};
use crate::store::StoreError;

/// Upserts custom fields, marking them seen by `seen_run`.
pub fn write_fields(
    conn: &Connection,
    account: &str,
    fields: &[CustomField],
    seen_run: i64,
    now: &str,
) -> Result<u64, StoreError> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO custom_fields (account, custom_field_id, name, label, type, created_at,
             updated_at, mirrored_at, seen_run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (account, custom_field_id) DO UPDATE SET
             name = excluded.name, label = excluded.label, type = excluded.type,
             created_at = excluded.created_at, updated_at = excluded.updated_at,
             mirrored_at = excluded.mirrored_at, seen_run = excluded.seen_run",
    )?;
    for field in fields {
        upsert.execute(params![
            account,
            field.custom_field_id,
            field.name.clone().unwrap_or_default(),
            field.label,
            Some(field.field_type.as_str()).filter(|t| !t.is_empty()),
            field.created_at.as_ref().map(instant),
            field.updated_at.as_ref().map(instant),
            now,
            seen_run
        ])?;
    }
    Ok(fields.len() as u64)
}

/// Removes custom fields the listing `seen_run` did not show, and every value of them.
pub fn remove_unseen_fields(
    conn: &Connection,
    account: &str,
    seen_run: i64,
) -> Result<u64, StoreError> {
    conn.execute(
        "DELETE FROM contact_custom_field_values
         WHERE account = ?1 AND custom_field_id IN (
             SELECT custom_field_id FROM custom_fields
             WHERE account = ?1 AND (seen_run IS NULL OR seen_run <> ?2))",
        params![account, seen_run],
    )?;
    let removed = conn.execute(
        "DELETE FROM custom_fields WHERE account = ?1 AND (seen_run IS NULL OR seen_run <> ?2)",
        params![account, seen_run],
    )?;
    Ok(removed as u64)
}

/// Upserts lists (deleted ones included, with `deleted_at`), marking them seen by `seen_run`.
pub fn write_lists(
    conn: &Connection,
    account: &str,
    lists: &[ContactList],
    seen_run: i64,
    now: &str,
) -> Result<u64, StoreError> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO contact_lists (account, list_id, name, description, favorite,
             membership_count, created_at, updated_at, deleted_at, mirrored_at, seen_run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (account, list_id) DO UPDATE SET
             name = excluded.name, description = excluded.description,
             favorite = excluded.favorite, membership_count = excluded.membership_count,
             created_at = excluded.created_at, updated_at = excluded.updated_at,
             deleted_at = excluded.deleted_at, mirrored_at = excluded.mirrored_at,
             seen_run = excluded.seen_run",
    )?;
    for list in lists {
        upsert.execute(params![
            account,
            list.list_id,
            list.name,
            list.description.as_deref().filter(|d| !d.is_empty()),
            list.favorite,
            list.membership_count.map(|c| c as i64),
            list.created_at.as_ref().map(instant),
            list.updated_at.as_ref().map(instant),
            list.deleted_at.as_ref().map(instant),
            now,
            seen_run
        ])?;
    }
    Ok(lists.len() as u64)
}

/// Removes lists the listing `seen_run` did not show, and drops the memberships of those and
/// of deleted lists.
pub fn remove_unseen_lists(
    conn: &Connection,
    account: &str,
    seen_run: i64,
) -> Result<u64, StoreError> {
    conn.execute(
        "DELETE FROM contact_list_memberships
         WHERE account = ?1 AND list_id IN (
             SELECT list_id FROM contact_lists
             WHERE account = ?1
               AND (seen_run IS NULL OR seen_run <> ?2 OR deleted_at IS NOT NULL))",
        params![account, seen_run],
    )?;
    let removed = conn.execute(
        "DELETE FROM contact_lists WHERE account = ?1 AND (seen_run IS NULL OR seen_run <> ?2)",
        params![account, seen_run],
    )?;
    Ok(removed as u64)
}
