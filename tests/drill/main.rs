//! The reliability drill (docs/reliability.md), in a test binary of its own: it restarts
//! RabbitMQ, so nothing else may use the broker meanwhile — cargo runs test binaries one
//! after another, and this binary holds one drill, run once with the stores on SQLite and
//! once on PostgreSQL (`the_drill_…::sqlite`, `::postgres`), one after the other.
//!
//! A seeded plan of mixed commands (upserts, updates, custom-field changes, campaign creates
//! and schedules, gets, bad inputs) goes through real `ctct-sync run` processes while, on a
//! seeded schedule, the daemon is SIGKILLed and restarted, RabbitMQ is restarted, and the
//! sandbox answers with 5xx, slow and timed-out answers, dropped connections, both kinds of
//! 429 and a token revocation. Then it prints the figures and checks the contract.
//! `regressions.rs` pins what the drill found, without the broker.
//!
//! Short form (default): `cargo test --test drill -- --nocapture`.
//! Long form: `CTCT_DRILL_COMMANDS=10000 CTCT_DRILL_KILLS=5 CTCT_DRILL_BROKER_RESTARTS=2
//! cargo test --release --test drill the_drill -- --nocapture`.
//!
//! The replica drill (`ha.rs`, docs/scaling.md) runs the same plan through several replicas
//! on a RabbitMQ cluster and a PostgreSQL server of its own, failing the active one:
//! `cargo test --test drill the_replica_drill -- --nocapture`; long form with
//! `CTCT_HA_DRILL_COMMANDS=5000 CTCT_HA_DRILL_REPLICAS=3 CTCT_HA_DRILL_KILLS=3 …`.

mod broker;
mod build;
mod daemons;
mod faults;
mod ha;
mod model;
mod plan;
mod regressions;
mod report;
mod run;
#[allow(dead_code)]
#[path = "../it/support/mod.rs"]
mod support;

use std::path::PathBuf;

use crate::support::engine::Engine;
use ha::HaOptions;
use run::{Drill, Options};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a valid value")),
        Err(_) => default,
    }
}

fn options() -> Options {
    Options {
        commands: env_or("CTCT_DRILL_COMMANDS", 300),
        kills: env_or("CTCT_DRILL_KILLS", 2),
        broker_restarts: env_or("CTCT_DRILL_BROKER_RESTARTS", 1),
        seed: env_or("CTCT_DRILL_SEED", 20_261_123),
        per_second: env_or("CTCT_DRILL_PER_SECOND", 25),
        log_level: env_or("CTCT_DRILL_LOG_LEVEL", "debug".to_owned()),
        log_dir: std::env::var_os("CTCT_DRILL_LOG_DIR").map(PathBuf::from),
    }
}

/// Held for the whole of a drill: the two engines' drills restart the same broker, so they
/// run one after the other (the test harness would start them together).
static ONE_DRILL_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_drill_loses_nothing_applies_nothing_twice_and_ends_in_the_planned_state
);
async fn the_drill_loses_nothing_applies_nothing_twice_and_ends_in_the_planned_state(
    engine: Engine,
) {
    let _alone = ONE_DRILL_AT_A_TIME.lock().await;
    let options = options();
    assert!(
        options.commands >= 100,
        "the drill needs at least 100 commands"
    );
    let started = tokio::time::Instant::now();
    let drill = Drill::start(options.clone(), engine).await;
    let events = faults::schedule(
        options.seed,
        drill.plan.steps.len(),
        options.kills,
        options.broker_restarts,
    );
    drive(drill, events, started, &format!("drill ({engine:?})")).await;
}

/// Runs a set-up drill through `events`, prints its report, takes its queues and processes
/// down, and fails when it broke the contract.
async fn drive(
    mut drill: Drill,
    events: Vec<(usize, faults::Event)>,
    started: tokio::time::Instant,
    name: &str,
) {
    println!("{name} plan: {}", report::mix(&drill));
    drill
        .a_broken_message_that_comes_back_is_answered_from_the_ledger()
        .await;
    drill.publish_all(events).await;
    drill.finish().await;
    let report = report::report(&mut drill, started.elapsed()).await;
    println!("\n{}", report.table());
    let Drill {
        d,
        link,
        mut broker,
        ha,
        ..
    } = drill;
    link.delete_all().await;
    broker.disarm();
    d.stop().await;
    // A replica drill's cluster and PostgreSQL server go after its queues.
    drop(ha);
    assert!(
        report.failures.is_empty(),
        "the {name} broke the contract:\n{}\n(set CTCT_DRILL_LOG_DIR to keep the daemons' logs)",
        report.failures.join("\n"),
    );
}

/// The replica drill's options: `CTCT_HA_DRILL_*`, else the drill's own `CTCT_DRILL_*` (seed,
/// log level and directory) and a short form's defaults.
fn ha_options() -> (Options, HaOptions) {
    let mut options = options();
    options.commands = env_or("CTCT_HA_DRILL_COMMANDS", 200);
    options.seed = env_or("CTCT_HA_DRILL_SEED", options.seed);
    let ha = HaOptions {
        replicas: env_or("CTCT_HA_DRILL_REPLICAS", 2),
        kills: env_or("CTCT_HA_DRILL_KILLS", 1),
        pauses: env_or("CTCT_HA_DRILL_PAUSES", 1),
        node_stops: env_or("CTCT_HA_DRILL_NODE_STOPS", 1),
        pg_restarts: env_or("CTCT_HA_DRILL_PG_RESTARTS", 1),
    };
    (options, ha)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_drill_loses_nothing_applies_nothing_twice_and_takes_over_by_itself() {
    let _alone = ONE_DRILL_AT_A_TIME.lock().await;
    let (options, ha) = ha_options();
    assert!(
        options.commands >= 100,
        "the drill needs at least 100 commands"
    );
    assert!(ha.replicas >= 2, "the replica drill needs two replicas");
    let started = tokio::time::Instant::now();
    let drill = Drill::start_replicas(options.clone(), ha.clone()).await;
    let events = ha::schedule(options.seed, drill.plan.steps.len(), &ha);
    drive(drill, events, started, "replica drill").await;
}
