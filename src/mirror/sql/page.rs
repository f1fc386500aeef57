//! What a page of a pass records besides its rows, on either engine.

use chrono::{DateTime, Utc};

use super::cursor::Lease;

/// What a page's transaction records besides its rows: the lease it renews and the run whose
/// figures it adds to.
#[derive(Debug, Clone)]
pub struct PageMark {
    pub account: String,
    pub run_id: i64,
    /// API requests the run has made so far.
    pub requests: u64,
    pub now: DateTime<Utc>,
    /// The run's lease, extended (renewed in the page's transaction).
    pub lease: Lease,
}

/// Where a page leaves its pass: still going (its position saved), or complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageEnd {
    More,
    Last,
}

impl PageEnd {
    pub fn of(last: bool) -> Self {
        if last { PageEnd::Last } else { PageEnd::More }
    }
}
