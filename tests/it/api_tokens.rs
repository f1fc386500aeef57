//! OAuth2 tokens against the sandbox: one refresh at a time, rotation never replayed,
//! crash and cancellation safety and re-authorisation (the log audit is in tests/logs).

use std::time::Duration;

use ctct_sync::api::{AuthError, AuthEvent};
use ctct_sync::store::tokens::AccountState;
use secrecy::SecretString;

use ctct_sync::store::Store;

use crate::support::api::{TestApi, build_client};
use crate::support::engine::Engine;
use crate::support::eventually::eventually;
use crate::support::pg::PgTestDb;

const DAY: Duration = Duration::from_secs(25 * 3600);

async fn stored_generation(t: &TestApi) -> i64 {
    t.client
        .tokens()
        .account("default")
        .await
        .unwrap()
        .unwrap()
        .generation
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    fifty_concurrent_callers_with_an_expired_token_cause_exactly_one_token_request
);
async fn fifty_concurrent_callers_with_an_expired_token_cause_exactly_one_token_request(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    let before = t.sandbox.admin().token_requests_count();
    t.advance_clocks(DAY);
    let mut callers = Vec::new();
    for _ in 0..50 {
        let tokens = t.client.tokens().clone();
        callers.push(tokio::spawn(
            async move { tokens.access_token("default").await },
        ));
    }
    let mut generations = Vec::new();
    for caller in callers {
        generations.push(caller.await.unwrap().expect("a token").generation);
    }
    assert_eq!(
        t.sandbox.admin().token_requests_count() - before,
        1,
        "exactly one refresh"
    );
    assert!(
        generations.iter().all(|g| *g == generations[0]),
        "{generations:?}"
    );
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    two_processes_refreshing_together_never_present_a_rotated_refresh_token_twice
);
async fn two_processes_refreshing_together_never_present_a_rotated_refresh_token_twice(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    let other = t.another_process();
    let before = t.sandbox.admin().token_requests_count();
    for round in 1..=4 {
        t.advance_clocks(DAY);
        let (a, b) = (t.client.tokens().clone(), other.tokens().clone());
        let (first, second) = tokio::join!(
            tokio::spawn(async move { a.access_token("default").await }),
            tokio::spawn(async move { b.access_token("default").await })
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert!(
            first.is_ok() && second.is_ok(),
            "round {round}: {first:?} {second:?}"
        );
        assert_eq!(
            first.unwrap().generation,
            second.unwrap().generation,
            "round {round}"
        );
    }
    assert_eq!(
        t.sandbox.admin().token_requests_count() - before,
        4,
        "one refresh per expiry"
    );
    let replays = t
        .sandbox
        .admin()
        .effects()
        .into_iter()
        .filter(|e| e.kind == "token.family_revoked")
        .count();
    assert_eq!(replays, 0, "the sandbox saw no replayed refresh token");
    let row = t.client.tokens().account("default").await.unwrap().unwrap();
    assert_eq!(row.state, AccountState::Active);
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_caller_cancelled_in_the_middle_of_a_refresh_loses_nothing
);
async fn a_caller_cancelled_in_the_middle_of_a_refresh_loses_nothing(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    let generation = stored_generation(&t).await;
    t.sandbox
        .admin()
        .inject_fault(
            ctct_sandbox::FaultSpec::latency(600)
                .path_prefix("/oauth2/default/v1/token")
                .times(1),
        )
        .unwrap();
    t.advance_clocks(DAY);
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        t.client.tokens().access_token("default"),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "the caller gave up while the refresh was in flight"
    );

    // The detached refresh still commits the rotated token.
    eventually(
        Duration::from_secs(10),
        "the refresh committing",
        async || stored_generation(&t).await != generation,
    )
    .await;
    // A fresh process uses the committed token without another refresh, and the grant is
    // still alive: the next expiry refreshes fine (a lost rotation would be refused).
    let requests = t.sandbox.admin().token_requests_count();
    let other = t.another_process();
    other
        .tokens()
        .access_token("default")
        .await
        .expect("the committed token");
    assert_eq!(t.sandbox.admin().token_requests_count(), requests);
    t.advance_clocks(DAY);
    other
        .tokens()
        .access_token("default")
        .await
        .expect("the rotated refresh token works");
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_process_that_died_holding_the_refresh_lease_is_taken_over_when_the_lease_expires
);
async fn a_process_that_died_holding_the_refresh_lease_is_taken_over_when_the_lease_expires(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    t.advance_clocks(DAY);
    // The lease runs on the store's clock: on SQLite ctct-sync's (the test's manual clock,
    // moved past it below), on PostgreSQL the database's own (a lease of 2 s that lapses while
    // the caller waits).
    let until = match engine {
        Engine::Sqlite => format!(
            "'{}'",
            ((t.clock.as_ref() as &dyn ctct_sync::clock::Clock).now()
                + chrono::Duration::seconds(90))
            .to_rfc3339()
        ),
        Engine::Postgres => "now() + interval '2 seconds'".to_owned(),
    };
    let leased = t
        .state_tables()
        .execute(&format!(
            "UPDATE accounts SET refresh_lease_owner = 'a-process-that-died', refresh_lease_until = {until}"
        ))
        .await;
    assert_eq!(leased, 1);
    let before = t.sandbox.admin().token_requests_count();
    let tokens = t.client.tokens().clone();
    let mut waiting = tokio::spawn(async move { tokens.access_token("default").await });
    assert!(
        tokio::time::timeout(Duration::from_millis(600), &mut waiting)
            .await
            .is_err(),
        "the caller waits while another process holds the lease"
    );
    assert_eq!(
        t.sandbox.admin().token_requests_count(),
        before,
        "nobody refreshes under a live lease"
    );
    t.clock.advance(chrono::Duration::seconds(91));
    let token = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the lease is taken over")
        .unwrap();
    assert!(token.is_ok(), "{token:?}");
    assert_eq!(t.sandbox.admin().token_requests_count() - before, 1);
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    a_revoked_grant_needs_reauthorisation_spends_nothing_and_comes_back_after_import
);
async fn a_revoked_grant_needs_reauthorisation_spends_nothing_and_comes_back_after_import(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    let mut events = t.client.tokens().subscribe();
    let account = t.sandbox.admin().primary_account();
    t.sandbox.admin().revoke_tokens(&account).unwrap();
    t.advance_clocks(DAY);

    let error = t.client.tokens().access_token("default").await.unwrap_err();
    assert!(matches!(error, AuthError::ReauthRequired { .. }), "{error}");
    assert!(matches!(
        events.recv().await.unwrap(),
        AuthEvent::ReauthRequired { .. }
    ));
    let row = t.client.tokens().account("default").await.unwrap().unwrap();
    assert_eq!(row.state, AccountState::ReauthRequired);

    let requests = t.sandbox.admin().token_requests_count();
    for _ in 0..3 {
        assert!(matches!(
            t.client.tokens().access_token("default").await,
            Err(AuthError::ReauthRequired { .. })
        ));
    }
    assert_eq!(
        t.sandbox.admin().token_requests_count(),
        requests,
        "no request burnt retrying"
    );

    let fresh = t.sandbox.admin().issue_refresh_token(&account).unwrap();
    t.client
        .tokens()
        .import_refresh_token("default", SecretString::from(fresh))
        .await
        .expect("re-authorised");
    assert_eq!(
        events.recv().await.unwrap(),
        AuthEvent::Authorised {
            account: "default".into()
        }
    );
    t.client
        .tokens()
        .access_token("default")
        .await
        .expect("usable again");
    t.stop().await;
}

// ---- across processes, on both engines ----

/// The stored refresh token of account `default` (to compare; never printed).
async fn stored_refresh(tokens: &ctct_sync::api::TokenManager) -> (i64, String) {
    use secrecy::ExposeSecret;
    let row = tokens.account("default").await.unwrap().unwrap();
    let refresh = row
        .refresh_token
        .map(|t| t.expose_secret().to_owned())
        .unwrap_or_default();
    (row.generation, refresh)
}

/// State stores of `n` processes on one database: separate handles (own connections).
async fn state_handles(t: &TestApi, db: Option<&PgTestDb>, n: usize) -> Vec<Store> {
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(match db {
            None => {
                Store::open(&t.store_path)
                    .expect("another handle on the file")
                    .0
            }
            Some(db) => {
                Store::connect_postgres(&SecretString::from(db.url().to_owned()), "ctct_state")
                    .await
                    .expect("another pool on the database")
                    .0
            }
        });
    }
    if db.is_some() {
        // The PostgreSQL store starts empty: the account is authorised there first.
        let admin = t.sandbox.admin();
        let grant = admin.issue_refresh_token(&admin.primary_account()).unwrap();
        client_on(t, &stores[0])
            .tokens()
            .import_refresh_token("default", SecretString::from(grant))
            .await
            .expect("the grant imports");
    }
    stores
}

fn client_on(t: &TestApi, store: &Store) -> ctct_sync::api::ApiClient {
    build_client(&t.sandbox, store, &t.clock, t.per_second, t.per_day)
}

/// Four token managers, each on its own store handle (as four processes would be), with an
/// expired access token, all refreshing at once.
async fn four_processes_refreshing_at_once_cause_one_refresh_grant(db: Option<&PgTestDb>) {
    let t = TestApi::start().await;
    let stores = state_handles(&t, db, 4).await;
    let clients: Vec<_> = stores.iter().map(|s| client_on(&t, s)).collect();
    let (generation, refresh) = stored_refresh(clients[0].tokens()).await;
    t.advance_clocks(DAY);
    let before = t.sandbox.admin().token_requests_count();
    let callers: Vec<_> = clients
        .iter()
        .map(|c| {
            let tokens = c.tokens().clone();
            tokio::spawn(async move { tokens.access_token("default").await })
        })
        .collect();
    let mut got = Vec::new();
    for caller in callers {
        got.push(caller.await.unwrap().expect("a token"));
    }
    assert_eq!(
        t.sandbox.admin().token_requests_count() - before,
        1,
        "exactly one refresh grant"
    );
    let (new_generation, rotated) = stored_refresh(clients[0].tokens()).await;
    assert_eq!(new_generation, generation + 1);
    assert_ne!(
        rotated, refresh,
        "the stored refresh token is the rotated one"
    );
    let row = clients[0]
        .tokens()
        .account("default")
        .await
        .unwrap()
        .unwrap();
    let stored_access = {
        use secrecy::ExposeSecret;
        row.access_token.unwrap().expose_secret().to_owned()
    };
    for token in &got {
        assert_eq!(token.generation, new_generation);
        assert!(
            token.bearer() == stored_access,
            "every process uses the new access token"
        );
    }
    // Each process calls the API with it, and the rotated refresh token carries the chain
    // on: the next expiry refreshes once more without a replay.
    for client in &clients {
        client
            .account("default")
            .list_lists(&Default::default())
            .await
            .expect("the new access token works");
    }
    t.advance_clocks(DAY);
    clients[3]
        .tokens()
        .access_token("default")
        .await
        .expect("the rotated refresh token works");
    let revoked = t
        .sandbox
        .admin()
        .effects()
        .into_iter()
        .filter(|e| e.kind == "token.family_revoked")
        .count();
    assert_eq!(revoked, 0, "no refresh token was presented twice");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_on_one_sqlite_store_refreshing_at_once_cause_one_refresh_grant() {
    four_processes_refreshing_at_once_cause_one_refresh_grant(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_on_one_postgres_store_refreshing_at_once_cause_one_refresh_grant() {
    let db = PgTestDb::create().await;
    four_processes_refreshing_at_once_cause_one_refresh_grant(Some(&db)).await;
}

/// A refresh whose caller is aborted after the token endpoint answered the grant (the old
/// refresh token is spent) but before the answer arrived: the refresh runs detached, so the
/// rotated token is committed all the same and the chain goes on.
async fn a_refresh_aborted_after_the_grant_was_answered_keeps_the_chain(db: Option<&PgTestDb>) {
    let t = TestApi::start().await;
    let stores = state_handles(&t, db, 2).await;
    let client = client_on(&t, &stores[0]);
    let (generation, refresh) = stored_refresh(client.tokens()).await;
    t.sandbox
        .admin()
        .inject_fault(
            ctct_sandbox::FaultSpec::latency(800)
                .path_prefix("/oauth2/default/v1/token")
                .after_effect()
                .times(1),
        )
        .unwrap();
    let refreshes = || {
        t.sandbox
            .admin()
            .effects()
            .iter()
            .filter(|e| e.kind == "token.refreshed")
            .count()
    };
    let before = refreshes();
    t.advance_clocks(DAY);
    let tokens = client.tokens().clone();
    let caller = tokio::spawn(async move { tokens.access_token("default").await });
    eventually(
        Duration::from_secs(10),
        "the token endpoint rotating the grant",
        async || refreshes() > before,
    )
    .await;
    caller.abort();
    assert!(
        caller.await.unwrap_err().is_cancelled(),
        "the caller was gone before the answer arrived"
    );
    eventually(
        Duration::from_secs(10),
        "the rotated token committed",
        async || stored_refresh(client.tokens()).await.0 == generation + 1,
    )
    .await;
    assert_ne!(stored_refresh(client.tokens()).await.1, refresh);
    // Another process uses the committed token without a refresh, and the next expiry
    // refreshes with the rotated refresh token (a lost rotation would be refused).
    let requests = t.sandbox.admin().token_requests_count();
    let other = client_on(&t, &stores[1]);
    other
        .tokens()
        .access_token("default")
        .await
        .expect("the committed token");
    assert_eq!(t.sandbox.admin().token_requests_count(), requests);
    t.advance_clocks(DAY);
    other
        .tokens()
        .access_token("default")
        .await
        .expect("the rotated refresh token works");
    let row = other.tokens().account("default").await.unwrap().unwrap();
    assert_eq!(row.state, AccountState::Active);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_aborted_after_the_grant_was_answered_keeps_the_chain_on_sqlite() {
    a_refresh_aborted_after_the_grant_was_answered_keeps_the_chain(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_aborted_after_the_grant_was_answered_keeps_the_chain_on_postgres() {
    let db = PgTestDb::create().await;
    a_refresh_aborted_after_the_grant_was_answered_keeps_the_chain(Some(&db)).await;
}
