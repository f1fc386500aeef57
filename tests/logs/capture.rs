//! The capture every log audit reads: all lines, all levels, all threads, one test at a time,
//! through the filter the daemon installs (`telemetry::filter`).

use std::sync::{Mutex, Once};

use tracing::Level;

static INSTALL: Once = Once::new();
static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A test's turn at the capture: installed on first use, emptied when the turn starts, and
/// held until the guard drops.
pub struct Capture {
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// Waits for this test's turn and starts it with an empty capture. Call it first in a test,
/// before anything logs.
pub async fn capture() -> Capture {
    INSTALL.call_once(|| {
        // The daemon's own filter at its most verbose: everything it would ever write.
        tracing_subscriber::fmt()
            .with_env_filter(ctct_sync::telemetry::filter("trace"))
            .with_ansi(false)
            .with_writer(|| Sink)
            .init();
    });
    let turn = TURN.lock().await;
    lines_buffer().clear();
    Capture { _turn: turn }
}

fn lines_buffer() -> std::sync::MutexGuard<'static, Vec<u8>> {
    LINES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Capture {
    /// Everything captured so far in this turn.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lines_buffer()).into_owned()
    }

    /// The captured records at `level`, as the formatter wrote them (a record written over
    /// several lines stays one record).
    pub fn records_at(&self, level: Level) -> Vec<String> {
        let mut records: Vec<(Option<String>, String)> = Vec::new();
        for line in self.text().lines() {
            let mut words = line.split_whitespace();
            let stamp = words.next().unwrap_or("");
            let tag = words.next().unwrap_or("");
            let starts = stamp.starts_with(|c: char| c.is_ascii_digit())
                && stamp.contains('T')
                && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&tag);
            match records.last_mut() {
                Some((_, record)) if !starts => {
                    record.push('\n');
                    record.push_str(line);
                }
                _ => records.push((starts.then(|| tag.to_owned()), line.to_owned())),
            }
        }
        records
            .into_iter()
            .filter(|(tag, _)| tag.as_deref() == Some(level.as_str()))
            .map(|(_, record)| record)
            .collect()
    }
}

struct Sink;

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lines_buffer().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
