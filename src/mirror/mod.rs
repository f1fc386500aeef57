//! The mirror: the account's contacts, custom fields, lists, tags, segments and campaigns
//! copied into SQLite or PostgreSQL for reporting with plain SQL (schema and queries in
//! docs/mirror.md).
//!
//! ```text
//! sql         every SQL statement of the mirror (runs, cursors, contacts, catalog, campaigns,
//!             campaign reports)
//!             and MirrorDb, the only way into the mirror's tables: typed async methods, no
//!             connection or rusqlite type in their signatures (also used by ops' /metrics)
//! rows        ContactRow: one contact normalised the same way from JSON and from CSV
//! pass        what a pass works with: Run (API, clock, lease, MirrorDb, counters), Stop, begin
//! writer      the contacts pages' writer: one page or export batch per transaction
//! export      the bulk export: create, poll, stream the CSV in batches (resumable by row)
//! contacts    contacts passes: full by export (paging as fallback), incremental by updated_after
//! catalog     custom fields, lists, tags and segments: listed in full on every run,
//!             reconciled (a segment's criteria read only when it was edited since)
//! campaigns   campaign list pages; details and activities only for changed campaigns
//! reports     campaign reports: summaries, activity statistics (with history), and the
//!             tracking reports of recent activities whose counts changed, within a day's share
//! events      mirror.completed / mirror.failed on the results exchange (confirmed)
//! runner      Mirror (the handle) and run_once: lock, mirror_runs row, dispatch, event
//! scheduler   tokio-cron-scheduler jobs: nightly full, hourly incremental, resume after reset
//! ```
//!
//! Each file uses only files listed above it (and the shared types of this mod.rs). Nothing
//! outside `sql` writes SQL or touches a connection: runs, cursors, leases and pages go through
//! `MirrorDb`, the mirror store `Mirror::new` is given.
//!
//! A run works page by page (an export in batches of rows): each page is written in one
//! transaction together with the pass's position, so a run stopped anywhere (killed, cancelled,
//! out of quota) leaves whole pages only and the next run continues from that position.

mod campaigns;
mod catalog;
mod contacts;
pub mod events;
mod export;
mod pass;
mod reports;
mod rows;
mod runner;
pub mod scheduler;
pub(crate) mod sql;
mod writer;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use events::{EventSender, MirrorEvents};
pub use pass::ProgressFn;
pub use rows::ContactRow;
pub use runner::Mirror;
pub use scheduler::{MirrorScheduler, ScheduleClaims, start_scheduler};
pub use sql::reports::{
    EventKind, EventRow, ReportPart, ReportProgress, StatsRow, StatsWritten, StoredStats,
    number_occurrences,
};
pub use sql::runs::LastSuccess;
pub use sql::{MirrorDb, MirrorDbError, PgMirrorDb, PgMirrorError};

/// What a run mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Contacts,
    CustomFields,
    Lists,
    /// Contact tags (definitions; contacts' taggings come with the contacts pass).
    Tags,
    /// Segments (definitions and criteria).
    Segments,
    Campaigns,
    /// Campaign reports (statistics, history, per-contact events): nightly only, after
    /// campaigns, whose activities it reads the statistics of.
    Reports,
}

impl Resource {
    /// Every resource, in the order a run of all of them takes (custom fields, lists, tags and
    /// segments first, so that contacts refer to known fields, lists and tags).
    pub const ALL: [Resource; 7] = [
        Resource::CustomFields,
        Resource::Lists,
        Resource::Tags,
        Resource::Segments,
        Resource::Contacts,
        Resource::Campaigns,
        Resource::Reports,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Contacts => "contacts",
            Resource::CustomFields => "custom_fields",
            Resource::Lists => "lists",
            Resource::Tags => "tags",
            Resource::Segments => "segments",
            Resource::Campaigns => "campaigns",
            Resource::Reports => "reports",
        }
    }

    /// Whether the hourly incremental schedule runs it: campaign reports are read nightly
    /// only, since hourly runs would spend the day's share on statistics that change slowly.
    pub fn scheduled_hourly(self) -> bool {
        self != Resource::Reports
    }

    /// Reads a resource name (`contacts`, `custom_fields`, `lists`, `tags`, `segments`,
    /// `campaigns`, `reports`).
    pub fn parse(name: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Full: everything, and rows the account no longer has are removed. Incremental: contacts
/// changed since the last complete pass (the other resources are always listed in full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Full,
    Incremental,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Incremental => "incremental",
        }
    }

    fn parse(text: &str) -> Option<Mode> {
        match text {
            "full" => Some(Mode::Full),
            "incremental" => Some(Mode::Incremental),
            _ => None,
        }
    }
}

/// How a full contacts pass reads the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactsPath {
    /// One bulk export (a handful of requests), falling back to paging when it fails.
    Export,
    /// `GET /contacts` pages of up to 500.
    Paging,
}

impl ContactsPath {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactsPath::Export => "export",
            ContactsPath::Paging => "paging",
        }
    }

    fn parse(text: &str) -> Option<ContactsPath> {
        match text {
            "export" => Some(ContactsPath::Export),
            "paging" => Some(ContactsPath::Paging),
            _ => None,
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Command,
    Cli,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Command => "command",
            Trigger::Cli => "cli",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The pass completed.
    Succeeded,
    /// An error the run cannot get past; what it wrote stays, the next run continues.
    Failed,
    /// Stopped cleanly (quota spent, cancelled): resumable from where it stopped.
    Interrupted,
    /// Not run: another run of the same resource was going.
    Skipped,
}

impl RunOutcome {
    /// Every outcome a run can end with.
    pub const ALL: [RunOutcome; 4] = [
        RunOutcome::Succeeded,
        RunOutcome::Failed,
        RunOutcome::Interrupted,
        RunOutcome::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Skipped => "skipped",
        }
    }
}

/// The figures of one run of one resource (also its `mirror_runs` row and its event).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// `mirror_runs.id`.
    pub run_id: i64,
    pub account: String,
    pub resource: Resource,
    /// The mode actually run (an incremental request without a cursor runs in full, and a
    /// pending full pass is continued whatever was asked).
    pub mode: Mode,
    pub trigger: Trigger,
    /// Contacts only: how the pass read the account.
    pub path: Option<ContactsPath>,
    /// The run that started the pass this run continued, if it continued one.
    pub resumed_from: Option<i64>,
    #[serde(serialize_with = "crate::command::timestamp::serialize")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::command::timestamp::serialize")]
    pub finished_at: DateTime<Utc>,
    pub pages: u64,
    pub rows_upserted: u64,
    pub rows_deleted: u64,
    pub api_requests: u64,
    pub outcome: RunOutcome,
    pub error: Option<String>,
    /// Interrupted by the daily quota (or the mirror's share of it): when it resets.
    #[serde(serialize_with = "crate::command::timestamp::option::serialize")]
    pub resets_at: Option<DateTime<Utc>>,
}

/// How far a run has got (for progress bars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub resource: Resource,
    pub pages: u64,
    pub rows: u64,
    /// Rows expected in all, when the API says.
    pub total: Option<u64>,
}

/// Tunables of the mirror. The defaults suit the real API; tests shorten the waits.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// `limit` of contact pages (the API's maximum is 500).
    pub page_size: u32,
    /// Export rows written per transaction.
    pub export_batch: usize,
    /// An incremental pass re-reads this far before the last pass's start, against clock
    /// skew between ctct-sync and the API (re-reading is harmless: rows are upserted).
    pub overlap: chrono::Duration,
    /// How full contacts passes read the account.
    pub contacts_path: ContactsPath,
    /// First wait between polls of the export activity; doubles up to `export_poll_max`.
    pub export_poll_initial: Duration,
    pub export_poll_max: Duration,
    /// An export not completed by then is abandoned for paging.
    pub export_deadline: Duration,
    /// How long a run's claim on its resource lasts without being renewed (it is renewed with
    /// every page): after a process dies, another may take the resource over this long later.
    pub lease_ttl: chrono::Duration,
    /// Campaign reports: the window of per-contact events and the day's share.
    pub reports: ReportOptions,
    /// Commands naming contacts by e-mail (tagging, list membership) take their ids from the
    /// mirror when its last complete contacts pass started no longer ago than this
    /// (`mirror.lookup_max_age_secs`); zero: never, every address is looked up through the API.
    pub lookup_max_age: Duration,
}

/// What the reports resource reads, and how much of a day it may spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOptions {
    /// Per-contact events of activities sent within this many days; 0: statistics only.
    pub days: u32,
    /// Requests one UTC day's reporting runs may make in all.
    pub daily_requests: u32,
}

impl ReportOptions {
    /// From `mirror.reports.*` and the daily quota: the share never goes beyond the mirror's.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        let share = settings
            .mirror
            .reports
            .share
            .min(settings.limits.mirror_share)
            .clamp(0.0, 1.0);
        Self {
            days: settings.mirror.reports.days,
            daily_requests: (f64::from(settings.limits.per_day) * share) as u32,
        }
    }
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            days: 30,
            daily_requests: 2_000,
        }
    }
}

impl Default for MirrorOptions {
    fn default() -> Self {
        Self {
            page_size: 500,
            export_batch: 2000,
            overlap: chrono::Duration::minutes(10),
            contacts_path: ContactsPath::Export,
            export_poll_initial: Duration::from_secs(2),
            export_poll_max: Duration::from_secs(60),
            export_deadline: Duration::from_secs(2 * 3600),
            lease_ttl: chrono::Duration::minutes(30),
            reports: ReportOptions::default(),
            lookup_max_age: Duration::from_secs(crate::config::DEFAULT_LOOKUP_MAX_AGE_SECS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_round_trip_and_unknown_names_are_refused() {
        for resource in Resource::ALL {
            assert_eq!(Resource::parse(resource.as_str()), Some(resource));
        }
        assert_eq!(Resource::parse("contact"), None);
        assert_eq!(Resource::ALL[0], Resource::CustomFields);
    }

    #[test]
    fn modes_and_paths_round_trip() {
        for mode in [Mode::Full, Mode::Incremental] {
            assert_eq!(Mode::parse(mode.as_str()), Some(mode));
        }
        for path in [ContactsPath::Export, ContactsPath::Paging] {
            assert_eq!(ContactsPath::parse(path.as_str()), Some(path));
        }
        assert_eq!(Mode::parse("partial"), None);
    }
}
