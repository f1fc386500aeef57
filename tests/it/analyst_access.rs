//! An analyst on the same host reads the SQLite mirror as another OS user: with read
//! permission on the mirror's directory and files (through their group) and nothing else, the
//! user `nobody` runs the five reporting queries of docs/mirror.md against the live mirror
//! while a mirror pass writes to it, cannot write to it, and cannot open the state store.
//!
//! The reader is this test binary, copied where `nobody` may run it and started with
//! `setpriv` as `nobody:nogroup`; it runs [`read_as_another_user`], which is ignored in a
//! normal run. Switching users needs root (CI and this project's machines run tests as root).

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ctct_sync::mirror::{ContactsPath, Mirror, MirrorDb, MirrorOptions, Mode, Resource, Trigger};
use ctct_sync::store::Store;
use rusqlite::{Connection, OpenFlags};

use crate::support::api::TestApi;
use crate::support::effective_uid;

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;
const MIRROR_ENV: &str = "CTCT_ANALYST_MIRROR";
const STATE_ENV: &str = "CTCT_ANALYST_STATE";
const QUERIES_ENV: &str = "CTCT_ANALYST_QUERIES";

/// The SQL of the "Five reporting queries" section of docs/mirror.md.
fn documented_queries() -> Vec<String> {
    crate::support::mirror_doc_queries("## Five reporting queries")
}

#[tokio::test]
async fn another_user_reads_the_live_sqlite_mirror_and_cannot_open_the_state() {
    assert_eq!(
        effective_uid(),
        0,
        "this test switches to the user nobody with setpriv and must run as root"
    );
    let queries = documented_queries();
    assert_eq!(queries.len(), 5, "five documented queries");

    // A place `nobody` can reach: /tmp/ctct-analyst-…/ (0755) holding the state's directory
    // (0700, made by the store) and the mirror's (2750, group nogroup: what an operator sets
    // up for an analysts' group, docs/storage.md).
    let base = PathBuf::from(format!(
        "/tmp/ctct-analyst-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let _cleanup = RemoveOnDrop(base.clone());
    std::fs::create_dir(&base).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mirror_dir = base.join("mirror");
    std::fs::create_dir(&mirror_dir).unwrap();
    chown(&mirror_dir, None, Some(NOGROUP)).unwrap();
    std::fs::set_permissions(&mirror_dir, std::fs::Permissions::from_mode(0o2750)).unwrap();
    let mirror_path = mirror_dir.join("ctct-mirror.db");
    let state_path = base.join("state").join("ctct-sync.db");

    let t = TestApi::start_with_store_at(&state_path).await;
    crate::mirror::seed(&t, 2_000);
    let (mirror_store, _) = Store::open_mirror(&mirror_path).expect("the mirror opens");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&mirror_path), 0o640);
    assert_eq!(mode(state_path.parent().unwrap()), 0o700);
    let mirror = Mirror::new(
        MirrorDb::new(mirror_store.clone()),
        t.client.clone(),
        t.clock.clone(),
        MirrorOptions {
            contacts_path: ContactsPath::Paging,
            page_size: 50,
            ..crate::mirror::fast_options()
        },
    );
    // One complete mirror first, so every query has rows to read.
    crate::mirror::run_all_ok(&mirror, Mode::Full).await;

    // Then full passes of the contacts, one after another, while the other user reads.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (mirror, writing) = (mirror.clone(), writing.clone());
        tokio::spawn(async move {
            let mut pages = 0;
            while writing.load(Ordering::SeqCst) {
                let summary = mirror
                    .run_once("default", Resource::Contacts, Mode::Full, Trigger::Cli)
                    .await;
                pages += summary.pages;
            }
            pages
        })
    };

    let reader = base.join("reader");
    std::fs::copy(std::env::current_exe().unwrap(), &reader).unwrap();
    std::fs::set_permissions(&reader, std::fs::Permissions::from_mode(0o755)).unwrap();
    let queries_file = base.join("queries.sql");
    std::fs::write(&queries_file, queries.join("\n;;\n")).unwrap();
    std::fs::set_permissions(&queries_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = tokio::process::Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOGROUP}"),
            "--clear-groups",
            "--",
        ])
        .arg(&reader)
        .args([
            "--ignored",
            "--exact",
            "analyst_access::read_as_another_user",
            "--nocapture",
        ])
        .env(MIRROR_ENV, &mirror_path)
        .env(STATE_ENV, &state_path)
        .env(QUERIES_ENV, &queries_file)
        .env_remove("TEST_LOG")
        .current_dir(&base)
        .output()
        .await
        .expect("setpriv runs");
    writing.store(false, Ordering::SeqCst);
    let pages_during = writer.await.expect("the writer ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the reader's test ran: {stdout}\n{stderr}"
    );
    assert!(
        pages_during > 0,
        "the mirror wrote while the other user read"
    );
    t.stop().await;
}

/// The other user's side (run by the test above as `nobody`; ignored otherwise).
#[test]
#[ignore = "run as the user nobody by another_user_reads_the_live_sqlite_mirror_and_cannot_open_the_state"]
fn read_as_another_user() {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the test that runs this"))
    };
    let (mirror, state, queries) = (var(MIRROR_ENV), var(STATE_ENV), var(QUERIES_ENV));
    assert_eq!(effective_uid(), NOBODY, "runs as nobody");
    let queries = std::fs::read_to_string(queries).expect("the queries are readable");
    let queries: Vec<&str> = queries.split("\n;;\n").collect();
    assert_eq!(queries.len(), 5);

    // Reads of the live mirror for a while, each round every query in one read transaction.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut rounds = 0;
    while rounds < 3 || Instant::now() < deadline {
        let conn = Connection::open_with_flags(&mirror, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the mirror opens read-only for its group");
        let contacts: i64 = conn
            .query_row(
                "SELECT count(*) FROM contacts WHERE account = 'default'",
                [],
                |r| r.get(0),
            )
            .expect("contacts are readable");
        assert!(contacts > 0, "the mirror holds the account's contacts");
        for sql in &queries {
            let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{e}: {sql}"));
            let rows = stmt
                .query_map([], |_| Ok(()))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .unwrap_or_else(|e| panic!("{e}: {sql}"));
            assert!(!rows.is_empty(), "rows from {sql}");
        }
        rounds += 1;
    }

    // Reading is all it may do.
    let conn = Connection::open(&mirror).expect("opens");
    let write = conn.execute("DELETE FROM mirror_runs", []);
    assert!(write.is_err(), "the other user cannot write to the mirror");

    // And the state store, tokens and all, is out of its reach.
    let opened = Connection::open_with_flags(&state, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT count(*) FROM accounts", [], |r| r.get::<_, i64>(0)));
    assert!(
        opened.is_err(),
        "the state store cannot be opened: {opened:?}"
    );
    assert!(std::fs::metadata(&state).is_err(), "not even its metadata");
}

/// Removes the test's directory under /tmp when the test ends, passed or not.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
