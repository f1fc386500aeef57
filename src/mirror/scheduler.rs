//! When the mirror runs on its own: tokio-cron-scheduler jobs from `mirror.schedule` (full,
//! nightly by default) and `mirror.incremental_schedule` (hourly), 6-field cron in UTC
//! (shared/RELIABILITY.md §6).
//!
//! Jobs are thin: for every authorised account, every resource in turn through
//! [`Mirror::run_once`], whose per-resource lock skips a run while the previous one of that
//! resource is still going (the scheduler itself would start overlapping runs). An incremental
//! tick that falls on a full tick (02:00 by default) leaves the hour to the full run. A run
//! stopped by the quota gets a one-shot job just after the reset, which continues the pass;
//! at start, passes left pending by a previous process are continued.
//!
//! With several replicas sharing the state store, each occurrence of a schedule runs on one
//! of them: the first to claim it in the store (`schedule_ticks`, see
//! [`crate::store::Store::schedule_claim`]); the others skip it. A pass whose replica died
//! half-way (its lease lapsed without being given back) is continued by another replica's
//! scheduler within [`ORPHAN_CHECK`]. Every job runs under a
//! `TaskTracker`, so [`MirrorScheduler::stop`] waits for the runs (which stop at their next
//! page once the mirror's token is cancelled).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use croner::Cron;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::task::TaskTracker;

use super::{Mirror, Mode, Resource, RunOutcome, Trigger};
use crate::config::MirrorSettings;

/// How often the scheduler looks for passes a dead replica left half-way.
pub const ORPHAN_CHECK: Duration = Duration::from_secs(60);

/// Where the replicas sharing a state store claim each occurrence of a schedule, and this
/// replica's name in the claims.
#[derive(Clone)]
pub struct ScheduleClaims {
    pub store: crate::store::Store,
    pub owner: String,
}

/// Jobs of the running scheduler.
pub struct MirrorScheduler {
    scheduler: JobScheduler,
    tracker: TaskTracker,
}

struct Shared {
    mirror: Mirror,
    tracker: TaskTracker,
    full: Cron,
    incremental: Cron,
    claims: Option<ScheduleClaims>,
    /// A resume-after-reset job is already waiting.
    resume_waiting: AtomicBool,
}

fn parse_cron(key: &str, expression: &str) -> anyhow::Result<Cron> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(expression)
        .with_context(|| format!("{key} = {expression:?} is not a 6-field cron expression"))
}

/// Starts the mirror's jobs. Stop them with [`MirrorScheduler::stop`] after cancelling the
/// mirror's token.
pub async fn start_scheduler(
    mirror: Mirror,
    settings: &MirrorSettings,
    claims: Option<ScheduleClaims>,
) -> anyhow::Result<MirrorScheduler> {
    let full = parse_cron("mirror.schedule", &settings.schedule)?;
    let incremental = parse_cron(
        "mirror.incremental_schedule",
        &settings.incremental_schedule,
    )?;
    let scheduler = JobScheduler::new()
        .await
        .context("starting the mirror scheduler")?;
    let tracker = TaskTracker::new();
    let shared = Arc::new(Shared {
        mirror,
        tracker: tracker.clone(),
        full,
        incremental,
        claims,
        resume_waiting: AtomicBool::new(false),
    });
    for (expression, mode) in [
        (&settings.schedule, Mode::Full),
        (&settings.incremental_schedule, Mode::Incremental),
    ] {
        let shared = shared.clone();
        let job = Job::new_async(expression.as_str(), move |_id, scheduler| {
            let shared = shared.clone();
            Box::pin(async move {
                let tracker = shared.tracker.clone();
                tracker.track_future(tick(shared, mode, scheduler)).await;
            })
        })
        .with_context(|| format!("scheduling the {} mirror", mode.as_str()))?;
        scheduler.add(job).await.context("adding a mirror job")?;
    }
    let resume = shared.clone();
    let job = Job::new_one_shot_async(Duration::from_secs(1), move |_id, scheduler| {
        let shared = resume.clone();
        Box::pin(async move {
            let tracker = shared.tracker.clone();
            tracker
                .track_future(resume_pending(shared, scheduler))
                .await;
        })
    })
    .context("scheduling the catch-up of pending passes")?;
    scheduler.add(job).await.context("adding a mirror job")?;
    if shared.claims.is_some() {
        let orphans = shared.clone();
        let job = Job::new_repeated_async(ORPHAN_CHECK, move |_id, scheduler| {
            let shared = orphans.clone();
            Box::pin(async move {
                let tracker = shared.tracker.clone();
                tracker
                    .track_future(resume_orphaned(shared, scheduler))
                    .await;
            })
        })
        .context("scheduling the check for passes left by a dead replica")?;
        scheduler.add(job).await.context("adding a mirror job")?;
    }
    scheduler
        .start()
        .await
        .context("starting the mirror scheduler")?;
    tracing::info!(
        full = %settings.schedule,
        incremental = %settings.incremental_schedule,
        "mirror scheduled (UTC)"
    );
    Ok(MirrorScheduler { scheduler, tracker })
}

impl MirrorScheduler {
    /// Stops scheduling and waits up to `grace` for runs in progress (cancel the mirror's
    /// token first so they stop at their next page).
    pub async fn stop(mut self, grace: Duration) {
        if let Err(error) = self.scheduler.shutdown().await {
            tracing::warn!(error = %error, "the mirror scheduler did not shut down cleanly");
        }
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "mirror runs still going at the deadline; their passes resume on the next start"
            );
        }
    }
}

/// Whether the full schedule fires within 30 seconds of now (then the incremental tick yields).
fn full_tick_near(full: &Cron) -> bool {
    let now = Utc::now();
    full.find_next_occurrence(&(now - chrono::Duration::seconds(30)), true)
        .is_ok_and(|at| at <= now + chrono::Duration::seconds(30))
}

async fn tick(shared: Arc<Shared>, mode: Mode, scheduler: JobScheduler) {
    if mode == Mode::Incremental && full_tick_near(&shared.full) {
        tracing::info!("incremental mirror tick left to the full run scheduled at the same time");
        return;
    }
    if !claim_occurrence(&shared, mode).await {
        return;
    }
    run_all(shared, mode, scheduler).await;
}

/// Whether this replica runs the occurrence of `mode`'s schedule that just fired: the one
/// that claims it first in the state store does. A store that cannot be asked leaves the
/// run to go ahead (the per-resource leases still keep two runs from overlapping; at worst
/// a resource is mirrored twice).
async fn claim_occurrence(shared: &Shared, mode: Mode) -> bool {
    let Some(claims) = &shared.claims else {
        return true;
    };
    let cron = match mode {
        Mode::Full => &shared.full,
        Mode::Incremental => &shared.incremental,
    };
    let Ok(due_at) = cron.find_previous_occurrence(&Utc::now(), true) else {
        return true;
    };
    let job = format!("mirror.{}", mode.as_str());
    match claims
        .store
        .schedule_claim(&job, due_at, &claims.owner)
        .await
    {
        Ok(true) => true,
        Ok(false) => {
            tracing::debug!(%job, %due_at, "this occurrence of the mirror's schedule runs on another replica");
            false
        }
        Err(error) => {
            tracing::warn!(error = %error, %job, "could not claim the mirror's scheduled run in the state store; running it here");
            true
        }
    }
}

/// Continues the passes that a replica which died left half-way (see [`ORPHAN_CHECK`]).
async fn resume_orphaned(shared: Arc<Shared>, scheduler: JobScheduler) {
    let mirror = &shared.mirror;
    let orphaned = match mirror.db().orphaned_passes().await {
        Ok(orphaned) => orphaned,
        Err(error) => {
            tracing::debug!(error = %error, "could not look for mirror passes left by a dead replica");
            return;
        }
    };
    for (account, resource, mode) in orphaned {
        if mirror.cancel_token().is_cancelled() {
            return;
        }
        tracing::info!(account = %account, resource = %resource, "continuing a mirror pass a stopped replica left half-way");
        let summary = mirror
            .run_once(&account, resource, mode, Trigger::Schedule)
            .await;
        if summary.outcome == RunOutcome::Interrupted
            && let Some(resets_at) = summary.resets_at
        {
            resume_after(&shared, mode, resets_at, scheduler).await;
            return;
        }
    }
}

/// Every resource of every authorised account, in turn. Stops at the first quota stop (the
/// quota is the API key's, so every other run would stop too) and books a resume for after
/// the reset.
/// (Boxed: it books a job that runs it again, and the compiler needs the cycle broken.)
fn run_all(shared: Arc<Shared>, mode: Mode, scheduler: JobScheduler) -> BoxedRun {
    Box::pin(async move { run_all_accounts(&shared, mode, scheduler).await })
}

type BoxedRun = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

async fn run_all_accounts(shared: &Arc<Shared>, mode: Mode, scheduler: JobScheduler) {
    let mirror = &shared.mirror;
    let accounts = match mirror.active_accounts().await {
        Ok(accounts) => accounts,
        Err(error) => {
            tracing::warn!(error = %error, "the mirror could not list the accounts; skipping this tick");
            return;
        }
    };
    for account in accounts {
        for resource in Resource::ALL {
            if mirror.cancel_token().is_cancelled() {
                return;
            }
            if mode == Mode::Incremental && !resource.scheduled_hourly() {
                continue;
            }
            let summary = mirror
                .run_once(&account, resource, mode, Trigger::Schedule)
                .await;
            if summary.outcome == RunOutcome::Interrupted
                && let Some(resets_at) = summary.resets_at
            {
                resume_after(shared, mode, resets_at, scheduler).await;
                return;
            }
        }
    }
}

/// Books one run of `mode` shortly after the quota resets.
async fn resume_after(
    shared: &Arc<Shared>,
    mode: Mode,
    resets_at: chrono::DateTime<Utc>,
    scheduler: JobScheduler,
) {
    if shared.resume_waiting.swap(true, Ordering::SeqCst) {
        return;
    }
    let wait = (resets_at - Utc::now() + chrono::Duration::minutes(1))
        .to_std()
        .unwrap_or(Duration::from_secs(60));
    let resume = shared.clone();
    let job = Job::new_one_shot_async(wait, move |_id, scheduler| {
        let shared = resume.clone();
        Box::pin(async move {
            shared.resume_waiting.store(false, Ordering::SeqCst);
            let tracker = shared.tracker.clone();
            tracker.track_future(run_all(shared, mode, scheduler)).await;
        })
    });
    let added = match job {
        Ok(job) => scheduler.add(job).await.map(|_| ()),
        Err(error) => Err(error),
    };
    match added {
        Ok(()) => tracing::info!(
            %resets_at,
            wait_s = wait.as_secs(),
            "mirror stopped by the quota; it continues after the reset"
        ),
        Err(error) => {
            shared.resume_waiting.store(false, Ordering::SeqCst);
            tracing::warn!(error = %error, "could not book the mirror's resume; the next tick continues it");
        }
    }
}

/// At start: continues the passes a previous process left in progress.
async fn resume_pending(shared: Arc<Shared>, scheduler: JobScheduler) {
    let mirror = &shared.mirror;
    let pending = match mirror.db().pending_passes().await {
        Ok(pending) => pending,
        Err(error) => {
            tracing::warn!(error = %error, "could not read the mirror's pending passes");
            return;
        }
    };
    for (account, resource, mode) in pending {
        if mirror.cancel_token().is_cancelled() {
            return;
        }
        tracing::info!(account = %account, resource = %resource, "continuing a mirror pass left in progress");
        let summary = mirror
            .run_once(&account, resource, mode, Trigger::Schedule)
            .await;
        if summary.outcome == RunOutcome::Interrupted
            && let Some(resets_at) = summary.resets_at
        {
            resume_after(&shared, mode, resets_at, scheduler).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_six_field_cron_expressions() {
        assert!(parse_cron("k", "0 0 2 * * *").is_ok());
        assert!(parse_cron("k", "0 2 * * *").is_err());
        assert!(parse_cron("k", "not cron").is_err());
    }

    #[test]
    fn an_incremental_tick_yields_only_when_the_full_schedule_fires_at_the_same_time() {
        let every_second = parse_cron("k", "* * * * * *").expect("valid");
        assert!(full_tick_near(&every_second));
        // Whatever the time now, one of two schedules twelve hours apart is far from it.
        let midnight = parse_cron("k", "0 0 0 * * *").expect("valid");
        let noon = parse_cron("k", "0 0 12 * * *").expect("valid");
        assert!(!(full_tick_near(&midnight) && full_tick_near(&noon)));
    }
}
