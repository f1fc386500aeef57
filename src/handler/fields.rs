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
    fetched: Option<Instant>,
}

/// Per-account cache of custom fields. Cheap to clone.
#[derive(Clone, Default)]
pub struct CustomFieldCache {
    accounts: Arc<Mutex<HashMap<String, Entry>>>,
}

impl CustomFieldCache {
    fn lookup(&self, account: &str, name: &str) -> (Option<String>, Option<Instant>) {
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = accounts.get(account) else {
            return (None, None);
        };
        let by_name = entry
            .fields
            .iter()
            .find(|f| f.name.as_deref() == Some(name));
        let by_label = || {
            entry
                .fields
                .iter()
                .find(|f| f.label.eq_ignore_ascii_case(name))
        };
        (
            by_name.or_else(by_label).map(|f| f.custom_field_id.clone()),
            entry.fetched,
        )
    }

    /// Forgets an account's fields (after a custom field is created, renamed or deleted).
    pub fn invalidate(&self, account: &str) {
        self.accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
    }

    /// The account's custom fields, from the cache when fresh.
    pub async fn all(&self, api: &AccountApi) -> Result<Vec<CustomField>, HandleError> {
        {
            let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = accounts.get(api.account())
                && entry.fetched.is_some_and(|at| at.elapsed() < FRESH_FOR)
            {
                return Ok(entry.fields.clone());
            }
        }
        self.refresh(api).await
    }

    async fn refresh(&self, api: &AccountApi) -> Result<Vec<CustomField>, HandleError> {
        let mut page = api.list_custom_fields(Some(100)).await?;
        let mut fields = std::mem::take(&mut page.custom_fields);
        while let Some(next) = page.next.take() {
            page = api.next_custom_fields_page(&next).await?;
            fields.append(&mut page.custom_fields);
        }
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts.insert(
            api.account().to_owned(),
            Entry {
                fields: fields.clone(),
                fetched: Some(Instant::now()),
            },
        );
        Ok(fields)
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
                            if stale {
                                self.refresh(api).await?;
                            }
                            self.lookup(api.account(), name).0.ok_or_else(|| {
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
