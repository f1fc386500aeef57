//! `POST /activities/contact_exports` and `GET /contact_exports/{id}` (reference §7.2). The
//! CSV is rendered when downloaded, in chunks, from the state at that moment (so memory stays
//! flat for a million contacts) and carries exactly what `GET /contacts` with
//! `include=custom_fields,list_memberships,taggings` carries (columns in the crate's
//! README.md).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ActivityState, Counters, Job, Shape, activity_json};
use crate::clock::{fmt_date, fmt_secs};
use crate::contacts::model::Contact;
use crate::contacts::query::ContactFilter;
use crate::errors::{ApiError, Area};
use crate::http::{json, parse_body, path_uuid};
use crate::state::{Account, Caller, Shared};

/// Core columns, in order; `cf:<name>` columns for every live custom field follow.
pub(crate) const CORE_COLUMNS: [&str; 23] = [
    "contact_id",
    "email_address",
    "permission_to_send",
    "first_name",
    "last_name",
    "job_title",
    "company_name",
    "birthday_month",
    "birthday_day",
    "anniversary",
    "create_source",
    "update_source",
    "created_at",
    "updated_at",
    "opt_in_source",
    "opt_in_date",
    "opt_out_source",
    "opt_out_date",
    "opt_out_reason",
    "confirm_status",
    "list_memberships",
    "taggings",
    "deleted_at",
];

const CHUNK_CONTACTS: usize = 2_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ExportSpec {
    contact_ids: Option<Vec<Uuid>>,
    list_ids: Option<Vec<Uuid>>,
    tag_ids: Option<Vec<Uuid>>,
    status: Option<String>,
    fields: Option<Vec<String>>,
    exclude: Vec<Uuid>,
    new_subscriber: bool,
}

#[derive(Debug, Default, Deserialize)]
struct ExcludeIn {
    contact_ids: Option<Vec<Uuid>>,
}

#[derive(Debug, Default, Deserialize)]
struct ExportIn {
    contact_ids: Option<Vec<Uuid>>,
    list_ids: Option<Vec<Uuid>>,
    tag_ids: Option<Vec<Uuid>>,
    segment_id: Option<i64>,
    new_subscriber: Option<bool>,
    status: Option<String>,
    fields: Option<Vec<String>>,
    exclude: Option<ExcludeIn>,
}

impl ExportSpec {
    fn filter(&self, account: &Account, now_secs: i64) -> Result<ContactFilter, ApiError> {
        let mut filter = ContactFilter::default();
        if let Some(status) = &self.status {
            let items: Vec<String> = status.split(',').map(|s| s.trim().to_owned()).collect();
            filter.set_status(&items)?;
        }
        if let Some(ids) = &self.list_ids {
            filter.set_lists(account, ids);
        }
        if let Some(ids) = &self.tag_ids {
            filter.set_tags(ids.clone());
        }
        if let Some(ids) = &self.contact_ids {
            filter.set_contact_ids(ids.clone());
        }
        filter.set_exclude(self.exclude.clone());
        if self.new_subscriber {
            filter.set_opted_in_since(now_secs - 30 * 86_400);
        }
        Ok(filter)
    }
}

/// Number of contacts the export covers right now.
pub(crate) fn count(account: &Account, spec: &ExportSpec) -> u32 {
    let Ok(filter) = spec.filter(account, 0) else {
        return 0;
    };
    account
        .contacts
        .rows
        .iter()
        .filter(|c| filter.matches(c))
        .count() as u32
}

fn check(input: ExportIn) -> Result<ExportSpec, ApiError> {
    let too_many = |field: &str, n: usize, max: usize| {
        (n > max).then(|| {
            ApiError::validation(Area::Contacts, format!("{field} accepts at most {max} ids"))
        })
    };
    if let Some(err) = too_many(
        "contact_ids",
        input.contact_ids.as_ref().map_or(0, Vec::len),
        500,
    )
    .or_else(|| too_many("list_ids", input.list_ids.as_ref().map_or(0, Vec::len), 50))
    .or_else(|| too_many("tag_ids", input.tag_ids.as_ref().map_or(0, Vec::len), 50))
    {
        return Err(err);
    }
    if input.segment_id.is_some() {
        return Err(ApiError::validation(
            Area::Contacts,
            "segment_id: the sandbox does not select contacts by segment",
        ));
    }
    if let Some(status) = &input.status {
        let items: Vec<String> = status.split(',').map(|s| s.trim().to_owned()).collect();
        ContactFilter::default().set_status(&items)?;
    }
    if let Some(fields) = &input.fields {
        for field in fields {
            if !CORE_COLUMNS.contains(&field.as_str()) && !field.starts_with("cf:") {
                return Err(ApiError::validation(
                    Area::Contacts,
                    format!("fields contains an unknown column {field}"),
                ));
            }
        }
    }
    Ok(ExportSpec {
        contact_ids: input.contact_ids,
        list_ids: input.list_ids,
        tag_ids: input.tag_ids,
        status: input.status,
        fields: input.fields,
        exclude: input
            .exclude
            .and_then(|e| e.contact_ids)
            .unwrap_or_default(),
        new_subscriber: input.new_subscriber.unwrap_or(false),
    })
}

pub(crate) async fn post_export(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: ExportIn = if body.iter().all(u8::is_ascii_whitespace) {
        ExportIn::default()
    } else {
        parse_body(Area::Contacts, &body)?
    };
    let spec = check(input)?;
    shared.with_account(&caller, |account, cx| {
        let counters = Counters {
            items_total: count(account, &spec),
            ..Counters::default()
        };
        let id = account.rng.uuid();
        let index = account
            .activities
            .queue(id, Job::Export(spec), counters, cx)?;
        account.touch();
        cx.effect(&account.id, "export.created", id);
        let body = activity_json(
            &account.activities.rows[index as usize],
            cx.now,
            cx.rows_per_sec,
            Shape::Created,
        );
        Ok(json(StatusCode::CREATED, &body))
    })
}

/// Appends one CSV cell, quoted when needed (RFC 4180).
fn cell(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ') {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// Which columns to write: core names and custom field indexes.
#[derive(Debug, Clone)]
enum Column {
    Core(&'static str),
    Field(u32, String),
}

fn columns(account: &Account, spec: &ExportSpec) -> Vec<Column> {
    let mut all: Vec<Column> = CORE_COLUMNS.iter().map(|c| Column::Core(c)).collect();
    all.extend(
        account
            .fields
            .live()
            .map(|(i, f)| Column::Field(i, format!("cf:{}", f.name))),
    );
    match &spec.fields {
        None => all,
        Some(wanted) => all
            .into_iter()
            .filter(|c| match c {
                Column::Core("contact_id") => true,
                Column::Core(name) => wanted.iter().any(|w| w == name),
                Column::Field(_, name) => wanted.iter().any(|w| w == name),
            })
            .collect(),
    }
}

fn core_value(account: &Account, c: &Contact, name: &str) -> String {
    let ts = |s: i64| {
        if s == 0 {
            String::new()
        } else {
            fmt_secs(s * 1000)
        }
    };
    let opt = |v: &Option<Box<str>>| v.as_deref().unwrap_or_default().to_owned();
    let has_email = c.email.is_some();
    match name {
        "contact_id" => c.id.to_string(),
        "email_address" => opt(&c.email),
        "permission_to_send" if has_email => c.permission.as_str().to_owned(),
        "first_name" => opt(&c.first_name),
        "last_name" => opt(&c.last_name),
        "job_title" => opt(&c.job_title),
        "company_name" => opt(&c.company_name),
        "birthday_month" if c.birthday_month != 0 => c.birthday_month.to_string(),
        "birthday_day" if c.birthday_month != 0 => c.birthday_day.to_string(),
        "anniversary" => opt(&c.anniversary),
        "create_source" => c.create_source.as_str().to_owned(),
        "update_source" => c
            .update_source
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        "created_at" => ts(c.created_at),
        "updated_at" => ts(c.updated_at),
        "opt_in_source" if has_email => c
            .opt_in_source
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        "opt_in_date" if has_email => ts(c.opt_in_date),
        "opt_out_source" if has_email => c
            .opt_out_source
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        "opt_out_date" if has_email => ts(c.opt_out_date),
        "opt_out_reason" => opt(&c.opt_out_reason),
        "confirm_status" if has_email => c.confirm.as_str().to_owned(),
        "list_memberships" => c
            .lists
            .iter()
            .filter(|l| account.lists.is_live(**l))
            .map(|l| account.lists.id_of(*l).to_string())
            .collect::<Vec<_>>()
            .join(";"),
        "taggings" => c
            .extras()
            .taggings
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(";"),
        "deleted_at" if c.deleted_at != 0 => fmt_date(c.deleted_at * 1000),
        _ => String::new(),
    }
}

fn row(out: &mut String, account: &Account, c: &Contact, columns: &[Column]) {
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match column {
            Column::Core(name) => cell(out, &core_value(account, c, name)),
            Column::Field(index, _) => {
                if let Some((_, v)) = c.custom.iter().find(|(f, _)| f == index) {
                    cell(out, v);
                }
            }
        }
    }
    out.push_str("\r\n");
}

/// The streamed CSV body: each poll renders the next chunk under a short world lock.
struct CsvBody {
    shared: Arc<Shared>,
    account: usize,
    filter: ContactFilter,
    columns: Vec<Column>,
    header_sent: bool,
    position: usize,
    /// The pause between chunks ([`crate::SandboxAdmin::set_download_pace`]).
    pace: std::time::Duration,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for CsvBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(pause) = this.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.pause = None;
        }
        let mut out = String::new();
        if !this.header_sent {
            this.header_sent = true;
            for (i, column) in this.columns.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match column {
                    Column::Core(name) => cell(&mut out, name),
                    Column::Field(_, name) => cell(&mut out, name),
                }
            }
            out.push_str("\r\n");
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
        }
        let world = this.shared.world();
        let Some(account) = world.accounts.get(this.account) else {
            return Poll::Ready(None);
        };
        let rows = &account.contacts.rows;
        if this.position >= rows.len() {
            return Poll::Ready(None);
        }
        let end = (this.position + CHUNK_CONTACTS).min(rows.len());
        for contact in &rows[this.position..end] {
            if this.filter.matches(contact) {
                row(&mut out, account, contact, &this.columns);
            }
        }
        this.position = end;
        drop(world);
        if !this.pace.is_zero() {
            this.pause = Some(Box::pin(tokio::time::sleep(this.pace)));
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))))
    }
}

pub(crate) async fn get_export_file(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(file_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_uuid(Area::Contacts, "file_export_id", &file_id)?;
    let (filter, columns) = shared.with_account(&caller, |account, cx| {
        let activity = account
            .activities
            .find(&id)
            .map(|i| &account.activities.rows[i as usize])
            .filter(|a| a.is_export())
            .ok_or_else(|| ApiError::not_found(Area::Contacts, "Export file not found"))?;
        if activity.state != ActivityState::Completed {
            return Err(ApiError::not_found(
                Area::Contacts,
                "The export file is not ready yet",
            ));
        }
        let Job::Export(spec) = &activity.job else {
            return Err(ApiError::not_found(Area::Contacts, "Export file not found"));
        };
        Ok((spec.filter(account, cx.now_secs())?, columns(account, spec)))
    })?;
    let body = CsvBody {
        shared: shared.clone(),
        account: caller.account,
        filter,
        columns,
        header_sent: false,
        position: 0,
        pace: std::time::Duration::from_millis(
            shared
                .download_pace_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
        pause: None,
    };
    let mut response = (StatusCode::OK, Body::new(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    if let Ok(disposition) =
        HeaderValue::from_str(&format!("attachment; filename=\"contact_export_{id}.csv\""))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_with_commas_quotes_or_newlines_are_quoted() {
        let mut out = String::new();
        cell(&mut out, "plain");
        out.push('|');
        cell(&mut out, "a,b");
        out.push('|');
        cell(&mut out, "say \"hi\"");
        out.push('|');
        cell(&mut out, "two\nlines");
        assert_eq!(out, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"");
    }
}
