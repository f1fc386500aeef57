//! A PostgreSQL database of a test's own: [`PgTestDb::create`] makes a uniquely named database
//! (`ctct_t_<uuid>`) on the local server (trust authentication, user `postgres`; see
//! `.ci/run`), [`PgTestDb::url`] points at it, and dropping the value drops the database with
//! `WITH (FORCE)`, so connections a test left open do not keep it alive. Shared by the three
//! test binaries (it, logs, drill) through `support`.

use tokio_postgres::NoTls;

/// The server's maintenance database the tests connect to when they create or drop their own;
/// `CTCT_TEST_POSTGRES_URL` overrides it.
pub fn admin_url() -> String {
    std::env::var("CTCT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test, dropped (with its connections) when this is dropped.
pub struct PgTestDb {
    name: String,
    url: String,
}

impl PgTestDb {
    /// Creates a fresh, empty database named `ctct_t_<uuid, simple form>` on [`admin_url`]'s
    /// server. Panics (the test cannot run) when the server does not answer.
    pub async fn create() -> PgTestDb {
        let name = format!("ctct_t_{}", uuid::Uuid::new_v4().simple());
        let admin = admin_url();
        let client = connect(&admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|error| panic!("the test database {name} can be created: {error}"));
        let mut url = url::Url::parse(&admin).expect("the PostgreSQL admin URL parses");
        url.set_path(&name);
        PgTestDb {
            name,
            url: url.into(),
        }
    }

    /// The database's name (`ctct_t_…`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `postgres://` URL of this database (no password: the local server trusts the user).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection to this database; its driver runs on the current runtime until the client
    /// is dropped.
    pub async fn connect(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

/// Whether a database named `name` exists on [`admin_url`]'s server.
pub async fn database_exists(name: &str) -> bool {
    let client = connect(&admin_url()).await;
    let row = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("pg_database can be read");
    row.is_some()
}

/// A connection to `url` whose driver is spawned on the current runtime.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| {
            panic!("PostgreSQL answers at 127.0.0.1:5432 (.ci/run starts it): {error}")
        });
    tokio::spawn(async move {
        // The connection ends when the client is dropped; an error then means nothing to a test.
        let _ = connection.await;
    });
    client
}

impl Drop for PgTestDb {
    /// Drops the database from a std thread with its own current-thread runtime, and waits for
    /// it (a few milliseconds): `Drop` cannot `.await`, and blocking on the test's runtime
    /// (which may be current-thread, or already shutting down) could deadlock, while a thread
    /// of its own never needs the test's runtime to make progress. A failure is reported on
    /// stderr, not as a panic, so it never hides the test's own failure.
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = admin_url();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| format!("a runtime to drop {name}: {error}"))?;
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&admin, NoTls)
                    .await
                    .map_err(|error| format!("connecting to drop {name}: {error}"))?;
                let driver = tokio::spawn(connection);
                let outcome = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|error| format!("DROP DATABASE {name}: {error}"));
                drop(client);
                let _ = driver.await;
                outcome
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => eprintln!("test database left behind: {reason}"),
            Err(_) => eprintln!(
                "test database {} left behind: the dropping thread panicked",
                self.name
            ),
        }
    }
}
