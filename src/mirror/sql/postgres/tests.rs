//! What only the PostgreSQL engine has: its migration history, leases shared by processes on
//! the database's clock, and analysts reading the mirror schema as a role of their own.

use chrono::Utc;

use super::testing::{TEST_URL, TestSchema, unique_name};
use super::{PgMirrorDb, PgMirrorError, migrate};
use crate::mirror::sql::engine_tests::{at, fill_small, lease, new_run};
use crate::mirror::sql::{MirrorDb, MirrorDbError};
use crate::mirror::{Mode, Resource};
use crate::store::migrate::{Migration, POSTGRES_MIRROR};

type Outcome = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn migrating_creates_the_schema_applies_once_and_refuses_edited_or_newer_histories() -> Outcome
{
    let schema = TestSchema::new("mig");
    let db = PgMirrorDb::new(schema.pool.clone());
    let first = db.migrate().await?;
    assert_eq!(
        (first.from_version, first.to_version),
        (0, POSTGRES_MIRROR.len() as u32)
    );
    assert_eq!(
        first.applied,
        [
            "0001_mirror",
            "0002_reports",
            "0003_contacts_load",
            "0004_erasures",
            "0005_tags_segments",
            "0006_contacts_by_folded_email"
        ]
    );
    let second = db.migrate().await?;
    assert!(second.applied.is_empty(), "a second pass applies nothing");

    let mut edited = POSTGRES_MIRROR.to_vec();
    edited[0] = Migration {
        version: 1,
        name: "mirror",
        sql: "CREATE TABLE contacts (id text);",
    };
    let mut client = schema.pool.get().await?;
    match migrate::apply(&mut client, &edited).await {
        Err(PgMirrorError::MigrationChanged { version: 1, .. }) => {}
        other => panic!("an edited migration is refused, got {other:?}"),
    }
    client
        .execute(
            "INSERT INTO schema_migrations (version, name, sha256) VALUES (99, 'future', '')",
            &[],
        )
        .await?;
    match db.migrate().await {
        Err(PgMirrorError::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("a newer schema is refused, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn processes_migrating_at_once_migrate_once() -> Outcome {
    let schema = TestSchema::new("migrace");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let db = PgMirrorDb::new(schema.other_pool());
            tokio::spawn(async move { db.migrate().await })
        })
        .collect();
    let mut applied = 0;
    for handle in handles {
        applied += handle.await??.applied.len();
    }
    assert_eq!(
        applied,
        POSTGRES_MIRROR.len(),
        "one of them applied each migration"
    );
    Ok(())
}

#[tokio::test]
async fn a_lease_excludes_another_process_until_released_or_lapsed_on_the_database_clock() -> Outcome
{
    let schema = TestSchema::new("lease");
    let first = MirrorDb::postgres(PgMirrorDb::new(schema.pool.clone()));
    let second = MirrorDb::postgres(PgMirrorDb::new(schema.other_pool()));
    PgMirrorDb::new(schema.pool.clone()).migrate().await?;
    // The callers' clocks are years apart from the database's: only the lifetime counts.
    let (past, future) = (at(1, 0), Utc::now() + chrono::Duration::days(365));
    let ttl = chrono::Duration::minutes(30);
    let resource = Resource::Contacts;

    assert!(
        first
            .take_lease(lease(resource, "one", past + ttl), past)
            .await?
    );
    assert!(
        !second
            .take_lease(lease(resource, "two", future + ttl), future)
            .await?,
        "a lease taken with a clock in the past still holds for its lifetime"
    );
    first
        .renew_lease(lease(resource, "one", past + ttl))
        .await?;
    assert!(
        !second
            .take_lease(lease(resource, "two", future + ttl), future)
            .await?
    );
    let run_id = first.start_run(new_run(resource, Mode::Full, past)).await?;
    first
        .finish_run(
            run_id,
            crate::mirror::sql::engine_tests::succeeded(past),
            lease(resource, "one", past + ttl),
        )
        .await?;
    assert!(
        second
            .take_lease(lease(resource, "two", future), future)
            .await?,
        "released: the other process takes it (here with no lifetime at all)"
    );
    assert!(
        first
            .take_lease(lease(resource, "one", past + ttl), past)
            .await?,
        "a lease with no lifetime has lapsed by the next statement"
    );

    // Many takers at once on two pools: exactly one wins.
    let other = lease(Resource::Lists, "x", past + ttl);
    let takers: Vec<_> = (0..8)
        .map(|i| {
            let db = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let lease = crate::mirror::sql::cursor::Lease {
                owner: format!("owner{i}"),
                ..other.clone()
            };
            tokio::spawn(async move { db.take_lease(lease, past).await })
        })
        .collect();
    let mut won = 0;
    for taker in takers {
        won += usize::from(taker.await??);
    }
    assert_eq!(won, 1);
    Ok(())
}

#[tokio::test]
async fn an_error_names_what_postgresql_said_and_no_password() -> Outcome {
    let schema = TestSchema::new("err");
    let db = MirrorDb::postgres(PgMirrorDb::new(schema.pool.clone()));
    // Not migrated: the tables are missing.
    let error = db.pending_passes().await.expect_err("no tables yet");
    assert!(matches!(error, MirrorDbError::Postgres(_)));
    let text = error.to_string();
    assert!(
        text.contains("mirror_cursors") && text.contains("42P01"),
        "{text}"
    );
    Ok(())
}

/// The reporting queries of docs/mirror.md in PostgreSQL's dialect (docs/mirror.md,
/// "Reporting queries"; numbers 2 and 4 differ from SQLite's, see there).
const REPORTS: [&str; 6] = [
    "SELECT permission_to_send, count(*) AS contacts
     FROM contacts
     WHERE account = 'acme' AND deleted_at IS NULL
     GROUP BY permission_to_send
     ORDER BY contacts DESC, permission_to_send",
    "SELECT l.name, count(m.contact_id) AS members, l.membership_count AS api_count
     FROM contact_lists AS l
     LEFT JOIN contact_list_memberships AS m ON m.account = l.account AND m.list_id = l.list_id
     WHERE l.account = 'acme' AND l.deleted_at IS NULL
     GROUP BY l.account, l.list_id
     ORDER BY members DESC, l.name",
    "SELECT v.value AS color, count(*) AS contacts
     FROM contact_custom_field_values AS v
     JOIN custom_fields AS f ON f.account = v.account AND f.custom_field_id = v.custom_field_id
     JOIN contacts AS c ON c.account = v.account AND c.contact_id = v.contact_id
     WHERE v.account = 'acme' AND f.label = 'Color' AND c.deleted_at IS NULL
     GROUP BY v.value
     ORDER BY contacts DESC
     LIMIT 5",
    "SELECT c.name AS campaign, c.current_status AS status, a.subject,
            (SELECT count(DISTINCT m.contact_id)
             FROM jsonb_array_elements_text(a.contact_list_ids) AS l(value)
             JOIN contact_list_memberships AS m ON m.account = a.account AND m.list_id = l.value
             JOIN contacts AS k ON k.account = m.account AND k.contact_id = m.contact_id
             WHERE k.deleted_at IS NULL AND k.permission_to_send IN ('explicit', 'implicit'))
              AS reachable
     FROM campaigns AS c
     JOIN campaign_activities AS a
       ON a.account = c.account AND a.campaign_id = c.campaign_id AND a.role = 'primary_email'
     WHERE c.account = 'acme'
     ORDER BY c.updated_at DESC",
    "SELECT resource, mode, path, outcome, finished_at, pages, rows_upserted, rows_deleted,
            api_requests
     FROM mirror_runs
     WHERE id IN (SELECT max(id) FROM mirror_runs
                  WHERE account = 'acme' AND outcome <> 'skipped'
                  GROUP BY resource)
     ORDER BY resource",
    "SELECT to_char(created_at, 'YYYY-MM') AS month, count(*) AS new_contacts,
            count(*) FILTER (WHERE deleted_at IS NOT NULL) AS since_deleted
     FROM contacts WHERE account = 'acme' GROUP BY month ORDER BY month DESC",
];

/// Every row of `sql` as its columns' text, `|`-separated (NULL as empty).
async fn rows(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let wrapped = format!(
        "SELECT concat_ws('|', VARIADIC ARRAY(SELECT coalesce(value, '') FROM json_each_text(row_to_json(q)))) FROM ({sql}) AS q"
    );
    Ok(client
        .query(&wrapped, &[])
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect())
}

#[tokio::test]
async fn an_analyst_role_runs_the_reporting_queries_and_cannot_read_the_state_schema() -> Outcome {
    let mut schema = TestSchema::new("analyst");
    let role = unique_name("role");
    let state = format!("{}_state", schema.name);
    schema
        .cleanup
        .push(format!("DROP SCHEMA IF EXISTS {state} CASCADE"));
    schema
        .cleanup
        .push(format!("DROP OWNED BY {role}; DROP ROLE IF EXISTS {role}"));
    let pg = PgMirrorDb::new(schema.pool.clone());
    pg.migrate().await?;
    let db = MirrorDb::postgres(pg);
    fill_small(&db).await?;
    // A campaign whose e-mail goes to l1 and l2: c1 is reachable, c2 is deleted.
    let (run_id, held, pass) =
        crate::mirror::sql::engine_tests::begin(&db, Resource::Campaigns, Mode::Full, at(7, 0))
            .await?;
    let page = crate::mirror::sql::engine_tests::mark(run_id, &held, at(7, 0));
    let campaign = serde_json::from_value(serde_json::json!({
        "campaign_id": "k1", "name": "Spring", "current_status": "Done",
        "updated_at": "2026-01-07T00:00:00Z"
    }))?;
    let stale = db
        .write_campaigns(
            page.clone(),
            pass,
            vec![campaign],
            crate::mirror::sql::PageEnd::Last,
        )
        .await?;
    let activity = crate::mirror::sql::campaigns::FetchedActivity {
        activity: serde_json::from_value(serde_json::json!({
            "campaign_activity_id": "a1", "campaign_id": "k1", "role": "primary_email",
            "contact_list_ids": ["l1", "l2"], "subject": "Hello"
        }))?,
        scheduled_date: None,
    };
    db.write_campaign_details(page, "k1".into(), stale[0].1.clone(), vec![activity])
        .await?;
    db.finish_run(
        run_id,
        crate::mirror::sql::engine_tests::succeeded(at(7, 1)),
        held,
    )
    .await?;

    let admin = schema.pool.get().await?;
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {state};
             CREATE TABLE {state}.accounts (name text, refresh_token text);
             INSERT INTO {state}.accounts VALUES ('acme', 'secret');
             CREATE ROLE {role} LOGIN;
             GRANT USAGE ON SCHEMA {mirror} TO {role};
             GRANT SELECT ON ALL TABLES IN SCHEMA {mirror} TO {role};",
            mirror = schema.name
        ))
        .await?;

    // The analyst logs in as itself (trust authentication), with the mirror schema first.
    let mut config: tokio_postgres::Config = TEST_URL.parse()?;
    config
        .user(&role)
        .options(format!("-c search_path={}", schema.name))
        .application_name(&schema.name);
    let (analyst, connection) = config.connect(tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    assert_eq!(
        analyst
            .query_one("SELECT current_user::text", &[])
            .await?
            .get::<_, String>(0),
        role
    );

    let mut answers = Vec::new();
    for sql in REPORTS {
        answers.push(rows(&analyst, sql).await?);
    }
    assert_eq!(answers[0], ["explicit|1", "implicit|1"]);
    // As documented, the query counts every membership row, the deleted c2's on VIP too.
    assert_eq!(answers[1], ["VIP|2|2", "News|1|2"]);
    assert_eq!(answers[2], ["a|1"]);
    assert_eq!(answers[3], ["Spring|Done|Hello|1"]);
    let runs: Vec<String> = answers[4]
        .iter()
        .map(|r| r.split('|').take(4).collect::<Vec<_>>().join("|"))
        .collect();
    assert_eq!(
        runs,
        [
            "campaigns|full||succeeded",
            "contacts|full||succeeded",
            "custom_fields|full||succeeded",
            "lists|full||succeeded"
        ]
    );
    assert_eq!(answers[5], ["2025-12|3|1"]);
    assert_eq!(
        rows(&analyst, "SELECT count(*) FROM live_contacts_detailed").await?,
        ["2"]
    );
    assert_eq!(
        rows(&analyst, "SELECT count(*) FROM list_sizes").await?,
        ["2"]
    );

    let denied = analyst
        .query(&format!("SELECT refresh_token FROM {state}.accounts"), &[])
        .await
        .expect_err("the state schema is not the analyst's");
    assert_eq!(
        denied.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    let write = analyst
        .execute("DELETE FROM contacts", &[])
        .await
        .expect_err("the mirror is read-only to analysts");
    assert_eq!(
        write.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    drop(analyst);
    let _ = connection.await;
    Ok(())
}

#[tokio::test]
async fn the_look_up_by_email_searches_the_folded_address_index() -> Outcome {
    let schema = TestSchema::new("lookupplan");
    PgMirrorDb::new(schema.pool.clone()).migrate().await?;
    let client = schema.pool.get().await?;
    // Enough contacts of the account for the planner to prefer the index to the key's.
    client
        .batch_execute(
            "INSERT INTO contacts (account, contact_id, email_address, mirrored_at)
             SELECT 'acme', 'c' || i, 'user' || i || '@example.com', now()
             FROM generate_series(1, 5000) AS i;
             ANALYZE contacts",
        )
        .await?;
    let folded = vec!["user7@example.com".to_owned()];
    let plan: Vec<String> = client
        .query(
            &format!("EXPLAIN {}", super::lookup::LIVE_BY_FOLDED_EMAILS),
            &[&"acme", &folded],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.iter()
            .any(|l| l.contains("Index Scan using contacts_by_folded_email")),
        "{plan:#?}"
    );
    Ok(())
}
