//! One attempt at one command: what the handler is told besides the command.

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
