//! The PostgreSQL state store against the local server: each test in a schema of its own
//! ([`TestSchema`]), dropped at the end. The table tests repeat the SQLite modules' tests
//! with the same assertions, plus what only several processes can show (two pools are two
//! processes' worth of connections).

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::SecretString;

use super::testing::{TestSchema, URL};
use super::{PgStore, TlsMode, migrate, redact_url, unencrypted_login_refused};
use crate::store::budget::HoldRequest;
use crate::store::bulk::StoredItem;
use crate::store::error::StoreError;
use crate::store::ledger::{Begun, Claim, Finish};
use crate::store::migrate::{Migration, POSTGRES_STATE};
use crate::store::tokens::{AccountState, NewTokens};
use crate::store::{Store, housekeeping};

const ME: Claim<'static> = Claim {
    owner: "me",
    lease: std::time::Duration::from_secs(60),
};

fn now() -> DateTime<Utc> {
    "2026-11-23T12:00:00Z".parse().unwrap()
}

fn finish<'a>(account: &'a str, id: &'a str, outcome: &'a str, result: &'a str) -> Finish<'a> {
    Finish {
        account,
        command_id: id,
        command_type: "list.list",
        outcome,
        result,
        fingerprint: None,
    }
}

// ---- connection, URLs, errors ----

#[test]
fn redacted_urls_never_show_the_password() {
    let shown = redact_url("postgres://ctct:hunter2@db.example:5432/state?sslmode=require");
    assert_eq!(
        shown,
        "postgres://ctct:***@db.example:5432/state?sslmode=require"
    );
    let shown = redact_url("postgresql://ctct@db/state?password=hunter2&sslmode=disable");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("password=***"), "{shown}");
    let shown = redact_url("postgres://ctct:hunter2@[broken/state");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(
        redact_url("postgres://postgres@127.0.0.1/test"),
        "postgres://postgres@127.0.0.1/test"
    );
}

#[test]
fn sslmode_values_are_read_as_libpq_does_and_others_refused() {
    assert_eq!(TlsMode::parse(None), Ok(TlsMode::Prefer));
    assert_eq!(TlsMode::parse(Some("disable")), Ok(TlsMode::Disable));
    assert_eq!(TlsMode::parse(Some("prefer")), Ok(TlsMode::Prefer));
    assert_eq!(TlsMode::parse(Some("require")), Ok(TlsMode::Require));
    assert_eq!(TlsMode::parse(Some("verify-full")), Ok(TlsMode::VerifyFull));
    for other in ["verify-ca", "allow", "VERIFY-FULL", ""] {
        let refused = TlsMode::parse(Some(other)).unwrap_err();
        assert!(refused.contains("sslmode"), "{refused}");
    }
}

#[test]
fn a_login_refused_for_want_of_tls_is_told_apart_from_other_refusals() {
    assert!(unencrypted_login_refused(
        r#"no pg_hba.conf entry for host "10.0.0.5", user "ctct", database "ctct", no encryption"#
    ));
    assert!(!unencrypted_login_refused(
        r#"no pg_hba.conf entry for host "10.0.0.5", user "ctct", database "ctct", SSL encryption"#
    ));
    assert!(!unencrypted_login_refused(
        r#"password authentication failed for user "ctct""#
    ));
}

/// Asserts that neither `Display` nor `Debug` of `error` shows the password `hunter2`.
fn assert_no_password(error: &StoreError) {
    let (shown, debug) = (error.to_string(), format!("{error:?}"));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!debug.contains("hunter2"), "{debug}");
}

async fn connect_err(url: &str, schema: &str) -> StoreError {
    PgStore::connect(&SecretString::from(url), schema)
        .await
        .expect_err("the connection is refused")
}

#[tokio::test]
async fn an_unknown_sslmode_or_schema_name_is_refused_before_connecting() {
    let error = connect_err(
        "postgres://postgres:hunter2@127.0.0.1:5432/test?sslmode=verify-ca",
        "ctct_state",
    )
    .await;
    assert!(
        matches!(&error, StoreError::PgConfig { reason, .. } if reason.contains("sslmode=verify-ca")),
        "{error:?}"
    );
    assert_no_password(&error);
    let error = connect_err(URL, "State; DROP").await;
    assert!(matches!(error, StoreError::PgConfig { .. }), "{error:?}");
    let error = connect_err("mysql://postgres:hunter2@127.0.0.1/test", "ctct_state").await;
    assert!(matches!(error, StoreError::PgConfig { .. }), "{error:?}");
    assert_no_password(&error);
}

#[tokio::test]
async fn nothing_listening_is_unreachable_and_retryable() {
    // Port 1 on the loopback: nothing listens there.
    let error = connect_err("postgres://postgres:hunter2@127.0.0.1:1/test", "ctct_state").await;
    assert!(
        matches!(&error, StoreError::PgUnreachable { url, .. } if url.contains("***")),
        "{error:?}"
    );
    assert!(error.is_unreachable());
    assert!(error.to_string().contains("unreachable"), "{error}");
    assert_no_password(&error);
}

#[tokio::test]
async fn an_unknown_database_and_a_refused_login_are_told_apart() {
    let missing = format!("ctct_no_such_db_{}", uuid::Uuid::new_v4().simple());
    let error = connect_err(
        &format!("postgres://postgres:hunter2@127.0.0.1:5432/{missing}"),
        "ctct_state",
    )
    .await;
    assert!(
        matches!(error, StoreError::PgNoDatabase { .. }),
        "{error:?}"
    );
    assert!(!error.is_unreachable());
    assert_no_password(&error);
    // The local server trusts every login it knows; an unknown role is refused.
    let error = connect_err(
        "postgres://ctct_no_such_role:hunter2@127.0.0.1:5432/test",
        "ctct_state",
    )
    .await;
    assert!(
        matches!(error, StoreError::PgAuthFailed { .. }),
        "{error:?}"
    );
    assert!(!error.is_unreachable());
    assert_no_password(&error);
}

/// Whether the store's connections are encrypted, as the server sees them.
async fn encrypted(store: &PgStore) -> bool {
    store
        .client()
        .await
        .unwrap()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn require_encrypts_disable_does_not_and_verify_full_refuses_an_unknown_certificate() {
    let schema = TestSchema::new();
    // The local server offers TLS with a self-signed certificate.
    let url = |mode: &str| SecretString::from(format!("{URL}?sslmode={mode}"));
    let store = PgStore::connect(&url("require"), &schema.name)
        .await
        .unwrap();
    assert!(encrypted(&store).await, "require encrypts");
    let store = PgStore::connect(&url("disable"), &schema.name)
        .await
        .unwrap();
    assert!(!encrypted(&store).await, "disable does not");
    let error = PgStore::connect(&url("verify-full"), &schema.name)
        .await
        .expect_err("a certificate no trusted root signed");
    assert!(matches!(error, StoreError::PgTls { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("certificate verification failed"),
        "{error}"
    );
    assert!(!error.is_unreachable());
    let error = PgStore::connect(
        &SecretString::from(format!(
            "{URL}?sslmode=verify-full&sslrootcert=/nonexistent/root.pem"
        )),
        &schema.name,
    )
    .await
    .expect_err("the root file is missing");
    assert!(
        matches!(&error, StoreError::PgConfig { reason, .. } if reason.contains("sslrootcert")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_postgres_store_dispatches_its_typed_methods_and_refuses_raw_sqlite_access() {
    let schema = TestSchema::new();
    let (store, report) = Store::connect_postgres(&schema.url(), &schema.name)
        .await
        .unwrap();
    assert_eq!(report.applied.len(), POSTGRES_STATE.len());
    assert!(
        store.describe().contains(&schema.name),
        "{}",
        store.describe()
    );
    let raw = store.call(|_| Ok(())).await.unwrap_err();
    assert!(matches!(raw, StoreError::NotSqlite(_)), "{raw:?}");
    let grouped = store.call_grouped(|_| Ok(())).await.unwrap_err();
    assert!(matches!(grouped, StoreError::NotSqlite(_)), "{grouped:?}");
    store.check_writable().await.unwrap();
    store.checkpoint().await.unwrap();
    store.integrity_check_own_tables().await.unwrap();
    store.integrity_probe().await.unwrap();
    assert_eq!(
        store.ledger_rows().await.unwrap(),
        0,
        "the probe leaves nothing"
    );
    // The ledger through `Store`, and housekeeping's pruning of it.
    let long_ago = now() - chrono::Duration::days(40);
    store
        .ledger_begin("a", "old", "list.list", "fp", ME, long_ago)
        .await
        .unwrap();
    store
        .ledger_finish_or_stored(finish("a", "old", "succeeded", "{}"), long_ago)
        .await
        .unwrap();
    store
        .ledger_begin("a", "parked", "list.list", "fp", ME, long_ago)
        .await
        .unwrap();
    let pruned = housekeeping::prune(&store, now(), 30).await.unwrap();
    assert_eq!(pruned.commands, 1);
    assert_eq!(
        store.ledger_rows().await.unwrap(),
        1,
        "the parked command stays"
    );
}

#[tokio::test]
async fn the_password_of_a_store_url_shows_nowhere() {
    let schema = TestSchema::new();
    // Trust authentication ignores the password, so the connection succeeds.
    let url = SecretString::from("postgres://postgres:hunter2@127.0.0.1:5432/test".to_owned());
    let (store, _) = Store::connect_postgres(&url, &schema.name).await.unwrap();
    for shown in [
        store.describe(),
        format!("{store:?}"),
        store.path().display().to_string(),
        store.pg().unwrap().to_string(),
    ] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}

#[tokio::test]
async fn a_connection_lost_mid_run_is_unreachable_and_the_pool_recovers() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    let lost = s.client().await.unwrap();
    let pid: i32 = lost
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let killed: bool = s
        .client()
        .await
        .unwrap()
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    // The server ends the connection; the driver notices within the deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let error = loop {
        match lost.query_one("SELECT 1", &[]).await {
            Err(e) => break s.error(e),
            Ok(_) if std::time::Instant::now() < deadline => tokio::task::yield_now().await,
            Ok(_) => panic!("the terminated connection still answers"),
        }
    };
    assert!(error.is_unreachable(), "{error:?}");
    drop(lost);
    assert_eq!(
        s.ledger_rows().await.unwrap(),
        0,
        "the pool replaces the lost connection"
    );
}

// ---- migrations ----

#[tokio::test]
async fn migrations_apply_once_and_a_second_run_is_a_noop() {
    let schema = TestSchema::new();
    let store = PgStore::connect(&schema.url(), &schema.name).await.unwrap();
    let first = migrate::apply(&store, POSTGRES_STATE).await.unwrap();
    assert_eq!(first.from_version, 0);
    assert_eq!(first.to_version, POSTGRES_STATE.len() as u32);
    let every: Vec<String> = POSTGRES_STATE
        .iter()
        .map(|m| format!("{:04}_{}", m.version, m.name))
        .collect();
    assert_eq!(first.applied, every);
    let second = migrate::apply(&store, POSTGRES_STATE).await.unwrap();
    assert!(second.is_noop());
    assert_eq!(second.to_version, first.to_version);
    let (version, name, sha): (i32, String, String) = {
        let row = store
            .client()
            .await
            .unwrap()
            .query_one(
                "SELECT version, name, sha256 FROM schema_migrations WHERE version = 1",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!((version, name.as_str(), sha.len()), (1, "state", 64));
}

#[tokio::test]
async fn an_edited_migration_and_a_newer_schema_are_refused() {
    let schema = TestSchema::new();
    let store = schema.store().await;
    let mut edited = POSTGRES_STATE.to_vec();
    edited[0].sql = "CREATE TABLE something_else (x int)";
    let error = migrate::apply(&store, &edited).await.unwrap_err();
    assert!(
        matches!(error, StoreError::MigrationChanged { version: 1, .. }),
        "{error:?}"
    );
    // One migration more than this binary has: applied, then refused as newer.
    let n = POSTGRES_STATE.len() as u32;
    let mut newer = POSTGRES_STATE.to_vec();
    newer.push(Migration {
        version: n + 1,
        name: "later",
        sql: "CREATE TABLE later (x int)",
    });
    assert_eq!(
        migrate::apply(&store, &newer).await.unwrap().applied,
        [format!("{:04}_later", n + 1)]
    );
    let error = migrate::apply(&store, POSTGRES_STATE).await.unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaTooNew { found, latest } if found == n + 1 && latest == n),
        "{error:?}"
    );
    let mut broken = newer.clone();
    broken.push(Migration {
        version: n + 2,
        name: "broken",
        sql: "CREATE TABLE broken (",
    });
    let error = migrate::apply(&store, &broken).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Migration { version, .. } if version == n + 2),
        "{error:?}"
    );
}

#[tokio::test]
async fn two_processes_migrating_at_once_both_succeed_and_one_applies() {
    let schema = TestSchema::new();
    let migrator = || async {
        let store = PgStore::connect(&schema.url(), &schema.name).await?;
        migrate::apply(&store, POSTGRES_STATE).await
    };
    let (a, b) = tokio::join!(migrator(), migrator());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        [a.is_noop(), b.is_noop()]
            .iter()
            .filter(|noop| !**noop)
            .count(),
        1,
        "{a:?} {b:?}"
    );
    assert_eq!(a.to_version, b.to_version);
}

// ---- ledger (as store::ledger's tests) ----

#[tokio::test]
async fn a_finished_command_replays_its_stored_result() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    assert_eq!(
        s.ledger_begin("default", "c1", "contact.get", "fp", ME, now())
            .await
            .unwrap(),
        Begun::Started {
            attempts: 1,
            effect_ref: None
        }
    );
    assert!(
        s.ledger_finish_entry(finish("default", "c1", "succeeded", "{\"r\":1}"), now())
            .await
            .unwrap()
    );
    assert_eq!(
        s.ledger_begin("default", "c1", "contact.get", "fp", ME, now())
            .await
            .unwrap(),
        Begun::Done {
            result: "{\"r\":1}".into()
        }
    );
    assert!(
        !s.ledger_finish_entry(finish("default", "c1", "failed", "{}"), now())
            .await
            .unwrap(),
        "a result is final"
    );
    assert_eq!(
        s.ledger_finish_or_stored(finish("default", "c1", "failed", "{}"), now())
            .await
            .unwrap()
            .as_deref(),
        Some("{\"r\":1}")
    );
    let history = s.ledger_history("default", "c1").await.unwrap();
    assert_eq!(history.result.as_deref(), Some("{\"r\":1}"));
    assert_eq!(history.attempts, Some(1), "a replay is not an attempt");
    assert_eq!(history.received_at, Some(now()));
    assert_eq!(
        s.ledger_received_at("default", "c1").await.unwrap(),
        Some(now())
    );
    assert_eq!(
        s.ledger_history("default", "none").await.unwrap(),
        Default::default()
    );
}

const OTHER: Claim<'static> = Claim {
    owner: "other",
    lease: std::time::Duration::from_secs(60),
};

/// A claim that lapses at once (the process that took it is as good as dead).
const LAPSING: Claim<'static> = Claim {
    owner: "me",
    lease: std::time::Duration::ZERO,
};

async fn claim_of(s: &PgStore, id: &str) -> (Option<String>, bool) {
    let row = s
        .client()
        .await
        .unwrap()
        .query_one(
            "SELECT owner, lease_until IS NOT NULL FROM command_ledger
             WHERE account = 'a' AND command_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_racing_on_one_command_start_it_once_and_the_other_finds_it_claimed() {
    let schema = TestSchema::new();
    let first = schema.store().await;
    // Another process: a pool and connections of its own on the same schema.
    let second = PgStore::connect(&schema.url(), &schema.name).await.unwrap();
    for i in 0..25 {
        let id = format!("race-{i}");
        let (a, b) = tokio::join!(
            first.ledger_begin("a", &id, "contact.create", "fp", ME, now()),
            second.ledger_begin("a", &id, "contact.create", "fp", OTHER, now())
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let answers = [&a, &b];
        let started = answers
            .iter()
            .filter(|x| matches!(x, Begun::Started { attempts: 1, .. }))
            .count();
        let claimed = answers
            .iter()
            .filter(|x| matches!(x, Begun::Claimed { .. }))
            .count();
        assert_eq!((started, claimed), (1, 1), "{id}: {a:?} {b:?}");
        let winner = if matches!(a, Begun::Started { .. }) {
            "me"
        } else {
            "other"
        };
        assert_eq!(
            [a, b]
                .into_iter()
                .find(|x| matches!(x, Begun::Claimed { .. })),
            Some(Begun::Claimed {
                owner: winner.into()
            })
        );
        assert_eq!(
            first.ledger_history("a", &id).await.unwrap().attempts,
            Some(1),
            "{id}: the claimed delivery counted no attempt"
        );
    }
}

#[tokio::test]
async fn a_lapsed_claim_is_taken_over_a_renewed_one_holds_and_finishing_clears_it() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    assert_eq!(
        s.ledger_begin("a", "c", "contact.create", "fp", ME, now())
            .await
            .unwrap(),
        Begun::Started {
            attempts: 1,
            effect_ref: None
        }
    );
    s.ledger_record_effect("a", "c", "contact-uuid")
        .await
        .unwrap();
    assert_eq!(
        s.ledger_begin("a", "c", "contact.create", "fp", OTHER, now())
            .await
            .unwrap(),
        Begun::Claimed { owner: "me".into() },
        "another owner while the lease holds (by the database's clock)"
    );
    assert!(
        !s.ledger_renew("a", "c", OTHER).await.unwrap(),
        "only the owner renews"
    );
    // The owner renews with a lease that lapses at once, as if it died right after.
    assert!(s.ledger_renew("a", "c", LAPSING).await.unwrap());
    assert_eq!(
        s.ledger_begin("a", "c", "contact.create", "fp", OTHER, now())
            .await
            .unwrap(),
        Begun::Started {
            attempts: 2,
            effect_ref: Some("contact-uuid".into())
        },
        "a lapsed claim is taken over, and the effect of the first attempt is known"
    );
    assert_eq!(claim_of(&s, "c").await, (Some("other".into()), true));
    assert!(matches!(
        s.ledger_begin("a", "c", "contact.create", "fp", ME, now())
            .await
            .unwrap(),
        Begun::Claimed { owner } if owner == "other"
    ));
    assert_eq!(
        s.ledger_history("a", "c").await.unwrap().attempts,
        Some(2),
        "the claimed delivery counted no attempt"
    );
    // Released (the command went to wait in a queue): the next delivery takes it at once.
    s.ledger_release("a", "c", "me").await.unwrap();
    assert_eq!(claim_of(&s, "c").await.0.as_deref(), Some("other"));
    s.ledger_release("a", "c", "other").await.unwrap();
    assert_eq!(claim_of(&s, "c").await, (None, false));
    assert!(matches!(
        s.ledger_begin("a", "c", "contact.create", "fp", ME, now())
            .await
            .unwrap(),
        Begun::Started { attempts: 3, .. }
    ));
    assert!(
        s.ledger_finish_entry(finish("a", "c", "succeeded", "{\"r\":1}"), now())
            .await
            .unwrap()
    );
    assert_eq!(
        claim_of(&s, "c").await,
        (None, false),
        "finishing clears the claim"
    );
    assert_eq!(
        s.ledger_begin("a", "c", "contact.create", "fp", OTHER, now())
            .await
            .unwrap(),
        Begun::Done {
            result: "{\"r\":1}".into()
        }
    );
    assert!(!s.ledger_renew("a", "c", ME).await.unwrap());
}

/// Regression (issue 17): a batch's claims were renewed by one UPDATE locking its rows in
/// index order, while the batch's end wrote the same rows one by one in its own transaction:
/// each waited for a row the other held, PostgreSQL broke the deadlock by failing one, and
/// when that was the batch's end its commands were handed back and answered again (2,230
/// replayed results in a 20,000-upsert burst with a 1.5 s lease). A renewal now skips the rows
/// another transaction is writing, and never waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_renewal_skips_the_rows_a_batch_end_is_writing_and_never_waits_for_them() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    for id in ["c1", "c2", "c3"] {
        s.ledger_begin("a", id, "contact.upsert", "fp", ME, now())
            .await
            .unwrap();
    }
    // The batch's end, half way: c2 written, its transaction open.
    let mut end = s.client().await.unwrap();
    let tx = end.transaction().await.unwrap();
    tx.execute(
        "UPDATE command_ledger SET status = 'done', owner = NULL, lease_until = NULL
         WHERE account = 'a' AND command_id = 'c2'",
        &[],
    )
    .await
    .unwrap();
    let ids: Vec<String> = ["c1", "c2", "c3"].map(String::from).to_vec();
    let renewed = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        s.ledger_renew_all("a", &ids, ME),
    )
    .await
    .expect("the renewal waited for the row the batch's end is writing")
    .unwrap();
    assert_eq!(renewed, 2, "c1 and c3 renewed, c2 skipped");
    // The end goes on through the rows the renewal has just written, and commits.
    tx.execute(
        "UPDATE command_ledger SET status = 'done', owner = NULL, lease_until = NULL
         WHERE account = 'a' AND command_id IN ('c1', 'c3')",
        &[],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    for id in ["c1", "c2", "c3"] {
        assert_eq!(claim_of(&s, id).await, (None, false), "{id}");
    }
    assert_eq!(s.ledger_renew_all("a", &ids, ME).await.unwrap(), 0);
}

#[tokio::test]
async fn attempts_and_effects_carry_over_between_deliveries() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    s.ledger_begin("default", "c2", "contact.create", "fp", ME, now())
        .await
        .unwrap();
    s.ledger_record_effect("default", "c2", "contact-uuid")
        .await
        .unwrap();
    assert_eq!(
        s.ledger_begin("default", "c2", "contact.create", "fp", ME, now())
            .await
            .unwrap(),
        Begun::Started {
            attempts: 2,
            effect_ref: Some("contact-uuid".into())
        }
    );
    s.ledger_uncount("default", "c2").await.unwrap();
    assert_eq!(
        s.ledger_begin("default", "c2", "contact.create", "fp", ME, now())
            .await
            .unwrap(),
        Begun::Started {
            attempts: 2,
            effect_ref: Some("contact-uuid".into())
        },
        "a parked command coming back counts once: parking took its count back"
    );
}

#[tokio::test]
async fn pruning_deletes_only_commands_finished_before_the_cutoff() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    let day = chrono::Duration::days(1);
    for (id, finished) in [("old-1", 40), ("old-2", 31), ("recent", 29)] {
        let at = now() - day * finished;
        s.ledger_begin("a", id, "list.list", "fp", ME, at)
            .await
            .unwrap();
        s.ledger_finish_entry(finish("a", id, "succeeded", "{}"), at)
            .await
            .unwrap();
    }
    s.ledger_begin("a", "parked", "contact.upsert", "fp", ME, now() - day * 90)
        .await
        .unwrap();
    let cutoff = now() - day * 30;
    assert_eq!(
        s.ledger_prune_finished(cutoff, 1).await.unwrap(),
        1,
        "the limit holds"
    );
    assert_eq!(
        s.ledger_result_of("a", "old-1").await.unwrap(),
        None,
        "oldest first"
    );
    assert_eq!(s.ledger_prune_finished(cutoff, 100).await.unwrap(), 1);
    assert_eq!(s.ledger_prune_finished(cutoff, 100).await.unwrap(), 0);
    assert_eq!(s.ledger_result_of("a", "old-2").await.unwrap(), None);
    assert!(s.ledger_result_of("a", "recent").await.unwrap().is_some());
    assert!(matches!(
        s.ledger_begin("a", "parked", "contact.upsert", "fp", ME, now())
            .await
            .unwrap(),
        Begun::Started { attempts: 2, .. }
    ));
    assert_eq!(
        s.ledger_begin("a", "old-1", "list.list", "fp", ME, now())
            .await
            .unwrap(),
        Begun::Started {
            attempts: 1,
            effect_ref: None
        },
        "a pruned id is a new command when it comes again"
    );
}

#[tokio::test]
async fn another_command_under_a_used_id_is_told_apart_and_leaves_the_row_alone() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    s.ledger_begin("a", "same", "list.list", "fp", ME, now())
        .await
        .unwrap();
    assert!(
        matches!(
            s.ledger_begin("b", "same", "list.list", "fp", ME, now())
                .await
                .unwrap(),
            Begun::Started { attempts: 1, .. }
        ),
        "the same id in two accounts is two commands"
    );
    s.ledger_begin("a", "c", "contact.upsert", "one", ME, now())
        .await
        .unwrap();
    assert_eq!(
        s.ledger_begin("a", "c", "contact.delete", "two", ME, now())
            .await
            .unwrap(),
        Begun::Reused {
            command_type: "contact.upsert".into()
        },
        "while the first is in progress"
    );
    s.ledger_finish_entry(
        Finish {
            command_type: "contact.upsert",
            ..finish("a", "c", "succeeded", "{\"first\":1}")
        },
        now(),
    )
    .await
    .unwrap();
    assert!(matches!(
        s.ledger_begin("a", "c", "contact.upsert", "two", ME, now())
            .await
            .unwrap(),
        Begun::Reused { .. }
    ));
    assert_eq!(
        s.ledger_begin("a", "c", "contact.upsert", "one", ME, now())
            .await
            .unwrap(),
        Begun::Done {
            result: "{\"first\":1}".into()
        }
    );
    let entry = s.ledger_entry("a", "c").await.unwrap().unwrap();
    assert_eq!(entry.fingerprint.as_deref(), Some("one"));
    assert!(entry.done);
    assert!(entry.belongs_to_another(Some("two")));
    assert!(
        !s.ledger_forget_unsuccessful("a", "c", Some("two"))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_rejected_message_is_stored_with_its_fingerprint_and_forgotten_only_by_it() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    let rejected = Finish {
        fingerprint: Some("bad"),
        ..finish("a", "r", "rejected", "{}")
    };
    assert!(s.ledger_finish_entry(rejected, now()).await.unwrap());
    assert_eq!(
        s.ledger_entry("a", "r")
            .await
            .unwrap()
            .unwrap()
            .fingerprint
            .as_deref(),
        Some("bad")
    );
    assert!(
        !s.ledger_forget_unsuccessful("a", "r", Some("other"))
            .await
            .unwrap()
    );
    assert!(
        s.ledger_forget_unsuccessful("a", "r", Some("bad"))
            .await
            .unwrap()
    );
    assert_eq!(s.ledger_rows().await.unwrap(), 0);
}

#[tokio::test]
async fn rows_without_a_fingerprint_still_replay_and_an_unfinished_one_adopts_one() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    s.client()
        .await
        .unwrap()
        .batch_execute(
            "INSERT INTO command_ledger (account, command_id, type, status, attempts, outcome, result, received_at, finished_at)
             VALUES ('a', 'old-done', 'list.list', 'done', 1, 'succeeded', '{\"old\":1}', '2026-11-01T00:00:00Z', '2026-11-01T00:00:01Z');
             INSERT INTO command_ledger (account, command_id, type, status, attempts, received_at)
             VALUES ('a', 'old-open', 'contact.upsert', 'in_progress', 1, '2026-11-01T00:00:00Z');",
        )
        .await
        .unwrap();
    for fingerprint in ["any", "other"] {
        assert_eq!(
            s.ledger_begin("a", "old-done", "list.list", fingerprint, ME, now())
                .await
                .unwrap(),
            Begun::Done {
                result: "{\"old\":1}".into()
            },
            "a row without a fingerprint replays as before"
        );
    }
    assert_eq!(
        s.ledger_entry("a", "old-done")
            .await
            .unwrap()
            .unwrap()
            .fingerprint,
        None,
        "a replay leaves the row as it is"
    );
    assert!(matches!(
        s.ledger_begin("a", "old-open", "contact.upsert", "mine", ME, now())
            .await
            .unwrap(),
        Begun::Started { attempts: 2, .. }
    ));
    assert!(matches!(
        s.ledger_begin("a", "old-open", "contact.upsert", "yours", ME, now())
            .await
            .unwrap(),
        Begun::Reused { .. }
    ));
    assert_eq!(
        s.ledger_history("a", "old-open").await.unwrap().attempts,
        Some(2),
        "another command's delivery is not counted"
    );
}

#[tokio::test]
async fn two_processes_beginning_the_same_command_at_once_count_every_delivery() {
    let schema = TestSchema::new();
    let (one, two) = (schema.store().await, schema.store().await);
    const EACH: u32 = 10;
    let deliveries = |store: PgStore| async move {
        let mut seen = Vec::new();
        for _ in 0..EACH {
            match store
                .ledger_begin("a", "shared", "contact.upsert", "fp", ME, now())
                .await
                .unwrap()
            {
                Begun::Started { attempts, .. } => seen.push(attempts),
                other => panic!("{other:?}"),
            }
        }
        seen
    };
    let (a, b) = tokio::join!(
        tokio::spawn(deliveries(one.clone())),
        tokio::spawn(deliveries(two.clone()))
    );
    let mut all: Vec<u32> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=2 * EACH).collect::<Vec<_>>(),
        "each delivery got its own attempt number"
    );
    assert_eq!(
        one.ledger_history("a", "shared").await.unwrap().attempts,
        Some(2 * EACH)
    );
}

// ---- tokens ----

fn tokens(access: &str, refresh: Option<&str>) -> NewTokens {
    NewTokens {
        access_token: SecretString::from(access.to_owned()),
        refresh_token: refresh.map(|r| SecretString::from(r.to_owned())),
        access_expires_at: now() + chrono::Duration::hours(1),
        scopes: "contact_data offline_access".into(),
    }
}

#[tokio::test]
async fn grants_and_refreshes_rotate_the_tokens_and_bump_the_generation() {
    use secrecy::ExposeSecret;
    let schema = TestSchema::new();
    let s = schema.store().await;
    assert!(s.tokens_account("default").await.unwrap().is_none());
    assert_eq!(
        s.tokens_save_grant("default", "key", &tokens("a1", Some("r1")), now())
            .await
            .unwrap(),
        1
    );
    assert!(
        s.tokens_take_lease(
            "default",
            "me",
            now(),
            now() + chrono::Duration::seconds(30)
        )
        .await
        .unwrap()
    );
    let generation = s
        .tokens_save_refresh("default", "me", &tokens("a2", None), now())
        .await
        .unwrap();
    assert_eq!(generation, 2);
    let stored = s.tokens_account("default").await.unwrap().unwrap();
    assert_eq!(stored.access_token.unwrap().expose_secret(), "a2");
    assert_eq!(
        stored.refresh_token.unwrap().expose_secret(),
        "r1",
        "kept when the server sends none"
    );
    assert_eq!(stored.state, AccountState::Active);
    assert_eq!(stored.created_at, now());
    assert!(
        s.tokens_take_lease(
            "default",
            "other",
            now(),
            now() + chrono::Duration::seconds(30)
        )
        .await
        .unwrap(),
        "saving the refresh released the lease"
    );
    assert!(
        s.tokens_save_refresh("default", "me", &tokens("a3", None), now())
            .await
            .is_err(),
        "a refresh made without the lease another owner holds is not stored"
    );
    s.tokens_mark_reauth_required("default", "invalid_grant", now())
        .await
        .unwrap();
    let stored = s.tokens_accounts().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].state, AccountState::ReauthRequired);
    assert_eq!(stored[0].state_reason.as_deref(), Some("invalid_grant"));
    assert_eq!(
        s.tokens_save_grant("default", "key", &tokens("a4", Some("r4")), now())
            .await
            .unwrap(),
        3,
        "a new grant makes the account active again"
    );
    assert_eq!(
        s.tokens_account("default").await.unwrap().unwrap().state,
        AccountState::Active
    );
}

#[tokio::test]
async fn the_refresh_lease_goes_to_one_process_and_expires_by_the_database_clock() {
    let schema = TestSchema::new();
    let (one, two) = (schema.store().await, schema.store().await);
    one.tokens_save_grant("default", "key", &tokens("a1", Some("r1")), now())
        .await
        .unwrap();
    let lasts = chrono::Duration::seconds(60);
    for round in 0..5 {
        let (a, b) = tokio::join!(
            one.tokens_take_lease("default", "one", now(), now() + lasts),
            two.tokens_take_lease("default", "two", now(), now() + lasts)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a ^ b, "round {round}: exactly one wins ({a}, {b})");
        let winner = if a { "one" } else { "two" };
        one.tokens_release_lease("default", winner).await.unwrap();
    }
    assert!(
        one.tokens_take_lease("default", "one", now(), now() + lasts)
            .await
            .unwrap()
    );
    assert!(
        one.tokens_take_lease("default", "one", now(), now() + lasts)
            .await
            .unwrap(),
        "the holder takes its own lease again"
    );
    // A host whose clock runs a century ahead does not see the lease as expired.
    let ahead: DateTime<Utc> = "2126-01-01T00:00:00Z".parse().unwrap();
    assert!(
        !two.tokens_take_lease("default", "two", ahead, ahead + lasts)
            .await
            .unwrap()
    );
    two.tokens_release_lease("default", "two").await.unwrap();
    assert!(
        !two.tokens_take_lease("default", "two", now(), now() + lasts)
            .await
            .unwrap(),
        "releasing another owner's lease does nothing"
    );
    // The lease's time passes (by the database's clock).
    one.client()
        .await
        .unwrap()
        .execute(
            "UPDATE accounts SET refresh_lease_until = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        two.tokens_take_lease("default", "two", now(), now() + lasts)
            .await
            .unwrap(),
        "an expired lease can be taken"
    );
}

#[tokio::test]
async fn forgetting_an_account_clears_its_tokens_and_leaves_it_needing_authorisation() {
    let schema = TestSchema::new();
    let (one, two) = (schema.store().await, schema.store().await);
    one.tokens_save_grant("default", "key", &tokens("a1", Some("r1")), now())
        .await
        .unwrap();
    one.tokens_save_grant("eu", "key", &tokens("a2", Some("r2")), now())
        .await
        .unwrap();
    let lasts = chrono::Duration::seconds(60);
    assert!(
        two.tokens_take_lease("default", "daemon", now(), now() + lasts)
            .await
            .unwrap()
    );
    assert!(
        !one.tokens_forget("default", "me", "logged out", now())
            .await
            .unwrap(),
        "not while another process holds the refresh lease"
    );
    let kept = one.tokens_account("default").await.unwrap().unwrap();
    assert_eq!(kept.state, AccountState::Active);
    assert!(kept.refresh_token.is_some());
    two.tokens_release_lease("default", "daemon").await.unwrap();
    assert!(
        one.tokens_take_lease("default", "me", now(), now() + lasts)
            .await
            .unwrap()
    );

    assert!(
        one.tokens_forget("default", "me", "logged out", now())
            .await
            .unwrap()
    );
    let row = two.tokens_account("default").await.unwrap().unwrap();
    assert_eq!(row.state, AccountState::ReauthRequired);
    assert_eq!(row.state_reason.as_deref(), Some("logged out"));
    assert!(row.refresh_token.is_none() && row.access_token.is_none());
    assert!(row.access_expires_at.is_none());
    assert_eq!(row.generation, 2, "a token cached elsewhere is older now");
    assert!(
        two.tokens_take_lease("default", "daemon", now(), now() + lasts)
            .await
            .unwrap(),
        "the lease was dropped"
    );
    let other = one.tokens_account("eu").await.unwrap().unwrap();
    assert_eq!(
        other.state,
        AccountState::Active,
        "other accounts untouched"
    );
    assert!(other.refresh_token.is_some());
    assert!(
        !one.tokens_forget("nobody", "me", "logged out", now())
            .await
            .unwrap(),
        "no such account"
    );
    // Another process's lease past its time, by the database's clock, does not hold it up.
    one.client()
        .await
        .unwrap()
        .execute(
            "UPDATE accounts SET refresh_lease_until = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        one.tokens_forget("default", "me", "logged out again", now())
            .await
            .unwrap()
    );
    assert_eq!(
        one.tokens_save_grant("default", "key", &tokens("a3", Some("r3")), now())
            .await
            .unwrap(),
        4,
        "a new grant makes it active again"
    );
    assert_eq!(
        one.tokens_account("default").await.unwrap().unwrap().state,
        AccountState::Active
    );
}

// ---- budget (as store::budget's tests) ----

fn day() -> NaiveDate {
    "2026-11-23".parse().unwrap()
}

fn request(want: u32, now_ms: i64) -> HoldRequest {
    HoldRequest {
        want,
        per_day: 100,
        now_ms,
        expires_at_ms: now_ms + 5_000,
    }
}

#[tokio::test]
async fn holds_count_until_settled_or_lapsed_and_never_pass_the_quota() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    let a = s
        .budget_settle("key", day(), "a", 0, request(60, 0))
        .await
        .unwrap();
    assert_eq!(a.granted, 50, "at most half of what is left");
    let b = s
        .budget_settle("key", day(), "b", 0, request(60, 0))
        .await
        .unwrap();
    assert_eq!((b.granted, b.day.counted()), (25, 75));
    let a = s
        .budget_settle("key", day(), "a", 10, request(0, 1_000))
        .await
        .unwrap();
    assert_eq!((a.granted, a.day.spent, a.day.held), (0, 10, 25));
    assert_eq!(
        s.budget_load_day("key", day(), 4_999)
            .await
            .unwrap()
            .counted(),
        35
    );
    // `b` is killed: its hold lapses (by the database's clock) and stops counting.
    s.client()
        .await
        .unwrap()
        .execute(
            "UPDATE rate_budget_holds SET expires_at = now() - interval '1 millisecond'
             WHERE owner = 'b'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        s.budget_load_day("key", day(), 5_000)
            .await
            .unwrap()
            .counted(),
        10
    );
    let c = s
        .budget_settle("key", day(), "c", 0, request(1_000, 6_000))
        .await
        .unwrap();
    assert_eq!((c.granted, c.day.counted()), (45, 55));
    // Another key and another day are counted apart.
    assert_eq!(
        s.budget_load_day("other", day(), 0)
            .await
            .unwrap()
            .counted(),
        0
    );
    s.budget_mark_exhausted("key", day(), now()).await.unwrap();
    let d = s
        .budget_settle("key", day(), "d", 0, request(10, 7_000))
        .await
        .unwrap();
    assert_eq!(d.granted, 0, "no hold on a day the API said was exhausted");
    assert!(d.day.exhausted);
}

#[tokio::test]
async fn processes_settling_at_once_never_hold_more_than_the_quota() {
    let schema = TestSchema::new();
    let stores = [schema.store().await, schema.store().await];
    let mut tasks = Vec::new();
    for (n, store) in stores.iter().cycle().take(8).enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .budget_settle("key", day(), &format!("p{n}"), 0, request(100, 0))
                .await
                .unwrap()
                .granted
        }));
    }
    let mut granted = 0;
    for task in tasks {
        granted += task.await.unwrap();
    }
    let stored = stores[0].budget_load_day("key", day(), 0).await.unwrap();
    assert_eq!(stored.held, granted);
    assert!(granted <= 100, "{granted}");
}

// ---- bulk (as store::bulk's tests) ----

#[tokio::test]
async fn pruning_deletes_ended_batches_and_their_items_but_never_open_ones() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    let long_ago = now() - chrono::Duration::days(60);
    let item = |row: u32, id: &str| StoredItem {
        row,
        command_id: id.into(),
        email: format!("{id}@example.com"),
        attempts: 1,
        started_at: long_ago,
    };
    for (batch, command) in [("ended", "c1"), ("open", "c2"), ("recent", "c3")] {
        s.bulk_create(batch, "a", &["l1".into()], vec![item(1, command)], long_ago)
            .await
            .unwrap();
    }
    s.bulk_set_status("ended", "done", long_ago).await.unwrap();
    s.bulk_set_activity("open", "act-open").await.unwrap();
    s.bulk_set_status("recent", "abandoned", now())
        .await
        .unwrap();
    let cutoff = now() - chrono::Duration::days(30);
    assert_eq!(s.bulk_prune_ended(cutoff, 100).await.unwrap(), 1);
    assert_eq!(s.bulk_prune_ended(cutoff, 100).await.unwrap(), 0);
    assert_eq!(s.bulk_status("ended").await.unwrap(), None);
    assert_eq!(
        s.bulk_status("open").await.unwrap().as_deref(),
        Some("polling")
    );
    assert_eq!(
        s.bulk_status("recent").await.unwrap().as_deref(),
        Some("abandoned")
    );
    let items: Vec<String> = s
        .client()
        .await
        .unwrap()
        .query("SELECT batch_id FROM bulk_items ORDER BY batch_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        items,
        ["open", "recent"],
        "the ended batch's items went with it"
    );
}

#[tokio::test]
async fn a_batch_is_stored_resumed_and_points_the_ledger_at_itself() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    s.ledger_begin("a", "c1", "contact.upsert", "fp", ME, now())
        .await
        .unwrap();
    let item = StoredItem {
        row: 1,
        command_id: "c1".into(),
        email: "pat@example.com".into(),
        attempts: 1,
        started_at: now(),
    };
    s.bulk_create(
        "b1",
        "a",
        &["l1".into(), "l2".into()],
        vec![item.clone()],
        now(),
    )
    .await
    .unwrap();
    s.bulk_create("b2", "a", &["l1".into()], vec![], now())
        .await
        .unwrap();
    s.bulk_set_activity("b1", "act-1").await.unwrap();
    assert_eq!(
        s.ledger_begin("a", "c1", "contact.upsert", "fp", ME, now())
            .await
            .unwrap(),
        Begun::Started {
            attempts: 2,
            effect_ref: Some("batch:b1".into())
        }
    );
    let open = s.bulk_load_open(now()).await.unwrap();
    assert_eq!(open.len(), 1, "b2 never got an activity id");
    assert_eq!(open[0].activity_id, "act-1");
    assert_eq!(open[0].list_ids, ["l1", "l2"]);
    assert_eq!(open[0].created_at, now());
    assert_eq!(open[0].items, vec![item]);
    assert_eq!(
        s.bulk_status("b2").await.unwrap().as_deref(),
        Some("abandoned")
    );
    s.bulk_finish_all(
        "a",
        vec![(
            "c1".into(),
            "contact.upsert".into(),
            "succeeded".into(),
            "{}".into(),
        )],
        now(),
    )
    .await
    .unwrap();
    s.bulk_set_status("b1", "done", now()).await.unwrap();
    assert!(s.bulk_load_open(now()).await.unwrap().is_empty());
    assert_eq!(
        s.ledger_result_of("a", "c1").await.unwrap().as_deref(),
        Some("{}")
    );
}

// ---- integrity ----

#[tokio::test]
async fn a_sound_store_passes_and_a_missing_table_is_named() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    s.integrity_check_own_tables().await.unwrap();
    s.integrity_probe().await.unwrap();
    s.client()
        .await
        .unwrap()
        .batch_execute("DROP TABLE bulk_items")
        .await
        .unwrap();
    match s.integrity_check_own_tables().await {
        Err(StoreError::Damaged { table, problems }) => {
            assert_eq!(table, "bulk_items");
            assert!(problems.contains("missing"), "{problems}");
        }
        other => panic!("{other:?}"),
    }
}

/// Regression (issue 17): the translation of a slot to the caller's clock measured the
/// answer's trip from when a pooled connection was in hand, not from when the caller read its
/// clock; a caller that waited for a connection got its slot moved earlier by the wait, and a
/// daemon sharing the key with two more processes sent into a second already full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_taken_after_waiting_for_a_connection_is_not_moved_before_the_schedule() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    let mut held = Vec::new();
    for _ in 0..s.pool().status().max_size {
        held.push(s.client().await.unwrap());
    }
    let pacing = {
        let s = s.clone();
        tokio::spawn(async move {
            // The caller's clock, read right before the call, as the budget does.
            let now = Utc::now().timestamp_millis();
            s.budget_pace("key", 1, 275, now).await.unwrap()
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s.pool().status().waiting == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the pace never asked for a connection"
        );
        tokio::task::yield_now().await;
    }
    // The caller waits for a connection, as one does behind a busy pool.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let released = Utc::now().timestamp_millis();
    drop(held);
    let block = pacing.await.unwrap();
    // The database took the slot after `released` (one host, one clock): it is not earlier,
    // give or take the clocks' rounding to whole milliseconds (the flaw moved it by the wait).
    assert!(
        block.first_ms >= released - 10,
        "the slot moved {} ms before the schedule",
        released - block.first_ms
    );
}

#[tokio::test]
async fn the_pace_hands_out_each_slot_once_across_pools_in_the_callers_clock() {
    let schema = TestSchema::new();
    let a = schema.store().await;
    let b = schema.store().await;
    // A caller whose clock is an hour behind the database's gets its slot at its own "now".
    let behind = Utc::now().timestamp_millis() - 3_600_000;
    let first = a.budget_pace("key", 1, 275, behind).await.unwrap();
    assert!(
        (first.first_ms - behind).abs() < 1_000,
        "the first slot is now in the caller's clock: {first:?}"
    );
    // Callers from two pools at once: together they move the schedule by exactly the slots
    // they took (none handed out twice), and on this host (the database's clock) every block
    // starts at least 2 × 275 ms after the one before, give or take the answers' trips.
    let next_slot = |store: PgStore| async move {
        let row = store
            .client()
            .await
            .unwrap()
            .query_one(
                "SELECT next_slot_ms FROM rate_pace WHERE client_id = 'key'",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    let before = next_slot(a.clone()).await;
    let mut tasks = Vec::new();
    for store in [a.clone(), b.clone(), a.clone(), b] {
        tasks.push(tokio::spawn(async move {
            let mut firsts = Vec::new();
            for _ in 0..10 {
                let now = Utc::now().timestamp_millis();
                let block = store.budget_pace("key", 2, 275, now).await.unwrap();
                assert_eq!((block.slots, block.interval_ms), (2, 275));
                firsts.push(block.first_ms);
            }
            firsts
        }));
    }
    let mut firsts = Vec::new();
    for task in tasks {
        firsts.extend(task.await.unwrap());
    }
    assert_eq!(next_slot(a).await - before, 40 * 2 * 275);
    firsts.sort();
    assert_eq!(firsts.len(), 40);
    for pair in firsts.windows(2) {
        assert!(
            pair[1] - pair[0] >= 2 * 275 - 50,
            "overlapping blocks: {pair:?}"
        );
    }
}

#[tokio::test]
async fn the_claim_check_probes_the_key_per_id_whatever_the_ledgers_statistics() {
    let schema = TestSchema::new();
    let s = schema.store().await;
    let client = s.client().await.unwrap();
    // A ledger filled after its statistics were taken (never analysed: a fresh install, a
    // benchmark's first minutes), and the plan the server may cache for a prepared statement.
    client
        .batch_execute(
            "INSERT INTO command_ledger (account, command_id, type, status, received_at, owner)
             SELECT 'default', 'c' || i, 'contact.upsert', 'in_progress', now(), 'me'
             FROM generate_series(1, 5000) AS i;
             SET plan_cache_mode = force_generic_plan;",
        )
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "PREPARE holds_plan AS {}",
            super::replicas::LEDGER_HOLDS
        ))
        .await
        .unwrap();
    let plan: Vec<String> = client
        .query(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
             EXECUTE holds_plan('default', ARRAY['c7', 'c9', 'gone'], 'me')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    client
        .batch_execute("DEALLOCATE holds_plan; RESET plan_cache_mode;")
        .await
        .unwrap();
    let plan = plan.join("\n");
    let most_removed = plan
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Rows Removed by Filter: "))
        .filter_map(|n| n.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    assert!(
        !plan.contains("Seq Scan") && most_removed <= 3,
        "the check read the account's commands:\n{plan}"
    );
    assert!(
        plan.lines()
            .filter(|line| line.contains("Index Cond"))
            .all(|line| line.contains("command_id")),
        "the key was not searched by command id:\n{plan}"
    );
    assert_eq!(
        s.ledger_holds("default", &["c7".into(), "c9".into(), "gone".into()], "me")
            .await
            .unwrap(),
        2
    );
}
