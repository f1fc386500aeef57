//! The runner: imports each sealed batch, polls its activity and gives every command its
//! result; resumes the batches a previous run left polling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::handler::{Attempt, HandleError, ImportError, ImportPoll};
use crate::pipeline::process::{Disposition, Processor, Subject};
use crate::store::bulk::StoredItem;

use super::batcher::{LANE_WAIT, Live, Member, Open, Sealed};
use super::outcome;

/// A batch's commands are unacked while it runs: after this long from the import, the
/// commands get a transient failure (retry) — well below RabbitMQ's 30-minute consumer timeout.
const ACTIVITY_DEADLINE: Duration = Duration::from_secs(20 * 60);
/// Results published at once when a batch finishes.
const PUBLISH_CONCURRENCY: usize = 64;

/// Loads the batches a previous run left polling (before consuming starts), so that their
/// redelivered commands rejoin them instead of importing again.
pub(crate) async fn resume(processor: &Arc<Processor>) {
    let now = processor.clock.now();
    let loaded = processor.store.bulk_load_open(now).await;
    let batches = match loaded {
        Ok(batches) => batches,
        Err(error) => {
            tracing::error!(error = %error, "could not load unfinished bulk imports; their commands will import again");
            return;
        }
    };
    let bulk = &processor.bulk;
    for batch in batches {
        tracing::info!(batch = %batch.id, activity_id = %batch.activity_id, size = batch.items.len(), "resuming a bulk import left unfinished");
        bulk.lock().live.insert(batch.id.clone(), Live::default());
        let _ = bulk.sealed.send(Sealed::Resumed(batch));
    }
}

/// Seals batches as their windows close and runs each sealed batch, until `shutdown`.
pub(crate) async fn run(processor: Arc<Processor>, shutdown: CancellationToken) {
    let Some(mut inbox) = processor
        .bulk
        .inbox
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    else {
        return;
    };
    let period = (processor.bulk.config.window / 4)
        .clamp(Duration::from_millis(10), Duration::from_millis(250));
    let mut tick = tokio::time::interval(period);
    // Open batches waiting for their lane outlive the window: their commands' claims are
    // renewed like those of a running batch.
    let renewal = (processor.settings.claim_lease / 3).max(Duration::from_millis(10));
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + renewal, renewal);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => processor.bulk.seal_expired(),
            _ = renew.tick() => {
                for (account, ids) in processor.bulk.open_claims(renewal) {
                    tokio::spawn(renew_open(processor.clone(), account, ids));
                }
            }
            sealed = inbox.recv() => match sealed {
                Some(sealed) => {
                    tokio::spawn(run_batch(processor.clone(), sealed));
                }
                None => return,
            },
        }
    }
}

/// Renews the claims on the commands of an open batch.
async fn renew_open(p: Arc<Processor>, account: String, ids: Vec<String>) {
    match p.store.ledger_renew(&account, &ids, p.claim()).await {
        Ok(held) => tracing::debug!(held, of = ids.len(), "claims of an open batch renewed"),
        Err(error) => {
            tracing::warn!(error = %error, "could not renew the claims on commands in an open batch")
        }
    }
}

/// Waits for the account's lane until `until`; past it, goes on without.
async fn take_lane(p: &Processor, account: &str, until: Instant) -> Option<OwnedSemaphorePermit> {
    let lane = p.bulk.lane(account);
    let taken = tokio::time::timeout_at(until.into(), lane.acquire_owned()).await;
    match taken {
        Ok(Ok(permit)) => Some(permit),
        _ => {
            tracing::info!(
                account,
                "another bulk import of this account is still running; importing beside it"
            );
            None
        }
    }
}

/// Runs a sealed batch, renewing the claim on its commands while it waits for its lane and
/// while the import runs.
async fn run_batch(p: Arc<Processor>, sealed: Sealed) {
    let (account, ids): (String, Vec<String>) = match &sealed {
        Sealed::Fresh(open) => (
            open.account.clone(),
            open.members.iter().map(|m| m.id.clone()).collect(),
        ),
        Sealed::Resumed(batch) => (
            batch.account.clone(),
            batch.items.iter().map(|i| i.command_id.clone()).collect(),
        ),
    };
    let worker = p.clone();
    p.while_claimed(&account, &ids, run_sealed(worker, sealed))
        .await;
}

async fn run_sealed(p: Arc<Processor>, sealed: Sealed) {
    match sealed {
        Sealed::Fresh(open) => {
            if open.members.len() <= 2 {
                let Open { id, members, .. } = open;
                one_by_one(&p, &id, members).await;
                return;
            }
            let lane = take_lane(&p, &open.account, open.opened + LANE_WAIT).await;
            import(p, open, lane).await
        }
        Sealed::Resumed(batch) => {
            let lane = take_lane(&p, &batch.account, Instant::now() + LANE_WAIT).await;
            let members = batch
                .items
                .iter()
                .map(|item| Member {
                    id: item.command_id.clone(),
                    account: batch.account.clone(),
                    command_type: "contact.upsert".into(),
                    email: item.email.clone(),
                    command: None,
                    attempts: item.attempts,
                    started_at: item.started_at,
                })
                .collect();
            let elapsed = (p.clock.now() - batch.created_at)
                .to_std()
                .unwrap_or_default();
            let deadline = Instant::now() + ACTIVITY_DEADLINE.saturating_sub(elapsed);
            let batch_id = batch.id.clone();
            let requests = poll_and_finish(
                &p,
                &batch_id,
                &batch.account,
                &batch.list_ids,
                members,
                &batch.activity_id,
                deadline,
                lane,
            )
            .await;
            log_batch(&p, &batch_id, batch.items.len(), requests);
        }
    }
}

/// Imports a fresh batch (of three or more), holding `lane` until its ids are read.
async fn import(p: Arc<Processor>, open: Open, lane: Option<OwnedSemaphorePermit>) {
    let Open {
        id,
        account,
        lists,
        members,
        rows,
        ..
    } = open;
    let now = p.clock.now();
    let items: Vec<StoredItem> = members
        .iter()
        .enumerate()
        .map(|(i, m)| StoredItem {
            row: i as u32 + 1,
            command_id: m.id.clone(),
            email: m.email.clone(),
            attempts: m.attempts,
            started_at: m.started_at,
        })
        .collect();
    let stored = p.store.bulk_create(&id, &account, &lists, items, now).await;
    if let Err(error) = stored {
        let error = Arc::new(error);
        finish(&p, &id, &members, |_| {
            Err(HandleError::Storage(error.clone()))
        })
        .await;
        return;
    }
    p.stats
        .bulk_batches
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let size = members.len();
    let started = Instant::now();
    match p.handler.start_import(&account, rows, &lists).await {
        Ok(activity_id) => {
            if let Err(error) = p.store.bulk_set_activity(&id, &activity_id).await {
                tracing::error!(error = %error, batch = %id, "could not store the activity id; a restart would import these upserts again");
            }
            tracing::info!(batch = %id, activity_id = %activity_id, size, "bulk import accepted");
            let requests = 1 + poll_and_finish(
                &p,
                &id,
                &account,
                &lists,
                members,
                &activity_id,
                started + ACTIVITY_DEADLINE,
                lane,
            )
            .await;
            log_batch(&p, &id, size, requests);
        }
        Err(error @ ImportError::Refused(_)) => {
            drop(lane);
            tracing::warn!(batch = %id, size, message = %error.message(), "the API refused the bulk import; applying its upserts one by one");
            set_status(&p, &id, "failed").await;
            log_batch(&p, &id, size, 1);
            one_by_one(&p, &id, members).await;
        }
        Err(error) => {
            drop(lane);
            let lost = error.maybe_applied();
            tracing::warn!(batch = %id, size, error = %error, "the bulk import failed; its upserts are retried");
            set_status(&p, &id, if lost { "abandoned" } else { "failed" }).await;
            log_batch(&p, &id, size, 1);
            let template = error.into_handle_error();
            finish(&p, &id, &members, |_| Err(template.copy_for_batch())).await;
        }
    }
}

/// Polls the activity until it ends (or the deadline), reads the contact ids, lets go of
/// the account's `lane`, then gives every command its result. Returns the requests spent.
#[allow(clippy::too_many_arguments)]
async fn poll_and_finish(
    p: &Arc<Processor>,
    batch: &str,
    account: &str,
    lists: &[String],
    members: Vec<Member>,
    activity_id: &str,
    deadline: Instant,
    lane: Option<OwnedSemaphorePermit>,
) -> u64 {
    let config = &p.bulk.config;
    // First look after an estimate from the size, then doubling, capped.
    let mut delay = (config.poll_initial + Duration::from_millis(members.len() as u64 / 10))
        .min(config.poll_max);
    let mut requests = 0;
    let ended = loop {
        let wait = delay.min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(wait).await;
        if Instant::now() >= deadline {
            break Err(HandleError::import_overdue(activity_id));
        }
        requests += 1;
        match p.handler.poll_import(account, activity_id).await {
            ImportPoll::Ended(activity) => break Ok(activity),
            ImportPoll::Running => {}
            ImportPoll::Stop(error) => break Err(error),
        }
        delay = (delay * 2).min(config.poll_max);
    };
    let activity = match ended {
        Ok(activity) => activity,
        Err(template) => {
            drop(lane);
            set_status(p, batch, "abandoned").await;
            finish(p, batch, &members, |_| Err(template.copy_for_batch())).await;
            return requests;
        }
    };
    if !activity.completed() {
        drop(lane);
        let state = &activity.state;
        tracing::warn!(batch, activity_id, state = %state, "the import activity did not complete; its upserts are retried");
        set_status(p, batch, "failed").await;
        let template = HandleError::import_incomplete(activity_id, state);
        finish(p, batch, &members, |_| Err(template.copy_for_batch())).await;
        return requests;
    }
    let errors = outcome::row_errors(&activity.row_errors);
    let wanted: Vec<String> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| !errors.contains_key(&(i + 1)))
        .map(|(_, m)| m.email.clone())
        .collect();
    let since = activity.created_at.unwrap_or_else(|| p.clock.now()) - chrono::Duration::seconds(2);
    // Bounded by the activity's end too, so contacts of other batches on the same list do
    // not fill the pages this batch reads.
    let until = activity.ended_at.map(|t| t + chrono::Duration::seconds(2));
    let (ids, unsubscribed, spent) = p
        .handler
        .lookup_ids(account, &lists[0], since, until, &wanted)
        .await;
    requests += spent;
    drop(lane);
    set_status(p, batch, "done").await;
    let size = members.len();
    finish(p, batch, &members, |i| match errors.get(&(i + 1)) {
        Some(reason) => Err(HandleError::Rejected(outcome::rejection(reason))),
        None => {
            let mut value = json!({
                "contact_id": ids.get(&members[i].email),
                "email": members[i].email,
                "action": "imported",
                "batch": {"activity_id": activity_id, "size": size},
            });
            // The import keeps an existing contact's permission.
            if unsubscribed.contains(&members[i].email) {
                value["permission"] = json!("unchanged");
            }
            Ok(value)
        }
    })
    .await;
    requests
}

/// Gives every member its result: stored in the ledger first (one transaction), then
/// published and acked for the members whose delivery is here.
async fn finish(
    p: &Arc<Processor>,
    batch: &str,
    members: &[Member],
    outcome: impl Fn(usize) -> Result<Value, HandleError>,
) {
    let mut waiters = {
        let mut state = p.bulk.lock();
        let live = state.live.entry(batch.to_owned()).or_default();
        live.finished = true;
        std::mem::take(&mut live.waiters)
    };
    let mut stored = Vec::new();
    let mut to_dispose = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let waiter = waiters.remove(&member.id);
        let (attempts, release) = match &waiter {
            Some(w) => (w.attempts, w.release.clone()),
            None => (member.attempts, None),
        };
        let subject = Subject {
            id: &member.id,
            command_type: &member.command_type,
            account: &member.account,
        };
        let disposition = match p
            .conclude(subject, outcome(i), attempts, release, member.started_at)
            .await
        {
            Ok(disposition) => disposition,
            Err(error) => {
                p.store_health.report(&error.to_string());
                if let Some(w) = waiter {
                    p.store_health.hand_back(&w.session, w.delivery).await;
                }
                continue;
            }
        };
        if let Disposition::Final { result, .. } = &disposition {
            stored.push((
                result.command_id.clone(),
                result.command_type.clone(),
                result.outcome.as_str().to_owned(),
                serde_json::to_string(result).unwrap_or_default(),
            ));
        }
        if let Some(w) = waiter {
            to_dispose.push((w, disposition));
        }
    }
    if let Some(account) = members.first().map(|m| m.account.clone()) {
        let now = p.clock.now();
        let saved = p.store.bulk_finish_all(&account, stored, now).await;
        if let Err(error) = saved {
            p.store_health.report(&error.to_string());
            for (w, _) in to_dispose {
                p.store_health.hand_back(&w.session, w.delivery).await;
            }
            p.bulk.lock().live.remove(batch);
            return;
        }
    }
    p.stats
        .bulk_commands
        .fetch_add(members.len() as u64, std::sync::atomic::Ordering::Relaxed);
    futures_util::stream::iter(to_dispose)
        .for_each_concurrent(PUBLISH_CONCURRENCY, |(w, disposition)| async move {
            if let Err(error) = p.dispose(&w.session, &w.delivery, disposition).await {
                p.dispose_failed(&w.session, w.delivery, &error).await;
            }
        })
        .await;
    p.bulk.lock().live.remove(batch);
}

/// Applies the members through the ordinary handler, one after the other.
async fn one_by_one(p: &Arc<Processor>, batch: &str, members: Vec<Member>) {
    let mut waiters = {
        let mut state = p.bulk.lock();
        let live = state.live.entry(batch.to_owned()).or_default();
        live.finished = true;
        std::mem::take(&mut live.waiters)
    };
    for member in members {
        let (Some(w), Some(command)) = (waiters.remove(&member.id), member.command) else {
            continue;
        };
        p.stats
            .bulk_one_by_one
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let attempt = Attempt {
            command_id: member.id.clone(),
            account: member.account.clone(),
            number: w.attempts,
            effect_ref: None,
            fence: Some(p.fence(&member.account, &member.id)),
        };
        let handled = p.handler.handle(&attempt, &command).await;
        let subject = Subject {
            id: &member.id,
            command_type: &member.command_type,
            account: &member.account,
        };
        match p
            .conclude(
                subject,
                handled,
                w.attempts,
                w.release.clone(),
                member.started_at,
            )
            .await
        {
            Ok(disposition) => {
                if let Err(error) = p.dispose(&w.session, &w.delivery, disposition).await {
                    p.dispose_failed(&w.session, w.delivery, &error).await;
                }
            }
            Err(error) => p.store_failed(&w.session, w.delivery, &error).await,
        }
    }
    p.bulk.lock().live.remove(batch);
}

async fn set_status(p: &Arc<Processor>, batch: &str, status: &'static str) {
    if let Err(error) = p.store.bulk_set_status(batch, status, p.clock.now()).await {
        tracing::warn!(error = %error, "could not record the batch's end");
    }
}

fn log_batch(p: &Processor, batch: &str, size: usize, requests: u64) {
    p.stats
        .bulk_requests
        .fetch_add(requests, std::sync::atomic::Ordering::Relaxed);
    let per_100 = if size == 0 {
        0.0
    } else {
        requests as f64 * 100.0 / size as f64
    };
    tracing::info!(
        batch,
        size,
        requests,
        requests_per_100_contacts = format!("{per_100:.2}"),
        "bulk import finished"
    );
}
