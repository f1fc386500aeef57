//! Wiring: one assembly path (`Daemon::build`, or `Daemon::builder` for what is not a
//! setting) from settings → store → API client → mirror → handler → pipeline → ops
//! listener, optionally around an in-process sandbox (feature `sandbox`), and the run until
//! shutdown (the mirror's scheduler beside the pipeline).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiClient};
use crate::clock::{Clock, SystemClock};
use crate::config::{Settings, StoreLocation};
use crate::handler::Handler;
use crate::mirror::{Mirror, MirrorDb, MirrorEvents, MirrorOptions, PgMirrorDb};
use crate::pipeline::{Pipeline, PipelineSettings};
use crate::store::tokens::AccountState;
use crate::store::{MigrationReport, PgStore, Store, StoreError};

/// First wait between attempts to reach a PostgreSQL store that does not answer at start.
pub const REACH_INITIAL: Duration = Duration::from_secs(1);
/// Longest wait between those attempts.
pub const REACH_MAX: Duration = Duration::from_secs(30);
/// At most one warning per this long while a store stays unreachable at start.
const REACH_WARN_EVERY: Duration = Duration::from_secs(30);

/// The running parts of the daemon.
pub struct Daemon {
    pub settings: Settings,
    pub store: Store,
    pub client: ApiClient,
    pub pipeline: Pipeline,
    /// The mirror: run by its scheduler and by `mirror.run` commands.
    pub mirror: Mirror,
    /// Publishes `mirror.completed` / `mirror.failed`.
    pub mirror_events: MirrorEvents,
    /// The in-process sandbox of `run --sandbox`.
    #[cfg(feature = "sandbox")]
    pub sandbox: Option<ctct_sandbox::Sandbox>,
    /// The clock the ledger is written with, for pruning it.
    pub clock: Arc<dyn Clock>,
    /// The mirror's scheduler runs (see [`DaemonBuilder::mirror_schedule`]).
    mirror_schedule: bool,
    ops: OpsListener,
}

/// Where `run --sandbox` keeps its store and the sandbox's state: beside the configured
/// store, so trying the sandbox never touches a real account's data.
pub fn sandbox_paths(store: &std::path::Path) -> (PathBuf, PathBuf) {
    let dir = store.parent().map(PathBuf::from).unwrap_or_default();
    let stem = store
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("ctct-sync");
    (
        dir.join(format!("{stem}-sandbox.db")),
        dir.join("sandbox-state.json"),
    )
}

/// Points both stores of `settings` at the sandbox's own: a SQLite file `<stem>-sandbox.db`
/// beside the configured one, a PostgreSQL schema `<schema>_sandbox` beside the configured
/// one. Returns the file the sandbox keeps its state in (beside the state store's file, or
/// in `data/` when the state is on PostgreSQL).
pub fn use_sandbox_stores(settings: &mut Settings) -> anyhow::Result<PathBuf> {
    let state = settings.state_store()?;
    let mirror = settings.mirror_store()?;
    let sandboxed = |location: StoreLocation| match location {
        StoreLocation::Sqlite(path) => StoreLocation::Sqlite(sandbox_paths(&path).0),
        StoreLocation::Postgres { url, schema } => StoreLocation::Postgres {
            url,
            schema: format!("{schema}_sandbox"),
        },
    };
    let state_file = sandbox_paths(
        state
            .sqlite_path()
            .unwrap_or(std::path::Path::new(crate::config::DEFAULT_STATE_FILE)),
    )
    .1;
    for (location, url, schema) in [
        (state, &mut settings.store.url, &mut settings.store.schema),
        (
            mirror,
            &mut settings.mirror.url,
            &mut settings.mirror.schema,
        ),
    ] {
        let location = sandboxed(location);
        *url = Some(location.to_url());
        if let StoreLocation::Postgres { schema: s, .. } = &location {
            *schema = s.clone();
        }
    }
    settings.store.path = PathBuf::new();
    Ok(state_file)
}

/// The two stores of a daemon or a CLI command: the private state and the analysts' mirror.
#[derive(Clone, Debug)]
pub struct Stores {
    pub state: Store,
    pub mirror: MirrorDb,
    /// What opening did to each store's schema (`ctct-sync migrate` prints them).
    pub migrated: [(&'static str, String, MigrationReport); 2],
}

impl Stores {
    /// Copies each SQLite store's write-ahead log into its `.db` file and empties it, so
    /// that the files alone are complete once this returns: before a short-lived command
    /// (`ctct-sync migrate`) exits, since the process can end before the store threads'
    /// own checkpoint at close has run. Nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.state.checkpoint().await?;
        if let Some(mirror) = self.mirror.store() {
            mirror.checkpoint().await?;
        }
        Ok(())
    }
}

/// Opens (creating and migrating) the state store and the mirror store of `settings`, each a
/// SQLite file or a PostgreSQL schema. A SQLite state file from before the mirror moved out
/// has its mirror rows copied into a SQLite mirror (a PostgreSQL mirror is rebuilt by its
/// next full pass).
pub async fn open_stores(settings: &Settings) -> anyhow::Result<Stores> {
    let state_at = settings.state_store()?;
    let mirror_at = settings.mirror_store()?;
    if let Some(state_path) = state_at.sqlite_path() {
        // The state's directory first, so that it is created with the state's mode (0700)
        // also when the mirror's file goes beside the state's.
        Store::prepare_state_dir(state_path)
            .with_context(|| format!("state store {}", state_path.display()))?;
    }
    let (mirror, mirror_report) = open_mirror_store(&mirror_at).await?;
    let state = match &state_at {
        StoreLocation::Sqlite(path) => {
            let path = path.clone();
            let copy_to = mirror_at.sqlite_path().map(PathBuf::from);
            tokio::task::spawn_blocking(move || Store::open_state(&path, copy_to.as_deref()))
                .await
                .context("the store task stopped")?
        }
        StoreLocation::Postgres { url, schema } => {
            Store::connect_postgres(url.secret(), schema).await
        }
    }
    .with_context(|| format!("state store {}", state_at.describe()))?;
    let (state, state_report) = state;
    if !state_report.is_noop() {
        tracing::info!(applied = ?state_report.applied, "state store migrated");
    }
    Ok(Stores {
        state,
        mirror,
        migrated: [
            ("store", state_at.describe(), state_report),
            ("mirror", mirror_at.describe(), mirror_report),
        ],
    })
}

/// Opens and migrates the mirror store at `location`.
async fn open_mirror_store(
    location: &StoreLocation,
) -> anyhow::Result<(MirrorDb, MigrationReport)> {
    let opened = match location {
        StoreLocation::Sqlite(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || Store::open_mirror(&path))
                .await
                .context("the store task stopped")?
                .map(|(store, report)| (MirrorDb::new(store), report))
                .map_err(anyhow::Error::from)
        }
        StoreLocation::Postgres { url, schema } => {
            async {
                let pg = PgStore::connect(url.secret(), schema).await?;
                let db = PgMirrorDb::new(pg.pool().clone());
                let report = db.migrate().await?;
                Ok((MirrorDb::postgres(db), report))
            }
            .await
        }
    };
    let (db, report) = opened.with_context(|| format!("mirror store {}", location.describe()))?;
    if !report.is_noop() {
        tracing::info!(applied = ?report.applied, "mirror store migrated");
    }
    Ok((db, report))
}

/// Starts the sandbox of `run --sandbox` (real limits, 1,000 seeded contacts, state kept
/// beside the store) and points `settings` at it.
#[cfg(feature = "sandbox")]
async fn start_sandbox(settings: &mut Settings) -> anyhow::Result<ctct_sandbox::Sandbox> {
    use ctct_sandbox::{LimitsMode, SandboxOptions};
    let state_path = use_sandbox_stores(settings)?;
    if let Some(dir) = state_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let started = ctct_sandbox::start(SandboxOptions {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        seed_contacts: 1_000,
        limits: LimitsMode::Real,
        state_file: Some(state_path),
        ..SandboxOptions::default()
    })
    .await
    .context("starting the sandbox")?;
    let c = started.credentials().clone();
    tracing::info!(base_url = %c.base_url, admin_url = %c.admin_url, "sandbox running in-process");
    point_at_sandbox(settings, &c);
    Ok(started)
}

/// Points `settings` at a sandbox: its API and OAuth2 URLs and its ready client.
#[cfg(feature = "sandbox")]
pub fn point_at_sandbox(settings: &mut Settings, c: &ctct_sandbox::SandboxCredentials) {
    settings.api.base_url = c.base_url.clone();
    settings.oauth.client_id = c.client_id.clone();
    settings.oauth.client_secret = secrecy::SecretString::from(c.client_secret.clone());
    settings.oauth.token_url = c.token_url.clone();
    settings.oauth.authorize_url = c.authorize_url.clone();
    settings.oauth.device_authorize_url = c.device_authorize_url.clone();
    settings.oauth.revoke_url = c.revoke_url.clone();
}

/// How a daemon is assembled: its settings, plus what a caller may choose that is not a
/// setting (the clock, the in-process sandbox of `run --sandbox`, the mirror's tuning).
/// `Daemon::build(settings)` is `Daemon::builder(settings).build()`; main, `run --sandbox`
/// and the integration tests all go through [`DaemonBuilder::build`].
pub struct DaemonBuilder {
    settings: Settings,
    clock: Arc<dyn Clock>,
    with_sandbox: bool,
    mirror_options: MirrorOptions,
    mirror_schedule: bool,
    ops_listener: Option<std::net::TcpListener>,
    shutdown: Option<CancellationToken>,
}

impl DaemonBuilder {
    /// Serves the ops endpoints on this already bound listener instead of binding
    /// `ops.listen` (a test learns the address before [`build`](Self::build) returns).
    pub fn ops_listener(mut self, listener: std::net::TcpListener) -> Self {
        self.ops_listener = Some(listener);
        self
    }

    /// Stops [`build`](Self::build) waiting for an unreachable PostgreSQL store when
    /// cancelled (the build then fails; see [`Daemon::stopped_while_starting`]).
    pub fn shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// The clock the daemon reads (the system clock unless set; tests move a manual one).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Runs a sandbox of the API in-process (real limits, 1,000 seeded contacts, state kept
    /// beside the store) and points the daemon at it: `run --sandbox`. Refused at
    /// [`build`](Self::build) when the cargo feature `sandbox` is off.
    pub fn sandbox(mut self, on: bool) -> Self {
        self.with_sandbox = on;
        self
    }

    /// The mirror's tuning (page size, export polls, the contacts path).
    pub fn mirror_options(mut self, options: MirrorOptions) -> Self {
        self.mirror_options = options;
        self
    }

    /// Whether the mirror runs on its schedules (`mirror.schedule`,
    /// `mirror.incremental_schedule`) and continues passes a previous process left pending;
    /// on unless set. Off, the mirror runs only for `mirror.run` commands (the integration
    /// tests, which start and stop daemons over one store and must not race a scheduled run).
    pub fn mirror_schedule(mut self, on: bool) -> Self {
        self.mirror_schedule = on;
        self
    }

    /// Binds the ops listener (`ops.listen`; port 0 picks a free one, see
    /// [`Daemon::ops_addr`]), opens the stores, connects the API client and wires mirror,
    /// handler and pipeline. Nothing consumes until [`Daemon::run`].
    ///
    /// A PostgreSQL store that does not answer is waited for (capped exponential backoff,
    /// one warning per 30 s at most) while `/readyz` answers 503 naming it; a refused login,
    /// a missing database and every SQLite failure end the build at once.
    pub async fn build(self) -> anyhow::Result<Daemon> {
        let DaemonBuilder {
            settings,
            clock,
            with_sandbox,
            mirror_options,
            mirror_schedule,
            ops_listener,
            shutdown,
        } = self;
        #[cfg(feature = "sandbox")]
        let mut settings = settings;
        #[cfg(feature = "sandbox")]
        let sandbox = if with_sandbox {
            Some(start_sandbox(&mut settings).await?)
        } else {
            None
        };
        #[cfg(not(feature = "sandbox"))]
        if with_sandbox {
            bail!(
                "--sandbox: this ctct-sync was built without the sandbox (cargo feature `sandbox` is off); \
                 build it with default features, or run the `ctct-sandbox` program and point api.base_url and oauth.* at it"
            );
        }
        let mut ops = OpsListener::default();
        let slot = crate::ops::OpsSlot::starting("starting: opening the stores");
        if settings.ops.enabled {
            let bound = match ops_listener {
                Some(listener) => listener
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::TcpListener::from_std(listener))
                    .and_then(|listener| {
                        crate::ops::serve_on(listener, slot.clone(), ops.stop.clone())
                    }),
                None => {
                    crate::ops::serve(settings.ops.listen, slot.clone(), ops.stop.clone()).await
                }
            };
            let bound = bound.with_context(|| {
                format!(
                    "ops.listen {}: cannot listen (another ctct-sync running? set ops.listen or ops.enabled = false)",
                    settings.ops.listen
                )
            })?;
            ops.addr = Some(bound);
        }
        // systemd's Type=notify: READY=1 once the broker and store are ready, watchdog pings.
        crate::ops::notify::start(slot.clone(), ops.stop.clone());
        // A database can answer the wait and go away before the stores are open (a restart
        // at that moment): then it is waited for again, as at start.
        let (store, mirror_db) = loop {
            wait_for_databases(&settings, &slot, shutdown.as_ref()).await?;
            slot.set_starting("starting: opening the stores");
            match open_checked_stores(&settings).await {
                Ok(opened) => break opened,
                Err(error) if lost_a_database(&error) => {
                    tracing::warn!(
                        error = %format!("{error:#}"),
                        "a database went away while the stores were opened; waiting for it again"
                    );
                }
                Err(error) => return Err(error),
            }
        };
        let client = api::client_from_settings(&settings, store.clone(), clock.clone())?;
        #[cfg(feature = "sandbox")]
        if let Some(sandbox) = &sandbox {
            let refresh = secrecy::SecretString::from(sandbox.credentials().refresh_token.clone());
            client
                .tokens()
                .import_refresh_token("default", refresh)
                .await
                .context("connecting the sandbox's account")?;
        }
        let accounts = client.tokens().accounts().await?;
        if accounts.is_empty() {
            bail!(
                "no Constant Contact account is authorised: run `ctct-sync auth login` (or `auth import`), \
                 or try ctct-sync against the local sandbox with `ctct-sync run --sandbox`"
            );
        }
        if !accounts.iter().any(|a| a.state == AccountState::Active) {
            // A restart while tokens are lost must not turn into a crash loop: the commands
            // of these accounts wait, parked, until a person authorises again.
            let names: Vec<&str> = accounts.iter().map(|a| a.account.as_str()).collect();
            tracing::error!(
                accounts = ?names,
                "every account needs re-authorisation; their commands wait until \
                 `ctct-sync auth login --account NAME` (or `auth import`) is run"
            );
        }
        let mirror_events = MirrorEvents::start(
            crate::amqp::BrokerNodes::from_settings(&settings.amqp),
            settings.amqp.results_exchange.clone(),
        );
        let mirror_options = MirrorOptions {
            reports: crate::mirror::ReportOptions::from_settings(&settings),
            lookup_max_age: Duration::from_secs(settings.mirror.lookup_max_age_secs),
            ..mirror_options
        };
        let mirror = Mirror::new(mirror_db, client.clone(), clock.clone(), mirror_options)
            .with_events(mirror_events.sender());
        let handler =
            Handler::new(client.clone(), store.clone(), clock.clone()).with_mirror(mirror.clone());
        let pipeline = Pipeline::new(
            PipelineSettings::from_settings(&settings),
            handler,
            store.clone(),
            clock.clone(),
        );
        slot.set_running(crate::ops::OpsState {
            store: store.clone(),
            mirror: mirror.clone(),
            client: client.clone(),
            pipeline: Some(crate::ops::PipelineView {
                status: pipeline.status(),
                processor: pipeline.processor(),
            }),
        });
        Ok(Daemon {
            settings,
            store,
            client,
            pipeline,
            mirror,
            mirror_events,
            #[cfg(feature = "sandbox")]
            sandbox,
            clock,
            mirror_schedule,
            ops,
        })
    }
}

/// The stores of `settings`, opened, migrated and with the state's own tables checked.
async fn open_checked_stores(settings: &Settings) -> anyhow::Result<(Store, MirrorDb)> {
    let Stores { state, mirror, .. } = open_stores(settings).await?;
    state
        .integrity_check_own_tables()
        .await
        .with_context(|| format!("state store {}", state.describe()))?;
    Ok((state, mirror))
}

/// Whether `error` comes from a PostgreSQL store that could not be reached or was lost
/// (worth waiting for), rather than from a refused login, a missing database or a damaged
/// file.
fn lost_a_database(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<StoreError>()
            .is_some_and(StoreError::is_unreachable)
    })
}

/// Why a build ended without a daemon: asked to stop while waiting for a database.
#[derive(Debug, thiserror::Error)]
#[error("stopped while waiting for the {which} store ({url}) to answer")]
pub struct StoppedWhileStarting {
    which: &'static str,
    url: String,
}

/// Waits until every PostgreSQL store of `settings` answers: each attempt connects (and
/// creates the schema if missing). While one does not answer, `slot` says so
/// (`/readyz` 503 "state store unreachable: …"), attempts follow with capped exponential
/// backoff and a warning is logged at most every 30 s, the URL without its password. Any
/// other error (a refused login, a missing database, a bad URL) is returned at once.
async fn wait_for_databases(
    settings: &Settings,
    slot: &crate::ops::OpsSlot,
    shutdown: Option<&CancellationToken>,
) -> anyhow::Result<()> {
    let never = CancellationToken::new();
    let shutdown = shutdown.unwrap_or(&never);
    for (which, location) in [
        ("state", settings.state_store()?),
        ("mirror", settings.mirror_store()?),
    ] {
        let StoreLocation::Postgres { url, schema } = &location else {
            continue;
        };
        let started = Instant::now();
        let mut wait = REACH_INITIAL;
        let mut attempts = 0u64;
        let mut warned: Option<Instant> = None;
        loop {
            attempts += 1;
            match PgStore::connect(url.secret(), schema).await {
                Ok(_) => {
                    if attempts > 1 {
                        tracing::info!(
                            store = which,
                            url = %url.redacted(),
                            attempts,
                            waited_ms = started.elapsed().as_millis() as u64,
                            "the {which} store answers; starting"
                        );
                    }
                    break;
                }
                Err(StoreError::PgUnreachable { url, reason }) => {
                    slot.set_starting(format!(
                        "{which} store unreachable: PostgreSQL at {url}: {reason}"
                    ));
                    if warned.is_none_or(|at| at.elapsed() >= REACH_WARN_EVERY) {
                        warned = Some(Instant::now());
                        tracing::warn!(
                            store = which,
                            url = %url,
                            reason = %reason,
                            attempts,
                            next_attempt_ms = wait.as_millis() as u64,
                            "the {which} store is unreachable; nothing is consumed until it answers"
                        );
                    } else {
                        tracing::debug!(store = which, reason = %reason, attempts, "the {which} store is still unreachable");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.cancelled() => {
                            return Err(StoppedWhileStarting { which, url }.into());
                        }
                    }
                    wait = (wait * 2).min(REACH_MAX);
                }
                Err(other) => {
                    return Err(anyhow::Error::new(other)
                        .context(format!("{which} store {}", location.describe())));
                }
            }
        }
    }
    Ok(())
}

/// The ops listener (`/metrics`, `/healthz`, `/readyz`) of a built daemon; it stops when the
/// daemon is asked to stop, or when the daemon is dropped without running.
#[derive(Default)]
pub struct OpsListener {
    addr: Option<std::net::SocketAddr>,
    stop: CancellationToken,
}

impl Drop for OpsListener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Daemon {
    /// Builds the daemon from its settings: what `ctct-sync run` does.
    pub async fn build(settings: Settings) -> anyhow::Result<Daemon> {
        Self::builder(settings).build().await
    }

    /// A builder, for what is not a setting (see [`DaemonBuilder`]).
    pub fn builder(settings: Settings) -> DaemonBuilder {
        DaemonBuilder {
            settings,
            clock: Arc::new(SystemClock),
            with_sandbox: false,
            mirror_options: MirrorOptions::default(),
            mirror_schedule: true,
            ops_listener: None,
            shutdown: None,
        }
    }

    /// Whether a failed build was only asked to stop while it waited for a database.
    pub fn stopped_while_starting(error: &anyhow::Error) -> bool {
        error.downcast_ref::<StoppedWhileStarting>().is_some()
    }

    /// Where the ops listener answers, when `ops.enabled`.
    pub fn ops_addr(&self) -> Option<std::net::SocketAddr> {
        self.ops.addr
    }

    /// Runs until `shutdown` is cancelled, then drains and stops: the pipeline and the mirror's
    /// scheduler run side by side; on shutdown mirror runs stop at their next page (resumable),
    /// the pipeline finishes its in-flight commands, the scheduler waits for its runs, and the
    /// last mirror events are published. Beside them, the store is pruned hourly
    /// (`store.ledger_retention_days`).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let scheduler = if self.mirror_schedule {
            Some(
                crate::mirror::start_scheduler(
                    self.mirror.clone(),
                    &self.settings.mirror,
                    Some(crate::mirror::ScheduleClaims {
                        store: self.store.clone(),
                        owner: self.pipeline.processor().owner().to_owned(),
                    }),
                )
                .await
                .context("starting the mirror's schedule")?,
            )
        } else {
            None
        };
        let housekeeping = (self.settings.store.ledger_retention_days > 0).then(|| {
            crate::store::housekeeping::spawn(
                self.store.clone(),
                self.clock.clone(),
                self.settings.store.ledger_retention_days,
                shutdown.clone(),
            )
        });
        // On shutdown the ops listener stops, and mirror runs stop at their next page.
        let (ops_stop, mirror_cancel) = (self.ops.stop.clone(), self.mirror.cancel_token().clone());
        let stopping = shutdown.clone();
        let on_shutdown = tokio::spawn(async move {
            stopping.cancelled().await;
            ops_stop.cancel();
            mirror_cancel.cancel();
        });
        self.pipeline.run(shutdown).await;
        let _ = on_shutdown.await;
        if let Some(housekeeping) = housekeeping {
            let _ = housekeeping.await;
        }
        if let Some(scheduler) = scheduler {
            scheduler.stop(Duration::from_secs(10)).await;
        }
        self.mirror_events.stop(Duration::from_secs(5)).await;
        // Records what was spent and gives the rest of the budget's hold back, so another
        // process sharing the store can use it at once.
        if let Err(error) = self.client.budget().release().await {
            tracing::warn!(error = %error, "could not settle the request budget; its hold lapses by itself");
        }
        #[cfg(feature = "sandbox")]
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
        // After a clean stop the `.db` file alone is complete (a copy of it is a backup).
        if let Err(error) = self.store.checkpoint().await {
            tracing::warn!(error = %error, "could not checkpoint the store's write-ahead log");
        }
        if let Some(mirror) = self.mirror.store()
            && let Err(error) = mirror.checkpoint().await
        {
            tracing::warn!(error = %error, "could not checkpoint the mirror's write-ahead log");
        }
        Ok(())
    }
}

/// Completes on ctrl-c or SIGTERM (what `docker stop` and systemd send).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(error = %error, "cannot listen for SIGTERM; ctrl-c still works");
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the cargo feature `sandbox`, `run --sandbox` is refused before anything is
    /// opened, with a message saying the feature is off.
    #[cfg(not(feature = "sandbox"))]
    #[tokio::test]
    async fn without_the_sandbox_feature_run_sandbox_says_the_feature_is_off() {
        let settings = Settings::load(None, std::collections::HashMap::new()).unwrap();
        let error = Daemon::builder(settings)
            .sandbox(true)
            .build()
            .await
            .err()
            .expect("refused");
        assert!(
            error.to_string().contains("cargo feature `sandbox` is off"),
            "{error:#}"
        );
    }

    #[test]
    fn run_sandbox_keeps_its_store_and_state_beside_the_configured_store() {
        let (store, state) = sandbox_paths(std::path::Path::new("/var/lib/ctct/ctct-sync.db"));
        assert_eq!(store, PathBuf::from("/var/lib/ctct/ctct-sync-sandbox.db"));
        assert_eq!(state, PathBuf::from("/var/lib/ctct/sandbox-state.json"));
    }
}
