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
    /// The running children, by slot: one slot in the single-daemon drill, one per replica in
    /// the replica drill (`ha.rs`).
    slots: Vec<Option<Slot>>,
    dir: PathBuf,
    env: Vec<(String, String)>,
    /// Every file a child wrote to (daemons and `auth import`).
    pub logs: Vec<PathBuf>,
    pub started: u32,
    /// Children that exited without being killed (each is restarted and reported).
    pub unexpected_exits: Vec<String>,
}

/// One running `ctct-sync run` child.
struct Slot {
    child: Child,
    /// Its ops listener's port (`/readyz` tells its role).
    ops_port: u16,
    /// Stopped with SIGSTOP and not continued yet.
    paused: bool,
    /// The file its stderr goes to.
    log: PathBuf,
}

impl Daemons {
    pub fn new(dir: &Path, env: Vec<(String, String)>) -> Self {
        std::fs::create_dir_all(dir).expect("the log directory can be created");
        Daemons {
            slots: Vec::new(),
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

    /// Starts a `ctct-sync run` child (slot 0).
    pub fn start(&mut self, d: &TestDaemon) {
        self.start_slot(d, 0);
    }

    /// Starts a `ctct-sync run` child in `slot`, which must be empty, with its ops listener
    /// on a port of its own.
    pub fn start_slot(&mut self, d: &TestDaemon, slot: usize) {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        assert!(self.slots[slot].is_none(), "one daemon per slot");
        self.started += 1;
        let (log_path, log) = self.log_file(&format!("daemon-{}.log", self.started));
        let ops_port = free_port();
        let child = d
            .command(&["run"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CTCT_SYNC__OPS__LISTEN", format!("127.0.0.1:{ops_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("the daemon starts");
        self.slots[slot] = Some(Slot {
            child,
            ops_port,
            paused: false,
            log: log_path,
        });
    }

    /// For a failure message: the last `lines` lines above debug level of each child's log,
    /// under its slot, ops port and file.
    pub fn tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for (slot, s) in self.slots.iter().enumerate() {
            let Some(s) = s else { continue };
            let text = std::fs::read_to_string(&s.log).unwrap_or_default();
            let kept: Vec<&str> = text
                .lines()
                .filter(|line| !line.contains(" DEBUG ") && !line.contains(" TRACE "))
                .collect();
            out.push_str(&format!(
                "\n--- slot {slot} (ops port {}{}), {}:\n",
                s.ops_port,
                if s.paused { ", paused" } else { "" },
                s.log.display()
            ));
            for line in &kept[kept.len().saturating_sub(lines)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// How many slots there are (running or not).
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The process ids of the running children.
    pub fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .flatten()
            .filter_map(|s| s.child.id())
            .collect()
    }

    /// The slots with a running child that is not paused, and their ops ports.
    pub fn running(&self) -> Vec<(usize, u16)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|s| !s.paused).map(|s| (i, s.ops_port)))
            .collect()
    }

    /// SIGKILLs every child, and waits for the processes to be gone.
    pub async fn kill(&mut self) {
        for slot in 0..self.slots.len() {
            self.kill_slot(slot).await;
        }
    }

    /// SIGKILLs the child in `slot` (continued first if it is paused), and waits for it to
    /// be gone.
    pub async fn kill_slot(&mut self, slot: usize) {
        if let Some(mut s) = self.slots.get_mut(slot).and_then(Option::take) {
            let _ = s.child.start_kill();
            if s.paused {
                signal(&s.child, "CONT").await;
            }
            let _ = s.child.wait().await;
        }
    }

    /// SIGSTOP (`pause`) or SIGCONT the child in `slot`.
    pub async fn pause_slot(&mut self, slot: usize, pause: bool) {
        if let Some(s) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            signal(&s.child, if pause { "STOP" } else { "CONT" }).await;
            s.paused = pause;
        }
    }

    /// Restarts children that exited by themselves, and remembers that they did.
    pub fn restart_if_exited(&mut self, d: &TestDaemon) {
        for slot in 0..self.slots.len() {
            let exited = match self.slots[slot].as_mut().map(|s| s.child.try_wait()) {
                Some(Ok(Some(status))) => status,
                _ => continue,
            };
            self.slots[slot] = None;
            self.unexpected_exits
                .push(format!("a daemon in slot {slot} ({exited})"));
            self.start_slot(d, slot);
        }
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

/// Sends `kill -SIGNAL` to a child.
async fn signal(child: &Child, name: &str) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .await;
    }
}

/// A loopback port free now (the child binds it moments later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
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
