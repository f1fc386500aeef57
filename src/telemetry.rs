//! The tracing subscriber: human-readable text by default, JSON when `log.format = "json"`.
//! `RUST_LOG`, when set, wins over `log.level`. Logs go to stderr so that stdout stays free
//! for command output (`ctct-sync config`, the sandbox's credentials line, `send` results).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use crate::config::LogFormat;

/// Installs the global subscriber. Calling it twice is harmless (the second call is ignored),
/// which keeps tests that start several components in one process simple.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter(default_level)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = std::io::stderr.with_max_level(tracing::Level::TRACE);
    let result = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_target(true)
            // Colours only for a person at a terminal, never into a file or a pipe.
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(writer)
            .try_init(),
    };
    // An error only means a subscriber is already installed.
    let _ = result;
}

/// `level` (the `log.level` setting) with the scheduler's start-up chatter ("Job creator
/// created") quietened to warnings, unless the level names that crate itself. `RUST_LOG`
/// replaces all of it.
pub fn default_filter(level: &str) -> String {
    const SCHEDULER: &str = "tokio_cron_scheduler";
    if level.contains(SCHEDULER) {
        level.to_owned()
    } else {
        format!("{level},{SCHEDULER}=warn")
    }
}
