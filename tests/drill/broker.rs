//! The drill's side of RabbitMQ: a link that publishes confirmed commands and reads results
//! from a durable queue of its own (so no result is lost while the broker restarts), and the
//! broker restart itself, with a guard that starts the broker again whatever happens.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use ctct_sync::amqp::Topology;
use ctct_sync::command::outcome::CommandResult;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use serde_json::Value;

use crate::support::daemon::amqp_url;
use crate::support::eventually::eventually_every;

struct Session {
    conn: Connection,
    channel: Channel,
    results: Consumer,
}

/// Publishes commands and collects everything the results exchange carries.
pub struct Link {
    session: Option<Session>,
    topology: Topology,
    results_queue: String,
    /// Bodies already recorded, so that our own redeliveries (a lost ack) are not counted as
    /// results the daemon sent twice.
    seen: HashSet<u64>,
    /// Every result received, in arrival order.
    pub received: Vec<CommandResult>,
    /// Events (`account.reauth_required`, mirror events) with their routing keys.
    pub events: Vec<(String, Value)>,
    pub own_redeliveries: u64,
    pub reconnects: u32,
    /// The broker's nodes, tried in turn from the one after the last that failed.
    urls: Vec<String>,
    next_url: usize,
    /// The results queue is a quorum queue (on a cluster, so it outlives any one node).
    quorum: bool,
}

impl Link {
    /// Connects (within `within`) and binds a durable results queue to every routing key.
    pub async fn open(topology: &Topology, within: Duration) -> Link {
        Link::open_on(topology, vec![amqp_url()], false, within).await
    }

    /// [`Link::open`] on a cluster's nodes (`urls`), with a quorum results queue when
    /// `quorum`.
    pub async fn open_on(
        topology: &Topology,
        urls: Vec<String>,
        quorum: bool,
        within: Duration,
    ) -> Link {
        let mut link = Link {
            urls,
            next_url: 0,
            quorum,
            session: None,
            topology: topology.clone(),
            results_queue: format!("{}.drill-results", topology.commands_queue),
            seen: HashSet::new(),
            received: Vec::new(),
            events: Vec::new(),
            own_redeliveries: 0,
            reconnects: 0,
        };
        link.connect(within).await;
        link
    }

    async fn session(&mut self) -> Result<Session, lapin::Error> {
        let url = self.urls[self.next_url % self.urls.len()].clone();
        self.next_url += 1;
        let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel.confirm_select(Default::default()).await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let mut arguments = FieldTable::default();
        if self.quorum {
            arguments.insert(
                "x-queue-type".into(),
                lapin::types::AMQPValue::LongString("quorum".into()),
            );
        }
        channel
            .queue_declare(self.results_queue.as_str().into(), durable, arguments)
            .await?;
        channel
            .queue_bind(
                self.results_queue.as_str().into(),
                self.topology.results_exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let results = channel
            .basic_consume(
                self.results_queue.as_str().into(),
                "drill".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Session {
            conn,
            channel,
            results,
        })
    }

    /// (Re)connects, retrying until `within` has passed.
    pub async fn connect(&mut self, within: Duration) {
        if let Some(old) = self.session.take() {
            let _ = old.conn.close(200, "reconnecting".into()).await;
            self.reconnects += 1;
        }
        let session = eventually_every(
            Duration::from_millis(250),
            within,
            "a connection to RabbitMQ",
            async || self.session().await,
        )
        .await;
        self.session = Some(session);
    }

    fn channel(&self) -> &Channel {
        &self.session.as_ref().expect("connected").channel
    }

    /// Consumers of `queue` (0 when it does not exist).
    pub async fn consumers(&self, queue: &str) -> u32 {
        self.inspect(queue).await.map_or(0, |q| q.consumer_count())
    }

    /// Unbinds `queue` from `exchange` (the daemon binds it again when it next declares its
    /// topology).
    pub async fn unbind(&self, queue: &str, exchange: &str) {
        self.channel()
            .queue_unbind(
                queue.into(),
                exchange.into(),
                "".into(),
                FieldTable::default(),
            )
            .await
            .expect("unbinding a queue");
    }

    /// Publishes to the commands queue and waits for the broker's confirm; reconnects and
    /// publishes again if the connection broke (a second copy is a redelivery to the daemon,
    /// which the ledger answers with a replay).
    pub async fn publish(&mut self, body: &[u8], properties: &BasicProperties) {
        for _ in 0..5 {
            let sent = self
                .channel()
                .basic_publish(
                    "".into(),
                    self.topology.commands_queue.as_str().into(),
                    Default::default(),
                    body,
                    properties.clone(),
                )
                .await;
            let confirm = match sent {
                Ok(confirm) => confirm.await,
                Err(error) => Err(error),
            };
            match confirm {
                Ok(confirmation) if confirmation.is_ack() => return,
                _ => self.connect(Duration::from_secs(60)).await,
            }
        }
        panic!("the broker did not take a command after five tries");
    }

    /// Receives at most one message within `within`; false when none came.
    pub async fn pump(&mut self, within: Duration) -> bool {
        let next = {
            let results = &mut self.session.as_mut().expect("connected").results;
            tokio::time::timeout(within, results.next()).await
        };
        let delivery = match next {
            Err(_) => return false,
            Ok(Some(Ok(delivery))) => delivery,
            Ok(_) => {
                // The broker went away (or closed us): come back and go on reading.
                self.connect(Duration::from_secs(60)).await;
                return false;
            }
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        delivery.data.hash(&mut hasher);
        let fresh = self.seen.insert(hasher.finish());
        if !fresh && delivery.redelivered {
            self.own_redeliveries += 1;
        } else {
            match serde_json::from_slice::<CommandResult>(&delivery.data) {
                Ok(result) => self.received.push(result),
                Err(_) => self.events.push((
                    delivery.routing_key.to_string(),
                    serde_json::from_slice(&delivery.data).unwrap_or(Value::Null),
                )),
            }
        }
        let _ = delivery.ack(BasicAckOptions::default()).await;
        true
    }

    /// Messages ready in one of the topology's queues (0 if it cannot be read).
    pub async fn depth(&self, queue: &str) -> u32 {
        self.inspect(queue).await.map_or(0, |q| q.message_count())
    }

    /// A passive declaration of `queue`: its counts, or `None` when it cannot be read.
    async fn inspect(&self, queue: &str) -> Option<lapin::Queue> {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        self.channel()
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .ok()
    }

    /// Messages waiting anywhere in the topology (commands, retries, parked).
    pub async fn waiting(&self) -> u32 {
        let t = &self.topology;
        let mut queues = vec![
            t.commands_queue.clone(),
            t.parked_quota_queue.clone(),
            t.parked_auth_queue.clone(),
        ];
        queues.extend(t.retry_queues.iter().map(|(q, _)| q.clone()));
        let mut total = 0;
        for queue in queues {
            total += self.depth(&queue).await;
        }
        total
    }

    /// Moves every message of `from` to the commands queue as it is, minus its expiration
    /// (what the broker does at a parked message's expiry). Returns how many moved.
    pub async fn move_to_commands(&mut self, from: &str) -> usize {
        let mut moved = 0;
        loop {
            let got = self
                .channel()
                .basic_get(from.into(), BasicGetOptions::default())
                .await
                .expect("basic.get");
            let Some(message) = got else {
                return moved;
            };
            let d = &message.delivery;
            let mut properties = BasicProperties::default().with_delivery_mode(2);
            if let Some(v) = d.properties.content_type() {
                properties = properties.with_content_type(v.clone());
            }
            if let Some(v) = d.properties.message_id() {
                properties = properties.with_message_id(v.clone());
            }
            if let Some(v) = d.properties.correlation_id() {
                properties = properties.with_correlation_id(v.clone());
            }
            if let Some(v) = d.properties.headers() {
                properties = properties.with_headers(v.clone());
            }
            self.publish(&d.data, &properties).await;
            d.ack(BasicAckOptions::default()).await.expect("ack");
            moved += 1;
        }
    }

    /// Takes every dead letter; returns their command ids (message_id, else the body's id).
    pub async fn dead_letter_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        while let Some(message) = self
            .channel()
            .basic_get(
                self.topology.dead_letter_queue.as_str().into(),
                BasicGetOptions::default(),
            )
            .await
            .expect("basic.get")
        {
            let d = &message.delivery;
            let id = d
                .properties
                .message_id()
                .as_ref()
                .map(|m| m.to_string())
                .or_else(|| {
                    serde_json::from_slice::<Value>(&d.data)
                        .ok()
                        .and_then(|v| v["id"].as_str().map(str::to_owned))
                })
                .unwrap_or_default();
            ids.push(id);
            d.ack(BasicAckOptions::default()).await.expect("ack");
        }
        ids
    }

    /// Deletes the run's topology and results queue.
    pub async fn delete_all(self) {
        let Some(session) = self.session else {
            return;
        };
        let _ = self.topology.delete(&session.channel).await;
        let _ = session
            .channel
            .queue_delete(
                self.results_queue.as_str().into(),
                QueueDeleteOptions::default(),
            )
            .await;
        let _ = session.conn.close(200, "drill done".into()).await;
    }
}

/// Starts the broker's application again when dropped while it is stopped (a failing or
/// panicking drill must not leave RabbitMQ down for everyone else), and deletes the run's
/// queues if the drill did not get to it.
pub struct BrokerGuard {
    stopped: bool,
    queues: Vec<String>,
}

impl BrokerGuard {
    pub fn new(topology: &Topology) -> Self {
        let mut queues = vec![
            topology.commands_queue.clone(),
            topology.dead_letter_queue.clone(),
            topology.unrouted_queue.clone(),
            topology.parked_quota_queue.clone(),
            topology.parked_auth_queue.clone(),
            format!("{}.drill-results", topology.commands_queue),
        ];
        queues.extend(topology.retry_queues.iter().map(|(q, _)| q.clone()));
        BrokerGuard {
            stopped: false,
            queues,
        }
    }

    /// The drill deleted its topology itself.
    pub fn disarm(&mut self) {
        self.queues.clear();
    }

    /// `rabbitmqctl stop_app`, `down` of outage, `rabbitmqctl start_app`, then waits (at most
    /// `within`) until the broker takes AMQP connections again.
    pub async fn restart(&mut self, down: Duration, within: Duration) {
        self.stopped = true;
        rabbitmqctl(&["stop_app"]).await;
        tokio::time::sleep(down).await;
        rabbitmqctl(&["start_app"]).await;
        self.stopped = false;
        let conn = eventually_every(
            Duration::from_millis(200),
            within,
            "RabbitMQ taking connections after start_app",
            async || Connection::connect(&amqp_url(), ConnectionProperties::default()).await,
        )
        .await;
        let _ = conn.close(200, "probe".into()).await;
    }
}

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        let rabbitmqctl = |args: &[&str]| {
            let _ = std::process::Command::new("rabbitmqctl")
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        };
        if self.stopped {
            rabbitmqctl(&["start_app"]);
        }
        for queue in &self.queues {
            rabbitmqctl(&["delete_queue", queue]);
        }
    }
}

/// Clients of the broker other than the processes in `ours` (`ss` names each connection's
/// process): the broker is restarted only when it serves nobody else.
pub async fn other_clients(ours: &[u32]) -> Vec<String> {
    let Ok(output) = tokio::process::Command::new("ss")
        .args(["-tnpH", "dport = :5672"])
        .output()
        .await
    else {
        // No `ss` (a slim CI image): cargo runs test binaries one at a time there anyway.
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with("ESTAB"))
        .filter_map(|line| {
            let pid: u32 = line.split("pid=").nth(1)?.split(',').next()?.parse().ok()?;
            (!ours.contains(&pid)).then(|| line.split_whitespace().last().unwrap_or("").to_owned())
        })
        .collect()
}

pub async fn rabbitmqctl(args: &[&str]) {
    let output = tokio::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .await
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
