//! Contacts passes.
//!
//! * **Full**: every contact, deleted ones included (`status=all`), by one bulk export
//!   ([`export`](super::export)), or by `GET /contacts` pages when the export path is not
//!   chosen or fails. Rows the pass saw are marked with its run id; at its end, contacts it did
//!   not see (gone from the account altogether) are removed.
//! * **Incremental**: `GET /contacts?status=all&updated_after=<start of the last complete pass
//!   − overlap>` (inclusive). `status=all` brings deletions too: deleting a contact bumps its
//!   `updated_at` and sets `deleted_at` (shared/reference/constant-contact-v3.md §4.2 calls
//!   that unconfirmed; the nightly full pass reconciles whatever slips through).
//!
//! Both read each contact's tags with it (`include=taggings`, the export's `taggings` column):
//! a contact's taggings are replaced by the ones read, at no request of their own.
//!
//! A pass in progress (its position saved with every page) is continued by the next run of
//! either mode; a full request abandons a pending incremental pass (the full pass covers it).
//! When a pass completes, the incremental cursor becomes the pass's start time.

use super::export::{self, ExportEnd};
use super::pass::{Run, Stop};
use super::sql::cursor::Pass;
use super::writer::Writer;
use super::{ContactRow, ContactsPath, Mode, Resource};
use crate::api::ApiError;
use crate::api::model::{ContactQuery, ContactStatus, ContactsPage, Include};

/// Runs (or continues) a contacts pass.
pub(super) async fn run(run: &Run<'_>, requested: Mode) -> Result<(), Stop> {
    let stored = run
        .db()
        .load_cursor(&run.account, Resource::Contacts)
        .await?;
    let (mut pass, resumed_from) = match stored.pass {
        Some(pass) if !(requested == Mode::Full && pass.mode == Mode::Incremental) => {
            let from = pass.run_id;
            (pass, Some(from))
        }
        _ => {
            let pass = new_pass(run, requested, stored.updated_after);
            if pass.mode == Mode::Full {
                run.db().clear_contacts_load(&run.account).await?;
            }
            (pass, None)
        }
    };
    run.describe(pass.mode, pass.path, resumed_from).await?;
    if pass.path == Some(ContactsPath::Export) {
        match export::run(run, &mut pass).await? {
            ExportEnd::Done => return Ok(()),
            ExportEnd::Fallback(reason) => {
                tracing::warn!(reason = %reason, "the export path failed; mirroring by pages instead");
                pass.path = Some(ContactsPath::Paging);
                pass.next_href = None;
                pass.export_activity_id = None;
                pass.rows_done = 0;
                run.describe(pass.mode, pass.path, resumed_from).await?;
            }
        }
    }
    pages(run, pass).await
}

fn new_pass(
    run: &Run<'_>,
    requested: Mode,
    high_water: Option<chrono::DateTime<chrono::Utc>>,
) -> Pass {
    let mut pass = Pass::new(run.run_id, Mode::Full, run.now());
    match (requested, high_water) {
        (Mode::Incremental, Some(after)) => {
            pass.mode = Mode::Incremental;
            pass.path = Some(ContactsPath::Paging);
            pass.updated_after = Some(after - run.options().overlap);
        }
        _ => pass.path = Some(run.options().contacts_path),
    }
    pass
}

fn first_query(run: &Run<'_>, pass: &Pass) -> ContactQuery {
    ContactQuery {
        status: vec![ContactStatus::All],
        updated_after: pass.updated_after,
        include: vec![
            Include::CustomFields,
            Include::ListMemberships,
            Include::Taggings,
        ],
        include_count: run.wants_progress(),
        limit: Some(run.options().page_size.clamp(1, 500)),
        ..ContactQuery::default()
    }
}

/// Reads `GET /contacts` pages from the pass's position to the end. The next page is fetched
/// while the store writes the previous one (pages are still written in order, one at a time).
async fn pages(run: &Run<'_>, mut pass: Pass) -> Result<(), Stop> {
    let mut writer = Writer::default();
    let result = read_pages(run, &mut pass, &mut writer).await;
    result.and(writer.finish(run).await)
}

async fn read_pages(run: &Run<'_>, pass: &mut Pass, writer: &mut Writer) -> Result<(), Stop> {
    let mut restarted = false;
    loop {
        run.check_cancelled()?;
        let page: ContactsPage = match pass.next_href.clone() {
            None => {
                let page = run
                    .call(run.api.list_contacts(&first_query(run, pass)))
                    .await?;
                run.set_total(page.contacts_count);
                page
            }
            Some(href) => match run.call(run.api.next_contacts_page(&href)).await {
                Ok(page) => page,
                // A saved page link the API no longer accepts: read the pass again from its
                // first page (rows are upserted, so nothing is applied twice).
                Err(Stop::Api(ApiError::Invalid { .. } | ApiError::NotFound { .. }))
                    if !restarted =>
                {
                    tracing::warn!("the saved page link was refused; restarting the pass");
                    restarted = true;
                    pass.next_href = None;
                    continue;
                }
                Err(stop) => return Err(stop),
            },
        };
        // Asked for with `include=taggings`: a contact without the key has no tags.
        let rows: Vec<ContactRow> = page
            .contacts
            .iter()
            .map(|contact| {
                let mut row = ContactRow::from_api(contact);
                row.tag_ids.get_or_insert_with(Vec::new);
                row
            })
            .collect();
        pass.next_href = page.next;
        let last = pass.next_href.is_none();
        writer.write(run, pass, rows, 1, last).await?;
        if last {
            return Ok(());
        }
    }
}
