//! What happens to a delivery once its handler ran, as one pure function: from the attempt
//! number, what the handler answered and the limits (`amqp.max_attempts`,
//! `amqp.park_jitter_ms`) to a [`Decision`]. No I/O here: the processor carries the decision
//! out (ledger, ordering book, counters, publishes). Covered by a table of unit tests.
//!
//! | handler answered            | decision                                                  |
//! |-----------------------------|-----------------------------------------------------------|
//! | data                        | ack, `succeeded`                                          |
//! | a rejection                 | ack, `rejected`, dead-lettered with the rejection         |
//! | a final failure             | ack, `failed`                                             |
//! | transient, attempts < max   | retry through the retry queue of this attempt             |
//! | transient, attempts ≥ max   | ack, `failed` (`retries_exhausted`), dead-lettered        |
//! | quota spent                 | park until the reset, plus up to `park_jitter`            |
//! | re-authorisation needed     | park until the account is authorised again                |
//! | our own store failed        | hand the delivery back (no verdict, no attempt spent)     |
//!
//! A delivery whose attempts already passed the maximum when it arrived is not handled at
//! all: [`at_entry`] gives it up.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::ApiError;
use crate::command::Rejection;
use crate::command::outcome::{ErrorCode, ResultError};
use crate::handler::HandleError;
use crate::store::StoreError;

/// The limits a decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `amqp.max_attempts`: the attempt at which a transient failure is final.
    pub max_attempts: u32,
    /// `amqp.park_jitter_ms`: commands parked for the quota come back spread over this long
    /// after the reset.
    pub park_jitter: Duration,
}

/// A random sample (0..=255) that places a parked command in the jitter window.
pub type JitterSample = u8;

/// What to do with a delivery after its handler ran.
#[derive(Debug)]
pub enum Decision {
    /// Ack with a `succeeded` result carrying the handler's data.
    Succeed(Value),
    /// Ack with a `rejected` result; the message is dead-lettered with the rejection.
    Reject(Rejection),
    /// Ack with a `failed` result; no dead letter.
    Fail(ResultError),
    /// Retries are spent: ack with a `failed` result carrying this error; the message is
    /// dead-lettered as `retries_exhausted`.
    GiveUp(ResultError),
    /// Try again later: the message goes to the retry queue of the `attempt`-th transient
    /// failure (its delay), and comes back from there.
    Retry { attempt: u32, cause: ApiError },
    /// The daily quota is spent: park the message until `resets_at`, returning after
    /// `expiration_ms` (time to the reset plus jitter). Its attempt is given back.
    ParkForQuota {
        resets_at: DateTime<Utc>,
        expiration_ms: u64,
    },
    /// The account needs a person to authorise it again: park the message until then and
    /// announce it. Its attempt is given back.
    ParkForReauth { reason: String },
    /// Wait behind an earlier command with the same ordering key (or a batch finishing).
    /// Its attempt is given back.
    WaitBehind,
    /// Our own store failed: no verdict; the delivery goes back to the queue once the store
    /// works again, without spending an attempt.
    HandBack(Arc<StoreError>),
    /// Another replica took the command over while this one worked on it (found right
    /// before a write): no verdict and nothing stored here; the delivery waits like one
    /// that found the claim taken, and is answered from the ledger once the other replica
    /// stored its result.
    Yield,
}

/// The decision on a delivery whose handler ran in attempt `attempt` (1 for the first) and
/// answered `handled`. `now` and `jitter` only matter when the quota is spent; the jitter
/// sample is drawn only then.
pub fn decide(
    attempt: u32,
    handled: Result<Value, HandleError>,
    limits: &Limits,
    now: DateTime<Utc>,
    jitter: impl FnOnce() -> JitterSample,
) -> Decision {
    match handled {
        Ok(data) => Decision::Succeed(data),
        Err(HandleError::Rejected(rejection)) => Decision::Reject(rejection),
        Err(HandleError::Failed(error)) => Decision::Fail(error),
        Err(HandleError::Transient(error)) if attempt >= limits.max_attempts => {
            let mut failure = HandleError::api_failure(ErrorCode::RetriesExhausted, &error);
            failure.retryable = true;
            Decision::GiveUp(failure)
        }
        Err(HandleError::Storage(error)) => Decision::HandBack(error),
        Err(HandleError::ClaimLost) => Decision::Yield,
        Err(HandleError::Pending(_)) => Decision::WaitBehind,
        Err(HandleError::Transient(cause)) => Decision::Retry { attempt, cause },
        Err(HandleError::QuotaExhausted { resets_at }) => {
            let wait = (resets_at - now).num_milliseconds().max(0) as u64;
            // Spread the return after the reset so parked commands do not all come at once.
            let spread = limits.park_jitter.as_millis() as u64;
            let jitter = u64::from(jitter()) * spread / 255;
            Decision::ParkForQuota {
                resets_at,
                expiration_ms: wait + jitter,
            }
        }
        Err(HandleError::ReauthRequired { reason }) => Decision::ParkForReauth { reason },
    }
}

/// Before handling: a delivery that has been attempted more often than `max_attempts`
/// (each time without an answer: the daemon stopped or lost the broker meanwhile) is given
/// up without another try.
pub fn at_entry(attempt: u32, limits: &Limits) -> Option<Decision> {
    (attempt > limits.max_attempts).then(|| {
        Decision::GiveUp(ResultError {
            code: ErrorCode::RetriesExhausted,
            message: format!(
                "the command was attempted {} times without an answer",
                attempt - 1
            ),
            retryable: true,
            api_status: None,
            api_error_key: None,
            fields: Vec::new(),
        })
    })
}

impl PartialEq for Decision {
    /// Errors without an equality of their own (the API's, the store's) compare by text.
    fn eq(&self, other: &Self) -> bool {
        use Decision::*;
        match (self, other) {
            (Succeed(a), Succeed(b)) => a == b,
            (Reject(a), Reject(b)) => a == b,
            (Fail(a), Fail(b)) | (GiveUp(a), GiveUp(b)) => a == b,
            (
                Retry { attempt, cause },
                Retry {
                    attempt: other_attempt,
                    cause: other_cause,
                },
            ) => attempt == other_attempt && cause.to_string() == other_cause.to_string(),
            (
                ParkForQuota {
                    resets_at,
                    expiration_ms,
                },
                ParkForQuota {
                    resets_at: other_resets_at,
                    expiration_ms: other_expiration_ms,
                },
            ) => resets_at == other_resets_at && expiration_ms == other_expiration_ms,
            (ParkForReauth { reason }, ParkForReauth { reason: other }) => reason == other,
            (WaitBehind, WaitBehind) => true,
            (HandBack(a), HandBack(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::api::ApiError;
    use crate::command::Rejection;
    use crate::command::outcome::{ErrorCode, ResultError};
    use crate::handler::HandleError;
    use crate::pipeline::decision::{Decision, Limits, at_entry, decide};
    use crate::store::StoreError;
    use chrono::{DateTime, Duration as Span, Utc};
    use serde_json::{Value, json};
    use std::sync::Arc;
    use std::time::Duration;

    fn now() -> DateTime<Utc> {
        "2026-03-01T23:00:00Z".parse().unwrap()
    }

    fn limits(max_attempts: u32, park_jitter_ms: u64) -> Limits {
        Limits {
            max_attempts,
            park_jitter: Duration::from_millis(park_jitter_ms),
        }
    }

    fn unavailable() -> ApiError {
        ApiError::Transport {
            route: "GET /contact_lists",
            maybe_applied: false,
            attempts: 3,
            detail: "connection refused".into(),
        }
    }

    fn rejection() -> Rejection {
        Rejection::new(ErrorCode::InvalidData, "the command's data is invalid")
    }

    fn not_found() -> ResultError {
        ResultError {
            code: ErrorCode::NotFound,
            message: "contact c-1 does not exist in the account".into(),
            retryable: false,
            api_status: None,
            api_error_key: None,
            fields: Vec::new(),
        }
    }

    fn exhausted(cause: &ApiError) -> ResultError {
        let mut failure = HandleError::api_failure(ErrorCode::RetriesExhausted, cause);
        failure.retryable = true;
        failure
    }

    fn quota(in_ms: i64) -> Result<Value, HandleError> {
        Err(HandleError::QuotaExhausted {
            resets_at: now() + Span::milliseconds(in_ms),
        })
    }

    fn parked(in_ms: i64, expiration_ms: u64) -> Decision {
        Decision::ParkForQuota {
            resets_at: now() + Span::milliseconds(in_ms),
            expiration_ms,
        }
    }

    /// (what, attempt, the handler's answer, limits, jitter sample, decision)
    type Row = (
        &'static str,
        u32,
        Result<Value, HandleError>,
        Limits,
        u8,
        Decision,
    );

    #[test]
    fn the_decision_table_holds() {
        let store_failure = Arc::new(StoreError::Closed);
        let cases: Vec<Row> = vec![
            (
                "data is a success",
                1,
                Ok(json!({"list_id": "l-1"})),
                limits(5, 0),
                0,
                Decision::Succeed(json!({"list_id": "l-1"})),
            ),
            (
                "a rejection is final, on any attempt",
                3,
                Err(HandleError::Rejected(rejection())),
                limits(5, 0),
                0,
                Decision::Reject(rejection()),
            ),
            (
                "a final failure is final",
                1,
                Err(HandleError::Failed(not_found())),
                limits(5, 0),
                0,
                Decision::Fail(not_found()),
            ),
            (
                "a transient failure on the first attempt retries through the first queue",
                1,
                Err(HandleError::Transient(unavailable())),
                limits(5, 0),
                0,
                Decision::Retry {
                    attempt: 1,
                    cause: unavailable(),
                },
            ),
            (
                "a transient failure below the limit retries through its attempt's queue",
                4,
                Err(HandleError::Transient(unavailable())),
                limits(5, 0),
                0,
                Decision::Retry {
                    attempt: 4,
                    cause: unavailable(),
                },
            ),
            (
                "a transient failure at the limit gives up",
                5,
                Err(HandleError::Transient(unavailable())),
                limits(5, 0),
                0,
                Decision::GiveUp(exhausted(&unavailable())),
            ),
            (
                "a transient failure past the limit gives up",
                7,
                Err(HandleError::Transient(unavailable())),
                limits(5, 0),
                0,
                Decision::GiveUp(exhausted(&unavailable())),
            ),
            (
                "with one attempt allowed, the first transient failure gives up",
                1,
                Err(HandleError::Transient(unavailable())),
                limits(1, 0),
                0,
                Decision::GiveUp(exhausted(&unavailable())),
            ),
            (
                "a spent quota parks until the reset, without jitter when none is set",
                2,
                quota(3_600_000),
                limits(5, 0),
                255,
                parked(3_600_000, 3_600_000),
            ),
            (
                "a spent quota parks until the reset plus no jitter at the lowest sample",
                1,
                quota(3_600_000),
                limits(5, 60_000),
                0,
                parked(3_600_000, 3_600_000),
            ),
            (
                "a spent quota parks until the reset plus the whole window at the highest sample",
                1,
                quota(3_600_000),
                limits(5, 60_000),
                255,
                parked(3_600_000, 3_660_000),
            ),
            (
                "a spent quota parks until the reset plus its share of the window",
                1,
                quota(3_600_000),
                limits(5, 60_000),
                51,
                parked(3_600_000, 3_612_000),
            ),
            (
                "a reset already passed parks for the jitter only",
                1,
                quota(-5_000),
                limits(5, 60_000),
                51,
                parked(-5_000, 12_000),
            ),
            (
                "a spent quota parks even on the last attempt (it was not tried)",
                5,
                quota(1_000),
                limits(5, 0),
                0,
                parked(1_000, 1_000),
            ),
            (
                "a lost authorisation parks with its reason",
                1,
                Err(HandleError::ReauthRequired {
                    reason: "invalid_grant".into(),
                }),
                limits(5, 0),
                0,
                Decision::ParkForReauth {
                    reason: "invalid_grant".into(),
                },
            ),
            (
                "a lost authorisation parks even on the last attempt",
                5,
                Err(HandleError::ReauthRequired {
                    reason: "invalid_grant".into(),
                }),
                limits(5, 0),
                0,
                Decision::ParkForReauth {
                    reason: "invalid_grant".into(),
                },
            ),
            (
                "a failing store hands the delivery back, even at the limit",
                5,
                Err(HandleError::Storage(store_failure.clone())),
                limits(5, 0),
                0,
                Decision::HandBack(store_failure.clone()),
            ),
            (
                "an earlier attempt's activity still running waits, even at the limit",
                5,
                Err(HandleError::Pending("activity running".into())),
                limits(5, 0),
                0,
                Decision::WaitBehind,
            ),
            (
                "the rate budget's store failing in the middle of a call hands it back",
                5,
                Err(HandleError::from(ApiError::Budget(store_failure.clone()))),
                limits(5, 0),
                0,
                Decision::HandBack(store_failure.clone()),
            ),
            (
                "the token store failing in the middle of a call hands it back",
                1,
                Err(HandleError::from(ApiError::Auth(
                    crate::api::AuthError::Store(store_failure.clone()),
                ))),
                limits(5, 0),
                0,
                Decision::HandBack(store_failure.clone()),
            ),
        ];
        for (what, attempt, handled, limits, jitter, expected) in cases {
            let decision = decide(attempt, handled, &limits, now(), || jitter);
            assert_eq!(decision, expected, "{what}");
        }
    }

    #[test]
    fn the_jitter_stays_within_the_window() {
        let limits = limits(5, 60_000);
        for sample in 0..=255u8 {
            let Decision::ParkForQuota { expiration_ms, .. } =
                decide(1, quota(1_000), &limits, now(), || sample)
            else {
                panic!("not parked");
            };
            assert!(
                (1_000..=61_000).contains(&expiration_ms),
                "{sample}: {expiration_ms}"
            );
        }
    }

    #[test]
    fn a_delivery_past_its_attempts_is_given_up_before_it_is_handled() {
        let cases: Vec<(&str, u32, u32, Option<Decision>)> = vec![
            ("the first attempt goes ahead", 1, 5, None),
            ("the last attempt goes ahead", 5, 5, None),
            (
                "one past the limit is given up, naming the attempts made",
                6,
                5,
                Some(Decision::GiveUp(ResultError {
                    code: ErrorCode::RetriesExhausted,
                    message: "the command was attempted 5 times without an answer".into(),
                    retryable: true,
                    api_status: None,
                    api_error_key: None,
                    fields: Vec::new(),
                })),
            ),
            (
                "far past the limit too",
                12,
                3,
                Some(Decision::GiveUp(ResultError {
                    code: ErrorCode::RetriesExhausted,
                    message: "the command was attempted 11 times without an answer".into(),
                    retryable: true,
                    api_status: None,
                    api_error_key: None,
                    fields: Vec::new(),
                })),
            ),
        ];
        for (what, attempt, max_attempts, expected) in cases {
            assert_eq!(
                at_entry(attempt, &limits(max_attempts, 0)),
                expected,
                "{what}"
            );
        }
    }
}
