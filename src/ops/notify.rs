//! The service manager's notifications (`sd_notify(3)`), when one asked for them by setting
//! `NOTIFY_SOCKET` (systemd's `Type=notify`, see deploy/systemd/ctct-sync.service):
//!
//! - `READY=1` once, the first time the broker session is up and the store takes writes:
//!   units ordered after ctct-sync start then, and `systemctl start` returns then. An account
//!   still to authorise does not hold it back (it shows in `STATUS=` and on `/readyz`).
//! - `STATUS=` whenever what `/readyz` would say changes: `ready`, or what is missing
//!   (`systemctl status ctct-sync` shows it).
//! - `WATCHDOG=1` at half the unit's `WatchdogSec=` (`WATCHDOG_USEC`) from a task of its own,
//!   so the pings prove the runtime schedules tasks and timers, and do not wait for the store
//!   (a long mirror move holds the store's thread for seconds without the daemon being hung).
//! - `STOPPING=1` when the daemon is asked to stop.
//!
//! Without `NOTIFY_SOCKET` nothing starts. A notification that cannot be sent is logged once
//! at warn and otherwise ignored: the daemon's work never depends on its service manager.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use super::OpsSlot;

/// How often readiness is looked at for `READY=1` and `STATUS=`.
const READINESS_EVERY: Duration = Duration::from_secs(1);

/// Starts the notifications for `slot` when a service manager asked for them; they end
/// with `STOPPING=1` once `stop` is cancelled.
pub fn start(slot: Arc<OpsSlot>, stop: CancellationToken) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let notifier = Arc::new(Notifier::default());
    if let Some(timeout) = sd_notify::watchdog_enabled() {
        let every = (timeout / 2).max(Duration::from_millis(50));
        tracing::info!(
            every_ms = every.as_millis() as u64,
            "service manager watchdog: pinging"
        );
        let (notifier, stop) = (notifier.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => notifier.send(&[NotifyState::Watchdog]),
                }
            }
        });
    }
    tokio::spawn(async move {
        let mut ready_sent = false;
        let mut last_status = String::new();
        let mut tick = tokio::time::interval(READINESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let (serving, status) = status(&slot).await;
            if status != last_status {
                notifier.send(&[NotifyState::Status(&status)]);
                last_status = status;
            }
            if serving && !ready_sent {
                notifier.send(&[NotifyState::Ready]);
                tracing::info!("told the service manager the daemon is ready");
                ready_sent = true;
            }
        }
        notifier.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    });
}

/// Whether the daemon can take work (broker connected, store writable) and the one-line
/// status for the service manager: `/readyz`'s checks, shortened.
async fn status(slot: &OpsSlot) -> (bool, String) {
    let state = match slot.get() {
        Ok(state) => state,
        Err(why) => return (false, why),
    };
    let found = super::readiness(&state).await;
    let checks = &found.body["checks"];
    let text = |name: &str| checks[name].as_str().unwrap_or("unknown");
    let status = if found.ready {
        format!(
            "ready: broker connected, store writable, {}",
            text("accounts")
        )
    } else {
        format!(
            "not ready: broker {}; store {}; accounts: {}",
            text("broker"),
            text("store"),
            text("accounts")
        )
    };
    (found.serving, status)
}

/// Sends notifications, warning once when the socket refuses them.
#[derive(Default)]
struct Notifier {
    warned: std::sync::atomic::AtomicBool,
}

impl Notifier {
    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(error) = sd_notify::notify(states)
            && !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(error = %error, "could not notify the service manager (NOTIFY_SOCKET); the daemon goes on without it");
        }
    }
}
