//! The sandbox clock: real time plus an adjustable offset, optionally frozen.
//!
//! One clock drives everything time-dependent in the sandbox (token expiry, created/updated
//! times, the UTC day of the daily quota, the per-second window, activity progress), so tests
//! move time instead of sleeping. Also owns the timestamp formats the API uses.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};

/// Milliseconds since the UNIX epoch.
pub(crate) type Millis = i64;

pub(crate) const MS_PER_DAY: Millis = 86_400_000;

#[derive(Debug)]
struct ClockState {
    offset_ms: Millis,
    frozen_at: Option<Millis>,
}

/// Real time + offset; `freeze` pins it so tests are fully deterministic.
#[derive(Debug)]
pub(crate) struct SandboxClock {
    state: Mutex<ClockState>,
}

fn real_now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

impl SandboxClock {
    pub(crate) fn new(offset_ms: Millis) -> Self {
        Self {
            state: Mutex::new(ClockState {
                offset_ms,
                frozen_at: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn now_ms(&self) -> Millis {
        let state = self.lock();
        state
            .frozen_at
            .unwrap_or_else(|| real_now_ms() + state.offset_ms)
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        to_datetime(self.now_ms())
    }

    /// The offset from real time, persisted in the state file so time never runs backwards.
    pub(crate) fn offset_ms(&self) -> Millis {
        let state = self.lock();
        match state.frozen_at {
            Some(at) => at - real_now_ms(),
            None => state.offset_ms,
        }
    }

    pub(crate) fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
        let mut state = self.lock();
        match state.frozen_at.as_mut() {
            Some(at) => *at += by,
            None => state.offset_ms += by,
        }
    }

    pub(crate) fn set(&self, to: DateTime<Utc>) {
        let target = to.timestamp_millis();
        let mut state = self.lock();
        match state.frozen_at.as_mut() {
            Some(at) => *at = target,
            None => state.offset_ms = target - real_now_ms(),
        }
    }

    /// Stops the clock at its current reading (it still moves with `advance`/`set`).
    pub(crate) fn freeze(&self) {
        let mut state = self.lock();
        if state.frozen_at.is_none() {
            state.frozen_at = Some(real_now_ms() + state.offset_ms);
        }
    }

    /// Lets the clock run again from its current reading.
    pub(crate) fn unfreeze(&self) {
        let mut state = self.lock();
        if let Some(at) = state.frozen_at.take() {
            state.offset_ms = at - real_now_ms();
        }
    }

    pub(crate) fn is_frozen(&self) -> bool {
        self.lock().frozen_at.is_some()
    }
}

pub(crate) fn to_datetime(ms: Millis) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// `2024-10-30T18:56:35Z` — contacts, custom fields, lists, activities.
pub(crate) fn fmt_secs(ms: Millis) -> String {
    to_datetime(ms).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2024-11-01T19:19:34.456Z` — campaigns.
pub(crate) fn fmt_millis(ms: Millis) -> String {
    to_datetime(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `2016-07-08` — a contact's `deleted_at`.
pub(crate) fn fmt_date(ms: Millis) -> String {
    to_datetime(ms).format("%Y-%m-%d").to_string()
}

/// Accepts any RFC 3339 date-time or a bare `YYYY-MM-DD` (midnight UTC).
pub(crate) fn parse_instant(text: &str) -> Option<Millis> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text.trim()) {
        return Some(dt.timestamp_millis());
    }
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// Start of the next UTC day after `ms`.
pub(crate) fn next_midnight(ms: Millis) -> Millis {
    (ms.div_euclid(MS_PER_DAY) + 1) * MS_PER_DAY
}

/// The UTC day number of `ms` (days since the epoch).
pub(crate) fn utc_day(ms: Millis) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_only_moves_when_advanced() {
        let clock = SandboxClock::new(0);
        clock.freeze();
        let first = clock.now_ms();
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.now_ms(), first + 5_000);
    }

    #[test]
    fn set_moves_the_clock_to_the_given_instant() {
        let clock = SandboxClock::new(0);
        let target = Utc
            .with_ymd_and_hms(2030, 1, 2, 3, 4, 5)
            .single()
            .expect("valid");
        clock.set(target);
        let drift = (clock.now_ms() - target.timestamp_millis()).abs();
        assert!(drift < 5_000, "drift {drift}");
    }

    #[test]
    fn timestamps_use_the_api_formats() {
        let ms = Utc
            .with_ymd_and_hms(2024, 10, 30, 18, 56, 35)
            .single()
            .expect("valid")
            .timestamp_millis()
            + 456;
        assert_eq!(fmt_secs(ms), "2024-10-30T18:56:35Z");
        assert_eq!(fmt_millis(ms), "2024-10-30T18:56:35.456Z");
        assert_eq!(fmt_date(ms), "2024-10-30");
    }

    #[test]
    fn parse_instant_accepts_offsets_and_bare_dates() {
        assert_eq!(
            parse_instant("2016-03-03T10:53:04-05:00"),
            parse_instant("2016-03-03T15:53:04Z")
        );
        assert_eq!(
            parse_instant("2016-03-03"),
            parse_instant("2016-03-03T00:00:00Z")
        );
        assert_eq!(parse_instant("yesterday"), None);
    }

    #[test]
    fn next_midnight_is_the_start_of_the_following_utc_day() {
        assert_eq!(next_midnight(1), MS_PER_DAY);
        assert_eq!(next_midnight(MS_PER_DAY), 2 * MS_PER_DAY);
    }
}
