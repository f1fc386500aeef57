//! The PostgreSQL side of `ctct-sync store copy` ([`crate::store::copy`]): rows read as JSON
//! objects (`to_jsonb`) from one consistent snapshot, and written in one transaction with
//! `json_populate_recordset`, which casts each field to its column's type.

use deadpool_postgres::Object;
use serde_json::{Map, Value};

use super::PgStore;
use crate::store::StoreError;

/// Rows fetched from the source's cursor at a time.
const FETCH: usize = 2_000;

/// The columns of `table` in the store's schema and their types as `information_schema`
/// names them (`timestamp with time zone`, `boolean`, `jsonb`, `date`, `bigint`, `text`, …).
pub(crate) async fn columns(
    client: &Object,
    pg: &PgStore,
    table: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
             ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .map_err(|e| pg.error(e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Reads one store's tables, each in pages, all from one snapshot (a read-only
/// `REPEATABLE READ` transaction, instants in UTC).
pub(crate) struct PgReader {
    pg: PgStore,
    client: Object,
    open: bool,
}

impl PgReader {
    pub(crate) async fn begin(pg: &PgStore) -> Result<PgReader, StoreError> {
        let client = pg.client().await?;
        client
            .batch_execute(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL TIME ZONE 'UTC'",
            )
            .await
            .map_err(|e| pg.error(e))?;
        Ok(PgReader {
            pg: pg.clone(),
            client,
            open: false,
        })
    }

    pub(crate) async fn columns(&self, table: &str) -> Result<Vec<(String, String)>, StoreError> {
        columns(&self.client, &self.pg, table).await
    }

    /// The next page of `table`'s rows (empty at the end). `table` is one of the store's own
    /// table names (a constant), never user input.
    pub(crate) async fn page(
        &mut self,
        table: &str,
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        if !self.open {
            self.client
                .batch_execute(&format!(
                    "DECLARE copy_rows NO SCROLL CURSOR FOR SELECT to_jsonb(t)::text FROM {table} AS t"
                ))
                .await
                .map_err(|e| self.pg.error(e))?;
            self.open = true;
        }
        let rows = self
            .client
            .query(&format!("FETCH {FETCH} FROM copy_rows"), &[])
            .await
            .map_err(|e| self.pg.error(e))?;
        if rows.is_empty() {
            self.client
                .batch_execute("CLOSE copy_rows")
                .await
                .map_err(|e| self.pg.error(e))?;
            self.open = false;
        }
        rows.iter()
            .map(|row| {
                let text: String = row.get(0);
                match serde_json::from_str(&text) {
                    Ok(Value::Object(map)) => Ok(map),
                    _ => Err(StoreError::Copy {
                        table: table.to_owned(),
                        reason: "PostgreSQL gave a row that is not a JSON object".into(),
                    }),
                }
            })
            .collect()
    }

    pub(crate) async fn finish(self) -> Result<(), StoreError> {
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| self.pg.error(e))
    }
}

/// Writes the copied rows into the target store in one transaction: nothing is visible (or
/// kept) unless [`PgWriter::commit`] is reached.
pub(crate) struct PgWriter {
    pg: PgStore,
    client: Object,
}

impl PgWriter {
    /// Opens the transaction and locks `tables` against other writers, then refuses a target
    /// that already holds rows in any of them (naming the first).
    pub(crate) async fn begin(pg: &PgStore, tables: &[&str]) -> Result<PgWriter, StoreError> {
        let client = pg.client().await?;
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL TIME ZONE 'UTC'; LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
                tables.join(", ")
            ))
            .await
            .map_err(|e| pg.error(e))?;
        let writer = PgWriter {
            pg: pg.clone(),
            client,
        };
        for table in tables {
            let row = writer
                .client
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
                .await
                .map_err(|e| writer.pg.error(e))?;
            if row.get::<_, bool>(0) {
                writer.rollback().await;
                return Err(StoreError::CopyTargetNotEmpty {
                    store: pg.describe().to_owned(),
                    table: (*table).to_owned(),
                });
            }
        }
        Ok(writer)
    }

    pub(crate) async fn columns(&self, table: &str) -> Result<Vec<(String, String)>, StoreError> {
        columns(&self.client, &self.pg, table).await
    }

    /// Inserts `rows` (objects keyed by column name, values as `to_jsonb` writes them) into
    /// `table`, identity columns included.
    pub(crate) async fn insert(
        &self,
        table: &str,
        rows: &[Map<String, Value>],
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(rows).map_err(|e| StoreError::Copy {
            table: table.to_owned(),
            reason: e.to_string(),
        })?;
        self.client
            .execute(
                &format!(
                    "INSERT INTO {table} OVERRIDING SYSTEM VALUE
                     SELECT * FROM json_populate_recordset(NULL::{table}, $1::text::json)"
                ),
                &[&json],
            )
            .await
            .map_err(|e| self.pg.error(e))?;
        Ok(())
    }

    /// Moves every identity or serial sequence of `tables` past the highest copied value, so
    /// that the next row the daemon inserts gets a new id. Then commits.
    pub(crate) async fn commit(self, tables: &[&str]) -> Result<(), StoreError> {
        let generated = self
            .client
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema()
                   AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')",
                &[],
            )
            .await
            .map_err(|e| self.pg.error(e))?;
        for row in &generated {
            let (table, column): (String, String) = (row.get(0), row.get(1));
            if !tables.contains(&table.as_str()) {
                continue;
            }
            self.client
                .execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence($1, $2), m)
                         FROM (SELECT max({column}) AS m FROM {table}) AS s WHERE m IS NOT NULL"
                    ),
                    &[&table, &column],
                )
                .await
                .map_err(|e| self.pg.error(e))?;
        }
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| self.pg.error(e))
    }

    /// Gives the transaction up (nothing written stays).
    pub(crate) async fn rollback(&self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
    }
}
