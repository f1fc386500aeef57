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
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS mirror_page_tags (
    contact_id text NOT NULL, tag_id text NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS mirror_page_tagged (
    contact_id text NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS mirror_page_unchanged (
    contact_id text NOT NULL
) ON COMMIT DELETE ROWS;";

/// Empties the page tables, [`write`]'s unchanged contacts included, for another page in the
/// same transaction (they are emptied at commit otherwise): a contact left in one page's
/// tables would be written, or left out, with the next.
const CLEAR_PAGE_TABLES: &str = "
TRUNCATE pg_temp.mirror_page_contacts, pg_temp.mirror_page_values, pg_temp.mirror_page_lists,
         pg_temp.mirror_page_tags, pg_temp.mirror_page_tagged, pg_temp.mirror_page_unchanged";

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

/// The page's contacts the mirror already holds exactly as read: every column equal (compared
/// after the casts [`UPSERT`] makes, so an instant written differently is still the same
/// instant), the same custom field values, the same lists, and the same tags where the source
/// said them. The stored rows are found by their keys, each table with its own
/// `= ANY(ARRAY(…))` as in [`write`]. The comparison is made of set differences (`EXCEPT`,
/// under which two NULLs are not distinct): a contact is changed when its row, one of its
/// values, lists or said tags is on one side only, and unchanged when it is stored and not
/// changed. No join: the page tables have no statistics, and a join's estimate once left the
/// server aggregating the page's lists again for every contact (over 1 s per page).
const UNCHANGED: &str = "
WITH stored AS MATERIALIZED (
    SELECT c.contact_id, c.email_address, c.permission_to_send, c.confirm_status,
           c.opt_in_source, c.opt_in_date, c.opt_out_source, c.opt_out_date, c.opt_out_reason,
           c.first_name, c.last_name, c.job_title, c.company_name, c.birthday_month,
           c.birthday_day, c.anniversary, c.create_source, c.update_source, c.created_at,
           c.updated_at, c.deleted_at
    FROM contacts AS c
    WHERE c.account = $1
      AND c.contact_id = ANY(ARRAY(SELECT contact_id FROM pg_temp.mirror_page_contacts))
), stored_values AS MATERIALIZED (
    SELECT v.contact_id, v.custom_field_id, v.value FROM contact_custom_field_values AS v
    WHERE v.account = $1
      AND v.contact_id = ANY(ARRAY(SELECT contact_id FROM pg_temp.mirror_page_contacts))
), stored_lists AS MATERIALIZED (
    SELECT m.contact_id, m.list_id FROM contact_list_memberships AS m
    WHERE m.account = $1
      AND m.contact_id = ANY(ARRAY(SELECT contact_id FROM pg_temp.mirror_page_contacts))
), stored_tags AS MATERIALIZED (
    SELECT t.contact_id, t.tag_id FROM contact_taggings AS t
    WHERE t.account = $1
      AND t.contact_id = ANY(ARRAY(SELECT contact_id FROM pg_temp.mirror_page_tagged))
), changed AS (
    SELECT contact_id FROM (
        SELECT p.contact_id, p.email_address, p.permission_to_send, p.confirm_status,
               p.opt_in_source, nullif(p.opt_in_date, '')::timestamptz, p.opt_out_source,
               nullif(p.opt_out_date, '')::timestamptz, p.opt_out_reason, p.first_name,
               p.last_name, p.job_title, p.company_name, p.birthday_month, p.birthday_day,
               p.anniversary, p.create_source, p.update_source,
               nullif(p.created_at, '')::timestamptz, nullif(p.updated_at, '')::timestamptz,
               nullif(p.deleted_at, '')::date
        FROM pg_temp.mirror_page_contacts AS p
        EXCEPT SELECT * FROM stored
    ) AS contact_rows
    UNION ALL
    SELECT contact_id FROM (
        SELECT contact_id, custom_field_id, value FROM pg_temp.mirror_page_values
        EXCEPT SELECT * FROM stored_values
    ) AS values_read_only
    UNION ALL
    SELECT contact_id FROM (
        SELECT * FROM stored_values
        EXCEPT SELECT contact_id, custom_field_id, value FROM pg_temp.mirror_page_values
    ) AS values_stored_only
    UNION ALL
    SELECT contact_id FROM (
        SELECT contact_id, list_id FROM pg_temp.mirror_page_lists
        EXCEPT SELECT * FROM stored_lists
    ) AS lists_read_only
    UNION ALL
    SELECT contact_id FROM (
        SELECT * FROM stored_lists
        EXCEPT SELECT contact_id, list_id FROM pg_temp.mirror_page_lists
    ) AS lists_stored_only
    UNION ALL
    SELECT contact_id FROM (
        SELECT contact_id, tag_id FROM pg_temp.mirror_page_tags
        EXCEPT SELECT * FROM stored_tags
    ) AS tags_read_only
    UNION ALL
    SELECT contact_id FROM (
        SELECT * FROM stored_tags
        EXCEPT SELECT contact_id, tag_id FROM pg_temp.mirror_page_tags
    ) AS tags_stored_only
)
INSERT INTO pg_temp.mirror_page_unchanged (contact_id)
SELECT contact_id FROM stored
EXCEPT SELECT contact_id FROM changed";

/// Takes the page's unchanged contacts ([`UNCHANGED`]) out of its tables, and for a full pass
/// notes them in `contacts_seen` so that the pass's end keeps them.
async fn leave_unchanged(
    tx: &Transaction<'_>,
    account: &str,
    seen_run: Option<i64>,
) -> PgResult<()> {
    if tx.execute(UNCHANGED, &[&account]).await? == 0 {
        return Ok(());
    }
    for table in [
        "mirror_page_contacts",
        "mirror_page_values",
        "mirror_page_lists",
        "mirror_page_tags",
        "mirror_page_tagged",
    ] {
        tx.execute(
            &format!(
                "DELETE FROM pg_temp.{table} WHERE contact_id IN (
                     SELECT contact_id FROM pg_temp.mirror_page_unchanged)"
            ),
            &[],
        )
        .await?;
    }
    if seen_run.is_some() {
        tx.execute(
            "INSERT INTO contacts_seen (account, contact_id)
             SELECT $1, contact_id FROM pg_temp.mirror_page_unchanged",
            &[&account],
        )
        .await?;
    }
    Ok(())
}

/// Writes `rows` in the page's transaction. `seen_run` marks them as seen by a full pass
/// (incremental passes pass `None`). A contact the mirror already holds exactly as read is not
/// rewritten (its row, `mirrored_at` and `seen_run` stay as they were; a full pass notes it in
/// `contacts_seen`), as on SQLite. A contact twice in one page is written as its last
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
    copy_tags(tx, &page).await?;
    leave_unchanged(tx, account, seen_run).await?;

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
    // Taggings are replaced only for the contacts whose source said what they are.
    tx.execute(
        "DELETE FROM contact_taggings WHERE account = $1 AND contact_id = ANY(ARRAY(
             SELECT contact_id FROM pg_temp.mirror_page_tagged))",
        &[&account],
    )
    .await?;
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
    tx.execute(
        "INSERT INTO contact_taggings (account, contact_id, tag_id)
         SELECT DISTINCT $1, contact_id, tag_id FROM pg_temp.mirror_page_tags
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
        let values: [&(dyn ToSql + Sync); 21] =
            crate::mirror::sql::contact_fields!([&row.contact_id], row, []);
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

/// The page's taggings, and which contacts they are known for (a contact whose source did not
/// say keeps its taggings).
async fn copy_tags(tx: &Transaction<'_>, page: &[&ContactRow]) -> PgResult<()> {
    if page.iter().all(|row| row.tag_ids.is_none()) {
        return Ok(());
    }
    let sink = tx
        .copy_in("COPY pg_temp.mirror_page_tagged (contact_id) FROM STDIN (FORMAT binary)")
        .await?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &[Type::TEXT]));
    for row in page.iter().filter(|row| row.tag_ids.is_some()) {
        writer.as_mut().write(&[&row.contact_id]).await?;
    }
    writer.finish().await?;
    if page
        .iter()
        .all(|row| row.tag_ids.as_ref().is_none_or(Vec::is_empty))
    {
        return Ok(());
    }
    let sink = tx
        .copy_in("COPY pg_temp.mirror_page_tags (contact_id, tag_id) FROM STDIN (FORMAT binary)")
        .await?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::TEXT]));
    for row in page {
        for tag in row.tag_ids.iter().flatten() {
            writer.as_mut().write(&[&row.contact_id, tag]).await?;
        }
    }
    writer.finish().await?;
    Ok(())
}

/// Empties `account`'s part of `contacts_load` and `contacts_seen` (mirror migration 0003).
pub(super) async fn clear_load(tx: &Transaction<'_>, account: &str) -> PgResult<()> {
    tx.execute("DELETE FROM contacts_seen WHERE account = $1", &[&account])
        .await?;
    clear_held(tx, account).await
}

/// Empties `account`'s part of `contacts_load`.
async fn clear_held(tx: &Transaction<'_>, account: &str) -> PgResult<()> {
    tx.execute("DELETE FROM contacts_load WHERE account = $1", &[&account])
        .await?;
    Ok(())
}

/// Contacts merged per [`write`] while applying held rows.
const APPLY_BATCH: usize = 1_000;

/// Moves `account`'s rows held in `contacts_load` into the contacts tables (the copy read
/// last wins) and empties its part of the table.
pub(super) async fn apply_load(
    tx: &Transaction<'_>,
    account: &str,
    seen_run: Option<i64>,
    now: DateTime<Utc>,
) -> PgResult<Written> {
    let held: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM contacts_load WHERE account = $1)",
            &[&account],
        )
        .await?
        .get(0);
    if !held {
        return Ok(Written::default());
    }
    if holds_load(tx, account).await? {
        return move_held_fresh(tx, account, seen_run, now).await;
    }
    // Into an account that has contacts (a store copy brought a SQLite pass in progress):
    // through the page merge, a batch at a time. The page tables, empty: the page written before in this transaction has been merged.
    tx.batch_execute(PAGE_TABLES).await?;
    tx.batch_execute(CLEAR_PAGE_TABLES).await?;
    // A cursor streams the rows in key order while the same transaction writes them.
    tx.execute(
        &format!(
            "DECLARE mirror_load NO SCROLL CURSOR FOR
             SELECT contact_id, {CONTACT_COLUMNS}, custom_fields, list_ids, tag_ids
             FROM contacts_load WHERE account = '{}'
             ORDER BY contact_id, seq",
            account.replace('\'', "''")
        ),
        &[],
    )
    .await?;
    let mut written = Written::default();
    let mut pending: Option<ContactRow> = None;
    loop {
        let fetched = tx
            .query(&format!("FETCH {APPLY_BATCH} FROM mirror_load"), &[])
            .await?;
        let done = fetched.is_empty();
        let mut batch = Vec::with_capacity(fetched.len());
        for row in &fetched {
            let contact = held_row(row)?;
            if let Some(previous) = pending.take()
                && previous.contact_id != contact.contact_id
            {
                batch.push(previous);
            }
            pending = Some(contact);
        }
        if done {
            batch.extend(pending.take());
        }
        let part = write(tx, account, &batch, seen_run, now).await?;
        written.upserted += part.upserted;
        written.deleted += part.deleted;
        tx.batch_execute(CLEAR_PAGE_TABLES).await?;
        if done {
            break;
        }
    }
    tx.batch_execute("CLOSE mirror_load").await?;
    clear_held(tx, account).await?;
    Ok(written)
}

/// Whether a full pass's page is held in `contacts_load`: the mirror has no contact of
/// `account` (see the SQLite store's `contacts::holds_load`).
pub(super) async fn holds_load(tx: &Transaction<'_>, account: &str) -> PgResult<bool> {
    Ok(tx
        .query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM contacts WHERE account = $1)",
            &[&account],
        )
        .await?
        .get(0))
}

/// Appends `rows` to `contacts_load` by binary `COPY`, numbered after the rows already there
/// (under a transaction-scoped lock, so that two accounts' passes number apart).
pub(super) async fn hold(
    tx: &Transaction<'_>,
    account: &str,
    rows: &[ContactRow],
) -> PgResult<Written> {
    if rows.is_empty() {
        return Ok(Written::default());
    }
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('ctct-sync contacts_load', 0))",
        &[],
    )
    .await?;
    let last: i64 = tx
        .query_one("SELECT coalesce(max(seq), 0) FROM contacts_load", &[])
        .await?
        .get(0);
    let sink = tx
        .copy_in(&format!(
            "COPY contacts_load (seq, account, {CONTACT_COLUMNS}, custom_fields, list_ids,
                 tag_ids)
             FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let mut types = vec![Type::TEXT; 26];
    types[0] = Type::INT8;
    types[15] = Type::INT8;
    types[16] = Type::INT8;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    for (index, row) in rows.iter().enumerate() {
        let seq = last + index as i64 + 1;
        let (values, lists) =
            crate::mirror::sql::contacts::held_values_and_lists(row).map_err(|error| {
                super::error::PgMirrorError::Held(format!("a contact could not be held: {error}"))
            })?;
        let tags = crate::mirror::sql::contacts::held_tags(row).map_err(|error| {
            super::error::PgMirrorError::Held(format!("a contact could not be held: {error}"))
        })?;
        let fields: [&(dyn ToSql + Sync); 26] = crate::mirror::sql::contact_fields!(
            [&seq, &account, &row.contact_id],
            row,
            [&values, &lists, &tags]
        );
        writer.as_mut().write(&fields).await?;
    }
    writer.finish().await?;
    Ok(Written {
        upserted: rows.len() as u64,
        deleted: 0,
    })
}

/// The held rows of an account without contacts, moved in three set-based inserts (the copy
/// read last of each contact, decoded by the server).
const MOVE_HELD: &str = "
WITH last AS MATERIALIZED (
    SELECT DISTINCT ON (contact_id) *
    FROM contacts_load WHERE account = $1
    ORDER BY contact_id, seq DESC
), moved AS (
    INSERT INTO contacts (account, contact_id, email_address, permission_to_send,
        confirm_status, opt_in_source, opt_in_date, opt_out_source, opt_out_date,
        opt_out_reason, first_name, last_name, job_title, company_name, birthday_month,
        birthday_day, anniversary, create_source, update_source, created_at, updated_at,
        deleted_at, mirrored_at, seen_run)
    SELECT $1, contact_id, email_address, permission_to_send, confirm_status, opt_in_source,
        nullif(opt_in_date, '')::timestamptz, opt_out_source,
        nullif(opt_out_date, '')::timestamptz, opt_out_reason, first_name, last_name,
        job_title, company_name, birthday_month, birthday_day, anniversary, create_source,
        update_source, nullif(created_at, '')::timestamptz,
        nullif(updated_at, '')::timestamptz, nullif(deleted_at, '')::date, $2, $3
    FROM last ORDER BY contact_id
    RETURNING 1
), values_moved AS (
    INSERT INTO contact_custom_field_values (account, contact_id, custom_field_id, value)
    SELECT $1, contact_id, f->>0, f->>1
    FROM last, jsonb_array_elements(custom_fields::jsonb) AS f
    WHERE custom_fields IS NOT NULL
    ORDER BY contact_id, f->>0
    RETURNING 1
), lists_moved AS (
    INSERT INTO contact_list_memberships (account, contact_id, list_id)
    SELECT $1, contact_id, l
    FROM last, jsonb_array_elements_text(list_ids::jsonb) AS l
    WHERE list_ids IS NOT NULL
    ORDER BY contact_id, l
    RETURNING 1
), tags_moved AS (
    INSERT INTO contact_taggings (account, contact_id, tag_id)
    SELECT $1, contact_id, t
    FROM last, jsonb_array_elements_text(tag_ids::jsonb) AS t
    WHERE tag_ids IS NOT NULL
    ORDER BY contact_id, t
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM values_moved),
       (SELECT count(*) FROM lists_moved), (SELECT count(*) FROM tags_moved)";

/// The secondary indexes of the contacts tables (no key or constraint behind them), with
/// their definitions, in the mirror's schema.
const SECONDARY_INDEXES: &str = "
SELECT i.relname::text, pg_get_indexdef(i.oid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relnamespace = current_schema()::regnamespace
  AND t.relname IN ('contacts', 'contact_custom_field_values', 'contact_list_memberships',
                    'contact_taggings')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)";

/// The foreign keys of the values and memberships to `contacts` (name, table, definition).
const CONTACT_KEYS: &str = "
SELECT c.conname::text, t.relname::text, pg_get_constraintdef(c.oid)
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
WHERE c.contype = 'f'
  AND t.relnamespace = current_schema()::regnamespace
  AND t.relname IN ('contact_custom_field_values', 'contact_list_memberships',
                    'contact_taggings')";

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Moves the held rows of an account that has no contacts: set-based. When the tables were
/// empty, their secondary indexes are built once at the end and the foreign keys of values
/// and memberships checked once, by one join each, instead of row by row.
async fn move_held_fresh(
    tx: &Transaction<'_>,
    account: &str,
    seen_run: Option<i64>,
    now: DateTime<Utc>,
) -> PgResult<Written> {
    let started = std::time::Instant::now();
    let empty: bool = tx
        .query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM contacts)
                AND NOT EXISTS (SELECT 1 FROM contact_custom_field_values)
                AND NOT EXISTS (SELECT 1 FROM contact_list_memberships)
                AND NOT EXISTS (SELECT 1 FROM contact_taggings)",
            &[],
        )
        .await?
        .get(0);
    let mut indexes: Vec<(String, String)> = Vec::new();
    let mut keys: Vec<(String, String, String)> = Vec::new();
    // The sorts of the move (the last copy of each contact) in the server's memory.
    tx.batch_execute("SET LOCAL work_mem = '64MB'").await?;
    if empty {
        keys = tx
            .query(CONTACT_KEYS, &[])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        for (name, table, _) in &keys {
            tx.batch_execute(&format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                quoted(table),
                quoted(name)
            ))
            .await?;
        }
        indexes = tx
            .query(SECONDARY_INDEXES, &[])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for (name, _) in &indexes {
            tx.batch_execute(&format!("DROP INDEX {}", quoted(name)))
                .await?;
        }
    }
    let row = tx
        .query_one(MOVE_HELD, &[&account, &now, &seen_run])
        .await?;
    let moved: i64 = row.get(0);
    let moved_s = started.elapsed().as_secs_f64();
    for (_, definition) in &indexes {
        tx.batch_execute(definition).await?;
    }
    for (name, table, definition) in &keys {
        tx.batch_execute(&format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {definition}",
            quoted(table),
            quoted(name)
        ))
        .await?;
    }
    clear_held(tx, account).await?;
    tracing::info!(
        contacts = moved,
        moved_s,
        indexes_s = started.elapsed().as_secs_f64() - moved_s,
        indexes_rebuilt = indexes.len(),
        keys_checked = keys.len(),
        "the first full pass's contacts moved into the mirror"
    );
    Ok(Written {
        upserted: moved.max(0) as u64,
        deleted: 0,
    })
}

/// A row of the cursor over `contacts_load` (`contact_id`, then the 20 columns of
/// [`CONTACT_COLUMNS`] after it, then values and lists) as a contact.
fn held_row(row: &tokio_postgres::Row) -> PgResult<ContactRow> {
    let mut contact = ContactRow {
        contact_id: row.get(0),
        email_address: row.get(2),
        permission_to_send: row.get(3),
        confirm_status: row.get(4),
        opt_in_source: row.get(5),
        opt_in_date: row.get(6),
        opt_out_source: row.get(7),
        opt_out_date: row.get(8),
        opt_out_reason: row.get(9),
        first_name: row.get(10),
        last_name: row.get(11),
        job_title: row.get(12),
        company_name: row.get(13),
        birthday_month: row.get(14),
        birthday_day: row.get(15),
        anniversary: row.get(16),
        create_source: row.get(17),
        update_source: row.get(18),
        created_at: row.get(19),
        updated_at: row.get(20),
        deleted_at: row.get(21),
        custom_fields: Vec::new(),
        list_ids: Vec::new(),
        tag_ids: None,
    };
    let values: Option<&str> = row.get(22);
    let lists: Option<&str> = row.get(23);
    let tags: Option<&str> = row.get(24);
    crate::mirror::sql::contacts::unheld_tags(&mut contact, tags).map_err(|error| {
        super::error::PgMirrorError::Held(format!("a held contact could not be read back: {error}"))
    })?;
    crate::mirror::sql::contacts::unheld_values_and_lists(&mut contact, values, lists).map_err(
        |error| {
            super::error::PgMirrorError::Held(format!(
                "a held contact could not be read back: {error}"
            ))
        },
    )?;
    Ok(contact)
}

/// Which of `ids` of `account` were erased, in the page's transaction `tx` (see the module's
/// documentation for the lock).
pub(super) async fn erased_among(
    tx: &Transaction<'_>,
    account: &str,
    ids: &[&str],
) -> PgResult<std::collections::HashSet<String>> {
    if ids.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    tx.batch_execute("LOCK TABLE erased_contacts IN SHARE MODE")
        .await?;
    let rows = tx
        .query(
            "SELECT contact_id FROM erased_contacts WHERE account = $1 AND contact_id = ANY($2)",
            &[&account, &ids],
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}
