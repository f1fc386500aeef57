//! Test support: a schema of its own in the local PostgreSQL's `test` database, dropped
//! when the test ends, passed or failed.

use secrecy::SecretString;

use super::PgStore;

/// The local test server (trust authentication).
pub(crate) const URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A uniquely named schema, dropped (`CASCADE`) when the guard drops.
pub(crate) struct TestSchema {
    pub(crate) name: String,
}

impl TestSchema {
    pub(crate) fn new() -> TestSchema {
        TestSchema {
            name: format!("ctct_test_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The test server's URL, naming this schema as the sessions' `application_name` so
    /// the guard can end them (a transaction a failed test left open would otherwise hold
    /// its locks and block the schema's drop forever).
    pub(crate) fn url(&self) -> SecretString {
        SecretString::from(format!("{URL}?application_name={}", self.name))
    }

    /// A store on this schema, migrated.
    pub(crate) async fn store(&self) -> PgStore {
        let store = PgStore::connect(&self.url(), &self.name)
            .await
            .expect("the local PostgreSQL answers");
        super::migrate::apply(&store, crate::store::migrate::POSTGRES_STATE)
            .await
            .expect("the state migrations apply");
        store
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // On a thread of its own with its own runtime: the test's runtime may be the
        // current-thread one, which cannot block on the drop.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the schema's drop");
            runtime.block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(URL, tokio_postgres::NoTls).await?;
                let driver = tokio::spawn(connection);
                let result = client
                    .batch_execute(&format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE application_name = '{name}' AND pid <> pg_backend_pid();
                         DROP SCHEMA IF EXISTS {name} CASCADE"
                    ))
                    .await;
                drop(client);
                let _ = driver.await;
                result
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!(
                "test schema {} could not be dropped: {dropped:?}",
                self.name
            );
        }
    }
}
