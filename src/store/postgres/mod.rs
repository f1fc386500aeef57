//! The PostgreSQL engine of the state store: the same typed operations as the SQLite store
//! (`ledger_*`, `bulk_*`, `budget_*`, `tokens_*`, `integrity_*`), on a small pool of
//! connections to one schema.
//!
//! Several processes on several hosts may share one schema, so every operation that SQLite
//! makes safe with `BEGIN IMMEDIATE` is made safe here with row locks (`INSERT … ON CONFLICT`,
//! `SELECT … FOR UPDATE`, single-statement conditional updates), and every expiry (the token
//! refresh lease, the request budget's holds) is decided by the database's clock, never a
//! host's.
//!
//! The URL is a secret (it may hold a password): it is kept as a [`SecretString`] and only
//! ever shown through [`redact_url`], in `Debug`, `Display` and errors alike.

mod budget;
mod bulk;
pub(crate) mod copy;
mod erasure;
mod integrity;
mod ledger;
pub mod migrate;
mod replicas;
mod tokens;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::StoreError;

/// Connections in a store's pool: the pipeline's hot path writes through a few at a time.
const POOL_SIZE: usize = 8;

/// How long opening one connection may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an operation waits for a free connection of the pool.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A handle to the state store in one schema of a PostgreSQL database. Cheap to clone; the
/// pool closes when the last handle drops.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// For connections of their own, outside the pool (the liveness lock's session).
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    /// The URL with its password replaced by `***`.
    url: String,
    schema: String,
    /// `url` and `schema` for people: see [`PgStore::describe`].
    described: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.inner.url)
            .field("schema", &self.inner.schema)
            .finish()
    }
}

impl std::fmt::Display for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.inner.described)
    }
}

/// A connection of its own (not the pool's), with a receiver that completes when it ends.
struct Session {
    client: tokio_postgres::Client,
    closed: tokio::sync::oneshot::Receiver<()>,
}

/// `sslmode` of a PostgreSQL URL, as libpq reads it (the subset ctct-sync supports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, without checking its certificate (libpq's default).
    Prefer,
    /// TLS always, without checking the certificate (as libpq's `require`).
    Require,
    /// TLS always; the certificate must chain to a trusted root (the Web PKI roots, or
    /// `sslrootcert`) and name the host connected to.
    VerifyFull,
}

impl TlsMode {
    /// Reads an `sslmode` value; `None` (absent) is libpq's default, `prefer`.
    pub fn parse(value: Option<&str>) -> Result<TlsMode, String> {
        match value {
            None | Some("prefer") => Ok(TlsMode::Prefer),
            Some("disable") => Ok(TlsMode::Disable),
            Some("require") => Ok(TlsMode::Require),
            Some("verify-full") => Ok(TlsMode::VerifyFull),
            Some(other) => Err(format!(
                "sslmode={other} is not supported; use disable, prefer, require or verify-full"
            )),
        }
    }
}

/// The URL with any password (in the user part or a `password=` parameter) replaced by
/// `***`: the only form in which a PostgreSQL URL reaches logs, errors or `config` output.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            if parsed.query_pairs().any(|(k, _)| k == "password") {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" {
                            "***".to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        // Not a URL: show nothing of it but its scheme, which cannot be a secret.
        Err(_) => match raw.split_once("://") {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("{scheme}://…")
            }
            _ => "(unreadable URL)".to_owned(),
        },
    }
}

/// Where and how to connect, read from a URL.
struct Target {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    redacted: String,
}

/// Reads `url` (`postgres://` or `postgresql://`, libpq's parameters) and prepares its
/// connections: `sslmode` and `sslrootcert` are handled here (tokio-postgres knows neither
/// `verify-full` nor root files), every connection's `search_path` is `schema`.
fn target(url: &SecretString, schema: &str) -> Result<Target, StoreError> {
    let raw = url.expose_secret();
    let redacted = redact_url(raw);
    let refuse = |reason: String| StoreError::PgConfig {
        url: redacted.clone(),
        reason,
    };
    let mut parsed = url::Url::parse(raw).map_err(|e| refuse(format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(refuse(format!(
            "the scheme is {}; a PostgreSQL URL starts with postgres:// or postgresql://",
            parsed.scheme()
        )));
    }
    check_schema_name(schema).map_err(&refuse)?;
    let mut sslmode = None;
    let mut rootcert = None;
    let mut rest = Vec::new();
    for (key, value) in parsed.query_pairs() {
        match &*key {
            "sslmode" => sslmode = Some(value.into_owned()),
            "sslrootcert" => rootcert = Some(value.into_owned()),
            _ => rest.push((key.into_owned(), value.into_owned())),
        }
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    let mode = TlsMode::parse(sslmode.as_deref()).map_err(&refuse)?;
    // tokio-postgres' own messages about a URL name the option, never its value.
    let mut config = tokio_postgres::Config::from_str(parsed.as_str())
        .map_err(|e| refuse(format!("cannot be read: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let options = match config.get_options() {
        Some(given) if !given.is_empty() => format!("{given} -c search_path={schema}"),
        _ => format!("-c search_path={schema}"),
    };
    config.options(options);
    config.ssl_mode(match mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyFull => SslMode::Require,
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| refuse(format!("TLS cannot be set up: {e}")))?;
    let tls = match mode {
        TlsMode::VerifyFull => {
            let mut roots = rustls::RootCertStore::empty();
            match &rootcert {
                Some(path) => {
                    let certs = CertificateDer::pem_file_iter(path)
                        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                        .map_err(|e| refuse(format!("sslrootcert={path} cannot be read: {e}")))?;
                    let (added, _) = roots.add_parsable_certificates(certs);
                    if added == 0 {
                        return Err(refuse(format!(
                            "sslrootcert={path} holds no usable certificate"
                        )));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        // libpq's prefer and require encrypt without checking who answers.
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(unverified::AnyCertificate))
            .with_no_client_auth(),
    };
    Ok(Target {
        config,
        tls: MakeRustlsConnect::new(tls),
        redacted,
    })
}

/// Schema names are plain lower-case identifiers, so they need no quoting in SQL or in the
/// connection's options.
fn check_schema_name(schema: &str) -> Result<(), String> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if first_ok
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(())
    } else {
        Err(format!(
            "schema {schema:?} is not a plain name: use at most 63 lower-case letters, digits and \
             underscores, not starting with a digit"
        ))
    }
}

impl PgStore {
    /// Connects to the database of `url` (checking that it answers and accepts the login) and
    /// creates `schema` if missing. Does not migrate: see [`migrate::apply`] and
    /// `Store::connect_postgres`.
    pub async fn connect(url: &SecretString, schema: &str) -> Result<PgStore, StoreError> {
        let store = Self::pool_only(url, schema)?;
        store.create_schema().await?;
        Ok(store)
    }

    /// Connects to the database of `url` and reads the version recorded in `schema`'s
    /// `schema_migrations`, changing nothing (`doctor`): `None` when the schema or its
    /// history does not exist yet. An unreachable server, a refused login or a missing
    /// database are the errors [`connect`](Self::connect) returns.
    pub async fn schema_version(
        url: &SecretString,
        schema: &str,
    ) -> Result<Option<u32>, StoreError> {
        let store = Self::pool_only(url, schema)?;
        let client = store.client().await?;
        let history = client
            .query_one(
                "SELECT to_regclass(quote_ident($1) || '.schema_migrations') IS NOT NULL",
                &[&schema],
            )
            .await
            .map_err(|e| store.error(e))?
            .get::<_, bool>(0);
        if !history {
            return Ok(None);
        }
        let version: Option<i32> = client
            .query_one(
                &format!("SELECT max(version) FROM {schema}.schema_migrations"),
                &[],
            )
            .await
            .map_err(|e| store.error(e))?
            .get(0);
        Ok(Some(version.map_or(0, |v| v.max(0) as u32)))
    }

    /// The store's pool, not yet connected.
    fn pool_only(url: &SecretString, schema: &str) -> Result<PgStore, StoreError> {
        let Target {
            config,
            tls,
            redacted,
        } = target(url, schema)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::PgConfig {
                url: redacted.clone(),
                reason: format!("the connection pool cannot be built: {e}"),
            })?;
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                config,
                tls,
                described: format!("{redacted} (schema {schema})"),
                url: redacted,
                schema: schema.to_owned(),
            }),
        })
    }

    /// The pool of connections to the schema (`search_path` set): the mirror's PostgreSQL
    /// engine writes through it when the mirror store is on PostgreSQL.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The redacted URL and the schema, for messages and `doctor`.
    pub fn describe(&self) -> &str {
        &self.inner.described
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.inner.url
    }

    /// The schema that holds the store's tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// `CREATE SCHEMA IF NOT EXISTS`, under the schema's advisory lock: two processes
    /// creating it at once would otherwise collide on the catalog's unique index. An existing
    /// schema is left alone (PostgreSQL checks the right to create schemas before it looks
    /// whether one exists, and a role given only a schema need not have that right).
    async fn create_schema(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                &[&self.inner.schema],
            )
            .await
            .map_err(|e| self.error(e))?
            .is_some();
        if exists {
            return Ok(());
        }
        let tx = client.transaction().await.map_err(|e| self.error(e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&self.lock_key()])
            .await
            .map_err(|e| self.error(e))?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            self.inner.schema
        ))
        .await
        .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))
    }

    /// The advisory lock that serializes schema creation and migrations of this schema
    /// across processes: the first 8 bytes of a SHA-256 of its name.
    pub(crate) fn lock_key(&self) -> i64 {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("ctct-sync schema {}", self.inner.schema));
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    }

    /// A connection of its own, outside the pool, and a receiver that completes when it
    /// ends (the server went away or restarted, or the connection was dropped).
    async fn session(&self) -> Result<Session, StoreError> {
        let (client, connection) = self
            .inner
            .config
            .connect(self.inner.tls.clone())
            .await
            .map_err(|e| self.error(e))?;
        let (ended, closed) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = connection.await;
            let _ = ended.send(());
        });
        Ok(Session { client, closed })
    }

    /// A connection of the pool.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| pool_error(&self.inner.url, e))
    }

    /// `e` as a [`StoreError`] naming this store's redacted URL.
    pub(crate) fn error(&self, e: tokio_postgres::Error) -> StoreError {
        pg_error(&self.inner.url, e)
    }

    /// Takes the write path and lets it go, writing nothing: a read-only database or role, or
    /// a server that does not answer, fails here.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(e))?;
        tx.batch_execute("LOCK TABLE command_ledger IN ROW EXCLUSIVE MODE")
            .await
            .map_err(|e| self.error(e))?;
        tx.rollback().await.map_err(|e| self.error(e))
    }

    /// Nothing to do: PostgreSQL keeps its own write-ahead log (SQLite's store empties its
    /// log into the file here).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Sorts a driver error into what a caller does about it: try again later (unreachable),
/// fix the credentials or the database name, fix TLS, or read the server's message.
pub(crate) fn pg_error(url: &str, e: tokio_postgres::Error) -> StoreError {
    let url = url.to_owned();
    if let Some(db) = e.as_db_error() {
        let reason = db.message().to_owned();
        let code = db.code();
        return if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            let reason = if unencrypted_login_refused(&reason) {
                format!(
                    "{reason}; the connection was not encrypted: if the server takes this login \
                     only over TLS (a hostssl line of its pg_hba.conf), set sslmode=verify-full \
                     (or require) in the URL"
                )
            } else {
                reason
            };
            StoreError::PgAuthFailed { url, reason }
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            StoreError::PgNoDatabase { url, reason }
        } else if *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            StoreError::PgUnreachable { url, reason }
        } else {
            StoreError::Postgres { url, source: e }
        };
    }
    let text = e.to_string();
    if text.starts_with("error performing TLS handshake") {
        let reason = tls_reason(&url, &e);
        return StoreError::PgTls { url, reason };
    }
    let io = std::error::Error::source(&e).is_some_and(|cause| cause.is::<std::io::Error>());
    if e.is_closed() || io || text.contains("timeout") || text.contains("timed out") {
        let reason = match std::error::Error::source(&e) {
            Some(cause) => format!("{text}: {cause}"),
            None => text,
        };
        return StoreError::PgUnreachable { url, reason };
    }
    StoreError::Postgres { url, source: e }
}

/// Whether the server's refusal of a login is pg_hba.conf finding no line for it *without
/// encryption* (`no pg_hba.conf entry for host "…", user "…", database "…", no encryption`):
/// where only `hostssl` lines match, TLS is what is missing.
fn unencrypted_login_refused(message: &str) -> bool {
    message.starts_with("no pg_hba.conf entry") && message.ends_with("no encryption")
}

/// What a failed TLS handshake means and what to do about it, for the `url` (redacted) it
/// was made for: rustls' verdict on the server's certificate (carried in tokio-rustls'
/// `io::Error`) read against the URL's host and `sslrootcert`, or a server without TLS.
/// The driver's own words follow in parentheses.
fn tls_reason(url: &str, e: &tokio_postgres::Error) -> String {
    use rustls::CertificateError as Cert;

    let cause = std::error::Error::source(e);
    let detail = cause.map_or_else(|| e.to_string(), ToString::to_string);
    let parsed = url::Url::parse(url).ok();
    let param = |name: &str| {
        parsed.as_ref().and_then(|u| {
            u.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        })
    };
    let host = parsed
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "(none)".to_owned());
    let verdict = cause
        .and_then(|cause| cause.downcast_ref::<std::io::Error>())
        .and_then(|io| io.get_ref())
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let Some(rustls::Error::InvalidCertificate(refused)) = verdict else {
        if detail == "server does not support TLS" {
            let mode = param("sslmode").unwrap_or_else(|| "prefer".to_owned());
            return format!(
                "the server does not offer TLS, and sslmode={mode} requires it: turn ssl on in \
                 the server's settings (or, on a trusted network only, use sslmode=prefer) \
                 ({detail})"
            );
        }
        return format!("the handshake failed ({detail})");
    };
    match refused {
        Cert::UnknownIssuer | Cert::BadSignature => match param("sslrootcert") {
            Some(path) => format!(
                "certificate verification failed: the server's certificate is not signed by a \
                 CA of sslrootcert={path}; check that sslrootcert names the CA that issued the \
                 server's certificate ({detail})"
            ),
            None => format!(
                "certificate verification failed: the server's certificate is not signed by any \
                 of the web's root authorities (the URL has no sslrootcert); set \
                 sslrootcert=/path/to/ca.pem to the CA that issued it ({detail})"
            ),
        },
        Cert::NotValidForName | Cert::NotValidForNameContext { .. } => format!(
            "certificate verification failed: the server's certificate does not name the host \
             {host} (verify-full checks the name connected to); connect by a name or address \
             the certificate holds, or give the server a certificate for {host} ({detail})"
        ),
        Cert::Expired | Cert::ExpiredContext { .. } => format!(
            "certificate verification failed: the server's certificate has expired; renew it \
             ({detail})"
        ),
        Cert::NotValidYet | Cert::NotValidYetContext { .. } => format!(
            "certificate verification failed: the server's certificate is not valid yet; check \
             the clocks of this host and of whoever issued it ({detail})"
        ),
        _ => format!("certificate verification failed ({detail})"),
    }
}

/// [`pg_error`] for the pool's errors.
pub(crate) fn pool_error(url: &str, e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_error(url, e),
        PoolError::Closed => StoreError::Closed,
        PoolError::Timeout(kind) => StoreError::PgUnreachable {
            url: url.to_owned(),
            reason: format!("no connection became available in time ({kind:?})"),
        },
        other => StoreError::PgUnreachable {
            url: url.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// Converts a count read from a `bigint` column into the `u32` the typed API uses
/// (a negative or huge value cannot come from ctct-sync's writes; it saturates).
pub(crate) fn to_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// The certificate check of `sslmode=prefer` and `require`: none, as libpq does for them
/// (encryption against passive listeners, no proof of who answers; `verify-full` proves it).
mod unverified {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, Error, SignatureScheme};

    #[derive(Debug)]
    pub(super) struct AnyCertificate;

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &rustls::crypto::ring::default_provider().signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &rustls::crypto::ring::default_provider().signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}
