//! The retry policy: one pure function decides, from what went wrong, how many attempts were
//! made and whether the request is safe to repeat, whether to retry, refresh the token, stop
//! spending until the quota resets, or give up. Covered by a table of unit tests.
//!
//! Rules (shared/reference/constant-contact-v3.md §2, §3):
//! - 429 `throttled`: wait at least a second (plus jitter) and retry; the request was refused,
//!   so repeating it is always safe.
//! - 429 `quota_exceeded`: spend nothing more until 00:00 UTC.
//! - 401: refresh the access token once and retry once; a second 401 is final.
//! - 5xx, timeouts and broken connections: exponential backoff with jitter and a cap, but only
//!   for requests that are safe to repeat, or that certainly never reached the server. A
//!   create that may have been applied is never repeated blindly: the caller reads first.
//! - Every other 4xx is final: repeating a bad request only burns quota.

use std::time::Duration;

/// What went wrong with one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The API answered with an error status (and maybe an `error_key`).
    Status {
        status: u16,
        error_key: Option<String>,
    },
    /// No complete answer. `maybe_applied` is false only when the request certainly never
    /// reached the server (the connection could not be opened).
    Transport { maybe_applied: bool },
}

/// What to do about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then send the request again.
    RetryAfter(Duration),
    /// Refresh the access token, then send the request again (once).
    RefreshToken,
    /// The day's quota is spent: send nothing until the reset.
    QuotaExhausted,
    /// Give the failure to the caller.
    Stop,
}

/// Tunables of the policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// First backoff for server errors and broken connections.
    pub base: Duration,
    /// Longest single backoff.
    pub cap: Duration,
    /// Attempts in total for server errors and broken connections.
    pub max_attempts: u32,
    /// Shortest wait after a `throttled` 429.
    pub throttle_min: Duration,
    /// Attempts in total while throttled.
    pub max_throttled_attempts: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            max_attempts: 3,
            throttle_min: Duration::from_secs(1),
            max_throttled_attempts: 8,
        }
    }
}

/// Facts about the attempt that just failed.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// Whether the request may be sent twice without a second effect (GET, PUT, DELETE).
    pub repeatable: bool,
    /// Whether a 401 was already answered by a refresh during this request.
    pub refreshed: bool,
    /// A number in [0, 1) for jitter, from the caller's random source.
    pub jitter: f64,
}

impl Policy {
    /// Decides what to do after `failure` on `attempt`.
    pub fn decide(&self, failure: &Failure, attempt: Attempt) -> Decision {
        match failure {
            Failure::Status { status: 401, .. } => {
                if attempt.refreshed {
                    Decision::Stop
                } else {
                    Decision::RefreshToken
                }
            }
            Failure::Status {
                status: 429,
                error_key,
            } => match error_key.as_deref() {
                Some("quota_exceeded") => Decision::QuotaExhausted,
                Some("throttled") | None => {
                    if attempt.number >= self.max_throttled_attempts {
                        Decision::Stop
                    } else {
                        let wait = self
                            .backoff(attempt.number, attempt.jitter)
                            .max(self.throttle_min);
                        Decision::RetryAfter(wait + self.throttle_min.mul_f64(attempt.jitter / 2.0))
                    }
                }
                // Other 429s (the 1,000 queued bulk activities cap) take minutes to clear:
                // the caller parks the work instead of holding it here.
                Some(_) => Decision::Stop,
            },
            Failure::Status { status, .. } if (500..=599).contains(status) => {
                self.transient(attempt, attempt.repeatable)
            }
            Failure::Status { .. } => Decision::Stop,
            Failure::Transport { maybe_applied } => {
                self.transient(attempt, attempt.repeatable || !maybe_applied)
            }
        }
    }

    fn transient(&self, attempt: Attempt, safe: bool) -> Decision {
        if safe && attempt.number < self.max_attempts {
            Decision::RetryAfter(self.backoff(attempt.number, attempt.jitter))
        } else {
            Decision::Stop
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, capped.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let full = self.base.saturating_mul(1 << exponent).min(self.cap);
        full.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, key: Option<&str>) -> Failure {
        Failure::Status {
            status,
            error_key: key.map(str::to_owned),
        }
    }

    fn attempt(number: u32, repeatable: bool) -> Attempt {
        Attempt {
            number,
            repeatable,
            refreshed: false,
            jitter: 0.0,
        }
    }

    fn ms(ms: u64) -> Decision {
        Decision::RetryAfter(Duration::from_millis(ms))
    }

    #[test]
    fn the_decision_table_holds() {
        let p = Policy::default();
        let cases: Vec<(&str, Failure, Attempt, Decision)> = vec![
            (
                "503 on a GET retries after half the base",
                status(503, None),
                attempt(1, true),
                ms(250),
            ),
            (
                "503 on a GET backs off exponentially",
                status(503, None),
                attempt(2, true),
                ms(500),
            ),
            (
                "503 on a GET gives up at the attempt limit",
                status(503, None),
                attempt(3, true),
                Decision::Stop,
            ),
            (
                "500 on a create is not repeated blindly",
                status(500, None),
                attempt(1, false),
                Decision::Stop,
            ),
            (
                "504 on a PUT retries",
                status(504, None),
                attempt(1, true),
                ms(250),
            ),
            (
                "a timeout on a GET retries",
                Failure::Transport {
                    maybe_applied: true,
                },
                attempt(1, true),
                ms(250),
            ),
            (
                "a timeout on a create is not repeated",
                Failure::Transport {
                    maybe_applied: true,
                },
                attempt(1, false),
                Decision::Stop,
            ),
            (
                "a refused connection on a create retries: nothing was sent",
                Failure::Transport {
                    maybe_applied: false,
                },
                attempt(1, false),
                ms(250),
            ),
            (
                "throttled waits at least a second",
                status(429, Some("throttled")),
                attempt(1, false),
                ms(1000),
            ),
            (
                "throttled without a key is treated as throttled",
                status(429, None),
                attempt(1, true),
                ms(1000),
            ),
            (
                "throttled backs off past a second later on",
                status(429, Some("throttled")),
                attempt(4, true),
                ms(2000),
            ),
            (
                "throttled gives up after many attempts",
                status(429, Some("throttled")),
                attempt(8, true),
                Decision::Stop,
            ),
            (
                "quota exceeded stops spending",
                status(429, Some("quota_exceeded")),
                attempt(1, true),
                Decision::QuotaExhausted,
            ),
            (
                "the bulk-activity cap is not waited out here",
                status(429, Some("activities.queue.full")),
                attempt(1, true),
                Decision::Stop,
            ),
            (
                "401 refreshes the token",
                status(401, Some("unauthorized")),
                attempt(1, true),
                Decision::RefreshToken,
            ),
            (
                "400 is final",
                status(400, Some("contacts.api.validation.error")),
                attempt(1, true),
                Decision::Stop,
            ),
            (
                "403 is final",
                status(403, None),
                attempt(1, true),
                Decision::Stop,
            ),
            (
                "404 is final",
                status(404, None),
                attempt(1, true),
                Decision::Stop,
            ),
            (
                "409 is final",
                status(409, Some("contacts.api.conflict")),
                attempt(1, false),
                Decision::Stop,
            ),
            (
                "415 is final",
                status(415, None),
                attempt(1, false),
                Decision::Stop,
            ),
        ];
        for (name, failure, attempt, expected) in cases {
            assert_eq!(p.decide(&failure, attempt), expected, "{name}");
        }
    }

    #[test]
    fn a_second_401_after_a_refresh_is_final() {
        let p = Policy::default();
        let after_refresh = Attempt {
            refreshed: true,
            ..attempt(2, true)
        };
        assert_eq!(p.decide(&status(401, None), after_refresh), Decision::Stop);
    }

    #[test]
    fn backoff_is_capped_and_jitter_stays_within_half_to_full() {
        let p = Policy::default();
        for n in 1..40 {
            for jitter in [0.0, 0.3, 0.999, 5.0, -1.0] {
                let d = p.backoff(n, jitter);
                assert!(d <= p.cap, "attempt {n} jitter {jitter}: {d:?}");
                let full = p.base.saturating_mul(1 << (n - 1).min(16)).min(p.cap);
                assert!(d >= full / 2, "attempt {n} jitter {jitter}: {d:?}");
            }
        }
    }

    #[test]
    fn backoff_never_shrinks_as_attempts_grow() {
        let p = Policy::default();
        let mut last = Duration::ZERO;
        for n in 1..20 {
            let d = p.backoff(n, 0.5);
            assert!(d >= last);
            last = d;
        }
    }
}
