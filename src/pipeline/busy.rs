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

    /// Whether one of `keys` is busy.
    pub fn any_busy(&self, keys: &[String]) -> bool {
        let busy = self.lock();
        keys.iter().any(|k| busy.contains_key(k))
    }

    /// Waits until some key is freed, at most `within`.
    pub async fn freed_within(&self, within: Duration) {
        let _ = tokio::time::timeout(within, self.freed.notified()).await;
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
    async fn keys_are_busy_while_a_guard_lives_and_a_waiter_is_woken_when_one_is_freed() {
        let busy = BusyKeys::default();
        let keys = vec!["contact:a".to_owned(), "contact:b".to_owned()];
        assert!(!busy.any_busy(&keys));
        let guard = busy.enter("contact:b".to_owned());
        let second = busy.enter("contact:b".to_owned());
        assert!(busy.any_busy(&keys));
        drop(guard);
        assert!(busy.any_busy(&keys), "entered twice");
        let started = tokio::time::Instant::now();
        let waiting = busy.freed_within(Duration::from_secs(30));
        tokio::join!(waiting, async move { drop(second) });
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(!busy.any_busy(&keys));
        assert!(is_contact_key("email:a@example.com") && !is_contact_key("campaign:1"));
    }
}
