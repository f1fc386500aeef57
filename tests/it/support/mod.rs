//! Shared test helpers: temporary directories, quiet-by-default tracing, the binary's path.

pub mod api;
pub mod cluster;
pub mod daemon;
pub mod engine;
pub mod eventually;
pub mod pg;
pub mod proxy;
pub mod scrape;
pub mod tls_pg;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ctct-sync-test-")
        .tempdir()
        .expect("a temporary directory can be created")
}

/// A path for a database that does not exist yet inside `dir`.
pub fn fresh_db_path(dir: &Path) -> PathBuf {
    dir.join("data").join("ctct-sync.db")
}

/// Installs a tracing subscriber only when `TEST_LOG` is set, so tests stay quiet.
#[allow(dead_code)]
pub fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        ctct_sync::telemetry::init(ctct_sync::config::LogFormat::Text, "debug");
    }
}

/// Environment variables of the test process that must not leak into a `ctct-sync` child.
fn inherited_settings() -> impl Iterator<Item = String> {
    std::env::vars()
        .map(|(key, _)| key)
        .filter(|key| key.starts_with("CTCT_SYNC") || key == "RUST_LOG")
}

/// The `ctct-sync` binary built for this test run, with a clean `CTCT_SYNC*` environment
/// and `dir` as working directory.
pub fn ctct_sync_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ctct-sync"));
    cmd.current_dir(dir);
    for key in inherited_settings() {
        cmd.env_remove(key);
    }
    cmd
}

/// The same, for tests that run the binary asynchronously; killed when dropped.
pub fn ctct_sync_process(dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ctct-sync"));
    cmd.current_dir(dir).kill_on_drop(true);
    for key in inherited_settings() {
        cmd.env_remove(key);
    }
    cmd
}

/// The effective user id of this process, from /proc (no `unsafe` call to geteuid): tests
/// that switch users need root.
pub fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
        .expect("an effective uid")
}

/// The ```sql blocks of the section of docs/mirror.md headed `heading` (up to the next `## `),
/// in order.
pub fn mirror_doc_queries(heading: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/mirror.md"))
        .expect("docs/mirror.md is readable");
    let section = doc
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("docs/mirror.md has the section {heading:?}"))
        .split("\n## ")
        .next()
        .unwrap_or_default();
    section
        .split("```sql\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or_default().to_owned())
        .collect()
}

/// Splits a shell command line into words: blanks separate them, quotes group them.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}
