//! Lanes: a fixed number of serial workers. A delivery goes to the lane its key hashes to,
//! so commands about the same contact (or campaign, or the same command redelivered) run one
//! after the other in arrival order, while different keys run in parallel.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use lapin::message::Delivery;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tracing::Instrument as _;

use super::process::{Decoded, Processor, Taken};
use super::session::Session;

/// One delivery on its way through a lane.
pub struct Job {
    pub session: Arc<Session>,
    pub delivery: Delivery,
    pub decoded: Decoded,
    /// Counts the delivery as in flight until its lane has decided it.
    pub taken: Taken,
}

pub struct Lanes {
    senders: Vec<mpsc::Sender<Job>>,
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Lanes {
    /// Starts `count` lanes, each holding at most `capacity` waiting jobs.
    pub fn start(count: usize, capacity: usize, processor: Arc<Processor>) -> Self {
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let mut senders = Vec::with_capacity(count);
        for lane in 0..count {
            let (sender, mut jobs) = mpsc::channel::<Job>(capacity.max(1));
            let (processor, stop) = (processor.clone(), stop.clone());
            tracker.spawn(async move {
                loop {
                    let job = tokio::select! {
                        biased;
                        _ = stop.cancelled() => break,
                        job = jobs.recv() => match job {
                            Some(job) => job,
                            None => break,
                        },
                    };
                    let span = delivery_span(lane, &job);
                    let Job {
                        session,
                        delivery,
                        decoded,
                        taken,
                    } = job;
                    processor
                        .process(&session, delivery, decoded)
                        .instrument(span)
                        .await;
                    drop(taken);
                }
            });
            senders.push(sender);
        }
        tracker.close();
        Self {
            senders,
            tracker,
            stop,
        }
    }

    /// Queues `job` on the lane of `key`.
    pub async fn dispatch(&self, key: &str, job: Job) {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let lane = (hasher.finish() % self.senders.len() as u64) as usize;
        // A lane only stops at shutdown, after dispatching ended.
        let _ = self.senders[lane].send(job).await;
    }

    /// Lets every lane finish the job in hand (queued ones are left unacked, so the broker
    /// gives them to the next daemon), waiting at most `grace`. True when all finished.
    pub async fn shutdown(self, grace: Duration) -> bool {
        self.stop.cancel();
        drop(self.senders);
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// The span every log line of a delivery's processing carries: which command, for whom.
fn delivery_span(lane: usize, job: &Job) -> tracing::Span {
    let (id, command_type, account) = match &job.decoded {
        Decoded::Valid(envelope, _) | Decoded::InvalidCommand(envelope, _) => (
            envelope.id.as_str(),
            envelope.command_type.as_str(),
            envelope.account.as_str(),
        ),
        Decoded::Invalid(error) => (
            error.partial.id.as_deref().unwrap_or(""),
            error.partial.command_type.as_deref().unwrap_or(""),
            error.partial.account.as_deref().unwrap_or(""),
        ),
    };
    let correlation_id = job
        .delivery
        .properties
        .correlation_id()
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    tracing::info_span!(
        "delivery",
        lane,
        delivery_tag = job.delivery.delivery_tag,
        command_id = %crate::command::field::truncate(id, 128),
        command_type = %crate::command::field::truncate(command_type, 64),
        account = %account,
        correlation_id = %crate::command::field::truncate(&correlation_id, 128),
    )
}
