//! The state store: the daemon's private tables — tokens, the request budget, the command
//! ledger, bulk batches. On SQLite (this module) one database file; the account mirror lives
//! in a store of its own ([`Store::open_mirror`] on SQLite), which analysts may read.
//!
//! One dedicated thread owns the `Connection`; async code hands it closures through a
//! channel and awaits the answer, so blocking SQLite calls never run on tokio's threads and
//! our own tasks never contend for the write lock (SQLITE_BUSY can only come from other
//! processes, and WAL keeps their readers from blocking us).
//!
//! The rest of the daemon reaches the tables only through typed async methods on [`Store`],
//! each defined in the module that owns its table (`ledger_*` in [`ledger`], `bulk_*` in
//! [`bulk`], `ledger_scrub_contact` (an erasure, over the ledger and bulk batches) in
//! [`erasure`], `budget_*` in [`budget`], `tokens_*` in [`tokens`], `integrity_*` in
//! [`integrity`]). They take and return plain data and [`StoreError`], never a connection or a
//! SQLite type, so that another engine can stand behind them. [`Store::call`] and
//! [`Store::call_grouped`] are how those methods reach the owner thread.
//!
//! The state file is created with mode 0600 (it holds refresh tokens and contact data) inside a
//! directory created with 0700; the mirror's file with 0640 (its group may read it) inside a
//! directory created with 0750. An existing file readable by every user is refused.

pub mod backup;
pub mod budget;
pub mod bulk;
pub mod copy;
pub mod erasure;
pub mod error;
pub mod housekeeping;
pub mod integrity;
pub mod ledger;
pub mod migrate;
pub mod postgres;
pub mod replicas;
pub mod tokens;
pub mod upgrade;

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};
use secrecy::SecretString;
use tokio::sync::{mpsc, oneshot};

pub use error::StoreError;
pub use migrate::{Migration, MigrationReport};
pub use postgres::PgStore;

/// Which of the two stores a SQLite file is: the private state or the analysts' mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    State,
    Mirror,
}

impl Role {
    /// Mode of a new file, and of a directory created for it.
    fn modes(self) -> (u32, u32) {
        match self {
            Role::State => (0o600, 0o700),
            Role::Mirror => (0o640, 0o750),
        }
    }
}

/// Work for the owner thread.
enum Job {
    /// Runs on its own, with the connection to itself (it may open its own transaction).
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Runs inside a shared write transaction, under a savepoint of its own; its answer is
    /// handed over only once that transaction has committed (see [`Store::call_grouped`]).
    Grouped(GroupJob),
}

/// A grouped job is handed the open transaction's connection, or the reason no transaction
/// could be opened (then it only answers its caller with that reason).
type GroupJob = Box<dyn for<'c> FnOnce(Result<&'c Connection, &rusqlite::Error>) -> Grouped + Send>;

/// What a grouped job left behind: whether its savepoint is kept, and how to answer its
/// caller once the group's commit is known.
struct Grouped {
    keep: bool,
    answer: Answer,
}

/// Answers a grouped job's caller, given why the group's commit failed (if it did).
type Answer = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

/// At most this many grouped jobs share one commit, so that one caller's answer never waits
/// behind an unbounded queue.
const GROUP_LIMIT: usize = 128;

/// A handle to the store. Cheap to clone; the connection closes when the last handle drops.
#[derive(Clone)]
pub struct Store {
    engine: Engine,
}

/// The database behind a [`Store`]: every typed method runs on one or the other.
#[derive(Clone)]
enum Engine {
    /// A SQLite file, owned by the store's thread.
    Sqlite {
        jobs: mpsc::Sender<Job>,
        path: Arc<PathBuf>,
    },
    /// A schema of a PostgreSQL database.
    Postgres(PgStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.engine {
            Engine::Sqlite { path, .. } => f.debug_struct("Store").field("path", path).finish(),
            Engine::Postgres(pg) => f.debug_struct("Store").field("postgres", pg).finish(),
        }
    }
}

impl Store {
    /// Opens (creating if needed) the state database at `path`, applies pending migrations,
    /// and starts the owner thread. Returns the store and what the migration pass did. A file
    /// from before the mirror moved out has its mirror tables dropped (the mirror's next full
    /// pass rebuilds them); [`Store::open_state`] copies them into the mirror's file instead.
    pub fn open(path: &Path) -> Result<(Store, MigrationReport), StoreError> {
        Store::open_state(path, None)
    }

    /// [`Store::open`], copying the rows of a pre-split file's mirror tables into the SQLite
    /// mirror at `mirror_file` (already migrated) before they are dropped from the state.
    pub fn open_state(
        path: &Path,
        mirror_file: Option<&Path>,
    ) -> Result<(Store, MigrationReport), StoreError> {
        let mut conn = open_connection(path, Role::State)?;
        let report = upgrade::migrate_state(&mut conn, mirror_file)?;
        Ok((Store::spawn(conn, path), report))
    }

    /// Opens (creating if needed) the SQLite mirror at `path` and migrates it: the store the
    /// mirror's tables live in (`crate::mirror::MirrorDb`).
    pub fn open_mirror(path: &Path) -> Result<(Store, MigrationReport), StoreError> {
        let mut conn = open_connection(path, Role::Mirror)?;
        // A first full pass sorts its held contacts' keys (about 50 bytes each): in SQLite's
        // temporary directory (SQLITE_TMPDIR, TMPDIR, else /var/tmp, /usr/tmp, /tmp), not in
        // the process's memory.
        conn.execute_batch("PRAGMA temp_store = FILE;")?;
        let report = migrate::migrate_mirror(&mut conn)?;
        Ok((Store::spawn(conn, path), report))
    }

    /// Opens the state database and migrates it without starting the owner thread: for
    /// tests that look at the file directly.
    pub fn open_and_migrate(path: &Path) -> Result<(Connection, MigrationReport), StoreError> {
        let mut conn = open_connection(path, Role::State)?;
        let report = upgrade::migrate_state(&mut conn, None)?;
        Ok((conn, report))
    }

    fn spawn(mut conn: Connection, path: &Path) -> Store {
        let (jobs, mut rx) = mpsc::channel::<Job>(1024);
        std::thread::Builder::new()
            .name("ctct-store".into())
            .spawn(move || {
                let mut next = None;
                loop {
                    let job = match next.take() {
                        Some(job) => job,
                        None => match rx.blocking_recv() {
                            Some(job) => job,
                            None => break,
                        },
                    };
                    match job {
                        Job::Alone(job) => run_alone(&mut conn, job),
                        Job::Grouped(first) => {
                            // Every grouped job already waiting joins this commit; the first
                            // job of another kind waits for the next turn of the loop.
                            let mut group = vec![first];
                            while group.len() < GROUP_LIMIT {
                                match rx.try_recv() {
                                    Ok(Job::Grouped(job)) => group.push(job),
                                    Ok(alone) => {
                                        next = Some(alone);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            run_group(&mut conn, group);
                        }
                    }
                }
                // Every handle is gone: leave the `.db` file complete on its own.
                let _ = checkpoint(&conn);
            })
            .expect("the operating system can start the store thread");
        Store {
            engine: Engine::Sqlite {
                jobs,
                path: Arc::new(path.to_owned()),
            },
        }
    }

    /// Connects to the PostgreSQL database of `url` (`postgres://` or `postgresql://`, with
    /// `sslmode` disable, prefer, require or verify-full), creates `schema` if missing and
    /// applies the state store's pending migrations there. Returns the store and what the
    /// migration pass did. A server that does not answer is [`StoreError::PgUnreachable`]
    /// (worth retrying); a refused login or a missing database are errors of their own.
    pub async fn connect_postgres(
        url: &SecretString,
        schema: &str,
    ) -> Result<(Store, MigrationReport), StoreError> {
        let pg = PgStore::connect(url, schema).await?;
        let report = postgres::migrate::apply(&pg, migrate::POSTGRES_STATE).await?;
        Ok((
            Store {
                engine: Engine::Postgres(pg),
            },
            report,
        ))
    }

    /// The PostgreSQL store behind this handle, when it is one: the typed methods of the
    /// table modules run there instead of on the SQLite thread.
    pub(crate) fn pg(&self) -> Option<&PgStore> {
        match &self.engine {
            Engine::Sqlite { .. } => None,
            Engine::Postgres(pg) => Some(pg),
        }
    }

    /// Where the store lives, for people: the file's path, or the PostgreSQL URL (password
    /// replaced by `***`) and schema.
    pub fn describe(&self) -> String {
        match &self.engine {
            Engine::Sqlite { path, .. } => path.display().to_string(),
            Engine::Postgres(pg) => pg.describe().to_owned(),
        }
    }

    /// Copies the write-ahead log into the database file and empties it
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`), so that the `.db` file alone holds everything
    /// committed. Run on a clean stop; harmless at any time.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.checkpoint().await;
        }
        self.call(|conn| checkpoint(conn)).await
    }

    /// Takes the write lock and lets it go, writing nothing: a read-only file or a lock held
    /// by another process fails here.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.check_writable().await;
        }
        self.call(|conn| {
            conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
            Ok(())
        })
        .await
    }

    /// Opens the state database and migrates it, then closes it: `ctct-sync migrate`.
    pub fn migrate_file(
        path: &Path,
        mirror_file: Option<&Path>,
    ) -> Result<MigrationReport, StoreError> {
        let mut conn = open_connection(path, Role::State)?;
        upgrade::migrate_state(&mut conn, mirror_file)
    }

    /// Opens the mirror database and migrates it, then closes it: `ctct-sync migrate`.
    pub fn migrate_mirror_file(path: &Path) -> Result<MigrationReport, StoreError> {
        let mut conn = open_connection(path, Role::Mirror)?;
        migrate::migrate_mirror(&mut conn)
    }

    /// The database file. On a PostgreSQL store: [`Store::describe`]'s text as a path, for
    /// messages only.
    pub fn path(&self) -> &Path {
        match &self.engine {
            Engine::Sqlite { path, .. } => path,
            Engine::Postgres(pg) => Path::new(pg.describe()),
        }
    }

    /// The owner thread's queue, or why there is none (a PostgreSQL store).
    fn jobs(&self) -> Result<&mpsc::Sender<Job>, StoreError> {
        match &self.engine {
            Engine::Sqlite { jobs, .. } => Ok(jobs),
            Engine::Postgres(pg) => Err(StoreError::NotSqlite(pg.describe().to_owned())),
        }
    }

    /// Creates the state file's directory (0700) when missing, before anything else may
    /// create it with another mode (the mirror's file beside it).
    pub fn prepare_state_dir(path: &Path) -> Result<(), StoreError> {
        create_dir(path, Role::State)
    }

    /// Runs `f` on the owner thread with the connection and returns its result. The caller's
    /// tracing span is carried over so log lines keep their context.
    ///
    /// Raw access, for the store's own table modules (and the mirror's tables) and for tests
    /// that set up or inspect a file: the rest of the daemon calls the typed methods (see the
    /// module's documentation). It stays `pub` only because the integration tests use it.
    /// A PostgreSQL store has no such connection: [`StoreError::NotSqlite`].
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let span = tracing::Span::current();
        let job = Job::Alone(Box::new(move |conn| {
            let _entered = span.enter();
            let _ = reply.send(f(conn));
        }));
        self.jobs()?
            .send(job)
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Like [`Store::call`] for a small write that may share its commit with others (group
    /// commit): `f` runs inside a write transaction the owner thread opened (`BEGIN
    /// IMMEDIATE`), under a savepoint of its own that is rolled back if `f` fails, so `f`
    /// must not open a transaction itself. Its result is handed back only after the
    /// transaction has committed (and, with `synchronous = FULL`, reached the disk); if the
    /// commit fails, every caller in the group gets the error. Under load one fsync then
    /// serves many commands instead of one each.
    ///
    /// Raw access like [`Store::call`]: for the store's table modules and tests only.
    /// A PostgreSQL store has no such connection: [`StoreError::NotSqlite`].
    pub async fn call_grouped<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let span = tracing::Span::current();
        let job = Job::Grouped(Box::new(move |conn| {
            let outcome = match conn {
                Ok(conn) => {
                    let _entered = span.enter();
                    f(conn)
                }
                Err(error) => Err(StoreError::Commit(error.to_string())),
            };
            Grouped {
                keep: outcome.is_ok(),
                answer: Box::new(move |failed_commit| {
                    let _ = reply.send(match failed_commit {
                        Some(error) => Err(StoreError::Commit(error.to_string())),
                        None => outcome,
                    });
                }),
            }
        }));
        self.jobs()?
            .send(job)
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn run_alone(conn: &mut Connection, job: Box<dyn FnOnce(&mut Connection) + Send>) {
    // A panicking job must not take the store down with it; its caller sees `Closed`
    // because the reply sender was dropped.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn)));
    if outcome.is_err() {
        tracing::error!("a store operation panicked; the store carries on");
        rollback_if_open(conn);
    }
}

/// One write transaction for the whole group, a savepoint per job, the answers after the
/// commit.
fn run_group(conn: &mut Connection, group: Vec<GroupJob>) {
    if let Err(error) = conn
        .prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut s| s.execute([]))
    {
        // Nothing runs: every caller hears the reason (SQLITE_BUSY from another process
        // after busy_timeout, say).
        tracing::debug!(error = %error, jobs = group.len(), "could not open the store's write transaction");
        for job in group {
            (job(Err(&error)).answer)(None);
        }
        return;
    }
    let mut answers = Vec::with_capacity(group.len());
    for job in group {
        if let Err(error) = conn
            .prepare_cached("SAVEPOINT grouped")
            .and_then(|mut s| s.execute([]))
        {
            (job(Err(&error)).answer)(None);
            continue;
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Ok(conn)))) {
            Ok(done) => {
                let end = if done.keep {
                    conn.prepare_cached("RELEASE grouped")
                        .and_then(|mut s| s.execute([]))
                        .map(drop)
                } else {
                    conn.execute_batch("ROLLBACK TO grouped; RELEASE grouped")
                };
                if let Err(error) = end {
                    tracing::error!(error = %error, "could not close a savepoint");
                }
                answers.push(done.answer);
            }
            Err(_) => {
                tracing::error!("a store operation panicked; the store carries on");
                let _ = conn.execute_batch("ROLLBACK TO grouped; RELEASE grouped");
            }
        }
    }
    match conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
    {
        Ok(_) => answers.into_iter().for_each(|answer| answer(None)),
        Err(error) => {
            // Every caller gets the error and reports it (the pipeline: one line per outage).
            tracing::debug!(error = %error, jobs = answers.len(), "the store's group commit failed");
            rollback_if_open(conn);
            answers.into_iter().for_each(|answer| answer(Some(&error)));
        }
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` on `conn`. A reader in another process can keep part
/// of the log from being copied; that is logged, not an error (the log stays valid).
pub fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    let (busy, pages, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    if busy != 0 {
        tracing::warn!(
            pages,
            copied,
            "another connection kept the store's write-ahead log from being emptied; the next clean stop tries again"
        );
    } else {
        tracing::debug!(pages, "store checkpointed");
    }
    Ok(())
}

fn rollback_if_open(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// Creates the directory of `path` when missing, with the mode of `role`.
fn create_dir(path: &Path, role: Role) -> Result<(), StoreError> {
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
    {
        let io = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        let mode = role.modes().1;
        DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(parent)
            .map_err(io)?;
        // The mode whatever the umask: a mirror's group must be able to reach its file.
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    }
    Ok(())
}

/// Creates the directory and file when missing (modes by [`Role`]), refuses a
/// world-accessible file, opens it and sets the connection-level pragmas.
fn open_connection(path: &Path, role: Role) -> Result<Connection, StoreError> {
    let (file_mode, _) = role.modes();
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    create_dir(path, role)?;
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(file_mode)
        .open(path)
    {
        Ok(file) => file
            .set_permissions(std::fs::Permissions::from_mode(file_mode))
            .map_err(io)?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(StoreError::WorldAccessible {
            path: path.to_owned(),
            mode,
        });
    }
    if role == Role::State && mode & 0o070 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:04o}"),
            "the store is readable by its group; 0600 is recommended because it holds refresh tokens"
        );
    }
    let unusable = |source| StoreError::Unusable {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unusable)?;
    // journal_mode is persistent and must be set outside a transaction; synchronous=FULL
    // because a rotated refresh token that is lost on power failure strands the account.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(unusable)?;
    // Room for every statement the hot paths cache (ledger, group commit, mirror writes).
    conn.set_prepared_statement_cache_capacity(64);
    // Reading the schema proves the file is a database (a corrupt or foreign file fails here).
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| {
        row.get::<_, i64>(0)
    })
    .map_err(unusable)?;
    Ok(conn)
}
