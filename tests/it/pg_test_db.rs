//! The test helper for PostgreSQL: a database of a test's own that is there while the test
//! uses it and gone when the helper is dropped, even with a connection still open.

use crate::support::pg::{PgTestDb, database_exists};

#[tokio::test]
async fn a_test_database_is_usable_and_dropped_with_its_open_connections() {
    let db = PgTestDb::create().await;
    let name = db.name().to_owned();
    assert!(name.starts_with("ctct_t_"), "{name}");
    assert!(
        db.url().ends_with(&format!("/{name}")),
        "the URL names the database"
    );
    assert!(database_exists(&name).await);

    let client = db.connect().await;
    client
        .batch_execute("CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL)")
        .await
        .expect("a table can be created");
    client
        .execute(
            "INSERT INTO notes (id, body) VALUES ($1, $2), ($3, $4)",
            &[&1_i64, &"one", &2_i64, &"two"],
        )
        .await
        .expect("rows can be inserted");
    let rows = client
        .query("SELECT body FROM notes ORDER BY id", &[])
        .await
        .expect("rows can be read");
    let bodies: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(bodies, ["one", "two"]);
    let here: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(here, name, "the URL leads to the test's own database");

    // `client` stays open: the drop must end it (WITH (FORCE)) rather than fail.
    drop(db);
    assert!(
        !database_exists(&name).await,
        "{name} is dropped with the helper"
    );
    assert!(
        client.query_one("SELECT 1", &[]).await.is_err(),
        "the open connection was ended"
    );
}

#[tokio::test]
async fn two_test_databases_have_different_names() {
    let (a, b) = (PgTestDb::create().await, PgTestDb::create().await);
    assert_ne!(a.name(), b.name());
}
