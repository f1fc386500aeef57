//! Contacts a contact-keyed command (`contact.update`, `contact.upsert`, `contact.delete`…) is
//! being applied to right now, by ordering key. A tagging or list membership command about one
//! of them waits (in its account's lane, a bounded time) until that command is done, so that
//! it does not apply between the other's read and write: a `contact.update` with `list_ids`
//! published before a `list.add_contacts` of the same contact would otherwise replace the list
//! set the activity had just changed.
//!
//! Only commands being applied count: one out waiting for a retry is in the ordering book
//! ([`super::held`]) and is not waited for (see docs/messages.md, "Ordering").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct BusyKeys {
    keys: Mutex<HashMap<String, usize>>,
    freed: Notify,
}

/// A key marked busy until dropped.
pub struct Busy<'a> {
    keys: &'a BusyKeys,
    key: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        {
            let mut keys = self.keys.lock();
            if let Some(count) = keys.get_mut(&self.key) {
                *count -= 1;
                if *count == 0 {
                    keys.remove(&self.key);
                }
            }
        }
        self.keys.freed.notify_waiters();
    }
}

impl BusyKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `key` busy until the returned guard is dropped.
    pub fn enter(&self, key: String) -> Busy<'_> {
        *self.lock().entry(key.clone()).or_default() += 1;
        Busy { keys: self, key }
    }

    /// Waits until none of `keys` is busy, at most `within`; false when some still is.
    pub async fn wait_until_free(&self, keys: &[String], within: Duration) -> bool {
        if keys.is_empty() {
            return true;
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if !keys.iter().any(|k| self.lock().contains_key(k)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return false;
            }
        }
    }
}

/// Whether an ordering key is a contact's (by id or by address).
pub fn is_contact_key(key: &str) -> bool {
    key.starts_with("contact:") || key.starts_with("email:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_goes_on_once_the_key_is_free_and_gives_up_at_its_deadline() {
        let busy = BusyKeys::default();
        let keys = vec!["contact:a".to_owned(), "contact:b".to_owned()];
        assert!(busy.wait_until_free(&keys, Duration::ZERO).await);
        let guard = busy.enter("contact:b".to_owned());
        let second = busy.enter("contact:b".to_owned());
        assert!(!busy.wait_until_free(&keys, Duration::from_millis(20)).await);
        drop(guard);
        assert!(!busy.wait_until_free(&keys, Duration::from_millis(20)).await);
        let waiting = busy.wait_until_free(&keys, Duration::from_secs(30));
        let (freed, ()) = tokio::join!(waiting, async move { drop(second) });
        assert!(freed);
        assert!(is_contact_key("email:a@example.com") && !is_contact_key("campaign:1"));
    }
}
