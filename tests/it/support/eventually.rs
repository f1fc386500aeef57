//! Waiting for something that happens in the background: `eventually(within, what, check)`
//! calls `check` every [`INTERVAL`] until it passes (`true`, `Some(value)` or `Ok(value)`),
//! and panics naming `what` (and the last `Err`'s account of what it saw) when `within` has
//! passed first. Shared by the three test binaries (it, logs, drill) through `support`.

use std::fmt::Display;
use std::time::Duration;

/// Time between two calls of a check.
pub const INTERVAL: Duration = Duration::from_millis(20);

/// What a check answers: `true`, `Some(value)` or `Ok(value)` when it passes; an `Err` says
/// what it saw instead (shown, formatted only then, if the deadline passes).
pub trait Passed {
    type Value;
    type Seen: Display;
    fn passed(self) -> Result<Self::Value, Option<Self::Seen>>;
}

impl Passed for bool {
    type Value = ();
    type Seen = &'static str;
    fn passed(self) -> Result<(), Option<&'static str>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Passed for Option<T> {
    type Value = T;
    type Seen = &'static str;
    fn passed(self) -> Result<T, Option<&'static str>> {
        self.ok_or(None)
    }
}

impl<T, E: Display> Passed for Result<T, E> {
    type Value = T;
    type Seen = E;
    fn passed(self) -> Result<T, Option<E>> {
        self.map_err(Some)
    }
}

/// Calls `check` until it passes and returns its value; panics with `what` once `within` has
/// passed without it (the check always runs at least once, and once more at the deadline).
pub async fn eventually<R: Passed>(
    within: Duration,
    what: &str,
    check: impl AsyncFnMut() -> R,
) -> R::Value {
    eventually_every(INTERVAL, within, what, check).await
}

/// [`eventually`], calling `check` every `interval` (a check that costs more than a look,
/// such as a connection attempt).
pub async fn eventually_every<R: Passed>(
    interval: Duration,
    within: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> R,
) -> R::Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let seen = match check().await.passed() {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            match seen {
                Some(seen) => panic!("not within {within:?}: {what}; last seen: {seen}"),
                None => panic!("not within {within:?}: {what}"),
            }
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_the_first_passing_value_after_polling() {
        let calls = AtomicU32::new(0);
        let value = eventually(Duration::from_secs(5), "the third call", async || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            (n == 3).then_some(n * 10)
        })
        .await;
        assert_eq!(value, 30);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "stops polling once passed");
    }

    #[tokio::test]
    async fn a_bool_check_passes_at_once_when_true() {
        let mut calls = 0;
        eventually(Duration::from_secs(5), "true", async || {
            calls += 1;
            true
        })
        .await;
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    #[should_panic(expected = "not within 200ms: the impossible")]
    async fn panics_naming_what_after_the_deadline() {
        eventually(Duration::from_millis(200), "the impossible", async || false).await;
    }

    #[tokio::test]
    #[should_panic(expected = "not within 100ms: a count of 3; last seen: 2 so far")]
    async fn a_result_check_panics_with_what_it_saw_last() {
        eventually(Duration::from_millis(100), "a count of 3", async || {
            Err::<(), _>("2 so far")
        })
        .await;
    }

    #[tokio::test]
    async fn polls_at_the_interval_given() {
        let started = tokio::time::Instant::now();
        let mut calls = 0;
        eventually_every(
            Duration::from_millis(100),
            Duration::from_secs(5),
            "a third call",
            async || {
                calls += 1;
                calls == 3
            },
        )
        .await;
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn checks_once_more_at_the_deadline() {
        let started = tokio::time::Instant::now();
        let within = Duration::from_millis(300);
        eventually(within, "a late pass", async || started.elapsed() >= within).await;
    }
}
