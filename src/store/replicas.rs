//! The daemons sharing one state store (`replicas`), and the scheduled jobs one of them ran
//! (`schedule_ticks`): the same operations on both engines.
//!
//! - Each running pipeline registers itself ([`Store::replica_register`]) under its ledger
//!   owner id, says its role every few seconds ([`Store::replica_heartbeat`]) and leaves on a
//!   clean stop. `doctor` lists the replicas ([`Store::replicas`]).
//! - On PostgreSQL a replica also holds a session advisory lock while it lives (see
//!   [`Liveness`]): a replica killed or cut off from the database releases
//!   it at once, and its ledger claims are taken over without waiting for their lease. SQLite
//!   has no such signal: there a claim lapses with its lease.
//! - A scheduled job's occurrence runs on the one replica that claims it first
//!   ([`Store::schedule_claim`]).
//! - [`Store::ledger_fence`] is asked right before each API write of a command: whether
//!   this process still holds the command's claim.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::ledger::Claim;
use super::{Store, StoreError};

/// Rows of replicas not seen for this long are removed.
pub const FORGET_REPLICAS_AFTER: chrono::Duration = chrono::Duration::days(1);

/// Claims of scheduled occurrences older than this are removed.
pub const FORGET_TICKS_AFTER: chrono::Duration = chrono::Duration::days(7);

/// The first key of the replicas' liveness advisory locks (`ctlv`); the second is the
/// replica's `liveness_key`.
pub const LIVENESS_LOCK_CLASS: i32 = 0x6374_6C76;

/// A replica's liveness lock on PostgreSQL, held by a background task (see
/// `PgStore::hold_liveness`). Releasing it (or dropping the store) ends the session and the
/// lock with it.
#[derive(Clone)]
pub struct Liveness {
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: tokio_util::sync::CancellationToken,
}

impl Liveness {
    pub(crate) fn new(
        held: std::sync::Arc<std::sync::atomic::AtomicBool>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Liveness {
        Liveness { held, stop }
    }

    /// Whether this process holds its liveness lock right now.
    pub fn is_held(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Releases the lock (a clean stop).
    pub fn release(&self) {
        self.stop.cancel();
    }
}

/// What a replica is doing with the command queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaRole {
    /// It consumes the command queue (RabbitMQ made it the single active consumer).
    Active,
    /// It is connected and waits for the broker to make it the active consumer, or it is not
    /// connected to the broker at all.
    Standby,
}

impl ReplicaRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaRole::Active => "active",
            ReplicaRole::Standby => "standby",
        }
    }
}

/// Who a replica is, as it registers.
#[derive(Debug, Clone)]
pub struct ReplicaInfo {
    pub owner: String,
    pub host: String,
    pub pid: u32,
    pub version: String,
}

impl ReplicaInfo {
    /// This process, under the ledger owner id `owner`.
    pub fn this_process(owner: &str) -> ReplicaInfo {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        ReplicaInfo {
            owner: owner.to_owned(),
            host,
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// A replica's row, for `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRow {
    pub owner: String,
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    pub role: String,
    /// On PostgreSQL: whether the replica's session still holds its liveness lock. `None`
    /// where there is no such lock (SQLite, or a replica that took none).
    pub alive: Option<bool>,
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The SQLite side (times in Unix milliseconds from `now`).
pub(crate) mod sqlite {
    use rusqlite::Connection;

    use super::*;

    pub fn register(conn: &Connection, info: &ReplicaInfo, now: i64) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO replicas (owner, host, pid, version, started_at, seen_at, role, liveness_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'standby', NULL)
             ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at",
            params![info.owner, info.host, info.pid, info.version, now],
        )?;
        Ok(())
    }

    pub fn heartbeat(
        conn: &Connection,
        owner: &str,
        role: ReplicaRole,
        now: i64,
    ) -> Result<(), StoreError> {
        conn.execute(
            "UPDATE replicas SET seen_at = ?2, role = ?3 WHERE owner = ?1",
            params![owner, now, role.as_str()],
        )?;
        conn.execute(
            "DELETE FROM replicas WHERE seen_at < ?1",
            params![now - FORGET_REPLICAS_AFTER.num_milliseconds()],
        )?;
        conn.execute(
            "DELETE FROM schedule_ticks WHERE due_at < ?1",
            params![now - FORGET_TICKS_AFTER.num_milliseconds()],
        )?;
        Ok(())
    }

    pub fn leave(conn: &Connection, owner: &str) -> Result<(), StoreError> {
        conn.execute("DELETE FROM replicas WHERE owner = ?1", params![owner])?;
        Ok(())
    }

    pub fn list(conn: &Connection) -> Result<Vec<ReplicaRow>, StoreError> {
        let mut stmt = conn.prepare(
            "SELECT owner, host, pid, version, started_at, seen_at, role FROM replicas
             ORDER BY started_at, owner",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ReplicaRow {
                    owner: r.get(0)?,
                    host: r.get(1)?,
                    pid: r.get(2)?,
                    version: r.get(3)?,
                    started_at: ms_to_time(r.get(4)?),
                    seen_at: ms_to_time(r.get(5)?),
                    role: r.get(6)?,
                    alive: None,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn claim_tick(
        conn: &Connection,
        job: &str,
        due_at: i64,
        owner: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let inserted = conn.execute(
            "INSERT INTO schedule_ticks (job, due_at, owner, claimed_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (job, due_at) DO NOTHING",
            params![job, due_at, owner, now],
        )?;
        Ok(inserted == 1)
    }

    /// How many of `ids` are claimed by `owner` (in progress and not taken over).
    pub fn holds(
        conn: &Connection,
        account: &str,
        ids: &[String],
        owner: &str,
    ) -> Result<usize, StoreError> {
        let mut stmt = conn.prepare_cached(
            "SELECT 1 FROM command_ledger
             WHERE account = ?1 AND command_id = ?2 AND owner = ?3
               AND status = 'in_progress'",
        )?;
        let mut held = 0;
        for id in ids {
            held += usize::from(
                stmt.query_row(params![account, id, owner], |_| Ok(()))
                    .optional()?
                    .is_some(),
            );
        }
        Ok(held)
    }
}

impl Store {
    /// Registers this process as a replica of the store (its role starts as `standby`).
    pub async fn replica_register(&self, info: &ReplicaInfo) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.replica_register(info).await;
        }
        let info = info.clone();
        let now = Utc::now().timestamp_millis();
        self.call(move |conn| sqlite::register(conn, &info, now))
            .await
    }

    /// Says this replica's role and that it is alive; removes replicas not seen for a day
    /// and schedule claims older than a week.
    pub async fn replica_heartbeat(
        &self,
        owner: &str,
        role: ReplicaRole,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.replica_heartbeat(owner, role).await;
        }
        let owner = owner.to_owned();
        let now = Utc::now().timestamp_millis();
        self.call(move |conn| sqlite::heartbeat(conn, &owner, role, now))
            .await
    }

    /// On PostgreSQL: takes this replica's liveness lock and holds it (see [`Liveness`]).
    /// `None` on SQLite, which has no such lock.
    pub async fn hold_liveness(&self, owner: &str) -> Result<Option<Liveness>, StoreError> {
        match self.pg() {
            Some(pg) => Ok(Some(pg.hold_liveness(owner).await?)),
            None => Ok(None),
        }
    }

    /// Removes this replica's row (a clean stop).
    pub async fn replica_leave(&self, owner: &str) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.replica_leave(owner).await;
        }
        let owner = owner.to_owned();
        self.call(move |conn| sqlite::leave(conn, &owner)).await
    }

    /// Every registered replica, oldest first.
    pub async fn replicas(&self) -> Result<Vec<ReplicaRow>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.replicas().await;
        }
        self.call(|conn| sqlite::list(conn)).await
    }

    /// Claims the occurrence of scheduled `job` due at `due_at` for `owner`: true for the one
    /// replica that claims it first, false for every other.
    pub async fn schedule_claim(
        &self,
        job: &str,
        due_at: DateTime<Utc>,
        owner: &str,
    ) -> Result<bool, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.schedule_claim(job, due_at, owner).await;
        }
        let (job, owner) = (job.to_owned(), owner.to_owned());
        let now = Utc::now().timestamp_millis();
        let due = due_at.timestamp_millis();
        self.call(move |conn| sqlite::claim_tick(conn, &job, due, &owner, now))
            .await
    }

    /// Asked right before an API write for the commands `ids` of `account`: whether this
    /// process (`claim.owner`) still holds their claims — how many of them it holds.
    ///
    /// A read on both engines (no commit: it is made before every write): a claim is held
    /// while this process owns it — a lapsed lease that no other process took over is still
    /// its own, since a takeover rewrites the owner. On PostgreSQL a replica whose liveness
    /// lock is not held (`alive` false: its session to the database was lost, so others may
    /// take its claims over) holds nothing.
    pub async fn ledger_fence(
        &self,
        account: &str,
        ids: &[String],
        claim: Claim<'_>,
        alive: bool,
    ) -> Result<usize, StoreError> {
        if let Some(pg) = self.pg() {
            if !alive {
                return Ok(0);
            }
            return pg.ledger_holds(account, ids, claim.owner).await;
        }
        let (account, ids, owner) = (account.to_owned(), ids.to_vec(), claim.owner.to_owned());
        self.call(move |conn| sqlite::holds(conn, &account, &ids, &owner))
            .await
    }
}
