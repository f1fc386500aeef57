//! Custom fields, contact lists, tags and segments. Each is listed in full on every run; rows
//! the listing no longer has are removed at its end, with the contact values, memberships or
//! taggings that pointed at them (the API hides a deleted field's values and strips a deleted list's members without
//! touching the contacts' `updated_at`, so a contacts pass alone would never notice).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::{instant, parse_instant};
use crate::api::model::{ContactList, CustomField, Segment, Tag};
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

/// Upserts tags, marking them seen by `seen_run`.
pub fn write_tags(
    conn: &Connection,
    account: &str,
    tags: &[Tag],
    seen_run: i64,
    now: &str,
) -> Result<u64, StoreError> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO contact_tags (account, tag_id, name, tag_source, contacts_count, created_at,
             updated_at, mirrored_at, seen_run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (account, tag_id) DO UPDATE SET
             name = excluded.name, tag_source = excluded.tag_source,
             contacts_count = excluded.contacts_count, created_at = excluded.created_at,
             updated_at = excluded.updated_at, mirrored_at = excluded.mirrored_at,
             seen_run = excluded.seen_run",
    )?;
    for tag in tags {
        upsert.execute(params![
            account,
            tag.tag_id,
            tag.name,
            tag.tag_source.as_deref().filter(|s| !s.is_empty()),
            tag.contacts_count.map(|c| c as i64),
            tag.created_at.as_ref().map(instant),
            tag.updated_at.as_ref().map(instant),
            now,
            seen_run
        ])?;
    }
    Ok(tags.len() as u64)
}

/// Removes tags the listing `seen_run` did not show (deleted in Constant Contact), and every
/// tagging of them.
pub fn remove_unseen_tags(
    conn: &Connection,
    account: &str,
    seen_run: i64,
) -> Result<u64, StoreError> {
    conn.execute(
        "DELETE FROM contact_taggings
         WHERE account = ?1 AND tag_id IN (
             SELECT tag_id FROM contact_tags
             WHERE account = ?1 AND (seen_run IS NULL OR seen_run <> ?2))",
        params![account, seen_run],
    )?;
    let removed = conn.execute(
        "DELETE FROM contact_tags WHERE account = ?1 AND (seen_run IS NULL OR seen_run <> ?2)",
        params![account, seen_run],
    )?;
    Ok(removed as u64)
}

/// Upserts segments, marking them seen by `seen_run`. A segment that comes with its criteria
/// has them stored with the `edited_at` they were read at; one without keeps the criteria
/// the mirror holds.
pub fn write_segments(
    conn: &Connection,
    account: &str,
    segments: &[Segment],
    seen_run: i64,
    now: &str,
) -> Result<u64, StoreError> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO segments (account, segment_id, name, segment_criteria, created_at,
             edited_at, criteria_edited_at, mirrored_at, seen_run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?4 IS NULL THEN NULL ELSE ?6 END, ?7, ?8)
         ON CONFLICT (account, segment_id) DO UPDATE SET
             name = excluded.name,
             segment_criteria = coalesce(excluded.segment_criteria, segments.segment_criteria),
             created_at = excluded.created_at, edited_at = excluded.edited_at,
             criteria_edited_at = CASE WHEN excluded.segment_criteria IS NULL
                 THEN segments.criteria_edited_at ELSE excluded.criteria_edited_at END,
             mirrored_at = excluded.mirrored_at, seen_run = excluded.seen_run",
    )?;
    for segment in segments {
        upsert.execute(params![
            account,
            i64::from(segment.segment_id),
            segment.name,
            segment.segment_criteria,
            segment.created_at.as_ref().map(instant),
            segment.edited_at.as_ref().map(instant),
            now,
            seen_run
        ])?;
    }
    Ok(segments.len() as u64)
}

/// Removes segments the listing `seen_run` did not show (deleted in Constant Contact).
pub fn remove_unseen_segments(
    conn: &Connection,
    account: &str,
    seen_run: i64,
) -> Result<u64, StoreError> {
    let removed = conn.execute(
        "DELETE FROM segments WHERE account = ?1 AND (seen_run IS NULL OR seen_run <> ?2)",
        params![account, seen_run],
    )?;
    Ok(removed as u64)
}

/// The `edited_at` each segment's stored criteria were read at (`None`: never read).
pub fn segment_criteria_stamps(
    conn: &Connection,
    account: &str,
) -> Result<HashMap<u32, Option<DateTime<Utc>>>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT segment_id, criteria_edited_at FROM segments WHERE account = ?1")?;
    let rows = stmt.query_map(params![account], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    let mut stamps = HashMap::new();
    for row in rows {
        let (id, at) = row?;
        if let Ok(id) = u32::try_from(id) {
            stamps.insert(id, parse_instant(at));
        }
    }
    Ok(stamps)
}
