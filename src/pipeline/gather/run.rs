//! The runner: one worker per account runs its sealed batches in order — e-mails looked up,
//! one activity, its id stored for each command, polled until it ends, results given out;
//! halves run again when the activity was refused or came up short. A delete command the API
//! refuses on its own goes through the ordinary handler, whose answer (`not_found`, or
//! `already_deleted` on a retry) is the one it gets alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::ApiError;
use crate::command::FieldError;
use crate::command::outcome::{ErrorCode, ResultError};
use crate::command::tagging::{ActivityKind, TaggingContacts};
use crate::handler::{
    Attempt, ContactIds, EndedImport, Erasure, GatheredItems, HandleError, ImportPoll, Resolve,
};
use crate::pipeline::process::{Processor, Subject};

use super::{Member, Open};

/// Longest a batch's activity is awaited; its commands are then retried (well below
/// RabbitMQ's 30-minute consumer timeout).
const ACTIVITY_DEADLINE: Duration = Duration::from_secs(20 * 60);
/// Results given out at once when a batch finishes.
const DISPOSE_CONCURRENCY: usize = 64;
/// Ledger rows updated at once with an accepted activity's id.
const RECORD_CONCURRENCY: usize = 16;

/// Seals batches as their windows close and hands each sealed batch to its account's
/// worker, until `shutdown`.
pub(crate) async fn run(processor: Arc<Processor>, shutdown: CancellationToken) {
    let Some(mut inbox) = processor
        .gather
        .inbox
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    else {
        return;
    };
    let period = (processor.gather.config.window / 4)
        .clamp(Duration::from_millis(10), Duration::from_millis(250));
    let mut tick = tokio::time::interval(period);
    let renewal = (processor.settings.claim_lease / 3).max(Duration::from_millis(10));
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + renewal, renewal);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut workers: HashMap<String, mpsc::UnboundedSender<Open>> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => processor.gather.seal_expired(),
            _ = renew.tick() => {
                for (account, ids) in processor.gather.open_claims(renewal) {
                    let p = processor.clone();
                    tokio::spawn(async move {
                        if let Err(error) = p.store.ledger_renew(&account, &ids, p.claim()).await {
                            tracing::warn!(error = %error, "could not renew the claims on commands in an open batch");
                        }
                    });
                }
            }
            sealed = inbox.recv() => match sealed {
                Some(open) => {
                    let worker = workers
                        .entry(open.account.clone())
                        .or_insert_with(|| start_worker(processor.clone()));
                    let _ = worker.send(open);
                }
                None => return,
            },
        }
    }
}

/// A worker running one account's batches one after the other.
fn start_worker(p: Arc<Processor>) -> mpsc::UnboundedSender<Open> {
    let (sender, mut batches) = mpsc::unbounded_channel::<Open>();
    tokio::spawn(async move {
        while let Some(open) = batches.recv().await {
            let account = open.account.clone();
            let ids: Vec<String> = open.members.iter().map(|m| m.id.clone()).collect();
            p.gather.started(&open.id);
            p.while_claimed(&account, &ids, run_batch(&p, open)).await;
            p.gather.batch_done(&account);
        }
    });
    sender
}

/// A command of a running batch with its contacts' ids.
struct Ready {
    member: Member,
    contact_ids: Vec<String>,
    /// How many of `contact_ids` came from the mirror (which may be behind).
    from_mirror: usize,
    /// A `contact.erase`'s contact, erased once the activity has deleted it.
    erasure: Option<Erasure>,
}

async fn run_batch(p: &Arc<Processor>, open: Open) {
    let Open {
        id,
        account,
        kind,
        targets,
        members,
        ..
    } = open;
    // A tagging or membership command alone in its batch still awaits its activity, so that
    // a later command about its contacts (waiting for its key) applies after the activity has.
    // A delete alone goes the ordinary way (a contact's DELETE is done when answered; a list's
    // or tag's activity is reported as accepted) — unless a command already waits for it.
    if members.len() == 1 && kind.deleted_key().is_some() && !waited_for(p, &members[0]) {
        one_by_one(p, members).await;
        return;
    }
    let size = members.len();
    let mut ready = Vec::with_capacity(members.len());
    for member in members {
        let Some(contacts) = member.contacts() else {
            // Not a gathering command: never joins (see `Gatherer::join`); answered, not dropped.
            let error = HandleError::failed(
                ErrorCode::Unsupported,
                "the command reached the gatherer but names no contacts; it was not applied",
            );
            give_out(p, vec![(member, Err(error))]).await;
            continue;
        };
        match p
            .handler
            .gathered_items(&account, &member.id, kind, &contacts, Resolve::MirrorFirst)
            .await
        {
            Ok(GatheredItems::Ids(resolved)) => ready.push(Ready {
                member,
                contact_ids: resolved.ids,
                from_mirror: resolved.from_mirror,
                erasure: None,
            }),
            Ok(GatheredItems::Erasure(erasure)) => ready.push(Ready {
                member,
                contact_ids: vec![erasure.contact_id.clone()],
                from_mirror: 0,
                erasure: Some(erasure),
            }),
            Ok(GatheredItems::Answered(data)) => give_out(p, vec![(member, Ok(data))]).await,
            Err(error) => give_out(p, vec![(member, Err(error))]).await,
        }
    }
    let deadline = Instant::now() + ACTIVITY_DEADLINE;
    let requests = run_group(p, &account, kind, &targets, ready, deadline).await;
    let per_100 = requests as f64 * 100.0 / size as f64;
    tracing::info!(
        batch = %id,
        size,
        requests,
        requests_per_100_commands = format!("{per_100:.2}"),
        "gathered activity finished"
    );
}

/// Runs one activity for `ready` (all of one kind and targets); on a refusal or a short
/// activity, each half again. Returns the API requests spent.
fn run_group<'a>(
    p: &'a Arc<Processor>,
    account: &'a str,
    kind: ActivityKind,
    targets: &'a [String],
    ready: Vec<Ready>,
    deadline: Instant,
) -> BoxFuture<'a, u64> {
    Box::pin(async move {
        if ready.is_empty() {
            return 0;
        }
        let mut seen = HashSet::new();
        let union: Vec<String> = ready
            .iter()
            .flat_map(|r| r.contact_ids.iter())
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect();
        let ids: Vec<String> = ready.iter().map(|r| r.member.id.clone()).collect();
        let fence = p.fence_all(account, ids.clone());
        let started = p
            .handler
            .start_activity(account, kind, &union, targets, fence)
            .await;
        let activity = match started {
            Ok(activity) => activity,
            Err(ApiError::NotFound { .. } | ApiError::Invalid { .. }) if ready.len() > 1 => {
                tracing::info!(
                    commands = ready.len(),
                    route = kind.route(),
                    "the API refused a gathered activity; trying each half"
                );
                return 1 + halves(p, account, kind, targets, ready, deadline).await;
            }
            Err(refused @ ApiError::NotFound { .. })
                if ready.len() == 1 && ready[0].from_mirror > 0 =>
            {
                // The mirror may be behind (a contact deleted since its last pass): the
                // addresses are looked up, and the activity tried once more if that changes
                // the ids; otherwise the 404 is the command's answer.
                let Some(mut r) = ready.into_iter().next() else {
                    return 1;
                };
                let contacts = r
                    .member
                    .contacts()
                    .unwrap_or(TaggingContacts::Ids(Vec::new()));
                let resolved = ContactIds {
                    ids: r.contact_ids.clone(),
                    from_mirror: r.from_mirror,
                };
                let looked_up = p
                    .handler
                    .looked_up_again(account, &r.member.id, &contacts, &resolved, kind.route())
                    .await;
                let error = match looked_up {
                    Ok(Some(looked_up)) => {
                        r.contact_ids = looked_up.ids;
                        r.from_mirror = 0;
                        return 1 + run_group(p, account, kind, targets, vec![r], deadline).await;
                    }
                    Ok(None) => HandleError::from(refused),
                    Err(error) => error,
                };
                give_out(p, vec![(r.member, Err(error))]).await;
                return 1;
            }
            Err(ApiError::NotFound { .. }) if kind.deleted_key().is_some() => {
                // Alone, a delete's 404 means `not_found`, or `already_deleted` on a retry:
                // the ordinary handler answers it so (one request more, once).
                let members = ready.into_iter().map(|r| r.member).collect();
                return 1 + one_by_one(p, members).await;
            }
            Err(error) => {
                let template = HandleError::from(error);
                fail_all(p, ready, &template).await;
                return 1;
            }
        };
        let activity_id = activity.activity_id;
        record_effects(p, account, &ids, Some(&activity_id)).await;
        if kind == ActivityKind::FieldDelete {
            // Whatever becomes of the activity, names must be read again from now on.
            p.handler.forget_custom_fields(account);
        }
        let (ended, polls) = await_activity(p, account, &activity_id, union.len(), deadline).await;
        if kind == ActivityKind::FieldDelete {
            // Names resolved while it ran may have cached the fields it deleted.
            p.handler.forget_custom_fields(account);
        }
        let requests = 1 + polls;
        let ended = match ended {
            Ok(ended) => ended,
            Err(template) => {
                fail_all(p, ready, &template).await;
                return requests;
            }
        };
        if !ended.completed() {
            tracing::warn!(activity_id = %activity_id, state = %ended.state, "a gathered activity did not complete; its commands are retried");
            let template = HandleError::import_incomplete(&activity_id, &ended.state);
            // Their retries must not answer from an activity that did not complete.
            record_effects(p, account, &ids, None).await;
            fail_all(p, ready, &template).await;
            return requests;
        }
        if ended.short() {
            // The activity's errors name exactly the contacts it left out: those commands
            // fail, naming them; the others succeed. Otherwise, halves.
            if let Some(left_out) = left_out(&ended, &union) {
                let erasures = erasures_of(&ready);
                let results = attributed(ready, &left_out, kind, &activity_id, union.len());
                let results = erase_after(p, account, results, erasures).await;
                give_out(p, results).await;
                return requests;
            }
            if ready.len() > 1 {
                tracing::info!(activity_id = %activity_id, commands = ready.len(), "a gathered activity completed fewer items than it was given; trying each half");
                record_effects(p, account, &ids, None).await;
                return requests + halves(p, account, kind, targets, ready, deadline).await;
            }
            let error = short_error(&ended, &activity_id);
            fail_all(p, ready, &error).await;
            return requests;
        }
        let commands = ready.len();
        let erasures = erasures_of(&ready);
        let results = ready
            .into_iter()
            .map(|r| {
                let data = completed(&r, kind, &activity_id, commands, union.len());
                (r.member, Ok(data))
            })
            .collect();
        let results = erase_after(p, account, results, erasures).await;
        give_out(p, results).await;
        requests
    })
}

/// The erasures of a group's `contact.erase` commands, by command id.
fn erasures_of(ready: &[Ready]) -> HashMap<String, Erasure> {
    ready
        .iter()
        .filter_map(|r| Some((r.member.id.clone(), r.erasure.clone()?)))
        .collect()
}

/// Each `contact.erase` whose share of the activity completed is erased now (mirror rows,
/// tombstone, ledger scrub); its result is the erasure's, with the activity's `activity_id`,
/// `activity_state` and `batch`.
async fn erase_after(
    p: &Arc<Processor>,
    account: &str,
    results: Vec<(Member, Result<Value, HandleError>)>,
    erasures: HashMap<String, Erasure>,
) -> Vec<(Member, Result<Value, HandleError>)> {
    if erasures.is_empty() {
        return results;
    }
    let mut out = Vec::with_capacity(results.len());
    for (member, result) in results {
        let (Ok(shared), Some(erasure)) = (&result, erasures.get(&member.id)) else {
            out.push((member, result));
            continue;
        };
        let erased = p
            .handler
            .finish_gathered_erasure(account, &member.id, erasure)
            .await
            .map(|mut data| {
                for key in ["activity_id", "activity_state", "batch"] {
                    data[key] = shared[key].clone();
                }
                data
            });
        out.push((member, erased));
    }
    out
}

/// A gathered command's `data` once its share of the activity completed.
fn completed(
    r: &Ready,
    kind: ActivityKind,
    activity_id: &str,
    commands: usize,
    contacts: usize,
) -> Value {
    let mut data = json!({
        "activity_id": activity_id,
        "activity_state": "completed",
        "batch": {"activity_id": activity_id, "commands": commands, "contacts": contacts},
    });
    match (kind.targets_key(), kind.deleted_key()) {
        (Some(key), _) => {
            data["contact_ids"] = json!(r.contact_ids);
            data[key] = json!(r.member.targets());
        }
        (None, Some(key)) => {
            // The activity was accepted for every id, so none was unknown; alone, a delete
            // says `already_deleted` only after a 404.
            data[key] = json!(r.contact_ids.first());
            data["already_deleted"] = json!(false);
        }
        (None, None) => {}
    }
    data
}

/// The contacts a short activity left out, with the reason, when its errors name exactly as
/// many of the activity's contacts as it fell short by (each error naming one contact id).
fn left_out(ended: &EndedImport, union: &[String]) -> Option<HashMap<String, String>> {
    let (Some(total), Some(done)) = ended.items else {
        return None;
    };
    let mut named = HashMap::new();
    for reason in &ended.row_errors {
        let mut ids = union.iter().filter(|id| reason.contains(id.as_str()));
        let (Some(id), None) = (ids.next(), ids.next()) else {
            return None;
        };
        named.insert(id.clone(), reason.clone());
    }
    (named.len() as u64 == total.saturating_sub(done) && !named.is_empty()).then_some(named)
}

/// Each command's result once the contacts the activity left out are known: a command with
/// one of them fails naming each (`data.contact_ids[i]` or `data.emails[i]`); the others
/// succeed.
fn attributed(
    ready: Vec<Ready>,
    left_out: &HashMap<String, String>,
    kind: ActivityKind,
    activity_id: &str,
    contacts: usize,
) -> Vec<(Member, Result<Value, HandleError>)> {
    let commands = ready.len();
    ready
        .into_iter()
        .map(|r| {
            let by_email = matches!(r.member.contacts(), Some(TaggingContacts::Emails(_)));
            let deleted = kind.deleted_key();
            let fields: Vec<FieldError> = r
                .contact_ids
                .iter()
                .enumerate()
                .filter_map(|(i, id)| {
                    let reason = left_out.get(id)?;
                    let field = match (deleted, by_email) {
                        (Some(_), true) => "data.email".to_owned(),
                        (Some(key), false) => format!("data.{key}"),
                        (None, true) => format!("data.emails[{i}]"),
                        (None, false) => format!("data.contact_ids[{i}]"),
                    };
                    Some(FieldError::new(field, reason.clone()))
                })
                .collect();
            if fields.is_empty() {
                let data = completed(&r, kind, activity_id, commands, contacts);
                return (r.member, Ok(data));
            }
            (r.member, Err(short_error_for(activity_id, fields)))
        })
        .collect()
}

/// The failure of a command whose contacts the activity left out (`fields` name them).
fn short_error_for(activity_id: &str, fields: Vec<FieldError>) -> HandleError {
    HandleError::Failed(ResultError {
        code: ErrorCode::ApiValidation,
        message: format!(
            "the activity {activity_id} left out {} of the command's contacts: {}",
            fields.len(),
            fields
                .iter()
                .map(|f| f.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        retryable: false,
        api_status: None,
        api_error_key: None,
        fields,
    })
}

/// The failure of the one command a short activity was about, when its errors do not say
/// which contacts it left out.
fn short_error(ended: &EndedImport, activity_id: &str) -> HandleError {
    let (total, done) = ended.items;
    HandleError::Failed(ResultError {
        code: ErrorCode::ApiValidation,
        message: format!(
            "the activity {activity_id} completed {} of {} items: {}",
            done.unwrap_or_default(),
            total.unwrap_or_default(),
            if ended.row_errors.is_empty() {
                "the API gave no reason".to_owned()
            } else {
                ended.row_errors.join("; ")
            }
        ),
        retryable: false,
        api_status: None,
        api_error_key: None,
        fields: Vec::new(),
    })
}

/// Runs each half of `ready` as its own activity, one after the other.
async fn halves(
    p: &Arc<Processor>,
    account: &str,
    kind: ActivityKind,
    targets: &[String],
    mut ready: Vec<Ready>,
    deadline: Instant,
) -> u64 {
    let second = ready.split_off(ready.len() / 2);
    run_group(p, account, kind, targets, ready, deadline).await
        + run_group(p, account, kind, targets, second, deadline).await
}

/// The accepted activity's id in each command's ledger row (`Some`): a redelivery answers
/// with it instead of starting another activity. `None` forgets it again, before a short
/// activity's commands are tried in halves: a redelivery must not answer from an activity
/// that left contacts out.
async fn record_effects(
    p: &Arc<Processor>,
    account: &str,
    ids: &[String],
    activity_id: Option<&str>,
) {
    let mut failures = 0;
    for chunk in ids.chunks(RECORD_CONCURRENCY) {
        let stored = futures_util::future::join_all(chunk.iter().map(|id| async move {
            match activity_id {
                Some(activity_id) => p.store.ledger_record_effect(account, id, activity_id).await,
                None => p.store.ledger_clear_effect(account, id).await,
            }
        }))
        .await;
        failures += stored.iter().filter(|s| s.is_err()).count();
    }
    if failures > 0 {
        tracing::error!(
            failures,
            "could not store (or clear) a gathered activity's id for every command; those may answer from the wrong activity after a restart"
        );
    }
}

/// Every command of `ready` gets a copy of `error`.
async fn fail_all(p: &Arc<Processor>, ready: Vec<Ready>, error: &HandleError) {
    let results = ready
        .into_iter()
        .map(|r| (r.member, Err(error.copy_for_batch())))
        .collect();
    give_out(p, results).await;
}

/// Polls the activity (first after an estimate from its size, then doubling, capped) until
/// it ends or the deadline. Returns the ended activity (or the failure every command gets)
/// and the polls spent.
async fn await_activity(
    p: &Arc<Processor>,
    account: &str,
    activity_id: &str,
    contacts: usize,
    deadline: Instant,
) -> (Result<crate::handler::EndedImport, HandleError>, u64) {
    let config = &p.gather.config;
    let mut delay =
        (config.poll_initial + Duration::from_millis(contacts as u64 / 10)).min(config.poll_max);
    let mut polls = 0;
    loop {
        let wait = delay.min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(wait).await;
        if Instant::now() >= deadline {
            return (Err(HandleError::import_overdue(activity_id)), polls);
        }
        polls += 1;
        match p.handler.poll_import(account, activity_id).await {
            ImportPoll::Ended(ended) => return (Ok(ended), polls),
            ImportPoll::Running => {}
            ImportPoll::Stop(error) => return (Err(error), polls),
        }
        delay = (delay * 2).min(config.poll_max);
    }
}

/// Stores, publishes and acks each command's result.
async fn give_out(p: &Arc<Processor>, results: Vec<(Member, Result<Value, HandleError>)>) {
    let members: Vec<&Member> = results.iter().map(|(m, _)| m).collect();
    let waiters = p.gather.take_waiters(members.iter().copied());
    let done: Vec<(String, String)> = members
        .iter()
        .map(|m| (m.account.clone(), m.id.clone()))
        .collect();
    futures_util::stream::iter(results.into_iter().zip(waiters))
        .for_each_concurrent(DISPOSE_CONCURRENCY, |((member, handled), waiter)| async move {
            let Some(w) = waiter else {
                tracing::error!(command_id = %member.id, "a gathered command's delivery is missing; it comes back and is applied again");
                release_contact_keys(p, &member);
                return;
            };
            let subject = Subject {
                id: &member.id,
                command_type: &member.command_type,
                account: &member.account,
            };
            match p
                .conclude(subject, handled, w.attempts, w.release.clone(), member.started_at)
                .await
            {
                Ok(disposition) => {
                    if let Err(error) = p.dispose(&w.session, &w.delivery, disposition).await {
                        p.dispose_failed(&w.session, w.delivery, &error).await;
                    }
                }
                Err(error) => p.store_failed(&w.session, w.delivery, &error).await,
            }
            let holder = super::gathered_holder(&member.id);
            for key in &w.contact_keys {
                p.held.release(key, &holder);
            }
        })
        .await;
    p.gather.done_with(&done);
}

/// Whether another command waits behind `member` for one of the ordering keys it holds (its
/// contacts', as a gathered command; or a delete's own key, as `id#…`).
fn waited_for(p: &Processor, member: &Member) -> bool {
    let Some(gathering) = member.command.gathering() else {
        return false;
    };
    let gathered = super::gathered_holder(&member.id);
    let own = |holder: &String| {
        holder == &gathered
            || holder
                .rsplit_once('#')
                .is_some_and(|(id, _)| id == member.id)
    };
    let mut keys = super::contact_keys(gathering.kind, &gathering.contacts);
    keys.extend(member.command.ordering_key());
    keys.iter().any(|key| {
        let holders = p.held.holders(key);
        holders
            .iter()
            .position(own)
            .is_some_and(|at| holders.len() > at + 1)
    })
}

/// Frees the ordering keys of the contacts `member` names, held since it was gathered
/// (normally with its waiter; here when the waiter is missing).
fn release_contact_keys(p: &Processor, member: &Member) {
    let Some(gathering) = member.command.gathering() else {
        return;
    };
    let holder = super::gathered_holder(&member.id);
    for key in super::contact_keys(gathering.kind, &gathering.contacts) {
        p.held.release(&key, &holder);
    }
}

/// Applies the commands through the ordinary handler, one after the other. Returns them
/// counted (at least one request each).
async fn one_by_one(p: &Arc<Processor>, members: Vec<Member>) -> u64 {
    let count = members.len() as u64;
    for member in members {
        let attempts = p
            .gather
            .attempts_of(&member.account, &member.id)
            .unwrap_or(1);
        let attempt = Attempt {
            command_id: member.id.clone(),
            account: member.account.clone(),
            number: attempts,
            effect_ref: None,
            fence: Some(p.fence(&member.account, &member.id)),
        };
        let handled = p.handler.handle(&attempt, &member.command).await;
        give_out(p, vec![(member, handled)]).await;
    }
    count
}
