//! `Mirror`, the handle every trigger (schedule, `mirror.run`, the CLI) goes through, and
//! [`Mirror::run_once`]: one run of one resource for one account.
//!
//! A run takes the (account, resource) lock or is skipped (logged, counted, recorded as
//! `skipped`); opens its `mirror_runs` row; runs the resource's pass; closes the row with the
//! outcome; counts the outcome (`/metrics`); and sends its summary to the events publisher.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::Instrument as _;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::events::EventSender;
use super::pass::{Context, ProgressFn, Run, Stop};
use super::sql::MirrorDb;
use super::sql::cursor::Lease;
use super::sql::runs::{Finish, NewRun};
use super::{
    ContactsPath, MirrorOptions, Mode, Resource, RunOutcome, RunSummary, Trigger, campaigns,
    catalog, contacts, reports,
};
use crate::api::{ApiClient, ApiError, Priority};
use crate::clock::Clock;
use crate::histogram::CounterFamily;
use crate::store::Store;
use crate::store::tokens::AccountState;

/// The mirror. Cheap to clone; clones share the locks, counters and hooks.
#[derive(Clone)]
pub struct Mirror {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// The mirror's tables.
    pub db: MirrorDb,
    pub client: ApiClient,
    pub clock: Arc<dyn Clock>,
    pub options: MirrorOptions,
    /// This process's name in leases.
    owner: String,
    running: Mutex<HashSet<(String, Resource)>>,
    skipped: AtomicU64,
    /// Runs this process made, by resource and outcome.
    outcomes: CounterFamily,
    events: Option<EventSender>,
    cancel: CancellationToken,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// Releases the (account, resource) lock when the run ends, however it ends.
struct RunLock<'a> {
    inner: &'a Inner,
    key: (String, Resource),
}

impl Drop for RunLock<'_> {
    fn drop(&mut self) {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

impl Mirror {
    /// A mirror writing into `db` (the mirror store, not the state store).
    pub fn new(
        db: MirrorDb,
        client: ApiClient,
        clock: Arc<dyn Clock>,
        options: MirrorOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                client,
                clock,
                options,
                owner: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
                running: Mutex::new(HashSet::new()),
                skipped: AtomicU64::new(0),
                outcomes: CounterFamily::default(),
                events: None,
                cancel: CancellationToken::new(),
                progress: None,
            }),
        }
    }

    fn configure(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("the mirror is configured before it is shared")
    }

    /// Sends every run's summary to `events` (the `mirror.completed`/`mirror.failed` publisher).
    pub fn with_events(mut self, events: EventSender) -> Self {
        self.configure().events = Some(events);
        self
    }

    /// Runs stop cleanly (outcome `interrupted`, resumable) once `cancel` is cancelled.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.configure().cancel = cancel;
        self
    }

    /// Calls `progress` after every page a run writes.
    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.configure().progress = Some(progress);
        self
    }

    pub fn options(&self) -> &MirrorOptions {
        &self.inner.options
    }

    /// The SQLite store the mirror's tables live in (tests and tools read them directly);
    /// `None` when the mirror is on PostgreSQL.
    pub fn store(&self) -> Option<&Store> {
        self.inner.db.store()
    }

    /// The mirror's tables.
    pub fn db(&self) -> &MirrorDb {
        &self.inner.db
    }

    /// The token that stops runs.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// Runs skipped since start because another run of the same resource was going.
    pub fn skipped_overlaps(&self) -> u64 {
        self.inner.skipped.load(Ordering::Relaxed)
    }

    /// Runs this process made since start (every trigger), by `[resource, outcome]`.
    pub fn run_outcomes(&self) -> std::collections::BTreeMap<Vec<String>, u64> {
        self.inner.outcomes.snapshot()
    }

    /// The accounts the scheduler mirrors: every account whose tokens are usable.
    pub async fn active_accounts(&self) -> Result<Vec<String>, ApiError> {
        Ok(self
            .inner
            .client
            .tokens()
            .accounts()
            .await?
            .into_iter()
            .filter(|a| a.state == AccountState::Active)
            .map(|a| a.account)
            .collect())
    }

    /// Runs `resources` one after the other (stopping early once cancelled).
    pub async fn run(
        &self,
        account: &str,
        resources: &[Resource],
        mode: Mode,
        trigger: Trigger,
    ) -> Vec<RunSummary> {
        let mut summaries = Vec::new();
        for &resource in resources {
            if self.inner.cancel.is_cancelled() {
                break;
            }
            summaries.push(self.run_once(account, resource, mode, trigger).await);
        }
        summaries
    }

    fn try_lock(&self, account: &str, resource: Resource) -> Option<RunLock<'_>> {
        let key = (account.to_owned(), resource);
        let inserted = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone());
        // (The guard is released before a RunLock exists: dropping one takes the lock.)
        inserted.then(|| RunLock {
            inner: &self.inner,
            key,
        })
    }

    /// One run of `resource` for `account`. Never fails: what went wrong is in the summary
    /// (and in `mirror_runs`).
    #[tracing::instrument(skip_all, fields(account, resource = %resource, mode = mode.as_str()))]
    pub async fn run_once(
        &self,
        account: &str,
        resource: Resource,
        mode: Mode,
        trigger: Trigger,
    ) -> RunSummary {
        // One span per run: every line the run (and its API calls) writes names it.
        let span = tracing::info_span!(
            "mirror_run",
            account,
            resource = resource.as_str(),
            mode = mode.as_str(),
            trigger = trigger.as_str(),
        );
        let summary = self
            .run_once_inner(account, resource, mode, trigger)
            .instrument(span)
            .await;
        self.inner
            .outcomes
            .increment(&[resource.as_str(), summary.outcome.as_str()]);
        summary
    }

    async fn run_once_inner(
        &self,
        account: &str,
        resource: Resource,
        mode: Mode,
        trigger: Trigger,
    ) -> RunSummary {
        let inner = &self.inner;
        let new = NewRun {
            account: account.to_owned(),
            resource,
            mode,
            trigger,
            started_at: inner.clock.now(),
        };
        let lease = Lease {
            account: account.to_owned(),
            resource,
            owner: inner.owner.clone(),
            until: new.started_at + inner.options.lease_ttl,
        };
        let lock = self.try_lock(account, resource);
        let leased = match &lock {
            None => Ok(false),
            Some(_) => inner.db.take_lease(lease.clone(), new.started_at).await,
        };
        if let Ok(false) = leased {
            return self.skip(&new).await;
        }
        let begun = match leased {
            Ok(_) => inner.db.start_run(new.clone()).await,
            Err(error) => Err(error),
        };
        let run_id = match begun {
            Ok(id) => id,
            Err(error) => {
                tracing::error!(error = %error, "the mirror could not record its run");
                let mut summary = summary_of(&new, 0, RunOutcome::Failed, inner.clock.now());
                summary.error = Some(error.to_string());
                self.announce(&summary);
                return summary;
            }
        };
        let context = Context {
            db: &inner.db,
            clock: inner.clock.as_ref(),
            options: &inner.options,
            cancel: &inner.cancel,
            progress: inner.progress.as_ref(),
        };
        let api = inner
            .client
            .account(account)
            .with_priority(Priority::Mirror);
        let run = Run::new(context, api, account, resource, run_id, mode, lease);
        let result = match resource {
            Resource::Contacts => contacts::run(&run, mode).await,
            Resource::CustomFields => catalog::run_custom_fields(&run).await,
            Resource::Lists => catalog::run_lists(&run).await,
            Resource::Tags => catalog::run_tags(&run).await,
            Resource::Segments => catalog::run_segments(&run).await,
            Resource::Campaigns => campaigns::run(&run).await,
            Resource::Reports => reports::run(&run).await,
        };
        let (outcome, error, resets_at) = match result {
            Ok(()) => (RunOutcome::Succeeded, None, None),
            Err(Stop::Cancelled) => (
                RunOutcome::Interrupted,
                Some("cancelled; the next run continues from here".to_owned()),
                None,
            ),
            Err(Stop::Quota { resets_at, message }) => {
                (RunOutcome::Interrupted, Some(message), Some(resets_at))
            }
            Err(Stop::Api(error)) => (RunOutcome::Failed, Some(error.to_string()), None),
            Err(Stop::Store(error)) => (RunOutcome::Failed, Some(error.to_string()), None),
            Err(Stop::Invalid(message)) => (RunOutcome::Failed, Some(message), None),
        };
        let end = Finish {
            outcome,
            error: error.clone(),
            resets_at,
            api_requests: run.requests(),
            finished_at: inner.clock.now(),
        };
        let figures = inner.db.finish_run(run_id, end, run.lease()).await;
        drop(lock);
        let described = run.described();
        let mut summary = summary_of(&new, run_id, outcome, inner.clock.now());
        summary.mode = described.mode;
        summary.path = described.path;
        summary.resumed_from = described.resumed_from;
        summary.error = error;
        summary.resets_at = resets_at;
        match figures {
            Ok(f) => {
                summary.pages = f.pages;
                summary.rows_upserted = f.rows_upserted;
                summary.rows_deleted = f.rows_deleted;
                summary.api_requests = f.api_requests;
            }
            Err(error) => {
                tracing::error!(error = %error, "the mirror could not close its run record");
                summary.api_requests = run.requests();
            }
        }
        match outcome {
            RunOutcome::Failed => tracing::error!(
                run_id,
                pages = summary.pages,
                rows_upserted = summary.rows_upserted,
                rows_deleted = summary.rows_deleted,
                api_requests = summary.api_requests,
                error = summary.error.as_deref().unwrap_or(""),
                "mirror run failed"
            ),
            _ => tracing::info!(
                run_id,
                outcome = outcome.as_str(),
                mode = summary.mode.as_str(),
                path = summary.path.map(ContactsPath::as_str).unwrap_or(""),
                pages = summary.pages,
                rows_upserted = summary.rows_upserted,
                rows_deleted = summary.rows_deleted,
                api_requests = summary.api_requests,
                "mirror run finished"
            ),
        }
        self.announce(&summary);
        summary
    }

    /// Another run of the resource is going (in this process or another): record the skip.
    async fn skip(&self, new: &NewRun) -> RunSummary {
        let inner = &self.inner;
        inner.skipped.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            skipped_overlap = true,
            "another run of this resource is still going; this run is skipped"
        );
        let run_id = inner
            .db
            .record_skipped(new.clone())
            .await
            .unwrap_or_default();
        let summary = summary_of(new, run_id, RunOutcome::Skipped, new.started_at);
        self.announce(&summary);
        summary
    }

    fn announce(&self, summary: &RunSummary) {
        if let Some(events) = &self.inner.events {
            events.send(summary.clone());
        }
    }
}

fn summary_of(
    new: &NewRun,
    run_id: i64,
    outcome: RunOutcome,
    finished_at: DateTime<Utc>,
) -> RunSummary {
    RunSummary {
        run_id,
        account: new.account.clone(),
        resource: new.resource,
        mode: new.mode,
        trigger: new.trigger,
        path: None,
        resumed_from: None,
        started_at: new.started_at,
        finished_at,
        pages: 0,
        rows_upserted: 0,
        rows_deleted: 0,
        api_requests: 0,
        outcome,
        error: None,
        resets_at: None,
    }
}
