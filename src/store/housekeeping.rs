//! Keeps the store from growing with every command: finished commands and ended bulk
//! batches older than `store.ledger_retention_days` are deleted when the daemon starts and
//! then every hour. Commands still in progress (parked, waiting for a retry) and open batches
//! are never deleted, whatever their age.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::error::StoreError;
use super::{Store, bulk, ledger};
use crate::clock::Clock;

/// How often the daemon prunes after its first pass at start.
pub const EVERY: Duration = Duration::from_secs(3600);

/// Rows deleted per store call, so that commands' ledger writes interleave with a large
/// first prune instead of waiting behind it.
const CHUNK: usize = 2_000;

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub commands: usize,
    pub batches: usize,
}

/// Deletes what finished more than `retention_days` before `now`, chunk by chunk.
pub async fn prune(
    store: &Store,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<Pruned, StoreError> {
    let before = now - chrono::Duration::days(i64::from(retention_days));
    if let Some(pg) = store.pg() {
        let mut pruned = Pruned::default();
        loop {
            let n = pg.ledger_prune_finished(before, CHUNK).await?;
            pruned.commands += n;
            if n < CHUNK {
                break;
            }
        }
        loop {
            let n = pg.bulk_prune_ended(before, CHUNK).await?;
            pruned.batches += n;
            if n < CHUNK {
                break;
            }
        }
        return Ok(pruned);
    }
    Ok(Pruned {
        commands: in_chunks(store, move |conn| {
            ledger::prune_finished(conn, before, CHUNK)
        })
        .await?,
        batches: in_chunks(store, move |conn| bulk::prune_ended(conn, before, CHUNK)).await?,
    })
}

/// Calls `prune` (which deletes at most [`CHUNK`] rows) until it deletes fewer; the total.
async fn in_chunks<F>(store: &Store, prune: F) -> Result<usize, StoreError>
where
    F: Fn(&mut Connection) -> Result<usize, StoreError> + Clone + Send + 'static,
{
    let mut total = 0;
    loop {
        let n = store.call(prune.clone()).await?;
        total += n;
        if n < CHUNK {
            return Ok(total);
        }
    }
}

/// Prunes now and every [`EVERY`] until `shutdown`; a failed pass is logged and tried again
/// at the next hour. `retention_days` 0 keeps everything (no task is needed then).
pub fn spawn(
    store: Store,
    clock: Arc<dyn Clock>,
    retention_days: u32,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match prune(&store, clock.now(), retention_days).await {
                Ok(pruned) if pruned == Pruned::default() => {
                    tracing::debug!(retention_days, "store: nothing old enough to prune");
                }
                Ok(pruned) => tracing::info!(
                    commands = pruned.commands,
                    bulk_batches = pruned.batches,
                    retention_days,
                    "store: pruned finished commands and bulk batches past their retention"
                ),
                Err(StoreError::Closed) => return,
                Err(error) => {
                    tracing::warn!(error = %error, "store: pruning failed; trying again in an hour");
                }
            }
        }
    })
}
