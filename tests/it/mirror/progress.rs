//! `ctct-sync mirror` with stdout and stderr going to pipes: the progress bars are drawn only on
//! a terminal, so both streams carry plain lines and nothing else.

use std::time::Duration;

use super::{ActivityCompleter, seed};
use crate::support::api::TestApi;

#[tokio::test]
async fn the_mirror_subcommand_draws_no_progress_into_pipes_and_its_log_lines_stay_plain() {
    let t = TestApi::start().await;
    // Three pages of contacts: a drawn bar would be redrawn several times.
    seed(&t, 1_200);
    let _completer = ActivityCompleter::start(t.sandbox.admin());
    let output = crate::support::ctct_sync_process(t.dir.path())
        .args(["mirror", "--full", "--paging"])
        .envs(t.cli_env())
        .env("RUST_LOG", "info")
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the mirror finishes within the deadline")
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains('\r'),
            "a carriage return in {stream}: {text:?}"
        );
        assert!(
            !text.contains('\x1b'),
            "an escape sequence in {stream}: {text:?}"
        );
    }
    let summaries: Vec<&str> = stdout.lines().collect();
    assert_eq!(summaries.len(), 7, "one line per resource: {stdout}");
    assert!(
        summaries.iter().all(|line| line.starts_with("mirror ")),
        "{stdout}"
    );
    assert!(
        summaries
            .iter()
            .any(|line| line.starts_with("mirror contacts full (paging): succeeded — 3 pages")),
        "{stdout}"
    );
    // The log lines are on stderr, whole, one per run.
    let finished = stderr
        .lines()
        .filter(|line| line.contains("mirror run finished"))
        .count();
    assert_eq!(finished, 7, "{stderr}");
    t.stop().await;
}
