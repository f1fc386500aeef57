//! A sandbox, fresh stores and an API client wired together, with the sandbox's ready
//! refresh token imported as account `default`. The stores are SQLite files in the test's
//! directory, or — `start_on(Engine::Postgres)` and the other `…_on` constructors — the
//! schemas `ctct_state` and `ctct_mirror` of a PostgreSQL database of the test's own.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use ctct_sandbox::{LimitsMode, Sandbox, SandboxOptions};
use ctct_sync::api::{
    AccountApi, ApiClient, BudgetSettings, ClientSettings, OAuthConfig, RateBudget, TokenManager,
};
use ctct_sync::clock::ManualClock;
use ctct_sync::config::Settings;
use ctct_sync::mirror::MirrorDb;
use ctct_sync::store::Store;
use secrecy::SecretString;

use super::engine::{Engine, Tables};
use super::pg::PgTestDb;
use super::{fresh_db_path, temp_dir};

/// Everything an API test needs. Drop it to stop the sandbox (or call `stop`); the test's
/// PostgreSQL database, if it has one, is dropped with it.
pub struct TestApi {
    pub sandbox: Sandbox,
    /// The state store.
    pub store: Store,
    /// The mirror store: on SQLite `ctct-mirror.db` beside the state's file, where a daemon
    /// built on the same settings puts it; on PostgreSQL the schema `ctct_mirror` of the
    /// state's database.
    pub mirror: MirrorDb,
    /// The state store's file (a daemon built for this test opens the same one). On
    /// PostgreSQL no file is made here; [`TestApi::locate_stores`] gives the URLs instead.
    pub store_path: std::path::PathBuf,
    /// ctct-sync's wall clock; move it together with the sandbox's with `advance_clocks`.
    pub clock: Arc<ManualClock>,
    pub client: ApiClient,
    pub dir: tempfile::TempDir,
    pub per_second: u32,
    pub per_day: u32,
    /// The state store's PostgreSQL URL, when it is on PostgreSQL (schema
    /// [`PG_STATE_SCHEMA`]); daemons and commands of this test then use it instead of
    /// `store_path`, and keep the mirror in `ctct-mirror.db` beside `store_path`.
    pub state_url: Option<String>,
    /// The database of a PostgreSQL test, dropped (last) with this value.
    pub pg: Option<PgTestDb>,
}

/// The schema a PostgreSQL state store of [`TestApi::start_on_postgres`] lives in.
pub const PG_STATE_SCHEMA: &str = "ctct_state";

impl TestApi {
    /// Sandbox without limits, a generous budget.
    pub async fn start() -> Self {
        Self::start_on(Engine::Sqlite).await
    }

    /// [`TestApi::start`] with the stores on `engine`.
    pub async fn start_on(engine: Engine) -> Self {
        Self::start_with_on(engine, SandboxOptions::for_tests(), 1000, 1_000_000).await
    }

    /// Sandbox with real limits (`per_second`, `per_day`) and the same budget on our side.
    pub async fn start_limited(per_second: u32, per_day: u32) -> Self {
        Self::start_limited_on(Engine::Sqlite, per_second, per_day).await
    }

    /// [`TestApi::start_limited`] with the stores on `engine`.
    pub async fn start_limited_on(engine: Engine, per_second: u32, per_day: u32) -> Self {
        let mut options = SandboxOptions::for_tests();
        options.limits = LimitsMode::Real;
        options.per_second = per_second;
        options.per_day = per_day;
        Self::start_with_on(engine, options, per_second, per_day).await
    }

    pub async fn start_with(options: SandboxOptions, per_second: u32, per_day: u32) -> Self {
        Self::start_with_on(Engine::Sqlite, options, per_second, per_day).await
    }

    /// [`TestApi::start_with`] with the stores on `engine`.
    pub async fn start_with_on(
        engine: Engine,
        options: SandboxOptions,
        per_second: u32,
        per_day: u32,
    ) -> Self {
        Self::start_inner(engine, options, per_second, per_day, None).await
    }

    /// Sandbox without limits, the state store in schema [`PG_STATE_SCHEMA`] of the
    /// PostgreSQL database at `url` (created and migrated here), the mirror a SQLite file.
    pub async fn start_on_postgres(url: &str) -> Self {
        Self::start_with_state_at(url, SandboxOptions::for_tests(), 1000, 1_000_000).await
    }

    /// [`TestApi::start_on_postgres`] with the sandbox's `options` and the given limits.
    pub async fn start_with_state_at(
        url: &str,
        options: SandboxOptions,
        per_second: u32,
        per_day: u32,
    ) -> Self {
        let mut api = Self::start_inner(Engine::Sqlite, options, per_second, per_day, None).await;
        let (store, _) = Store::connect_postgres(&SecretString::from(url), PG_STATE_SCHEMA)
            .await
            .expect("the PostgreSQL state store opens");
        api.client = build_client(&api.sandbox, &store, &api.clock, per_second, per_day);
        // The sandbox's ready token went to the SQLite store: a fresh grant for this one.
        let admin = api.sandbox.admin();
        let refresh = admin
            .issue_refresh_token(&admin.primary_account())
            .expect("a fresh grant");
        api.client
            .tokens()
            .import_refresh_token("default", SecretString::from(refresh))
            .await
            .expect("the sandbox's refresh token imports");
        api.store = store;
        api.state_url = Some(url.to_owned());
        api
    }

    /// Where the mirror's SQLite file is (beside `store_path`).
    pub fn mirror_path(&self) -> std::path::PathBuf {
        self.store_path
            .parent()
            .expect("the store's file is in a directory")
            .join(ctct_sync::config::DEFAULT_MIRROR_FILE_NAME)
    }

    /// Sandbox without limits, with the store at `store_path` (a file that does not exist
    /// yet; a test that needs the store on a disk of its own).
    pub async fn start_with_store_at(store_path: &std::path::Path) -> Self {
        Self::start_inner(
            Engine::Sqlite,
            SandboxOptions::for_tests(),
            1000,
            1_000_000,
            Some(store_path),
        )
        .await
    }

    async fn start_inner(
        engine: Engine,
        options: SandboxOptions,
        per_second: u32,
        per_day: u32,
        store_path: Option<&std::path::Path>,
    ) -> Self {
        super::init_test_log();
        let sandbox = ctct_sandbox::start(options)
            .await
            .expect("the sandbox starts");
        let dir = temp_dir();
        let store_path = store_path
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| fresh_db_path(dir.path()));
        let pg = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => Some(PgTestDb::create().await),
        };
        let mut settings = Settings::load(None, HashMap::new()).expect("the default settings");
        locate(&mut settings, &store_path, pg.as_ref());
        let stores = ctct_sync::daemon::open_stores(&settings)
            .await
            .unwrap_or_else(|error| panic!("fresh stores open: {error:#}"));
        let (store, mirror) = (stores.state, stores.mirror);
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let client = build_client(&sandbox, &store, &clock, per_second, per_day);
        let refresh = sandbox.credentials().refresh_token.clone();
        client
            .tokens()
            .import_refresh_token("default", SecretString::from(refresh))
            .await
            .expect("the sandbox's refresh token imports");
        Self {
            sandbox,
            store,
            mirror,
            store_path,
            clock,
            client,
            dir,
            per_second,
            per_day,
            state_url: None,
            pg,
        }
    }

    /// The mirror store ([`TestApi::mirror`]), for a `Mirror` of the test's own.
    pub fn mirror_db(&self) -> MirrorDb {
        self.mirror.clone()
    }

    /// Points `settings` at this test's two stores: `store.path` on SQLite (the mirror goes
    /// beside it), `store.url` and `mirror.url` (default schemas) on PostgreSQL.
    pub fn locate_stores(&self, settings: &mut Settings) {
        locate(settings, &self.store_path, self.pg.as_ref());
    }

    /// The state store's tables, for plain SQL (see [`Tables`]).
    pub fn state_tables(&self) -> Tables {
        match (&self.pg, &self.state_url) {
            (Some(db), _) => Tables::Postgres {
                url: db.url().to_owned(),
                schema: PG_STATE_SCHEMA.into(),
            },
            (None, Some(url)) => Tables::Postgres {
                url: url.clone(),
                schema: PG_STATE_SCHEMA.into(),
            },
            (None, None) => Tables::Sqlite(self.store.clone()),
        }
    }

    /// The mirror store's tables, for plain SQL (see [`Tables`]).
    pub fn mirror_tables(&self) -> Tables {
        match &self.pg {
            None => Tables::Sqlite(
                self.mirror
                    .store()
                    .expect("a SQLite test's mirror is a SQLite store")
                    .clone(),
            ),
            Some(db) => Tables::Postgres {
                url: db.url().to_owned(),
                schema: "ctct_mirror".into(),
            },
        }
    }

    /// The default account's API.
    /// Authorises account `default` again (a person ran `auth login`): a fresh refresh token
    /// for the sandbox's primary account, imported into the store.
    pub async fn reauthorise(&self) {
        let admin = self.sandbox.admin();
        let fresh = admin
            .issue_refresh_token(&admin.primary_account())
            .expect("a fresh grant");
        self.client
            .tokens()
            .import_refresh_token("default", SecretString::from(fresh))
            .await
            .expect("re-authorised");
    }

    pub fn api(&self) -> AccountApi {
        self.client.account("default")
    }

    /// A second client on the same database: another ctct-sync process.
    pub fn another_process(&self) -> ApiClient {
        build_client(
            &self.sandbox,
            &self.store,
            &self.clock,
            self.per_second,
            self.per_day,
        )
    }

    /// Moves the sandbox's clock and ctct-sync's together.
    pub fn advance_clocks(&self, by: std::time::Duration) {
        self.sandbox.admin().advance_clock(by);
        self.clock
            .advance(chrono::Duration::from_std(by).expect("a small duration"));
    }

    /// Environment for running the `ctct-sync` binary against this sandbox and store.
    pub fn cli_env(&self) -> HashMap<String, String> {
        let c = self.sandbox.credentials();
        let mut env = HashMap::new();
        env.insert("CTCT_SYNC__API__BASE_URL".into(), c.base_url.clone());
        env.insert("CTCT_SYNC__OAUTH__CLIENT_ID".into(), c.client_id.clone());
        env.insert(
            "CTCT_SYNC__OAUTH__CLIENT_SECRET".into(),
            c.client_secret.clone(),
        );
        env.insert("CTCT_SYNC__OAUTH__TOKEN_URL".into(), c.token_url.clone());
        env.insert(
            "CTCT_SYNC__OAUTH__AUTHORIZE_URL".into(),
            c.authorize_url.clone(),
        );
        env.insert(
            "CTCT_SYNC__OAUTH__DEVICE_AUTHORIZE_URL".into(),
            c.device_authorize_url.clone(),
        );
        env.insert("CTCT_SYNC__OAUTH__REVOKE_URL".into(), c.revoke_url.clone());
        env.insert(
            "CTCT_SYNC__OAUTH__REDIRECT_URI".into(),
            "http://127.0.0.1:0/oauth/callback".into(),
        );
        match (&self.pg, &self.state_url) {
            (None, Some(url)) => {
                env.insert("CTCT_SYNC__STORE__URL".into(), url.clone());
                env.insert("CTCT_SYNC__STORE__SCHEMA".into(), PG_STATE_SCHEMA.into());
                env.insert(
                    "CTCT_SYNC__MIRROR__URL".into(),
                    format!("sqlite://{}", self.mirror_path().display()),
                );
            }
            (None, None) => {
                env.insert(
                    "CTCT_SYNC__STORE__PATH".into(),
                    self.store.path().display().to_string(),
                );
            }
            (Some(db), _) => {
                env.insert("CTCT_SYNC__STORE__URL".into(), db.url().to_owned());
                env.insert("CTCT_SYNC__MIRROR__URL".into(), db.url().to_owned());
            }
        }
        env
    }

    pub async fn stop(self) {
        self.sandbox.shutdown().await;
    }
}

/// Points `settings` at the stores of a test: the SQLite file `state` (the mirror beside
/// it), or both stores in `pg` (default schemas).
fn locate(settings: &mut Settings, state: &std::path::Path, pg: Option<&PgTestDb>) {
    match pg {
        None => {
            // The mirror beside the state file unless the test put it elsewhere.
            settings.store.url = None;
            settings.store.path = state.to_path_buf();
        }
        Some(db) => {
            let url = ctct_sync::config::SecretUrl::new(db.url());
            settings.store.url = Some(url.clone());
            settings.store.path = std::path::PathBuf::new();
            settings.mirror.url = Some(url);
        }
    }
}

/// An API client for `sandbox` over `store`, using `clock`.
pub fn build_client(
    sandbox: &Sandbox,
    store: &Store,
    clock: &Arc<ManualClock>,
    per_second: u32,
    per_day: u32,
) -> ApiClient {
    let settings = ClientSettings::new(&sandbox.credentials().base_url);
    build_client_with(sandbox, store, clock, per_second, per_day, settings)
}

/// The same, with the given HTTP settings.
pub fn build_client_with(
    sandbox: &Sandbox,
    store: &Store,
    clock: &Arc<ManualClock>,
    per_second: u32,
    per_day: u32,
    settings: ClientSettings,
) -> ApiClient {
    let c = sandbox.credentials();
    let tokens = TokenManager::new(
        OAuthConfig::new(
            &c.client_id,
            SecretString::from(c.client_secret.clone()),
            &c.token_url,
            &c.authorize_url,
        )
        .with_revoke_url(&c.revoke_url),
        store.clone(),
        clock.clone(),
    )
    .expect("a token manager");
    let budget = RateBudget::new(
        &c.client_id,
        BudgetSettings::new(per_second, per_day, 0.6),
        store.clone(),
        clock.clone(),
    );
    ApiClient::new(settings, Arc::new(budget), tokens).expect("an API client")
}
