//! The export path of a full contacts pass (shared/reference/constant-contact-v3.md §7.2–7.3):
//! `POST /activities/contact_exports` with `status=all`, polls of the activity with backoff
//! (each poll costs quota), then the CSV streamed record by record and written in batches.
//!
//! Resumable at every step: the activity id is saved as soon as the export exists (a restart
//! polls it instead of exporting again), the file's href once it is ready, and the number of
//! records applied with every batch (a restart reads the file again and skips them; exports
//! list contacts in a stable order and a file only grows at its end). A file that is gone
//! (404) is exported again once; any other failure of the export itself hands the pass to
//! paging, which re-reads everything under the same pass.

use std::collections::HashMap;

use tokio::time::Instant;

use super::ContactRow;
use super::pass::{Run, Stop};
use super::rows::CsvLayout;
use super::sql::cursor::Pass;
use super::writer::Writer;
use crate::api::model::{ActivityState, ExportRequest};
use crate::api::{ApiError, ExportDownload};

/// How the export path ended.
#[derive(Debug)]
pub(super) enum ExportEnd {
    /// The pass is complete.
    Done,
    /// The export cannot be used; the pass goes on by paging.
    Fallback(String),
}

/// Opening or reading the file may break off; it is reopened this many times in one run.
const DOWNLOAD_ATTEMPTS: u32 = 3;

/// Whether an API failure of the export itself should hand the pass to paging (anything but
/// "stop now": quota, cancellation, lost authorisation, our own store).
fn fallback(stop: Stop) -> Result<ExportEnd, Stop> {
    match stop {
        Stop::Api(ApiError::Auth(_) | ApiError::Unauthorized { .. }) => Err(stop),
        Stop::Api(error) => Ok(ExportEnd::Fallback(error.to_string())),
        Stop::Invalid(reason) => Ok(ExportEnd::Fallback(reason)),
        other => Err(other),
    }
}

pub(super) async fn run(run: &Run<'_>, pass: &mut Pass) -> Result<ExportEnd, Stop> {
    let fields = match field_ids(run).await {
        Ok(fields) => fields,
        Err(stop) => return fallback(stop),
    };
    let mut exported_again = false;
    let mut attempts = 0;
    loop {
        if pass.next_href.is_none() {
            match prepare(run, pass).await {
                Ok(None) => {}
                Ok(Some(reason)) => return Ok(ExportEnd::Fallback(reason)),
                Err(stop) => return fallback(stop),
            }
        }
        let Some(href) = pass.next_href.clone() else {
            return Ok(ExportEnd::Fallback("the export has no file link".into()));
        };
        attempts += 1;
        match read(run, pass, &href, &fields).await {
            Ok(()) => return Ok(ExportEnd::Done),
            Err(Stop::Api(ApiError::NotFound { .. })) if !exported_again => {
                tracing::warn!("the export file is gone; exporting again");
                exported_again = true;
                restart(run, pass).await?;
            }
            Err(Stop::Api(error @ ApiError::Transport { .. })) if attempts < DOWNLOAD_ATTEMPTS => {
                tracing::warn!(error = %error, rows_done = pass.rows_done, "the export download broke off; reading on from the last batch");
            }
            Err(stop) => return fallback(stop),
        }
    }
}

/// Custom-field names → ids (the file names its columns `cf:<name>`).
async fn field_ids(run: &Run<'_>) -> Result<HashMap<String, String>, Stop> {
    let mut ids = HashMap::new();
    let mut page = run.call(run.api.list_custom_fields(Some(100))).await?;
    loop {
        for field in &page.custom_fields {
            if let Some(name) = &field.name {
                ids.insert(name.clone(), field.custom_field_id.clone());
            }
        }
        let Some(next) = page.next.take() else {
            return Ok(ids);
        };
        page = run.call(run.api.next_custom_fields_page(&next)).await?;
    }
}

async fn save(run: &Run<'_>, pass: &Pass) -> Result<(), Stop> {
    let mark = run.page_mark();
    Ok(run.db().save_contacts_pass(mark, pass.clone()).await?)
}

async fn restart(run: &Run<'_>, pass: &mut Pass) -> Result<(), Stop> {
    pass.export_activity_id = None;
    pass.next_href = None;
    pass.rows_done = 0;
    save(run, pass).await
}

/// Creates the export (unless one is pending) and waits for its file. `Ok(Some(reason))`
/// when it did not complete.
async fn prepare(run: &Run<'_>, pass: &mut Pass) -> Result<Option<String>, Stop> {
    let options = run.options();
    let mut activity = match pass.export_activity_id.clone() {
        Some(id) => run.call(run.api.get_activity(&id)).await?,
        None => {
            let request = ExportRequest {
                status: Some("all".into()),
                ..ExportRequest::default()
            };
            let activity = run.call(run.api.create_export(&request)).await?;
            pass.export_activity_id = Some(activity.activity_id.clone());
            save(run, pass).await?;
            activity
        }
    };
    let deadline = Instant::now() + options.export_deadline;
    let mut wait = options.export_poll_initial;
    while !activity.is_terminal() {
        if Instant::now() + wait > deadline {
            return Ok(Some(format!(
                "the export was not ready within {:?}",
                options.export_deadline
            )));
        }
        run.pause(wait).await?;
        wait = (wait * 2).min(options.export_poll_max);
        activity = run
            .call(run.api.get_activity(&activity.activity_id))
            .await?;
        run.renew_lease().await?;
    }
    if activity.state != Some(ActivityState::Completed) {
        return Ok(Some(format!(
            "the export ended {} ({})",
            activity
                .state
                .as_ref()
                .map_or("without a state", |s| s.as_str()),
            activity.activity_errors.join("; ")
        )));
    }
    let Some(href) = activity.results_href().map(str::to_owned) else {
        return Ok(Some("the completed export has no results link".into()));
    };
    run.set_total(activity.status.as_ref().and_then(|s| s.items_total_count));
    pass.next_href = Some(href);
    save(run, pass).await?;
    Ok(None)
}

/// Reads the file from `pass.rows_done` to its end, one transaction per batch. The next
/// batch is read and parsed while the store writes the previous one.
async fn read(
    run: &Run<'_>,
    pass: &mut Pass,
    href: &str,
    fields: &HashMap<String, String>,
) -> Result<(), Stop> {
    let mut writer = Writer::default();
    let result = read_batches(run, pass, href, fields, &mut writer).await;
    result.and(writer.finish(run).await)
}

async fn read_batches(
    run: &Run<'_>,
    pass: &mut Pass,
    href: &str,
    fields: &HashMap<String, String>,
    writer: &mut Writer,
) -> Result<(), Stop> {
    let mut file: ExportDownload = run.call(run.api.download_export(href)).await?;
    let layout = CsvLayout::new(file.header(), fields).map_err(Stop::Invalid)?;
    let mut skipped = 0;
    while skipped < pass.rows_done {
        if file.next_record().await?.is_none() {
            break;
        }
        skipped += 1;
    }
    let batch_size = run.options().export_batch.max(1);
    loop {
        run.check_cancelled()?;
        let mut rows: Vec<ContactRow> = Vec::with_capacity(batch_size);
        let mut consumed = 0;
        let mut end = false;
        while rows.len() < batch_size {
            match file.next_record().await? {
                Some(record) => {
                    consumed += 1;
                    if let Some(row) = layout.row(&record) {
                        rows.push(row);
                    }
                }
                None => {
                    end = true;
                    break;
                }
            }
        }
        pass.rows_done += consumed;
        writer
            .write(run, pass, rows, u64::from(consumed > 0), end)
            .await?;
        if end {
            return Ok(());
        }
    }
}
