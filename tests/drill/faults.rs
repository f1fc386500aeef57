//! What goes wrong during the drill and when: a seeded schedule of daemon kills, broker
//! restarts and sandbox faults, placed by how many commands have been published, and how
//! each is carried out (some wait for their consequence and repair it, as an operator would).

use std::time::Duration;

use ctct_sandbox::FaultSpec;

use crate::plan::Rng;
use crate::run::{Drill, Until};

#[derive(Debug, Clone)]
pub enum Event {
    /// SIGKILL the daemon and start a new one at once.
    Kill,
    /// `rabbitmqctl stop_app`, a short outage, `start_app`.
    BrokerRestart,
    /// Sandbox faults that strike by themselves (5xx, latency, dropped connections, 429
    /// throttled): installed and left to run their course.
    Faults(&'static str, Vec<FaultSpec>),
    /// A create whose answer comes after the client's 30 s timeout (applied meanwhile).
    Timeout,
    /// 429 `quota_exceeded`, then the day's reset, simulated (the daemon runs on the real
    /// clock): kill, clear the stored "exhausted" mark, move the parked commands back, start.
    Quota,
    /// The grant is revoked at a request; once the daemon announces
    /// `account.reauth_required`, a fresh refresh token is imported with `ctct-sync auth
    /// import`. Twice, so the same daemon meets a second loss after being re-authorised
    /// from outside.
    Revoke,
    /// The replica drill (ha.rs): SIGKILL the active replica, start a replacement.
    KillActive,
    /// The replica drill: SIGSTOP the active replica until another one took over, SIGCONT.
    PauseActive,
    /// The replica drill: stop the RabbitMQ node leading the commands queue, start it again.
    LeaderNodeStop,
    /// The replica drill: restart PostgreSQL.
    PgRestart,
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Kill => "daemon SIGKILL",
            Event::BrokerRestart => "broker restart",
            Event::Faults(name, _) => name,
            Event::Timeout => "timeout",
            Event::Quota => "429 quota_exceeded",
            Event::Revoke => "token revocation",
            Event::KillActive => "active replica SIGKILL",
            Event::PauseActive => "active replica SIGSTOP",
            Event::LeaderNodeStop => "leader node stop",
            Event::PgRestart => "PostgreSQL restart",
        }
    }
}

/// The events of a run of `n` commands, each with the number of published commands it
/// waits for.
pub fn schedule(seed: u64, n: usize, kills: usize, broker_restarts: usize) -> Vec<(usize, Event)> {
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
    let mut events: Vec<Event> = Vec::new();
    events.extend(std::iter::repeat_n(Event::Kill, kills));
    events.extend(std::iter::repeat_n(Event::BrokerRestart, broker_restarts));
    events.extend(api_events(seed, n, None));
    place(&mut rng, n, events, early_timeout(n))
}

/// Every kind of API fault, round by round (one round per 2,000 commands): those that strike
/// by themselves ([`api_faults`]), a 429 `quota_exceeded` day, a token revocation and, from
/// the second round on, a timeout (the first is [`early_timeout`]).
pub fn api_events(seed: u64, n: usize, drops_under: Option<&str>) -> Vec<Event> {
    let mut events = Vec::new();
    for round in 0..rounds(n) {
        events.extend(api_faults(seed, round, drops_under));
        events.push(Event::Quota);
        events.push(Event::Revoke);
        if round > 0 {
            events.push(Event::Timeout);
        }
    }
    events
}

/// The first timeout goes early: its 30 s then overlap the rest of the run.
pub fn early_timeout(n: usize) -> Vec<(usize, Event)> {
    vec![(n / 20, Event::Timeout)]
}

/// Rounds of API faults in a run of `n` commands: one per 2,000.
pub fn rounds(n: usize) -> usize {
    (n / 2000).max(1)
}

/// The sandbox faults of round `round` that strike by themselves: 5xx, latency, dropped
/// connections (only under `drops_under`, a path prefix, when given) and 429 `throttled`.
pub fn api_faults(seed: u64, round: usize, drops_under: Option<&str>) -> Vec<Event> {
    let s = seed.wrapping_add(round as u64 * 101);
    let drop = |spec: FaultSpec| match drops_under {
        Some(prefix) => spec.path_prefix(prefix),
        None => spec,
    };
    vec![
        Event::Faults(
            "5xx",
            vec![
                FaultSpec::status(503).ratio(0.2, s).times(6),
                FaultSpec::status(500).times(2),
                FaultSpec::status(502).method("GET").times(2),
                FaultSpec::status(504).method("PUT").times(2),
            ],
        ),
        Event::Faults(
            "latency",
            vec![FaultSpec::latency(1500).ratio(0.25, s + 1).times(8)],
        ),
        Event::Faults(
            "dropped connections",
            vec![
                drop(FaultSpec::drop_connection().method("GET")).times(2),
                drop(FaultSpec::drop_connection().method("POST"))
                    .after_effect()
                    .times(2),
            ],
        ),
        Event::Faults(
            "429 throttled",
            vec![FaultSpec::throttled().ratio(0.3, s + 2).times(6)],
        ),
    ]
}

/// Shuffles `events` (Fisher–Yates with the drill's generator) and spreads them between 10%
/// and 80% of the run's `n` commands, with some jitter, after the `placed` ones; in order.
pub fn place(
    rng: &mut Rng,
    n: usize,
    mut events: Vec<Event>,
    mut placed: Vec<(usize, Event)>,
) -> Vec<(usize, Event)> {
    for i in (1..events.len()).rev() {
        let j = rng.below(i + 1);
        events.swap(i, j);
    }
    let (from, to) = (n / 10, n * 8 / 10);
    let step = (to - from) / events.len().max(1);
    for (k, event) in events.into_iter().enumerate() {
        let jitter = if step > 1 { rng.below(step / 2) } else { 0 };
        placed.push((from + k * step + jitter, event));
    }
    placed.sort_by_key(|(at, _)| *at);
    placed
}

impl Drill {
    pub async fn perform(&mut self, event: Event) {
        let started = tokio::time::Instant::now();
        let name = event.name();
        match event {
            Event::Kill => {
                self.let_timeouts_run(true).await;
                self.daemons.kill().await;
                self.daemons.start(&self.d);
                self.figures.kills += 1;
            }
            Event::BrokerRestart => {
                self.wait_for_a_quiet_broker().await;
                self.broker
                    .restart(Duration::from_secs(2), Duration::from_secs(90))
                    .await;
                self.link.connect(Duration::from_secs(60)).await;
                self.figures.broker_restarts += 1;
            }
            Event::Faults(_, specs) => {
                for spec in specs {
                    self.d
                        .api
                        .sandbox
                        .admin()
                        .inject_fault(spec)
                        .expect("a valid fault");
                }
            }
            Event::Timeout => {
                let spec = FaultSpec::latency(31_000)
                    .method("POST")
                    .path_prefix("/v3/contacts")
                    .after_effect()
                    .times(1);
                let id = self
                    .d
                    .api
                    .sandbox
                    .admin()
                    .inject_fault(spec)
                    .expect("a valid fault");
                self.timeouts_pending.push(id);
            }
            Event::Quota => self.quota_strike().await,
            Event::KillActive => self.kill_active().await,
            Event::PauseActive => self.pause_active().await,
            Event::LeaderNodeStop => self.stop_leader_node().await,
            Event::PgRestart => self.restart_postgres().await,
            Event::Revoke => {
                // Twice in a row: the same daemon must announce the second loss too.
                self.revoke_and_reauthorise().await;
                self.revoke_and_reauthorise().await;
            }
        }
        self.figures.events.push(format!(
            "{name} at {} published ({} ms)",
            self.published,
            started.elapsed().as_millis()
        ));
    }

    /// A timeout only happens if the daemon that sent the request lives until its client
    /// gives up (30 s): before a kill, wait until every timeout fault has struck (`strike`)
    /// and 31 s have passed since.
    pub async fn let_timeouts_run(&mut self, strike: bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while strike && !self.timeouts_pending.is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the timeout fault never struck"
            );
            self.absorb(Duration::from_millis(100)).await;
        }
        while let Some(at) = self.timeouts_struck.first().copied() {
            if at.elapsed() >= Duration::from_secs(31) {
                self.timeouts_struck.remove(0);
                self.figures.timeouts += 1;
            } else {
                self.absorb(Duration::from_millis(100)).await;
            }
        }
    }

    /// Waits until nobody but this drill uses the broker (on a shared machine, other test
    /// runs or benchmarks may): restarting it under them would break their runs.
    async fn wait_for_a_quiet_broker(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(900);
        loop {
            let mut ours = self.daemons.pids();
            ours.push(std::process::id());
            let others = crate::broker::other_clients(&ours).await;
            if others.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "RabbitMQ kept serving other clients for 15 minutes ({others:?}); not restarting it"
            );
            self.absorb(Duration::from_millis(500)).await;
        }
    }

    /// Strikes with `quota_exceeded` at the next API request. The drill goes on publishing
    /// (so that a request comes) until the daemon parks a command; then
    /// [`Drill::next_day_once_parked`] brings the next day.
    async fn quota_strike(&mut self) {
        self.let_timeouts_run(true).await;
        self.d
            .api
            .sandbox
            .admin()
            .inject_fault(FaultSpec::quota_exceeded().path_prefix("/v3/").times(1))
            .expect("a valid fault");
        self.quota_pending = true;
    }

    /// Once a `quota_exceeded` struck and the daemon parked a command: the next day, simulated
    /// (the daemons run on the real clock): kill every daemon, clear the stored "exhausted"
    /// mark, move the parked commands back, start them all again.
    pub async fn next_day_once_parked(&mut self) {
        let parked = self.d.pipeline_settings.topology.parked_quota_queue.clone();
        if !self.quota_pending || self.link.depth(&parked).await == 0 {
            return;
        }
        let slots = self.daemons.slot_count();
        self.daemons.kill().await;
        self.d
            .api
            .state_tables()
            .execute("UPDATE rate_budget SET exhausted_at = NULL")
            .await;
        let moved = self.link.move_to_commands(&parked).await;
        self.figures.parked_for_quota += moved;
        for slot in 0..slots {
            self.daemons.start_slot(&self.d, slot);
        }
        self.quota_pending = false;
        self.figures.quota_restarts += 1;
        self.figures.events.push(format!(
            "next quota day at {} published ({moved} parked commands moved back)",
            self.published
        ));
    }

    /// Revoke at a request, wait for the announcement, import a fresh grant.
    async fn revoke_and_reauthorise(&mut self) {
        let admin = self.d.api.sandbox.admin();
        admin
            .inject_fault(FaultSpec::revoke_tokens().path_prefix("/v3/").times(1))
            .expect("a valid fault");
        let announced = self.reauth_events();
        self.wait_until(Until::Announced(announced), Duration::from_secs(90))
            .await;
        let fresh = admin
            .issue_refresh_token(&admin.primary_account())
            .expect("a fresh grant");
        self.secret("re-authorisation refresh token", &fresh);
        // Regression: `auth import` failed outright when the token endpoint asked it to slow
        // down (1 request/s per client, shared with the daemon's refreshes). Take the
        // second's slot just before, so that its first exchange is told to slow down.
        let since = admin.request_log().last().map_or(0, |r| r.seq);
        self.take_the_token_endpoints_second().await;
        assert!(
            self.daemons.auth_import(&self.d, &fresh).await,
            "`ctct-sync auth import` failed; see {:?}",
            self.daemons.logs.last()
        );
        self.figures.import_slow_downs += admin
            .requests_since(since, usize::MAX)
            .iter()
            .filter(|r| r.path.starts_with("/oauth2/") && r.status == 429)
            .count()
            .saturating_sub(self.figures.own_slow_downs);
        self.figures.reauthorisations += 1;
    }

    /// A token request of the drill's own (a refresh token that does not exist), repeated
    /// until the endpoint counts it rather than answering `slow_down`.
    async fn take_the_token_endpoints_second(&mut self) {
        let credentials = self.d.api.sandbox.credentials().clone();
        let http = reqwest::Client::new();
        self.figures.own_slow_downs = 0;
        for _ in 0..20 {
            let status = http
                .post(&credentials.token_url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(format!(
                    "grant_type=refresh_token&refresh_token=drill-not-a-token&client_id={}",
                    credentials.client_id
                ))
                .send()
                .await
                .expect("the token endpoint answers")
                .status();
            if status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                return;
            }
            self.figures.own_slow_downs += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        panic!("the token endpoint kept answering slow_down");
    }

    pub fn reauth_events(&self) -> usize {
        self.link
            .events
            .iter()
            .filter(|(key, _)| key == "event.account.reauth_required")
            .count()
    }
}
