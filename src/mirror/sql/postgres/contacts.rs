//! A page of contacts on PostgreSQL, with the semantics of the SQLite `contacts::write`: each
//! contact upserted by id (`seen_run` kept when an incremental pass writes it), its values and
//! memberships replaced by the page's, and a contact live before and deleted now counted as
//! deleted. The rows travel by binary `COPY` into session-local tables (created once per
//! connection, emptied at every commit), and three `INSERT … SELECT` statements merge them.
//!
//! The statements that look the page's contacts up in the big tables take the page's ids as
//! an array (`contact_id = ANY(ARRAY(SELECT …))`), which the server can only answer by probing
//! the primary keys, once per id. A join with the page's table leaves the plan to the
//! planner's row estimates, and those are wrong while a first full pass fills the tables
//! faster than statistics follow: it chose to sort the whole values table for every page
//! (2.2 s per 2,000-contact page at 400,000 contacts, against 40 ms by the keys).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::error::PgResult;
use crate::mirror::ContactRow;
use crate::mirror::sql::contacts::Written;

/// The page's tables, in the session's own schema (`pg_temp`, named explicitly so that no
/// mirror table can be shadowed), emptied when each transaction ends.
///
/// The page's commit does not wait for the WAL flush (`synchronous_commit = off`, this
/// transaction only), as SQLite's page transactions run with `synchronous = NORMAL`: a server
/// crash may lose the last pages committed, never half a page, and a page and its pass
/// position are lost together and read again by the next run.
const PAGE_TABLES: &str = "
SET LOCAL client_min_messages = warning;
SET LOCAL synchronous_commit = off;
CREATE TEMP TABLE IF NOT EXISTS mirror_page_contacts (
    contact_id text NOT NULL, email_address text, permission_to_send text,
    confirm_status text, opt_in_source text, opt_in_date text, opt_out_source text,
    opt_out_date text, opt_out_reason text, first_name text, last_name text, job_title text,
    company_name text, birthday_month bigint, birthday_day bigint, anniversary text,
    create_source text, update_source text, created_at text, updated_at text, deleted_at text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS mirror_page_values (
    contact_id text NOT NULL, custom_field_id text NOT NULL, value text NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS mirror_page_lists (
    contact_id text NOT NULL, list_id text NOT NULL
) ON COMMIT DELETE ROWS;";

const CONTACT_COLUMNS: &str = "contact_id, email_address, permission_to_send, confirm_status,
    opt_in_source, opt_in_date, opt_out_source, opt_out_date, opt_out_reason, first_name,
    last_name, job_title, company_name, birthday_month, birthday_day, anniversary,
    create_source, update_source, created_at, updated_at, deleted_at";

/// Instants arrive as text (the API's or an export file's) and are cast by the server, so a
/// malformed one fails the page with PostgreSQL's message naming it rather than being lost.
const UPSERT: &str = "
INSERT INTO contacts (account, contact_id, email_address, permission_to_send, confirm_status,
    opt_in_source, opt_in_date, opt_out_source, opt_out_date, opt_out_reason, first_name,
    last_name, job_title, company_name, birthday_month, birthday_day, anniversary,
    create_source, update_source, created_at, updated_at, deleted_at, mirrored_at, seen_run)
SELECT $1, p.contact_id, p.email_address, p.permission_to_send, p.confirm_status,
    p.opt_in_source, nullif(p.opt_in_date, '')::timestamptz, p.opt_out_source,
    nullif(p.opt_out_date, '')::timestamptz, p.opt_out_reason, p.first_name, p.last_name,
    p.job_title, p.company_name, p.birthday_month, p.birthday_day, p.anniversary,
    p.create_source, p.update_source, nullif(p.created_at, '')::timestamptz,
    nullif(p.updated_at, '')::timestamptz, nullif(p.deleted_at, '')::date, $2, $3
FROM pg_temp.mirror_page_contacts AS p
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

/// Writes `rows` in the page's transaction. `seen_run` marks them as seen by a full pass
/// (incremental passes pass `None`). A contact twice in one page is written as its last
/// occurrence, as the row-by-row SQLite writer leaves it; every occurrence counts as upserted.
pub(super) async fn write(
    tx: &Transaction<'_>,
    account: &str,
    rows: &[ContactRow],
    seen_run: Option<i64>,
    now: DateTime<Utc>,
) -> PgResult<Written> {
    if rows.is_empty() {
        return Ok(Written::default());
    }
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        last.insert(row.contact_id.as_str(), index);
    }
    let page: Vec<&ContactRow> = rows
        .iter()
        .enumerate()
        .filter(|(index, row)| last.get(row.contact_id.as_str()) == Some(index))
        .map(|(_, row)| row)
        .collect();

    tx.batch_execute(PAGE_TABLES).await?;
    copy_contacts(tx, &page).await?;
    copy_values(tx, &page).await?;
    copy_lists(tx, &page).await?;

    let deleted: i64 = tx
        .query_one(
            "SELECT count(*) FROM contacts
             WHERE account = $1 AND deleted_at IS NULL AND contact_id = ANY(ARRAY(
                 SELECT contact_id FROM pg_temp.mirror_page_contacts
                 WHERE nullif(deleted_at, '') IS NOT NULL))",
            &[&account],
        )
        .await?
        .get(0);
    for table in ["contact_custom_field_values", "contact_list_memberships"] {
        tx.execute(
            &format!(
                "DELETE FROM {table} WHERE account = $1 AND contact_id = ANY(ARRAY(
                     SELECT contact_id FROM pg_temp.mirror_page_contacts))"
            ),
            &[&account],
        )
        .await?;
    }
    tx.execute(UPSERT, &[&account, &now, &seen_run]).await?;
    tx.execute(
        "INSERT INTO contact_custom_field_values (account, contact_id, custom_field_id, value)
         SELECT DISTINCT ON (contact_id, custom_field_id) $1, contact_id, custom_field_id, value
         FROM pg_temp.mirror_page_values
         ON CONFLICT (account, contact_id, custom_field_id) DO UPDATE SET value = excluded.value",
        &[&account],
    )
    .await?;
    tx.execute(
        "INSERT INTO contact_list_memberships (account, contact_id, list_id)
         SELECT DISTINCT $1, contact_id, list_id FROM pg_temp.mirror_page_lists
         ON CONFLICT DO NOTHING",
        &[&account],
    )
    .await?;
    Ok(Written {
        upserted: rows.len() as u64,
        deleted: deleted.max(0) as u64,
    })
}

async fn copy_contacts(tx: &Transaction<'_>, page: &[&ContactRow]) -> PgResult<()> {
    let sink = tx
        .copy_in(&format!(
            "COPY pg_temp.mirror_page_contacts ({CONTACT_COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let mut types = vec![Type::TEXT; 21];
    types[13] = Type::INT8;
    types[14] = Type::INT8;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    for row in page {
        let values: [&(dyn ToSql + Sync); 21] = [
            &row.contact_id,
            &row.email_address,
            &row.permission_to_send,
            &row.confirm_status,
            &row.opt_in_source,
            &row.opt_in_date,
            &row.opt_out_source,
            &row.opt_out_date,
            &row.opt_out_reason,
            &row.first_name,
            &row.last_name,
            &row.job_title,
            &row.company_name,
            &row.birthday_month,
            &row.birthday_day,
            &row.anniversary,
            &row.create_source,
            &row.update_source,
            &row.created_at,
            &row.updated_at,
            &row.deleted_at,
        ];
        writer.as_mut().write(&values).await?;
    }
    writer.finish().await?;
    Ok(())
}

async fn copy_values(tx: &Transaction<'_>, page: &[&ContactRow]) -> PgResult<()> {
    if page.iter().all(|row| row.custom_fields.is_empty()) {
        return Ok(());
    }
    let sink = tx
        .copy_in(
            "COPY pg_temp.mirror_page_values (contact_id, custom_field_id, value)
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(
        sink,
        &[Type::TEXT, Type::TEXT, Type::TEXT]
    ));
    for row in page {
        for (field, value) in &row.custom_fields {
            writer
                .as_mut()
                .write(&[&row.contact_id, field, value])
                .await?;
        }
    }
    writer.finish().await?;
    Ok(())
}

async fn copy_lists(tx: &Transaction<'_>, page: &[&ContactRow]) -> PgResult<()> {
    if page.iter().all(|row| row.list_ids.is_empty()) {
        return Ok(());
    }
    let sink = tx
        .copy_in("COPY pg_temp.mirror_page_lists (contact_id, list_id) FROM STDIN (FORMAT binary)")
        .await?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::TEXT]));
    for row in page {
        for list in &row.list_ids {
            writer.as_mut().write(&[&row.contact_id, list]).await?;
        }
    }
    writer.finish().await?;
    Ok(())
}
