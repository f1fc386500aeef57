//! The bulk import's API work, for the pipeline's batcher: start one JSON import of contact
//! rows, look at its activity, and find the ids of the imported contacts cheaply (the list's
//! pages of contacts updated since the import began, 500 at a time). The batcher decides
//! when; this module talks to the API and answers in the handler's terms.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::api::model::{ContactQuery, ContactsJsonImport, ImportRow};
use crate::api::{ApiError, AuthEvent};

use super::{HandleError, Handler};

/// The import's route, as failures of a batch name it.
const IMPORT_ROUTE: &str = "POST /activities/contacts_json_import";
/// The activity's route, as failures of a batch name it.
const ACTIVITY_ROUTE: &str = "GET /activities/{activity_id}";

/// Why an import did not start.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The API refused the import as a whole (400): its rows are applied one by one.
    #[error(transparent)]
    Refused(ApiError),
    /// Any other failure; every command of the batch gets it ([`ImportError::into_handle_error`]).
    #[error(transparent)]
    Failed(ApiError),
}

impl ImportError {
    /// What the API said about the import.
    pub fn message(&self) -> String {
        match self {
            ImportError::Refused(ApiError::Invalid { message, .. }) => message.clone(),
            ImportError::Refused(error) | ImportError::Failed(error) => error.to_string(),
        }
    }

    /// Whether the import may have been applied although its answer was lost.
    pub fn maybe_applied(&self) -> bool {
        matches!(
            self,
            ImportError::Failed(ApiError::Transport {
                maybe_applied: true,
                ..
            })
        )
    }

    /// The failure, in the terms the pipeline acts on.
    pub fn into_handle_error(self) -> HandleError {
        match self {
            ImportError::Refused(error) | ImportError::Failed(error) => HandleError::from(error),
        }
    }
}

/// One look at an import's activity.
#[derive(Debug)]
pub enum ImportPoll {
    /// Still running, or this look failed in a way worth looking again.
    Running,
    /// The activity ended.
    Ended(EndedImport),
    /// Looking cannot go on (the activity is gone, the quota is spent, the account lost its
    /// authorisation): every command of the batch gets this.
    Stop(HandleError),
}

/// An ended import activity, as far as the batch needs it.
#[derive(Debug, Clone)]
pub struct EndedImport {
    /// The activity's final state (`completed`, `failed`, `cancelled`, `timed_out`).
    pub state: String,
    /// `activity_errors`: one line per skipped row, `Line <n>: <email>: <reason>`.
    pub row_errors: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// When it ended (`completed_at`, else `updated_at`).
    pub ended_at: Option<DateTime<Utc>>,
    /// `status.items_total_count` and `status.items_completed_count`, when the API gives them.
    pub items: (Option<u64>, Option<u64>),
}

impl EndedImport {
    pub fn completed(&self) -> bool {
        self.state == "completed"
    }

    /// Whether the activity says it completed fewer items than it was given.
    pub fn short(&self) -> bool {
        matches!(self.items, (Some(total), Some(done)) if done < total)
    }
}

/// Contacts per page of the listing the ids are read from (the API's maximum).
const PAGE: u64 = 500;

/// Pages read when the API does not say how many contacts the window holds.
const UNCOUNTED_PAGES: u64 = 400;

impl Handler {
    /// Token events (an account lost or regained its authorisation).
    pub fn auth_events(&self) -> broadcast::Receiver<AuthEvent> {
        self.api.tokens().subscribe()
    }

    /// Starts one JSON import of `rows` into `lists`; answers the activity's id.
    pub async fn start_import(
        &self,
        account: &str,
        rows: Vec<ImportRow>,
        lists: &[String],
    ) -> Result<String, ImportError> {
        let body = ContactsJsonImport {
            import_data: rows,
            list_ids: lists.to_vec(),
        };
        match self.api.account(account).import_contacts_json(&body).await {
            Ok(activity) => Ok(activity.activity_id),
            Err(error @ ApiError::Invalid { .. }) => Err(ImportError::Refused(error)),
            Err(error) => Err(ImportError::Failed(error)),
        }
    }

    /// Looks once at the import activity `activity_id`.
    pub async fn poll_import(&self, account: &str, activity_id: &str) -> ImportPoll {
        match self.api.account(account).get_activity(activity_id).await {
            Ok(activity) if activity.is_terminal() => ImportPoll::Ended(EndedImport {
                state: activity
                    .state
                    .as_ref()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                row_errors: activity.activity_errors,
                created_at: activity.created_at,
                ended_at: activity.completed_at.or(activity.updated_at),
                items: activity.status.as_ref().map_or((None, None), |status| {
                    (status.items_total_count, status.items_completed_count)
                }),
            }),
            Ok(_) => ImportPoll::Running,
            Err(error @ ApiError::NotFound { .. }) => {
                ImportPoll::Stop(HandleError::Transient(ApiError::Transport {
                    route: ACTIVITY_ROUTE,
                    maybe_applied: true,
                    attempts: 1,
                    detail: error.to_string(),
                }))
            }
            Err(error @ (ApiError::QuotaExhausted { .. } | ApiError::Auth(_))) => {
                ImportPoll::Stop(HandleError::from(error))
            }
            Err(error) => {
                tracing::debug!(error = %error, activity_id, "polling the import failed; polling again");
                ImportPoll::Running
            }
        }
    }

    /// Contact ids of `emails` (lower-cased): pages of `list`'s contacts updated since
    /// `since`, stopping once all are found; a few stragglers (e.g. unsubscribed contacts,
    /// which the import does not add to lists) are looked up one by one. Returns the ids,
    /// the addresses found unsubscribed (the import left their permission as it was) and
    /// the requests spent; what cannot be had cheaply stays unknown.
    ///
    /// The window also holds contacts that other writers updated meanwhile — above all
    /// other batches on the same list completing together, whose contacts may come first —
    /// so the pages to read are sized by the window's count (`include_count`), not by this
    /// batch.
    pub async fn lookup_ids(
        &self,
        account: &str,
        list: &str,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        emails: &[String],
    ) -> (HashMap<String, String>, HashSet<String>, u64) {
        let api = self.api.account(account);
        let mut missing: HashSet<&str> = emails.iter().map(String::as_str).collect();
        let mut ids = HashMap::new();
        let mut unsubscribed = HashSet::new();
        let mut requests = 0;
        // Set by the first page's count; one page more for contacts joining while we read.
        let mut max_pages = UNCOUNTED_PAGES;
        let query = ContactQuery {
            lists: vec![list.to_owned()],
            updated_after: Some(since),
            updated_before: until,
            include_count: true,
            limit: Some(PAGE as u32),
            ..ContactQuery::default()
        };
        let mut page: Option<String> = None;
        while !missing.is_empty() && requests < max_pages {
            requests += 1;
            let answer = match &page {
                None => api.list_contacts(&query).await,
                Some(href) => api.next_contacts_page(href).await,
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::warn!(error = %error, list, "listing the imported contacts failed");
                    break;
                }
            };
            if let Some(count) = answer.contacts_count {
                max_pages = count.div_ceil(PAGE).max(1) + 1;
            }
            for contact in &answer.contacts {
                if let Some(email) = contact.email().map(str::to_lowercase)
                    && missing.remove(email.as_str())
                {
                    if super::contact::is_unsubscribed(contact) {
                        unsubscribed.insert(email.clone());
                    }
                    ids.insert(email, contact.contact_id.clone());
                }
            }
            match answer.next {
                Some(next) => page = Some(next),
                None => break,
            }
        }
        if missing.len() <= (emails.len() / 100).max(2) {
            for email in missing {
                requests += 1;
                if let Ok(Some(contact)) = api.find_contact_by_email(email, &[], true).await {
                    if super::contact::is_unsubscribed(&contact) {
                        unsubscribed.insert(email.to_owned());
                    }
                    ids.insert(email.to_owned(), contact.contact_id);
                }
            }
        } else {
            tracing::warn!(
                list,
                missing = missing.len(),
                requests,
                "contact ids of a bulk import not found in the list's pages"
            );
        }
        (ids, unsubscribed, requests)
    }
}

impl HandleError {
    /// The same failure for another command of the batch.
    pub fn copy_for_batch(&self) -> HandleError {
        match self {
            HandleError::Rejected(rejection) => HandleError::Rejected(rejection.clone()),
            HandleError::Failed(error) => HandleError::Failed(error.clone()),
            HandleError::Transient(error) => HandleError::Transient(ApiError::Transport {
                route: IMPORT_ROUTE,
                maybe_applied: false,
                attempts: 1,
                detail: error.to_string(),
            }),
            HandleError::QuotaExhausted { resets_at } => HandleError::QuotaExhausted {
                resets_at: *resets_at,
            },
            HandleError::ReauthRequired { reason } => HandleError::ReauthRequired {
                reason: reason.clone(),
            },
            HandleError::Storage(error) => HandleError::Storage(error.clone()),
            HandleError::ClaimLost => HandleError::ClaimLost,
            HandleError::Pending(why) => HandleError::Pending(why.clone()),
        }
    }

    /// For every command of a batch whose import activity did not end in time.
    pub fn import_overdue(activity_id: &str) -> HandleError {
        HandleError::Transient(ApiError::Transport {
            route: ACTIVITY_ROUTE,
            maybe_applied: true,
            attempts: 1,
            detail: format!("the import activity {activity_id} did not finish in time"),
        })
    }

    /// For a delete whose recorded activity (an earlier attempt's) has not ended yet: back in
    /// a moment without spending an attempt while the command is young (`within_patience`),
    /// then retried as a transient failure (a stuck activity ends the command in the end).
    pub fn activity_running(activity_id: &str, within_patience: bool) -> HandleError {
        let detail =
            format!("the activity {activity_id} an earlier attempt started has not ended yet");
        if within_patience {
            return HandleError::Pending(detail);
        }
        HandleError::Transient(ApiError::Transport {
            route: ACTIVITY_ROUTE,
            maybe_applied: true,
            attempts: 1,
            detail,
        })
    }

    /// For every command of a batch whose import activity ended without completing.
    pub fn import_incomplete(activity_id: &str, state: &str) -> HandleError {
        HandleError::Transient(ApiError::Transport {
            route: IMPORT_ROUTE,
            maybe_applied: true,
            attempts: 1,
            detail: format!("the import activity {activity_id} ended {state}"),
        })
    }
}
