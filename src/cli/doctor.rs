//! `ctct-sync doctor`: checks everything the daemon depends on and says what to do about each
//! failure. It changes nothing, except that the API check spends one request per account.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde::Serialize;

use crate::api::{self, ApiError};
use crate::cli::json;
use crate::clock::SystemClock;
use crate::config::{SecretUrl, Settings, StoreLocation};
use crate::store::tokens::AccountState;
use crate::store::{PgStore, StoreError, migrate};

/// Scopes the daemon's commands and mirror need.
const NEEDED_SCOPES: [&str; 5] = [
    "contact_data",
    "campaign_data",
    "account_read",
    "account_update",
    "offline_access",
];

/// What a store's check leaves for the account checks, which open both stores the way the
/// daemon does (and so would migrate them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// At this ctct-sync's version: the account checks can open it as it is.
    Current,
    /// Missing or older than this ctct-sync: opening it would create or migrate it, which
    /// the doctor leaves to `ctct-sync migrate` or the daemon.
    Behind,
    /// Unreachable, unreadable or newer: already a failed check.
    Unusable,
}

/// Arguments of `ctct-sync doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON document instead of the table: every check with its name, status
    /// (ok, warn, fail), detail and advice, and the count of checks by status. The exit code
    /// is the same.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    /// The status as `--json` writes it.
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

struct Check {
    name: String,
    status: Status,
    detail: String,
    advice: String,
}

impl Check {
    fn new(
        name: &str,
        status: Status,
        detail: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            status,
            detail: detail.into(),
            advice: advice.into(),
        }
    }
}

/// Runs every check, prints the table (or with `--json` the document), and exits 1 when any
/// check failed.
pub async fn run(config: Option<&Path>, args: DoctorArgs) -> ExitCode {
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut checks = Vec::new();
    let settings = match Settings::load(config, env) {
        Ok(settings) => {
            checks.push(Check::new(
                "configuration",
                Status::Ok,
                "loaded and valid",
                "",
            ));
            settings
        }
        Err(error) => {
            checks.push(Check::new(
                "configuration",
                Status::Fail,
                error.to_string(),
                "fix the key named above (config/default.toml documents every key); nothing else can be checked",
            ));
            return report(&checks, args.json);
        }
    };
    checks.push(broker(&settings).await);
    let state = match settings.state_store() {
        Ok(StoreLocation::Sqlite(path)) => store(&path, &mut checks),
        Ok(StoreLocation::Postgres { url, schema }) => {
            let latest = migrate::latest_postgres_version();
            postgres_store("store", &url, &schema, latest, &mut checks).await
        }
        Err(error) => {
            checks.push(Check::new(
                "store",
                Status::Fail,
                error.to_string(),
                "fix store.url",
            ));
            Schema::Unusable
        }
    };
    let mirror = match settings.mirror_store() {
        Ok(StoreLocation::Sqlite(path)) => mirror_file(&path, &mut checks),
        Ok(StoreLocation::Postgres { url, schema }) => {
            let latest = migrate::latest_postgres_mirror_version();
            postgres_store("mirror", &url, &schema, latest, &mut checks).await
        }
        Err(error) => {
            checks.push(Check::new(
                "mirror",
                Status::Fail,
                error.to_string(),
                "fix mirror.url",
            ));
            Schema::Unusable
        }
    };
    match (state, mirror) {
        (Schema::Current, Schema::Current) => accounts_and_api(&settings, &mut checks).await,
        (Schema::Unusable, _) | (_, Schema::Unusable) => {}
        _ => checks.push(Check::new(
            "accounts",
            Status::Warn,
            "not checked: a store is missing or older than this ctct-sync, and the doctor changes nothing",
            "run `ctct-sync migrate`, then `ctct-sync doctor` again",
        )),
    }
    report(&checks, args.json)
}

/// Prints the checks as a table or a JSON document; exit code 1 when a check failed, 2 when
/// the document could not be written.
fn report(checks: &[Check], json: bool) -> ExitCode {
    if json {
        if let Err(error) = json::print(&DoctorDocument::of(checks)) {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    } else {
        print(checks);
    }
    if checks.iter().any(|c| c.status == Status::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Connects to each broker node (all at once, at most 5 s each), then looks for the commands
/// queue through the first that answered. With several nodes (`amqp.urls`) some may be down:
/// a warning, since the daemon uses the others; none answering is a failure.
async fn broker(settings: &Settings) -> Check {
    let key = settings.amqp.nodes_key();
    let nodes = settings.amqp.nodes();
    let attempts = futures_util::future::join_all(nodes.iter().map(|url| async move {
        let connected = tokio::time::timeout(
            Duration::from_secs(5),
            crate::amqp::connect(url.expose(), "ctct-sync doctor"),
        )
        .await;
        let outcome = match connected {
            Err(_) => Err("no answer within 5 s".to_owned()),
            Ok(Err(error)) => Err(error.to_string()),
            Ok(Ok(connection)) => Ok(connection),
        };
        (url.redacted(), outcome)
    }))
    .await;
    let mut connections = Vec::new();
    let mut down = Vec::new();
    for (shown, outcome) in attempts {
        match outcome {
            Ok(connection) => connections.push((shown, connection)),
            Err(error) => down.push(format!("{shown}: {error}")),
        }
    }
    let Some((first, connection)) = connections.first() else {
        return Check::new("broker", Status::Fail, down.join("; "), broker_advice(key));
    };
    let reached = if nodes.len() == 1 {
        format!("{first}: connected")
    } else if down.is_empty() {
        format!("all {} nodes of {key} connected", nodes.len())
    } else {
        format!(
            "{}; {} of {} nodes connected",
            down.join("; "),
            connections.len(),
            nodes.len()
        )
    };
    let queue = &settings.amqp.commands_queue;
    let result = match connection.create_channel().await {
        Ok(channel) => channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.message_count()),
        Err(error) => Err(error),
    };
    for (_, connection) in &connections {
        let _ = connection.close(200, "doctor done".into()).await;
    }
    let (status, detail, advice) = match result {
        Ok(depth) => (
            Status::Ok,
            format!("{reached}; {queue} holds {depth} message(s)"),
            String::new(),
        ),
        Err(_) => (
            Status::Warn,
            format!("{reached}; queue {queue} does not exist yet"),
            "start the daemon once (`ctct-sync run`): it declares its queues and exchanges".into(),
        ),
    };
    if down.is_empty() {
        return Check::new("broker", status, detail, advice);
    }
    Check::new(
        "broker",
        Status::Warn,
        detail,
        format!(
            "start the nodes that do not answer or fix {key}; the daemon uses the others meanwhile"
        ),
    )
}

fn broker_advice(key: &str) -> String {
    format!(
        "start RabbitMQ (`rabbitmq-server -detached`, or `systemctl start rabbitmq-server`) or fix {key}"
    )
}

/// Checks a store on PostgreSQL without changing it (`what` is `store` or `mirror`): that
/// the server answers and takes the login, and the version in the schema's
/// `schema_migrations`. The URL is shown without its password.
async fn postgres_store(
    what: &str,
    url: &SecretUrl,
    schema: &str,
    latest: u32,
    checks: &mut Vec<Check>,
) -> Schema {
    let shown = format!("{} (schema {schema})", url.redacted());
    let read = tokio::time::timeout(
        Duration::from_secs(15),
        PgStore::schema_version(url.secret(), schema),
    )
    .await;
    let version = match read {
        Err(_) => {
            checks.push(Check::new(
                what,
                Status::Fail,
                format!("{shown}: unreachable: no answer within 15 s"),
                format!("start PostgreSQL or fix {what}.url (the daemon waits for it at start)"),
            ));
            return Schema::Unusable;
        }
        Ok(Err(error)) => {
            let advice = match &error {
                StoreError::PgUnreachable { .. } => format!(
                    "start PostgreSQL or fix the host and port of {what}.url (the daemon waits for it at start)"
                ),
                StoreError::PgAuthFailed { .. } => {
                    format!("fix the user or password of {what}.url, or the server's pg_hba.conf")
                }
                StoreError::PgNoDatabase { .. } => {
                    format!("create the database (CREATE DATABASE …) or fix {what}.url")
                }
                StoreError::PgTls { .. } => {
                    format!("fix sslmode / sslrootcert of {what}.url, or the server's certificate")
                }
                _ => format!("fix {what}.url"),
            };
            checks.push(Check::new(what, Status::Fail, error.to_string(), advice));
            return Schema::Unusable;
        }
        Ok(Ok(version)) => version,
    };
    checks.push(Check::new(
        what,
        Status::Ok,
        format!("{shown}: reachable"),
        "",
    ));
    let name = format!("{what} schema");
    let (check, usable) = match version {
        None => (
            Check::new(
                &name,
                Status::Warn,
                format!("schema {schema} has no ctct-sync tables yet"),
                "run `ctct-sync migrate` (the daemon also migrates at start)",
            ),
            Schema::Behind,
        ),
        Some(v) => version_check(&name, v, latest, "run the newer ctct-sync that wrote it"),
    };
    checks.push(check);
    usable
}

/// Checks the mirror's SQLite file without changing it: its schema version. A missing file is
/// created by the daemon (or `ctct-sync migrate`); only a newer or unreadable one fails.
fn mirror_file(path: &Path, checks: &mut Vec<Check>) -> Schema {
    let shown = path.display();
    if !path.exists() {
        checks.push(Check::new(
            "mirror schema",
            Status::Warn,
            format!("{shown} does not exist yet"),
            "the daemon creates it at start (or run `ctct-sync migrate`)",
        ));
        return Schema::Behind;
    }
    let latest = migrate::latest_mirror_version();
    let (check, schema) = match migrate::file_version(path) {
        Err(error) => (
            Check::new(
                "mirror schema",
                Status::Fail,
                format!("{shown} cannot be read as a database: {error}"),
                "move it aside: the mirror's next full pass rebuilds it from Constant Contact",
            ),
            Schema::Unusable,
        ),
        Ok(v) => version_check(
            "mirror schema",
            v,
            latest,
            "run the newer ctct-sync that wrote it",
        ),
    };
    checks.push(check);
    schema
}

/// Checks the database file without changing it.
fn store(path: &Path, checks: &mut Vec<Check>) -> Schema {
    let shown = path.display();
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(_) => {
            checks.push(Check::new(
                "store",
                Status::Fail,
                format!("{shown} does not exist"),
                "run `ctct-sync migrate` (the daemon also creates it at start), then authorise an account",
            ));
            return Schema::Unusable;
        }
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        checks.push(Check::new(
            "store file mode",
            Status::Fail,
            format!("{shown} has mode {mode:04o}: every user can read the refresh tokens in it"),
            format!("chmod 600 {shown}"),
        ));
    } else if mode & 0o070 != 0 {
        checks.push(Check::new(
            "store file mode",
            Status::Warn,
            format!("{mode:04o}"),
            format!("chmod 600 {shown}"),
        ));
    } else {
        checks.push(Check::new(
            "store file mode",
            Status::Ok,
            format!("{mode:04o}"),
            "",
        ));
    }
    let version = migrate::file_version(path);
    let latest = migrate::latest_version();
    match version {
        Err(error) => {
            checks.push(Check::new(
                "store schema",
                Status::Fail,
                format!("{shown} cannot be read as a database: {error}"),
                "restore the file from a backup (docs/operations.md)",
            ));
            Schema::Unusable
        }
        Ok(v) => {
            let (check, schema) = version_check(
                "store schema",
                v,
                latest,
                "run the newer ctct-sync that wrote it, or restore a backup",
            );
            checks.push(check);
            schema
        }
    }
}

/// The check of a store at schema version `v` by this ctct-sync, which brings `latest`:
/// current, behind (to be migrated), or newer (`newer_advice` says what to do).
fn version_check(name: &str, v: u32, latest: u32, newer_advice: &str) -> (Check, Schema) {
    if v == latest {
        (
            Check::new(name, Status::Ok, format!("version {v}, current"), ""),
            Schema::Current,
        )
    } else if v < latest {
        (
            Check::new(
                name,
                Status::Warn,
                format!("version {v}; this ctct-sync brings {latest}"),
                "run `ctct-sync migrate` (the daemon also migrates at start)",
            ),
            Schema::Behind,
        )
    } else {
        (
            Check::new(
                name,
                Status::Fail,
                format!("version {v} is newer than this ctct-sync ({latest})"),
                newer_advice,
            ),
            Schema::Unusable,
        )
    }
}

async fn accounts_and_api(settings: &Settings, checks: &mut Vec<Check>) {
    if !settings.oauth.is_configured() {
        checks.push(Check::new(
            "oauth application",
            Status::Fail,
            "oauth.client_id and oauth.client_secret are not set",
            "set them (CTCT_SYNC__OAUTH__CLIENT_ID / __CLIENT_SECRET), or try the sandbox with `ctct-sync run --sandbox`",
        ));
        return;
    }
    let store = match crate::daemon::open_stores(settings).await {
        Ok(opened) => opened.state,
        Err(error) => {
            checks.push(Check::new(
                "store",
                Status::Fail,
                format!("{error:#}"),
                "see the store checks above",
            ));
            return;
        }
    };
    checks.push(replicas(&store).await);
    let client = match api::client_from_settings(settings, store, Arc::new(SystemClock)) {
        Ok(client) => client,
        Err(error) => {
            checks.push(Check::new(
                "api client",
                Status::Fail,
                error.to_string(),
                "fix api.base_url / oauth.*",
            ));
            return;
        }
    };
    let accounts = match client.tokens().accounts().await {
        Ok(accounts) => accounts,
        Err(error) => {
            checks.push(Check::new(
                "accounts",
                Status::Fail,
                format!("{error:#}"),
                "see the store checks above",
            ));
            return;
        }
    };
    if accounts.is_empty() {
        checks.push(Check::new(
            "accounts",
            Status::Fail,
            "no account is authorised",
            "run `ctct-sync auth login` (or `auth device`, `auth import`)",
        ));
        return;
    }
    for row in accounts {
        let name = format!("account {}", row.account);
        if row.state == AccountState::ReauthRequired {
            checks.push(Check::new(
                &name,
                Status::Fail,
                format!(
                    "needs re-authorisation: {}",
                    row.state_reason.unwrap_or_default()
                ),
                format!(
                    "run `ctct-sync auth login --account {}`; its commands wait meanwhile",
                    row.account
                ),
            ));
            continue;
        }
        let missing: Vec<&str> = NEEDED_SCOPES
            .iter()
            .copied()
            .filter(|s| !row.scopes.split_whitespace().any(|g| g == *s))
            .collect();
        if missing.is_empty() {
            checks.push(Check::new(
                &format!("{name} scopes"),
                Status::Ok,
                row.scopes.clone(),
                "",
            ));
        } else {
            checks.push(Check::new(
                &format!("{name} scopes"),
                Status::Warn,
                format!("missing {}", missing.join(", ")),
                format!("authorise again with oauth.scopes including them: `ctct-sync auth login --account {}`", row.account),
            ));
        }
        let api = client.account(&row.account);
        match tokio::time::timeout(Duration::from_secs(40), api.get_user_privileges()).await {
            Err(_) => checks.push(Check::new(
                &format!("{name} api"),
                Status::Fail,
                "no answer within 40 s",
                "check the network path to api.base_url",
            )),
            Ok(Ok(privileges)) => checks.push(Check::new(
                &format!("{name} api"),
                Status::Ok,
                format!(
                    "GET /account/user/privileges answered ({} privileges)",
                    privileges.len()
                ),
                "",
            )),
            Ok(Err(error)) => {
                let advice = match &error {
                    ApiError::Auth(_) | ApiError::Unauthorized { .. } => {
                        format!("run `ctct-sync auth login --account {}`", row.account)
                    }
                    ApiError::QuotaExhausted { resets_at } => {
                        format!("the daily quota is spent; it resets at {resets_at}")
                    }
                    ApiError::Forbidden { .. } => {
                        "the user or application lacks a privilege or scope".to_owned()
                    }
                    _ => "check api.base_url and the network; retry later".to_owned(),
                };
                checks.push(Check::new(
                    &format!("{name} api"),
                    Status::Fail,
                    error.to_string(),
                    advice,
                ));
            }
        }
    }
    // Counts the requests made and gives the rest of the budget's hold back.
    let _ = client.budget().release().await;
}

/// A replica not seen for this long (six heartbeats) is counted as gone.
const REPLICA_GONE_AFTER: chrono::Duration = chrono::Duration::seconds(30);

/// The daemons sharing the state store and their roles (docs/scaling.md).
async fn replicas(store: &crate::store::Store) -> Check {
    let rows = match store.replicas().await {
        Ok(rows) => rows,
        Err(error) => {
            return Check::new(
                "replicas",
                Status::Warn,
                format!("could not be read: {error}"),
                "see the store checks above",
            );
        }
    };
    let now = chrono::Utc::now();
    let (running, gone): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|r| r.alive != Some(false) && now - r.seen_at <= REPLICA_GONE_AFTER);
    if running.is_empty() {
        return Check::new(
            "replicas",
            Status::Ok,
            "no daemon is running on this store",
            "",
        );
    }
    let described: Vec<String> = running
        .iter()
        .map(|r| {
            format!(
                "{} on {} pid {} ({}, seen {} s ago)",
                r.role,
                r.host,
                r.pid,
                match r.alive {
                    Some(true) => "liveness lock held",
                    _ => "no liveness lock",
                },
                (now - r.seen_at).num_seconds().max(0)
            )
        })
        .collect();
    let active = running.iter().filter(|r| r.role == "active").count();
    let mut detail = format!("{} running: {}", running.len(), described.join("; "));
    if !gone.is_empty() {
        detail.push_str(&format!(
            "; {} gone (killed or stopped uncleanly)",
            gone.len()
        ));
    }
    match active {
        0 => Check::new(
            "replicas",
            Status::Ok,
            format!(
                "{detail}; none active yet: a replica says active once it is the queue's only consumer or has received a command"
            ),
            "",
        ),
        1 => Check::new("replicas", Status::Ok, detail, ""),
        _ => Check::new(
            "replicas",
            Status::Warn,
            format!("{detail}; {active} say active"),
            "each replica consumes its own queue? check that every replica has the same amqp.commands_queue and amqp.urls",
        ),
    }
}

fn print(checks: &[Check]) {
    let width = checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(10)
        .max(10);
    println!("{:<width$}  {:<6}  detail", "check", "status");
    for check in checks {
        let status = match check.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("{:<width$}  {:<6}  {}", check.name, status, check.detail);
        if !check.advice.is_empty() && check.status != Status::Ok {
            println!("{:<width$}  {:<6}  → {}", "", "", check.advice);
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    println!(
        "{} check(s): {failed} failed, {warned} warning(s)",
        checks.len()
    );
}

/// `doctor --json`: every check, then the counts by status.
#[derive(Debug, Serialize)]
struct DoctorDocument<'a> {
    checks: Vec<CheckDocument<'a>>,
    summary: SummaryDocument,
}

/// One check of `doctor --json`.
#[derive(Debug, Serialize)]
struct CheckDocument<'a> {
    name: &'a str,
    /// `ok`, `warn` or `fail`.
    status: &'static str,
    detail: &'a str,
    /// What to do about a warning or a failure; null when the table shows none.
    advice: Option<&'a str>,
}

/// How many checks ended in each status.
#[derive(Debug, Serialize)]
struct SummaryDocument {
    total: usize,
    ok: usize,
    warn: usize,
    fail: usize,
}

impl<'a> DoctorDocument<'a> {
    fn of(checks: &'a [Check]) -> Self {
        let count = |status: Status| checks.iter().filter(|c| c.status == status).count();
        Self {
            checks: checks
                .iter()
                .map(|check| CheckDocument {
                    name: &check.name,
                    status: check.status.as_str(),
                    detail: &check.detail,
                    // The table shows advice under warnings and failures only.
                    advice: Some(check.advice.as_str())
                        .filter(|advice| !advice.is_empty() && check.status != Status::Ok),
                })
                .collect(),
            summary: SummaryDocument {
                total: checks.len(),
                ok: count(Status::Ok),
                warn: count(Status::Warn),
                fail: count(Status::Fail),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_json_document_keeps_its_keys_and_writes_no_advice_as_null() {
        let checks = [
            Check::new("configuration", Status::Ok, "loaded and valid", ""),
            Check::new(
                "broker",
                Status::Warn,
                "queue ctct.commands does not exist yet",
                "start the daemon once",
            ),
            Check::new(
                "store",
                Status::Fail,
                "data/ctct-sync.db does not exist",
                "",
            ),
        ];
        let document = serde_json::to_value(DoctorDocument::of(&checks)).unwrap();
        assert_eq!(
            document,
            json!({
                "checks": [
                    {
                        "name": "configuration",
                        "status": "ok",
                        "detail": "loaded and valid",
                        "advice": null
                    },
                    {
                        "name": "broker",
                        "status": "warn",
                        "detail": "queue ctct.commands does not exist yet",
                        "advice": "start the daemon once"
                    },
                    {
                        "name": "store",
                        "status": "fail",
                        "detail": "data/ctct-sync.db does not exist",
                        "advice": null
                    }
                ],
                "summary": {"total": 3, "ok": 1, "warn": 1, "fail": 1}
            })
        );
    }

    #[test]
    fn advice_on_a_passing_check_is_left_out_of_the_json_as_of_the_table() {
        let checks = [Check::new(
            "replicas",
            Status::Ok,
            "none running",
            "ignored",
        )];
        let document = serde_json::to_value(DoctorDocument::of(&checks)).unwrap();
        assert_eq!(document["checks"][0]["advice"], serde_json::Value::Null);
        assert_eq!(
            document["summary"],
            json!({"total": 1, "ok": 1, "warn": 0, "fail": 0})
        );
    }
}
