//! Bulk upserts: bursts of queued `contact.upsert` commands coalesced into one
//! `POST /activities/contacts_json_import` per (account, sorted set of `list_ids`), the
//! activity polled with a doubling backoff, and its outcome mapped back to one result per
//! command (row errors → `rejected`; a failed activity → transient, retried).
//!
//! ```text
//! process  → join: open batch of the key (window_ms / max_batch / < 4 MB / one row per e-mail)
//! runner   → seals expired batches (not while the account's lane is taken, up to 2 min);
//!            run_batch: take the account's lane → store batch + effect_ref batch:<id>
//!            → import → store activity id → poll → read ids → free the lane
//!            → results stored in the ledger → publish + ack each
//! restart  → batches with an activity id are resumed; redeliveries rejoin them as waiters
//! ```
//! A batched command stays unacked until its result is published; its ordering key is held
//! meanwhile, so later commands about the same contact wait behind it. A window that closes
//! with one or two upserts, or an import the API refuses as a whole (400), is applied one by
//! one through the ordinary handler. Upserts without `list_ids` are never batched (the import
//! needs at least one list). An upsert reaching an idle daemon — no other delivery in flight,
//! no batch of its lists open, no import of its account running — is not batched either: it
//! goes one by one at once rather than wait for a window no burst will fill (issue 20).

mod batcher;
mod outcome;
mod run;

pub use batcher::{Batcher, BulkConfig, Joining, Row};
pub(super) use run::{resume, run};
