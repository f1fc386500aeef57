//! The store's file on its own: complete after a clean stop (the write-ahead log emptied),
//! and `ctct-sync store backup` taking a sound copy while a daemon writes; on PostgreSQL, the
//! documented `pg_dump` instead.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use rusqlite::{Connection, OpenFlags};
use serde_json::json;

use crate::support::daemon::{TestDaemon, terminate};
use crate::support::engine::Engine;

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens a copy read-only, as a restore would find it.
fn open_copy(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("the copy opens")
}

fn finished_ids(conn: &Connection) -> Vec<String> {
    let mut select = conn
        .prepare("SELECT command_id FROM command_ledger WHERE status = 'done' ORDER BY command_id")
        .unwrap();
    select
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Publishes `n` commands `PREFIX-i` and waits for their results.
async fn send_and_wait(d: &mut TestDaemon, prefix: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:03}")).collect();
    for id in &ids {
        d.publish(id, "list.list", json!({})).await;
    }
    let results = d.results(&ids, Duration::from_secs(60)).await;
    for id in &ids {
        assert_eq!(results[id][0].outcome, Outcome::Succeeded, "{id}");
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_clean_stop_the_db_file_alone_holds_every_finished_command() {
    let mut d = TestDaemon::start().await;
    assert!(d.stop_pipeline(Duration::from_secs(10)).await);
    let (mut daemon, log) = d.spawn_with_log("daemon", &[]);
    let ids = send_and_wait(&mut d, "wal", 30).await;
    terminate(&mut daemon).await;
    let db = d.api.store.path().to_owned();
    let wal = with_suffix(&db, "-wal");
    let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        wal_bytes,
        0,
        "the write-ahead log is emptied on a clean stop; the daemon said:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The .db file alone, copied elsewhere without its -wal and -shm.
    let elsewhere = crate::support::temp_dir();
    let copy = elsewhere.path().join("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    let conn = open_copy(&copy);
    assert_eq!(integrity(&conn), "ok");
    assert_eq!(
        finished_ids(&conn),
        ids,
        "every finished command is in the file"
    );
    assert!(count(&conn, "accounts") >= 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_backup_copies_a_sound_store_while_the_daemon_writes() {
    let mut d = TestDaemon::start().await;
    assert!(d.stop_pipeline(Duration::from_secs(10)).await);
    let (mut daemon, _log) = d.spawn_with_log("daemon", &[]);
    let before = send_and_wait(&mut d, "before", 20).await;
    let target = d.api.dir.path().join("backups").join("store.db");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    // The backup runs while more commands are published and answered (ledger writes).
    let backup = d
        .command(&["store", "backup", target.to_str().unwrap()])
        .output();
    let during: Vec<String> = (0..40).map(|i| format!("during-{i:03}")).collect();
    let publish = async {
        for id in &during {
            d.publish(id, "list.list", json!({})).await;
        }
    };
    let (output, ()) = tokio::join!(backup, publish);
    let output = output.expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("integrity ok"), "{stdout}");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the copy holds tokens");
    assert!(!with_suffix(&target, ".partial").exists());
    let conn = open_copy(&target);
    assert_eq!(integrity(&conn), "ok");
    assert!(count(&conn, "accounts") >= 1, "the account and its tokens");
    let copied = finished_ids(&conn);
    for id in &before {
        assert!(copied.contains(id), "{id} finished before the backup");
    }
    drop(conn);
    // The daemon kept working through it.
    let results = d.results(&during, Duration::from_secs(60)).await;
    assert_eq!(results.len(), before.len() + during.len());

    // An existing file is kept unless --force.
    let again = d
        .command(&["store", "backup", target.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("--force"), "{stderr}");
    let forced = d
        .command(&["store", "backup", "--force", target.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let conn = open_copy(&target);
    let copied = finished_ids(&conn);
    for id in before.iter().chain(&during) {
        assert!(copied.contains(id), "{id} is in the forced copy");
    }
    terminate(&mut daemon).await;
    d.stop().await;
}

/// On PostgreSQL, `store backup` refuses and points to `pg_dump`; the `pg_dump` command of
/// docs/storage.md ("Backups") takes the state schema with its ledger and tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_store_is_backed_up_with_the_documented_pg_dump_not_store_backup() {
    let mut d = TestDaemon::start_on(Engine::Postgres).await;
    let finished = send_and_wait(&mut d, "dumped", 3).await;
    let target = d.api.dir.path().join("state.db");
    let output = d
        .command(&["store", "backup", target.to_str().unwrap()])
        .output()
        .await
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("is on PostgreSQL: back it up with pg_dump"),
        "{stderr}"
    );
    assert!(!target.exists(), "nothing written");

    let docs = include_str!("../../docs/storage.md");
    assert!(
        docs.contains("`pg_dump --schema=ctct_state --format=custom ctct > state.dump`"),
        "the documented command changed: update this test with it"
    );
    let pg = d.api.pg.as_ref().expect("a PostgreSQL test database");
    let dump = d.api.dir.path().join("state.dump");
    let dumped = std::process::Command::new("pg_dump")
        .args(["--schema=ctct_state", "--format=custom", "--file"])
        .arg(&dump)
        .arg(pg.url())
        .output()
        .expect("pg_dump runs (Debian package postgresql-client)");
    assert!(
        dumped.status.success(),
        "{}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    // As plain SQL, to look inside: the tables and the finished commands.
    let listed = std::process::Command::new("pg_restore")
        .args(["--file", "-"])
        .arg(&dump)
        .output()
        .expect("pg_restore runs");
    let sql = String::from_utf8_lossy(&listed.stdout);
    for table in ["accounts", "command_ledger", "rate_budget", "bulk_batches"] {
        assert!(
            sql.contains(&format!("CREATE TABLE ctct_state.{table} ")),
            "{table} is in the dump"
        );
    }
    for id in &finished {
        assert!(sql.contains(id.as_str()), "{id} is in the dump");
    }
    assert!(
        !sql.contains("CREATE TABLE ctct_mirror."),
        "the mirror is a schema of its own"
    );
    d.stop().await;
}
