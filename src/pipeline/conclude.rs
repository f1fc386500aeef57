//! The processor's side of a [`Decision`]: what the handler (or a bulk import) answered
//! goes through [`decision::decide`], and the decision is carried out here — the ledger
//! (attempts given back when parked or sent behind), the ordering book (keys held while a
//! command waits), the counters, the re-authorisation announcement — ending in the
//! delivery's [`Disposition`], which `dispose.rs` then stores, publishes and acks.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use crate::command::Rejection;
use crate::command::outcome::{CommandResult, ErrorCode, Outcome, ResultError};
use crate::handler::HandleError;

use super::decision::{self, Decision, Limits};
use super::error::PipelineError;
use super::process::{Disposition, Processor, Record, Subject};

impl Processor {
    /// Wait behind an earlier command with the same key (or a batch that is finishing).
    pub(super) fn behind(&self) -> Disposition {
        self.stats.waited_behind.fetch_add(1, Ordering::Relaxed);
        Disposition::Wait {
            queue: self.settings.topology.retry_queue(1).to_owned(),
            kind: "behind",
            expiration_ms: None,
        }
    }

    /// Wait while another process holds the command's claim: back after the first retry
    /// delay. Nothing was counted.
    pub(super) fn claimed_elsewhere(&self) -> Disposition {
        self.stats.waited_claimed.fetch_add(1, Ordering::Relaxed);
        Disposition::Wait {
            queue: self.settings.topology.retry_queue(1).to_owned(),
            kind: "claimed",
            expiration_ms: None,
        }
    }

    pub(super) fn exhausted(
        &self,
        subject: Subject<'_>,
        error: ResultError,
        attempts: u32,
        release: Option<(String, String)>,
        started_at: DateTime<Utc>,
    ) -> Disposition {
        let result = self.result(
            subject.id,
            subject.command_type,
            subject.account,
            Outcome::Failed,
            None,
            Some(error),
            attempts,
            started_at,
        );
        Disposition::Final {
            dead_letter: Some((
                ErrorCode::RetriesExhausted,
                format!("gave up after {attempts} attempts"),
            )),
            result,
            release,
            record: Record::Store(None),
        }
    }

    /// The decision limits of this pipeline.
    pub(super) fn limits(&self) -> Limits {
        Limits {
            max_attempts: self.settings.max_attempts,
            park_jitter: self.settings.park_jitter,
        }
    }

    /// Turns what the handler (or a bulk import) answered into the command's disposition:
    /// [`decision::decide`], then its side effects.
    pub(super) async fn conclude(
        &self,
        subject: Subject<'_>,
        handled: Result<serde_json::Value, HandleError>,
        attempts: u32,
        release: Option<(String, String)>,
        started_at: DateTime<Utc>,
    ) -> Result<Disposition, PipelineError> {
        let jitter = || uuid::Uuid::new_v4().as_bytes()[0];
        let decision =
            decision::decide(attempts, handled, &self.limits(), self.clock.now(), jitter);
        self.carry_out(subject, decision, attempts, release, started_at)
            .await
    }

    /// Carries out a decision: the ledger, the ordering book, the counters and the
    /// announcement it calls for, and the disposition of the delivery.
    pub(super) async fn carry_out(
        &self,
        subject: Subject<'_>,
        decision: Decision,
        attempts: u32,
        release: Option<(String, String)>,
        started_at: DateTime<Utc>,
    ) -> Result<Disposition, PipelineError> {
        let finish = |outcome, data, error| {
            self.result(
                subject.id,
                subject.command_type,
                subject.account,
                outcome,
                data,
                error,
                attempts,
                started_at,
            )
        };
        Ok(match decision {
            Decision::Succeed(data) => Disposition::Final {
                result: finish(Outcome::Succeeded, Some(data), None),
                dead_letter: None,
                release,
                record: Record::Store(None),
            },
            Decision::Reject(rejection) => {
                let result = finish(Outcome::Rejected, None, Some(ResultError::from(&rejection)));
                self.rejected(result, &rejection, release, Record::Store(None))
            }
            Decision::Fail(error) => Disposition::Final {
                result: finish(Outcome::Failed, None, Some(error)),
                dead_letter: None,
                release,
                record: Record::Store(None),
            },
            Decision::GiveUp(error) => {
                self.exhausted(subject, error, attempts, release, started_at)
            }
            // Our own store failed: the command goes back to the queue and waits for the
            // store (see `store_health`) instead of spending its attempts.
            Decision::HandBack(error) => return Err(PipelineError::Store(error)),
            Decision::Retry { attempt, cause } => {
                tracing::warn!(command_id = %subject.id, attempt = attempts, error = ?cause, "transient failure; retrying later");
                self.release_claim(subject).await?;
                self.hold(&release);
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                Disposition::Wait {
                    queue: self.settings.topology.retry_queue(attempt).to_owned(),
                    kind: "retry",
                    expiration_ms: None,
                }
            }
            Decision::ParkForQuota {
                resets_at,
                expiration_ms,
            } => {
                self.uncount(subject.account, subject.id).await?;
                self.release_claim(subject).await?;
                self.hold(&release);
                self.stats.parked.fetch_add(1, Ordering::Relaxed);
                tracing::info!(command_id = %subject.id, %resets_at, "daily quota spent; parking the command until the reset");
                Disposition::Wait {
                    queue: self.settings.topology.parked_quota_queue.clone(),
                    kind: "quota",
                    expiration_ms: Some(expiration_ms),
                }
            }
            Decision::ParkForReauth { reason } => {
                self.uncount(subject.account, subject.id).await?;
                self.release_claim(subject).await?;
                self.hold(&release);
                self.stats.parked.fetch_add(1, Ordering::Relaxed);
                self.announce_reauth(subject.account, &reason);
                Disposition::Wait {
                    queue: self.settings.topology.parked_auth_queue.clone(),
                    kind: "auth",
                    expiration_ms: None,
                }
            }
            Decision::WaitBehind => {
                self.uncount(subject.account, subject.id).await?;
                // A command that began (an earlier attempt's activity still running) keeps its
                // place ahead of later ones with its key, as a retry does.
                self.hold(&release);
                self.behind()
            }
            Decision::Yield => {
                // The claim is the other replica's now: nothing of the ledger is touched.
                if let Some((key, id)) = &release {
                    self.held.release(key, id);
                }
                self.stats.yielded.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    command_id = %subject.id,
                    "another replica took this command over while it was worked on here \
                     (this process was paused or cut off); nothing more is applied here"
                );
                self.claimed_elsewhere()
            }
        })
    }

    pub(super) fn hold(&self, release: &Option<(String, String)>) {
        if let Some((key, id)) = release {
            self.held.hold(key, id);
        }
    }

    /// Takes back the attempt this delivery counted: it was parked or sent behind, not tried.
    pub(super) async fn uncount(&self, account: &str, id: &str) -> Result<(), PipelineError> {
        self.store
            .ledger_uncount(account, id)
            .await
            .map_err(PipelineError::from)
    }

    /// Gives up this process's claim on a command that goes to wait in a queue (a retry, a
    /// park): whichever process its next delivery reaches takes it at once.
    pub(super) async fn release_claim(&self, subject: Subject<'_>) -> Result<(), PipelineError> {
        self.store
            .ledger_release(subject.account, subject.id, self.claim().owner)
            .await
            .map_err(PipelineError::from)
    }

    pub(super) fn rejected(
        &self,
        result: CommandResult,
        rejection: &Rejection,
        release: Option<(String, String)>,
        record: Record,
    ) -> Disposition {
        Disposition::Final {
            result,
            dead_letter: Some((rejection.code, rejection.to_string())),
            release,
            record,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn result(
        &self,
        id: &str,
        command_type: &str,
        account: &str,
        outcome: Outcome,
        data: Option<serde_json::Value>,
        error: Option<ResultError>,
        attempts: u32,
        started_at: DateTime<Utc>,
    ) -> CommandResult {
        CommandResult {
            command_id: id.to_owned(),
            command_type: command_type.to_owned(),
            account: account.to_owned(),
            outcome,
            data,
            error,
            attempts,
            replayed: false,
            started_at,
            finished_at: self.clock.now(),
            warnings: Vec::new(),
        }
    }
}
