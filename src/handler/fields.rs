//! Custom fields named in commands: resolved to ids by `name` (or, failing that, by label,
//! ignoring case), from a per-account cache refreshed from the API when a name is unknown.
//! At most 100 custom fields exist per account, so one page answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::api::AccountApi;
use crate::api::model::custom_fields::CustomField;
use crate::command::contact::CustomFieldKey;

use super::HandleError;

/// How long a fetched list of custom fields is trusted before an unknown name refreshes it.
const FRESH_FOR: Duration = Duration::from_secs(300);
/// An unknown name does not refresh the list more often than this.
const RECHECK_AFTER: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Entry {
    fields: Vec<CustomField>,
    /// When the request that fetched `fields` was sent (not when its answer came).
    fetched: Option<Instant>,
    /// Bumped by every invalidation: a refresh that overlapped one fetched a list that may
    /// predate the change, so it is not kept.
    generation: u64,
}

/// A refresh that keeps losing the race with invalidations gives up caching after this
/// many fetches and answers with its last list.
const REFRESH_TRIES: usize = 3;

/// The id of the field called `name`: by name, then by label ignoring case.
fn find_id(fields: &[CustomField], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|f| f.name.as_deref() == Some(name))
        .or_else(|| fields.iter().find(|f| f.label.eq_ignore_ascii_case(name)))
        .map(|f| f.custom_field_id.clone())
}

/// Per-account cache of custom fields. Cheap to clone.
#[derive(Clone, Default)]
pub struct CustomFieldCache {
    accounts: Arc<Mutex<HashMap<String, Entry>>>,
    /// One refresh at a time per account; callers that waited use its answer.
    refreshing: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl CustomFieldCache {
    fn lookup(&self, account: &str, name: &str) -> (Option<String>, Option<Instant>) {
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = accounts.get(account) else {
            return (None, None);
        };
        (find_id(&entry.fields, name), entry.fetched)
    }

    /// The cached fields if they were fetched less than `max_age` ago.
    fn cached(&self, account: &str, max_age: Duration) -> Option<Vec<CustomField>> {
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts
            .get(account)
            .filter(|entry| entry.fetched.is_some_and(|at| at.elapsed() < max_age))
            .map(|entry| entry.fields.clone())
    }

    /// Forgets an account's fields (after a custom field is created, renamed or deleted).
    pub fn invalidate(&self, account: &str) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let entry = accounts.entry(account.to_owned()).or_default();
        entry.fields.clear();
        entry.fetched = None;
        entry.generation += 1;
    }

    /// The account's custom fields, from the cache when fresh.
    pub async fn all(&self, api: &AccountApi) -> Result<Vec<CustomField>, HandleError> {
        match self.cached(api.account(), FRESH_FOR) {
            Some(fields) => Ok(fields),
            None => self.refresh(api, FRESH_FOR).await,
        }
    }

    /// Fetches the account's fields unless, once this caller's turn comes, a list younger
    /// than `max_age` is already cached (another caller refreshed meanwhile).
    async fn refresh(
        &self,
        api: &AccountApi,
        max_age: Duration,
    ) -> Result<Vec<CustomField>, HandleError> {
        let account = api.account();
        let gate = {
            let mut refreshing = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
            refreshing.entry(account.to_owned()).or_default().clone()
        };
        let _turn = gate.lock().await;
        if let Some(fields) = self.cached(account, max_age) {
            return Ok(fields);
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let generation = {
                let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
                accounts.get(account).map_or(0, |entry| entry.generation)
            };
            let asked = Instant::now();
            let mut page = api.list_custom_fields(Some(100)).await?;
            let mut fields = std::mem::take(&mut page.custom_fields);
            while let Some(next) = page.next.take() {
                page = api.next_custom_fields_page(&next).await?;
                fields.append(&mut page.custom_fields);
            }
            let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
            let entry = accounts.entry(account.to_owned()).or_default();
            if entry.generation == generation {
                entry.fields.clone_from(&fields);
                entry.fetched = Some(asked);
                return Ok(fields);
            }
            if tries >= REFRESH_TRIES {
                return Ok(fields);
            }
        }
    }

    /// Resolves every key to a custom field id; an unknown name is a rejection naming it.
    pub async fn resolve<V: Clone>(
        &self,
        api: &AccountApi,
        keys: &[(CustomFieldKey, V)],
    ) -> Result<Vec<(String, V)>, HandleError> {
        let mut resolved = Vec::with_capacity(keys.len());
        for (key, value) in keys {
            let id = match key {
                CustomFieldKey::Id(id) => id.clone(),
                CustomFieldKey::Name(name) => {
                    let (found, fetched) = self.lookup(api.account(), name);
                    match found {
                        Some(id) => id,
                        None => {
                            let stale = fetched.is_none_or(|at| at.elapsed() >= RECHECK_AFTER);
                            let fields = if stale {
                                self.refresh(api, RECHECK_AFTER).await?
                            } else {
                                Vec::new()
                            };
                            find_id(&fields, name)
                                .or_else(|| self.lookup(api.account(), name).0)
                                .ok_or_else(|| {
                                    HandleError::rejected(
                                        &format!("data.custom_fields.{name}"),
                                        "no custom field has this name or label in the account",
                                    )
                                })?
                        }
                    }
                }
            };
            resolved.push((id, value.clone()));
        }
        Ok(resolved)
    }
}
