//! What a pass works with: the run in progress ([`Run`]: its API handle, clock, lease, the
//! mirror's tables ([`MirrorDb`]) and counters), why a pass stopped ([`Stop`]), and [`begin`],
//! which continues a stored pass or starts a new one. The runner makes a `Run` and calls a
//! pass; passes only see this file and reach the tables through `MirrorDb`'s methods.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::sql::MirrorDbError;
use super::sql::cursor::{Lease, Pass};
use super::sql::{MirrorDb, PageMark};
use super::{ContactsPath, MirrorOptions, Mode, Progress, Resource};
use crate::api::{AccountApi, ApiError};
use crate::clock::Clock;
use crate::store::StoreError;

/// Called after every page (or export batch) a run writes.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// What a run borrows from the mirror.
pub(super) struct Context<'m> {
    pub db: &'m MirrorDb,
    pub clock: &'m dyn Clock,
    pub options: &'m MirrorOptions,
    pub cancel: &'m CancellationToken,
    pub progress: Option<&'m ProgressFn>,
}

/// Why a pass stopped before its end.
#[derive(Debug)]
pub(super) enum Stop {
    /// The mirror's token was cancelled (shutdown, or the caller).
    Cancelled,
    /// The daily quota or the mirror's share of it is spent.
    Quota {
        resets_at: DateTime<Utc>,
        message: String,
    },
    Api(ApiError),
    Store(MirrorDbError),
    /// The API answered something the mirror cannot use.
    Invalid(String),
}

impl From<ApiError> for Stop {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::QuotaExhausted { resets_at } | ApiError::MirrorShareSpent { resets_at } => {
                Stop::Quota {
                    resets_at,
                    message: error.to_string(),
                }
            }
            other => Stop::Api(other),
        }
    }
}

impl From<MirrorDbError> for Stop {
    fn from(error: MirrorDbError) -> Self {
        Stop::Store(error)
    }
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Stop::Store(error.into())
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Described {
    pub mode: Mode,
    pub path: Option<ContactsPath>,
    pub resumed_from: Option<i64>,
}

/// One run in progress: what a pass works with.
pub(super) struct Run<'m> {
    context: Context<'m>,
    pub api: AccountApi,
    pub account: String,
    pub resource: Resource,
    pub run_id: i64,
    requested: Mode,
    lease: Lease,
    requests: AtomicU64,
    pages: AtomicU64,
    rows: AtomicU64,
    total: Mutex<Option<u64>>,
    described: Mutex<Described>,
}

impl<'m> Run<'m> {
    pub fn new(
        context: Context<'m>,
        api: AccountApi,
        account: &str,
        resource: Resource,
        run_id: i64,
        mode: Mode,
        lease: Lease,
    ) -> Self {
        Self {
            context,
            api,
            account: account.to_owned(),
            resource,
            run_id,
            requested: mode,
            lease,
            requests: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            total: Mutex::new(None),
            described: Mutex::new(Described {
                mode,
                path: None,
                resumed_from: None,
            }),
        }
    }

    pub fn options(&self) -> &MirrorOptions {
        self.context.options
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.context.clock.now()
    }

    /// The run's lease, extended to now + the lease's lifetime: every page's transaction
    /// renews it (through [`Run::page_mark`]).
    pub fn lease(&self) -> Lease {
        Lease {
            until: self.now() + self.context.options.lease_ttl,
            ..self.lease.clone()
        }
    }

    /// Renews the lease on its own (between export polls, where no page is written).
    pub async fn renew_lease(&self) -> Result<(), Stop> {
        Ok(self.context.db.renew_lease(self.lease()).await?)
    }

    /// What the next page's transaction records besides its rows: the run's figures so far
    /// and its lease, extended.
    pub fn page_mark(&self) -> PageMark {
        let (requests, now, lease) = (self.requests(), self.now(), self.lease());
        PageMark {
            account: self.account.clone(),
            run_id: self.run_id,
            requests,
            now,
            lease,
        }
    }

    /// The mode the run was asked for.
    pub fn requested_mode(&self) -> Mode {
        self.requested
    }

    /// API calls that counted against the quota so far (a call the client retried counts
    /// once).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Whether a progress hook listens (then counts are asked for, which cost the API a scan).
    pub fn wants_progress(&self) -> bool {
        self.context.progress.is_some()
    }

    /// Stops here when the run was cancelled.
    pub fn check_cancelled(&self) -> Result<(), Stop> {
        if self.context.cancel.is_cancelled() {
            Err(Stop::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Makes one API call, abandoned if the run is cancelled meanwhile (the mirror only
    /// reads, and an abandoned export is harmless). Counted unless the quota refused it: a
    /// call the budget stops is never sent, and a `quota_exceeded` answer does not count
    /// against the quota either.
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, Stop> {
        self.check_cancelled()?;
        let result = tokio::select! {
            biased;
            _ = self.context.cancel.cancelled() => Err(Stop::Cancelled),
            result = call => result.map_err(Stop::from),
        };
        if !matches!(result, Err(Stop::Quota { .. })) {
            self.requests.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Waits `wait` unless the run is cancelled first.
    pub async fn pause(&self, wait: std::time::Duration) -> Result<(), Stop> {
        tokio::select! {
            _ = self.context.cancel.cancelled() => Err(Stop::Cancelled),
            _ = tokio::time::sleep(wait) => Ok(()),
        }
    }

    /// The mirror's tables.
    pub fn db(&self) -> &MirrorDb {
        self.context.db
    }

    /// Records the mode the run really takes, its path and the pass it continues.
    pub async fn describe(
        &self,
        mode: Mode,
        path: Option<ContactsPath>,
        resumed_from: Option<i64>,
    ) -> Result<(), Stop> {
        *self.described.lock().unwrap_or_else(|e| e.into_inner()) = Described {
            mode,
            path,
            resumed_from,
        };
        Ok(self
            .context
            .db
            .describe_run(self.run_id, mode, path, resumed_from)
            .await?)
    }

    pub fn described(&self) -> Described {
        *self.described.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rows expected in all, for progress bars.
    pub fn set_total(&self, total: Option<u64>) {
        *self.total.lock().unwrap_or_else(|e| e.into_inner()) = total;
    }

    /// A page (or export batch) of `rows` was written.
    pub fn page_written(&self, rows: u64) {
        let pages = self.pages.fetch_add(1, Ordering::Relaxed) + 1;
        let rows = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        if let Some(progress) = &self.context.progress {
            progress(&Progress {
                resource: self.resource,
                pages,
                rows,
                total: *self.total.lock().unwrap_or_else(|e| e.into_inner()),
            });
        }
    }
}

/// The pass to continue, or a new one; and the run it continues.
pub(super) async fn begin(run: &Run<'_>, resource: Resource) -> Result<Pass, Stop> {
    let stored = run.db().load_cursor(&run.account, resource).await?;
    let mode = run.requested_mode();
    let (pass, resumed_from) = match stored.pass {
        Some(pass) => {
            let from = pass.run_id;
            (pass, Some(from))
        }
        None => (Pass::new(run.run_id, mode, run.now()), None),
    };
    run.describe(mode, None, resumed_from).await?;
    Ok(pass)
}
