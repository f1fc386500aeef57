//! A daemon (built as `ctct-sync run` builds it) against the sandbox and the local RabbitMQ, with its own uniquely named
//! topology, a results queue bound to its results exchange, and helpers to publish commands
//! and wait for results (with deadlines, never bare sleeps).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ctct_sync::api::ApiClient;
use ctct_sync::clock::Clock;
use ctct_sync::command::outcome::CommandResult;
use ctct_sync::config::Settings;
use ctct_sync::daemon::Daemon;
use ctct_sync::mirror::{ContactsPath, MirrorOptions};
use ctct_sync::pipeline::PipelineSettings;
use ctct_sync::pipeline::process::Processor;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Consumer};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::api::TestApi;

/// The broker the tests use; `AMQP_ADDR` overrides it.
pub fn amqp_url() -> String {
    std::env::var("AMQP_ADDR").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Settings with unique names for one test.
pub fn unique_settings(extra: &[(&str, &str)]) -> Settings {
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let mut env: HashMap<String, String> = [
        ("CTCT_SYNC__AMQP__URL", amqp_url()),
        (
            "CTCT_SYNC__AMQP__COMMANDS_QUEUE",
            format!("t-{tag}.commands"),
        ),
        (
            "CTCT_SYNC__AMQP__RESULTS_EXCHANGE",
            format!("t-{tag}.results"),
        ),
        (
            "CTCT_SYNC__AMQP__DEAD_LETTER_QUEUE",
            format!("t-{tag}.dead"),
        ),
        (
            "CTCT_SYNC__AMQP__UNROUTED_QUEUE",
            format!("t-{tag}.unrouted"),
        ),
        ("CTCT_SYNC__AMQP__WORKERS", "4".into()),
        ("CTCT_SYNC__AMQP__PREFETCH", "16".into()),
        ("CTCT_SYNC__AMQP__SHUTDOWN_GRACE_MS", "10000".into()),
        // Short waits so retries and parking take moments, not minutes.
        ("CTCT_SYNC__AMQP__RETRY_DELAYS_MS", "200,400".into()),
        ("CTCT_SYNC__AMQP__REAUTH_RECHECK_MS", "300".into()),
        ("CTCT_SYNC__AMQP__PARK_JITTER_MS", "0".into()),
        // A daemon killed by a test lets its claims lapse in moments.
        ("CTCT_SYNC__AMQP__CLAIM_LEASE_MS", "1500".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (key, value) in extra {
        env.insert((*key).to_owned(), (*value).to_owned());
    }
    Settings::load(None, env).expect("test settings are valid")
}

/// A second daemon of a test (see [`TestDaemon::start_another_pipeline`]).
pub struct OtherDaemon {
    pub processor: Arc<Processor>,
    /// Its commands queue.
    pub queue: String,
    topology: ctct_sync::amqp::Topology,
    /// Its queues are its own (deleted when it stops), not the first daemon's.
    own_queue: bool,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl OtherDaemon {
    /// Stops it as a signal would, within `within`, and deletes its queues (through `d`'s
    /// channel); true when it stopped in time.
    pub async fn stop(self, d: &TestDaemon, within: Duration) -> bool {
        self.shutdown.cancel();
        let stopped = matches!(
            tokio::time::timeout(within, self.task).await,
            Ok(Ok(Ok(())))
        );
        if self.own_queue {
            let _ = self.topology.delete(&d.channel).await;
        }
        stopped
    }
}

pub struct TestDaemon {
    pub api: TestApi,
    /// The test's own settings (unique topology, short waits, its `extra`); each
    /// [`TestDaemon::start_pipeline`] builds the daemon from them plus the sandbox, the store
    /// and the limits of `api` (see [`TestDaemon::daemon_settings`]).
    pub settings: Settings,
    /// The pipeline settings of the last daemon started (of `settings` before that).
    pub pipeline_settings: PipelineSettings,
    pub processor: Option<Arc<Processor>>,
    /// The API client of the last daemon started: its own, over the same store as
    /// `api.client` (in-memory counters such as the budget's are this one's).
    pub client: Option<ApiClient>,
    /// Where this pipeline's `/metrics`, `/healthz` and `/readyz` answer.
    pub ops_addr: Option<std::net::SocketAddr>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    pub conn: Connection,
    pub channel: Channel,
    /// The test's queue bound to the results exchange (routing key `#`).
    pub results_queue: String,
    results: Consumer,
    /// Every result received so far, in arrival order.
    pub received: Vec<CommandResult>,
    /// Every event (non-result message) received so far, with its routing key.
    pub events: Vec<(String, Value)>,
    /// Every message from the results exchange as published: routing key, headers, body.
    pub messages: Vec<(String, FieldTable, Value)>,
    /// The mirror's tuning in the daemons this test starts (see
    /// [`TestDaemon::start_with_mirror`]).
    mirror_options: MirrorOptions,
    /// The state store's `postgres://` URL when the daemons run on PostgreSQL (see
    /// [`TestDaemon::start_on_postgres`]); unset, they use `api`'s SQLite file.
    pub state_url: Option<String>,
}

impl TestDaemon {
    pub async fn start() -> Self {
        Self::start_with(TestApi::start().await, &[]).await
    }

    /// [`TestDaemon::start`] with the stores on `engine`.
    pub async fn start_on(engine: super::engine::Engine) -> Self {
        Self::start_with(TestApi::start_on(engine).await, &[]).await
    }

    /// A daemon whose mirror reads contacts by paging (the sandbox's export is slow to
    /// poll), for tests of `mirror.run`; its runs publish their events to the results
    /// exchange, as every daemon's do.
    pub async fn start_with_mirror(api: TestApi, extra: &[(&str, &str)]) -> Self {
        let mut daemon = Self::start_unstarted(api, extra).await;
        daemon.mirror_options = MirrorOptions {
            contacts_path: ContactsPath::Paging,
            ..MirrorOptions::default()
        };
        daemon.start_pipeline().await;
        daemon
    }

    /// A daemon on `api` with extra `CTCT_SYNC__…` settings.
    pub async fn start_with(api: TestApi, extra: &[(&str, &str)]) -> Self {
        let mut daemon = Self::start_unstarted(api, extra).await;
        daemon.start_pipeline().await;
        daemon
    }

    /// Everything but the daemon: start it with [`TestDaemon::start_pipeline`] or
    /// [`TestDaemon::start_pipeline_in_background`].
    pub async fn start_unstarted(api: TestApi, extra: &[(&str, &str)]) -> Self {
        Self::start_unstarted_on(api, &amqp_url(), unique_settings(extra)).await
    }

    /// [`TestDaemon::start_unstarted`] with `settings` (see [`unique_settings`]) and the
    /// test's own connection — publishing, its results queue, declaring the topology — to
    /// `broker` (a node of a test's cluster).
    pub async fn start_unstarted_on(api: TestApi, broker: &str, settings: Settings) -> Self {
        let pipeline_settings = PipelineSettings::from_settings(&settings);
        let conn = Connection::connect(broker, lapin::ConnectionProperties::default())
            .await
            .expect("RabbitMQ on 127.0.0.1:5672 (see README), or the test's cluster");
        let channel = conn.create_channel().await.unwrap();
        channel.confirm_select(Default::default()).await.unwrap();
        pipeline_settings.topology.declare(&channel).await.unwrap();
        let results_queue = exclusive_queue(&channel).await;
        channel
            .queue_bind(
                results_queue.as_str().into(),
                pipeline_settings.topology.results_exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let results = channel
            .basic_consume(
                results_queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        TestDaemon {
            api,
            settings,
            pipeline_settings,
            processor: None,
            client: None,
            ops_addr: None,
            shutdown: CancellationToken::new(),
            task: None,
            conn,
            channel,
            results_queue,
            results,
            received: Vec::new(),
            events: Vec::new(),
            messages: Vec::new(),
            mirror_options: MirrorOptions::default(),
            state_url: None,
        }
    }

    /// A daemon whose state store is the PostgreSQL database `db` (schema `ctct_state`), with
    /// the sandbox's account authorised there; the mirror stays a SQLite file beside `api`'s.
    pub async fn start_on_postgres(db: &super::pg::PgTestDb) -> Self {
        let mut daemon = Self::start_unstarted(TestApi::start().await, &[]).await;
        let (store, _) = ctct_sync::store::Store::connect_postgres(
            &secrecy::SecretString::from(db.url().to_owned()),
            &daemon.settings.store.schema,
        )
        .await
        .expect("the test database takes the state store");
        let api = &daemon.api;
        let client = super::api::build_client(
            &api.sandbox,
            &store,
            &api.clock,
            api.per_second,
            api.per_day,
        );
        let admin = api.sandbox.admin();
        let grant = admin
            .issue_refresh_token(&admin.primary_account())
            .expect("a grant for the primary account");
        client
            .tokens()
            .import_refresh_token("default", secrecy::SecretString::from(grant))
            .await
            .expect("the grant imports into the PostgreSQL store");
        daemon.state_url = Some(db.url().to_owned());
        daemon.start_pipeline().await;
        daemon
    }

    /// The settings a daemon of this test is built from: the test's `settings` pointed at
    /// the sandbox (API and OAuth endpoints, client credentials), the stores and the
    /// limits of `api`, the ops listener on a free loopback port.
    pub fn daemon_settings(&self) -> Settings {
        let mut settings = self.settings.clone();
        ctct_sync::daemon::point_at_sandbox(&mut settings, self.api.sandbox.credentials());
        self.api.locate_stores(&mut settings);
        if self.api.pg.is_none()
            && let Some(url) = self.state_url.as_ref().or(self.api.state_url.as_ref())
        {
            // Only the state store on PostgreSQL (a test's database or a proxy to it).
            settings.store.url = Some(ctct_sync::config::SecretUrl::new(url));
            settings.store.path = std::path::PathBuf::new();
            settings.store.schema = super::api::PG_STATE_SCHEMA.to_owned();
            settings.mirror.url = Some(ctct_sync::config::SecretUrl::new(&format!(
                "sqlite://{}",
                self.api.mirror_path().display()
            )));
        }
        settings.limits.per_second = self.api.per_second;
        settings.limits.per_day = self.api.per_day;
        settings.ops.enabled = true;
        settings.ops.listen = "127.0.0.1:0".parse().unwrap();
        settings
    }

    /// Builds a daemon (`Daemon::builder`, as `ctct-sync run` does) over the same store,
    /// sandbox and topology, on the test's clock and without the mirror's schedules, and
    /// runs it until [`TestDaemon::stop_pipeline`].
    pub async fn start_pipeline(&mut self) {
        let settings = self.daemon_settings();
        self.pipeline_settings = PipelineSettings::from_settings(&settings);
        let clock: Arc<dyn Clock> = self.api.clock.clone();
        let daemon = Daemon::builder(settings)
            .clock(clock)
            .mirror_options(self.mirror_options.clone())
            .mirror_schedule(false)
            .build()
            .await
            .expect("the daemon builds");
        self.processor = Some(daemon.pipeline.processor());
        self.client = Some(daemon.client.clone());
        self.ops_addr = Some(daemon.ops_addr().expect("the ops listener is bound"));
        self.shutdown = CancellationToken::new();
        self.task = Some(tokio::spawn(daemon.run(self.shutdown.clone())));
    }

    /// As [`TestDaemon::start_pipeline`], but returns at once, with the ops listener bound
    /// (`ops_addr`): the build (which may wait for an unreachable database) and the run go
    /// on in a task. `processor` and `client` stay unset.
    pub fn start_pipeline_in_background(&mut self) {
        let settings = self.daemon_settings();
        self.pipeline_settings = PipelineSettings::from_settings(&settings);
        let clock: Arc<dyn Clock> = self.api.clock.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        self.ops_addr = Some(listener.local_addr().expect("the listener has an address"));
        self.shutdown = CancellationToken::new();
        let shutdown = self.shutdown.clone();
        let builder = Daemon::builder(settings)
            .clock(clock)
            .mirror_options(self.mirror_options.clone())
            .mirror_schedule(false)
            .ops_listener(listener)
            .shutdown(shutdown.clone());
        self.task = Some(tokio::spawn(async move {
            let daemon = builder.build().await?;
            daemon.run(shutdown).await
        }));
    }

    /// Another daemon (another process, as `ctct-sync run` builds it) on the same store and
    /// sandbox as this one's, publishing to the same results exchange and dead-letter queue
    /// but consuming a commands queue of its own ([`OtherDaemon::queue`]; the commands queue
    /// has a single active consumer, so two daemons on one queue take turns instead of
    /// working together). It runs until [`OtherDaemon::stop`].
    pub async fn start_another_pipeline(&self) -> OtherDaemon {
        self.start_other(true).await
    }

    /// Another replica of this daemon: as [`TestDaemon::start_another_pipeline`], but
    /// consuming this daemon's own commands queue (single active consumer: one of the two
    /// receives the commands at a time).
    pub async fn start_replica(&self) -> OtherDaemon {
        self.start_other(false).await
    }

    async fn start_other(&self, own_queue: bool) -> OtherDaemon {
        let clock: Arc<dyn Clock> = self.api.clock.clone();
        let mut settings = self.daemon_settings();
        if own_queue {
            settings.amqp.commands_queue = format!("{}.other", settings.amqp.commands_queue);
        }
        let topology = PipelineSettings::from_settings(&settings).topology;
        topology.declare(&self.channel).await.unwrap();
        let daemon = Daemon::builder(settings)
            .clock(clock)
            .mirror_options(self.mirror_options.clone())
            .mirror_schedule(false)
            .build()
            .await
            .expect("the other daemon builds");
        let processor = daemon.pipeline.processor();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(daemon.run(shutdown.clone()));
        OtherDaemon {
            processor,
            queue: topology.commands_queue.clone(),
            topology,
            own_queue,
            shutdown,
            task,
        }
    }

    /// GETs a path on the ops listener: (status, body).
    pub async fn ops(&self, path: &str) -> (u16, String) {
        let url = format!(
            "http://{}{path}",
            self.ops_addr.expect("a pipeline was started")
        );
        let response = reqwest::get(&url).await.expect("the ops listener answers");
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    }

    /// Asks the pipeline to stop and waits for it (at most `within`). True if it stopped.
    pub async fn stop_pipeline(&mut self, within: Duration) -> bool {
        self.shutdown.cancel();
        let Some(task) = self.task.take() else {
            return true;
        };
        match tokio::time::timeout(within, task).await {
            Ok(Ok(Err(error))) => panic!("the daemon stopped with an error: {error:#}"),
            Ok(_) => true,
            Err(_) => false,
        }
    }

    pub fn queue(&self) -> &str {
        &self.pipeline_settings.topology.commands_queue
    }

    pub fn processor(&self) -> &Arc<Processor> {
        self.processor.as_ref().expect("a pipeline was started")
    }

    /// Publishes a command envelope to the commands queue (confirmed).
    pub async fn publish(&self, id: &str, command_type: &str, data: Value) {
        let body = serde_json::json!({"id": id, "type": command_type, "data": data});
        self.publish_body(
            serde_json::to_vec(&body).unwrap().as_slice(),
            json_properties(),
        )
        .await;
    }

    /// Publishes a command for another account.
    pub async fn publish_for(&self, account: &str, id: &str, command_type: &str, data: Value) {
        let body =
            serde_json::json!({"id": id, "type": command_type, "account": account, "data": data});
        self.publish_body(
            serde_json::to_vec(&body).unwrap().as_slice(),
            json_properties(),
        )
        .await;
    }

    /// Publishes raw bytes with the given properties (confirmed).
    pub async fn publish_body(&self, body: &[u8], properties: BasicProperties) {
        self.publish_body_to(self.queue(), body, properties).await;
    }

    /// Publishes a raw message to `queue` (confirmed).
    pub async fn publish_body_to(&self, queue: &str, body: &[u8], properties: BasicProperties) {
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                queue.into(),
                Default::default(),
                body,
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack(), "the broker took the command");
    }

    /// Receives the next message from the results exchange, or `None` after `within`.
    async fn receive(&mut self, within: Duration) -> Option<()> {
        let delivery = tokio::time::timeout(within, self.results.next())
            .await
            .ok()??
            .ok()?;
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        let routing_key = delivery.routing_key.to_string();
        self.messages.push((
            routing_key.clone(),
            delivery.properties.headers().clone().unwrap_or_default(),
            serde_json::from_slice(&delivery.data).unwrap_or(Value::Null),
        ));
        match serde_json::from_slice::<CommandResult>(&delivery.data) {
            Ok(result) => self.received.push(result),
            Err(_) => self.events.push((
                routing_key,
                serde_json::from_slice(&delivery.data).unwrap_or(Value::Null),
            )),
        }
        Some(())
    }

    /// Publishes one command, waits for its result, asserts it succeeded and returns its data.
    pub async fn succeeded(&mut self, id: &str, command_type: &str, data: Value) -> Value {
        self.publish(id, command_type, data).await;
        let result = self.result(id).await;
        assert_eq!(
            result.outcome,
            ctct_sync::command::outcome::Outcome::Succeeded,
            "{id}: {:?}",
            result.error
        );
        result.data.expect("data")
    }

    /// [`TestDaemon::succeeded`] for a command that creates something: the id its result's
    /// `data` holds under `key`.
    pub async fn created(
        &mut self,
        id: &str,
        command_type: &str,
        data: Value,
        key: &str,
    ) -> String {
        let data = self.succeeded(id, command_type, data).await;
        data[key]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: no {key} in {data}"))
            .to_owned()
    }

    /// The contact as the sandbox holds it (its primary account).
    pub fn sandbox_contact(&self, contact_id: &str) -> Value {
        let admin = self.api.sandbox.admin();
        admin
            .contact(
                &admin.primary_account(),
                contact_id.parse().expect("a UUID"),
            )
            .expect("the sandbox answers")
            .expect("the contact exists")
    }

    /// How many requests the sandbox has had whose path starts with `prefix`.
    pub fn requests_under(&self, prefix: &str) -> usize {
        self.api
            .sandbox
            .admin()
            .request_log()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    /// Waits (at most 30 s) until a final result for `id` has arrived and returns the first.
    pub async fn result(&mut self, id: &str) -> CommandResult {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(found) = self.received.iter().find(|r| r.command_id == id) {
                return found.clone();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "no result for {id} within 30 s; got {:?}",
                self.ids()
            );
            self.receive(left).await;
        }
    }

    /// Waits (at most `within`) until every id has a result; returns all results per id.
    pub async fn results(
        &mut self,
        ids: &[String],
        within: Duration,
    ) -> HashMap<String, Vec<CommandResult>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let missing = ids
                .iter()
                .filter(|id| !self.received.iter().any(|r| &r.command_id == *id))
                .count();
            if missing == 0 {
                break;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "{missing} of {} commands have no result",
                ids.len()
            );
            self.receive(left).await;
        }
        let mut by_id: HashMap<String, Vec<CommandResult>> = HashMap::new();
        for result in &self.received {
            by_id
                .entry(result.command_id.clone())
                .or_default()
                .push(result.clone());
        }
        by_id
    }

    /// Receives until `done` holds (true) or `within` has passed (false). `done` is asked
    /// again at least every 50 ms, so it may also watch what no message announces (the
    /// processor's counters, the sandbox).
    pub async fn receive_until(&mut self, within: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if done(self) {
                return true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            self.receive(left.min(Duration::from_millis(50))).await;
        }
    }

    /// Collects whatever arrives during `window` (to check that nothing more comes).
    pub async fn drain(&mut self, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.receive(left).await.is_none() {
                return;
            }
        }
    }

    fn ids(&self) -> Vec<&str> {
        self.received
            .iter()
            .map(|r| r.command_id.as_str())
            .collect()
    }

    /// Messages ready in `queue`.
    pub async fn depth(&self, queue: &str) -> u32 {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.message_count())
            .unwrap_or(0)
    }

    /// Stops everything and deletes the test's topology.
    pub async fn stop(mut self) {
        self.stop_pipeline(Duration::from_secs(15)).await;
        let _ = self.pipeline_settings.topology.delete(&self.channel).await;
        let _ = self.conn.close(200, "test done".into()).await;
        self.api.stop().await;
    }

    /// A `ctct-sync` command (`args`) using this test's sandbox, store and topology.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = super::ctct_sync_process(self.api.dir.path());
        let amqp = &self.settings.amqp;
        cmd.args(args)
            .envs(self.api.cli_env())
            .env("CTCT_SYNC__AMQP__URL", amqp_url())
            .env("CTCT_SYNC__AMQP__COMMANDS_QUEUE", &amqp.commands_queue)
            .env("CTCT_SYNC__AMQP__RESULTS_EXCHANGE", &amqp.results_exchange)
            .env(
                "CTCT_SYNC__AMQP__DEAD_LETTER_QUEUE",
                &amqp.dead_letter_queue,
            )
            .env("CTCT_SYNC__AMQP__UNROUTED_QUEUE", &amqp.unrouted_queue)
            .env("CTCT_SYNC__AMQP__RETRY_DELAYS_MS", "200,400")
            .env("CTCT_SYNC__AMQP__REAUTH_RECHECK_MS", "300")
            .env("CTCT_SYNC__AMQP__PARK_JITTER_MS", "0")
            .env("CTCT_SYNC__AMQP__CLAIM_LEASE_MS", "1500")
            .env("CTCT_SYNC__OPS__LISTEN", "127.0.0.1:0")
            .env(
                "CTCT_SYNC__LIMITS__PER_SECOND",
                self.api.per_second.to_string(),
            )
            .env("CTCT_SYNC__LIMITS__PER_DAY", self.api.per_day.to_string());
        cmd
    }

    /// A `ctct-sync run` process using this test's sandbox, store and topology.
    pub fn spawn_process(&self) -> tokio::process::Child {
        self.command(&["run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the daemon starts")
    }
}

/// Consumes `queue` without acknowledgements (a test reading replies or results).
pub async fn consume_no_ack(channel: &Channel, queue: &str) -> lapin::Consumer {
    channel
        .basic_consume(
            queue.into(),
            "".into(),
            lapin::options::BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consuming")
}

/// A server-named queue of this test's own, deleted with its connection or its consumer.
pub async fn exclusive_queue(channel: &Channel) -> String {
    channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("a queue of the test's own")
        .name()
        .to_string()
}

/// Properties of a well-formed command message.
pub fn json_properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
}

/// Closes this daemon's broker connections from the broker's side (a network cut).
pub async fn close_daemon_connections(commands_queue: &str) -> usize {
    let output = tokio::process::Command::new("rabbitmqctl")
        .args(["list_connections", "pid", "client_properties"])
        .output()
        .await
        .expect("rabbitmqctl runs");
    let listing = String::from_utf8_lossy(&output.stdout);
    let mut closed = 0;
    for line in listing.lines() {
        if !line.contains(&format!(" {commands_queue}\"")) {
            continue;
        }
        let Some(pid) = line.split_whitespace().next() else {
            continue;
        };
        let status = tokio::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "network cut by test"])
            .output()
            .await
            .expect("rabbitmqctl runs");
        if status.status.success() {
            closed += 1;
        }
    }
    closed
}

impl TestDaemon {
    /// A `ctct-sync run` process like [`TestDaemon::spawn_process`] with `extra` environment
    /// settings, its stderr written to `NAME.log` in the test's directory (a pipe nobody
    /// reads could fill and stall it).
    pub fn spawn_with_log(
        &self,
        name: &str,
        extra: &[(&str, &str)],
    ) -> (tokio::process::Child, std::path::PathBuf) {
        let log = self.api.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("the daemon's log file");
        let child = self
            .command(&["run"])
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("the daemon starts");
        (child, log)
    }
}

/// Asks a child to stop as an operator would (SIGTERM) and waits (at most 30 s) for a clean
/// exit.
pub async fn terminate(child: &mut tokio::process::Child) {
    let pid = child.id().expect("the child runs").to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(sent.success(), "SIGTERM reached the process");
    let exited = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the process stops within 30 s after SIGTERM")
        .expect("the process's exit status");
    assert!(exited.success(), "a clean stop: {exited:?}");
}
