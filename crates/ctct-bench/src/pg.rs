//! A PostgreSQL database of a benchmark's own, created on the server of `--postgres-url` and
//! dropped afterwards, so that the PostgreSQL figures start from empty stores as the SQLite
//! ones start from new files.

use anyhow::Context as _;
use tokio_postgres::NoTls;

/// A database that exists for one measurement.
pub struct BenchDb {
    admin_url: String,
    name: String,
    url: String,
}

impl BenchDb {
    /// Creates `ctct_bench_<pid>_<tag>` on the server of `admin_url` (a URL of an existing
    /// database, such as `postgres://postgres@127.0.0.1:5432/postgres`).
    pub async fn create(admin_url: &str, tag: &str) -> anyhow::Result<BenchDb> {
        let name = format!("ctct_bench_{}_{tag}", std::process::id());
        let client = connect(admin_url).await?;
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .with_context(|| format!("dropping a leftover database {name}"))?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating the benchmark database {name}"))?;
        let mut url = url_parse(admin_url)?;
        url.set_path(&name);
        Ok(BenchDb {
            admin_url: admin_url.to_owned(),
            name,
            url: url.into(),
        })
    }

    /// The database's URL (the admin URL's credentials, this database).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database and whatever is still connected to it.
    pub async fn drop_now(self) -> anyhow::Result<()> {
        let client = connect(&self.admin_url).await?;
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .with_context(|| format!("dropping the benchmark database {}", self.name))
    }
}

/// Creates and migrates the mirror store (schema `ctct_mirror`) in the database at `url`;
/// with `without_fks`, then drops the foreign keys of custom-field values and list
/// memberships to contacts (a measurement of what those per-row checks cost; the schema
/// ctct-sync ships keeps them).
pub async fn prepare_mirror(url: &str, without_fks: bool) -> anyhow::Result<()> {
    let pg = ctct_sync::store::PgStore::connect(&secrecy::SecretString::from(url), "ctct_mirror")
        .await?;
    ctct_sync::mirror::PgMirrorDb::new(pg.pool().clone())
        .migrate()
        .await?;
    if without_fks {
        let client = connect(url).await?;
        for table in ["contact_custom_field_values", "contact_list_memberships"] {
            let rows = client
                .query(
                    "SELECT conname::text FROM pg_constraint
                     WHERE contype = 'f' AND conrelid = format('ctct_mirror.%I', $1::text)::regclass",
                    &[&table],
                )
                .await?;
            for row in rows {
                let name: String = row.get(0);
                client
                    .batch_execute(&format!(
                        "ALTER TABLE ctct_mirror.{table} DROP CONSTRAINT {name}"
                    ))
                    .await?;
            }
        }
    }
    Ok(())
}

fn url_parse(raw: &str) -> anyhow::Result<url::Url> {
    url::Url::parse(raw).context("--postgres-url is not a URL")
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .context("connecting to PostgreSQL (--postgres-url)")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}
