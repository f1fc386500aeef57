//! The SQLite store: file permissions, migrations (fresh, re-run, upgrade, refusals) and
//! the owner thread.

use std::os::unix::fs::PermissionsExt;

use ctct_sync::store::copy::MIRROR_TABLES;
use ctct_sync::store::migrate::{self, Migration, SQLITE_STATE};
use ctct_sync::store::{Store, StoreError};
use rusqlite::Connection;

use crate::support;

/// The claim of a process that died long ago (its lease lapsed at once).
const DEAD: ctct_sync::store::ledger::Claim<'static> = ctct_sync::store::ledger::Claim {
    owner: "a-process-that-died",
    lease: std::time::Duration::ZERO,
};

fn schema_of(conn: &Connection) -> Vec<(String, String)> {
    let mut stmt = conn
        .prepare("SELECT name, coalesce(sql, '') FROM sqlite_schema ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn user_version(conn: &Connection) -> u32 {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn a_fresh_store_is_created_0600_in_a_0700_directory_with_every_migration_applied() {
    let dir = support::temp_dir();
    let path = support::fresh_db_path(dir.path());
    let (conn, report) = Store::open_and_migrate(&path).expect("fresh store opens");
    assert_eq!(report.from_version, 0);
    assert_eq!(report.to_version, migrate::latest_version());
    let every: Vec<String> = SQLITE_STATE
        .iter()
        .map(|m| format!("{:04}_{}", m.version, m.name))
        .collect();
    assert_eq!(report.applied, every);
    assert_eq!(user_version(&conn), migrate::latest_version());
    let file_mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(file_mode, 0o600);
    assert_eq!(dir_mode, 0o700);
    let journal: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let fk: i64 = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    let tables: Vec<String> = schema_of(&conn).into_iter().map(|(n, _)| n).collect();
    for table in [
        "accounts",
        "rate_budget",
        "rate_budget_holds",
        "command_ledger",
        "bulk_batches",
        "bulk_items",
        "schema_migrations",
    ] {
        assert!(tables.iter().any(|t| t == table), "missing table {table}");
    }
    for table in MIRROR_TABLES {
        assert!(
            !tables.iter().any(|t| t == table),
            "the mirror's table {table} is not in the state store"
        );
    }
}

#[test]
fn a_fresh_mirror_is_created_0640_in_a_0750_directory_of_its_own_with_its_tables() {
    let dir = support::temp_dir();
    let path = dir.path().join("mirror").join("ctct-mirror.db");
    let (_store, report) = Store::open_mirror(&path).unwrap();
    assert_eq!(report.to_version, migrate::latest_mirror_version());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o640, "its group (analysts) may read it");
    assert_eq!(mode(path.parent().unwrap()), 0o750);
    let conn = Connection::open(&path).unwrap();
    let tables: Vec<String> = schema_of(&conn).into_iter().map(|(n, _)| n).collect();
    for table in MIRROR_TABLES.iter().chain(&["schema_migrations"]) {
        assert!(tables.iter().any(|t| t == table), "missing table {table}");
    }
    for table in ["accounts", "rate_budget", "command_ledger", "bulk_batches"] {
        assert!(
            !tables.iter().any(|t| t == table),
            "the state's table {table} is not in the mirror"
        );
    }
}

#[test]
fn migrating_twice_leaves_the_database_unchanged_the_second_time() {
    let dir = support::temp_dir();
    let path = support::fresh_db_path(dir.path());
    let (conn, _) = Store::open_and_migrate(&path).unwrap();
    let schema_before = schema_of(&conn);
    let history_before: i64 = conn
        .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    drop(conn);

    let (conn, report) = Store::open_and_migrate(&path).unwrap();
    assert!(report.is_noop(), "{report:?}");
    assert_eq!(conn.total_changes(), 0, "the second pass wrote nothing");
    assert_eq!(schema_of(&conn), schema_before);
    let history_after: i64 = conn
        .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(history_after, history_before);
}

#[test]
fn an_older_database_is_upgraded_and_keeps_its_data() {
    let dir = support::temp_dir();
    let path = support::fresh_db_path(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let mut conn = Connection::open(&path).unwrap();
        let report = migrate::apply(&mut conn, &SQLITE_STATE[..1]).unwrap();
        assert_eq!(report.to_version, 1);
        conn.execute(
            "INSERT INTO command_ledger (account, command_id, type, status, received_at)
             VALUES ('default', 'cmd-1', 'contact.upsert', 'done', '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let (conn, report) = Store::open_and_migrate(&path).unwrap();
    assert_eq!(report.from_version, 1);
    assert_eq!(report.to_version, migrate::latest_version());
    let rest: Vec<String> = SQLITE_STATE[1..]
        .iter()
        .map(|m| format!("{:04}_{}", m.version, m.name))
        .collect();
    assert_eq!(report.applied, rest);
    let kept: String = conn
        .query_row(
            "SELECT type FROM command_ledger WHERE command_id = 'cmd-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, "contact.upsert");
}

#[test]
fn a_failing_migration_rolls_back_every_pending_migration() {
    let mut conn = Connection::open_in_memory().unwrap();
    let broken = [
        Migration {
            version: 1,
            name: "good",
            sql: "CREATE TABLE a (x INTEGER);",
        },
        Migration {
            version: 2,
            name: "bad",
            sql: "CREATE TABLE b (x INTEGER); SELEC nonsense;",
        },
    ];
    let error = migrate::apply(&mut conn, &broken).unwrap_err();
    assert!(
        matches!(error, StoreError::Migration { version: 2, .. }),
        "{error}"
    );
    assert_eq!(user_version(&conn), 0);
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name IN ('a', 'b')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "nothing of the failed pass remains");
}

#[test]
fn a_database_newer_than_the_binary_is_refused() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate::migrate(&mut conn).unwrap();
    conn.pragma_update(None, "user_version", migrate::latest_version() + 1)
        .unwrap();
    let error = migrate::migrate(&mut conn).unwrap_err();
    assert!(matches!(error, StoreError::SchemaTooNew { .. }), "{error}");
    assert!(error.to_string().contains("newer"));
}

#[test]
fn a_migration_edited_after_it_was_applied_is_refused() {
    let mut conn = Connection::open_in_memory().unwrap();
    let original = [Migration {
        version: 1,
        name: "init",
        sql: "CREATE TABLE a (x INTEGER);",
    }];
    migrate::apply(&mut conn, &original).unwrap();
    let edited = [
        Migration {
            version: 1,
            name: "init",
            sql: "CREATE TABLE a (x INTEGER, y TEXT);",
        },
        Migration {
            version: 2,
            name: "next",
            sql: "CREATE TABLE b (x INTEGER);",
        },
    ];
    let error = migrate::apply(&mut conn, &edited).unwrap_err();
    assert!(
        matches!(error, StoreError::MigrationChanged { version: 1, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("append-only"));
}

#[test]
fn a_world_readable_store_is_refused_with_a_clear_message() {
    let dir = support::temp_dir();
    let path = support::fresh_db_path(dir.path());
    Store::open_and_migrate(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = Store::open_and_migrate(&path).unwrap_err();
    assert!(
        matches!(error, StoreError::WorldAccessible { mode: 0o644, .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("chmod 600") && message.contains("refresh tokens"),
        "{message}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = support::temp_dir();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let error = Store::open_and_migrate(&path).unwrap_err();
    assert!(matches!(error, StoreError::Unusable { .. }), "{error}");
}

#[tokio::test]
async fn the_owner_thread_runs_calls_and_survives_a_panicking_one() {
    let dir = support::temp_dir();
    let (store, _) = Store::open(&support::fresh_db_path(dir.path())).unwrap();
    let panicked = store
        .call(|_conn| -> Result<(), StoreError> { panic!("a bug in one operation") })
        .await;
    assert!(matches!(panicked, Err(StoreError::Closed)));
    let count = store
        .call(|conn| {
            Ok(conn.query_row("SELECT count(*) FROM accounts", [], |r| r.get::<_, i64>(0))?)
        })
        .await
        .expect("the store still answers");
    assert_eq!(count, 0);
}

#[test]
fn the_migrate_subcommand_creates_the_store_then_reports_it_up_to_date() {
    let dir = support::temp_dir();
    let first = support::ctct_sync_command(dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("migrated from schema version 0"),
        "{stdout}"
    );
    let db = dir.path().join("data/ctct-sync.db");
    assert!(db.exists());
    // The command exits with its migrations in the `.db` file, not left in the write-ahead
    // log for the next process to copy over (which changed the file under a second run).
    for file in ["data/ctct-sync.db-wal", "data/ctct-mirror.db-wal"] {
        let wal = dir.path().join(file);
        let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len, 0, "{file} is empty or gone after `migrate` exits");
    }
    let bytes_before = std::fs::read(&db).unwrap();

    let second = support::ctct_sync_command(dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(second.status.success());
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("up to date"), "{stdout}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes_before,
        "the file is byte-for-byte unchanged"
    );
}

/// Holds the owner thread until the returned sender is dropped or sent to, so that calls
/// queued meanwhile are all waiting when it lets go.
async fn hold_owner_thread(
    store: &Store,
) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (holding, held) = tokio::sync::oneshot::channel();
    let blocker = store.clone();
    let task = tokio::spawn(async move {
        blocker
            .call(move |_conn| {
                let _ = holding.send(());
                let _ = wait.recv();
                Ok(())
            })
            .await
            .unwrap();
    });
    held.await.expect("the owner thread took the holding call");
    (release, task)
}

fn rows_of(conn: &Connection, table: &str) -> Vec<i64> {
    let mut stmt = conn
        .prepare(&format!("SELECT id FROM {table} ORDER BY id"))
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn grouped_calls_share_one_commit_and_a_failing_one_rolls_back_only_itself() {
    use futures_util::FutureExt;

    let dir = support::temp_dir();
    let (store, _) = Store::open(&support::fresh_db_path(dir.path())).unwrap();
    store
        .call(|conn| Ok(conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")?))
        .await
        .unwrap();
    let (release, holder) = hold_owner_thread(&store).await;
    let mut calls: Vec<_> = (1..=6_i64)
        .map(|id| {
            Box::pin(store.call_grouped(move |conn| {
                conn.execute("INSERT INTO t (id) VALUES (?1)", [id])?;
                if id == 3 {
                    // Fails after writing: its row must go, the others' must stay.
                    conn.execute("INSERT INTO t (id) VALUES (?1)", [1])?;
                }
                if id == 5 {
                    panic!("a bug in one grouped operation");
                }
                Ok(id)
            }))
        })
        .collect();
    for call in &mut calls {
        assert!(call.now_or_never().is_none(), "queued behind the holder");
    }
    release.send(()).unwrap();
    holder.await.unwrap();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await);
    }
    assert!(matches!(answers[0], Ok(1)));
    assert!(matches!(answers[1], Ok(2)));
    assert!(
        matches!(&answers[2], Err(StoreError::Sqlite(e)) if e.to_string().contains("UNIQUE")),
        "{:?}",
        answers[2]
    );
    assert!(matches!(answers[3], Ok(4)));
    assert!(
        matches!(answers[4], Err(StoreError::Closed)),
        "the panicking call hears Closed"
    );
    assert!(matches!(answers[5], Ok(6)));
    let path = store.path().to_owned();
    let reader = Connection::open(&path).unwrap();
    assert_eq!(rows_of(&reader, "t"), vec![1, 2, 4, 6]);
}

#[tokio::test]
async fn when_a_group_fails_to_commit_every_call_in_it_hears_so_and_none_of_it_is_kept() {
    use futures_util::FutureExt;

    let dir = support::temp_dir();
    let (store, _) = Store::open(&support::fresh_db_path(dir.path())).unwrap();
    store
        .call(|conn| {
            Ok(conn.execute_batch(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE child (id INTEGER PRIMARY KEY,
                     parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
            )?)
        })
        .await
        .unwrap();
    let (release, holder) = hold_owner_thread(&store).await;
    // The second call breaks a deferred foreign key: each savepoint is released cleanly,
    // and the whole group fails at COMMIT.
    let mut calls: Vec<_> = [(1_i64, 1_i64), (2, 99), (3, 1)]
        .into_iter()
        .map(|(id, parent)| {
            Box::pin(store.call_grouped(move |conn| {
                conn.execute("INSERT OR IGNORE INTO parent (id) VALUES (1)", [])?;
                conn.execute(
                    "INSERT INTO child (id, parent) VALUES (?1, ?2)",
                    [id, parent],
                )?;
                Ok(())
            }))
        })
        .collect();
    for call in &mut calls {
        assert!(call.now_or_never().is_none(), "queued behind the holder");
    }
    release.send(()).unwrap();
    holder.await.unwrap();
    for call in calls {
        let answer = call.await;
        assert!(
            matches!(&answer, Err(StoreError::Commit(reason)) if reason.contains("FOREIGN KEY")),
            "{answer:?}"
        );
    }
    let reader = Connection::open(store.path()).unwrap();
    assert!(rows_of(&reader, "child").is_empty());
    assert!(rows_of(&reader, "parent").is_empty());
    // The store carries on: the next group commits.
    store
        .call_grouped(|conn| Ok(conn.execute("INSERT INTO parent (id) VALUES (7)", [])?))
        .await
        .unwrap();
    assert_eq!(rows_of(&reader, "parent"), vec![7]);
}

#[tokio::test]
async fn a_grouped_call_that_cannot_get_the_write_lock_hears_why() {
    let dir = support::temp_dir();
    let (store, _) = Store::open(&support::fresh_db_path(dir.path())).unwrap();
    store
        .call(|conn| {
            Ok(conn.execute_batch(
                "PRAGMA busy_timeout = 0; CREATE TABLE t (id INTEGER PRIMARY KEY)",
            )?)
        })
        .await
        .unwrap();
    let other = Connection::open(store.path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let answer = store
        .call_grouped(|conn| Ok(conn.execute("INSERT INTO t (id) VALUES (1)", [])?))
        .await;
    assert!(
        matches!(&answer, Err(StoreError::Commit(reason)) if reason.contains("locked")),
        "{answer:?}"
    );
    other.execute_batch("ROLLBACK").unwrap();
    store
        .call_grouped(|conn| Ok(conn.execute("INSERT INTO t (id) VALUES (2)", [])?))
        .await
        .unwrap();
    assert_eq!(rows_of(&other, "t"), vec![2]);
}

#[tokio::test]
async fn pruning_the_store_deletes_in_chunks_everything_past_the_retention_and_nothing_else() {
    use chrono::{Duration, Utc};
    use ctct_sync::store::{housekeeping, ledger};
    let dir = support::temp_dir();
    let store = Store::open(&support::fresh_db_path(dir.path()))
        .expect("fresh store")
        .0;
    let now = Utc::now();
    // More old rows than one chunk holds, so that the pass takes several.
    store
        .call(move |conn| {
            let tx = conn.transaction()?;
            for i in 0..4_500 {
                let at = now - Duration::days(31) - Duration::seconds(i);
                let id = format!("old-{i}");
                ledger::begin_in(&tx, "default", &id, "contact.get", "seeded", DEAD, at)?;
                ledger::finish(&tx, "default", &id, "contact.get", "succeeded", "{}", at)?;
            }
            let at = now - Duration::days(29);
            ledger::begin_in(&tx, "default", "recent", "contact.get", "seeded", DEAD, at)?;
            ledger::finish(
                &tx,
                "default",
                "recent",
                "contact.get",
                "succeeded",
                "{}",
                at,
            )?;
            ledger::begin_in(
                &tx,
                "default",
                "parked",
                "contact.upsert",
                "seeded",
                DEAD,
                now - Duration::days(400),
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
        .unwrap();
    let pruned = housekeeping::prune(&store, now, 30).await.unwrap();
    assert_eq!(pruned.commands, 4_500);
    assert_eq!(
        housekeeping::prune(&store, now, 30).await.unwrap(),
        housekeeping::Pruned::default(),
        "a second pass finds nothing"
    );
    let left: Vec<String> = store
        .call(|conn| {
            let mut stmt =
                conn.prepare("SELECT command_id FROM command_ledger ORDER BY command_id")?;
            let ids = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(ids)
        })
        .await
        .unwrap();
    assert_eq!(left, ["parked", "recent"]);
}
