//! The HTTP server: an accept loop serving each connection with hyper directly, so that a
//! fault can close one connection without answering (`drop_connection`), the admin API can
//! see the peer address, and shutdown can drain connections gracefully within a deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::gate::ConnCtx;

/// How long shutdown waits for in-flight requests before closing connections.
pub(crate) const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Handles to stop the server.
#[derive(Debug, Clone)]
pub(crate) struct ServerControl {
    /// Stop accepting; finish in-flight requests.
    pub(crate) graceful: CancellationToken,
    /// Close every connection now.
    pub(crate) force: CancellationToken,
    pub(crate) tracker: TaskTracker,
}

impl ServerControl {
    pub(crate) fn new() -> Self {
        Self {
            graceful: CancellationToken::new(),
            force: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    /// Graceful stop with a deadline, then forced.
    pub(crate) async fn stop(&self) {
        self.graceful.cancel();
        self.tracker.close();
        if tokio::time::timeout(DRAIN_DEADLINE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                deadline_secs = DRAIN_DEADLINE.as_secs(),
                "sandbox_drain_timed_out"
            );
            self.force.cancel();
            self.tracker.wait().await;
        }
    }
}

/// Accepts connections until the graceful token fires.
pub(crate) fn spawn(listener: TcpListener, router: Router, control: ServerControl) {
    let tracker = control.tracker.clone();
    tracker.spawn(async move {
        loop {
            tokio::select! {
                () = control.graceful.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let router = router.clone();
                        let control_for_conn = control.clone();
                        control.tracker.spawn(serve_connection(stream, peer, router, control_for_conn));
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "sandbox_accept_failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    });
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    control: ServerControl,
) {
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let ctx = ConnCtx {
        peer,
        kill: kill.clone(),
    };
    let service = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ctx.clone());
        hyper::service::Service::call(&service, req)
    });
    let connection = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(error = %error, "sandbox_connection_ended");
                }
                break;
            }
            () = kill.notified() => break,
            () = control.force.cancelled() => break,
            () = control.graceful.cancelled(), if !draining => {
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}
