//! One attempt at one command: what the handler is told besides the command.

use crate::api::client::Fence;

/// One attempt at one command.
#[derive(Clone)]
pub struct Attempt {
    pub command_id: String,
    pub account: String,
    /// 1 for the first attempt.
    pub number: u32,
    /// What an earlier attempt created, if it got that far.
    pub effect_ref: Option<String>,
    /// Checked right before each API write: whether this process still holds the command's
    /// claim (see [`Fence`]). `None`: nothing to check (a single process in a test).
    pub fence: Option<Fence>,
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("command_id", &self.command_id)
            .field("account", &self.account)
            .field("number", &self.number)
            .field("effect_ref", &self.effect_ref)
            .field("fenced", &self.fence.is_some())
            .finish()
    }
}

impl Attempt {
    /// Whether an earlier attempt may already have taken effect.
    pub fn is_retry(&self) -> bool {
        self.number > 1 || self.effect_ref.is_some()
    }
}
