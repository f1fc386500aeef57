//! `ctct-sync run` under a service manager that set `NOTIFY_SOCKET` (systemd's
//! `Type=notify`, deploy/systemd/ctct-sync.service): readiness once the broker and store are
//! ready, a status line, watchdog pings at half of `WATCHDOG_USEC`, and `STOPPING=1` on
//! SIGTERM. The test plays the service manager with a datagram socket of its own.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::daemon::{TestDaemon, terminate};

/// Every datagram the daemon sent until `until` says it is enough, or the deadline.
fn receive_until(
    socket: &UnixDatagram,
    seen: &mut Vec<String>,
    deadline: Duration,
    until: impl Fn(&[String]) -> bool,
) -> bool {
    let end = Instant::now() + deadline;
    let mut buf = vec![0u8; 4096];
    while !until(seen) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        socket.set_read_timeout(Some(left)).unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => seen.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return until(seen);
            }
            Err(e) => panic!("reading the notification socket: {e}"),
        }
    }
    true
}

fn count(seen: &[String], line: &str) -> usize {
    seen.iter().filter(|l| *l == line).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_service_manager_the_daemon_says_ready_pings_the_watchdog_and_says_stopping() {
    let mut d = TestDaemon::start().await;
    assert!(d.stop_pipeline(Duration::from_secs(10)).await);
    let socket_path = d.api.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("the notification socket");
    let notify = socket_path.to_str().unwrap().to_owned();
    let (mut daemon, log) = d.spawn_with_log(
        "daemon",
        &[("NOTIFY_SOCKET", &notify), ("WATCHDOG_USEC", "400000")],
    );
    let said = || std::fs::read_to_string(&log).unwrap_or_default();

    let mut seen = Vec::new();
    let ready = tokio::task::block_in_place(|| {
        receive_until(&socket, &mut seen, Duration::from_secs(60), |s| {
            count(s, "READY=1") == 1
        })
    });
    assert!(
        ready,
        "READY=1 within 60 s; got {seen:?}; the daemon said:\n{}",
        said()
    );
    let ready_at = seen.iter().position(|l| l == "READY=1").unwrap();
    assert!(
        seen[..ready_at]
            .iter()
            .chain(&seen[ready_at..])
            .any(|l| l.starts_with("STATUS=ready: broker connected, store writable")),
        "a status line says why it is ready: {seen:?}"
    );
    // It works once ready: a command through the queue gets its result.
    d.publish("notify-1", "list.list", json!({})).await;
    let results = d
        .results(&["notify-1".to_owned()], Duration::from_secs(30))
        .await;
    assert_eq!(results["notify-1"].len(), 1);

    // Pings at half of WATCHDOG_USEC (200 ms): several within 2 s, READY=1 still only once.
    let before = count(&seen, "WATCHDOG=1");
    tokio::task::block_in_place(|| {
        receive_until(&socket, &mut seen, Duration::from_secs(2), |_| false)
    });
    let pings = count(&seen, "WATCHDOG=1") - before;
    assert!(
        (4..=14).contains(&pings),
        "about 10 pings in 2 s at 200 ms, got {pings}: {seen:?}"
    );
    assert_eq!(count(&seen, "READY=1"), 1, "READY=1 is sent once");

    terminate(&mut daemon).await;
    let stopping = tokio::task::block_in_place(|| {
        receive_until(&socket, &mut seen, Duration::from_secs(10), |s| {
            s.iter().any(|l| l == "STOPPING=1")
        })
    });
    assert!(stopping, "STOPPING=1 after SIGTERM; got {seen:?}");
    d.stop().await;
}
