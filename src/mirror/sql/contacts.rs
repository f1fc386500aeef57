//! Contacts, their custom-field values, list memberships and taggings. A contact is upserted
//! by id and its values, memberships and taggings replaced (taggings only when the source said
//! what they are); a deleted contact stays, with `deleted_at` (the API
//! keeps it too, and strips its memberships).

use rusqlite::{Connection, OptionalExtension, ToSql, params};

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

/// The stored columns of a contact, in [`ContactRow`]'s order.
const STORED: &str = "
SELECT email_address, permission_to_send, confirm_status, opt_in_source, opt_in_date,
    opt_out_source, opt_out_date, opt_out_reason, first_name, last_name, job_title,
    company_name, birthday_month, birthday_day, anniversary, create_source, update_source,
    created_at, updated_at, deleted_at
FROM contacts WHERE account = ?1 AND contact_id = ?2";

/// The 20 columns of a contact that follow its id, in [`ContactRow`]'s order (`contacts`
/// and `contacts_load` both have them).
const CORE_COLUMNS: &str = "email_address, permission_to_send, confirm_status, opt_in_source,
    opt_in_date, opt_out_source, opt_out_date, opt_out_reason, first_name, last_name,
    job_title, company_name, birthday_month, birthday_day, anniversary, create_source,
    update_source, created_at, updated_at, deleted_at";

/// A contact's columns read from `r`, starting at column `at` ([`CORE_COLUMNS`]' order);
/// values and lists empty.
fn core_row(r: &rusqlite::Row<'_>, id: String, at: usize) -> rusqlite::Result<ContactRow> {
    Ok(ContactRow {
        contact_id: id,
        email_address: r.get(at)?,
        permission_to_send: r.get(at + 1)?,
        confirm_status: r.get(at + 2)?,
        opt_in_source: r.get(at + 3)?,
        opt_in_date: r.get(at + 4)?,
        opt_out_source: r.get(at + 5)?,
        opt_out_date: r.get(at + 6)?,
        opt_out_reason: r.get(at + 7)?,
        first_name: r.get(at + 8)?,
        last_name: r.get(at + 9)?,
        job_title: r.get(at + 10)?,
        company_name: r.get(at + 11)?,
        birthday_month: r.get(at + 12)?,
        birthday_day: r.get(at + 13)?,
        anniversary: r.get(at + 14)?,
        create_source: r.get(at + 15)?,
        update_source: r.get(at + 16)?,
        created_at: r.get(at + 17)?,
        updated_at: r.get(at + 18)?,
        deleted_at: r.get(at + 19)?,
        custom_fields: Vec::new(),
        list_ids: Vec::new(),
        tag_ids: None,
    })
}

/// The contact as the mirror holds it, or `None` when it has no such contact.
fn stored(
    conn: &Connection,
    account: &str,
    id: &str,
    with_values_and_lists: impl FnOnce(&ContactRow) -> bool,
) -> Result<Option<ContactRow>, StoreError> {
    let mut core = conn.prepare_cached(STORED)?;
    let found = core
        .query_row(params![account, id], |r| core_row(r, id.to_owned(), 0))
        .optional()?;
    let Some(mut found) = found else {
        return Ok(None);
    };
    if with_values_and_lists(&found) {
        let mut values = conn.prepare_cached(
            "SELECT custom_field_id, value FROM contact_custom_field_values
             WHERE account = ?1 AND contact_id = ?2 ORDER BY custom_field_id",
        )?;
        found.custom_fields = values
            .query_map(params![account, id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut lists = conn.prepare_cached(
            "SELECT list_id FROM contact_list_memberships
             WHERE account = ?1 AND contact_id = ?2 ORDER BY list_id",
        )?;
        found.list_ids = lists
            .query_map(params![account, id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut tags = conn.prepare_cached(
            "SELECT tag_id FROM contact_taggings
             WHERE account = ?1 AND contact_id = ?2 ORDER BY tag_id",
        )?;
        found.tag_ids = Some(
            tags.query_map(params![account, id], |r| r.get(0))?
                .collect::<Result<_, _>>()?,
        );
    }
    Ok(Some(found))
}

/// Whether two rows agree on every column of `contacts` (values and lists aside). Spelled
/// out field by field, so that a new column cannot be forgotten here.
fn same_columns(a: &ContactRow, b: &ContactRow) -> bool {
    let ContactRow {
        contact_id,
        email_address,
        permission_to_send,
        confirm_status,
        opt_in_source,
        opt_in_date,
        opt_out_source,
        opt_out_date,
        opt_out_reason,
        first_name,
        last_name,
        job_title,
        company_name,
        birthday_month,
        birthday_day,
        anniversary,
        create_source,
        update_source,
        created_at,
        updated_at,
        deleted_at,
        custom_fields: _,
        list_ids: _,
        tag_ids: _,
    } = a;
    *contact_id == b.contact_id
        && *email_address == b.email_address
        && *permission_to_send == b.permission_to_send
        && *confirm_status == b.confirm_status
        && *opt_in_source == b.opt_in_source
        && *opt_in_date == b.opt_in_date
        && *opt_out_source == b.opt_out_source
        && *opt_out_date == b.opt_out_date
        && *opt_out_reason == b.opt_out_reason
        && *first_name == b.first_name
        && *last_name == b.last_name
        && *job_title == b.job_title
        && *company_name == b.company_name
        && *birthday_month == b.birthday_month
        && *birthday_day == b.birthday_day
        && *anniversary == b.anniversary
        && *create_source == b.create_source
        && *update_source == b.update_source
        && *created_at == b.created_at
        && *updated_at == b.updated_at
        && *deleted_at == b.deleted_at
}

/// Writes `rows`. `seen_run` marks them as seen by a full pass (incremental passes pass
/// `None`). A contact the mirror already holds exactly as read is not rewritten: a full pass
/// notes it in `contacts_seen` (so that the pass's end keeps it) and leaves its row,
/// `mirrored_at` and `seen_run` as they were. Every row counts as upserted.
pub fn write(
    conn: &Connection,
    account: &str,
    rows: &[ContactRow],
    seen_run: Option<i64>,
    now: &str,
) -> Result<Written, StoreError> {
    write_rows(conn, account, rows, seen_run, now, false)
}

/// [`write`]; `fresh` when the mirror holds none of `rows` (a load moved into an account
/// without contacts, each contact once): nothing to look up first.
fn write_rows(
    conn: &Connection,
    account: &str,
    rows: &[ContactRow],
    seen_run: Option<i64>,
    now: &str,
    fresh: bool,
) -> Result<Written, StoreError> {
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
    let mut clear_tags =
        conn.prepare_cached("DELETE FROM contact_taggings WHERE account = ?1 AND contact_id = ?2")?;
    let mut add_tag = conn.prepare_cached(
        "INSERT OR IGNORE INTO contact_taggings (account, contact_id, tag_id) VALUES (?1, ?2, ?3)",
    )?;
    let mut seen =
        conn.prepare_cached("INSERT INTO contacts_seen (account, contact_id) VALUES (?1, ?2)")?;
    let mut written = Written::default();
    for row in rows {
        let id = row.contact_id.as_str();
        written.upserted += 1;
        // One look tells whether the contact is new (then it has no values or memberships
        // to clear: most of a first full mirror), whether it changed at all (values and
        // lists are read only when every column agrees) and whether a deletion is news.
        let mut held = if fresh {
            None
        } else {
            stored(conn, account, id, |core| same_columns(core, row))?
        };
        // A row whose source did not say its tags leaves them as they are: they cannot make
        // it differ.
        if row.tag_ids.is_none()
            && let Some(held) = held.as_mut()
        {
            held.tag_ids = None;
        }
        if held.as_ref() == Some(row) {
            if seen_run.is_some() {
                seen.execute(params![account, id])?;
            }
            continue;
        }
        let live = held.as_ref().map(|held| held.deleted_at.is_none());
        if row.deleted_at.is_some() && live == Some(true) {
            written.deleted += 1;
        }
        let values: [&dyn ToSql; 24] =
            super::contact_fields!([&account, &id], row, [&now, &seen_run]);
        upsert.execute(&values[..])?;
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
        // Taggings the source did not say are kept as they are.
        if let Some(tags) = &row.tag_ids {
            if live.is_some() {
                clear_tags.execute(params![account, id])?;
            }
            for tag in tags {
                add_tag.execute(params![account, id, tag])?;
            }
        }
    }
    Ok(written)
}

/// Removes the contacts a complete full pass did not see (gone from the account altogether):
/// neither written by it (`seen_run`) nor noted unchanged (`contacts_seen`), with their values
/// and memberships (deleted explicitly rather than left to the cascade, so the work does not
/// depend on the connection's `foreign_keys` setting). Empties the pass's notes.
pub fn remove_unseen(conn: &Connection, account: &str, seen_run: i64) -> Result<u64, StoreError> {
    const UNSEEN: &str = "SELECT contact_id FROM contacts
        WHERE account = ?1 AND (seen_run IS NULL OR seen_run <> ?2)
          AND contact_id NOT IN (SELECT contact_id FROM contacts_seen WHERE account = ?1)";
    // One scan of the contacts answers the usual case (nothing gone: a first pass, most
    // nights) without a scan of the values and memberships.
    let any: bool = conn.query_row(
        &format!("SELECT EXISTS ({UNSEEN})"),
        params![account, seen_run],
        |r| r.get(0),
    )?;
    if !any {
        clear_seen(conn, account)?;
        return Ok(0);
    }
    for table in [
        "contact_custom_field_values",
        "contact_list_memberships",
        "contact_taggings",
    ] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE account = ?1 AND contact_id IN ({UNSEEN})"),
            params![account, seen_run],
        )?;
    }
    let removed = conn.execute(
        &format!("DELETE FROM contacts WHERE account = ?1 AND contact_id IN ({UNSEEN})"),
        params![account, seen_run],
    )?;
    clear_seen(conn, account)?;
    Ok(removed as u64)
}

/// Empties `account`'s part of `contacts_seen`.
fn clear_seen(conn: &Connection, account: &str) -> Result<(), StoreError> {
    clear_account(conn, "contacts_seen", account)
}

/// Empties `account`'s rows of one of the pass's own tables (`contacts_load`,
/// `contacts_seen`).
fn clear_account(conn: &Connection, table: &str, account: &str) -> Result<(), StoreError> {
    let others: bool = conn.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE account <> ?1)"),
        params![account],
        |r| r.get(0),
    )?;
    if others {
        conn.execute(
            &format!("DELETE FROM {table} WHERE account = ?1"),
            params![account],
        )?;
    } else {
        // Without a WHERE clause SQLite drops the table's pages at once.
        conn.execute(&format!("DELETE FROM {table}"), [])?;
    }
    Ok(())
}

// --- the first full pass's holding table (`contacts_load`, mirror migration 0003) ---
//
// A full pass into an account with no contacts in the mirror appends its pages to
// `contacts_load` in arrival order, then its last page moves them into the contacts tables in
// key order: the primary keys grow at their right edge instead of taking random contact ids
// all over their B-trees, and when the tables were empty their secondary indexes are dropped
// and built once, sorted, at the end. Both happen in the last page's transaction, so the
// mirror shows the whole pass at once or not at all (and a restart resumes from the saved
// position with the rows already held).

/// The tables the load fills; their secondary indexes are rebuilt when they were empty.
const LOADED_TABLES: [&str; 4] = [
    "contacts",
    "contact_custom_field_values",
    "contact_list_memberships",
    "contact_taggings",
];

/// Contacts moved into the tables per call of [`write`] while applying a load.
const APPLY_BATCH: usize = 1_000;

/// Whether a full pass's page goes to the holding table: the mirror has no contact of
/// `account` (a first pass, a rebuild). Stable for the whole pass: only that pass writes the
/// account's contacts while it is pending, and it writes them at its end.
pub fn holds_load(conn: &Connection, account: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM contacts WHERE account = ?1)",
        params![account],
        |r| r.get(0),
    )?)
}

/// Appends `rows` to the holding table.
pub fn hold(conn: &Connection, account: &str, rows: &[ContactRow]) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO contacts_load (account, contact_id, {CORE_COLUMNS}, custom_fields, list_ids,
             tag_ids)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)"
    ))?;
    for row in rows {
        let (values, lists) = held_values_and_lists(row)
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
        let tags = held_tags(row)
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
        let held: [&dyn ToSql; 25] =
            super::contact_fields!([&account, &row.contact_id], row, [&values, &lists, &tags]);
        insert.execute(&held[..])?;
    }
    Ok(())
}

/// A row's values and lists as `contacts_load` holds them: JSON arrays, NULL when empty.
pub(crate) fn held_values_and_lists(
    row: &ContactRow,
) -> Result<(Option<String>, Option<String>), serde_json::Error> {
    let values = (!row.custom_fields.is_empty())
        .then(|| serde_json::to_string(&row.custom_fields))
        .transpose()?;
    let lists = (!row.list_ids.is_empty())
        .then(|| serde_json::to_string(&row.list_ids))
        .transpose()?;
    Ok((values, lists))
}

/// A row's tags as `contacts_load` holds them: a JSON array (`[]` for none), NULL when the
/// source did not say.
pub(crate) fn held_tags(row: &ContactRow) -> Result<Option<String>, serde_json::Error> {
    row.tag_ids.as_ref().map(serde_json::to_string).transpose()
}

/// A held row's tags back from their JSON.
pub(crate) fn unheld_tags(
    row: &mut ContactRow,
    tags: Option<&str>,
) -> Result<(), serde_json::Error> {
    row.tag_ids = tags.map(serde_json::from_str).transpose()?;
    Ok(())
}

/// A held row's values and lists back from their JSON.
pub(crate) fn unheld_values_and_lists(
    row: &mut ContactRow,
    values: Option<&str>,
    lists: Option<&str>,
) -> Result<(), serde_json::Error> {
    if let Some(values) = values {
        row.custom_fields = serde_json::from_str(values)?;
    }
    if let Some(lists) = lists {
        row.list_ids = serde_json::from_str(lists)?;
    }
    Ok(())
}

/// Empties `account`'s part of the holding table and of `contacts_seen` (a new full pass
/// starts from nothing).
pub fn clear_load(conn: &Connection, account: &str) -> Result<(), StoreError> {
    clear_seen(conn, account)?;
    clear_held(conn, account)
}

/// Empties `account`'s part of the holding table.
fn clear_held(conn: &Connection, account: &str) -> Result<(), StoreError> {
    clear_account(conn, "contacts_load", account)
}

/// Moves `account`'s held rows into the contacts tables in key order, the copy read last
/// winning for a contact held twice, and empties its part of the holding table. Returns what
/// [`write`] reported for them.
pub fn apply_load(
    conn: &Connection,
    account: &str,
    seen_run: Option<i64>,
    now: &str,
) -> Result<Written, StoreError> {
    let held: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM contacts_load WHERE account = ?1)",
        params![account],
        |r| r.get(0),
    )?;
    if !held {
        return Ok(Written::default());
    }
    let empty: bool = conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM contacts)
            AND NOT EXISTS (SELECT 1 FROM contact_custom_field_values)
            AND NOT EXISTS (SELECT 1 FROM contact_list_memberships)
            AND NOT EXISTS (SELECT 1 FROM contact_taggings)",
        [],
        |r| r.get(0),
    )?;
    // Indexes built from their own stored definitions, so they come back exactly as the
    // migrations made them.
    let mut indexes: Vec<(String, String)> = Vec::new();
    if empty {
        let mut stmt = conn.prepare(
            "SELECT name, sql FROM sqlite_schema
             WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (?1, ?2, ?3, ?4)",
        )?;
        indexes = stmt
            .query_map(
                params![
                    LOADED_TABLES[0],
                    LOADED_TABLES[1],
                    LOADED_TABLES[2],
                    LOADED_TABLES[3]
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<Result<_, _>>()?;
        for (name, _) in &indexes {
            conn.execute(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")), [])?;
        }
    }
    let started = std::time::Instant::now();
    // Each contact is moved once (the last copy), so into an account without contacts there
    // is nothing to compare with or replace.
    let fresh = holds_load(conn, account)?;
    let mut keys = conn.prepare(
        "SELECT contact_id, seq FROM contacts_load WHERE account = ?1 ORDER BY contact_id, seq",
    )?;
    let mut data = conn.prepare(&format!(
        "SELECT contact_id, {CORE_COLUMNS}, custom_fields, list_ids, tag_ids
         FROM contacts_load WHERE seq = ?1"
    ))?;
    let mut read = |seq: i64| -> Result<ContactRow, StoreError> {
        Ok(data.query_row(params![seq], |r| {
            let mut row = core_row(r, r.get(0)?, 1)?;
            let values: Option<String> = r.get(21)?;
            let lists: Option<String> = r.get(22)?;
            unheld_values_and_lists(&mut row, values.as_deref(), lists.as_deref()).map_err(
                |error| {
                    rusqlite::Error::FromSqlConversionFailure(
                        21,
                        rusqlite::types::Type::Text,
                        Box::new(error),
                    )
                },
            )?;
            let tags: Option<String> = r.get(23)?;
            unheld_tags(&mut row, tags.as_deref()).map_err(|error| {
                rusqlite::Error::FromSqlConversionFailure(
                    23,
                    rusqlite::types::Type::Text,
                    Box::new(error),
                )
            })?;
            Ok(row)
        })?)
    };
    let mut written = Written::default();
    let mut batch: Vec<ContactRow> = Vec::with_capacity(APPLY_BATCH);
    let mut held: Option<(String, i64)> = None;
    let mut rows = keys.query(params![account])?;
    while let Some(row) = rows.next()? {
        let (id, seq): (String, i64) = (row.get(0)?, row.get(1)?);
        if let Some((previous, previous_seq)) = held.take()
            && previous != id
        {
            batch.push(read(previous_seq)?);
        }
        held = Some((id, seq));
        if batch.len() >= APPLY_BATCH {
            written.add(write_rows(conn, account, &batch, seen_run, now, fresh)?);
            batch.clear();
        }
    }
    if let Some((_, seq)) = held {
        batch.push(read(seq)?);
    }
    written.add(write_rows(conn, account, &batch, seen_run, now, fresh)?);
    drop(rows);
    let moved = started.elapsed();
    for (_, sql) in &indexes {
        conn.execute(sql, [])?;
    }
    clear_held(conn, account)?;
    tracing::info!(
        contacts = written.upserted,
        moved_s = moved.as_secs_f64(),
        indexes_s = (started.elapsed() - moved).as_secs_f64(),
        indexes_rebuilt = indexes.len(),
        "the first full pass's contacts moved into the mirror"
    );
    Ok(written)
}

impl Written {
    fn add(&mut self, other: Written) {
        self.upserted += other.upserted;
        self.deleted += other.deleted;
    }
}
