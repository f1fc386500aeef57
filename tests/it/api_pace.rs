//! One per-second pace per API key across processes: several clients, each with its own
//! budget and its own connection to one state store (as separate processes have), against
//! the sandbox with its real limits, never put more than `per_second` requests into any one
//! second of the sandbox's request log, and are never answered `throttled`.

use std::time::Duration;

use ctct_sync::store::Store;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::support::api::{PG_STATE_SCHEMA, TestApi, build_client};
use crate::support::engine::Engine;

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    processes_sharing_a_key_never_crowd_a_second_at_the_api
);
async fn processes_sharing_a_key_never_crowd_a_second_at_the_api(engine: Engine) {
    let per_second = 4;
    let api = TestApi::start_limited_on(engine, per_second, 100_000).await;
    let mut clients = vec![api.client.clone()];
    for _ in 0..2 {
        let (store, _) = match &api.pg {
            None => Store::open(&api.store_path).expect("the state store opens again"),
            Some(pg) => {
                Store::connect_postgres(&SecretString::from(pg.url().to_owned()), PG_STATE_SCHEMA)
                    .await
                    .expect("the state store opens again")
            }
        };
        clients.push(build_client(
            &api.sandbox,
            &store,
            &api.clock,
            per_second,
            100_000,
        ));
    }
    assert!(
        clients
            .iter()
            .all(|client| client.budget().paces_across_processes())
    );
    api.sandbox.admin().clear_request_log();

    // Three "processes", three busy tasks each, sending for three seconds.
    let sending_until = Instant::now() + Duration::from_secs(3);
    let mut tasks = tokio::task::JoinSet::new();
    for client in &clients {
        for _ in 0..3 {
            let account = client.account("default");
            tasks.spawn(async move {
                let mut sent = 0_usize;
                while Instant::now() < sending_until {
                    account
                        .get_account_summary(&[])
                        .await
                        .expect("the summary is read");
                    sent += 1;
                }
                sent
            });
        }
    }
    let mut answered = 0;
    let all_done = Instant::now() + Duration::from_secs(12);
    while let Some(sent) = tokio::time::timeout_at(all_done, tasks.join_next())
        .await
        .expect("every task finishes well within its deadline")
    {
        answered += sent.expect("the task ran");
    }

    let log: Vec<_> = api
        .sandbox
        .admin()
        .request_log()
        .into_iter()
        .filter(|entry| entry.path.starts_with("/v3/"))
        .collect();
    let throttled = log.iter().filter(|entry| entry.status == 429).count();
    assert_eq!(throttled, 0, "no request is answered 429: {log:?}");
    assert_eq!(
        log.len(),
        answered,
        "every request reached the sandbox once"
    );
    assert!(
        answered >= 10,
        "the clients kept the key busy: {answered} requests"
    );
    let mut arrivals: Vec<i64> = log
        .iter()
        .map(|entry| entry.time.timestamp_millis())
        .collect();
    arrivals.sort_unstable();
    for (i, end) in arrivals.iter().enumerate() {
        let in_second = arrivals[..=i]
            .iter()
            .filter(|at| **at > end - 1_000)
            .count();
        assert!(
            in_second <= per_second as usize,
            "{in_second} requests in the second ending at {end}: {arrivals:?}"
        );
    }
    // Paced, not merely throttled away: close to the key's rate over the busy seconds.
    let span = arrivals[arrivals.len() - 1] - arrivals[0];
    assert!(
        span <= 1_000 * i64::try_from(answered).unwrap() / 3,
        "{answered} requests took {span} ms"
    );
}
