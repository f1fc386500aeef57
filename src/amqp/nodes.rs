//! The broker's nodes (`amqp.urls`, or `amqp.url` alone): which one a connection goes to, the
//! next one after a failure (round-robin), and connecting to the first that answers.
//!
//! The nodes of a RabbitMQ cluster serve the same queues, so a client whose node is lost
//! carries on at another. Only the daemon's reconnect loops ([`crate::pipeline`], the mirror's
//! events) rotate; one-shot commands (`send`, `dlq`) take the first node that answers.

use std::time::Duration;

use lapin::Connection;

use crate::config::{AmqpSettings, AmqpUrl};

/// How long a one-shot command (`send`, `dlq`) waits for one node to answer before it tries
/// the next.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The nodes a client connects to, in turn. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BrokerNodes {
    urls: Vec<AmqpUrl>,
    current: usize,
    /// Connection attempts failed since the last one that succeeded.
    failures: usize,
}

impl BrokerNodes {
    /// The nodes of `amqp.urls`, or `amqp.url` alone.
    pub fn from_settings(settings: &AmqpSettings) -> Self {
        Self::new(settings.nodes())
    }

    /// The nodes given, starting with the first.
    ///
    /// # Panics
    /// When `urls` is empty (the configuration always gives at least one).
    pub fn new(urls: Vec<AmqpUrl>) -> Self {
        assert!(!urls.is_empty(), "at least one broker node");
        Self {
            urls,
            current: 0,
            failures: 0,
        }
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Never: there is always one node.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The node to connect to now.
    pub fn current(&self) -> &AmqpUrl {
        &self.urls[self.current]
    }

    /// Connecting to the current node failed: moves on to the next (after the last, the
    /// first again). True when every node has now failed once more since the last
    /// connection that worked: the caller waits its backoff before the next round (with one
    /// node, after each failure).
    pub fn failed(&mut self) -> bool {
        self.next();
        self.failures += 1;
        self.failures.is_multiple_of(self.urls.len())
    }

    /// A connection to the current node was made.
    pub fn connected(&mut self) {
        self.failures = 0;
    }

    /// The connection to the current node was lost: the next node is tried first (the lost
    /// one may be the node that is gone).
    pub fn lost(&mut self) {
        self.next();
    }

    fn next(&mut self) {
        self.current = (self.current + 1) % self.urls.len();
    }

    /// Every node, in order.
    pub fn urls(&self) -> &[AmqpUrl] {
        &self.urls
    }
}

impl From<AmqpUrl> for BrokerNodes {
    fn from(url: AmqpUrl) -> Self {
        Self::new(vec![url])
    }
}

/// Why a node could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Connect(#[from] lapin::Error),
    #[error("no answer within {} s", .0.as_secs())]
    TimedOut(Duration),
}

/// No node answered: each node (password masked) with what went wrong there. With one node,
/// what went wrong is the error's source (shown after it by `{:#}`), as for any error.
#[derive(Debug)]
pub struct Unreachable {
    pub failures: Vec<(String, NodeError)>,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.failures.as_slice() {
            [(url, _)] => write!(f, "cannot reach RabbitMQ at {url}"),
            failures => {
                write!(
                    f,
                    "cannot reach RabbitMQ at any of its {} nodes:",
                    failures.len()
                )?;
                for (i, (url, error)) in failures.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}{url}: {error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Unreachable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.failures.as_slice() {
            [(_, error)] => Some(error),
            _ => None,
        }
    }
}

/// Connects to the first node that answers, in order, waiting at most `timeout` for each; the
/// connection is named `name`.
pub async fn connect_first(
    nodes: &BrokerNodes,
    name: &str,
    timeout: Duration,
) -> Result<Connection, Unreachable> {
    let mut failures = Vec::new();
    for url in nodes.urls() {
        match tokio::time::timeout(timeout, super::connect(url.expose(), name)).await {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(error)) => failures.push((url.redacted(), NodeError::Connect(error))),
            Err(_) => failures.push((url.redacted(), NodeError::TimedOut(timeout))),
        }
    }
    Err(Unreachable { failures })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(urls: &[&str]) -> BrokerNodes {
        BrokerNodes::new(urls.iter().map(|u| AmqpUrl::new(u)).collect())
    }

    #[test]
    fn failures_go_round_the_nodes_and_a_round_ends_when_each_has_failed() {
        let mut n = nodes(&["amqp://a/%2f", "amqp://b/%2f", "amqp://c/%2f"]);
        assert_eq!(n.current().expose(), "amqp://a/%2f");
        assert!(!n.failed());
        assert_eq!(n.current().expose(), "amqp://b/%2f");
        assert!(!n.failed());
        assert_eq!(n.current().expose(), "amqp://c/%2f");
        assert!(n.failed(), "each node failed once: a round is done");
        assert_eq!(n.current().expose(), "amqp://a/%2f");
        assert!(!n.failed());
        assert!(!n.failed());
        assert!(n.failed(), "and again after three more");
    }

    #[test]
    fn a_lost_connection_moves_on_and_a_round_counts_from_the_last_connection() {
        let mut n = nodes(&["amqp://a/%2f", "amqp://b/%2f", "amqp://c/%2f"]);
        n.failed();
        n.connected();
        assert_eq!(n.current().expose(), "amqp://b/%2f");
        n.lost();
        assert_eq!(n.current().expose(), "amqp://c/%2f", "the next node first");
        assert!(!n.failed());
        assert!(!n.failed());
        assert!(n.failed(), "three failures since the connection: a round");
        assert_eq!(n.current().expose(), "amqp://c/%2f");
    }

    #[test]
    fn one_node_ends_a_round_at_each_failure() {
        let mut n = nodes(&["amqp://a/%2f"]);
        assert!(n.failed());
        assert!(n.failed());
        n.lost();
        assert_eq!(n.current().expose(), "amqp://a/%2f");
        assert_eq!(n.len(), 1);
    }

    #[tokio::test]
    async fn connecting_to_no_node_names_each_without_its_password() {
        // Nothing listens on port 1.
        let n = nodes(&[
            "amqp://u:hunter2@127.0.0.1:1/%2f",
            "amqp://u:hunter3@127.0.0.1:1/vh",
        ]);
        let error = connect_first(&n, "test", Duration::from_secs(5))
            .await
            .expect_err("nothing listens on port 1");
        let text = error.to_string();
        assert!(text.contains("any of its 2 nodes"), "{text}");
        assert!(text.contains("amqp://u:***@127.0.0.1:1/%2f"), "{text}");
        assert!(text.contains("amqp://u:***@127.0.0.1:1/vh"), "{text}");
        assert!(!text.contains("hunter"), "{text}");
        let one = connect_first(
            &nodes(&["amqp://u:hunter2@127.0.0.1:1/%2f"]),
            "test",
            Duration::from_secs(5),
        )
        .await
        .expect_err("nothing listens on port 1");
        assert_eq!(
            one.to_string(),
            "cannot reach RabbitMQ at amqp://u:***@127.0.0.1:1/%2f"
        );
        assert!(
            std::error::Error::source(&one).is_some(),
            "the cause follows"
        );
    }
}
