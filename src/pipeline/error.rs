//! Why the pipeline could not finish with a delivery: the store failed, a stored result
//! cannot be read back, or the broker did not take a publish. Each leaves the delivery
//! unacked (handed back, or redelivered when the session is rebuilt); the ledger then
//! replays whatever was finished.

use std::sync::Arc;

use crate::amqp::PublishError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Our own store failed: the delivery waits for the store instead of spending attempts.
    #[error(transparent)]
    Store(Arc<StoreError>),
    /// A result stored in the ledger cannot be read back.
    #[error(transparent)]
    StoredResult(#[from] serde_json::Error),
    /// The broker did not take a publish (or confirm it).
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl From<StoreError> for PipelineError {
    fn from(error: StoreError) -> Self {
        PipelineError::Store(Arc::new(error))
    }
}

impl From<Arc<StoreError>> for PipelineError {
    fn from(error: Arc<StoreError>) -> Self {
        PipelineError::Store(error)
    }
}
