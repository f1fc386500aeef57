//! Test support: a uniquely named schema on the local PostgreSQL (database `test`), pools
//! whose connections select it, and a guard that drops it (and whatever else a test
//! registered, such as a role) when the test ends, failed or not.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

/// The local test database (trust authentication).
pub(crate) const TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A name unique to this process and call, for a schema or a role (lowercase, < 63 bytes).
pub(crate) fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "ctct_t_{tag}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A pool on `url` whose connections have `search_path` set to `schema`.
pub(crate) fn pool(url: &str, schema: &str) -> Pool {
    let mut config = tokio_postgres::Config::from_str(url).expect("a valid test URL");
    config
        .options(format!("-c search_path={schema}"))
        .application_name(schema);
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(4)
        .build()
        .expect("a pool without timeouts needs no runtime")
}

/// A schema of its own for one test; dropped with everything in it when this is dropped, and
/// the `cleanup` statements run first.
pub(crate) struct TestSchema {
    pub name: String,
    pub pool: Pool,
    /// Statements to run (as `postgres`) before the schema is dropped.
    pub cleanup: Vec<String>,
}

impl TestSchema {
    pub fn new(tag: &str) -> Self {
        let name = unique_name(tag);
        let pool = pool(TEST_URL, &name);
        TestSchema {
            name,
            pool,
            cleanup: Vec::new(),
        }
    }

    /// Another pool on the same schema (as a second process would have).
    pub fn other_pool(&self) -> Pool {
        pool(TEST_URL, &self.name)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // The test's own sessions go first: this runs on the test's runtime thread, which then
        // cannot drive them (a transaction they leave open would hold its locks forever).
        let mut statements = vec![format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = '{}' AND pid <> pg_backend_pid()",
            self.name
        )];
        statements.append(&mut self.cleanup);
        statements.push(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its
        // own with a runtime of its own does the work, and is waited for.
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(TEST_URL, tokio_postgres::NoTls)
                    .await
                    .expect("the test database answers");
                let connection = tokio::spawn(connection);
                for statement in statements {
                    if let Err(e) = client.batch_execute(&statement).await {
                        eprintln!("test cleanup {statement:?} failed: {e}");
                    }
                }
                drop(client);
                let _ = connection.await;
            });
        })
        .join();
        if done.is_err() {
            eprintln!("test cleanup of schema {} panicked", self.name);
        }
    }
}
