//! Wall-clock time behind a trait: the daily quota resets at 00:00 UTC and tokens expire at
//! wall-clock instants, which tokio's paused time does not move, so tests swap in a
//! [`ManualClock`].

use std::sync::Mutex;

use chrono::{DateTime, Duration, NaiveTime, Utc};

/// A source of the current UTC time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The next 00:00:00 UTC strictly after `now`: when the API's daily quota resets.
pub fn next_utc_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now.date_naive() + chrono::Days::new(1);
    tomorrow.and_time(NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_midnight_is_the_start_of_the_following_utc_day() {
        let now: DateTime<Utc> = "2026-11-23T23:59:59Z".parse().unwrap();
        assert_eq!(
            next_utc_midnight(now).to_rfc3339(),
            "2026-11-24T00:00:00+00:00"
        );
        let midnight: DateTime<Utc> = "2026-11-24T00:00:00Z".parse().unwrap();
        assert_eq!(
            next_utc_midnight(midnight).to_rfc3339(),
            "2026-11-25T00:00:00+00:00"
        );
    }
}
