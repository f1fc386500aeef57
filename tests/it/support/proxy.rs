//! A TCP proxy in front of the test broker, so a test can take the broker away from one
//! daemon (and give it back) without touching the RabbitMQ other tests share.
//!
//! `cut()` drops every forwarded connection and closes new ones as soon as they are
//! accepted, on the same port; `restore()` forwards again.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::daemon::amqp_url;

pub struct BrokerProxy {
    addr: SocketAddr,
    /// True while connections are forwarded.
    open: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl BrokerProxy {
    /// Listens on 127.0.0.1:0 and forwards to the broker named by [`amqp_url`].
    pub async fn start() -> Self {
        let upstream = broker_addr(&amqp_url());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds");
        let addr = listener.local_addr().expect("the proxy has an address");
        let open = Arc::new(watch::Sender::new(true));
        let task = tokio::spawn(accept(listener, upstream, open.clone()));
        Self { addr, open, task }
    }

    /// [`amqp_url`] with the proxy in place of the broker.
    pub fn url(&self) -> String {
        let mut url = url::Url::parse(&amqp_url()).expect("AMQP_ADDR is a URL");
        url.set_host(Some(&self.addr.ip().to_string()))
            .expect("an IP is a valid host");
        url.set_port(Some(self.addr.port()))
            .expect("an amqp URL takes a port");
        url.to_string()
    }

    /// Drops every live connection and refuses new ones (accepted, then closed at once).
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for BrokerProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
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

async fn accept(listener: TcpListener, upstream: String, open: Arc<watch::Sender<bool>>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
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
