//! Gathered activities (issue 22): bursts of `contact.tag` / `contact.untag` coalesced into
//! one tagging activity per (kind, tags), each command with its own result; commands about
//! one contact kept in order; a refused activity split until the command it is about has its
//! own `not_found`; by-e-mail commands looked up and gathered; a redelivered command whose
//! activity was accepted answers from the ledger; coalescing off applies them one by one.

use std::collections::HashMap;
use std::time::Duration;

use ctct_sync::command::outcome::{CommandResult, Outcome};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::api::TestApi;
use crate::support::daemon::TestDaemon;
use crate::support::engine::Engine;

pub(crate) const UNKNOWN: &str = "0b3f5d1c-1d2e-4f3a-9b8c-7d6e5f4a3b2c";

/// A window long enough for a published burst to gather, polls quick enough for a test.
pub(crate) const GATHERING: [(&str, &str); 3] = [
    ("CTCT_SYNC__BULK__WINDOW_MS", "800"),
    ("CTCT_SYNC__BULK__POLL_INITIAL_MS", "300"),
    ("CTCT_SYNC__BULK__POLL_MAX_MS", "1000"),
];

/// `n` seeded contacts' ids, in the sandbox's order.
pub(crate) fn seeded(api: &TestApi, n: usize) -> Vec<String> {
    seeded_with_emails(api, n)
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// `n` seeded contacts' ids and addresses.
pub(crate) fn seeded_with_emails(api: &TestApi, n: usize) -> Vec<(String, String)> {
    let admin = api.sandbox.admin();
    let account = admin.primary_account();
    admin.seed(&account, n, 7).expect("seeded");
    admin
        .snapshot(&account)
        .expect("snapshot")
        .contacts
        .iter()
        .filter(|c| c["deleted_at"].is_null())
        .map(|c| {
            (
                c["contact_id"].as_str().expect("contact_id").to_owned(),
                c["email_address"]["address"]
                    .as_str()
                    .expect("address")
                    .to_owned(),
            )
        })
        .collect()
}

/// The contact's tag ids as the sandbox holds them.
fn taggings(d: &TestDaemon, contact_id: &str) -> Value {
    d.sandbox_contact(contact_id)["taggings"].clone()
}

/// The tagging activities started (POSTs), and every request under `/v3/activities`.
fn activity_requests(d: &TestDaemon) -> (usize, usize) {
    let log = d.api.sandbox.admin().request_log();
    let posts = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v3/activities/contacts_taggings"))
        .count();
    (posts, d.requests_under("/v3/activities"))
}

/// One command of `kind` per item of `items` (contacts, addresses), ids `{prefix}-{i}`.
pub(crate) fn one_per(
    items: &[String],
    prefix: &str,
    kind: &'static str,
    data: impl Fn(&String) -> Value,
) -> Vec<(String, &'static str, Value)> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| (format!("{prefix}-{i}"), kind, data(item)))
        .collect()
}

pub(crate) fn ids_of(commands: &[(String, &str, Value)]) -> Vec<String> {
    commands.iter().map(|(id, _, _)| id.clone()).collect()
}

/// Waits until the `n` commands `{prefix}-*` have their shared activity's id in the ledger
/// (`log`: the daemon's, shown when it never happens).
pub(crate) async fn activity_recorded_for_each(
    d: &TestDaemon,
    prefix: &str,
    n: usize,
    log: Option<&std::path::Path>,
) {
    let tables = d.api.state_tables();
    let recorded = format!(
        "SELECT COUNT(*) FROM command_ledger
         WHERE command_id LIKE '{prefix}-%' AND effect_ref IS NOT NULL"
    );
    crate::support::eventually::eventually(
        Duration::from_secs(60),
        "the shared activity's id stored for every command",
        async || {
            let stored = tables.number(&recorded).await;
            if stored == n as i64 {
                return Ok(());
            }
            let said = log
                .map(|log| std::fs::read_to_string(log).unwrap_or_default())
                .unwrap_or_default();
            Err(format!("{stored} of {n}; the daemon said:\n{said}"))
        },
    )
    .await;
}

pub(crate) async fn publish_all(d: &TestDaemon, commands: &[(String, &str, Value)]) {
    futures_util::stream::iter(commands)
        .for_each_concurrent(64, |(id, kind, data)| d.publish(id, kind, data.clone()))
        .await;
}

/// Publishes `commands` one after the other (in order), each confirmed before the next.
pub(crate) async fn publish_in_order(d: &TestDaemon, commands: &[(String, &str, Value)]) {
    for (id, kind, data) in commands {
        d.publish(id, kind, data.clone()).await;
    }
}

pub(crate) async fn one_each(d: &mut TestDaemon, ids: &[String]) -> HashMap<String, CommandResult> {
    let results = d.results(ids, Duration::from_secs(120)).await;
    ids.iter()
        .map(|id| {
            let got = &results[id];
            assert_eq!(got.len(), 1, "{id} has exactly one result: {got:?}");
            (id.clone(), got[0].clone())
        })
        .collect()
}

/// The settings of the daemon processes in the crash tests: a short window, quick polls.
pub(crate) const CRASH_SETTINGS: [(&str, &str); 3] = [
    ("CTCT_SYNC__BULK__WINDOW_MS", "1000"),
    ("CTCT_SYNC__BULK__POLL_INITIAL_MS", "100"),
    ("CTCT_SYNC__BULK__POLL_MAX_MS", "200"),
];

/// The first half of a crash test: the in-process pipeline steps aside, the sandbox's clock is
/// frozen (an activity stays queued until the test completes it), a daemon process gathers
/// `commands` (ids `{prefix}-*`) into a shared activity and is SIGKILLed once that activity's
/// id is in every command's ledger row. Returns the settings for the next process.
pub(crate) async fn killed_once_recorded(
    d: &mut TestDaemon,
    commands: &[(String, &str, Value)],
    prefix: &str,
) -> [(&'static str, &'static str); 3] {
    assert!(
        d.stop_pipeline(Duration::from_secs(10)).await,
        "the in-process pipeline steps aside"
    );
    d.api.sandbox.admin().freeze_clock();
    let (mut first, log) = d.spawn_with_log("first", &CRASH_SETTINGS);
    publish_all(d, commands).await;
    activity_recorded_for_each(d, prefix, commands.len(), Some(&log)).await;
    first.start_kill().expect("killed");
    let _ = first.wait().await;
    CRASH_SETTINGS
}

/// Waits until `n` commands whose ids are `like` (an SQL `LIKE` pattern) have begun: their
/// ledger rows exist, so they have been taken and decided on.
async fn begun(d: &TestDaemon, like: &str, n: i64) {
    let tables = d.api.state_tables();
    let query = format!("SELECT COUNT(*) FROM command_ledger WHERE command_id LIKE '{like}'");
    crate::support::eventually::eventually(
        Duration::from_secs(30),
        "the commands begun",
        async || {
            let rows = tables.number(&query).await;
            if rows == n {
                Ok(())
            } else {
                Err(format!("{rows} of {n} ({like})"))
            }
        },
    )
    .await;
}

/// Where the first result of command `id` is among the results received, in arrival order.
pub(crate) fn arrival(d: &TestDaemon, id: &str) -> usize {
    d.received
        .iter()
        .position(|r| r.command_id == id)
        .expect("a result")
}

pub(crate) async fn tag(d: &mut TestDaemon, id: &str, name: &str) -> String {
    d.created(id, "tag.create", json!({"name": name}), "tag_id")
        .await
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_burst_of_tagging_commands_shares_activities_at_under_one_request_per_100_contacts
);
async fn a_burst_of_tagging_commands_shares_activities_at_under_one_request_per_100_contacts(
    engine: Engine,
) {
    let api = TestApi::start_on(engine).await;
    let contacts = seeded(&api, 1_000);
    // The default polling (first look after 2 s): what the figure is about.
    let mut d = TestDaemon::start_with(api, &GATHERING[..1]).await;
    let gold = tag(&mut d, "t-gold", "Gold").await;
    let (posts_before, requests_before) = activity_requests(&d);
    let commands = one_per(
        &contacts,
        "tag",
        "contact.tag",
        |c| json!({"contact_ids": [c], "tag_ids": [gold]}),
    );
    publish_all(&d, &commands).await;
    let ids = ids_of(&commands);
    let results = one_each(&mut d, &ids).await;
    let mut gathered = 0;
    for (i, id) in ids.iter().enumerate() {
        let r = &results[id];
        assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
        let data = r.data.as_ref().expect("data");
        assert_eq!(
            data["contact_ids"],
            json!([contacts[i]]),
            "its own contacts"
        );
        assert_eq!(data["tag_ids"], json!([gold]));
        if data["batch"]["commands"].as_u64().unwrap_or(0) > 1 {
            gathered += 1;
            assert_eq!(data["activity_state"], "completed", "{data}");
        }
    }
    // The first commands may reach an idle daemon and go at once, one by one.
    assert!(
        gathered * 10 >= ids.len() * 9,
        "{gathered} of {} gathered",
        ids.len()
    );
    d.api.sandbox.admin().complete_activities_now();
    for c in &contacts {
        assert_eq!(taggings(&d, c), json!([gold]), "contact {c}");
    }
    let (posts, requests) = activity_requests(&d);
    let (posts, requests) = (posts - posts_before, requests - requests_before);
    eprintln!(
        "gathered tagging: {} commands, {posts} activities, {requests} requests",
        ids.len()
    );
    assert!(
        requests * 100 <= contacts.len(),
        "{requests} requests ({posts} activities) for {} contacts",
        contacts.len()
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_and_untag_of_one_contact_apply_in_the_order_they_were_published() {
    let api = TestApi::start().await;
    let contacts = seeded(&api, 40);
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let gold = tag(&mut d, "t-gold", "Gold").await;
    let blue = tag(&mut d, "t-blue", "Blue").await;
    // Per contact: tag gold, untag gold, tag gold+blue, untag blue — for the even ones the
    // last untag is left out. Ends: even → gold and blue; odd → gold only.
    let mut commands: Vec<(String, &str, Value)> = Vec::new();
    for step in 0..4 {
        for (i, c) in contacts.iter().enumerate() {
            let (kind, tags) = match step {
                0 => ("contact.tag", json!([gold])),
                1 => ("contact.untag", json!([gold])),
                2 => ("contact.tag", json!([gold, blue])),
                _ if i % 2 == 0 => continue,
                _ => ("contact.untag", json!([blue])),
            };
            commands.push((
                format!("s{step}-{i}"),
                kind,
                json!({"contact_ids": [c], "tag_ids": tags}),
            ));
        }
    }
    publish_in_order(&d, &commands).await;
    let ids = ids_of(&commands);
    let results = one_each(&mut d, &ids).await;
    assert!(
        results.values().all(|r| r.outcome == Outcome::Succeeded),
        "{results:?}"
    );
    d.api.sandbox.admin().complete_activities_now();
    for (i, c) in contacts.iter().enumerate() {
        let mut tags: Vec<String> = serde_json::from_value(taggings(&d, c)).expect("ids");
        tags.sort();
        let mut want = if i % 2 == 0 {
            vec![gold.clone(), blue.clone()]
        } else {
            vec![gold.clone()]
        };
        want.sort();
        assert_eq!(tags, want, "contact {i}");
    }
    let (posts, _) = activity_requests(&d);
    assert!(
        posts < commands.len() / 4,
        "{posts} activities for {} commands",
        commands.len()
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_contact_in_a_burst_fails_alone_and_the_others_are_tagged() {
    let api = TestApi::start().await;
    let contacts = seeded(&api, 63);
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let gold = tag(&mut d, "t-gold", "Gold").await;
    let (posts_before, _) = activity_requests(&d);
    let mut commands = one_per(
        &contacts,
        "ok",
        "contact.tag",
        |c| json!({"contact_ids": [c], "tag_ids": [gold]}),
    );
    commands.insert(
        20,
        (
            "unknown".to_owned(),
            "contact.tag",
            json!({"contact_ids": [UNKNOWN], "tag_ids": [gold]}),
        ),
    );
    publish_all(&d, &commands).await;
    let ids = ids_of(&commands);
    let results = one_each(&mut d, &ids).await;
    let unknown = &results["unknown"];
    assert_eq!(unknown.outcome, Outcome::Failed, "{unknown:?}");
    assert_eq!(
        unknown.error.as_ref().map(|e| e.code.as_str()),
        Some("not_found"),
        "{unknown:?}"
    );
    for (i, c) in contacts.iter().enumerate() {
        let r = &results[&format!("ok-{i}")];
        assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
        d.api.sandbox.admin().complete_activities_now();
        assert_eq!(taggings(&d, c), json!([gold]), "contact {i}");
    }
    // Halving 64 commands down to the one refused: at most 2 refusals and 2 activities a
    // level (6 levels), far fewer than one activity per command.
    let (posts, _) = activity_requests(&d);
    let posts = posts - posts_before;
    assert!(posts <= 2 * 2 * 7, "{posts} tagging POSTs");
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    by_email_commands_are_looked_up_and_gathered_and_a_redelivery_answers_from_the_ledger
);
async fn by_email_commands_are_looked_up_and_gathered_and_a_redelivery_answers_from_the_ledger(
    engine: Engine,
) {
    let api = TestApi::start_on(engine).await;
    let (contacts, emails): (Vec<String>, Vec<String>) =
        seeded_with_emails(&api, 12).into_iter().unzip();
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let gold = tag(&mut d, "t-gold", "Gold").await;
    let commands = one_per(
        &emails,
        "by-email",
        "contact.tag",
        |e| json!({"emails": [e], "tag_ids": [gold]}),
    );
    let (posts_before, _) = activity_requests(&d);
    publish_all(&d, &commands).await;
    let ids = ids_of(&commands);
    let results = one_each(&mut d, &ids).await;
    for (i, id) in ids.iter().enumerate() {
        let r = &results[id];
        assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
        assert_eq!(
            r.data.as_ref().unwrap()["contact_ids"],
            json!([contacts[i]])
        );
    }
    let (posts, _) = activity_requests(&d);
    assert!(
        posts - posts_before < commands.len() / 2,
        "{} activities",
        posts - posts_before
    );
    d.api.sandbox.admin().complete_activities_now();
    for c in &contacts {
        assert_eq!(taggings(&d, c), json!([gold]));
    }
    // A command sent again: its stored result, no second activity.
    let before = activity_requests(&d);
    d.received.clear();
    d.publish(&ids[3], "contact.tag", commands[3].2.clone())
        .await;
    let again = d.result(&ids[3]).await;
    assert!(again.replayed, "{again:?}");
    assert_eq!(again.data, results[&ids[3]].data);
    assert_eq!(activity_requests(&d), before);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_coalescing_off_each_tagging_command_starts_its_own_activity() {
    let api = TestApi::start().await;
    let contacts = seeded(&api, 10);
    let mut settings: Vec<(&str, &str)> = GATHERING.to_vec();
    settings.push(("CTCT_SYNC__BULK__ENABLED", "false"));
    let mut d = TestDaemon::start_with(api, &settings).await;
    let gold = tag(&mut d, "t-gold", "Gold").await;
    let commands = one_per(
        &contacts,
        "off",
        "contact.tag",
        |c| json!({"contact_ids": [c], "tag_ids": [gold]}),
    );
    let (posts_before, _) = activity_requests(&d);
    publish_all(&d, &commands).await;
    let ids = ids_of(&commands);
    let results = one_each(&mut d, &ids).await;
    for r in results.values() {
        assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
        assert_eq!(r.data.as_ref().unwrap()["activity_state"], "initialized");
    }
    assert_eq!(activity_requests(&d).0 - posts_before, commands.len());
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_crash_after_the_shared_activity_was_accepted_starts_no_second_one
);
/// A daemon SIGKILLed while the activity its gathered commands share is still queued: the
/// activity's id is in each command's ledger row, so the next process answers each
/// redelivered command with it instead of starting another activity.
async fn a_crash_after_the_shared_activity_was_accepted_starts_no_second_one(engine: Engine) {
    let api = TestApi::start_on(engine).await;
    let contacts = seeded(&api, 30);
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let gold = tag(&mut d, "t-gold", "Gold").await;
    let commands = one_per(
        &contacts,
        "crash",
        "contact.tag",
        |c| json!({"contact_ids": [c], "tag_ids": [gold]}),
    );
    let ids = ids_of(&commands);
    let admin = d.api.sandbox.admin();
    let settings = killed_once_recorded(&mut d, &commands, "crash").await;
    let posts_after_first = activity_requests(&d).0;
    d.drain(Duration::from_millis(200)).await;
    let answered_before_the_kill = d.received.len();

    let (mut second, _log) = d.spawn_with_log("second", &settings);
    let results = d.results(&ids, Duration::from_secs(60)).await;
    crate::support::daemon::terminate(&mut second).await;
    admin.unfreeze_clock();
    admin.complete_activities_now();
    assert_eq!(
        activity_requests(&d).0,
        posts_after_first,
        "no second activity"
    );
    let activities: std::collections::HashSet<String> = ids
        .iter()
        .flat_map(|id| &results[id])
        .map(|r| {
            assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
            r.data.as_ref().unwrap()["activity_id"]
                .as_str()
                .expect("activity_id")
                .to_owned()
        })
        .collect();
    assert!(activities.len() <= 2, "{activities:?}");
    for id in &ids {
        assert_eq!(results[id].len(), 1, "{id}: {:?}", results[id]);
    }
    assert!(answered_before_the_kill < ids.len());
    for c in &contacts {
        assert_eq!(taggings(&d, c), json!([gold]));
    }
    d.stop().await;
}

/// The contact's list ids as the sandbox holds them.
fn memberships(d: &TestDaemon, contact_id: &str) -> Vec<String> {
    serde_json::from_value(d.sandbox_contact(contact_id)["list_memberships"].clone())
        .unwrap_or_default()
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_burst_of_list_additions_shares_activities_and_contacts_left_out_fail_alone
);
/// 120 `list.add_contacts`, one contact each, share an activity. Constant Contact adds no
/// unsubscribed contact to a list: the activity completes fewer items than it was given and
/// names the contacts it left out, so exactly their commands fail, naming the field and the
/// reason, and every other command succeeds — without a second activity.
async fn a_burst_of_list_additions_shares_activities_and_contacts_left_out_fail_alone(
    engine: Engine,
) {
    let api = TestApi::start_on(engine).await;
    let seeded = seeded(&api, 121);
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let created = d
        .succeeded("l-news", "list.create", json!({"name": "News"}))
        .await;
    let news = created["list_id"].as_str().expect("list_id").to_owned();
    d.succeeded(
        "opt-out",
        "contact.opt_out",
        json!({"contact_id": seeded[40]}),
    )
    .await;
    let admin = d.api.sandbox.admin();
    let account = admin.primary_account();
    let unsubscribed: std::collections::HashSet<String> = admin
        .snapshot(&account)
        .expect("snapshot")
        .contacts
        .iter()
        .filter(|c| c["email_address"]["permission_to_send"] == "unsubscribed")
        .map(|c| c["contact_id"].as_str().expect("contact_id").to_owned())
        .collect();
    assert!(unsubscribed.contains(&seeded[40]));
    let before = admin.request_log().len();
    let commands = one_per(
        &seeded,
        "add",
        "list.add_contacts",
        |c| json!({"contact_ids": [c], "list_ids": [news]}),
    );
    publish_all(&d, &commands).await;
    let ids = ids_of(&commands);
    let results = one_each(&mut d, &ids).await;
    admin.complete_activities_now();
    for (i, c) in seeded.iter().enumerate() {
        let r = &results[&format!("add-{i}")];
        if unsubscribed.contains(c) {
            assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
            let error = r.error.as_ref().expect("error");
            assert_eq!(error.code.as_str(), "api_validation", "{error:?}");
            assert!(!error.retryable);
            assert_eq!(error.fields.len(), 1, "{error:?}");
            assert_eq!(error.fields[0].field, "data.contact_ids[0]");
            assert!(error.fields[0].reason.contains("unsubscribed"), "{error:?}");
            assert!(!memberships(&d, c).contains(&news));
        } else {
            assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
            assert_eq!(r.data.as_ref().unwrap()["list_ids"], json!([news]));
            assert!(memberships(&d, c).contains(&news), "contact {i}");
        }
    }
    let posts = admin.request_log()[before..]
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v3/activities/add_list"))
        .count();
    // One shared activity, or a few as windows close (and a first command alone).
    assert!(posts <= 4, "{posts} membership activities for 121 commands");
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_lost_broker_connection_while_the_shared_activity_runs_leaves_each_command_to_its_batch
);
/// The broker connection is cut while the gathered commands wait for their shared activity
/// (its id already in each ledger row): the redelivered commands go back to the batch that
/// holds them, and get its result once the activity has completed — not an early answer from
/// the ledger row (`activity_state` null) given before the activity is known to have applied
/// every contact.
async fn a_lost_broker_connection_while_the_shared_activity_runs_leaves_each_command_to_its_batch(
    engine: Engine,
) {
    let api = TestApi::start_on(engine).await;
    let contacts = seeded(&api, 30);
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let gold = tag(&mut d, "t-gold", "Gold").await;
    let admin = d.api.sandbox.admin();
    // Frozen: the activity stays queued until the test completes it.
    admin.freeze_clock();
    let commands = one_per(
        &contacts,
        "cut",
        "contact.tag",
        |c| json!({"contact_ids": [c], "tag_ids": [gold]}),
    );
    let ids = ids_of(&commands);
    publish_all(&d, &commands).await;
    activity_recorded_for_each(&d, "cut", commands.len(), None).await;
    let tables = d.api.state_tables();
    assert!(
        crate::support::daemon::close_daemon_connections(d.queue()).await >= 1,
        "the daemon's connection was cut"
    );
    crate::support::eventually::eventually(
        Duration::from_secs(60),
        "every unfinished command delivered again",
        async || {
            let waiting = tables
                .number(
                    "SELECT COUNT(*) FROM command_ledger
                     WHERE command_id LIKE 'cut-%' AND status <> 'done' AND attempts < 2",
                )
                .await;
            if waiting == 0 {
                Ok(())
            } else {
                Err(format!("{waiting} not yet"))
            }
        },
    )
    .await;
    admin.unfreeze_clock();
    admin.complete_activities_now();
    d.results(&ids, Duration::from_secs(60)).await;
    d.drain(Duration::from_secs(3)).await;
    for id in &ids {
        let got: Vec<_> = d.received.iter().filter(|r| &r.command_id == id).collect();
        assert_eq!(got.len(), 1, "{id} has exactly one result: {got:?}");
        assert_eq!(got[0].outcome, Outcome::Succeeded, "{:?}", got[0]);
        let state = &got[0].data.as_ref().expect("data")["activity_state"];
        assert!(
            state.is_string(),
            "{id}: answered before its activity ended: {state}"
        );
    }
    for c in &contacts {
        assert_eq!(taggings(&d, c), json!([gold]));
    }
    d.stop().await;
}

/// A `contact.update` published after a gathered `contact.tag` of the same contact (by id, or
/// by address for a command naming it by address) waits until the tag command's result is
/// out: it cannot change the contact while the shared activity is still running. (Results
/// are published in the order the commands finish; the daemon's clock is fixed in tests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_about_a_contact_published_after_its_gathered_tagging_applies_after_it() {
    let api = TestApi::start().await;
    let contacts = seeded_with_emails(&api, 30);
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let gold = tag(&mut d, "t-gold", "Gold").await;
    let ids: Vec<String> = contacts.iter().map(|(id, _)| id.clone()).collect();
    let mut commands = one_per(
        &ids[..20],
        "tag",
        "contact.tag",
        |c| json!({"contact_ids": [c], "tag_ids": [gold]}),
    );
    for (i, (_, email)) in contacts.iter().enumerate().skip(20) {
        commands.push((
            format!("tag-{i}"),
            "contact.tag",
            json!({"emails": [email], "tag_ids": [gold]}),
        ));
    }
    publish_in_order(&d, &commands).await;
    // The updates go out once every tagging command has begun (its ledger row exists): they
    // take other lanes, which would otherwise race the account's one tagging lane.
    begun(&d, "tag-%", 30).await;
    let mut updates = Vec::new();
    for (i, (id, email)) in contacts.iter().enumerate().step_by(5) {
        let target = if i < 20 {
            json!({"contact_id": id, "first_name": "Later"})
        } else {
            json!({"email": email, "first_name": "Later"})
        };
        updates.push((format!("upd-{i}"), "contact.update", target));
    }
    publish_in_order(&d, &updates).await;
    commands.extend(updates);
    let results = one_each(&mut d, &ids_of(&commands)).await;
    for i in (0..contacts.len()).step_by(5) {
        let tagged = &results[&format!("tag-{i}")];
        let update = &results[&format!("upd-{i}")];
        assert_eq!(tagged.outcome, Outcome::Succeeded, "{tagged:?}");
        assert_eq!(update.outcome, Outcome::Succeeded, "{update:?}");
        if tagged
            .data
            .as_ref()
            .is_none_or(|data| data["batch"].is_null())
        {
            // Applied alone (the daemon was idle): it holds no keys.
            continue;
        }
        assert!(
            arrival(&d, &format!("upd-{i}")) > arrival(&d, &format!("tag-{i}")),
            "the update of contact {i} was answered before its tagging: {tagged:?} {update:?}"
        );
    }
    d.stop().await;
}

/// A `list.add_contacts` published right after a `contact.update` with `list_ids` of the same
/// contact waits until the update is done: the update reads the contact and writes back its
/// whole list set, so an activity applied in between would be undone. The update's PUT is
/// slowed down (5 s) to leave room for that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_command_waits_for_an_update_of_its_contact_being_applied() {
    let api = TestApi::start().await;
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let contact = d
        .created(
            "c-ann",
            "contact.create",
            json!({"email": "ann@example.com"}),
            "contact_id",
        )
        .await;
    let first = d
        .created("l-a", "list.create", json!({"name": "A"}), "list_id")
        .await;
    let second = d
        .created("l-b", "list.create", json!({"name": "B"}), "list_id")
        .await;
    d.api
        .sandbox
        .admin()
        .inject_fault(
            ctct_sandbox::FaultSpec::latency(5_000)
                .method("PUT")
                .path_prefix("/v3/contacts/")
                .times(1),
        )
        .expect("a fault");
    let commands = vec![
        (
            "update".to_owned(),
            "contact.update",
            json!({"contact_id": contact, "list_ids": [first]}),
        ),
        (
            "add".to_owned(),
            "list.add_contacts",
            json!({"contact_ids": [contact], "list_ids": [second]}),
        ),
    ];
    // The addition goes out once the update is being applied (its ledger row exists): their
    // lanes would otherwise race.
    publish_in_order(&d, &commands[..1]).await;
    begun(&d, "update", 1).await;
    publish_in_order(&d, &commands[1..]).await;
    let results = one_each(&mut d, &ids_of(&commands)).await;
    assert!(
        results.values().all(|r| r.outcome == Outcome::Succeeded),
        "{results:?}"
    );
    d.api.sandbox.admin().complete_activities_now();
    let mut lists = memberships(&d, &contact);
    lists.sort();
    let mut want = vec![first, second];
    want.sort();
    assert_eq!(lists, want, "the update's list set, then the addition");
    d.stop().await;
}

/// A `list.add_contacts` alone in its batch, then a `contact.update` with `list_ids` of the
/// same contact: the update waits for the addition (its contact's key is held), and the
/// addition, though alone in its batch, awaits its activity before its result is out — so the
/// update's list set is written after the addition and replaces it, as published. A burst of
/// tag commands whose activity stays queued (the sandbox's clock frozen) keeps the account's
/// gatherer busy, so the addition is gathered; the update is published once the addition has
/// begun (its ledger row exists), as the two lanes would otherwise race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_gathered_addition_an_update_waits_for_completes_before_the_update() {
    let api = TestApi::start().await;
    let mut d = TestDaemon::start_with(api, &GATHERING).await;
    let contact = d
        .created(
            "c-ann",
            "contact.create",
            json!({"email": "ann@example.com"}),
            "contact_id",
        )
        .await;
    let gold = tag(&mut d, "t-gold", "Gold").await;
    let mut lists = Vec::new();
    for name in ["A", "B"] {
        lists.push(
            d.created(
                &format!("l-{name}"),
                "list.create",
                json!({"name": name}),
                "list_id",
            )
            .await,
        );
    }
    let admin = d.api.sandbox.admin();
    admin.freeze_clock();
    let tags: Vec<(String, &str, Value)> = (0..20)
        .map(|i| {
            let data = json!({"contact_ids": [contact], "tag_ids": [gold]});
            (format!("tag-{i}"), "contact.tag", data)
        })
        .collect();
    publish_all(&d, &tags).await;
    activity_recorded_for_each(&d, "tag", tags.len(), None).await;
    let add = (
        "add-a".to_owned(),
        "list.add_contacts",
        json!({"contact_ids": [contact], "list_ids": [lists[0]]}),
    );
    publish_in_order(&d, std::slice::from_ref(&add)).await;
    begun(&d, "add-a", 1).await;
    let update = (
        "update-b".to_owned(),
        "contact.update",
        json!({"contact_id": contact, "list_ids": [lists[1]]}),
    );
    publish_in_order(&d, std::slice::from_ref(&update)).await;
    admin.unfreeze_clock();
    admin.complete_activities_now();
    let mut ids = ids_of(&tags);
    ids.extend(["add-a".to_owned(), "update-b".to_owned()]);
    let results = one_each(&mut d, &ids).await;
    assert!(
        results.values().all(|r| r.outcome == Outcome::Succeeded),
        "{results:?}"
    );
    let data = results["add-a"].data.as_ref().expect("data");
    assert_eq!(data["activity_state"], "completed", "{data}");
    admin.complete_activities_now();
    assert_eq!(
        memberships(&d, &contact),
        vec![lists[1].clone()],
        "the update's list set, written after the addition"
    );
    d.stop().await;
}
