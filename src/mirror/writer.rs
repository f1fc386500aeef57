//! The contacts pages' writer, shared by the paged and the export passes: one page (or export
//! batch) per transaction, written while the pass reads the next.

use tokio::task::JoinHandle;

use super::pass::{Run, Stop};
use super::sql::contacts::{self as sql_contacts, Written};
use super::sql::cursor::{self, Pass};
use super::sql::{instant, page_transaction, runs};
use super::{ContactRow, Mode, Resource};
use crate::store::StoreError;

/// Writes pages one after the other while the caller reads the next: at most one write is in
/// flight, and it is awaited before the next starts (and by [`Writer::finish`] at the end,
/// whatever ended the pass).
#[derive(Default)]
pub(super) struct Writer {
    inflight: Option<Inflight>,
}

/// A write in flight: the store job, and the pages and rows it carries.
struct Inflight {
    job: JoinHandle<Result<Written, StoreError>>,
    pages: u64,
    rows: u64,
}

impl Writer {
    /// Waits for the previous write, then starts writing `rows` with the pass's position.
    pub async fn write(
        &mut self,
        run: &Run<'_>,
        pass: &Pass,
        rows: Vec<ContactRow>,
        pages: u64,
        last: bool,
    ) -> Result<(), Stop> {
        self.finish(run).await?;
        let count = rows.len() as u64;
        let job = run.spawn_db(commit_job(run, pass, rows, pages, last));
        self.inflight = Some(Inflight {
            job,
            pages,
            rows: count,
        });
        Ok(())
    }

    /// Waits for the write in flight, if any, and reports its progress.
    pub async fn finish(&mut self, run: &Run<'_>) -> Result<(), Stop> {
        let Some(Inflight { job, pages, rows }) = self.inflight.take() else {
            return Ok(());
        };
        match job.await {
            Ok(written) => {
                written?;
                if pages > 0 || rows > 0 {
                    run.page_written(rows);
                }
                Ok(())
            }
            Err(error) => Err(Stop::Invalid(format!("the page writer stopped: {error}"))),
        }
    }
}

/// The store job that writes one page (or export batch) of rows with the pass's new
/// position, in one transaction. On the last page the pass completes: a full pass removes the
/// contacts it did not see, and the incremental cursor moves to the pass's start.
pub(super) fn commit_job(
    run: &Run<'_>,
    pass: &Pass,
    rows: Vec<ContactRow>,
    pages: u64,
    last: bool,
) -> impl FnOnce(&mut rusqlite::Connection) -> Result<Written, StoreError> + Send + 'static {
    let (account, pass_state, run_id) = (run.account.clone(), pass.clone(), run.run_id);
    let (requests, now, lease) = (run.requests(), run.now(), run.lease());
    move |conn| {
        page_transaction(conn, |tx| {
            let full = pass_state.mode == Mode::Full;
            cursor::renew_lease(tx, &lease)?;
            let seen = full.then_some(pass_state.run_id);
            let mut written = sql_contacts::write(tx, &account, &rows, seen, &instant(&now))?;
            if last {
                if full {
                    written.deleted +=
                        sql_contacts::remove_unseen(tx, &account, pass_state.run_id)?;
                }
                let high_water = Some(pass_state.started_at);
                cursor::complete(tx, &account, Resource::Contacts, high_water, now)?;
            } else {
                cursor::save_pass(tx, &account, Resource::Contacts, &pass_state, now)?;
            }
            runs::add(
                tx,
                run_id,
                pages,
                written.upserted,
                written.deleted,
                requests,
            )?;
            Ok(written)
        })
    }
}
