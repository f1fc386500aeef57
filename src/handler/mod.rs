//! The handler: applies one checked [`Command`] to the Constant Contact API and returns the
//! result's `data`, or says why not in terms the pipeline acts on (reject, fail, retry later,
//! park until the quota resets or the account is authorised again). It knows nothing about
//! RabbitMQ.
//!
//! Every write is safe to attempt again: creates look first when an earlier attempt may have
//! taken effect (and treat 409 as "it already exists"), schedules read the current schedule,
//! and what an attempt created is remembered in the ledger (`effect_ref`).

mod attempt;
mod bulk;
mod campaign;
mod catalog;
mod contact;
mod context;
mod error;
mod fields;
mod gather;
mod report;
mod segment;
mod tag;
mod tagging;

use serde_json::Value;

use crate::command::Command;
use crate::command::catalog::MirrorSpec;
use crate::command::outcome::{ErrorCode, ResultError};
use crate::mirror::{Mode, Resource, RunOutcome, Trigger};

pub use attempt::Attempt;
pub use bulk::{EndedImport, ImportError, ImportPoll};
pub use contact::Erasure;
pub use context::Handler;
pub(crate) use context::{Ctx, to_value};
pub use error::HandleError;
pub use fields::CustomFieldCache;
pub use gather::GatheredItems;
pub use tagging::{ContactIds, Resolve};

impl Handler {
    /// Applies `command` and returns the result's `data`.
    #[tracing::instrument(skip_all, fields(command_id = %attempt.command_id, account = %attempt.account, attempt = attempt.number))]
    pub async fn handle(&self, attempt: &Attempt, command: &Command) -> Result<Value, HandleError> {
        let api = self
            .api
            .account(&attempt.account)
            .for_command(&attempt.command_id)
            .with_fence(attempt.fence.clone());
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
            Command::ContactOptOut(opt_out) => contact::opt_out(&ctx, opt_out).await,
            Command::ContactErase(target) => contact::erase(&ctx, target).await,
            Command::ContactTag(_)
            | Command::ContactUntag(_)
            | Command::ListAddContacts(_)
            | Command::ListRemoveContacts(_) => match command.gathering() {
                Some(gathering) => tagging::apply(&ctx, gathering).await,
                None => Err(HandleError::failed(
                    ErrorCode::Unsupported,
                    "the command names no contacts",
                )),
            },
            Command::CustomFieldCreate(spec) => catalog::create_custom_field(&ctx, spec).await,
            Command::CustomFieldUpdate(spec) => catalog::update_custom_field(&ctx, spec).await,
            Command::CustomFieldDelete(id) => catalog::delete_custom_field(&ctx, id).await,
            Command::CustomFieldList => catalog::list_custom_fields(&ctx).await,
            Command::ListCreate(spec) => catalog::create_list(&ctx, spec).await,
            Command::ListList => catalog::list_lists(&ctx).await,
            Command::ListUpdate(changes) => catalog::update_list(&ctx, changes).await,
            Command::ListDelete(id) => catalog::delete_list(&ctx, id).await,
            Command::SegmentList => segment::list(&ctx).await,
            Command::SegmentGet(id) => segment::get(&ctx, *id).await,
            Command::TagCreate(spec) => tag::create(&ctx, spec).await,
            Command::TagUpdate(rename) => tag::update(&ctx, rename).await,
            Command::TagDelete(id) => tag::delete(&ctx, id).await,
            Command::CampaignCreate(fields) => campaign::create(&ctx, fields).await,
            Command::CampaignUpdate(id, fields) => campaign::update(&ctx, id, fields).await,
            Command::CampaignGet(id) => campaign::get(&ctx, id).await,
            Command::CampaignList(limit) => campaign::list(&ctx, *limit).await,
            Command::CampaignSchedule(id, when) => campaign::schedule(&ctx, id, *when).await,
            Command::CampaignUnschedule(id) => campaign::unschedule(&ctx, id).await,
            Command::CampaignSendTest(test) => campaign::send_test(&ctx, test).await,
            Command::ReportCampaignGet(id) => report::campaign(&ctx, id).await,
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
                    "must be contacts, custom_fields, lists, tags, segments, campaigns or reports",
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
