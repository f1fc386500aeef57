//! The drill itself: set up the sandbox, the store, the queues and the first daemon; publish
//! the plan (dependent commands only once what they depend on has its result) while the
//! schedule's events happen; then wait for every result and let the queues drain.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use ctct_sandbox::{LimitsMode, SandboxOptions};
use ctct_sync::api::model::account::AccountEmailFilter;
use ctct_sync::command::outcome::CommandResult;
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::time::Instant;

use crate::broker::{BrokerGuard, Link};
use crate::build::{self, Context};
use crate::daemons::Daemons;
use crate::faults::Event;
use crate::ha::{CLAIM_LEASE_MS, Ha, HaOptions};
use crate::plan::Plan;
use crate::support::api::TestApi;
use crate::support::cluster::TestCluster;
use crate::support::daemon::TestDaemon;
use crate::support::daemon::unique_settings;
use crate::support::engine::Engine;
use crate::support::tls_pg::TlsCluster;

/// Published commands without a final result yet, at most.
const WINDOW: usize = 48;
/// No command published and no result received for this long: the drill is stuck.
const STALL: Duration = Duration::from_secs(180);

/// How the drill runs (environment variables `CTCT_DRILL_*`, see docs/reliability.md).
#[derive(Debug, Clone)]
pub struct Options {
    pub commands: usize,
    pub kills: usize,
    pub broker_restarts: usize,
    pub seed: u64,
    /// Requests per second of the sandbox and the daemon (real limits); 0 turns limits off.
    pub per_second: u32,
    pub log_level: String,
    /// Keep the children's logs here instead of in the test's temporary directory.
    pub log_dir: Option<PathBuf>,
}

/// Counters the events keep.
#[derive(Debug, Default)]
pub struct Figures {
    pub kills: u32,
    pub broker_restarts: u32,
    pub quota_restarts: u32,
    pub reauthorisations: u32,
    pub parked_for_quota: usize,
    /// Requests whose answer came after the client's timeout, with the daemon alive.
    pub timeouts: u32,
    /// `slow_down` answers `ctct-sync auth import` met (and rode out), and the drill's own.
    pub import_slow_downs: usize,
    pub own_slow_downs: usize,
    pub events: Vec<String>,
}

/// A condition the drill waits for (with a deadline), reading results meanwhile.
pub enum Until {
    /// More `account.reauth_required` events than this have arrived.
    Announced(usize),
}

pub struct Drill {
    pub d: TestDaemon,
    pub link: Link,
    pub daemons: Daemons,
    pub broker: BrokerGuard,
    pub plan: Plan,
    pub cx: Context,
    pub options: Options,
    /// Commands published (unique ids).
    pub published: usize,
    pub figures: Figures,
    /// `(what, value)` of every token and secret seen during the run.
    pub secrets: BTreeSet<(String, String)>,
    /// The first final result of each plan step.
    pub results: HashMap<usize, CommandResult>,
    pub index_of: HashMap<String, usize>,
    pub sent: Vec<bool>,
    /// Steps not published because a step they needed an id from did not succeed.
    pub skipped: HashMap<usize, String>,
    /// Timeout faults installed and not yet struck (ids), and when the struck ones struck.
    pub timeouts_pending: Vec<u64>,
    pub timeouts_struck: Vec<Instant>,
    /// A `quota_exceeded` fault was installed and its day is not over yet (see
    /// [`Drill::next_day_once_parked`]).
    pub quota_pending: bool,
    absorbed: usize,
    sampled: Instant,
    /// The replica drill's cluster, PostgreSQL server and figures.
    pub ha: Option<Ha>,
}

/// Where a drill runs.
enum Bed {
    /// One daemon at a time, on the broker on 5672, the stores on `Engine`.
    Single(Engine),
    /// Replicas on a cluster of the drill's own and a PostgreSQL server of its own.
    Replicas(HaOptions),
}

impl Drill {
    /// Sets up the drill with the state and mirror stores on `engine`.
    pub async fn start(options: Options, engine: Engine) -> Drill {
        Drill::start_on(options, Bed::Single(engine)).await
    }

    /// Sets up the replica drill (ha.rs): a three-node RabbitMQ cluster and a private
    /// PostgreSQL server holding both stores, with `ha.replicas` daemons.
    pub async fn start_replicas(options: Options, ha: HaOptions) -> Drill {
        Drill::start_on(options, Bed::Replicas(ha)).await
    }

    async fn start_on(options: Options, bed: Bed) -> Drill {
        let mut sandbox = SandboxOptions::for_tests();
        let per_day = 1_000_000;
        let per_second = if options.per_second > 0 {
            sandbox.limits = LimitsMode::Real;
            sandbox.per_second = options.per_second;
            sandbox.per_day = per_day;
            options.per_second
        } else {
            1000
        };
        let (mut d, ha) = match bed {
            Bed::Single(engine) => {
                let api = TestApi::start_with_on(engine, sandbox, per_second, per_day).await;
                (TestDaemon::start_with(api, &[]).await, None)
            }
            Bed::Replicas(ha_options) => {
                let pg = TlsCluster::start_without_tls();
                let cluster = TestCluster::up().await;
                let state = pg.url("127.0.0.1", "sslmode=disable");
                let api = TestApi::start_with_state_at(&state, sandbox, per_second, per_day).await;
                let settings =
                    unique_settings(&[("CTCT_SYNC__AMQP__URLS", &Ha::replica_urls(&cluster))]);
                let mut d = TestDaemon::start_unstarted_on(api, &cluster.url(1), settings).await;
                d.start_pipeline().await;
                (d, Some(Ha::new(cluster, pg, ha_options)))
            }
        };
        d.publish(
            "drill-setup-list",
            "list.create",
            json!({"name": "Drill list"}),
        )
        .await;
        let list_id = d.result("drill-setup-list").await.data.expect("a list")["list_id"]
            .as_str()
            .expect("a list id")
            .to_owned();
        assert!(
            d.stop_pipeline(Duration::from_secs(15)).await,
            "the in-process pipeline steps aside for the daemon processes"
        );
        let owner = d
            .api
            .api()
            .list_account_emails(&AccountEmailFilter::Confirmed)
            .await
            .expect("the account's e-mails")[0]
            .email_address
            .clone();
        let schedule_base = chrono::DurationRound::duration_trunc(
            chrono::Utc::now() + chrono::Duration::days(30),
            chrono::Duration::minutes(1),
        )
        .expect("a whole minute");
        let plan = Plan::generate(options.seed, options.commands);
        let log_dir = options
            .log_dir
            .clone()
            .unwrap_or_else(|| d.api.dir.path().join("logs"));
        let mut env = vec![
            (
                "CTCT_SYNC__LOG__LEVEL".to_owned(),
                options.log_level.clone(),
            ),
            // Fault stacking (kills + 5xx + dropped answers) must not exhaust a command.
            ("CTCT_SYNC__AMQP__MAX_ATTEMPTS".to_owned(), "12".to_owned()),
            // The mirror's cron stays out of the way (its requests would eat counted faults).
            (
                "CTCT_SYNC__MIRROR__SCHEDULE".to_owned(),
                "0 0 0 1 1 *".to_owned(),
            ),
            (
                "CTCT_SYNC__MIRROR__INCREMENTAL_SCHEDULE".to_owned(),
                "0 0 0 1 1 *".to_owned(),
            ),
            (
                "CTCT_SYNC__BULK__POLL_INITIAL_MS".to_owned(),
                "1000".to_owned(),
            ),
            ("CTCT_SYNC__BULK__POLL_MAX_MS".to_owned(), "4000".to_owned()),
        ];
        if let Some(ha) = &ha {
            let state = ha.pg.url("127.0.0.1", "sslmode=disable");
            env.extend([
                (
                    "CTCT_SYNC__AMQP__URLS".to_owned(),
                    Ha::replica_urls(&ha.cluster),
                ),
                ("CTCT_SYNC__MIRROR__URL".to_owned(), state),
                (
                    "CTCT_SYNC__AMQP__CLAIM_LEASE_MS".to_owned(),
                    CLAIM_LEASE_MS.to_string(),
                ),
            ]);
        }
        let topology = d.pipeline_settings.topology.clone();
        let link = match &ha {
            None => Link::open(&topology, Duration::from_secs(30)).await,
            Some(ha) => {
                let urls = (1..=3).map(|n| ha.cluster.url(n)).collect();
                Link::open_on(&topology, urls, true, Duration::from_secs(30)).await
            }
        };
        let mut daemons = Daemons::new(&log_dir, env);
        let replicas = ha.as_ref().map_or(1, |ha| ha.options.replicas);
        for slot in 0..replicas {
            daemons.start_slot(&d, slot);
        }
        let credentials = d.api.sandbox.credentials().clone();
        let n = plan.steps.len();
        let index_of = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let mut drill = Drill {
            d,
            link,
            daemons,
            broker: BrokerGuard::new(&topology),
            plan,
            cx: Context {
                list_id,
                owner,
                schedule_base,
            },
            options,
            published: 0,
            figures: Figures::default(),
            secrets: BTreeSet::new(),
            results: HashMap::new(),
            index_of,
            sent: vec![false; n],
            skipped: HashMap::new(),
            timeouts_pending: Vec::new(),
            timeouts_struck: Vec::new(),
            quota_pending: false,
            absorbed: 0,
            sampled: Instant::now(),
            ha,
        };
        drill.secret("client secret", &credentials.client_secret);
        drill.secret("sandbox's ready refresh token", &credentials.refresh_token);
        drill.sample_tokens().await;
        drill
    }

    pub fn secret(&mut self, what: &str, value: &str) {
        self.secrets.insert((what.to_owned(), value.to_owned()));
    }

    /// Remembers the tokens the store holds now (they rotate during the run).
    async fn sample_tokens(&mut self) {
        self.sampled = Instant::now();
        if let Ok(Some(row)) = self.d.api.client.tokens().account("default").await {
            if let Some(token) = &row.access_token {
                self.secret("access token", token.expose_secret());
            }
            if let Some(token) = &row.refresh_token {
                self.secret("refresh token", token.expose_secret());
            }
        }
    }

    /// Reads what the results exchange brought (waiting at most `within` for the first),
    /// samples the tokens, and restarts a daemon that died by itself.
    pub async fn absorb(&mut self, within: Duration) {
        if self.link.pump(within).await {
            for _ in 0..1000 {
                if !self.link.pump(Duration::from_millis(1)).await {
                    break;
                }
            }
        }
        while self.absorbed < self.link.received.len() {
            let result = &self.link.received[self.absorbed];
            if let Some(&index) = self.index_of.get(&result.command_id) {
                self.results.entry(index).or_insert_with(|| result.clone());
            }
            self.absorbed += 1;
        }
        if !self.timeouts_pending.is_empty() {
            let active: Vec<u64> = self
                .d
                .api
                .sandbox
                .admin()
                .faults()
                .iter()
                .map(|f| f.id)
                .collect();
            let struck = self.timeouts_pending.len();
            self.timeouts_pending.retain(|id| active.contains(id));
            for _ in self.timeouts_pending.len()..struck {
                self.timeouts_struck.push(Instant::now());
            }
        }
        if self.sampled.elapsed() > Duration::from_millis(500) {
            self.sample_tokens().await;
        }
        self.daemons.restart_if_exited(&self.d);
    }

    pub async fn wait_until(&mut self, until: Until, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let holds = match &until {
                Until::Announced(before) => self.reauth_events() > *before,
            };
            if holds {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {within:?} in vain; events so far: {:?}",
                self.figures.events
            );
            self.absorb(Duration::from_millis(100)).await;
        }
    }

    fn resolved(&self, index: usize) -> bool {
        self.results.contains_key(&index) || self.skipped.contains_key(&index)
    }

    fn ready(&self, index: usize) -> bool {
        self.plan.steps[index]
            .deps
            .iter()
            .all(|d| self.resolved(*d))
    }

    async fn publish_step(&mut self, index: usize) {
        let results = &self.results;
        match build::message(&self.plan, index, &self.cx, |j| results.get(&j).cloned()) {
            Ok(out) => {
                self.link.publish(&out.body, &out.properties).await;
                self.sent[index] = true;
                self.published += 1;
            }
            Err(why) => {
                self.skipped.insert(index, why);
            }
        }
    }

    /// Publishes the plan while the events happen at their places.
    pub async fn publish_all(&mut self, events: Vec<(usize, Event)>) {
        let n = self.plan.steps.len();
        let mut events = events.into_iter().peekable();
        let mut next = 0;
        let mut deferred: Vec<usize> = Vec::new();
        let mut last_progress = Instant::now();
        let mut seen_results = 0;
        while next < n || !deferred.is_empty() {
            while let Some((at, _)) = events.peek()
                && *at <= self.published
            {
                let (_, event) = events.next().expect("peeked");
                self.perform(event).await;
            }
            let mut progressed = false;
            let ready: Vec<usize> = deferred
                .iter()
                .copied()
                .filter(|i| self.ready(*i))
                .collect();
            deferred.retain(|i| !ready.contains(i));
            for index in ready {
                self.publish_step(index).await;
                progressed = true;
            }
            let mut burst = 0;
            while next < n && self.published - self.results.len() < WINDOW && burst < 16 {
                if self.ready(next) {
                    self.publish_step(next).await;
                } else {
                    deferred.push(next);
                }
                next += 1;
                burst += 1;
                progressed = true;
            }
            let wait = if progressed { 1 } else { 50 };
            self.absorb(Duration::from_millis(wait)).await;
            self.next_day_once_parked().await;
            if progressed || self.results.len() > seen_results {
                seen_results = self.results.len();
                last_progress = Instant::now();
            }
            assert!(
                last_progress.elapsed() < STALL,
                "stuck: {} of {n} published, {} results, deferred {deferred:?}",
                self.published,
                self.results.len()
            );
        }
        for (_, event) in events {
            self.perform(event).await;
        }
    }

    /// Clears the faults, waits for every result and for empty queues, and stops the daemon.
    pub async fn finish(&mut self) {
        // A `quota_exceeded` installed late strikes one of the last commands: its day ends
        // before the faults are cleared.
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.quota_pending {
            assert!(
                Instant::now() < deadline,
                "the quota_exceeded fault never struck; events so far: {:?}",
                self.figures.events
            );
            self.absorb(Duration::from_millis(100)).await;
            self.next_day_once_parked().await;
        }
        // A timeout fault that never struck is not one (clearing would look like a strike).
        self.absorb(Duration::from_millis(1)).await;
        self.timeouts_pending.clear();
        self.d.api.sandbox.admin().clear_faults();
        let within = STALL.max(Duration::from_millis(40 * self.plan.steps.len() as u64));
        let deadline = Instant::now() + within;
        while self.results.len() < self.published && Instant::now() < deadline {
            self.absorb(Duration::from_millis(200)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.link.waiting().await > 0 && Instant::now() < deadline {
            self.absorb(Duration::from_millis(200)).await;
        }
        self.let_timeouts_run(false).await;
        // A quiet moment for late copies (replays) to arrive.
        let quiet = Instant::now() + Duration::from_secs(2);
        while Instant::now() < quiet {
            self.absorb(Duration::from_millis(200)).await;
        }
        self.daemons.kill().await;
        self.sample_tokens().await;
    }
}
