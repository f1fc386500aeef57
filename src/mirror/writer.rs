//! The contacts pages' writer, shared by the paged and the export passes: one page (or export
//! batch) per transaction, written while the pass reads the next.

use tokio::task::JoinHandle;

use super::ContactRow;
use super::pass::{Run, Stop};
use super::sql::contacts::Written;
use super::sql::cursor::Pass;
use super::sql::{MirrorDbError, PageEnd};

/// Writes pages one after the other while the caller reads the next: at most one write is in
/// flight, and it is awaited before the next starts (and by [`Writer::finish`] at the end,
/// whatever ended the pass).
#[derive(Default)]
pub(super) struct Writer {
    inflight: Option<Inflight>,
}

/// A write in flight: the store job, and the pages and rows it carries.
struct Inflight {
    job: JoinHandle<Result<Written, MirrorDbError>>,
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
        // One page (or export batch) and the pass's new position in one transaction, started
        // now so that the caller reads the next page meanwhile.
        let (db, mark, pass) = (run.db().clone(), run.page_mark(), pass.clone());
        let job = tokio::spawn(async move {
            db.write_contacts(mark, pass, rows, pages, PageEnd::of(last))
                .await
        });
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
