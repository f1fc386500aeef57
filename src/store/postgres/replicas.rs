//! Replicas, schedule claims and the liveness lock on PostgreSQL (see
//! [`crate::store::replicas`]).
//!
//! A replica's liveness is a session advisory lock, `pg_advisory_lock(LIVENESS_LOCK_CLASS,
//! liveness_key)`, held on a connection of its own (outside the pool) for as long as the
//! process lives. PostgreSQL releases it the moment that session ends: the process was
//! killed, its host went away (once the server's TCP keepalive notices), or the server
//! restarted. Another replica then sees the lock free in `pg_locks` and takes the claims of
//! that owner over without waiting for their lease (`ledger_begin`). A replica that lost its
//! lock session (the server restarted) applies nothing until it holds it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{PgStore, Session};
use crate::store::error::StoreError;
use crate::store::replicas::{
    FORGET_REPLICAS_AFTER, FORGET_TICKS_AFTER, LIVENESS_LOCK_CLASS, Liveness, ReplicaInfo,
    ReplicaRole, ReplicaRow,
};

/// SQL that is true when the owner `{owner}` (an SQL expression) is a registered replica
/// whose liveness lock no session holds: it is dead, whatever its claims' leases say.
pub(super) fn owner_is_dead(owner: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM replicas r WHERE r.owner = {owner} AND r.liveness_key IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM pg_locks k
                     WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 2
                       AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND k.classid = {LIVENESS_LOCK_CLASS}::oid AND k.objid = r.liveness_key::oid))"
    )
}

/// How long the liveness task waits before connecting again after losing its session.
const RECONNECT_MIN: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// How many of the ids in `$2` are claimed by `$3` in account `$1`: each id looked up by the
/// ledger's key on its own (a subquery per id). Run before every API write (the fence), so
/// the plan must not depend on the table's statistics: `command_id = ANY($2)` did — a
/// connection that prepared it while the ledger was new (a fresh install, the first minutes of
/// a benchmark) kept a generic plan searching the key by `account` alone and filtering every
/// command of the account, about 8 ms per check at 10,000 commands and growing with the
/// ledger's retention.
pub(super) const LEDGER_HOLDS: &str = "SELECT count(*) FROM unnest($2::text[]) AS ids(id)
     WHERE (SELECT true FROM command_ledger AS l
            WHERE l.account = $1 AND l.command_id = ids.id AND l.owner = $3
              AND l.status = 'in_progress')";

impl PgStore {
    pub async fn replica_register(&self, info: &ReplicaInfo) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO replicas (owner, host, pid, version) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (owner) DO UPDATE SET seen_at = now()",
                &[
                    &info.owner,
                    &info.host,
                    &i32::try_from(info.pid).unwrap_or(i32::MAX),
                    &info.version,
                ],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    pub async fn replica_heartbeat(
        &self,
        owner: &str,
        role: ReplicaRole,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let forget_replicas = FORGET_REPLICAS_AFTER.num_seconds();
        let forget_ticks = FORGET_TICKS_AFTER.num_seconds();
        client
            .execute(
                "UPDATE replicas SET seen_at = now(), role = $2 WHERE owner = $1",
                &[&owner, &role.as_str()],
            )
            .await
            .map_err(|e| self.error(e))?;
        client
            .execute(
                "DELETE FROM replicas WHERE seen_at < now() - $1::bigint * interval '1 second'",
                &[&forget_replicas],
            )
            .await
            .map_err(|e| self.error(e))?;
        client
            .execute(
                "DELETE FROM schedule_ticks WHERE due_at < now() - $1::bigint * interval '1 second'",
                &[&forget_ticks],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    pub async fn replica_leave(&self, owner: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM replicas WHERE owner = $1", &[&owner])
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    pub async fn replicas(&self) -> Result<Vec<ReplicaRow>, StoreError> {
        let client = self.client().await?;
        let dead = owner_is_dead("x.owner");
        let rows = client
            .query(
                &format!(
                    "SELECT owner, host, pid, version, started_at, seen_at, role,
                            CASE WHEN liveness_key IS NULL THEN NULL ELSE NOT {dead} END
                     FROM replicas x ORDER BY started_at, owner"
                ),
                &[],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(rows
            .iter()
            .map(|r| ReplicaRow {
                owner: r.get(0),
                host: r.get(1),
                pid: u32::try_from(r.get::<_, i32>(2)).unwrap_or_default(),
                version: r.get(3),
                started_at: r.get(4),
                seen_at: r.get(5),
                role: r.get(6),
                alive: r.get(7),
            })
            .collect())
    }

    /// How many of `ids` are claimed by `owner` (see `Store::ledger_fence`).
    pub async fn ledger_holds(
        &self,
        account: &str,
        ids: &[String],
        owner: &str,
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(LEDGER_HOLDS)
            .await
            .map_err(|e| self.error(e))?;
        let held: i64 = client
            .query_one(&stmt, &[&account, &ids, &owner])
            .await
            .map_err(|e| self.error(e))?
            .get(0);
        Ok(usize::try_from(held).unwrap_or_default())
    }

    pub async fn schedule_claim(
        &self,
        job: &str,
        due_at: DateTime<Utc>,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO schedule_ticks (job, due_at, owner) VALUES ($1, $2, $3)
                 ON CONFLICT (job, due_at) DO NOTHING",
                &[&job, &due_at, &owner],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(inserted == 1)
    }

    /// Takes the liveness lock of replica `owner` (registered first) on a session of its
    /// own and holds it until `stop` is cancelled or the returned handle is released, taking
    /// it again whenever the session is lost. Returns once the lock is held the first time.
    pub async fn hold_liveness(&self, owner: &str) -> Result<Liveness, StoreError> {
        let held = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let (key, session) = self.take_liveness(owner).await?;
        held.store(true, Ordering::SeqCst);
        let store = self.clone();
        let owner = owner.to_owned();
        let task_held = held.clone();
        let task_stop = stop.clone();
        tokio::spawn(async move {
            let mut session = Some(session);
            let mut key = key;
            let mut wait = RECONNECT_MIN;
            loop {
                if let Some(ended) = session.take() {
                    tokio::select! {
                        _ = task_stop.cancelled() => {
                            task_held.store(false, Ordering::SeqCst);
                            return;
                        }
                        _ = ended.closed => {}
                    }
                    task_held.store(false, Ordering::SeqCst);
                    tracing::warn!(
                        "lost the state store session that holds this replica's liveness lock; \
                         applying nothing until it is held again"
                    );
                }
                tokio::select! {
                    _ = task_stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                match store.retake_liveness(&owner, key).await {
                    Ok((taken, again)) => {
                        key = taken;
                        session = Some(again);
                        wait = RECONNECT_MIN;
                        task_held.store(true, Ordering::SeqCst);
                        tracing::info!("liveness lock held again");
                    }
                    Err(error) => {
                        tracing::debug!(error = %error, "liveness lock not taken yet");
                        wait = (wait * 2).min(RECONNECT_MAX);
                    }
                }
            }
        });
        Ok(Liveness::new(held, stop))
    }

    /// A session of its own holding a fresh liveness lock for `owner`, whose key is recorded
    /// on its row.
    async fn take_liveness(&self, owner: &str) -> Result<(i32, Session), StoreError> {
        let session = self.session().await?;
        // A random key the lock of no other session holds (keys are positive: pg_locks shows
        // them as oids).
        let key = loop {
            let key = i32::from_be_bytes(
                uuid::Uuid::new_v4().as_bytes()[..4]
                    .try_into()
                    .unwrap_or_default(),
            ) & 0x7fff_ffff;
            let taken: bool = session
                .client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, $2)",
                    &[&LIVENESS_LOCK_CLASS, &key],
                )
                .await
                .map_err(|e| self.error(e))?
                .get(0);
            if taken {
                break key;
            }
        };
        self.record_liveness_key(&session, owner, key).await?;
        Ok((key, session))
    }

    /// After a lost session: the same key if no session holds it (the row keeps it), else a
    /// new one.
    async fn retake_liveness(&self, owner: &str, key: i32) -> Result<(i32, Session), StoreError> {
        let session = self.session().await?;
        let taken: bool = session
            .client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&LIVENESS_LOCK_CLASS, &key],
            )
            .await
            .map_err(|e| self.error(e))?
            .get(0);
        if !taken {
            drop(session);
            return self.take_liveness(owner).await;
        }
        self.record_liveness_key(&session, owner, key).await?;
        Ok((key, session))
    }

    async fn record_liveness_key(
        &self,
        session: &Session,
        owner: &str,
        key: i32,
    ) -> Result<(), StoreError> {
        session
            .client
            .execute(
                "UPDATE replicas SET liveness_key = $2, seen_at = now() WHERE owner = $1",
                &[&owner, &key],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}
