//! Keeps commands about the same contact (or campaign) in publish order when one of them has
//! to wait (a retry after a transient failure, parking until the quota resets).
//!
//! For each ordering key, the ids of the commands that are out waiting, oldest first. A command
//! whose key has someone waiting goes to wait too (at the back); a returning command proceeds
//! only when it is at the front. The book lives in memory: after a restart, commands that were
//! out waiting come back in the order the broker returns them.
//!
//! With replicas, a command out waiting here may come back to another replica (this one lost
//! its turn on the queue meanwhile) and finish there: the pipeline then finds its result in
//! the ledger and takes it off the front here (see `Processor::release_finished_fronts`), or later
//! commands with its key would wait behind it for ever.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// What a delivery should do about ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Go ahead.
    Proceed,
    /// Someone older with the same key is waiting: wait behind it.
    Wait,
}

#[derive(Debug, Default)]
pub struct HeldKeys {
    keys: Mutex<HashMap<String, VecDeque<String>>>,
}

impl HeldKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<String>>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides whether command `id` with `key` may run now; a new command that must wait is
    /// queued at the back.
    pub fn turn(&self, key: &str, id: &str) -> Turn {
        let mut keys = self.lock();
        let Some(queue) = keys.get_mut(key) else {
            return Turn::Proceed;
        };
        match queue.iter().position(|waiting| waiting == id) {
            Some(0) => Turn::Proceed,
            Some(_) => Turn::Wait,
            None => {
                queue.push_back(id.to_owned());
                Turn::Wait
            }
        }
    }

    /// Command `id` goes out to wait (retry or parking) ahead of later ones with its key.
    pub fn hold(&self, key: &str, id: &str) {
        let mut keys = self.lock();
        let queue = keys.entry(key.to_owned()).or_default();
        if !queue.iter().any(|waiting| waiting == id) {
            queue.push_front(id.to_owned());
        }
    }

    /// Command `id` (a gathered command about this key's contact) holds `key` behind the
    /// commands already waiting: later ones with the key wait for it, earlier ones keep their
    /// place.
    pub fn hold_behind(&self, key: &str, id: &str) {
        let mut keys = self.lock();
        let queue = keys.entry(key.to_owned()).or_default();
        if !queue.iter().any(|waiting| waiting == id) {
            queue.push_back(id.to_owned());
        }
    }

    /// Every command holding or waiting for `key`, front first.
    pub fn holders(&self, key: &str) -> Vec<String> {
        self.lock()
            .get(key)
            .map(|queue| queue.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The command at the front of `key`'s queue (the one the others wait for), if any.
    pub fn front(&self, key: &str) -> Option<String> {
        self.lock()
            .get(key)
            .and_then(|queue| queue.front().cloned())
    }

    /// Command `id` is finished: the next one with its key may go.
    pub fn release(&self, key: &str, id: &str) {
        let mut keys = self.lock();
        if let Some(queue) = keys.get_mut(key) {
            queue.retain(|waiting| waiting != id);
            if queue.is_empty() {
                keys.remove(key);
            }
        }
    }

    /// Keys with commands waiting (for metrics).
    pub fn waiting(&self) -> usize {
        self.lock().values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::held::{HeldKeys, Turn};

    #[test]
    fn later_commands_wait_behind_a_held_one_and_go_in_order() {
        let held = HeldKeys::default();
        assert_eq!(held.turn("k", "a"), Turn::Proceed);
        held.hold("k", "a");
        assert_eq!(held.turn("k", "b"), Turn::Wait);
        assert_eq!(held.turn("k", "c"), Turn::Wait);
        assert_eq!(
            held.turn("other", "x"),
            Turn::Proceed,
            "other keys are not held up"
        );
        assert_eq!(
            held.turn("k", "c"),
            Turn::Wait,
            "c returns before a: still waits"
        );
        assert_eq!(held.turn("k", "a"), Turn::Proceed);
        held.release("k", "a");
        assert_eq!(held.turn("k", "c"), Turn::Wait, "b is older");
        assert_eq!(held.turn("k", "b"), Turn::Proceed);
        held.release("k", "b");
        assert_eq!(held.turn("k", "c"), Turn::Proceed);
        held.release("k", "c");
        assert_eq!(held.waiting(), 0);
        assert_eq!(held.turn("k", "d"), Turn::Proceed);
    }

    #[test]
    fn a_waiting_command_that_fails_again_keeps_its_place() {
        let held = HeldKeys::default();
        held.hold("k", "a");
        assert_eq!(held.turn("k", "b"), Turn::Wait);
        held.hold("k", "a");
        assert_eq!(held.waiting(), 2);
        assert_eq!(held.turn("k", "a"), Turn::Proceed);
    }
}
