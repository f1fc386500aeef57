//! Request limits per client id (reference §2): a sliding one-second window of `per_second`
//! requests and `per_day` requests per UTC day of the sandbox clock, both shared by every
//! account using the client; 1 request/second on the token endpoint. Requests answered 429
//! count toward neither. `LimitsMode::Off` lifts all of it (usage is still counted).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::clock::{Millis, utc_day};

/// Whether the real API's limits are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitsMode {
    /// 429 `throttled` past `per_second`, 429 `quota_exceeded` past `per_day`.
    Real,
    /// Nothing is limited (benchmarks).
    Off,
}

/// The answer of the limiter for one API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    Throttled,
    QuotaExceeded,
}

#[derive(Debug, Default)]
struct ClientUse {
    window: VecDeque<Millis>,
    day: i64,
    day_count: u32,
    last_token_request: Option<Millis>,
}

/// Usage counters reported by the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// API requests counted today (sandbox UTC day) for this client id.
    pub requests_today: u32,
}

#[derive(Debug)]
pub(crate) struct Limiter {
    pub(crate) mode: LimitsMode,
    pub(crate) per_second: u32,
    pub(crate) per_day: u32,
    clients: HashMap<String, ClientUse>,
}

impl Limiter {
    pub(crate) fn new(mode: LimitsMode, per_second: u32, per_day: u32) -> Self {
        Self {
            mode,
            per_second,
            per_day,
            clients: HashMap::new(),
        }
    }

    /// Decides one API request and counts it when allowed.
    pub(crate) fn check_api(&mut self, client_id: &str, now: Millis) -> Verdict {
        let real = self.mode == LimitsMode::Real;
        let (per_second, per_day) = (self.per_second, self.per_day);
        let usage = self.clients.entry(client_id.to_owned()).or_default();
        let today = utc_day(now);
        if usage.day != today {
            usage.day = today;
            usage.day_count = 0;
        }
        if real {
            if usage.day_count >= per_day {
                return Verdict::QuotaExceeded;
            }
            while usage.window.front().is_some_and(|&t| t <= now - 1_000) {
                usage.window.pop_front();
            }
            if usage.window.len() >= per_second as usize {
                return Verdict::Throttled;
            }
            usage.window.push_back(now);
        }
        usage.day_count = usage.day_count.saturating_add(1);
        Verdict::Allow
    }

    /// Decides one token-endpoint request (1 per second per client in Real mode).
    pub(crate) fn check_token(&mut self, client_id: &str, now: Millis) -> bool {
        if self.mode == LimitsMode::Off {
            return true;
        }
        let usage = self.clients.entry(client_id.to_owned()).or_default();
        if usage
            .last_token_request
            .is_some_and(|last| now - last < 1_000)
        {
            return false;
        }
        usage.last_token_request = Some(now);
        true
    }

    pub(crate) fn usage(&self, client_id: &str, now: Millis) -> Usage {
        let requests_today = self
            .clients
            .get(client_id)
            .filter(|u| u.day == utc_day(now))
            .map_or(0, |u| u.day_count);
        Usage { requests_today }
    }

    pub(crate) fn reset(&mut self) {
        self.clients.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MS_PER_DAY;

    #[test]
    fn the_fifth_request_within_a_second_is_throttled() {
        let mut limiter = Limiter::new(LimitsMode::Real, 4, 100);
        for i in 0..4 {
            assert_eq!(limiter.check_api("c", 10_000 + i), Verdict::Allow);
        }
        assert_eq!(limiter.check_api("c", 10_500), Verdict::Throttled);
        assert_eq!(limiter.check_api("c", 11_000), Verdict::Allow);
    }

    #[test]
    fn throttled_requests_do_not_count_toward_the_day() {
        let mut limiter = Limiter::new(LimitsMode::Real, 1, 100);
        assert_eq!(limiter.check_api("c", 0), Verdict::Allow);
        assert_eq!(limiter.check_api("c", 1), Verdict::Throttled);
        assert_eq!(limiter.usage("c", 2).requests_today, 1);
    }

    #[test]
    fn the_daily_quota_resets_at_utc_midnight() {
        let mut limiter = Limiter::new(LimitsMode::Real, 100, 2);
        let noon = MS_PER_DAY / 2;
        assert_eq!(limiter.check_api("c", noon), Verdict::Allow);
        assert_eq!(limiter.check_api("c", noon + 2_000), Verdict::Allow);
        assert_eq!(limiter.check_api("c", noon + 4_000), Verdict::QuotaExceeded);
        assert_eq!(limiter.check_api("c", MS_PER_DAY), Verdict::Allow);
    }

    #[test]
    fn limits_off_allows_everything() {
        let mut limiter = Limiter::new(LimitsMode::Off, 1, 1);
        for i in 0..100 {
            assert_eq!(limiter.check_api("c", i), Verdict::Allow);
            assert!(limiter.check_token("c", i));
        }
    }

    #[test]
    fn clients_are_limited_independently() {
        let mut limiter = Limiter::new(LimitsMode::Real, 1, 10);
        assert_eq!(limiter.check_api("a", 0), Verdict::Allow);
        assert_eq!(limiter.check_api("b", 0), Verdict::Allow);
        assert!(limiter.check_token("a", 0));
        assert!(!limiter.check_token("a", 999));
        assert!(limiter.check_token("a", 1_000));
    }
}
