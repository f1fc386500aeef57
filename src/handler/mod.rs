//! The handler: applies one checked [`Command`] to the Constant Contact API and returns the
//! result's `data`, or says why not in terms the pipeline acts on (reject, fail, retry later,
//! park until the quota resets or the account is authorised again). It knows nothing about
//! RabbitMQ.
//!
//! Every write is safe to attempt again: creates look first when an earlier attempt may have
//! taken effect (and treat 409 as "it already exists"), schedules read the current schedule,
//! and what an attempt created is remembered in the ledger (`effect_ref`).

mod bulk;
mod campaign;
mod catalog;
mod contact;
mod fields;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::{AccountApi, ApiClient, ApiError, AuthError, Clock};
use crate::command::catalog::MirrorSpec;
use crate::command::outcome::{ErrorCode, ResultError};
use crate::command::{Command, FieldError, Rejection};
use crate::mirror::{Mirror, Mode, Resource, RunOutcome, Trigger};
use crate::store::{Store, StoreError, ledger};

pub use bulk::{EndedImport, ImportError, ImportPoll};
pub use fields::CustomFieldCache;

/// One attempt at one command.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub command_id: String,
    pub account: String,
    /// 1 for the first attempt.
    pub number: u32,
    /// What an earlier attempt created, if it got that far.
    pub effect_ref: Option<String>,
}

impl Attempt {
    /// Whether an earlier attempt may already have taken effect.
    pub fn is_retry(&self) -> bool {
        self.number > 1 || self.effect_ref.is_some()
    }
}

/// Why a command did not succeed, in the terms the pipeline acts on.
#[derive(Debug)]
pub enum HandleError {
    /// The input broke a rule (ours or the API's): a `rejected` result, dead-lettered.
    Rejected(Rejection),
    /// Valid, but it cannot be applied (not found, conflict, forbidden): a `failed` result.
    Failed(ResultError),
    /// Worth trying again later: the pipeline schedules a retry.
    Transient(ApiError),
    /// The API key's daily quota is spent: park until the reset.
    QuotaExhausted { resets_at: DateTime<Utc> },
    /// The account needs a person to authorise it again: park until then.
    ReauthRequired { reason: String },
    /// Our own store failed; the command is tried again later.
    Storage(Arc<StoreError>),
}

impl HandleError {
    /// A final `failed` result with our own code.
    pub fn failed(code: ErrorCode, message: impl Into<String>) -> Self {
        HandleError::Failed(ResultError {
            code,
            message: message.into(),
            retryable: false,
            api_status: None,
            api_error_key: None,
            fields: Vec::new(),
        })
    }

    /// A rejection naming one field.
    pub fn rejected(field: &str, reason: impl Into<String>) -> Self {
        HandleError::Rejected(Rejection::with_fields(
            ErrorCode::InvalidData,
            "the command's data is invalid",
            vec![FieldError::new(field, reason)],
        ))
    }

    /// The result error for a final failure from the API.
    pub fn api_failure(code: ErrorCode, error: &ApiError) -> ResultError {
        ResultError {
            code,
            message: error.to_string(),
            retryable: error.is_retryable(),
            api_status: error.status(),
            api_error_key: error.error_key().map(str::to_owned),
            fields: Vec::new(),
        }
    }
}

impl From<ApiError> for HandleError {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::QuotaExhausted { resets_at } | ApiError::MirrorShareSpent { resets_at } => {
                HandleError::QuotaExhausted { resets_at }
            }
            ApiError::Auth(AuthError::ReauthRequired { reason, .. }) => {
                HandleError::ReauthRequired { reason }
            }
            ApiError::Auth(AuthError::NotAuthorised { account }) => {
                HandleError::Rejected(Rejection::with_fields(
                    ErrorCode::AccountNotAuthorised,
                    format!("account `{account}` is not connected to ctct-sync"),
                    vec![FieldError::new(
                        "account",
                        format!(
                            "is not authorised; run `ctct-sync auth login --account {account}`"
                        ),
                    )],
                ))
            }
            ApiError::Invalid { ref message, .. } => {
                let mut rejection = Rejection::with_fields(
                    ErrorCode::ApiValidation,
                    format!("the API refused the data: {message}"),
                    vec![FieldError::new("data", message.clone())],
                );
                rejection.message = error.to_string();
                rejection.api_status = error.status();
                rejection.api_error_key = error.error_key().map(str::to_owned);
                HandleError::Rejected(rejection)
            }
            ApiError::NotFound { .. } => {
                HandleError::Failed(HandleError::api_failure(ErrorCode::NotFound, &error))
            }
            ApiError::Conflict { .. } => {
                HandleError::Failed(HandleError::api_failure(ErrorCode::Conflict, &error))
            }
            ApiError::Forbidden { .. } => {
                HandleError::Failed(HandleError::api_failure(ErrorCode::Forbidden, &error))
            }
            // A 401 after a refresh: the next refresh will tell whether the grant is gone.
            ApiError::Unauthorized { .. } => HandleError::Transient(error),
            ref e if e.is_retryable() => HandleError::Transient(error),
            ApiError::Auth(_) => HandleError::Transient(error),
            _ => HandleError::Failed(HandleError::api_failure(ErrorCode::ApiError, &error)),
        }
    }
}

/// Applies commands. Cheap to clone.
#[derive(Clone)]
pub struct Handler {
    api: ApiClient,
    store: Store,
    clock: Arc<dyn Clock>,
    fields: CustomFieldCache,
    mirror: Option<Mirror>,
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

    /// Applies `command` and returns the result's `data`.
    #[tracing::instrument(skip_all, fields(command_id = %attempt.command_id, account = %attempt.account, attempt = attempt.number))]
    pub async fn handle(&self, attempt: &Attempt, command: &Command) -> Result<Value, HandleError> {
        let api = self
            .api
            .account(&attempt.account)
            .for_command(&attempt.command_id);
        let ctx = Ctx {
            handler: self,
            api,
            attempt,
        };
        match command {
            Command::ContactCreate(changes) => contact::create(&ctx, changes).await,
            Command::ContactUpsert(changes) => contact::upsert(&ctx, changes).await,
            Command::ContactUpdate(target, changes) => contact::update(&ctx, target, changes).await,
            Command::ContactSignUp(sign_up) => contact::sign_up(&ctx, sign_up).await,
            Command::ContactGet(target) => contact::get(&ctx, target).await,
            Command::ContactDelete(target) => contact::delete(&ctx, target).await,
            Command::CustomFieldCreate(spec) => catalog::create_custom_field(&ctx, spec).await,
            Command::CustomFieldUpdate(spec) => catalog::update_custom_field(&ctx, spec).await,
            Command::CustomFieldDelete(id) => catalog::delete_custom_field(&ctx, id).await,
            Command::CustomFieldList => catalog::list_custom_fields(&ctx).await,
            Command::ListCreate(spec) => catalog::create_list(&ctx, spec).await,
            Command::ListList => catalog::list_lists(&ctx).await,
            Command::CampaignCreate(fields) => campaign::create(&ctx, fields).await,
            Command::CampaignUpdate(id, fields) => campaign::update(&ctx, id, fields).await,
            Command::CampaignGet(id) => campaign::get(&ctx, id).await,
            Command::CampaignList(limit) => campaign::list(&ctx, *limit).await,
            Command::CampaignSchedule(id, when) => campaign::schedule(&ctx, id, *when).await,
            Command::CampaignUnschedule(id) => campaign::unschedule(&ctx, id).await,
            Command::CampaignSendTest(test) => campaign::send_test(&ctx, test).await,
            Command::AccountEmailsList(filter) => {
                catalog::list_account_emails(&ctx, filter.as_deref()).await
            }
            Command::AccountEmailAdd(email) => catalog::add_account_email(&ctx, email).await,
            Command::AccountPrivilegesGet => catalog::privileges(&ctx).await,
            Command::MirrorRun(spec) => self.mirror_run(attempt, spec).await,
        }
    }
}

impl Handler {
    /// `mirror.run`: runs the resource asked for (all when none), full or incremental, and
    /// answers with the runs' summaries. A run stopped by the quota parks the command until
    /// the reset (the retry continues the pass); a failed or cancelled run fails the command.
    async fn mirror_run(&self, attempt: &Attempt, spec: &MirrorSpec) -> Result<Value, HandleError> {
        let Some(mirror) = &self.mirror else {
            return Err(HandleError::failed(
                ErrorCode::Unsupported,
                "the mirror is not enabled in this process",
            ));
        };
        let resources = match spec.resource.as_deref() {
            None => Resource::ALL.to_vec(),
            Some(name) => vec![Resource::parse(name).ok_or_else(|| {
                HandleError::rejected(
                    "data.resource",
                    "must be contacts, custom_fields, lists or campaigns",
                )
            })?],
        };
        let mode = if spec.full {
            Mode::Full
        } else {
            Mode::Incremental
        };
        let runs = mirror
            .run(&attempt.account, &resources, mode, Trigger::Command)
            .await;
        if let Some(resets_at) = runs.iter().find_map(|r| r.resets_at) {
            return Err(HandleError::QuotaExhausted { resets_at });
        }
        let problems: Vec<String> = runs
            .iter()
            .filter(|r| matches!(r.outcome, RunOutcome::Failed | RunOutcome::Interrupted))
            .map(|r| {
                format!(
                    "{} {} (run {}): {}",
                    r.resource,
                    r.outcome.as_str(),
                    r.run_id,
                    r.error.as_deref().unwrap_or("no detail")
                )
            })
            .collect();
        if !problems.is_empty() || runs.len() < resources.len() {
            let interrupted = runs.len() < resources.len()
                || runs.iter().all(|r| r.outcome != RunOutcome::Failed);
            return Err(HandleError::Failed(ResultError {
                code: if interrupted {
                    ErrorCode::Interrupted
                } else {
                    ErrorCode::MirrorFailed
                },
                message: if problems.is_empty() {
                    "the mirror was stopped before every resource ran".to_owned()
                } else {
                    problems.join("; ")
                },
                retryable: true,
                api_status: None,
                api_error_key: None,
                fields: Vec::new(),
            }));
        }
        Ok(serde_json::json!({ "runs": runs }))
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
        let (account, id) = (
            self.attempt.account.clone(),
            self.attempt.command_id.clone(),
        );
        self.handler
            .store
            .call(move |conn| ledger::received_at(conn, &account, &id))
            .await
            .map_err(|e| HandleError::Storage(Arc::new(e)))
    }

    /// Remembers in the ledger what this attempt created, before anything else can fail.
    pub async fn record_effect(&self, effect_ref: &str) -> Result<(), HandleError> {
        let (account, id, effect) = (
            self.attempt.account.clone(),
            self.attempt.command_id.clone(),
            effect_ref.to_owned(),
        );
        self.handler
            .store
            .call_grouped(move |conn| ledger::record_effect(conn, &account, &id, &effect))
            .await
            .map_err(|e| HandleError::Storage(Arc::new(e)))
    }
}

/// Serialises a model for a result's `data`.
pub(crate) fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
