//! What the operations listener reads: the store, the API client and the pipeline's view.

use std::sync::Arc;

use crate::api::ApiClient;
use crate::pipeline::PipelineStatus;
use crate::pipeline::process::Processor;
use crate::store::Store;

/// What the pipeline exposes to operations.
#[derive(Clone)]
pub struct PipelineView {
    pub status: Arc<PipelineStatus>,
    pub processor: Arc<Processor>,
}

/// Everything the listener reads.
#[derive(Clone)]
pub struct OpsState {
    pub store: Store,
    pub client: ApiClient,
    pub pipeline: Option<PipelineView>,
}
