//! Several replicas of the daemon on one state store and one command queue
//! (docs/scaling.md): the role each one reports, the fence that keeps a replica which lost
//! its claim from writing, the liveness lock that hands a dead replica's claims over at once,
//! and the scheduled mirror's occurrences claimed by one replica.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use ctct_sandbox::FaultSpec;
use ctct_sync::command::outcome::Outcome;
use ctct_sync::store::ledger::{Begun, Claim};
use ctct_sync::store::replicas::{ReplicaInfo, ReplicaRole};
use serde_json::json;

use crate::support::api::TestApi;
use crate::support::daemon::TestDaemon;
use crate::support::engine::{Engine, StateSpot};
use crate::support::eventually::eventually_every;

const SECS_30: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// A contact created through `d`; its id.
async fn a_contact(d: &mut TestDaemon, tag: &str) -> String {
    let id = format!("create-{tag}");
    d.publish(
        &id,
        "contact.create",
        json!({"email": format!("fence-{tag}@example.com")}),
    )
    .await;
    let results = d.results(std::slice::from_ref(&id), SECS_30).await;
    results[&id][0]
        .data
        .as_ref()
        .and_then(|data| data["contact_id"].as_str())
        .expect("the create's result names the contact")
        .to_owned()
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_replica_whose_claim_was_taken_over_while_it_worked_sends_no_write_and_the_command_is_applied_once
);
/// A replica paused between its claim and its write (here: its GET held 4 s) finds, right
/// before the write, that another replica took the command over: it sends nothing, the
/// delivery waits, and once the other's claim is gone it is applied — one PUT in all.
async fn a_replica_whose_claim_was_taken_over_while_it_worked_sends_no_write_and_the_command_is_applied_once(
    engine: Engine,
) {
    let mut d = TestDaemon::start_on(engine).await;
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let contact = a_contact(&mut d, tag).await;
    d.api
        .sandbox
        .admin()
        .inject_fault(
            FaultSpec::latency(4000)
                .method("GET")
                .path_prefix(&format!("/v3/contacts/{contact}"))
                .times(1),
        )
        .unwrap();
    let id = format!("update-{tag}");
    d.publish(
        &id,
        "contact.update",
        json!({"contact_id": contact, "first_name": "Fenced"}),
    )
    .await;
    let tables = d.api.state_tables();
    let owner = d.processor().owner().to_owned();
    // The command is claimed by this replica, its GET held by the sandbox.
    eventually_every(POLL, SECS_30, "the update claimed", async || {
        let n = tables
            .number(&format!(
                "SELECT count(*) FROM command_ledger WHERE command_id = '{id}' \
                 AND status = 'in_progress' AND owner = '{owner}'"
            ))
            .await;
        if n == 1 {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .await;
    // Meanwhile another replica takes it over (its claim for an hour).
    let until = match engine {
        Engine::Sqlite => (Utc::now().timestamp_millis() + 3_600_000).to_string(),
        Engine::Postgres => "now() + interval '1 hour'".to_owned(),
    };
    let taken = tables
        .execute(&format!(
            "UPDATE command_ledger SET owner = 'another-replica', lease_until = {until} \
             WHERE command_id = '{id}' AND owner = '{owner}'"
        ))
        .await;
    assert_eq!(taken, 1, "taken over while the GET was held");
    let yielded = d
        .receive_until(SECS_30, |d| {
            d.processor().stats.yielded.load(Ordering::Relaxed) >= 1
        })
        .await;
    assert!(yielded, "the replica found its claim lost before the write");
    let puts = |d: &TestDaemon| {
        d.api
            .sandbox
            .admin()
            .request_log()
            .into_iter()
            .filter(|r| r.command_id.as_deref() == Some(id.as_str()) && r.method == "PUT")
            .count()
    };
    assert_eq!(
        puts(&d),
        0,
        "no write was sent by the replica that lost the claim"
    );
    assert!(
        d.received.iter().all(|r| r.command_id != id),
        "no result while the other replica holds it: {:?}",
        d.received
    );
    // The other replica goes away without an answer: its claim is given up, and the
    // waiting delivery is applied here.
    tables
        .execute(&format!(
            "UPDATE command_ledger SET owner = NULL, lease_until = NULL WHERE command_id = '{id}'"
        ))
        .await;
    d.results(std::slice::from_ref(&id), SECS_30).await;
    d.drain(Duration::from_millis(300)).await;
    let results: Vec<_> = d.received.iter().filter(|r| r.command_id == id).collect();
    assert_eq!(results.len(), 1, "one result: {results:?}");
    assert_eq!(
        results[0].outcome,
        ctct_sync::command::outcome::Outcome::Succeeded,
        "{results:?}"
    );
    assert!(!results[0].replayed);
    assert_eq!(puts(&d), 1, "exactly one write in all");
    d.stop().await;
}

/// PostgreSQL: a replica holds a liveness lock while it lives; the moment it is gone (its
/// session ends, as on SIGKILL) another replica takes its claims over without waiting for
/// their lease. A claim of an owner that registered no lock (a ctct-sync from before
/// replicas, during a rolling upgrade) still waits for its lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replicas_claims_are_taken_over_at_once_on_postgres() {
    let spot = StateSpot::new(Engine::Postgres).await;
    let (a, b) = (spot.open().await, spot.open().await);
    a.replica_register(&ReplicaInfo::this_process("replica-a"))
        .await
        .unwrap();
    let liveness = a
        .hold_liveness("replica-a")
        .await
        .unwrap()
        .expect("PostgreSQL has a liveness lock");
    assert!(liveness.is_held());
    let hour = Duration::from_secs(3600);
    let claim = |owner| Claim { owner, lease: hour };
    let begin = |store: &ctct_sync::store::Store, id: &'static str, owner: &'static str| {
        let store = store.clone();
        async move {
            store
                .ledger_begin("acct", id, "contact.create", "fp", claim(owner), Utc::now())
                .await
                .unwrap()
        }
    };
    assert!(matches!(
        begin(&a, "c1", "replica-a").await,
        Begun::Started { .. }
    ));
    assert!(matches!(
        begin(&b, "c2", "old-release").await,
        Begun::Started { .. }
    ));
    // Alive: its claim holds.
    assert!(
        matches!(begin(&b, "c1", "replica-b").await, Begun::Claimed { ref owner } if owner == "replica-a")
    );
    let rows = b.replicas().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].alive, Some(true), "{rows:?}");
    assert_eq!(rows[0].role, "standby");
    a.replica_heartbeat("replica-a", ReplicaRole::Active)
        .await
        .unwrap();
    assert_eq!(b.replicas().await.unwrap()[0].role, "active");

    // Gone: its lock is released with its session, and its claim is taken at once.
    liveness.release();
    let taken = eventually_every(
        POLL,
        SECS_30,
        "the dead replica's claim taken over",
        async || match begin(&b, "c1", "replica-b").await {
            Begun::Started { attempts, .. } => Ok(attempts),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    assert_eq!(taken, 2, "the takeover counts an attempt");
    assert_eq!(b.replicas().await.unwrap()[0].alive, Some(false));
    // An owner with no lock on record keeps its claim for its lease.
    assert!(
        matches!(begin(&b, "c2", "replica-b").await, Begun::Claimed { ref owner } if owner == "old-release")
    );
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    each_occurrence_of_a_schedule_is_claimed_by_one_replica
);
async fn each_occurrence_of_a_schedule_is_claimed_by_one_replica(engine: Engine) {
    let spot = StateSpot::new(engine).await;
    let (a, b) = (spot.open().await, spot.open().await);
    let due = Utc::now();
    assert!(a.schedule_claim("mirror.full", due, "a").await.unwrap());
    assert!(!b.schedule_claim("mirror.full", due, "b").await.unwrap());
    assert!(!a.schedule_claim("mirror.full", due, "a").await.unwrap());
    assert!(
        b.schedule_claim("mirror.incremental", due, "b")
            .await
            .unwrap(),
        "another job"
    );
    let next = due + chrono::Duration::hours(1);
    assert!(b.schedule_claim("mirror.full", next, "b").await.unwrap());
}

/// Two replicas on one queue: each says standby until a command reaches it; the first is
/// the active consumer, receives the commands and says so (`/readyz`, the metric, the
/// store's table); the second receives nothing and stays standby; when the first stops, the
/// second becomes the active one, answers the commands and says active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_replica_says_so_and_the_standby_takes_over_when_it_stops() {
    let mut d = TestDaemon::start_with(TestApi::start().await, &[]).await;
    let role = |p: &ctct_sync::pipeline::process::Processor| p.replica.role();
    assert_eq!(role(d.processor()), ReplicaRole::Standby, "no command yet");
    // Ready: its consumer is registered, so it is the queue's first, the active one.
    eventually_every(
        POLL,
        SECS_30,
        "the first replica consuming",
        async || match d.ops("/readyz").await {
            (200, _) => Ok(()),
            (status, body) => Err(format!("{status} {body}")),
        },
    )
    .await;
    let standby = d.start_replica().await;
    eventually_every(POLL, SECS_30, "the second replica registered", async || {
        let rows = d
            .processor()
            .store
            .replicas()
            .await
            .map_err(|e| e.to_string())?;
        if rows.len() == 2 {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    })
    .await;
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let ids: Vec<String> = (0..3).map(|i| format!("first-{i}-{tag}")).collect();
    for id in &ids {
        d.publish(id, "account.privileges.get", json!({})).await;
    }
    d.results(&ids, SECS_30).await;
    assert_eq!(role(d.processor()), ReplicaRole::Active);
    assert_eq!(role(&standby.processor), ReplicaRole::Standby);
    assert_eq!(
        standby.processor.stats.by_outcome.snapshot().len(),
        0,
        "the standby received nothing"
    );
    let (status, body) = d.ops("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["role"], "active");
    let (_, metrics) = d.ops("/metrics").await;
    assert!(
        metrics.contains("ctct_replica_role{role=\"active\"} 1")
            && metrics.contains("ctct_replica_role{role=\"standby\"} 0"),
        "{metrics}"
    );

    // The active one stops: the broker gives the turn to the standby, which says active once
    // a command reaches it.
    let store = d.processor().store.clone();
    assert!(d.stop_pipeline(SECS_30).await, "the first replica stops");
    assert_eq!(role(&standby.processor), ReplicaRole::Standby);
    let later: Vec<String> = (0..3).map(|i| format!("later-{i}-{tag}")).collect();
    for id in &later {
        d.publish(id, "account.privileges.get", json!({})).await;
    }
    let results = d.results(&later, SECS_30).await;
    assert!(later.iter().all(|id| results[id].len() == 1), "{results:?}");
    assert_eq!(role(&standby.processor), ReplicaRole::Active);
    eventually_every(
        POLL,
        SECS_30,
        "the table shows one replica, active",
        async || {
            let rows = store.replicas().await.map_err(|e| e.to_string())?;
            match rows.as_slice() {
                [only] if only.role == "active" => Ok(()),
                _ => Err(format!("{rows:?}")),
            }
        },
    )
    .await;
    assert!(standby.stop(&d, SECS_30).await, "the standby stops");
    d.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_order_hold_for_a_command_finished_by_another_replica_does_not_stop_later_ones
);
/// Replica drill finding: a command went out to wait (a retry) on this replica, which then
/// lost its turn on the queue; the command came back to another replica and finished there.
/// This replica's ordering book still had it at the front of its contact's key, so when this
/// replica was active again every later command about that contact waited behind it for
/// ever. The book now gives way to a front the ledger shows finished.
async fn an_order_hold_for_a_command_finished_by_another_replica_does_not_stop_later_ones(
    engine: Engine,
) {
    let mut d = TestDaemon::start_on(engine).await;
    d.publish(
        "hold-first",
        "contact.upsert",
        json!({"email": "held.front@example.com", "first_name": "First"}),
    )
    .await;
    assert_eq!(d.result("hold-first").await.outcome, Outcome::Succeeded);
    // What this replica's book looks like when `hold-first` went out to wait here and
    // finished on another replica: still at the front of its key.
    // The contact's ordering key (`ContactRef::key`) and the book's name for the command.
    let key = "email:held.front@example.com";
    d.processor().held.hold(key, "hold-first#0123456789abcdef");
    d.publish(
        "hold-second",
        "contact.update",
        json!({"email": "held.front@example.com", "first_name": "Second"}),
    )
    .await;
    // Before the fix it waited behind `hold-first` for ever (no result within the deadline).
    let got = d
        .results(&["hold-second".to_owned()], Duration::from_secs(20))
        .await;
    let second = &got["hold-second"][0];
    assert_eq!(second.outcome, Outcome::Succeeded, "{second:?}");
    // The book lets go of a command once its result is out and its delivery settled, just
    // after the result reaches the test.
    let processor = Arc::clone(d.processor());
    eventually_every(
        POLL,
        SECS_30,
        "nothing left in the book",
        async || match processor.held.waiting() {
            0 => Ok(()),
            n => Err(format!("{n} waiting")),
        },
    )
    .await;
    d.stop().await;
}
