//! The tracing subscriber: human-readable text by default, JSON when `log.format = "json"`.
//! `RUST_LOG`, when set, wins over `log.level`. Logs go to stderr so that stdout stays free
//! for command output (`ctct-sync config`, the sandbox's credentials line, `send` results).
//!
//! Whatever the level, library events that carry whole messages stay off (see
//! [`SILENCED_TARGETS`]): ctct-sync logs those situations itself, without the message body.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use crate::config::LogFormat;

/// Log targets that are always off. lapin logs every message the broker returns (a result
/// whose `reply_to` queue is gone, a command sent to a missing queue) at WARN with the whole
/// message, body bytes included: contact e-mail addresses and names in results and commands.
/// ctct-sync logs a returned result itself (where it was going, where it is kept), and
/// `ctct-sync send` says which queue is missing. tokio-postgres logs every statement it
/// executes at DEBUG with its parameters: refresh and access tokens, stored results with
/// contact data.
pub const SILENCED_TARGETS: &[&str] = &["lapin::returned_messages", "tokio_postgres::query"];

/// The filter for `directives` (`info`, `ctct_sync=debug,lapin=warn`, …; an invalid string
/// falls back to `info`), with [`SILENCED_TARGETS`] off whatever the directives say.
pub fn filter(directives: &str) -> EnvFilter {
    silence(EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info")))
}

/// Turns [`SILENCED_TARGETS`] off in `filter`. A directive for the same target replaces
/// one given before, so `RUST_LOG=lapin::returned_messages=trace` cannot turn them on.
fn silence(mut filter: EnvFilter) -> EnvFilter {
    for target in SILENCED_TARGETS {
        if let Ok(directive) = format!("{target}=off").parse::<Directive>() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the global subscriber. Calling it twice is harmless (the second call is ignored),
/// which keeps tests that start several components in one process simple.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = match EnvFilter::try_from_default_env() {
        Ok(from_env) => silence(from_env),
        Err(_) => filter(&default_filter(default_level)),
    };
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(directives: &str) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter(directives))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "lapin::returned_messages", body = "secret@example.com", "Server returned us a message");
            tracing::warn!(target: "lapin::channel", "a lapin warning");
            tracing::debug!(target: "tokio_postgres::query", "executing statement s1 with parameters: [\"secret@example.com\"]");
            tracing::warn!("a ctct-sync warning");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lapin_s_returned_messages_and_postgres_parameters_are_off_at_every_level_and_the_rest_stays()
    {
        for directives in [
            "trace",
            "info",
            "warn,lapin=trace",
            "trace,lapin::returned_messages=trace",
            "lapin::returned_messages=trace,trace",
            "not a filter ===",
        ] {
            let text = logged(directives);
            assert!(!text.contains("secret@example.com"), "{directives}: {text}");
            assert!(!text.contains("returned us"), "{directives}: {text}");
            assert!(
                !text.contains("executing statement"),
                "{directives}: {text}"
            );
            assert!(text.contains("a lapin warning"), "{directives}: {text}");
            assert!(text.contains("a ctct-sync warning"), "{directives}: {text}");
        }
    }
}
