//! What command handlers work with: the [`Handler`]'s parts (API client, store, clock,
//! custom-field cache, mirror) and one attempt's [`Ctx`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// What recorded activities were seen to be, by (account, activity id): the commands a
    /// shared delete activity served come back together after a restart, and read it once.
    activities: Arc<Mutex<HashMap<(String, String), SeenActivity>>>,
}

/// A recorded activity as last read: ended (completed or not) for good, or running then.
#[derive(Debug, Clone, Copy)]
enum SeenActivity {
    Ended { completed: bool },
    Running { at: Instant },
}

/// How long after its first arrival a delete waits for the activity an earlier attempt
/// recorded without spending attempts (then each look is an attempt).
const ACTIVITY_PATIENCE: Duration = Duration::from_secs(60 * 60);
/// How long a running activity's state is taken as still true.
const RUNNING_FOR: Duration = Duration::from_secs(2);
/// Most activities remembered (then forgotten all at once).
const SEEN_ACTIVITIES: usize = 10_000;

impl Handler {
    pub fn new(api: ApiClient, store: Store, clock: Arc<dyn Clock>) -> Self {
        Self {
            api,
            store,
            clock,
            fields: CustomFieldCache::default(),
            mirror: None,
            activities: Arc::default(),
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

    /// What the recorded activity `activity_id` is: as read a moment ago (by another command
    /// it served), or read now. One that is gone counts as ended without completing: nothing
    /// tells what it did.
    async fn seen_activity(
        &self,
        api: &AccountApi,
        activity_id: &str,
    ) -> Result<SeenActivity, HandleError> {
        let key = (api.account().to_owned(), activity_id.to_owned());
        let lock = || self.activities.lock().unwrap_or_else(|e| e.into_inner());
        match lock().get(&key) {
            Some(seen @ SeenActivity::Ended { .. }) => return Ok(*seen),
            Some(seen @ SeenActivity::Running { at }) if at.elapsed() < RUNNING_FOR => {
                return Ok(*seen);
            }
            _ => {}
        }
        let seen = match api.get_activity(activity_id).await {
            Ok(activity) => match activity.state {
                Some(ActivityState::Completed) => SeenActivity::Ended { completed: true },
                Some(state) if state.is_terminal() => SeenActivity::Ended { completed: false },
                _ => SeenActivity::Running { at: Instant::now() },
            },
            Err(ApiError::NotFound { .. }) => SeenActivity::Ended { completed: false },
            Err(error) => return Err(error.into()),
        };
        let mut seen_all = lock();
        if seen_all.len() >= SEEN_ACTIVITIES {
            seen_all.clear();
        }
        seen_all.insert(key, seen);
        Ok(seen)
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
        let completed = match self.handler.seen_activity(&self.api, activity_id).await? {
            SeenActivity::Ended { completed } => completed,
            SeenActivity::Running { .. } => {
                let patience = chrono::Duration::from_std(ACTIVITY_PATIENCE).unwrap_or_default();
                let young = self
                    .received_at()
                    .await?
                    .is_none_or(|at| self.handler.now() - at < patience);
                return Err(HandleError::activity_running(activity_id, young));
            }
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
