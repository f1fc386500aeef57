//! The database engine a test's stores run on, a way to run one test body on both, and a
//! reader of the stores' tables that works on either.
//!
//! [`both_engines!`](crate::both_engines) turns one test body into two tests,
//! `<name>::sqlite` and `<name>::postgres`: the stores of the `TestApi`/`TestDaemon` the body
//! starts with `start_on(engine, …)` are SQLite files in the test's directory, or schemas
//! (`ctct_state`, `ctct_mirror`) of a PostgreSQL database of the test's own
//! ([`super::pg::PgTestDb`], dropped with the test's `TestApi`).
//!
//! [`Tables`] runs plain SQL against either engine for the tests that look at rows the typed
//! store methods do not show: every value comes back as text in SQLite's spelling (integers
//! and flags as digits, instants in RFC 3339 with `Z`, JSON as its text), so one assertion
//! holds on both engines. SQL given to it must be valid on both (no `?1` parameters, no
//! pragmas): the values tests put in it are their own literals.

use rusqlite::types::ValueRef;
use tokio_postgres::types::Type;

/// Where a test's state store and mirror store live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Two SQLite files in the test's temporary directory (the default layout).
    Sqlite,
    /// Two schemas of a PostgreSQL database created for the test and dropped after it.
    Postgres,
}

/// Runs one test body on both engines: `both_engines!(#[tokio::test(…)] name)` beside an
/// `async fn name(engine: Engine)` makes a module `name` with two tests, `sqlite` and
/// `postgres`, each with the given attributes, that run the body on its engine (a module
/// and a function may share a name). The body stays an ordinary function, so `cargo fmt`
/// and the compiler see it as such.
///
/// ```ignore
/// crate::both_engines!(
///     #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
///     a_command_sent_twice_replays
/// );
/// async fn a_command_sent_twice_replays(engine: Engine) {
///     let mut d = TestDaemon::start_on(engine).await;
///     …
/// }
/// ```
#[macro_export]
macro_rules! both_engines {
    ($(#[$attr:meta])* $name:ident) => {
        mod $name {
            $(#[$attr])*
            async fn sqlite() {
                super::$name($crate::support::engine::Engine::Sqlite).await
            }

            $(#[$attr])*
            async fn postgres() {
                super::$name($crate::support::engine::Engine::Postgres).await
            }
        }
    };
}

/// One store's tables, read (and, for setting up a case, written) with plain SQL.
#[derive(Clone, Debug)]
pub enum Tables {
    /// A SQLite store: statements run on its owner thread ([`ctct_sync::store::Store::call`]).
    Sqlite(ctct_sync::store::Store),
    /// A schema of a PostgreSQL database: each statement on a connection of its own whose
    /// `search_path` is that schema.
    Postgres { url: String, schema: String },
}

/// The answer to a query: its column names and its rows, every value as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Tables {
    /// The rows `sql` selects. Panics (naming the statement) when it fails.
    pub async fn query(&self, sql: &str) -> Rows {
        match self {
            Tables::Sqlite(store) => {
                let owned = sql.to_owned();
                store
                    .call(move |conn| {
                        let mut stmt = conn.prepare(&owned)?;
                        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
                        let width = columns.len();
                        let rows = stmt
                            .query_map([], |row| (0..width).map(|i| sqlite_text(row, i)).collect())?
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(Rows { columns, rows })
                    })
                    .await
                    .unwrap_or_else(|error| panic!("{sql:?} runs on SQLite: {error}"))
            }
            Tables::Postgres { .. } => {
                let client = self.connect().await;
                let rows = client
                    .query(sql, &[])
                    .await
                    .unwrap_or_else(|error| panic!("{sql:?} runs on PostgreSQL: {error}"));
                let columns = match rows.first() {
                    Some(row) => row.columns().iter().map(|c| c.name().to_owned()).collect(),
                    None => client
                        .prepare(sql)
                        .await
                        .expect("the statement prepares")
                        .columns()
                        .iter()
                        .map(|c| c.name().to_owned())
                        .collect(),
                };
                let rows = rows
                    .iter()
                    .map(|row| (0..row.len()).map(|i| pg_text(row, i)).collect())
                    .collect();
                Rows { columns, rows }
            }
        }
    }

    /// Every row of `sql` as its first column's text (`NULL` as an empty string).
    pub async fn column(&self, sql: &str) -> Vec<String> {
        self.query(sql)
            .await
            .rows
            .into_iter()
            .map(|row| row.into_iter().next().flatten().unwrap_or_default())
            .collect()
    }

    /// The integer `sql` selects (one row, one column), such as a `count(*)`.
    pub async fn number(&self, sql: &str) -> i64 {
        let values = self.column(sql).await;
        match values.as_slice() {
            [one] => one
                .parse()
                .unwrap_or_else(|_| panic!("{sql:?} gives an integer, not {one:?}")),
            other => panic!("{sql:?} gives one row, not {}", other.len()),
        }
    }

    /// Runs a statement that changes rows and returns how many it changed.
    pub async fn execute(&self, sql: &str) -> u64 {
        match self {
            Tables::Sqlite(store) => {
                let owned = sql.to_owned();
                store
                    .call(move |conn| Ok(conn.execute(&owned, [])? as u64))
                    .await
                    .unwrap_or_else(|error| panic!("{sql:?} runs on SQLite: {error}"))
            }
            Tables::Postgres { .. } => self
                .connect()
                .await
                .execute(sql, &[])
                .await
                .unwrap_or_else(|error| panic!("{sql:?} runs on PostgreSQL: {error}")),
        }
    }

    /// A connection to the PostgreSQL schema, its driver on the current runtime.
    async fn connect(&self) -> tokio_postgres::Client {
        let Tables::Postgres { url, schema } = self else {
            unreachable!("only a PostgreSQL store is connected to");
        };
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|error| panic!("the test's PostgreSQL database answers: {error}"));
        tokio::spawn(async move {
            // Ends when the client is dropped; an error then means nothing to a test.
            let _ = connection.await;
        });
        client
            .batch_execute(&format!("SET search_path TO \"{schema}\""))
            .await
            .expect("the schema can be selected");
        client
    }
}

/// A SQLite value as text: integers and reals in decimal, text as it is.
fn sqlite_text(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
        ValueRef::Text(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(_) => panic!("column {i} is a blob; select something readable as text"),
    })
}

/// A PostgreSQL value as SQLite would spell it: integers in decimal, flags as `1`/`0`,
/// instants in RFC 3339 (UTC, `Z`), dates as `YYYY-MM-DD`, JSON as its text.
fn pg_text(row: &tokio_postgres::Row, i: usize) -> Option<String> {
    let column = &row.columns()[i];
    let ty = column.type_();
    if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
        row.get::<_, Option<String>>(i)
    } else if *ty == Type::INT8 {
        row.get::<_, Option<i64>>(i).map(|v| v.to_string())
    } else if *ty == Type::INT4 {
        row.get::<_, Option<i32>>(i).map(|v| v.to_string())
    } else if *ty == Type::INT2 {
        row.get::<_, Option<i16>>(i).map(|v| v.to_string())
    } else if *ty == Type::BOOL {
        row.get::<_, Option<bool>>(i)
            .map(|v| i64::from(v).to_string())
    } else if *ty == Type::FLOAT8 {
        row.get::<_, Option<f64>>(i).map(|v| v.to_string())
    } else if *ty == Type::TIMESTAMPTZ {
        row.get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)
            .map(|v| v.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    } else if *ty == Type::DATE {
        row.get::<_, Option<chrono::NaiveDate>>(i)
            .map(|v| v.format("%Y-%m-%d").to_string())
    } else if *ty == Type::NUMERIC {
        row.get::<_, Option<Numeric>>(i).map(|v| v.0)
    } else if *ty == Type::JSONB || *ty == Type::JSON {
        row.get::<_, Option<serde_json::Value>>(i)
            .map(|v| v.to_string())
    } else {
        panic!(
            "column {} is of type {ty}; cast it to text in the query",
            column.name()
        )
    }
}

/// A PostgreSQL `numeric` (a `sum` of integers, a `round`) as its decimal text, decoded from
/// the binary form: digit count, weight of the first base-10000 digit, sign, display scale,
/// then the digits.
struct Numeric(String);

impl<'a> tokio_postgres::types::FromSql<'a> for Numeric {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let word = |at: usize| -> Result<i32, Box<dyn std::error::Error + Sync + Send>> {
            let bytes = raw.get(at..at + 2).ok_or("a short numeric")?;
            Ok(i32::from(i16::from_be_bytes([bytes[0], bytes[1]])))
        };
        let (count, weight, sign, scale) = (word(0)?, word(2)?, word(4)? & 0xffff, word(6)?);
        if sign == 0xc000 {
            return Ok(Numeric("NaN".into()));
        }
        let digits = (0..count)
            .map(|k| word(8 + 2 * k as usize))
            .collect::<Result<Vec<i32>, _>>()?;
        // Integer part: the digits of weight ≥ 0; fraction: the rest, to `scale` places.
        let mut whole = String::new();
        for w in (0..=weight).rev() {
            let d = digits.get((weight - w) as usize).copied().unwrap_or(0);
            if whole.is_empty() {
                whole = d.to_string();
            } else {
                whole.push_str(&format!("{d:04}"));
            }
        }
        if whole.is_empty() {
            whole.push('0');
        }
        let mut fraction = String::new();
        let mut w = -1;
        while (fraction.len() as i32) < scale {
            let index = weight - w;
            let d = if index >= 0 {
                digits.get(index as usize).copied().unwrap_or(0)
            } else {
                0
            };
            fraction.push_str(&format!("{d:04}"));
            w -= 1;
        }
        fraction.truncate(scale.max(0) as usize);
        let sign = if sign == 0x4000 { "-" } else { "" };
        Ok(Numeric(if fraction.is_empty() {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{fraction}")
        }))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::NUMERIC
    }
}

/// Where a test keeps a state store that it opens several times, as successive or
/// concurrent processes would: a SQLite file in a temporary directory, or the schema
/// `ctct_state` of a PostgreSQL database of the test's own (dropped with this value).
pub struct StateSpot {
    dir: tempfile::TempDir,
    pg: Option<super::pg::PgTestDb>,
}

impl StateSpot {
    /// A place on `engine` where no store exists yet.
    pub async fn new(engine: Engine) -> StateSpot {
        let pg = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => Some(super::pg::PgTestDb::create().await),
        };
        StateSpot {
            dir: super::temp_dir(),
            pg,
        }
    }

    /// Opens (creating and migrating on first use) the state store: a handle of its own.
    pub async fn open(&self) -> ctct_sync::store::Store {
        match &self.pg {
            None => {
                ctct_sync::store::Store::open(&super::fresh_db_path(self.dir.path()))
                    .expect("the state store opens")
                    .0
            }
            Some(db) => {
                ctct_sync::store::Store::connect_postgres(
                    &secrecy::SecretString::from(db.url().to_owned()),
                    "ctct_state",
                )
                .await
                .expect("the state store opens")
                .0
            }
        }
    }
}
