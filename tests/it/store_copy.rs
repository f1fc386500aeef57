//! `ctct-sync store copy` (issue 17, "Upgrade without loss"): the state and the mirror move
//! from SQLite to PostgreSQL and back with tokens that still refresh and a ledger that still
//! replays, and a target that already holds rows is refused without a write.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use ctct_sync::config::{SecretUrl, StoreLocation};
use ctct_sync::mirror::Mode;
use ctct_sync::store::copy::{MIRROR_COPY_TABLES, STATE_TABLES, copy};
use ctct_sync::store::ledger::{Begun, Finish};
use ctct_sync::store::{Role, Store};
use secrecy::SecretString;

use crate::mirror::{ActivityCompleter, fast_options, mirror_for, run_all_ok, seed};
use crate::support::api::{TestApi, build_client};
use crate::support::ctct_sync_command;
use crate::support::pg::PgTestDb;

/// Past the access token's lifetime: the next call refreshes.
const DAY: Duration = Duration::from_secs(25 * 3600);

const COMMAND: &str = "copy-cmd-1";
const FINGERPRINT: &str = "f1ce";
const RESULT: &str = r#"{"id":"copy-cmd-1","status":"succeeded"}"#;

fn pg_location(db: &PgTestDb, schema: &str) -> StoreLocation {
    StoreLocation::Postgres {
        url: SecretUrl::new(db.url()),
        schema: schema.to_owned(),
    }
}

/// Refreshes account `default` through a client on `store` (the clocks moved past the access
/// token's expiry first) and asserts the sandbox granted exactly one refresh; then asserts the
/// ledger on `store` replays the stored result of [`COMMAND`].
async fn assert_tokens_refresh_and_ledger_replays(t: &TestApi, store: &Store) {
    let client = build_client(&t.sandbox, store, &t.clock, t.per_second, t.per_day);
    t.advance_clocks(DAY);
    let before = t.sandbox.admin().token_requests_count();
    let token = client
        .tokens()
        .access_token("default")
        .await
        .expect("the copied refresh token is accepted");
    assert_eq!(
        t.sandbox.admin().token_requests_count() - before,
        1,
        "one refresh with the copied token"
    );
    assert!(token.generation > 0, "{}", token.generation);
    let begun = store
        .ledger_begin(
            "default",
            COMMAND,
            "contact.upsert",
            FINGERPRINT,
            ctct_sync::store::ledger::Claim {
                owner: "store-copy-test",
                lease: std::time::Duration::from_secs(30),
            },
            Utc::now(),
        )
        .await
        .expect("the ledger answers");
    assert_eq!(
        begun,
        Begun::Done {
            result: RESULT.to_owned()
        }
    );
}

/// Row counts of the mirror's tables and a sample of contacts on a SQLite mirror file, with
/// the number of rows the `live_contacts_detailed` view gives.
async fn sqlite_mirror_figures(path: &Path) -> (Vec<i64>, Vec<String>, i64) {
    let (store, _) = Store::open_mirror(path).expect("the mirror file opens");
    store
        .call(|conn| {
            let mut counts = Vec::new();
            for table in MIRROR_COPY_TABLES {
                counts.push(
                    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?,
                );
            }
            let sample = conn
                .prepare(
                    "SELECT contact_id || '|' || coalesce(email_address, '') || '|' ||
                            coalesce(first_name, '') || '|' || coalesce(last_name, '') || '|' ||
                            coalesce(substr(updated_at, 1, 19), '')
                     FROM contacts ORDER BY contact_id LIMIT 25",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            let detailed = conn.query_row(
                "SELECT count(*) FROM live_contacts_detailed WHERE lists IS NOT NULL",
                [],
                |r| r.get(0),
            )?;
            Ok((counts, sample, detailed))
        })
        .await
        .expect("the mirror is readable")
}

/// The same figures of the PostgreSQL mirror in `schema`.
async fn pg_mirror_figures(db: &PgTestDb, schema: &str) -> (Vec<i64>, Vec<String>, i64) {
    let client = db.connect().await;
    client
        .batch_execute(&format!("SET search_path = {schema}; SET TIME ZONE 'UTC'"))
        .await
        .unwrap();
    let mut counts = Vec::new();
    for table in MIRROR_COPY_TABLES {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap();
        counts.push(row.get(0));
    }
    let sample = client
        .query(
            "SELECT contact_id || '|' || coalesce(email_address, '') || '|' ||
                    coalesce(first_name, '') || '|' || coalesce(last_name, '') || '|' ||
                    coalesce(to_char(updated_at, 'YYYY-MM-DD\"T\"HH24:MI:SS'), '')
             FROM contacts ORDER BY contact_id COLLATE \"C\" LIMIT 25",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let detailed = client
        .query_one(
            "SELECT count(*) FROM live_contacts_detailed WHERE lists IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (counts, sample, detailed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_mirror_go_from_sqlite_to_postgresql_and_back_with_tokens_that_still_refresh() {
    let t = TestApi::start().await;
    seed(&t, 120);
    let completer = ActivityCompleter::start(t.sandbox.admin());
    run_all_ok(&mirror_for(&t, fast_options()), Mode::Full).await;
    drop(completer);
    // A live access token, and a finished command in the ledger.
    t.client
        .tokens()
        .access_token("default")
        .await
        .expect("a token");
    t.store
        .ledger_begin(
            "default",
            COMMAND,
            "contact.upsert",
            FINGERPRINT,
            ctct_sync::store::ledger::Claim {
                owner: "store-copy-test",
                lease: std::time::Duration::from_secs(30),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    t.store
        .ledger_finish_or_stored(
            Finish {
                account: "default",
                command_id: COMMAND,
                command_type: "contact.upsert",
                outcome: "succeeded",
                result: RESULT,
                fingerprint: Some(FINGERPRINT),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let mirror_path = t
        .store_path
        .parent()
        .unwrap()
        .join(ctct_sync::config::DEFAULT_MIRROR_FILE_NAME);
    let sqlite_figures = sqlite_mirror_figures(&mirror_path).await;
    assert!(sqlite_figures.0[1] >= 120, "{:?}", sqlite_figures.0);

    // SQLite -> PostgreSQL with the real command, the source from the configuration.
    let pg = PgTestDb::create().await;
    let output = ctct_sync_command(t.dir.path())
        .envs(t.cli_env())
        .args(["store", "copy", "--to", pg.url(), "--mirror-to", pg.url()])
        .output()
        .expect("ctct-sync runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("accounts 1"), "{stdout}");
    assert!(stdout.contains("command_ledger 1"), "{stdout}");
    assert!(stdout.contains("(schema ctct_mirror)"), "{stdout}");

    let (pg_state, _) = Store::connect_postgres(&SecretString::from(pg.url()), "ctct_state")
        .await
        .expect("the copied state opens");
    assert_tokens_refresh_and_ledger_replays(&t, &pg_state).await;
    let pg_figures = pg_mirror_figures(&pg, "ctct_mirror").await;
    assert_eq!(
        pg_figures, sqlite_figures,
        "the PostgreSQL mirror equals the SQLite one"
    );
    // The copied run ids are kept and the identity moved past them.
    let client = pg.connect().await;
    let max_run: i64 = client
        .query_one("SELECT max(id) FROM ctct_mirror.mirror_runs", &[])
        .await
        .unwrap()
        .get(0);
    let next: i64 = client
        .query_one(
            "INSERT INTO ctct_mirror.mirror_runs (account, resource, mode, started_at)
             VALUES ('default', 'contacts', 'full', now()) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, max_run + 1);
    client
        .execute(
            "DELETE FROM ctct_mirror.mirror_runs WHERE id = $1",
            &[&next],
        )
        .await
        .unwrap();

    // PostgreSQL -> a new SQLite pair, after the refresh rotated the token there.
    let back = t.dir.path().join("back");
    let (state_back, mirror_back) = (back.join("state.db"), back.join("mirror").join("m.db"));
    let summary = copy(
        Role::State,
        STATE_TABLES,
        &pg_location(&pg, "ctct_state"),
        &StoreLocation::Sqlite(state_back.clone()),
    )
    .await
    .expect("the state copies back");
    assert_eq!(summary.rows("accounts"), 1);
    copy(
        Role::Mirror,
        MIRROR_COPY_TABLES,
        &pg_location(&pg, "ctct_mirror"),
        &StoreLocation::Sqlite(mirror_back.clone()),
    )
    .await
    .expect("the mirror copies back");
    let (sqlite_state, _) = Store::open(&state_back).expect("the copied state opens");
    assert_tokens_refresh_and_ledger_replays(&t, &sqlite_state).await;
    assert_eq!(sqlite_mirror_figures(&mirror_back).await, sqlite_figures);
    drop(pg_state);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_holding_rows_is_refused_naming_the_table_and_nothing_is_written() {
    let t = TestApi::start().await;
    let pg = PgTestDb::create().await;
    let (pg_state, _) = Store::connect_postgres(&SecretString::from(pg.url()), "ctct_state")
        .await
        .unwrap();
    let client = pg.connect().await;
    client
        .batch_execute(
            "INSERT INTO ctct_state.bulk_batches (id, account, list_ids, status, size, created_at)
             VALUES ('b-1', 'default', '[]', 'done', 0, now())",
        )
        .await
        .unwrap();
    let output = ctct_sync_command(t.dir.path())
        .envs(t.cli_env())
        .args(["store", "copy", "--to", pg.url()])
        .output()
        .expect("ctct-sync runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("table bulk_batches holds rows"), "{stderr}");
    let accounts: i64 = client
        .query_one("SELECT count(*) FROM ctct_state.accounts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(accounts, 0, "nothing was written");

    // The same on a SQLite target.
    let target = t.dir.path().join("target").join("state.db");
    let (sqlite_target, _) = Store::open(&target).unwrap();
    sqlite_target
        .call(|conn| {
            conn.execute(
                "INSERT INTO rate_pace (client_id, next_slot_ms) VALUES ('k', 1)",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let error = copy(
        Role::State,
        STATE_TABLES,
        &StoreLocation::Sqlite(t.store_path.clone()),
        &StoreLocation::Sqlite(target.clone()),
    )
    .await
    .expect_err("a target with rows is refused");
    assert!(
        error.to_string().contains("table rate_pace holds rows"),
        "{error}"
    );
    let accounts: i64 = sqlite_target
        .call(|conn| Ok(conn.query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(accounts, 0, "nothing was written");
    drop(pg_state);
    t.stop().await;
}
