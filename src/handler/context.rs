//! What command handlers work with: the [`Handler`]'s parts (API client, store, clock,
//! custom-field cache, mirror) and one attempt's [`Ctx`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::{AccountApi, ApiClient, ApiError};
use crate::clock::Clock;
use crate::mirror::Mirror;
use crate::store::Store;

use super::attempt::Attempt;
use super::error::HandleError;
use super::fields::CustomFieldCache;
use crate::api::model::ActivityState;

/// Applies commands. Cheap to clone.
#[derive(Clone)]
pub struct Handler {
    pub(super) api: ApiClient,
    pub(super) store: Store,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) fields: CustomFieldCache,
    pub(super) mirror: Option<Mirror>,
}

impl Handler {
    pub fn new(api: ApiClient, store: Store, clock: Arc<dyn Clock>) -> Self {
        Self {
            api,
            store,
            clock,
            fields: CustomFieldCache::default(),
            mirror: None,
        }
    }

    /// Answers `mirror.run` with runs of `mirror` (without one, `mirror.run` fails as
    /// `unsupported`).
    pub fn with_mirror(mut self, mirror: Mirror) -> Self {
        self.mirror = Some(mirror);
        self
    }

    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// What a command handler works with.
pub(crate) struct Ctx<'a> {
    pub handler: &'a Handler,
    pub api: AccountApi,
    pub attempt: &'a Attempt,
}

impl Ctx<'_> {
    /// When this command first arrived (its ledger row), if it has one.
    pub async fn received_at(&self) -> Result<Option<DateTime<Utc>>, HandleError> {
        self.handler
            .store
            .ledger_received_at(&self.attempt.account, &self.attempt.command_id)
            .await
            .map_err(|e| HandleError::Storage(Arc::new(e)))
    }

    /// A delete's `data` when an earlier attempt recorded the activity that deletes `id` (its
    /// own, or a gathered delete activity it shared) and that activity has completed: deleted
    /// already, by that activity — nothing is sent again. One that ended without completing
    /// is forgotten (the delete goes ahead as a first attempt would); one still running makes
    /// the command wait and try again.
    pub async fn deleted_earlier(&self, key: &str, id: &str) -> Result<Option<Value>, HandleError> {
        let Some(activity_id) = self.attempt.effect_ref.as_deref() else {
            return Ok(None);
        };
        let completed = match self.api.get_activity(activity_id).await {
            Ok(activity) => match activity.state {
                Some(ActivityState::Completed) => true,
                Some(state) if state.is_terminal() => false,
                _ => return Err(HandleError::activity_running(activity_id)),
            },
            // Gone: nothing tells what it did; the delete goes ahead as a first attempt would.
            Err(ApiError::NotFound { .. }) => false,
            Err(error) => return Err(error.into()),
        };
        if completed {
            return Ok(Some(serde_json::json!({
                key: id,
                "already_deleted": true,
                "activity_id": activity_id,
            })));
        }
        tracing::info!(
            activity_id,
            "the delete activity an earlier attempt recorded did not complete; deleting again"
        );
        self.handler
            .store
            .ledger_clear_effect(&self.attempt.account, &self.attempt.command_id)
            .await
            .map_err(|e| HandleError::Storage(Arc::new(e)))?;
        Ok(None)
    }

    /// Remembers in the ledger what this attempt created, before anything else can fail.
    pub async fn record_effect(&self, effect_ref: &str) -> Result<(), HandleError> {
        self.handler
            .store
            .ledger_record_effect(&self.attempt.account, &self.attempt.command_id, effect_ref)
            .await
            .map_err(|e| HandleError::Storage(Arc::new(e)))
    }
}

/// Serialises a model for a result's `data`.
pub(crate) fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
