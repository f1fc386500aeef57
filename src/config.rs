//! Settings: the layered configuration (embedded `config/default.toml` → `--config FILE` →
//! `CTCT_SYNC__SECTION__KEY` environment variables), checked right after loading.
//!
//! Every struct denies unknown fields so a misspelt key fails at start instead of being
//! ignored. Secrets (the client secret, the password inside the AMQP URL) are held in
//! secret types: they never show in `Debug`, and serialising the settings — which is only
//! done to print them — writes `[redacted]` in their place.
//!
//! Each secret setting may instead be read from a file, as Docker and Kubernetes mount
//! secrets: `oauth.client_secret_file`, `amqp.url_file`, `amqp.urls_file`, `store.url_file`
//! and `mirror.url_file` (in the environment `CTCT_SYNC__OAUTH__CLIENT_SECRET_FILE`, …) name
//! a file whose content, trailing newline trimmed, is the value (see [`SECRET_FILES`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

/// The defaults, embedded so the binary runs from any working directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Ten years: past that, "keep forever" (0) says it better.
const MAX_LEDGER_RETENTION_DAYS: u32 = 3650;

/// The secret settings that may be read from a file instead, each with the key naming the
/// file: `(secret, file)`. In the environment, `CTCT_SYNC__OAUTH__CLIENT_SECRET_FILE` and so
/// on. The file's content, less its trailing line breaks, is the value (`amqp.urls_file`: one
/// URI per line, or separated by commas). Setting a secret both ways is refused.
pub const SECRET_FILES: &[(&str, &str)] = &[
    ("oauth.client_secret", "oauth.client_secret_file"),
    ("amqp.url", "amqp.url_file"),
    ("amqp.urls", "amqp.urls_file"),
    ("store.url", "store.url_file"),
    ("mirror.url", "mirror.url_file"),
];

/// Prefix of the environment variables that override settings (`CTCT_SYNC__AMQP__URL`).
pub const ENV_PREFIX: &str = "CTCT_SYNC";

/// The `amqp.reply_to_prefixes` entry that lets a command's `reply_to` name any queue (but
/// the daemon's own).
pub const REPLY_TO_ANY: &str = "*";

/// The most broker nodes `amqp.urls` may list.
pub const MAX_AMQP_NODES: usize = 64;

/// The highest `limits.per_second` accepted: far above any real API key (4, or 10 for
/// partner keys), for the sandbox with its limits off.
pub const MAX_PER_SECOND: u32 = 100_000;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given with `--config` does not exist or cannot be read.
    #[error("configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    /// The `--config` file is not valid TOML. Only where and why are given: the parser's
    /// own message would quote the offending line, and that line may hold a secret.
    #[error("configuration file {path}, line {line}, column {column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A layer could not be parsed, or a key is unknown or of the wrong type. The message
    /// names the key, the value and where it came from.
    #[error("configuration: {0}")]
    Load(config::ConfigError),
    /// A `*_file` setting names a file that cannot be read or holds no value. The path is
    /// given, never anything read from the file.
    #[error("configuration key `{key}` = {path:?}: {reason}")]
    SecretFile {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// A key has a value of the right type that is still not acceptable.
    #[error("configuration key `{key}` = {value}: expected {expected}")]
    Invalid {
        key: &'static str,
        /// The offending value, already redacted when the key is secret.
        value: String,
        expected: String,
    },
}

/// The daemon's whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub amqp: AmqpSettings,
    pub api: ApiSettings,
    pub oauth: OAuthSettings,
    pub store: StoreSettings,
    pub limits: LimitSettings,
    pub mirror: MirrorSettings,
    pub bulk: BulkSettings,
    pub log: LogSettings,
    pub ops: OpsSettings,
}

/// The operations listener (`/metrics`, `/healthz`, `/readyz`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpsSettings {
    pub enabled: bool,
    pub listen: std::net::SocketAddr,
}

/// RabbitMQ connection and topology names.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSettings {
    /// The broker, when it is one node (used when `urls` is empty).
    pub url: AmqpUrl,
    /// The nodes of a RabbitMQ cluster, tried in turn: each connection goes to one of them
    /// and a lost or refused one moves on to the next. When set, `url` is not used.
    #[serde(default)]
    pub urls: Vec<AmqpUrl>,
    /// A file holding `url` (a mounted secret); read at load into `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// A file holding `urls`, one URI per line (or separated by commas); read at load into
    /// `urls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls_file: Option<PathBuf>,
    pub commands_queue: String,
    pub results_exchange: String,
    pub dead_letter_queue: String,
    /// Durable quorum queue for results the broker returned as unroutable.
    pub unrouted_queue: String,
    pub delivery_limit: u32,
    pub prefetch: u16,
    pub workers: u16,
    pub max_attempts: u32,
    pub shutdown_grace_ms: u64,
    /// Queue-name prefixes a command's `reply_to` may name ([`REPLY_TO_ANY`] allows any).
    pub reply_to_prefixes: Vec<String>,
    pub retry_delays_ms: Vec<u64>,
    pub reauth_recheck_ms: u64,
    pub park_jitter_ms: u64,
    /// How long a daemon's claim on a command in progress lasts unless renewed (it renews
    /// every third of this while it works); a daemon that died holding one lets its commands
    /// be taken over by another daemon after this long.
    pub claim_lease_ms: u64,
}

/// Constant Contact API endpoint.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    pub base_url: String,
    /// Accept plain `http://` for a remote API or OAuth2 endpoint (a sandbox in another
    /// container). Loopback addresses are always accepted over http.
    pub allow_insecure_http: bool,
}

/// The OAuth2 application (API key) ctct-sync acts as.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    pub client_id: String,
    #[serde(serialize_with = "redacted")]
    pub client_secret: SecretString,
    /// A file holding `client_secret` (a mounted secret); read at load into `client_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    pub token_url: String,
    pub authorize_url: String,
    pub device_authorize_url: String,
    /// Token revocation endpoint (RFC 7009) used by `auth logout`.
    pub revoke_url: String,
    pub redirect_uri: String,
    pub scopes: String,
}

impl AmqpSettings {
    /// The broker's nodes in the order they are tried: `amqp.urls` when set, else `amqp.url`
    /// alone. Never empty.
    pub fn nodes(&self) -> Vec<AmqpUrl> {
        if self.urls.is_empty() {
            vec![self.url.clone()]
        } else {
            self.urls.clone()
        }
    }

    /// The key the nodes come from (`amqp.urls` or `amqp.url`), for messages.
    pub fn nodes_key(&self) -> &'static str {
        if self.urls.is_empty() {
            "amqp.url"
        } else {
            "amqp.urls"
        }
    }
}

impl OAuthSettings {
    /// True when an application is configured (client id and secret both set).
    pub fn is_configured(&self) -> bool {
        !self.client_id.is_empty() && !self.client_secret.expose_secret().is_empty()
    }
}

/// The daemon's private state: accounts and tokens, the request budget, the command ledger,
/// bulk batches. Where it lives is [`Settings::state_store`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite://path`, `sqlite:///absolute/path` or `postgres://…`; unset means `path`, or
    /// `sqlite://data/ctct-sync.db` when that is unset too.
    #[serde(default)]
    pub url: Option<SecretUrl>,
    /// A file holding `url` (a mounted secret); read at load into `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// The SQLite file of the state store, from before `url` existed (same as
    /// `url = "sqlite://<path>"`). Empty when unset.
    #[serde(default)]
    pub path: PathBuf,
    /// The PostgreSQL schema of the state store.
    #[serde(default = "default_state_schema")]
    pub schema: String,
    /// Days a finished command stays in the ledger (its result replayed to a re-send with
    /// the same id); 0 keeps every one.
    pub ledger_retention_days: u32,
}

fn default_state_schema() -> String {
    "ctct_state".to_owned()
}

fn default_mirror_schema() -> String {
    "ctct_mirror".to_owned()
}

/// The state store's SQLite file when nothing else is configured.
pub const DEFAULT_STATE_FILE: &str = "data/ctct-sync.db";

/// The mirror's SQLite file name, beside the state file when `mirror.url` is unset.
pub const DEFAULT_MIRROR_FILE_NAME: &str = "ctct-mirror.db";

/// Where a store lives: a SQLite file, or a schema in a PostgreSQL database.
#[derive(Clone)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Postgres { url: SecretUrl, schema: String },
}

impl StoreLocation {
    /// Reads a store URL the way sqlx does: `sqlite://relative/path`, `sqlite:///absolute/path`
    /// (also `sqlite:path`), percent-escapes decoded; `postgres://` and `postgresql://` URLs
    /// for PostgreSQL, whose `schema` is checked as a plain identifier. `key` names the setting
    /// in errors.
    pub fn parse(key: &'static str, url: &SecretUrl, schema: &str) -> Result<Self, ConfigError> {
        let raw = url.expose();
        if let Some(rest) = raw.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let sqlite = |reason: &str| invalid(key, quoted(raw), reason);
            if rest.contains('?') || rest.contains('#') {
                return Err(sqlite(
                    "a sqlite:// URL without options (ctct-sync sets the file's options itself)",
                ));
            }
            if rest.is_empty() || rest == ":memory:" || rest.ends_with('/') {
                return Err(sqlite(
                    "a sqlite:// URL naming a file, such as sqlite://data/ctct-sync.db",
                ));
            }
            let decoded = percent_encoding::percent_decode_str(rest)
                .decode_utf8()
                .map_err(|_| sqlite("a sqlite:// URL whose escapes decode to UTF-8"))?;
            return Ok(StoreLocation::Sqlite(PathBuf::from(decoded.as_ref())));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let parsed = url::Url::parse(raw).map_err(|e| {
                invalid(
                    key,
                    quoted(&url.redacted()),
                    format!("a postgres:// URL ({e})"),
                )
            })?;
            if parsed.host_str().is_none_or(str::is_empty)
                && !parsed.query_pairs().any(|(k, _)| k == "host")
            {
                return Err(invalid(
                    key,
                    quoted(&url.redacted()),
                    "a postgres:// URL with a host, such as postgres://ctct@db.internal:5432/ctct",
                ));
            }
            let schema_key = if key == "mirror.url" {
                "mirror.schema"
            } else {
                "store.schema"
            };
            if !is_plain_identifier(schema) {
                return Err(invalid(
                    schema_key,
                    quoted(schema),
                    "a schema name of 1 to 63 lower-case letters, digits and underscores, not starting with a digit",
                ));
            }
            return Ok(StoreLocation::Postgres {
                url: url.clone(),
                schema: schema.to_owned(),
            });
        }
        Err(invalid(
            key,
            quoted(&url.redacted()),
            "a sqlite:// or postgres:// URL, such as sqlite://data/ctct-sync.db or postgres://ctct@db:5432/ctct",
        ))
    }

    /// The file path, or the URL (password masked) and schema: for logs, errors and `doctor`.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Sqlite(path) => path.display().to_string(),
            StoreLocation::Postgres { url, schema } => {
                format!("{} (schema {schema})", url.redacted())
            }
        }
    }

    /// The SQLite file, when the store is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            StoreLocation::Sqlite(path) => Some(path),
            StoreLocation::Postgres { .. } => None,
        }
    }

    /// The same store as a URL setting (`sqlite://…` or the PostgreSQL URL).
    pub fn to_url(&self) -> SecretUrl {
        match self {
            StoreLocation::Sqlite(path) => {
                let shown = path.display().to_string();
                // sqlite:///absolute keeps its leading slash after the scheme's two.
                SecretUrl::new(&format!("sqlite://{shown}"))
            }
            StoreLocation::Postgres { url, .. } => url.clone(),
        }
    }
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            StoreLocation::Postgres { url, schema } => f
                .debug_struct("Postgres")
                .field("url", url)
                .field("schema", schema)
                .finish(),
        }
    }
}

/// True for a lower-case SQL identifier that needs no quoting.
fn is_plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The API key's request budget.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub per_second: u32,
    pub per_day: u32,
    pub mirror_share: f64,
}

/// When the mirror runs (6-field cron expressions, seconds first, UTC).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSettings {
    /// `sqlite://…` or `postgres://…`; unset means `ctct-mirror.db` beside the state store's
    /// file (see [`Settings::mirror_store`]).
    #[serde(default)]
    pub url: Option<SecretUrl>,
    /// A file holding `url` (a mounted secret); read at load into `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// The PostgreSQL schema of the mirror.
    #[serde(default = "default_mirror_schema")]
    pub schema: String,
    pub schedule: String,
    pub incremental_schedule: String,
    /// Campaign reports (`mirror.reports.*`).
    #[serde(default)]
    pub reports: ReportSettings,
    /// Commands naming contacts by e-mail (`contact.tag`, `contact.untag`,
    /// `list.add_contacts`, `list.remove_contacts`) take the ids of the addresses the mirror
    /// knows from it, instead of one `GET /contacts?email=` each, when its last complete
    /// contacts pass (full or incremental) started at most this many seconds ago. 0: never.
    #[serde(default = "default_lookup_max_age_secs")]
    pub lookup_max_age_secs: u64,
}

/// `mirror.lookup_max_age_secs` when unset: 15 minutes.
pub const DEFAULT_LOOKUP_MAX_AGE_SECS: u64 = 900;

fn default_lookup_max_age_secs() -> u64 {
    DEFAULT_LOOKUP_MAX_AGE_SECS
}

/// Campaign reports in the mirror: aggregate statistics for every campaign, per-contact
/// tracking events for activities sent within `days`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Per-contact tracking events are mirrored for activities sent within this many days;
    /// 0 mirrors the aggregate statistics only.
    #[serde(default = "default_report_days")]
    pub days: u32,
    /// Share of the daily quota one UTC day's reporting runs may spend in all. It counts
    /// within `limits.mirror_share` (the mirror's whole share), so the smaller one binds.
    #[serde(default = "default_report_share")]
    pub share: f64,
}

/// At most a year of tracking events: the API keeps them for about that long.
pub const MAX_REPORT_DAYS: u32 = 365;

fn default_report_days() -> u32 {
    30
}

fn default_report_share() -> f64 {
    0.2
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            days: default_report_days(),
            share: default_report_share(),
        }
    }
}

/// Coalescing queued `contact.upsert` commands into bulk JSON imports.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BulkSettings {
    pub enabled: bool,
    pub window_ms: u64,
    /// An upsert reaching an idle daemon goes one by one at once instead of waiting for the
    /// window (issue 20).
    pub idle_one_by_one: bool,
    pub max_batch: u32,
    pub poll_initial_ms: u64,
    pub poll_max_ms: u64,
}

/// Log output.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl<'de> Deserialize<'de> for LogFormat {
    // Hand-written so a wrong value says what is accepted.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        match value.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(serde::de::Error::custom(format!(
                "{other:?} is not a log format, expected \"text\" or \"json\""
            ))),
        }
    }
}

/// A URL that may carry a password (the broker's, a database's), so it is a secret: `Debug`
/// and serialisation show it with the password masked.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(SecretString);

/// The AMQP URI.
pub type AmqpUrl = SecretUrl;

impl SecretUrl {
    pub fn new(url: &str) -> Self {
        Self(SecretString::from(url))
    }

    /// The URL as a secret, for code that connects with it.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// The full URI, password included: only for connecting.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URI with any password replaced by `***`, safe for logs and messages.
    pub fn redacted(&self) -> String {
        redact_url_password(self.0.expose_secret())
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

fn redacted<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    if secret.expose_secret().is_empty() {
        s.serialize_str("")
    } else {
        s.serialize_str("[redacted]")
    }
}

/// Masks the password of a URL; a string that does not parse is masked whole.
fn redact_url_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Setting a password only fails for URLs that cannot have one.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "[unparseable URL, redacted]".to_owned(),
    }
}

impl Settings {
    /// Where the daemon's private state lives: `store.url`, else `store.path`, else
    /// `sqlite://data/ctct-sync.db`.
    pub fn state_store(&self) -> Result<StoreLocation, ConfigError> {
        match &self.store.url {
            Some(url) => StoreLocation::parse("store.url", url, &self.store.schema),
            None if !self.store.path.as_os_str().is_empty() => {
                Ok(StoreLocation::Sqlite(self.store.path.clone()))
            }
            None => Ok(StoreLocation::Sqlite(PathBuf::from(DEFAULT_STATE_FILE))),
        }
    }

    /// Where the mirror lives: `mirror.url`, else `ctct-mirror.db` in the state file's
    /// directory (so one volume keeps both), else — the state on PostgreSQL —
    /// `data/ctct-mirror.db`.
    pub fn mirror_store(&self) -> Result<StoreLocation, ConfigError> {
        if let Some(url) = &self.mirror.url {
            return StoreLocation::parse("mirror.url", url, &self.mirror.schema);
        }
        let dir = match self.state_store()? {
            StoreLocation::Sqlite(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            StoreLocation::Postgres { .. } => PathBuf::from(DEFAULT_STATE_FILE)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        };
        Ok(StoreLocation::Sqlite(dir.join(DEFAULT_MIRROR_FILE_NAME)))
    }

    /// Loads the layers: embedded defaults, then `file` if given, then the `CTCT_SYNC__*`
    /// entries of `env` (pass `std::env::vars().collect()` in production, a map in tests).
    pub fn load(file: Option<&Path>, env: HashMap<String, String>) -> Result<Self, ConfigError> {
        // The layers a person wrote (file, environment), kept apart from the defaults so that
        // a secret given both itself and by file is told from one given by file alone.
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            // Checked here so a missing file gets a plain message; the config crate then
            // reads it itself so that its errors name the file.
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            check_syntax(path, &text)?;
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("amqp.urls")
                .with_list_parse_key("amqp.reply_to_prefixes")
                .with_list_parse_key("amqp.retry_delays_ms")
                .source(Some(env)),
        );
        let given = builder.build()?;
        let mut settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .add_source(given.clone())
            .build()?
            .try_deserialize()?;
        settings.read_secret_files(|key| given.get::<config::Value>(key).is_ok())?;
        settings.validate()?;
        Ok(settings)
    }

    /// Reads every `*_file` setting that is set into its secret (see [`SECRET_FILES`]).
    /// `given(key)` says whether a person set `key` itself (in the file or the environment):
    /// a secret set both ways is refused, naming both keys.
    fn read_secret_files(&mut self, given: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
        for &(key, file_key) in SECRET_FILES {
            let path = match file_key {
                "oauth.client_secret_file" => self.oauth.client_secret_file.clone(),
                "amqp.url_file" => self.amqp.url_file.clone(),
                "amqp.urls_file" => self.amqp.urls_file.clone(),
                "store.url_file" => self.store.url_file.clone(),
                "mirror.url_file" => self.mirror.url_file.clone(),
                other => unreachable!("{other} is not in SECRET_FILES"),
            };
            let Some(path) = path else { continue };
            if given(key) {
                return Err(invalid(
                    file_key,
                    quoted(&path.display().to_string()),
                    format!("{key} or {file_key}, not both (both are set)"),
                ));
            }
            let value = read_secret_file(file_key, &path)?;
            match key {
                "oauth.client_secret" => self.oauth.client_secret = value,
                "amqp.url" => self.amqp.url = SecretUrl(value),
                "amqp.urls" => {
                    // As in CTCT_SYNC__AMQP__URLS, commas separate URIs too.
                    self.amqp.urls = value
                        .expose_secret()
                        .split(['\n', ','])
                        .map(|line| line.trim_end_matches('\r'))
                        .filter(|uri| !uri.trim().is_empty())
                        .map(SecretUrl::new)
                        .collect();
                }
                "store.url" => self.store.url = Some(SecretUrl(value)),
                "mirror.url" => self.mirror.url = Some(SecretUrl(value)),
                other => unreachable!("{other} is not in SECRET_FILES"),
            }
        }
        Ok(())
    }

    /// Checks what types alone cannot: URLs, cron expressions, sane limits, names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if lapin::uri::AMQPUri::from_str(self.amqp.url.expose()).is_err() {
            return Err(invalid(
                "amqp.url",
                quoted(&self.amqp.url.redacted()),
                "an AMQP URI such as amqp://user:password@host:5672/%2f",
            ));
        }
        for (i, url) in self.amqp.urls.iter().enumerate() {
            if lapin::uri::AMQPUri::from_str(url.expose()).is_err() {
                let shown = if url.expose().is_empty() {
                    String::new()
                } else {
                    url.redacted()
                };
                return Err(invalid(
                    "amqp.urls",
                    quoted(&shown),
                    "a list of AMQP URIs, one per node, such as \
                     [\"amqp://user:password@mq-1:5672/%2f\", \"amqp://user:password@mq-2:5672/%2f\"] \
                     (in CTCT_SYNC__AMQP__URLS: separated by commas)",
                ));
            }
            if self.amqp.urls[..i]
                .iter()
                .any(|u| u.expose() == url.expose())
            {
                return Err(invalid(
                    "amqp.urls",
                    quoted(&url.redacted()),
                    "each node once",
                ));
            }
        }
        if self.amqp.urls.len() > MAX_AMQP_NODES {
            return Err(invalid(
                "amqp.urls",
                format!("{} URIs", self.amqp.urls.len()),
                "at most 64 nodes",
            ));
        }
        for (key, name) in [
            ("amqp.commands_queue", &self.amqp.commands_queue),
            ("amqp.results_exchange", &self.amqp.results_exchange),
            ("amqp.dead_letter_queue", &self.amqp.dead_letter_queue),
            ("amqp.unrouted_queue", &self.amqp.unrouted_queue),
        ] {
            if name.is_empty() || name.len() > 255 || name.starts_with("amq.") {
                return Err(invalid(
                    key,
                    quoted(name),
                    "a name of 1 to 255 bytes that does not start with `amq.`",
                ));
            }
        }
        if let Some(bad) = self
            .amqp
            .reply_to_prefixes
            .iter()
            .find(|p| p.is_empty() || p.len() > 255)
        {
            return Err(invalid(
                "amqp.reply_to_prefixes",
                quoted(bad),
                "queue-name prefixes of 1 to 255 bytes (\"*\" allows any queue)",
            ));
        }
        if !(2..=1000).contains(&self.amqp.delivery_limit) {
            return Err(invalid(
                "amqp.delivery_limit",
                self.amqp.delivery_limit.to_string(),
                "a whole number from 2 to 1000",
            ));
        }
        if !(1..=256).contains(&self.amqp.workers) {
            return Err(invalid(
                "amqp.workers",
                self.amqp.workers.to_string(),
                "a whole number from 1 to 256",
            ));
        }
        if self.amqp.prefetch < self.amqp.workers {
            return Err(invalid(
                "amqp.prefetch",
                self.amqp.prefetch.to_string(),
                "a whole number at least amqp.workers (each worker needs a message in hand)",
            ));
        }
        if self.amqp.retry_delays_ms.is_empty()
            || self.amqp.retry_delays_ms.len() > 10
            || self
                .amqp
                .retry_delays_ms
                .iter()
                .any(|ms| !(100..=86_400_000).contains(ms))
        {
            return Err(invalid(
                "amqp.retry_delays_ms",
                format!("{:?}", self.amqp.retry_delays_ms),
                "1 to 10 delays, each from 100 ms to one day",
            ));
        }
        if !(100..=3_600_000).contains(&self.amqp.reauth_recheck_ms) {
            return Err(invalid(
                "amqp.reauth_recheck_ms",
                self.amqp.reauth_recheck_ms.to_string(),
                "a whole number of milliseconds from 100 to 3600000",
            ));
        }
        if !(10..=60_000).contains(&self.bulk.window_ms) {
            return Err(invalid(
                "bulk.window_ms",
                self.bulk.window_ms.to_string(),
                "a whole number of milliseconds from 10 to 60000",
            ));
        }
        if !(3..=40_000).contains(&self.bulk.max_batch) {
            return Err(invalid(
                "bulk.max_batch",
                self.bulk.max_batch.to_string(),
                "a whole number from 3 to 40000 (the import's row limit)",
            ));
        }
        if !(100..=60_000).contains(&self.bulk.poll_initial_ms)
            || !(self.bulk.poll_initial_ms..=300_000).contains(&self.bulk.poll_max_ms)
        {
            return Err(invalid(
                "bulk.poll_max_ms",
                format!("{}/{}", self.bulk.poll_initial_ms, self.bulk.poll_max_ms),
                "poll_initial_ms from 100 to 60000 and poll_max_ms from poll_initial_ms to 300000",
            ));
        }
        if !(1..=100).contains(&self.amqp.max_attempts) {
            return Err(invalid(
                "amqp.max_attempts",
                self.amqp.max_attempts.to_string(),
                "a whole number from 1 to 100",
            ));
        }
        // The client secret and tokens travel to every URL but the redirect URI, which is
        // our own listener: only those may not be plain http to another machine.
        for (key, value, carries_secrets) in [
            ("api.base_url", &self.api.base_url, true),
            ("oauth.token_url", &self.oauth.token_url, true),
            ("oauth.authorize_url", &self.oauth.authorize_url, true),
            (
                "oauth.device_authorize_url",
                &self.oauth.device_authorize_url,
                true,
            ),
            ("oauth.revoke_url", &self.oauth.revoke_url, true),
            ("oauth.redirect_uri", &self.oauth.redirect_uri, false),
        ] {
            check_http_url(key, value)?;
            if carries_secrets && !self.api.allow_insecure_http {
                check_not_remote_http(key, value)?;
            }
        }
        if self.oauth.client_id.is_empty() != self.oauth.client_secret.expose_secret().is_empty() {
            let (key, value) = if self.oauth.client_id.is_empty() {
                ("oauth.client_id", quoted(""))
            } else {
                ("oauth.client_secret", quoted(""))
            };
            return Err(invalid(
                key,
                value,
                "oauth.client_id and oauth.client_secret to be set together (or both empty)",
            ));
        }
        if !self
            .oauth
            .scopes
            .split_whitespace()
            .any(|s| s == "offline_access")
        {
            return Err(invalid(
                "oauth.scopes",
                quoted(&self.oauth.scopes),
                "a space-separated scope list that includes offline_access (without it no refresh token is issued)",
            ));
        }
        if self.store.url.is_some() && !self.store.path.as_os_str().is_empty() {
            return Err(invalid(
                "store.path",
                quoted(&self.store.path.display().to_string()),
                "unset when store.url is set (store.path is the older spelling of store.url = \"sqlite://<path>\")",
            ));
        }
        let state = self.state_store()?;
        let mirror = self.mirror_store()?;
        if let (Some(a), Some(b)) = (state.sqlite_path(), mirror.sqlite_path())
            && a == b
        {
            return Err(invalid(
                "mirror.url",
                quoted(&mirror.describe()),
                "another file than the state store's (the mirror is readable by analysts; the state holds tokens)",
            ));
        }
        if let (
            StoreLocation::Postgres { url: a, schema: sa },
            StoreLocation::Postgres { url: b, schema: sb },
        ) = (&state, &mirror)
            && a.expose() == b.expose()
            && sa == sb
        {
            return Err(invalid(
                "mirror.schema",
                quoted(sb),
                "another schema than store.schema when both stores use the same database",
            ));
        }
        if !(1..=MAX_PER_SECOND).contains(&self.limits.per_second) {
            return Err(invalid(
                "limits.per_second",
                self.limits.per_second.to_string(),
                "a whole number from 1 to 100000",
            ));
        }
        if !(0.0..=1.0).contains(&self.limits.mirror_share) {
            return Err(invalid(
                "limits.mirror_share",
                self.limits.mirror_share.to_string(),
                "a fraction from 0.0 to 1.0",
            ));
        }
        if self.store.ledger_retention_days > MAX_LEDGER_RETENTION_DAYS {
            return Err(invalid(
                "store.ledger_retention_days",
                self.store.ledger_retention_days.to_string(),
                "a number of days from 1 to 3650, or 0 to keep every finished command",
            ));
        }
        if self.limits.per_day == 0 {
            return Err(invalid(
                "limits.per_day",
                "0".into(),
                "a whole number above 0",
            ));
        }
        if self.mirror.reports.days > MAX_REPORT_DAYS {
            return Err(invalid(
                "mirror.reports.days",
                self.mirror.reports.days.to_string(),
                "a number of days from 1 to 365, or 0 for the aggregate statistics only",
            ));
        }
        if !(0.0..=1.0).contains(&self.mirror.reports.share) {
            return Err(invalid(
                "mirror.reports.share",
                self.mirror.reports.share.to_string(),
                "a fraction from 0.0 to 1.0 (within limits.mirror_share)",
            ));
        }
        check_cron("mirror.schedule", &self.mirror.schedule)?;
        check_cron(
            "mirror.incremental_schedule",
            &self.mirror.incremental_schedule,
        )?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                quoted(&self.log.level),
                "a tracing filter such as \"info\" or \"ctct_sync=debug,info\"",
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML, every secret redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# could not render settings: {e}\n"))
    }

    /// The effective configuration as a JSON object, every secret redacted: the same
    /// serialisation as [`Settings::to_redacted_toml`] (and so the same redaction), with the
    /// optional keys TOML leaves out when unset (`store.url`, `mirror.url`) as null.
    pub fn to_redacted_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

impl From<config::ConfigError> for ConfigError {
    fn from(error: config::ConfigError) -> Self {
        ConfigError::Load(error)
    }
}

fn invalid(key: &'static str, value: String, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        value,
        expected: expected.into(),
    }
}

fn quoted(value: &str) -> String {
    format!("{value:?}")
}

/// The content of the secret file `path` named by `key`, less its trailing line breaks.
/// Errors name the key and the path, and never quote the content.
fn read_secret_file(key: &'static str, path: &Path) -> Result<SecretString, ConfigError> {
    let failed = |reason: String| ConfigError::SecretFile {
        key,
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| failed(format!("cannot read the file: {e}")))?;
    // Not `String::from_utf8(..)?`: its error would carry the bytes.
    let Ok(mut text) = String::from_utf8(bytes) else {
        return Err(failed("the file is not UTF-8 text".to_owned()));
    };
    let kept = text.trim_end_matches(['\r', '\n']).len();
    text.truncate(kept);
    if text.trim().is_empty() {
        return Err(failed("the file is empty".to_owned()));
    }
    Ok(SecretString::from(text))
}

fn check_http_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(invalid(key, quoted(value), "an absolute http(s) URL")),
    }
}

/// Parses the file once on its own so that a syntax error is reported by position only
/// (the `config` crate's error would echo the line, `client_secret = "…` included).
fn check_syntax(path: &Path, text: &str) -> Result<(), ConfigError> {
    let Err(error) = toml::from_str::<toml::Table>(text) else {
        return Ok(());
    };
    let at = error.span().map_or(0, |span| span.start).min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    // The message is the parser's reason ("invalid string", "expected `=`"); only its first
    // line is kept, which never quotes the input.
    let message = error
        .message()
        .lines()
        .next()
        .unwrap_or("invalid TOML")
        .to_owned();
    Err(ConfigError::Syntax {
        path: path.to_owned(),
        line,
        column,
        message,
    })
}

/// Refuses `http://` to anything but this machine (127.0.0.0/8, ::1, localhost).
fn check_not_remote_http(key: &'static str, value: &str) -> Result<(), ConfigError> {
    let Ok(url) = url::Url::parse(value) else {
        return Ok(());
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        return Err(invalid(
            key,
            quoted(value),
            "an https URL: plain http to another machine carries the client secret and tokens \
             unencrypted (http is accepted for 127.0.0.0/8, ::1 and localhost, or anywhere with \
             api.allow_insecure_http = true)",
        ));
    }
    Ok(())
}

fn check_cron(key: &'static str, value: &str) -> Result<(), ConfigError> {
    let fields = value.split_whitespace().count();
    let parsed = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(value);
    match parsed {
        Ok(_) if fields == 6 => Ok(()),
        _ => Err(invalid(
            key,
            quoted(value),
            "a 6-field cron expression with seconds first, in UTC, e.g. \"0 0 2 * * *\"",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(raw: &str) -> Result<StoreLocation, ConfigError> {
        StoreLocation::parse("store.url", &SecretUrl::new(raw), "ctct_state")
    }

    fn sqlite(raw: &str) -> PathBuf {
        match location(raw) {
            Ok(StoreLocation::Sqlite(path)) => path,
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn sqlite_urls_follow_sqlx() {
        assert_eq!(
            sqlite("sqlite://data/ctct-sync.db"),
            Path::new("data/ctct-sync.db")
        );
        assert_eq!(
            sqlite("sqlite:///var/lib/ctct-sync/state.db"),
            Path::new("/var/lib/ctct-sync/state.db")
        );
        assert_eq!(sqlite("sqlite:state.db"), Path::new("state.db"));
        assert_eq!(sqlite("sqlite://my%20data/s.db"), Path::new("my data/s.db"));
        for refused in [
            "sqlite::memory:",
            "sqlite://",
            "sqlite://data/",
            "sqlite://data/s.db?mode=ro",
            "mysql://db/ctct",
            "data/ctct-sync.db",
        ] {
            let error = location(refused).expect_err(refused).to_string();
            assert!(error.contains("store.url"), "{refused}: {error}");
        }
    }

    #[test]
    fn a_sqlite_location_turns_back_into_the_same_url() {
        for raw in ["sqlite://data/ctct-sync.db", "sqlite:///srv/ctct/state.db"] {
            let url = location(raw).unwrap().to_url();
            assert_eq!(url.expose(), raw);
        }
    }

    #[test]
    fn postgres_urls_keep_their_password_out_of_every_message() {
        let raw = "postgres://ctct:hunter2@db.internal:5432/ctct?sslmode=verify-full";
        let StoreLocation::Postgres { url, schema } = location(raw).unwrap() else {
            panic!("a PostgreSQL location");
        };
        assert_eq!(url.expose(), raw);
        assert_eq!(schema, "ctct_state");
        let shown = location(raw).unwrap();
        for text in [shown.describe(), format!("{shown:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("db.internal"), "{text}");
        }
        assert!(location("postgresql://ctct@db/ctct").is_ok());
        let error = StoreLocation::parse(
            "store.url",
            &SecretUrl::new("postgres://ctct:hunter2@db/ctct"),
            "Bad-Schema",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("store.schema"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let error = location("postgres://ctct:hunter2@/ctct")
            .unwrap_err()
            .to_string();
        assert!(error.contains("host"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    fn defaults() -> Settings {
        Settings::load(None, HashMap::new()).expect("the defaults load")
    }

    #[test]
    fn the_mirror_goes_beside_the_state_file_unless_it_has_a_url() {
        let mut settings = defaults();
        settings.store.path = PathBuf::from("/var/lib/ctct-sync/ctct-sync.db");
        assert_eq!(
            settings.mirror_store().unwrap().sqlite_path(),
            Some(Path::new("/var/lib/ctct-sync/ctct-mirror.db"))
        );
        settings.store.path = PathBuf::new();
        settings.store.url = Some(SecretUrl::new("sqlite:///srv/state/s.db"));
        assert_eq!(
            settings.mirror_store().unwrap().sqlite_path(),
            Some(Path::new("/srv/state/ctct-mirror.db"))
        );
        settings.mirror.url = Some(SecretUrl::new("sqlite:///srv/mirror/m.db"));
        assert_eq!(
            settings.mirror_store().unwrap().sqlite_path(),
            Some(Path::new("/srv/mirror/m.db"))
        );
    }

    #[test]
    fn conflicting_store_settings_are_refused_by_name() {
        let mut settings = defaults();
        settings.store.url = Some(SecretUrl::new("sqlite://a.db"));
        settings.store.path = PathBuf::from("b.db");
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("store.path")
        );

        let mut settings = defaults();
        settings.mirror.url = Some(SecretUrl::new("sqlite://data/ctct-sync.db"));
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("mirror.url")
        );

        let mut settings = defaults();
        settings.store.url = Some(SecretUrl::new("postgres://ctct:hunter2@db/ctct"));
        settings.mirror.url = Some(SecretUrl::new("postgres://ctct:hunter2@db/ctct"));
        settings.mirror.schema = "ctct_state".into();
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("mirror.schema"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        settings.mirror.schema = "ctct_mirror".into();
        settings.validate().expect("one database, two schemas");
        let shown = settings.to_redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    /// The environment variable of a setting: `oauth.client_secret_file` →
    /// `CTCT_SYNC__OAUTH__CLIENT_SECRET_FILE`.
    fn env_var(key: &str) -> String {
        format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase())
    }

    fn secret_file(dir: &tempfile::TempDir, name: &str, content: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn load_env(pairs: &[(&str, &Path)]) -> Result<Settings, ConfigError> {
        let env = pairs
            .iter()
            .map(|(k, v)| (env_var(k), v.display().to_string()))
            .collect();
        Settings::load(None, env)
    }

    #[test]
    fn every_secret_may_be_read_from_a_file_named_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let client = secret_file(&dir, "client", "cl13nt-s3cret\n");
        let amqp = secret_file(&dir, "amqp", "amqp://ctct:mq-pass@mq:5672/%2f\r\n");
        let nodes = secret_file(
            &dir,
            "nodes",
            "amqp://ctct:mq-pass@mq-1:5672/%2f\namqp://ctct:mq-pass@mq-2:5672/%2f,amqp://ctct:mq-pass@mq-3:5672/%2f\n\n",
        );
        let state = secret_file(&dir, "state", "postgres://ctct:pg-pass@db:5432/ctct\n");
        let mirror = secret_file(&dir, "mirror", "postgres://ctct:pg-pass@db:5432/ctct");
        let env = HashMap::from([
            (env_var("oauth.client_id"), "id-1".to_owned()),
            (
                env_var("oauth.client_secret_file"),
                client.display().to_string(),
            ),
            (env_var("amqp.url_file"), amqp.display().to_string()),
            (env_var("amqp.urls_file"), nodes.display().to_string()),
            (env_var("store.url_file"), state.display().to_string()),
            (env_var("mirror.url_file"), mirror.display().to_string()),
        ]);
        let settings = Settings::load(None, env).expect("the files are read");
        assert_eq!(
            settings.oauth.client_secret.expose_secret(),
            "cl13nt-s3cret"
        );
        assert_eq!(
            settings.amqp.url.expose(),
            "amqp://ctct:mq-pass@mq:5672/%2f"
        );
        let nodes: Vec<&str> = settings.amqp.urls.iter().map(SecretUrl::expose).collect();
        assert_eq!(
            nodes,
            [
                "amqp://ctct:mq-pass@mq-1:5672/%2f",
                "amqp://ctct:mq-pass@mq-2:5672/%2f",
                "amqp://ctct:mq-pass@mq-3:5672/%2f"
            ]
        );
        for store in [settings.store.url.as_ref(), settings.mirror.url.as_ref()] {
            assert_eq!(
                store.map(SecretUrl::expose),
                Some("postgres://ctct:pg-pass@db:5432/ctct")
            );
        }
        assert!(matches!(
            settings.state_store().unwrap(),
            StoreLocation::Postgres { .. }
        ));
        // The secrets stay secret: where they came from shows, never what they are.
        for text in [format!("{settings:?}"), settings.to_redacted_toml()] {
            for secret in ["cl13nt-s3cret", "mq-pass", "pg-pass"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            assert!(text.contains(&client.display().to_string()), "{text}");
        }
    }

    #[test]
    fn the_json_form_holds_the_toml_s_settings_with_the_same_secrets_redacted() {
        let env = HashMap::from([
            (env_var("oauth.client_id"), "id-1".to_owned()),
            (env_var("oauth.client_secret"), "cl13nt-s3cret".to_owned()),
            (
                env_var("amqp.url"),
                "amqp://ctct:mq-pass@mq:5672/%2f".to_owned(),
            ),
            (
                env_var("store.url"),
                "postgres://ctct:pg-pass@db:5432/ctct".to_owned(),
            ),
            (
                env_var("mirror.url"),
                "postgres://ctct:pg-pass@db:5432/ctct".to_owned(),
            ),
        ]);
        let settings = Settings::load(None, env).expect("valid");
        let json = settings.to_redacted_json().expect("the settings serialise");
        let text = json.to_string();
        for secret in ["cl13nt-s3cret", "mq-pass", "pg-pass"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(json["oauth"]["client_id"], "id-1");
        assert_eq!(json["oauth"]["client_secret"], "[redacted]");
        assert_eq!(json["amqp"]["url"], "amqp://ctct:***@mq:5672/%2f");
        assert_eq!(json["store"]["url"], "postgres://ctct:***@db:5432/ctct");
        assert_eq!(json["mirror"]["url"], "postgres://ctct:***@db:5432/ctct");
        // The TOML printed by `config`, read back, is the same document.
        let toml: toml::Value = toml::from_str(&settings.to_redacted_toml()).unwrap();
        assert_eq!(serde_json::to_value(toml).unwrap(), json);
    }

    #[test]
    fn the_json_form_shows_unset_store_urls_as_null_and_an_unset_secret_as_empty() {
        let json = defaults()
            .to_redacted_json()
            .expect("the settings serialise");
        assert_eq!(json["store"]["url"], serde_json::Value::Null);
        assert_eq!(json["mirror"]["url"], serde_json::Value::Null);
        assert_eq!(json["oauth"]["client_secret"], "");
        let toml: toml::Value = toml::from_str(&defaults().to_redacted_toml()).unwrap();
        let mut without_nulls = json.clone();
        for section in ["store", "mirror"] {
            without_nulls[section]
                .as_object_mut()
                .expect("a section is an object")
                .remove("url");
        }
        assert_eq!(serde_json::to_value(toml).unwrap(), without_nulls);
    }

    #[test]
    fn a_secret_file_may_be_named_in_the_configuration_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let secret = secret_file(&dir, "client", "from-a-file\n");
        let config = secret_file(
            &dir,
            "site.toml",
            &format!(
                "[oauth]\nclient_id = \"id-1\"\nclient_secret_file = {:?}\n",
                secret.display().to_string()
            ),
        );
        let settings = Settings::load(Some(&config), HashMap::new()).expect("valid");
        assert_eq!(settings.oauth.client_secret.expose_secret(), "from-a-file");
        assert!(settings.oauth.is_configured());
    }

    #[test]
    fn an_unreadable_or_empty_secret_file_is_refused_naming_the_setting_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-secret");
        let empty = secret_file(&dir, "empty", "\n");
        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        for &(_, file_key) in SECRET_FILES {
            for (path, why) in [
                (&missing, "cannot read the file"),
                (&empty, "the file is empty"),
                (&binary, "not UTF-8"),
                (&dir.path().to_path_buf(), "cannot read the file"),
            ] {
                let error = load_env(&[(file_key, path)]).unwrap_err();
                let text = error.to_string();
                assert!(matches!(error, ConfigError::SecretFile { .. }), "{text}");
                assert!(text.contains(file_key), "{text}");
                assert!(text.contains(&path.display().to_string()), "{text}");
                assert!(text.contains(why), "{text}");
            }
        }
    }

    #[test]
    fn a_secret_set_both_itself_and_by_file_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let file = secret_file(&dir, "secret", "postgres://ctct:in-the-file@db/ctct\n");
        for &(key, file_key) in SECRET_FILES {
            let value = match key {
                "oauth.client_secret" => "in-the-environment",
                _ => "amqp://ctct:in-the-environment@mq:5672/%2f",
            };
            let env = HashMap::from([
                (env_var(key), value.to_owned()),
                (env_var(file_key), file.display().to_string()),
            ]);
            let text = Settings::load(None, env).unwrap_err().to_string();
            assert!(text.contains(&format!("{key} or {file_key}")), "{text}");
            assert!(!text.contains("in-the-environment"), "{text}");
            assert!(!text.contains("in-the-file"), "{text}");
        }
        // Also when one comes from the configuration file and the other from the environment,
        // and when the value given is the default's.
        let config = secret_file(&dir, "site.toml", "[oauth]\nclient_secret = \"\"\n");
        let env = HashMap::from([(
            env_var("oauth.client_secret_file"),
            file.display().to_string(),
        )]);
        let text = Settings::load(Some(&config), env).unwrap_err().to_string();
        assert!(
            text.contains("oauth.client_secret or oauth.client_secret_file"),
            "{text}"
        );
    }

    #[test]
    fn a_bad_value_read_from_a_file_is_refused_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = secret_file(&dir, "secret", "not a url with hunter2\n");
        for file_key in [
            "amqp.url_file",
            "amqp.urls_file",
            "store.url_file",
            "mirror.url_file",
        ] {
            let text = load_env(&[(file_key, &file)]).unwrap_err().to_string();
            let key = file_key.trim_end_matches("_file");
            assert!(text.contains(key), "{file_key}: {text}");
            assert!(!text.contains("hunter2"), "{file_key}: {text}");
        }
    }

    #[test]
    fn url_password_is_masked_and_the_rest_kept() {
        assert_eq!(
            redact_url_password("amqp://guest:s3cret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
    }

    #[test]
    fn url_without_password_is_unchanged() {
        assert_eq!(
            redact_url_password("amqp://127.0.0.1:5672/%2f"),
            "amqp://127.0.0.1:5672/%2f"
        );
    }

    #[test]
    fn unparseable_url_is_masked_whole() {
        assert!(!redact_url_password("not a url with s3cret").contains("s3cret"));
    }
}
