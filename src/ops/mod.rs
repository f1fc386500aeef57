//! Operations: one small HTTP listener (`ops.listen`, loopback by default) serving
//!
//! - `/metrics` — Prometheus text format (see [`metrics`]);
//! - `/healthz` — the process and its runtime answer;
//! - `/readyz` — 200 only when the broker session is up, the store takes writes (and has not
//!   failed a write the pipeline is still waiting to see succeed) and at least one account is
//!   authorised; otherwise 503 with the reasons. A spent daily quota keeps the
//!   daemon ready (it is healthy and waiting) but shows in the body.

pub mod metrics;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub use state::{OpsState, PipelineView};

use crate::store::tokens::AccountState;

/// Binds `listen` and serves until `shutdown`. Returns the bound address (port 0 picks one).
pub async fn serve(
    listen: SocketAddr,
    state: OpsState,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(state));
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

async fn metrics_handler(State(state): State<Arc<OpsState>>) -> Response {
    let body = metrics::render(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Readiness, with the reason for every check.
pub async fn readiness(state: &OpsState) -> (bool, serde_json::Value) {
    let broker = state
        .pipeline
        .as_ref()
        .map(|p| p.status.connected.load(Ordering::Relaxed))
        .unwrap_or(false);
    // Taking the write lock proves the store is writable (a read-only file or a lock held
    // by another process fails here) without writing anything.
    let store = state
        .store
        .check_writable()
        .await
        .map_err(|e| format!("not writable: {e}"));
    // A store that failed a command's write (a full disk, an I/O error, a damaged table) is
    // failing until the pipeline's probe succeeds, even if taking the lock still works.
    let store = match state
        .pipeline
        .as_ref()
        .and_then(|p| p.processor.store_health.failing())
    {
        Some(error) => Err(format!("failing: {error}")),
        None => store,
    };
    let accounts = state.client.tokens().accounts().await.unwrap_or_default();
    let active = accounts
        .iter()
        .filter(|a| a.state == AccountState::Active)
        .count();
    let lost: Vec<&str> = accounts
        .iter()
        .filter(|a| a.state == AccountState::ReauthRequired)
        .map(|a| a.account.as_str())
        .collect();
    let quota = state.client.budget().snapshot().await.ok();
    let ready = broker && store.is_ok() && active > 0;
    let body = json!({
        "ready": ready,
        "checks": {
            "broker": if broker { "connected".to_owned() } else { "not connected".to_owned() },
            "store": match &store { Ok(()) => "writable".to_owned(), Err(e) => e.clone() },
            "accounts": if active > 0 {
                format!("{active} authorised")
            } else {
                "no authorised account: run `ctct-sync auth login`".to_owned()
            },
        },
        "accounts_needing_reauthorisation": lost,
        "quota": quota.map(|q| json!({"remaining": q.remaining, "exhausted": q.exhausted, "resets_at": q.resets_at})),
    });
    (ready, body)
}

async fn readyz(State(state): State<Arc<OpsState>>) -> Response {
    let (ready, body) = readiness(&state).await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
