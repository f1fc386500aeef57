//! A private PostgreSQL cluster for one TLS test, never the shared server: [`TlsCluster::start`]
//! runs `initdb` into a fresh directory under /tmp, makes a CA and a server certificate for
//! `localhost` and 127.0.0.1 signed by it (plus a second, unrelated CA) with the `openssl`
//! command, and starts the cluster with `pg_ctl` on a free port of 127.0.0.1 and a unix socket
//! in its directory. TCP logins are trusted, but only over TLS (`hostssl`); the unix socket
//! trusts everyone, for the test's own checks ([`TlsCluster::admin`]).
//!
//! The programs are the newest `/usr/lib/postgresql/*/bin` (Debian's packages, as `.ci/run`
//! installs them), or `CTCT_TEST_PG_BINDIR`. `initdb` and `postgres` refuse to run as root:
//! as root the cluster runs as the OS user `postgres` (through `setpriv`, as
//! `analyst_access` switches users), and its directory belongs to that user.
//!
//! Dropping the value stops the cluster (`pg_ctl -m immediate stop`) and removes its
//! directory, also when the test panicked. A watcher process started with it does the same
//! when the test process dies without dropping it (killed): it waits for the end of a pipe
//! only the test process holds.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};

use super::effective_uid;

/// Where `pg_ctl` and `initdb` are found when `CTCT_TEST_PG_BINDIR` is not set: Debian's
/// `/usr/lib/postgresql/<version>/bin`, the newest version.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// Starts that fail on a port another process took between our pick and the server's bind
/// are tried again on another port, this many times in all.
const START_ATTEMPTS: u32 = 5;

/// The watcher's script: waits until its stdin ends (the test dropped the cluster or died),
/// then stops the cluster and removes its directory. Terminal signals are ignored, so a
/// Ctrl-C of the test run still cleans up. `$1` is the directory, the rest runs `pg_ctl`.
const WATCHER: &str = r#"trap '' HUP INT TERM
dir=$1
shift
cat >/dev/null
"$@" stop -D "$dir/data" -m immediate -w >/dev/null 2>&1
rm -rf -- "$dir""#;

/// Whether the cluster offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    /// `ssl = on` with the test CA's certificate; TCP logins only over TLS (`hostssl`).
    Only,
    /// `ssl = off`; TCP logins in plain text (`host`).
    Off,
}

/// A running private cluster; stopped and removed when dropped.
pub struct TlsCluster {
    dir: PathBuf,
    bindir: PathBuf,
    /// The OS user the server runs as, when the test runs as root: (uid, gid).
    owner: Option<(u32, u32)>,
    port: u16,
    started: bool,
    watcher: Option<Child>,
    /// The pipe the watcher waits on: closing it (drop, or the test process dying) tells it
    /// to clean up.
    watcher_pipe: Option<ChildStdin>,
}

impl TlsCluster {
    /// A cluster that offers TLS with a certificate for `localhost` and 127.0.0.1 signed by
    /// [`ca_pem`](Self::ca_pem), and refuses TCP logins without TLS.
    pub fn start() -> TlsCluster {
        TlsCluster::start_with(ServerTls::Only)
    }

    /// A cluster that does not offer TLS at all (logins in plain text accepted).
    pub fn start_without_tls() -> TlsCluster {
        TlsCluster::start_with(ServerTls::Off)
    }

    /// Makes, configures and starts a cluster. Panics, with what to install, when PostgreSQL's
    /// server programs or `openssl` are missing, and with the server's log when it does not
    /// start. A panic half way leaves nothing behind (the value is built first, so `Drop`
    /// runs).
    pub fn start_with(tls: ServerTls) -> TlsCluster {
        let bindir = postgres_bindir();
        let owner = (effective_uid() == 0).then(postgres_user);
        let dir = tempfile::Builder::new()
            .prefix("ctct-tls-pg-")
            // /tmp, not $TMPDIR: the directory must be reachable by the user `postgres`.
            .tempdir_in("/tmp")
            .expect("a directory under /tmp for the cluster")
            .keep();
        let mut cluster = TlsCluster {
            dir,
            bindir,
            owner,
            port: 0,
            started: false,
            watcher: None,
            watcher_pipe: None,
        };
        cluster.start_watcher();
        if tls == ServerTls::Only {
            cluster.make_certificates();
        }
        if let Some((uid, gid)) = owner {
            chown_tree(&cluster.dir, uid, gid);
        }
        cluster.init(tls);
        cluster.run();
        cluster
    }

    /// The port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (`pg_ctl -m fast stop`: sessions are ended, as at a failover or a
    /// maintenance restart); [`TlsCluster::start_again`] brings it back on the same port.
    /// (The replica drill restarts its PostgreSQL server with these.)
    #[allow(dead_code)]
    pub fn stop_server(&mut self) {
        let out = self
            .pg_command("pg_ctl")
            .args(["stop", "-D", "data", "-m", "fast", "-w", "-t", "60"])
            .stdin(Stdio::null())
            .output()
            .expect("pg_ctl runs");
        check(&out, "pg_ctl stop");
        self.started = false;
    }

    /// Starts the server stopped by [`TlsCluster::stop_server`] again, on its port.
    #[allow(dead_code)]
    pub fn start_again(&mut self) {
        let out = self
            .pg_command("pg_ctl")
            .args(["start", "-D", "data", "-l", "server.log", "-w", "-t", "60"])
            .arg("-o")
            .arg(format!("-p {}", self.port))
            .stdin(Stdio::null())
            .output()
            .expect("pg_ctl runs");
        check(&out, "pg_ctl start");
        self.started = true;
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA that signed nothing the server presents (PEM): the "wrong root".
    pub fn other_ca_pem(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    /// `postgres://postgres@<host>:<port>/postgres?<query>` (`query` may be empty).
    pub fn url(&self, host: &str, query: &str) -> String {
        let base = format!("postgres://postgres@{host}:{}/postgres", self.port);
        if query.is_empty() {
            base
        } else {
            format!("{base}?{query}")
        }
    }

    /// The same with a password in the URL (the server trusts the login and ignores it).
    pub fn url_with_password(&self, host: &str, password: &str, query: &str) -> String {
        self.url(host, query).replacen(
            "postgres://postgres@",
            &format!("postgres://postgres:{password}@"),
            1,
        )
    }

    /// A connection through the unix socket (trusted, no TLS), for checks of the test's own;
    /// its driver runs on the current runtime until the client is dropped.
    pub async fn admin(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::Config::new()
            .host_path(&self.dir)
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("the private cluster's unix socket answers: {e}"));
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Starts the watcher (see the module's documentation), in a process group of its own so
    /// that signals sent to the test run's group do not reach it.
    fn start_watcher(&mut self) {
        let mut watcher = Command::new("sh");
        watcher
            .arg("-c")
            .arg(WATCHER)
            .arg("ctct-tls-pg-watcher")
            .arg(&self.dir)
            .args(self.as_owner_prefix())
            .arg(self.bindir.join("pg_ctl"))
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = watcher.spawn().expect("sh starts the cluster's watcher");
        self.watcher_pipe = child.stdin.take();
        self.watcher = Some(child);
    }

    /// `setpriv … --` when the cluster's programs must run as the user `postgres`.
    fn as_owner_prefix(&self) -> Vec<String> {
        match self.owner {
            Some((uid, gid)) => vec![
                "setpriv".into(),
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
                "--".into(),
            ],
            None => Vec::new(),
        }
    }

    /// One of PostgreSQL's programs, run as the cluster's owner, in the cluster's directory.
    fn pg_command(&self, program: &str) -> Command {
        let program = self.bindir.join(program);
        let prefix = self.as_owner_prefix();
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.current_dir(&self.dir);
        cmd
    }

    /// The CA, the server's certificate and key, and the other CA, with `openssl`.
    fn make_certificates(&self) {
        let ca = |name: &str, common_name: &str| {
            let config = self.dir.join(format!("{name}.cnf"));
            fs::write(
                &config,
                format!(
                    "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {common_name}\n\
                     [ext]\nbasicConstraints = critical,CA:TRUE\n\
                     keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
                ),
            )
            .unwrap();
            openssl(
                &self.dir,
                &[
                    "req",
                    "-x509",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "30",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.pem"),
                    "-config",
                    &format!("{name}.cnf"),
                    "-extensions",
                    "ext",
                ],
            );
        };
        ca("ca", "ctct-sync test CA");
        ca("other-ca", "ctct-sync unrelated test CA");
        fs::write(
            self.dir.join("server.cnf"),
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = localhost\n\
             [ext]\nbasicConstraints = critical,CA:FALSE\n\
             keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n\
             subjectAltName = DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            &self.dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-config",
                "server.cnf",
            ],
        );
        let serial = format!("0x{}", uuid::Uuid::new_v4().simple());
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &serial,
                "-days",
                "30",
                "-out",
                "server.crt",
                "-extfile",
                "server.cnf",
                "-extensions",
                "ext",
            ],
        );
        // PostgreSQL refuses a key others may read.
        fs::set_permissions(
            self.dir.join("server.key"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }

    /// `initdb`, then the settings and the access rules for `tls`.
    fn init(&self, tls: ServerTls) {
        let out = self
            .pg_command("initdb")
            .args(["-D", "data", "-U", "postgres", "-A", "trust", "-N"])
            .args(["--encoding=UTF8", "--locale=C"])
            .output()
            .expect("initdb runs");
        check(&out, "initdb");
        let dir = self.dir.display();
        let mut settings = format!(
            "\n# ctct-sync TLS tests\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{dir}'\nmax_connections = 40\nshared_buffers = 16MB\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        );
        let hba = match tls {
            ServerTls::Only => {
                settings.push_str(&format!(
                    "ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n"
                ));
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n"
            }
            ServerTls::Off => {
                settings.push_str("ssl = off\n");
                "local all all trust\nhost all all 127.0.0.1/32 trust\n"
            }
        };
        let data = self.dir.join("data");
        fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut conf| conf.write_all(settings.as_bytes()))
            .expect("postgresql.conf can be extended");
        // Written by root when the test is root: the file keeps its owner `postgres` (it
        // exists), so the server can read it.
        fs::write(data.join("pg_hba.conf"), hba).expect("pg_hba.conf can be written");
    }

    /// `pg_ctl -w start` on a free port, another one when the port was taken meanwhile.
    fn run(&mut self) {
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let out = self
                .pg_command("pg_ctl")
                .args(["start", "-D", "data", "-l", "server.log", "-w", "-t", "60"])
                .arg("-o")
                .arg(format!("-p {port}"))
                .stdin(Stdio::null())
                .output()
                .expect("pg_ctl runs");
            if out.status.success() {
                self.port = port;
                self.started = true;
                return;
            }
            let log = self.log();
            let taken = log.contains("could not bind") || log.contains("already in use");
            if !taken || attempt == START_ATTEMPTS {
                panic!(
                    "the private PostgreSQL cluster in {} did not start: {}\n{}\nserver log:\n{log}",
                    self.dir.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                );
            }
        }
    }
}

impl Drop for TlsCluster {
    /// Stops the cluster at once (`-m immediate`: its data is thrown away), then lets the
    /// watcher go and removes the directory. Failures are reported on stderr, never as a
    /// panic, so they do not hide the test's own failure.
    fn drop(&mut self) {
        if self.started {
            match self
                .pg_command("pg_ctl")
                .args(["stop", "-D", "data", "-m", "immediate", "-w"])
                .stdin(Stdio::null())
                .output()
            {
                Ok(out) if out.status.success() => {}
                Ok(out) => eprintln!(
                    "the private PostgreSQL cluster in {} did not stop: {}",
                    self.dir.display(),
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(e) => eprintln!("pg_ctl stop did not run: {e}"),
            }
        }
        // Its stop finds nothing left to stop; it removes the directory.
        drop(self.watcher_pipe.take());
        if let Some(mut watcher) = self.watcher.take() {
            let _ = watcher.wait();
        }
        if self.dir.exists()
            && let Err(e) = fs::remove_dir_all(&self.dir)
        {
            eprintln!(
                "the private PostgreSQL cluster's directory {} is left behind: {e}",
                self.dir.display()
            );
        }
    }
}

/// The directory of `initdb` and `pg_ctl`: `CTCT_TEST_PG_BINDIR`, or the newest
/// `/usr/lib/postgresql/<version>/bin` that has them. Panics with what to install.
fn postgres_bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CTCT_TEST_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file() && dir.join("pg_ctl").is_file(),
            "CTCT_TEST_PG_BINDIR={} holds no initdb and pg_ctl",
            dir.display()
        );
        return dir;
    }
    let newest = fs::read_dir(DEBIAN_PG_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version: Vec<u32> = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .max();
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed: the TLS tests start \
             a private cluster with them. Install the Debian package postgresql (.ci/run does), \
             or set CTCT_TEST_PG_BINDIR to the directory that holds initdb"
        ),
    }
}

/// The uid and gid of the OS user `postgres` (made by Debian's postgresql package).
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id runs");
        assert!(
            out.status.success(),
            "the TLS tests run as root and need the OS user postgres to run initdb and the \
             server (Debian's postgresql package makes it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("id prints a number")
    };
    (id("-u"), id("-g"))
}

/// `chown -R uid:gid dir` (the directory is flat but for what `initdb` makes later).
fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    chown(dir, Some(uid), Some(gid)).expect("the cluster's directory can be given away");
    for entry in fs::read_dir(dir).expect("the cluster's directory lists") {
        let path = entry.unwrap().path();
        chown(&path, Some(uid), Some(gid)).expect("the cluster's files can be given away");
    }
}

/// Runs `openssl args…` in `dir`; panics with its output, or with what to install.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the openssl command does not run ({e}): the TLS tests make their certificates \
                 with it. Install the Debian package openssl (.ci/run does)"
            )
        });
    check(&out, &format!("openssl {}", args.join(" ")));
}

/// Panics with the output of a command that failed.
fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port of 127.0.0.1 nothing listens on right now (the OS picks it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}
