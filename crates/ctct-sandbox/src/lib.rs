//! The sandbox: a faithful, stateful local emulator of the Constant Contact V3 API
//! (reference: shared/reference/constant-contact-v3.md; usage: README.md beside this crate).
//!
//! `start` binds, seeds, spawns the server and returns a `Sandbox` with ready credentials
//! (a pre-registered client and a refresh token). Tests start it in-process on
//! `127.0.0.1:0`; the `ctct-sandbox` binary and `ctct-sync sandbox` run it from the command line (`cli`).
//!
//! Map: `server` (connections) → `router` → `gate` (log, faults, auth, limits, scopes) →
//! handlers (`contacts`, `custom_fields`, `lists`, `segments`, `tags`, `activities`, `campaigns`,
//! `reports`, `account`, `oauth`) over `state` (one mutex around all accounts). `admin` is the control surface,
//! `seed` and `persist` fill and keep the state, `clock` drives time.

mod account;
mod activities;
pub mod admin;
mod campaigns;
pub mod cli;
mod clock;
mod contacts;
mod custom_fields;
mod errors;
mod faults;
mod gate;
mod http;
mod limits;
mod lists;
mod logs;
mod oauth;
mod persist;
mod reports;
mod rng;
mod router;
mod seed;
mod segments;
mod server;
mod state;
mod tags;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;

pub use admin::{
    AccountSnapshot, AccountSummary, InstalledFault, IssuedTokens, LimitsView, SandboxAdmin,
    StateSummary,
};
pub use errors::SandboxError;
pub use faults::{FaultKind, FaultSpec};
pub use limits::LimitsMode;
pub use logs::{Effect, LoggedRequest};
pub use reports::{ActivityReport, TrackingEvent, TrackingKind};

use clock::SandboxClock;
use faults::FaultTable;
use limits::Limiter;
use logs::RequestLog;
use oauth::{Client, scope};
use rng::SplitMix64;
use server::ServerControl;
use state::{Shared, World};

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Allow a non-loopback `listen` address.
    pub public: bool,
    /// Contacts seeded into the first account at start (ignored when a state file exists).
    pub seed_contacts: usize,
    /// Seed of everything deterministic (data, client id/secret, fault ratios).
    pub seed: u64,
    pub limits: LimitsMode,
    /// Requests per second per client id in `Real` mode.
    pub per_second: u32,
    /// Requests per UTC day per client id in `Real` mode.
    pub per_day: u32,
    pub access_token_ttl: Duration,
    /// Load at start when present; save on graceful shutdown and on admin request.
    pub state_file: Option<PathBuf>,
}

impl Default for SandboxOptions {
    /// The command line's defaults: `127.0.0.1:8080`, real limits, 24 h tokens.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public: false,
            seed_contacts: 0,
            seed: 1,
            limits: LimitsMode::Real,
            per_second: 4,
            per_day: 10_000,
            access_token_ttl: Duration::from_secs(86_400),
            state_file: None,
        }
    }
}

impl SandboxOptions {
    /// `127.0.0.1:0`, no seeded contacts, seed 1, limits off.
    pub fn for_tests() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            limits: LimitsMode::Off,
            ..Self::default()
        }
    }
}

/// What a client needs to talk to the sandbox. `Debug` redacts the secrets.
#[derive(Clone, Serialize)]
pub struct SandboxCredentials {
    /// `http://ADDR/v3`
    pub base_url: String,
    pub authorize_url: String,
    pub token_url: String,
    pub device_authorize_url: String,
    /// The revocation endpoint (RFC 7009).
    pub revoke_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// A ready refresh token (all scopes) for the first account.
    pub refresh_token: String,
    /// `http://ADDR/__sandbox`
    pub admin_url: String,
    /// The admin API's per-run token: send it as `Authorization: Bearer <admin_token>`.
    pub admin_token: String,
}

impl std::fmt::Debug for SandboxCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxCredentials")
            .field("base_url", &self.base_url)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("device_authorize_url", &self.device_authorize_url)
            .field("revoke_url", &self.revoke_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("admin_url", &self.admin_url)
            .field("admin_token", &"[redacted]")
            .finish()
    }
}

/// A running sandbox. Dropping it stops the server at once; `shutdown` stops it gracefully
/// and saves the state file.
#[derive(Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
    credentials: SandboxCredentials,
    local_addr: SocketAddr,
    control: ServerControl,
}

impl Sandbox {
    pub fn credentials(&self) -> &SandboxCredentials {
        &self.credentials
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn admin(&self) -> SandboxAdmin {
        SandboxAdmin {
            shared: self.shared.clone(),
        }
    }

    /// Stops accepting, drains in-flight requests (5 s deadline), saves `--state`.
    pub async fn shutdown(self) {
        self.control.stop().await;
        if self.shared.state_file.is_some() {
            match self.admin().save_state() {
                Ok(()) => tracing::info!("sandbox_state_saved"),
                Err(error) => tracing::error!(error = %error, "sandbox_state_save_failed"),
            }
        }
        tracing::info!(listen = %self.local_addr, "sandbox_stopped");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.control.graceful.cancel();
        self.control.force.cancel();
    }
}

/// A deterministic client for `seed`.
fn client_for(seed: u64) -> (Client, String) {
    let mut rng = SplitMix64::new(seed ^ 0xC11E_A7C1_1E47_0000);
    let client = Client {
        client_id: rng.uuid().to_string(),
        client_secret: rng.base36(40),
    };
    (client, rng.base36(64))
}

fn fresh_world(opts: &SandboxOptions, now: i64) -> World {
    let mut world = World::new(opts.seed);
    let (client, key) = client_for(opts.seed);
    world.auth.clients.push(client);
    world.auth.signing_key = key;
    let index = admin::new_account(&mut world, now);
    seed::seed_account(
        &mut world.accounts[index],
        1,
        opts.seed_contacts,
        opts.seed,
        now,
    );
    world
}

/// Binds, loads or seeds the state, spawns the server and mints the ready refresh token.
pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
    if !opts.public && !opts.listen.ip().is_loopback() {
        return Err(SandboxError::NotLoopback(opts.listen));
    }
    let loaded = match &opts.state_file {
        Some(path) => persist::load(path)?,
        None => None,
    };
    let clock = SandboxClock::new(loaded.as_ref().map_or(0, |(_, offset)| *offset));
    let now = clock.now_ms();
    let mut world = match loaded {
        Some((world, _)) => world,
        None => fresh_world(&opts, now),
    };
    if world.auth.clients.is_empty() {
        let (client, key) = client_for(opts.seed);
        world.auth.clients.push(client);
        world.auth.signing_key = key;
    }
    if world.accounts.is_empty() {
        admin::new_account(&mut world, now);
    }
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| SandboxError::Bind {
            addr: opts.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| SandboxError::Bind {
        addr: opts.listen,
        source,
    })?;
    let origin = format!("http://{local_addr}");
    let client = world.auth.clients[0].clone();
    // 244 random bits from the operating system, fresh on every start.
    let admin_token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let shared = Arc::new(Shared {
        seed: opts.seed,
        origin: origin.clone(),
        clock,
        world: Mutex::new(world),
        limiter: Mutex::new(Limiter::new(
            opts.limits,
            opts.per_second.max(1),
            opts.per_day.max(1),
        )),
        faults: Mutex::new(FaultTable::default()),
        requests: Mutex::new(RequestLog::default()),
        token_requests: AtomicU64::new(0),
        download_pace_ms: AtomicU64::new(0),
        access_token_ttl_ms: i64::try_from(opts.access_token_ttl.as_millis())
            .unwrap_or(i64::MAX / 4),
        state_file: opts.state_file.clone(),
        initial_contacts: opts.seed_contacts,
        admin_token: admin_token.clone(),
    });
    let admin = SandboxAdmin {
        shared: shared.clone(),
    };
    let primary = admin.primary_account();
    let refresh_token = admin
        .issue_tokens(&primary, &scope::names(scope::ALL).join(" "))?
        .refresh_token
        .unwrap_or_default();
    let control = ServerControl::new();
    server::spawn(listener, router::build(shared.clone()), control.clone());
    let oauth = format!("{origin}/oauth2/default/v1");
    let credentials = SandboxCredentials {
        base_url: format!("{origin}/v3"),
        authorize_url: format!("{oauth}/authorize"),
        token_url: format!("{oauth}/token"),
        device_authorize_url: format!("{oauth}/device/authorize"),
        revoke_url: format!("{oauth}/revoke"),
        client_id: client.client_id,
        client_secret: client.client_secret,
        refresh_token,
        admin_url: format!("{origin}/__sandbox"),
        admin_token,
    };
    let summary = admin.summary();
    tracing::info!(
        listen = %local_addr,
        accounts = summary.accounts.len(),
        contacts = summary.accounts.first().map_or(0, |a| a.contacts),
        limits = ?opts.limits,
        state_file = ?opts.state_file,
        "sandbox_started"
    );
    Ok(Sandbox {
        shared,
        credentials,
        local_addr,
        control,
    })
}
