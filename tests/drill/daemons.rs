//! The `ctct-sync run` children of the drill: started with this test's sandbox, store and
//! queues, each writing its stderr (at debug or trace level) to a file of its own; killed
//! with SIGKILL; and the audit that no token or client secret reached any of those files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Child;

use crate::support::daemon::TestDaemon;

pub struct Daemons {
    child: Option<Child>,
    dir: PathBuf,
    env: Vec<(String, String)>,
    /// Every file a child wrote to (daemons and `auth import`).
    pub logs: Vec<PathBuf>,
    pub started: u32,
    /// Children that exited without being killed (each is restarted and reported).
    pub unexpected_exits: Vec<String>,
}

impl Daemons {
    pub fn new(dir: &Path, env: Vec<(String, String)>) -> Self {
        std::fs::create_dir_all(dir).expect("the log directory can be created");
        Daemons {
            child: None,
            dir: dir.to_owned(),
            env,
            logs: Vec::new(),
            started: 0,
            unexpected_exits: Vec::new(),
        }
    }

    fn log_file(&mut self, name: &str) -> (PathBuf, std::fs::File) {
        let path = self.dir.join(name);
        let file = std::fs::File::create(&path).expect("a log file can be created");
        self.logs.push(path.clone());
        (path, file)
    }

    /// Starts a `ctct-sync run` child.
    pub fn start(&mut self, d: &TestDaemon) {
        assert!(self.child.is_none(), "one daemon at a time");
        self.started += 1;
        let (_, log) = self.log_file(&format!("daemon-{}.log", self.started));
        let child = d
            .command(&["run"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("the daemon starts");
        self.child = Some(child);
    }

    /// The running child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Restarts a child that exited by itself, and remembers that it did.
    pub fn restart_if_exited(&mut self, d: &TestDaemon) {
        let exited = match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => status,
            _ => return,
        };
        self.child = None;
        let log = self.logs.last().cloned().unwrap_or_default();
        self.unexpected_exits
            .push(format!("{} ({exited})", log.display()));
        self.start(d);
    }

    /// `ctct-sync auth import --account default` with `token` on stdin; true when it
    /// succeeded.
    pub async fn auth_import(&mut self, d: &TestDaemon, token: &str) -> bool {
        let imports = self
            .logs
            .iter()
            .filter(|l| l.ends_with("import.log"))
            .count();
        let (_, log) = self.log_file(&format!("auth-{}-import.log", imports + 1));
        let err = log.try_clone().expect("a log file handle");
        let mut child = d
            .command(&["auth", "import", "--account", "default"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("ctct-sync auth import starts");
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(format!("{token}\n").as_bytes())
            .await
            .expect("the token is written");
        drop(stdin);
        tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .expect("auth import finishes")
            .expect("auth import runs")
            .success()
    }
}

/// What the log audit read and found.
#[derive(Debug, Default)]
pub struct Audit {
    pub files: usize,
    pub lines: usize,
    pub debug_lines: usize,
    /// `(file, which secret)` for every secret found; the secret itself is never printed.
    pub hits: Vec<String>,
}

/// Looks for every secret in every file.
pub fn audit(files: &[PathBuf], secrets: &BTreeSet<(String, String)>) -> Audit {
    let mut audit = Audit::default();
    for path in files {
        let raw = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
        // The text format colours its output even into a file; a secret must not hide
        // between escape sequences.
        let text = strip_ansi(&raw);
        audit.files += 1;
        audit.lines += text.lines().count();
        audit.debug_lines += text
            .lines()
            .filter(|l| l.contains(" DEBUG ") || l.contains(" TRACE "))
            .count();
        for (what, secret) in secrets {
            if !secret.is_empty() && text.contains(secret.as_str()) {
                audit.hits.push(format!("{what} in {}", path.display()));
            }
        }
    }
    audit
}

/// The text without ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
