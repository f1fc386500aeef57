//! `StoreError`: why a store operation failed (shared by the store's thread and every table
//! module).

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "store {path} has mode {mode:04o} and is readable or writable by every user on this \
         machine; it holds refresh tokens. Run `chmod 600 {path}` and start again"
    )]
    WorldAccessible { path: PathBuf, mode: u32 },
    #[error("store {path} is not a usable SQLite database: {source}")]
    Unusable {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the database schema is at version {found}, newer than this ctct-sync knows \
         (version {latest}); run a newer ctct-sync or restore a backup"
    )]
    SchemaTooNew { found: u32, latest: u32 },
    #[error(
        "migration {version:04}_{name} differs from the one applied to this database; \
         migrations are append-only — restore the released file and add a new migration"
    )]
    MigrationChanged { version: u32, name: &'static str },
    #[error(
        "the database's migration history is inconsistent (user_version {user_version}, \
         {recorded} recorded migrations); it was not created by ctct-sync or was edited by hand"
    )]
    MigrationHistory { user_version: u32, recorded: usize },
    #[error("migration {version:04}_{name} failed: {source}")]
    Migration {
        version: u32,
        name: &'static str,
        /// The engine's error (`rusqlite::Error` or `tokio_postgres::Error`).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "the store is damaged: SQLite's quick_check of table {table} found: {problems}. \
         ctct-sync does not start on a damaged store (it could not record commands); stop, \
         restore the store from a backup (or move it aside to start afresh and authorise again) \
         and start again"
    )]
    Damaged {
        table: &'static str,
        problems: String,
    },
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store's worker thread has stopped")]
    Closed,
    #[error("the store's shared write transaction failed: {0}")]
    Commit(String),
    /// Nothing answered at the PostgreSQL URL (connection refused, timed out, or lost): worth
    /// trying again later. `url` has its password replaced by `***`.
    #[error("state store unreachable: PostgreSQL at {url}: {reason}")]
    PgUnreachable { url: String, reason: String },
    /// The server refused the credentials of the URL.
    #[error("PostgreSQL at {url} refused the login: {reason}")]
    PgAuthFailed { url: String, reason: String },
    /// The database the URL names does not exist on the server.
    #[error("PostgreSQL at {url}: the database does not exist: {reason}")]
    PgNoDatabase { url: String, reason: String },
    /// TLS with the server failed (no TLS offered where `sslmode` requires it, or a
    /// certificate that `verify-full` does not accept).
    #[error("PostgreSQL at {url}: TLS failed: {reason}")]
    PgTls { url: String, reason: String },
    /// The URL, its `sslmode`/`sslrootcert`, or the schema name cannot be used.
    #[error("PostgreSQL URL {url}: {reason}")]
    PgConfig { url: String, reason: String },
    /// Any other error the server or the driver reported.
    #[error("PostgreSQL at {url}: {source}")]
    Postgres {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// `store copy`: the target already holds rows (in `table`, the first found); nothing
    /// was written.
    #[error(
        "the target store {store} is not empty (table {table} holds rows); copy into a new \
         store, nothing was written"
    )]
    CopyTargetNotEmpty { store: String, table: String },
    /// `store copy`: the source and the target are the same store.
    #[error("the source and the target are the same store ({0})")]
    CopySameStore(String),
    /// `store copy`: the SQLite source file does not exist.
    #[error("the source store {0} does not exist")]
    CopyNoSource(String),
    /// `store copy`: a row could not be carried over.
    #[error("copying table {table}: {reason}")]
    Copy { table: String, reason: String },
    /// Raw SQLite access ([`super::Store::call`]) was asked of a PostgreSQL store.
    #[error("raw SQLite access is not available: the store is on PostgreSQL ({0})")]
    NotSqlite(String),
    /// The PostgreSQL mirror store failed where a state-store error is expected (a
    /// `contact.erase` removing the contact from the mirror).
    #[error("mirror store: {0}")]
    MirrorStore(String),
}

impl StoreError {
    /// True when the database could not be reached (or the connection to it was lost): the
    /// operation may succeed when tried again later, unlike a refused login or a missing
    /// database.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::PgUnreachable { .. })
    }
}
