//! [`PgMirrorError`]: why an operation of the PostgreSQL mirror failed.

/// Why a PostgreSQL mirror operation failed. Messages name no URL and no password.
#[derive(Debug, thiserror::Error)]
pub enum PgMirrorError {
    #[error("the PostgreSQL mirror store gave no connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("PostgreSQL mirror store: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error(
        "the mirror store's search_path ({search_path:?}) must name the mirror schema first, \
         as a plain or double-quoted identifier"
    )]
    SearchPath { search_path: String },
    #[error(
        "the mirror schema is at version {found}, newer than this ctct-sync knows \
         (version {latest}); run a newer ctct-sync"
    )]
    SchemaTooNew { found: u32, latest: u32 },
    #[error(
        "mirror migration {version:04}_{name} differs from the one applied to this schema; \
         migrations are append-only — restore the released file and add a new migration"
    )]
    MigrationChanged { version: i32, name: String },
    #[error("mirror migration {version:04}_{name} failed: {}", describe(.source))]
    Migration {
        version: u32,
        name: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("mirror store: {what} {value:?} is not a valid instant")]
    Instant { what: &'static str, value: String },
    /// A row of `contacts_load` that does not decode as a contact.
    #[error("mirror store: {0}")]
    Held(String),
}

/// A PostgreSQL error as an operator can act on it: the server's message, detail and code
/// when the server answered, the client's description otherwise.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str("; ");
                text.push_str(detail);
            }
            text
        }
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

pub(super) type PgResult<T> = Result<T, PgMirrorError>;
