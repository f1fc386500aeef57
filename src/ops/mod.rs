//! Operations: one small HTTP listener (`ops.listen`, loopback by default) serving
//!
//! - `/metrics` — Prometheus text format (see [`metrics`]);
//! - `/healthz` — the process and its runtime answer;
//! - `/readyz` — 200 only when the broker session is up, the store takes writes (and has not
//!   failed a write the pipeline is still waiting to see succeed) and at least one account is
//!   authorised; otherwise 503 with the reasons. A spent daily quota keeps the
//!   daemon ready (it is healthy and waiting) but shows in the body, and so does the
//!   replica's `role` (`active` or `standby`, see [`crate::pipeline::replica`]): a standby is
//!   ready — it takes over by itself.
//!
//! The listener is bound before the stores are opened, so that a daemon waiting for its
//! PostgreSQL database at start answers `/readyz` 503 with the reason (see [`OpsSlot`]).

pub mod metrics;
pub mod notify;
pub mod process;
pub mod state;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub use state::{OpsState, PipelineView};

/// Prometheus metrics.
pub const METRICS_PATH: &str = "/metrics";
/// Liveness: the process and its runtime answer (200 `ok`).
pub const HEALTHZ_PATH: &str = "/healthz";
/// Readiness: 200 when the daemon can work, 503 with the reasons otherwise.
pub const READYZ_PATH: &str = "/readyz";

use crate::store::tokens::AccountState;

/// What the listener serves: why the daemon has not started yet, then the running daemon's
/// state. Shared by the listener and the daemon's assembly, which fills it in.
#[derive(Debug)]
pub struct OpsSlot {
    slot: RwLock<Slot>,
}

enum Slot {
    /// The daemon is starting: why it is not ready yet.
    Starting(String),
    Running(Arc<OpsState>),
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slot::Starting(why) => f.debug_tuple("Starting").field(why).finish(),
            Slot::Running(_) => f.write_str("Running"),
        }
    }
}

impl OpsSlot {
    /// A daemon that is starting, not ready because of `why`.
    pub fn starting(why: impl Into<String>) -> Arc<OpsSlot> {
        Arc::new(OpsSlot {
            slot: RwLock::new(Slot::Starting(why.into())),
        })
    }

    /// A running daemon's state.
    pub fn running(state: OpsState) -> Arc<OpsSlot> {
        Arc::new(OpsSlot {
            slot: RwLock::new(Slot::Running(Arc::new(state))),
        })
    }

    /// Still starting: `/readyz` answers 503 with `why` as the store's check.
    pub fn set_starting(&self, why: impl Into<String>) {
        *self.slot.write().unwrap_or_else(|e| e.into_inner()) = Slot::Starting(why.into());
    }

    /// Started: every endpoint reads `state` from now on.
    pub fn set_running(&self, state: OpsState) {
        *self.slot.write().unwrap_or_else(|e| e.into_inner()) = Slot::Running(Arc::new(state));
    }

    fn get(&self) -> Result<Arc<OpsState>, String> {
        match &*self.slot.read().unwrap_or_else(|e| e.into_inner()) {
            Slot::Starting(why) => Err(why.clone()),
            Slot::Running(state) => Ok(state.clone()),
        }
    }
}

/// Binds `listen` and serves `slot` until `shutdown`. Returns the bound address (port 0
/// picks one).
pub async fn serve(
    listen: SocketAddr,
    slot: Arc<OpsSlot>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    serve_on(listener, slot, shutdown)
}

/// Serves `slot` on an already bound `listener` until `shutdown`. Returns its address.
pub fn serve_on(
    listener: tokio::net::TcpListener,
    slot: Arc<OpsSlot>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route(METRICS_PATH, get(metrics_handler))
        .route(HEALTHZ_PATH, get(|| async { "ok\n" }))
        .route(READYZ_PATH, get(readyz))
        .with_state(slot);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(error = %error, "the ops listener stopped");
        }
    });
    tracing::info!(listen = %bound, "ops listener: /metrics /healthz /readyz");
    Ok(bound)
}

async fn metrics_handler(State(slot): State<Arc<OpsSlot>>) -> Response {
    let body = match slot.get() {
        Ok(state) => metrics::render(&state).await,
        Err(_) => metrics::render_starting(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// What the readiness checks found.
#[derive(Debug)]
pub struct Readiness {
    /// `/readyz` answers 200: serving, and at least one account authorised.
    pub ready: bool,
    /// The broker session is up and the store takes writes (systemd's `READY=1`).
    pub serving: bool,
    /// `/readyz`'s body: the reason for every check.
    pub body: serde_json::Value,
}

/// Readiness, with the reason for every check.
pub async fn readiness(state: &OpsState) -> Readiness {
    let broker = state
        .pipeline
        .as_ref()
        .map(|p| p.status.connected.load(Ordering::Relaxed))
        .unwrap_or(false);
    // A store that failed a command's write (a full disk, an I/O error, a damaged table, a
    // lost database) is failing until the pipeline's probe succeeds, even if taking the lock
    // would work; it is not asked anything more meanwhile (a lost database could keep the
    // answer waiting for its connection timeout).
    let failing = state
        .pipeline
        .as_ref()
        .and_then(|p| p.processor.store_health.failing());
    let store = match failing {
        Some(error) => Err(format!("failing: {error}")),
        // Taking the write lock proves the store is writable (a read-only file or a lock
        // held by another process fails here) without writing anything.
        None => state
            .store
            .check_writable()
            .await
            .map_err(|e| format!("not writable: {e}")),
    };
    let accounts = if store.is_ok() {
        state.client.tokens().accounts().await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let active = accounts
        .iter()
        .filter(|a| a.state == AccountState::Active)
        .count();
    let lost: Vec<&str> = accounts
        .iter()
        .filter(|a| a.state == AccountState::ReauthRequired)
        .map(|a| a.account.as_str())
        .collect();
    let quota = match &store {
        Ok(()) => state.client.budget().snapshot().await.ok(),
        Err(_) => None,
    };
    let serving = broker && store.is_ok();
    let ready = serving && active > 0;
    let role = state
        .pipeline
        .as_ref()
        .map(|p| p.processor.replica.role().as_str());
    let body = json!({
        "ready": ready,
        "role": role,
        "checks": {
            "broker": if broker { "connected".to_owned() } else { "not connected".to_owned() },
            "store": match &store { Ok(()) => "writable".to_owned(), Err(e) => e.clone() },
            "accounts": if active > 0 {
                format!("{active} authorised")
            } else if store.is_err() {
                "unknown: the store cannot be read".to_owned()
            } else {
                "no authorised account: run `ctct-sync auth login`".to_owned()
            },
        },
        "accounts_needing_reauthorisation": lost,
        "quota": quota.map(|q| json!({"remaining": q.remaining, "exhausted": q.exhausted, "resets_at": q.resets_at})),
    });
    Readiness {
        ready,
        serving,
        body,
    }
}

async fn readyz(State(slot): State<Arc<OpsSlot>>) -> Response {
    let (ready, body) = match slot.get() {
        Ok(state) => {
            let Readiness { ready, body, .. } = readiness(&state).await;
            (ready, body)
        }
        Err(why) => (
            false,
            json!({
                "ready": false,
                "starting": true,
                "checks": {"broker": "not connected", "store": why},
            }),
        ),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
