//! What the operations listener reads: the stores, the API client and the pipeline's view.

use std::sync::Arc;

use crate::api::ApiClient;
use crate::mirror::MirrorDb;
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
    /// The mirror store (the last successful runs, for metrics).
    pub mirror: MirrorDb,
    pub client: ApiClient,
    pub pipeline: Option<PipelineView>,
}
