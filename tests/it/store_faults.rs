//! A store that stops working never turns into lost commands: a damaged store refuses the
//! start (exit code 2), and a store that fails while the daemon runs (here a disk that is
//! really full) pauses consumption — `/readyz` 503 with the reason, one log line, no session
//! rebuilds, each command in hand handed back once — until it works again.
//!
//! SQLite only: the faults are a SQLite file's (a damaged page, a full disk under the file and
//! its WAL). A PostgreSQL server that goes away is covered by the PostgreSQL store's own tests.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use futures_util::StreamExt as _;
use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Value, json};

use crate::support::api::TestApi;
use crate::support::daemon::TestDaemon;
use crate::support::eventually::eventually;
use crate::support::{ctct_sync_process, temp_dir};

const SECS_30: Duration = Duration::from_secs(30);

/// Overwrites the root page of `table` in the (checkpointed, closed) database at `path`
/// with garbage.
fn damage_root_page(path: &Path, table: &str) {
    let (root, page_size) = {
        let conn = rusqlite::Connection::open(path).unwrap();
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |row| row.get(0),
            )
            .unwrap();
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .unwrap();
        (root, page_size)
    };
    assert!(root > 1, "{table} has a root page of its own");
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    std::io::Seek::seek(
        &mut file,
        std::io::SeekFrom::Start(((root - 1) * page_size) as u64),
    )
    .unwrap();
    file.write_all(&vec![0xAB; page_size as usize]).unwrap();
    file.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_a_damaged_ledger_refuses_to_start_with_exit_code_2() {
    // Regression: with the command ledger's root page damaged the daemon started as ready
    // and answered every command's store failure with a session rebuild.
    let api = TestApi::start().await;
    api.store
        .call(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
        .unwrap();
    let dir = temp_dir();
    let (sound, damaged) = (dir.path().join("sound.db"), dir.path().join("damaged.db"));
    std::fs::copy(api.store.path(), &sound).unwrap();
    std::fs::copy(api.store.path(), &damaged).unwrap();
    damage_root_page(&damaged, "command_ledger");

    // The same check on the sound copy finds nothing.
    let mut conn = rusqlite::Connection::open(&sound).unwrap();
    ctct_sync::store::integrity::check_own_tables(&mut conn).expect("a sound store passes");
    drop(conn);

    let child = ctct_sync_process(dir.path())
        .arg("run")
        .envs(api.cli_env())
        .env("CTCT_SYNC__STORE__PATH", &damaged)
        // Never reached: the store is refused first (and a daemon that started anyway only
        // retries a closed port, touching no broker).
        .env("CTCT_SYNC__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env("CTCT_SYNC__OPS__LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = match tokio::time::timeout(SECS_30, child.wait_with_output()).await {
        Ok(out) => out.unwrap(),
        Err(_) => panic!("the daemon started on a damaged store instead of refusing it"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the store is damaged")
            && stderr.contains("command_ledger")
            && stderr.contains(&damaged.display().to_string())
            && stderr.contains("restore the store from a backup"),
        "{stderr}"
    );
    api.stop().await;
}

/// A tmpfs of `size` mounted on a directory of the test's own, unmounted when dropped (also
/// when the test fails).
struct SmallDisk {
    mount_point: PathBuf,
}

impl SmallDisk {
    /// `None` (with a message saying why the test is skipped) when not running as root.
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        let uid = std::process::Command::new("id").arg("-u").output().unwrap();
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!(
                "SKIPPED: mounting a small tmpfs to fill the disk needs root (CI runs as root)"
            );
            return None;
        }
        let mount_point = dir.join("disk");
        std::fs::create_dir(&mount_point).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("ctct-sync-test-disk")
            .arg(&mount_point)
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs failed as root");
        Some(SmallDisk { mount_point })
    }

    /// Fills the disk: writes until the file system says it is full.
    fn fill(&self) -> PathBuf {
        let filler = self.mount_point.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let bytes = vec![0u8; chunk];
            while file.write_all(&bytes).is_ok() {}
        }
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: detaches now even while the daemon still has the store open.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

/// GETs a path on the ops listener at `addr`: (status, body), or (0, "") if not listening.
async fn ops(addr: &str, path: &str) -> (u16, String) {
    // A deadline of its own, so a daemon that stops answering cannot hang the test.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    match client.get(format!("http://{addr}{path}")).send().await {
        Ok(response) => (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

/// Polls `path` until `accept` takes its answer (at most 30 s); returns the body.
async fn wait_ops(addr: &str, path: &str, accept: impl Fn(u16, &str) -> bool) -> String {
    eventually(
        SECS_30,
        &format!("an accepted answer from {path}"),
        async || {
            let (status, body) = ops(addr, path).await;
            if accept(status, &body) {
                Ok(body)
            } else {
                Err(format!("{path} stayed {status}: {body}"))
            }
        },
    )
    .await
}

/// (ready messages, consumers) of `queue`.
async fn queue_state(d: &TestDaemon, queue: &str) -> (u32, u32) {
    let q = d
        .channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    (q.message_count(), q.consumer_count())
}

/// The `x-delivery-count` of the first `n` messages in `queue`, read by a consumer on a
/// channel of its own that is then closed (which returns them, counting one more each). The
/// commands queue has a single active consumer: this one is active while the daemon's is
/// cancelled.
async fn delivery_counts(d: &TestDaemon, queue: &str, n: usize) -> Vec<i64> {
    let channel = d.conn.create_channel().await.unwrap();
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut counts = Vec::new();
    while counts.len() < n {
        let delivery = tokio::time::timeout(SECS_30, consumer.next())
            .await
            .expect("the queue holds the commands")
            .expect("the consumer runs")
            .unwrap();
        let count = delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-delivery-count").cloned())
            .map(|v| match v {
                AMQPValue::LongLongInt(n) => n,
                AMQPValue::LongInt(n) => i64::from(n),
                AMQPValue::ShortInt(n) => i64::from(n),
                AMQPValue::ShortShortInt(n) => i64::from(n),
                AMQPValue::LongUInt(n) => i64::from(n),
                AMQPValue::ShortUInt(n) => i64::from(n),
                AMQPValue::ShortShortUInt(n) => i64::from(n),
                other => panic!("x-delivery-count is {other:?}"),
            })
            .unwrap_or(0);
        counts.push(count);
    }
    let _ = channel.close(200, "counted".into()).await;
    counts
}

fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_the_daemon_and_it_resumes_by_itself_losing_at_most_one_delivery_attempt()
 {
    // Regression: a store that failed while the daemon ran made it rebuild its broker session
    // for every delivery (each rebuild handing the whole prefetched backlog back, burning
    // delivery counts), while /readyz said "store: writable".
    let dir = temp_dir();
    let Some(disk) = SmallDisk::mount(dir.path(), "16m") else {
        return;
    };
    let store_path = disk.mount_point.join("data").join("ctct-sync.db");
    let mut d = TestDaemon::start_with(TestApi::start_with_store_at(&store_path).await, &[]).await;
    assert!(
        d.stop_pipeline(Duration::from_secs(10)).await,
        "the in-process pipeline steps aside"
    );
    let ops_addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    // The real binary with its defaults (bulk on: a prefetch of 10,000).
    let mut daemon = d
        .command(&["run"])
        .env("CTCT_SYNC__OPS__LISTEN", &ops_addr)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ops(&ops_addr, "/readyz", |status, _| status == 200).await;
    d.publish("fd-before", "list.list", json!({})).await;
    assert_eq!(d.result("fd-before").await.outcome, Outcome::Succeeded);

    // Empty the write-ahead log, so that the next write has to grow a file, then fill the disk.
    eventually(SECS_30, "an emptied write-ahead log", async || {
        let (busy, log): (i64, i64) = d
            .api
            .store
            .call(|conn| {
                Ok(
                    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })?,
                )
            })
            .await
            .unwrap();
        if busy == 0 && log == 0 {
            Ok(())
        } else {
            Err("the WAL stays busy")
        }
    })
    .await;
    let filler = disk.fill();
    let ids: Vec<String> = (1..=12).map(|i| format!("fd-{i}")).collect();
    for id in &ids {
        d.publish(id, "list.list", json!({})).await;
    }

    // Not ready, and the body says it is the store.
    let body: Value = serde_json::from_str(
        &wait_ops(&ops_addr, "/readyz", |status, body| {
            status == 503 && body.contains("failing: ")
        })
        .await,
    )
    .unwrap();
    let store_check = body["checks"]["store"].as_str().unwrap().to_owned();
    assert!(store_check.starts_with("failing: "), "{body}");
    assert!(store_check.contains("full"), "{body}");
    assert_eq!(body["checks"]["broker"], "connected", "{body}");

    // The consumer is cancelled and every command is back in the queue, waiting.
    let queue = d.queue().to_owned();
    eventually(
        SECS_30,
        "every command back in the queue, no consumer",
        async || {
            let (ready, consumers) = queue_state(&d, &queue).await;
            if (ready, consumers) == (ids.len() as u32, 0) {
                Ok(())
            } else {
                Err(format!("{ready} ready, {consumers} consumers"))
            }
        },
    )
    .await;
    // The outage lasts a while: nothing is answered, nothing is rebuilt.
    d.drain(Duration::from_secs(3)).await;
    assert!(
        d.received.iter().all(|r| r.command_id == "fd-before"),
        "no result while the store fails: {:?}",
        d.received
    );
    assert_eq!(queue_state(&d, &queue).await, (ids.len() as u32, 0));
    let metrics = wait_ops(&ops_addr, "/metrics", |status, _| status == 200).await;
    assert_eq!(metric(&metrics, "ctct_store_healthy"), Some(0.0));
    assert_eq!(metric(&metrics, "ctct_store_failures_total"), Some(1.0));
    assert_eq!(
        metric(&metrics, "ctct_amqp_reconnects_total"),
        Some(0.0),
        "no session rebuilds"
    );
    // Each command lost at most one delivery attempt to the outage: the ones the daemon
    // held went back once, the rest were never delivered.
    let counts = delivery_counts(&d, &queue, ids.len()).await;
    assert_eq!(counts.len(), ids.len(), "{counts:?}");
    assert!(counts.iter().all(|c| *c <= 1), "delivery counts {counts:?}");
    assert!(
        counts.contains(&1),
        "the commands in hand went back once: {counts:?}"
    );

    // Space is back: the daemon finds out by itself and takes the commands again.
    std::fs::remove_file(&filler).unwrap();
    wait_ops(&ops_addr, "/readyz", |status, _| status == 200).await;
    d.results(&ids, Duration::from_secs(60)).await;
    d.drain(Duration::from_millis(500)).await;
    for id in &ids {
        let got: Vec<_> = d.received.iter().filter(|r| &r.command_id == id).collect();
        assert_eq!(got.len(), 1, "{id}: one result, got {got:?}");
        assert_eq!(got[0].outcome, Outcome::Succeeded, "{id}: {got:?}");
        assert!(!got[0].replayed, "{id}: {got:?}");
    }
    let metrics = wait_ops(&ops_addr, "/metrics", |status, _| status == 200).await;
    assert_eq!(metric(&metrics, "ctct_store_healthy"), Some(1.0));
    assert_eq!(metric(&metrics, "ctct_store_failures_total"), Some(1.0));
    assert_eq!(metric(&metrics, "ctct_amqp_reconnects_total"), Some(0.0));
    assert_eq!(
        queue_state(&d, &queue).await,
        (0, 1),
        "consuming again, nothing left"
    );

    daemon.start_kill().unwrap();
    let out = daemon.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one error line for the outage:\n{stderr}");
    assert!(errors[0].contains("the store is failing"), "{stderr}");
    assert!(
        stderr.contains("the store works again"),
        "the recovery is logged:\n{stderr}"
    );
    d.stop().await;
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_damaged_while_the_pipeline_runs_pauses_it_without_rebuilding_its_session() {
    // The ledger is damaged after the daemon's start-up check passed, so the damage is met
    // only by the commands. Before: a session rebuild per delivery and "store: writable".
    let dir = temp_dir();
    let path = dir.path().join("data").join("ctct-sync.db");
    let mut d = TestDaemon::start_with(TestApi::start_with_store_at(&path).await, &[]).await;
    // Everything in the database file (none of the ledger's pages left in the write-ahead
    // log), then the damage, then a write: every open connection sees the file changed and
    // drops the pages it cached.
    let conn = rusqlite::Connection::open(&path).unwrap();
    eventually(SECS_30, "an emptied write-ahead log", async || {
        let (busy, log): (i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        busy == 0 && log == 0
    })
    .await;
    damage_root_page(&path, "command_ledger");
    conn.execute_batch("CREATE TABLE damage_seen (x); DROP TABLE damage_seen;")
        .unwrap();
    drop(conn);
    let ids: Vec<String> = (1..=5).map(|i| format!("dl-{i}")).collect();
    for id in &ids {
        d.publish(id, "list.list", json!({})).await;
    }
    let body: Value = eventually(SECS_30, "/readyz failing on the store", async || {
        let (status, body) = d.ops("/readyz").await;
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status == 503 && parsed["checks"]["store"] != "writable" {
            Ok(parsed)
        } else {
            Err(format!("readyz stayed {status}: {body}"))
        }
    })
    .await;
    let store_check = body["checks"]["store"].as_str().unwrap();
    assert!(
        store_check.starts_with("failing: ") && store_check.contains("malformed"),
        "{body}"
    );
    let queue = d.queue().to_owned();
    eventually(SECS_30, "the commands given back", async || {
        queue_state(&d, &queue).await == (ids.len() as u32, 0)
    })
    .await;
    // It stays paused (the probe keeps failing): no result, no rebuild, one outage.
    d.drain(Duration::from_secs(2)).await;
    assert!(d.received.is_empty(), "{:?}", d.received);
    assert_eq!(queue_state(&d, &queue).await, (ids.len() as u32, 0));
    let (_, metrics) = d.ops("/metrics").await;
    assert_eq!(metric(&metrics, "ctct_amqp_reconnects_total"), Some(0.0));
    assert_eq!(metric(&metrics, "ctct_store_failures_total"), Some(1.0));
    assert_eq!(metric(&metrics, "ctct_store_healthy"), Some(0.0));
    let counts = delivery_counts(&d, &queue, ids.len()).await;
    assert!(counts.iter().all(|c| *c <= 1), "delivery counts {counts:?}");
    d.stop().await;
}
