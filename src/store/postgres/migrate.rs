//! Schema migrations on PostgreSQL: the same numbered, checksummed, append-only files as on
//! SQLite (`migrations/postgres/<store>/`), recorded in the schema's own
//! `schema_migrations` table. There is no `user_version`: the recorded history is the
//! version.
//!
//! Every pending migration is applied in one transaction that first takes the schema's
//! advisory lock (`pg_advisory_xact_lock`), so two processes migrating the same schema at
//! once serialize: the first applies, the second then finds nothing to do.

use super::PgStore;
use crate::store::error::StoreError;
use crate::store::migrate::{Migration, MigrationReport, checksum};

/// Applies `migrations` (numbered 1..=n, in order; `POSTGRES_STATE` or `POSTGRES_MIRROR`)
/// that the schema does not have yet, all in one transaction: either every pending migration
/// lands or none does.
pub async fn apply(
    store: &PgStore,
    migrations: &[Migration],
) -> Result<MigrationReport, StoreError> {
    let latest = migrations.last().map_or(0, |m| m.version);
    let mut client = store.client().await?;
    let err = |e| store.error(e);
    let tx = client.transaction().await.map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&store.lock_key()])
        .await
        .map_err(err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             sha256     text NOT NULL,
             applied_at timestamptz NOT NULL
         )",
    )
    .await
    .map_err(err)?;
    let recorded: Vec<(u32, String)> = tx
        .query(
            "SELECT version, sha256 FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|row| (row.get::<_, i32>(0).max(0) as u32, row.get(1)))
        .collect();
    let current = recorded.last().map_or(0, |(version, _)| *version);
    if current > latest {
        return Err(StoreError::SchemaTooNew {
            found: current,
            latest,
        });
    }
    if recorded.len() != current as usize {
        return Err(StoreError::MigrationHistory {
            user_version: current,
            recorded: recorded.len(),
        });
    }
    for (version, sha) in &recorded {
        let embedded = migrations.iter().find(|m| m.version == *version).ok_or(
            StoreError::MigrationHistory {
                user_version: current,
                recorded: *version as usize,
            },
        )?;
        if checksum(embedded.sql) != *sha {
            return Err(StoreError::MigrationChanged {
                version: *version,
                name: embedded.name,
            });
        }
    }

    let mut applied = Vec::new();
    for migration in migrations.iter().filter(|m| m.version > current) {
        tx.batch_execute(migration.sql)
            .await
            .map_err(|source| StoreError::Migration {
                version: migration.version,
                name: migration.name,
                source: Box::new(source),
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, sha256, applied_at)
             VALUES ($1, $2, $3, now())",
            &[
                &(migration.version as i32),
                &migration.name,
                &checksum(migration.sql),
            ],
        )
        .await
        .map_err(err)?;
        applied.push(format!("{:04}_{}", migration.version, migration.name));
    }
    tx.commit().await.map_err(err)?;
    Ok(MigrationReport {
        from_version: current,
        to_version: if applied.is_empty() { current } else { latest },
        applied,
    })
}
