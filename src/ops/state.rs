//! What the operations listener reads: the stores, the API client and the pipeline's view.

use std::sync::Arc;

use crate::api::ApiClient;
use crate::mirror::Mirror;
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
    /// The state store.
    pub store: Store,
    /// The mirror: its store (the last successful runs) and the runs this process made.
    pub mirror: Mirror,
    pub client: ApiClient,
    pub pipeline: Option<PipelineView>,
}
