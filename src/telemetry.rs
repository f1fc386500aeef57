//! The tracing subscriber: human-readable text by default, JSON when `log.format = "json"`.
//! `RUST_LOG`, when set, wins over `log.level`. Logs go to stderr so that stdout stays free
//! for command output (`ctct-sync config`, the sandbox's credentials line, `send` results).
//!
//! Whatever the level, library events that carry whole messages stay off (see
//! [`SILENCED_TARGETS`]): ctct-sync logs those situations itself, without the message body.
//!
//! While something is drawn live on stderr (the progress bars of `ctct-sync mirror`,
//! registered with [`show_logs_above`]), each log line is written with that display
//! suspended, so the line lands on its own above it instead of being glued to a half-drawn bar.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, RwLock};

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
    let writer = stderr_writer.with_max_level(tracing::Level::TRACE);
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

/// Something drawn live on stderr that log lines must not be written into.
pub trait LiveDisplay: Send + Sync {
    /// Clears the display, runs `write`, and draws the display again.
    fn suspend(&self, write: &mut dyn FnMut());
}

/// The display log lines are written around, if one is drawn.
static LIVE_DISPLAY: RwLock<Option<Arc<dyn LiveDisplay>>> = RwLock::new(None);

/// Writes log lines around `display` until the returned guard is dropped.
#[must_use = "log lines are written around the display only while the guard lives"]
pub fn show_logs_above(display: Arc<dyn LiveDisplay>) -> LiveDisplayGuard {
    *LIVE_DISPLAY.write().unwrap_or_else(|e| e.into_inner()) = Some(display.clone());
    LiveDisplayGuard(display)
}

/// Keeps a [`LiveDisplay`] registered; see [`show_logs_above`].
pub struct LiveDisplayGuard(Arc<dyn LiveDisplay>);

impl Drop for LiveDisplayGuard {
    fn drop(&mut self) {
        let mut current = LIVE_DISPLAY.write().unwrap_or_else(|e| e.into_inner());
        // Only its own registration: a display registered after it stays.
        if current.as_ref().is_some_and(|d| Arc::ptr_eq(d, &self.0)) {
            *current = None;
        }
    }
}

/// The subscriber's writer: stderr, written straight away in the calling thread as before,
/// around the registered [`LiveDisplay`] when there is one.
fn stderr_writer() -> SuspendingWriter<std::io::Stderr> {
    let display = LIVE_DISPLAY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    SuspendingWriter::new(std::io::stderr(), display)
}

/// Writes each buffer whole to `inner`, inside [`LiveDisplay::suspend`] when a display is
/// drawn. The subscriber hands over one formatted event per write, so a line is never split
/// by a redraw of the display.
pub struct SuspendingWriter<W> {
    inner: W,
    display: Option<Arc<dyn LiveDisplay>>,
}

impl<W: Write> SuspendingWriter<W> {
    pub fn new(inner: W, display: Option<Arc<dyn LiveDisplay>>) -> Self {
        Self { inner, display }
    }
}

impl<W: Write> Write for SuspendingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(display) = &self.display else {
            return self.inner.write(buf);
        };
        let inner = &mut self.inner;
        let mut result = Ok(());
        display.suspend(&mut || result = inner.write_all(buf).and_then(|()| inner.flush()));
        result.map(|()| buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
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
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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

    /// Counts its suspensions and says whether one is going on.
    #[derive(Default)]
    struct CountingDisplay {
        suspended: AtomicUsize,
        inside: Arc<AtomicBool>,
    }

    impl LiveDisplay for CountingDisplay {
        fn suspend(&self, write: &mut dyn FnMut()) {
            self.suspended.fetch_add(1, Ordering::SeqCst);
            self.inside.store(true, Ordering::SeqCst);
            write();
            self.inside.store(false, Ordering::SeqCst);
        }
    }

    /// A buffer that records only what is written while the display is suspended.
    #[derive(Clone)]
    struct WhileSuspended {
        inside: Arc<AtomicBool>,
        bytes: Buffer,
        outside: Arc<AtomicUsize>,
    }

    impl std::io::Write for WhileSuspended {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.inside.load(Ordering::SeqCst) {
                self.outside.fetch_add(1, Ordering::SeqCst);
            }
            self.bytes.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_writer_passes_the_bytes_unchanged_and_writes_them_with_the_display_suspended() {
        let display = Arc::new(CountingDisplay::default());
        let sink = WhileSuspended {
            inside: display.inside.clone(),
            bytes: Buffer::default(),
            outside: Arc::default(),
        };
        let bytes: &[u8] =
            b"2026-01-01T00:00:00Z  WARN ctct_sync::api: \x1b[1mthrottled\x1b[0m\r\n\xff";
        let mut writer = SuspendingWriter::new(sink.clone(), Some(display.clone()));
        writer.write_all(bytes).unwrap();
        writer.write_all(b"second line\n").unwrap();

        let mut expected = bytes.to_vec();
        expected.extend_from_slice(b"second line\n");
        assert_eq!(*sink.bytes.0.lock().unwrap(), expected);
        assert_eq!(display.suspended.load(Ordering::SeqCst), 2);
        assert_eq!(
            sink.outside.load(Ordering::SeqCst),
            0,
            "no byte outside suspend"
        );
    }

    #[test]
    fn without_a_display_the_writer_writes_straight_through() {
        let sink = Buffer::default();
        let mut writer = SuspendingWriter::new(sink.clone(), None);
        writer.write_all(b"a log line\n").unwrap();
        assert_eq!(*sink.0.lock().unwrap(), b"a log line\n");
    }

    #[test]
    fn each_event_of_the_subscriber_is_one_write_inside_one_suspension() {
        let display = Arc::new(CountingDisplay::default());
        let sink = WhileSuspended {
            inside: display.inside.clone(),
            bytes: Buffer::default(),
            outside: Arc::default(),
        };
        let (writer_sink, writer_display) = (sink.clone(), display.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter("info"))
            .with_writer(move || {
                let display: Arc<dyn LiveDisplay> = writer_display.clone();
                SuspendingWriter::new(writer_sink.clone(), Some(display))
            })
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(pages = 3, "first event");
            tracing::warn!("second event");
        });
        let text = String::from_utf8(sink.bytes.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("first event pages=3"), "{text}");
        assert!(lines[1].ends_with("second event"), "{text}");
        assert_eq!(display.suspended.load(Ordering::SeqCst), 2);
        assert_eq!(sink.outside.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_registered_display_is_used_by_the_stderr_writer_until_its_guard_drops() {
        struct Nothing;
        impl LiveDisplay for Nothing {
            fn suspend(&self, write: &mut dyn FnMut()) {
                write();
            }
        }
        let display: Arc<dyn LiveDisplay> = Arc::new(Nothing);
        let guard = show_logs_above(display.clone());
        let registered = stderr_writer().display.expect("registered");
        assert!(Arc::ptr_eq(&registered, &display));
        drop(guard);
        assert!(stderr_writer().display.is_none());
    }
}
