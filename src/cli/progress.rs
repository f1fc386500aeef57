//! The progress bars of `ctct-sync mirror`: one per resource, on stderr, and only when stderr
//! is a terminal. When the API says how many rows to expect: a bar with the percentage, rows
//! done of the total and the time left; otherwise a spinner with rows and pages. The rate and
//! the time left appear once the run has gone on for [`SETTLE`]. While a bar is drawn, log
//! lines are written above it (see [`crate::telemetry::show_logs_above`]).

use std::fmt;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{
    HumanCount, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState,
    ProgressStyle,
};

use crate::mirror::{Progress, ProgressFn, Resource};
use crate::telemetry::{LiveDisplay, LiveDisplayGuard, show_logs_above};

/// How long a run goes on before its bar shows a rate and a time left: a rate taken over the
/// first page alone (500 rows a millisecond after the start) is a meaningless figure.
pub const SETTLE: Duration = Duration::from_secs(1);

/// While the number of rows to expect is unknown.
pub const SPINNER_TEMPLATE: &str = "{spinner} {prefix:<13} {human_pos} rows, {msg}{pace}";

/// Once the API has said how many rows to expect.
pub const BAR_TEMPLATE: &str =
    "{spinner} {prefix:<13} [{bar:30}] {percent:>3}% {human_pos}/{human_len} rows, {msg}{pace}";

/// How often the bar is redrawn between pages (the spinner turns, the time left counts).
const TICK: Duration = Duration::from_millis(120);

/// `, 2,500 rows/s` and, when `left` is given, `, 12s left` — or nothing at all before the
/// run has gone on for [`SETTLE`], before its first row, or while the rate is not positive.
pub fn pace(elapsed: Duration, rows: u64, per_sec: f64, left: Option<Duration>) -> String {
    if elapsed < SETTLE || rows == 0 || !per_sec.is_finite() || per_sec <= 0.0 {
        return String::new();
    }
    let mut text = format!(", {} rows/s", HumanCount(per_sec.round() as u64));
    if let Some(left) = left {
        text.push_str(&format!(", {:#} left", HumanDuration(left)));
    }
    text
}

/// The `{pace}` key of the templates: [`pace`] of the bar's own state (indicatif's smoothed
/// rate; the time left only when the total is known).
fn pace_key(state: &ProgressState, out: &mut dyn fmt::Write) {
    let left = state.len().map(|_| state.eta());
    let _ = out.write_str(&pace(state.elapsed(), state.pos(), state.per_sec(), left));
}

/// The style of a bar drawn with `template`.
pub fn style(template: &str) -> Result<ProgressStyle, indicatif::style::TemplateError> {
    Ok(ProgressStyle::with_template(template)?
        .with_key("pace", pace_key)
        .progress_chars("=> "))
}

/// `1 page`, `1,000 pages`.
fn pages(n: u64) -> String {
    format!("{} page{}", HumanCount(n), if n == 1 { "" } else { "s" })
}

/// The bars of one `ctct-sync mirror`: [`MirrorBars::begin`] before a resource's run,
/// [`MirrorBars::hook`] given to the mirror, [`MirrorBars::end`] before its summary line.
pub struct MirrorBars {
    bars: Arc<Bars>,
    /// Log lines go above the bars while this lives (dropped after the last bar is cleared).
    _logs: Option<LiveDisplayGuard>,
}

impl MirrorBars {
    /// Bars on stderr when stderr is a terminal; `None` otherwise, so that nothing is drawn
    /// into a pipe or a file.
    pub fn on_stderr() -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bars = Arc::new(Bars::new(ProgressDrawTarget::stderr()));
        let logs = show_logs_above(Arc::new(SuspendBars(bars.multi.clone())));
        Some(Self {
            bars,
            _logs: Some(logs),
        })
    }

    /// Bars drawn on `target`, log lines left alone (tests draw on a hidden target).
    pub fn drawn_on(target: ProgressDrawTarget) -> Self {
        Self {
            bars: Arc::new(Bars::new(target)),
            _logs: None,
        }
    }

    /// The mirror's progress hook: moves the bar of the resource being run.
    pub fn hook(&self) -> ProgressFn {
        let bars = self.bars.clone();
        Arc::new(move |progress: &Progress| bars.update(progress))
    }

    /// Starts the bar of `resource` (a spinner until the total is known); the rate is
    /// measured from here.
    pub fn begin(&self, resource: Resource) {
        let mut current = self.bars.lock();
        self.bars.start(&mut current, resource);
    }

    /// Clears the current bar: the summary line that follows says how the run ended.
    pub fn end(&self) {
        let mut current = self.bars.lock();
        self.bars.finish(&mut current);
    }

    /// The bar being drawn, if any (for tests).
    pub fn current(&self) -> Option<ProgressBar> {
        self.bars.lock().as_ref().map(|c| c.bar.clone())
    }
}

impl Drop for MirrorBars {
    fn drop(&mut self) {
        self.end();
    }
}

/// What the hook and the command share.
struct Bars {
    multi: MultiProgress,
    spinner: ProgressStyle,
    bar: ProgressStyle,
    current: Mutex<Option<Current>>,
}

struct Current {
    resource: Resource,
    bar: ProgressBar,
    total: Option<u64>,
}

impl Bars {
    fn new(target: ProgressDrawTarget) -> Self {
        Self {
            multi: MultiProgress::with_draw_target(target),
            spinner: style(SPINNER_TEMPLATE).expect("the spinner's template parses (tested)"),
            bar: style(BAR_TEMPLATE).expect("the bar's template parses (tested)"),
            current: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self, current: &mut Option<Current>, resource: Resource) {
        self.finish(current);
        let bar = self.multi.add(
            ProgressBar::new_spinner()
                .with_style(self.spinner.clone())
                .with_prefix(resource.as_str())
                .with_message(pages(0)),
        );
        bar.enable_steady_tick(TICK);
        *current = Some(Current {
            resource,
            bar,
            total: None,
        });
    }

    fn finish(&self, current: &mut Option<Current>) {
        if let Some(Current { bar, .. }) = current.take() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn update(&self, progress: &Progress) {
        let mut current = self.lock();
        if current.as_ref().map(|c| c.resource) != Some(progress.resource) {
            self.start(&mut current, progress.resource);
        }
        let Some(current) = current.as_mut() else {
            return;
        };
        let total = progress.total.filter(|t| *t > 0);
        if total != current.total {
            match total {
                Some(total) => {
                    current.bar.set_length(total);
                    current.bar.set_style(self.bar.clone());
                }
                None => {
                    current.bar.unset_length();
                    current.bar.set_style(self.spinner.clone());
                }
            }
            current.total = total;
        }
        current.bar.set_message(pages(progress.pages));
        current.bar.set_position(progress.rows);
    }
}

/// Log lines are written with the bars cleared, then the bars are drawn again below them.
struct SuspendBars(MultiProgress);

impl LiveDisplay for SuspendBars {
    fn suspend(&self, write: &mut dyn FnMut()) {
        self.0.suspend(write);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_templates_parse() {
        for template in [SPINNER_TEMPLATE, BAR_TEMPLATE] {
            assert!(style(template).is_ok(), "{template}");
        }
        // A width that is not a number: the parser refuses it.
        assert!(style("{prefix:<13x}").is_err(), "a broken one does not");
    }

    #[test]
    fn no_rate_is_shown_before_the_run_has_settled() {
        let second = Duration::from_secs(1);
        // The first page a millisecond in: a rate of 500,000 rows/s would be nonsense.
        assert_eq!(pace(Duration::from_millis(1), 500, 500_000.0, None), "");
        assert_eq!(
            pace(Duration::from_millis(999), 5_000, 5_005.0, Some(second)),
            ""
        );
        // Settled, but nothing written yet, or no measurable rate.
        assert_eq!(pace(SETTLE, 0, 0.0, None), "");
        assert_eq!(pace(SETTLE * 3, 500, 0.0, Some(second)), "");
        assert_eq!(pace(SETTLE * 3, 500, f64::NAN, None), "");
        assert_eq!(pace(SETTLE * 3, 500, f64::INFINITY, None), "");
    }

    #[test]
    fn a_settled_run_shows_its_rate_and_with_a_total_the_time_left() {
        assert_eq!(pace(SETTLE, 2_500, 2_499.6, None), ", 2,500 rows/s");
        assert_eq!(
            pace(
                Duration::from_secs(4),
                10_000,
                2_500.0,
                Some(Duration::from_secs(12))
            ),
            ", 2,500 rows/s, 12s left"
        );
        assert_eq!(
            pace(
                Duration::from_secs(60),
                1_000_000,
                16_000.0,
                Some(Duration::from_secs(300))
            ),
            ", 16,000 rows/s, 5m left"
        );
    }

    #[test]
    fn pages_are_counted_in_words() {
        assert_eq!(pages(0), "0 pages");
        assert_eq!(pages(1), "1 page");
        assert_eq!(pages(1_200), "1,200 pages");
    }

    fn progress(resource: Resource, pages: u64, rows: u64, total: Option<u64>) -> Progress {
        Progress {
            resource,
            pages,
            rows,
            total,
        }
    }

    #[test]
    fn each_resource_gets_a_bar_of_its_own_that_becomes_a_bar_once_the_total_is_known() {
        let bars = MirrorBars::drawn_on(ProgressDrawTarget::hidden());
        let hook = bars.hook();

        bars.begin(Resource::Contacts);
        let contacts = bars.current().expect("a bar");
        assert_eq!(contacts.prefix(), "contacts");
        assert_eq!(
            contacts.length(),
            None,
            "a spinner until the total is known"
        );

        hook(&progress(Resource::Contacts, 1, 500, None));
        assert_eq!(contacts.position(), 500);
        assert_eq!(contacts.message(), "1 page");
        assert_eq!(contacts.length(), None);

        hook(&progress(Resource::Contacts, 2, 1_000, Some(3_000)));
        assert_eq!(contacts.length(), Some(3_000));
        assert_eq!(contacts.position(), 1_000);
        assert_eq!(contacts.message(), "2 pages");

        bars.end();
        assert!(contacts.is_finished(), "ended before the summary line");
        assert!(bars.current().is_none());

        // A resource whose run reports progress without `begin` still gets its own bar.
        hook(&progress(Resource::Lists, 1, 12, Some(0)));
        let lists = bars.current().expect("a bar");
        assert_eq!(lists.prefix(), "lists");
        assert_eq!(lists.length(), None, "a total of 0 says nothing");
        assert_eq!(lists.position(), 12);

        bars.begin(Resource::Campaigns);
        assert!(
            lists.is_finished(),
            "the previous bar ends when the next begins"
        );
        assert_eq!(bars.current().expect("a bar").prefix(), "campaigns");

        drop(bars);
    }

    #[test]
    fn dropping_the_bars_finishes_the_one_drawn() {
        let bars = MirrorBars::drawn_on(ProgressDrawTarget::hidden());
        bars.begin(Resource::Reports);
        let reports = bars.current().expect("a bar");
        drop(bars);
        assert!(reports.is_finished());
    }
}
