//! TCP proxies in front of the shared test servers, so a test can take the broker
//! ([`BrokerProxy`]) or the PostgreSQL server ([`TcpProxy`]) away from one daemon (and give
//! it back) without touching the servers other tests share.
//!
//! `cut()` drops every forwarded connection and closes new ones as soon as they are
//! accepted, on the same port; `restore()` forwards again.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::daemon::amqp_url;

/// A proxy to any TCP server: listens on 127.0.0.1:0, forwards to `upstream`.
pub struct TcpProxy {
    addr: SocketAddr,
    /// True while connections are forwarded.
    open: Arc<watch::Sender<bool>>,
    /// Connections forwarded before the proxy cuts by itself (see [`TcpProxy::cut_after`]).
    allowance: Arc<std::sync::atomic::AtomicI64>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1:0 and forwards every connection to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds");
        let addr = listener.local_addr().expect("the proxy has an address");
        let open = Arc::new(watch::Sender::new(true));
        let allowance = Arc::new(std::sync::atomic::AtomicI64::new(i64::MAX));
        let task = tokio::spawn(accept(
            listener,
            upstream.to_owned(),
            open.clone(),
            allowance.clone(),
        ));
        Self {
            addr,
            open,
            allowance,
            task,
        }
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A PostgreSQL proxy to the host and port of `url` (5432 when none is given).
    pub async fn postgres(url: &str) -> Self {
        let parsed = url::Url::parse(url).expect("a PostgreSQL URL");
        let upstream = format!(
            "{}:{}",
            parsed.host_str().unwrap_or("127.0.0.1"),
            parsed.port().unwrap_or(5432)
        );
        Self::start(&upstream).await
    }

    /// `url` with the proxy in place of its host and port.
    pub fn url_for(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).expect("a URL");
        url.set_host(Some(&self.addr.ip().to_string()))
            .expect("an IP is a valid host");
        url.set_port(Some(self.addr.port()))
            .expect("the URL takes a port");
        url.to_string()
    }

    /// Drops every live connection and refuses new ones (accepted, then closed at once).
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Forwards new connections again (and without an allowance).
    pub fn restore(&self) {
        self.allowance
            .store(i64::MAX, std::sync::atomic::Ordering::SeqCst);
        self.open.send_replace(true);
    }

    /// Forwards the next `n` new connections, then cuts (as [`TcpProxy::cut`]) when one more
    /// arrives: a server that answers a first connection and then goes away.
    pub fn cut_after(&self, n: i64) {
        self.allowance.store(n, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// A [`TcpProxy`] to the broker named by [`amqp_url`].
pub struct BrokerProxy {
    proxy: TcpProxy,
}

impl BrokerProxy {
    /// Listens on 127.0.0.1:0 and forwards to the broker named by [`amqp_url`].
    pub async fn start() -> Self {
        Self {
            proxy: TcpProxy::start(&broker_addr(&amqp_url())).await,
        }
    }

    /// [`amqp_url`] with the proxy in place of the broker.
    pub fn url(&self) -> String {
        self.proxy.url_for(&amqp_url())
    }

    /// Drops every live connection and refuses new ones (accepted, then closed at once).
    pub fn cut(&self) {
        self.proxy.cut();
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.proxy.restore();
    }
}

/// Host and port of an `amqp://` URL (5672 when none is given).
fn broker_addr(amqp: &str) -> String {
    let url = url::Url::parse(amqp).expect("AMQP_ADDR is a URL");
    format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5672)
    )
}

async fn accept(
    listener: TcpListener,
    upstream: String,
    open: Arc<watch::Sender<bool>>,
    allowance: Arc<std::sync::atomic::AtomicI64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if allowance.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) <= 0 {
            open.send_replace(false);
        }
        // Subscribe before looking, so a cut between the two is not missed.
        let mut state = open.subscribe();
        if !*state.borrow_and_update() {
            drop(client);
            continue;
        }
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let mut client = client;
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                // Both sockets drop here: each side sees its peer vanish.
                _ = state.wait_for(|open| !*open) => {}
            }
        });
    }
}
