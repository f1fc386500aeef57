//! A store written by an earlier release opens with this one: its migrations run, its ledger
//! still replays, its mirror rows move to the mirror store, and its tokens still refresh. The fixture in
//! tests/fixtures/store-9147d43 was written by commit 9147d43 (`scripts/make-store-fixture.sh`:
//! one connected account, six commands in the ledger, a full mirror), with the sandbox's state
//! beside it so the stored refresh token is one that sandbox knows.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ctct_sandbox::SandboxOptions;
use ctct_sync::clock::ManualClock;
use ctct_sync::command::outcome::{CommandResult, Outcome};
use ctct_sync::store::copy::MIRROR_TABLES;
use ctct_sync::store::tokens::AccountState;
use ctct_sync::store::{Store, ledger};
use rusqlite::{Connection, OpenFlags};

use crate::support::api::build_client;
use crate::support::temp_dir;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/store-9147d43/ctct-sync-9147d43"
);

/// Every row of `table` as text, in primary-key order, from the store's connection.
async fn dump(store: &Store, table: &'static str) -> Vec<String> {
    store.call(move |conn| Ok(rows(conn, table))).await.unwrap()
}

/// The same from a file, read-only.
fn dump_file(path: &str, table: &str) -> Vec<String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    rows(&conn, table)
}

/// The rows of `table` as JSON arrays of the mirror's column names (in the mirror's order),
/// sorted.
fn rows(conn: &Connection, table: &str) -> Vec<String> {
    let columns: Vec<String> = conn
        .prepare(&format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY name"
        ))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let list = columns
        .iter()
        .map(|c| format!("'{c}', {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out: Vec<String> = conn
        .prepare(&format!("SELECT json_object({list}) FROM {table}"))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    out.sort();
    out
}

async fn stored_result(store: &Store, id: &'static str) -> CommandResult {
    let entry = store
        .call(move |conn| ledger::entry(conn, "default", id))
        .await
        .expect("the ledger reads")
        .unwrap_or_else(|| panic!("{id}: kept in the ledger"));
    assert!(entry.done, "{id}: done");
    serde_json::from_str(&entry.result.expect("a stored result")).expect("a result")
}

#[tokio::test]
async fn a_store_written_by_release_9147d43_opens_replays_and_its_tokens_still_refresh() {
    let dir = temp_dir();
    let store_path = dir.path().join("ctct-sync.db");
    std::fs::copy(format!("{FIXTURE}.sqlite3"), &store_path).expect("the fixture copies");
    // As the release left it: readable by its owner only (git keeps no such mode).
    std::fs::set_permissions(&store_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let state_path = dir.path().join("sandbox-state.json");
    std::fs::copy(format!("{FIXTURE}-sandbox-state.json"), &state_path)
        .expect("the sandbox state copies");

    let mirror_path = dir.path().join("ctct-mirror.db");
    let (mirror, _) = Store::open_mirror(&mirror_path).expect("a new mirror opens");
    let (store, report) = Store::open_state(&store_path, Some(&mirror_path))
        .expect("the earlier release's store opens");
    assert_eq!(report.from_version, 4, "{report:?}");
    assert!(report.to_version > 4, "{report:?}");
    assert_eq!(
        report.applied.len() as u32,
        report.to_version - 4,
        "every later migration applied: {report:?}"
    );

    // The ledger still answers for what the earlier release did.
    let upserted = stored_result(&store, "fixture-upsert-1").await;
    assert_eq!(upserted.outcome, Outcome::Succeeded, "{upserted:?}");
    let rejected = stored_result(&store, "fixture-rejected").await;
    assert_eq!(rejected.outcome, Outcome::Rejected, "{rejected:?}");

    // The mirror's rows moved, every one and unchanged, and left the state store.
    let contacts: i64 = mirror
        .call(|conn| Ok(conn.query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(contacts, 203, "200 seeded and 3 upserted contacts");
    for table in MIRROR_TABLES {
        assert_eq!(
            dump(&mirror, table).await,
            dump_file(&format!("{FIXTURE}.sqlite3"), table),
            "{table} moved unchanged"
        );
    }
    let left: Vec<String> = store
        .call(|conn| {
            let mut stmt =
                conn.prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view')")?;
            let names = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(names)
        })
        .await
        .unwrap();
    for table in MIRROR_TABLES.iter().chain(&["live_contacts"]) {
        assert!(
            !left.iter().any(|t| t == table),
            "{table} left the state store: {left:?}"
        );
    }

    // The account is still connected, and its refresh token still works once the access
    // token has expired on both clocks.
    let mut options = SandboxOptions::for_tests();
    options.state_file = Some(state_path);
    let sandbox = ctct_sandbox::start(options)
        .await
        .expect("the sandbox starts");
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let client = build_client(&sandbox, &store, &clock, 1000, 1_000_000);
    let accounts = client.tokens().accounts().await.expect("the accounts read");
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0].state, AccountState::Active);
    let day_and_more = Duration::from_secs(25 * 3600);
    sandbox.admin().advance_clock(day_and_more);
    clock.advance(chrono::Duration::from_std(day_and_more).unwrap());
    let before = sandbox.admin().token_requests_count();
    client
        .account("default")
        .get_account_summary(&[])
        .await
        .expect("the API answers with a refreshed token");
    assert_eq!(
        sandbox.admin().token_requests_count(),
        before + 1,
        "one refresh with the stored refresh token"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn without_a_sqlite_mirror_the_old_mirror_tables_are_dropped_and_the_state_stays() {
    // The mirror on PostgreSQL: nothing to copy into; its next full pass rebuilds it.
    let dir = temp_dir();
    let store_path = dir.path().join("ctct-sync.db");
    std::fs::copy(format!("{FIXTURE}.sqlite3"), &store_path).expect("the fixture copies");
    std::fs::set_permissions(&store_path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let (store, report) = Store::open(&store_path).expect("the earlier release's store opens");
    assert_eq!(report.from_version, 4, "{report:?}");
    let upserted = stored_result(&store, "fixture-upsert-1").await;
    assert_eq!(upserted.outcome, Outcome::Succeeded, "{upserted:?}");
    let tables: Vec<String> = store
        .call(|conn| {
            let mut stmt =
                conn.prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view')")?;
            let names = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(names)
        })
        .await
        .unwrap();
    for table in MIRROR_TABLES {
        assert!(
            !tables.iter().any(|t| t == table),
            "{table} dropped: {tables:?}"
        );
    }
    assert!(tables.iter().any(|t| t == "accounts"), "{tables:?}");
    assert!(
        !dir.path().join("ctct-mirror.db").exists(),
        "no mirror file was made for it"
    );
}
