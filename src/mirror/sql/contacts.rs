//! Contacts, their custom-field values and list memberships. A contact is upserted by id and
//! its values and memberships replaced; a deleted contact stays, with `deleted_at` (the API
//! keeps it too, and strips its memberships).

use rusqlite::{Connection, OptionalExtension, params};

use crate::mirror::ContactRow;
use crate::store::StoreError;

/// What a batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub upserted: u64,
    /// Contacts that were live in the mirror and are deleted now.
    pub deleted: u64,
}

const UPSERT: &str = "
INSERT INTO contacts (account, contact_id, email_address, permission_to_send, confirm_status,
    opt_in_source, opt_in_date, opt_out_source, opt_out_date, opt_out_reason, first_name,
    last_name, job_title, company_name, birthday_month, birthday_day, anniversary,
    create_source, update_source, created_at, updated_at, deleted_at, mirrored_at, seen_run)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
    ?20, ?21, ?22, ?23, ?24)
ON CONFLICT (account, contact_id) DO UPDATE SET
    email_address = excluded.email_address, permission_to_send = excluded.permission_to_send,
    confirm_status = excluded.confirm_status, opt_in_source = excluded.opt_in_source,
    opt_in_date = excluded.opt_in_date, opt_out_source = excluded.opt_out_source,
    opt_out_date = excluded.opt_out_date, opt_out_reason = excluded.opt_out_reason,
    first_name = excluded.first_name, last_name = excluded.last_name,
    job_title = excluded.job_title, company_name = excluded.company_name,
    birthday_month = excluded.birthday_month, birthday_day = excluded.birthday_day,
    anniversary = excluded.anniversary, create_source = excluded.create_source,
    update_source = excluded.update_source, created_at = excluded.created_at,
    updated_at = excluded.updated_at, deleted_at = excluded.deleted_at,
    mirrored_at = excluded.mirrored_at,
    seen_run = coalesce(excluded.seen_run, contacts.seen_run)";

/// Writes `rows`. `seen_run` marks them as seen by a full pass (incremental passes pass `None`).
pub fn write(
    conn: &Connection,
    account: &str,
    rows: &[ContactRow],
    seen_run: Option<i64>,
    now: &str,
) -> Result<Written, StoreError> {
    let mut was_live = conn.prepare_cached(
        "SELECT deleted_at IS NULL FROM contacts WHERE account = ?1 AND contact_id = ?2",
    )?;
    let mut upsert = conn.prepare_cached(UPSERT)?;
    let mut clear_values = conn.prepare_cached(
        "DELETE FROM contact_custom_field_values WHERE account = ?1 AND contact_id = ?2",
    )?;
    let mut add_value = conn.prepare_cached(
        "INSERT OR REPLACE INTO contact_custom_field_values
             (account, contact_id, custom_field_id, value) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut clear_lists = conn.prepare_cached(
        "DELETE FROM contact_list_memberships WHERE account = ?1 AND contact_id = ?2",
    )?;
    let mut add_list = conn.prepare_cached(
        "INSERT OR IGNORE INTO contact_list_memberships (account, contact_id, list_id)
         VALUES (?1, ?2, ?3)",
    )?;
    let mut written = Written::default();
    for row in rows {
        let id = row.contact_id.as_str();
        // One look tells whether the contact is new (then it has no values or memberships
        // to clear: two index searches saved, most of a first full mirror) and whether a
        // deletion is news.
        let live: Option<bool> = was_live
            .query_row(params![account, id], |r| r.get(0))
            .optional()?;
        if row.deleted_at.is_some() && live == Some(true) {
            written.deleted += 1;
        }
        upsert.execute(params![
            account,
            id,
            row.email_address,
            row.permission_to_send,
            row.confirm_status,
            row.opt_in_source,
            row.opt_in_date,
            row.opt_out_source,
            row.opt_out_date,
            row.opt_out_reason,
            row.first_name,
            row.last_name,
            row.job_title,
            row.company_name,
            row.birthday_month,
            row.birthday_day,
            row.anniversary,
            row.create_source,
            row.update_source,
            row.created_at,
            row.updated_at,
            row.deleted_at,
            now,
            seen_run
        ])?;
        if live.is_some() {
            clear_values.execute(params![account, id])?;
        }
        for (field, value) in &row.custom_fields {
            add_value.execute(params![account, id, field, value])?;
        }
        if live.is_some() {
            clear_lists.execute(params![account, id])?;
        }
        for list in &row.list_ids {
            add_list.execute(params![account, id, list])?;
        }
        written.upserted += 1;
    }
    Ok(written)
}

/// Removes the contacts a complete full pass did not see (gone from the account altogether),
/// with their values and memberships (deleted explicitly rather than left to the cascade, so
/// the work does not depend on the connection's `foreign_keys` setting).
pub fn remove_unseen(conn: &Connection, account: &str, seen_run: i64) -> Result<u64, StoreError> {
    for table in ["contact_custom_field_values", "contact_list_memberships"] {
        conn.execute(
            &format!(
                "DELETE FROM {table} WHERE account = ?1 AND contact_id IN (
                     SELECT contact_id FROM contacts
                     WHERE account = ?1 AND (seen_run IS NULL OR seen_run <> ?2))"
            ),
            params![account, seen_run],
        )?;
    }
    let removed = conn.execute(
        "DELETE FROM contacts WHERE account = ?1 AND (seen_run IS NULL OR seen_run <> ?2)",
        params![account, seen_run],
    )?;
    Ok(removed as u64)
}
