//! The mirror schema's own migration history on PostgreSQL: `POSTGRES_MIRROR` applied in
//! order under a transaction-scoped advisory lock (so processes starting together migrate
//! once), each recorded with its name and SHA-256 in `schema_migrations` of the mirror schema.
//! An applied migration whose text changed, or a history newer than this binary, is refused.

use sha2::{Digest, Sha256};

use super::error::{PgMirrorError, PgResult};
use crate::store::migrate::{Migration, MigrationReport, POSTGRES_MIRROR};

/// The SHA-256 of a migration's text, in lowercase hex.
fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The first schema of the connection's search_path, as written there (an identifier or a
/// double-quoted one) and as the catalog spells it.
fn target_schema(search_path: &str) -> Result<(String, String), PgMirrorError> {
    let invalid = || PgMirrorError::SearchPath {
        search_path: search_path.to_owned(),
    };
    let first = search_path.trim_start();
    if let Some(quoted) = first.strip_prefix('"') {
        let end = quoted.find('"').ok_or_else(invalid)?;
        let name = &quoted[..end];
        let rest = quoted[end + 1..].trim_start();
        if name.is_empty() || name == "$user" || !(rest.is_empty() || rest.starts_with(',')) {
            return Err(invalid());
        }
        return Ok((format!("\"{name}\""), name.to_owned()));
    }
    let name = first.split(',').next().unwrap_or("").trim();
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if !plain {
        return Err(invalid());
    }
    let name = name.to_ascii_lowercase();
    Ok((name.clone(), name))
}

/// Brings the mirror schema named first in the connection's search_path up to `migrations`,
/// creating the schema when it does not exist. Every pending migration lands in one
/// transaction or none does.
pub(super) async fn apply(
    client: &mut deadpool_postgres::Client,
    migrations: &[Migration],
) -> PgResult<MigrationReport> {
    let tx = client.transaction().await?;
    let search_path: String = tx
        .query_one("SELECT current_setting('search_path')", &[])
        .await?
        .get(0);
    let (identifier, name) = target_schema(&search_path)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('ctct-sync mirror migrations ' || $1, 0))",
        &[&name],
    )
    .await?;
    let exists = tx
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        tx.batch_execute(&format!("CREATE SCHEMA {identifier}"))
            .await?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             sha256     text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let recorded: Vec<(i32, String, String)> = tx
        .query(
            "SELECT version, name, sha256 FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let latest = migrations.last().map_or(0, |m| m.version);
    let found = recorded.last().map_or(0, |r| r.0.max(0) as u32);
    if found > latest {
        return Err(PgMirrorError::SchemaTooNew { found, latest });
    }
    for (version, name, sha) in &recorded {
        let known = migrations.iter().find(|m| m.version as i32 == *version);
        match known {
            Some(m) if m.name == name && checksum(m.sql) == *sha => {}
            _ => {
                return Err(PgMirrorError::MigrationChanged {
                    version: *version,
                    name: name.clone(),
                });
            }
        }
    }
    let mut applied = Vec::new();
    for m in migrations.iter().filter(|m| m.version > found) {
        tx.batch_execute(m.sql)
            .await
            .map_err(|source| PgMirrorError::Migration {
                version: m.version,
                name: m.name,
                source,
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
            &[&(m.version as i32), &m.name, &checksum(m.sql)],
        )
        .await?;
        applied.push(format!("{:04}_{}", m.version, m.name));
    }
    tx.commit().await?;
    Ok(MigrationReport {
        from_version: found,
        to_version: latest.max(found),
        applied,
    })
}

/// Applies the embedded mirror migrations.
pub(super) async fn apply_embedded(
    client: &mut deadpool_postgres::Client,
) -> PgResult<MigrationReport> {
    apply(client, POSTGRES_MIRROR).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_schema_is_the_first_of_the_search_path_as_postgresql_spells_it() {
        let ok = |path: &str| target_schema(path).expect(path);
        assert_eq!(
            ok("ctct_mirror"),
            ("ctct_mirror".into(), "ctct_mirror".into())
        );
        assert_eq!(ok("Mirror, public"), ("mirror".into(), "mirror".into()));
        assert_eq!(
            ok("\"Team Mirror\", public"),
            ("\"Team Mirror\"".into(), "Team Mirror".into())
        );
        for bad in ["\"$user\"x\"", "", "1abc", "a;DROP TABLE x", "\"open"] {
            assert!(target_schema(bad).is_err(), "{bad:?} is refused");
        }
    }
}
