//! The same test bodies run on both engines: each test asks [`engines`] for a `MirrorDb` on
//! SQLite (a store in a temporary directory) and on PostgreSQL (a schema of its own on the
//! local server, dropped at the end), and reads the tables back with portable SQL.

use chrono::{DateTime, TimeZone, Utc};

use super::campaigns::FetchedActivity;
use super::cursor::{Lease, Pass};
use super::postgres::testing::TestSchema;
use super::runs::{Finish, NewRun};
use super::{MirrorDb, PageEnd, PageMark, PgMirrorDb};
use crate::api::model::{ContactList, CustomField, EmailCampaign};
use crate::mirror::{ContactRow, Mode, Resource, RunOutcome, Trigger};
use crate::store::Store;

type Outcome = Result<(), Box<dyn std::error::Error>>;

/// One engine under test: its `MirrorDb` and what reads its tables back.
pub(crate) struct TestEngine {
    pub name: &'static str,
    pub db: MirrorDb,
    back: Back,
}

enum Back {
    Sqlite(Store, #[allow(dead_code)] tempfile::TempDir),
    Postgres(TestSchema),
}

/// A `MirrorDb` on each engine, migrated and empty.
pub(crate) async fn engines(tag: &str) -> Vec<TestEngine> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (store, _) = Store::open_mirror(&dir.path().join("mirror.db")).expect("a new mirror");
    let schema = TestSchema::new(tag);
    let pg = PgMirrorDb::new(schema.pool.clone());
    pg.migrate().await.expect("the mirror schema migrates");
    vec![
        TestEngine {
            name: "sqlite",
            db: MirrorDb::new(store.clone()),
            back: Back::Sqlite(store, dir),
        },
        TestEngine {
            name: "postgres",
            db: MirrorDb::postgres(pg),
            back: Back::Postgres(schema),
        },
    ]
}

impl TestEngine {
    /// The first column of every row of `sql` as text (SQLite's or PostgreSQL's spelling).
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        match &self.back {
            Back::Sqlite(store, _) => {
                let owned = sql.to_owned();
                store
                    .call(move |conn| {
                        let mut stmt = conn.prepare(&owned)?;
                        let rows = stmt
                            .query_map([], |r| r.get::<_, String>(0))?
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(rows)
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{sql} on SQLite: {e}"))
            }
            Back::Postgres(schema) => {
                let client = schema.pool.get().await.expect("a connection");
                client
                    .query(sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{sql} on PostgreSQL: {e}"))
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect()
            }
        }
    }

    /// The single integer `sql` returns.
    pub async fn count(&self, sql: &str) -> i64 {
        match &self.back {
            Back::Sqlite(store, _) => {
                let owned = sql.to_owned();
                store
                    .call(move |conn| Ok(conn.query_row(&owned, [], |r| r.get::<_, i64>(0))?))
                    .await
                    .unwrap_or_else(|e| panic!("{sql} on SQLite: {e}"))
            }
            Back::Postgres(schema) => {
                let client = schema.pool.get().await.expect("a connection");
                client
                    .query_one(sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{sql} on PostgreSQL: {e}"))
                    .get(0)
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.back, Back::Postgres(_))
    }
}

pub(crate) fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0).unwrap()
}

pub(crate) fn lease(resource: Resource, owner: &str, until: DateTime<Utc>) -> Lease {
    Lease {
        account: "acme".into(),
        resource,
        owner: owner.into(),
        until,
    }
}

pub(crate) fn new_run(resource: Resource, mode: Mode, now: DateTime<Utc>) -> NewRun {
    NewRun {
        account: "acme".into(),
        resource,
        mode,
        trigger: Trigger::Cli,
        started_at: now,
    }
}

pub(crate) fn mark(run_id: i64, lease: &Lease, now: DateTime<Utc>) -> PageMark {
    PageMark {
        account: "acme".into(),
        run_id,
        requests: 1,
        now,
        lease: lease.clone(),
    }
}

pub(crate) fn succeeded(now: DateTime<Utc>) -> Finish {
    Finish {
        outcome: RunOutcome::Succeeded,
        error: None,
        resets_at: None,
        api_requests: 2,
        finished_at: now,
    }
}

pub(crate) fn contact(id: &str) -> ContactRow {
    ContactRow {
        contact_id: id.into(),
        email_address: Some(format!("{id}@example.com")),
        permission_to_send: Some("implicit".into()),
        confirm_status: None,
        opt_in_source: None,
        opt_in_date: None,
        opt_out_source: None,
        opt_out_date: None,
        opt_out_reason: None,
        first_name: Some("Ann".into()),
        last_name: None,
        job_title: None,
        company_name: None,
        birthday_month: Some(4),
        birthday_day: None,
        anniversary: None,
        create_source: Some("Account".into()),
        update_source: None,
        created_at: Some("2025-12-01T10:00:00Z".into()),
        updated_at: Some("2025-12-02T10:00:00.5Z".into()),
        deleted_at: None,
        custom_fields: Vec::new(),
        list_ids: Vec::new(),
        tag_ids: None,
    }
}

pub(crate) fn list(id: &str, name: &str, deleted: bool) -> ContactList {
    let mut json = serde_json::json!({"list_id": id, "name": name, "membership_count": 2});
    if deleted {
        json["deleted_at"] = "2026-01-01T00:00:00Z".into();
    }
    serde_json::from_value(json).expect("a list")
}

pub(crate) fn field(id: &str, label: &str) -> CustomField {
    serde_json::from_value(serde_json::json!({
        "custom_field_id": id, "label": label, "name": label.to_lowercase(), "type": "string"
    }))
    .expect("a custom field")
}

/// Takes the lease and starts a run of `resource`; returns the run's id, its lease and pass.
pub(crate) async fn begin(
    db: &MirrorDb,
    resource: Resource,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<(i64, Lease, Pass), Box<dyn std::error::Error>> {
    let lease = lease(resource, "me", now + chrono::Duration::minutes(30));
    assert!(db.take_lease(lease.clone(), now).await?);
    let run_id = db.start_run(new_run(resource, mode, now)).await?;
    Ok((run_id, lease, Pass::new(run_id, mode, now)))
}

#[tokio::test]
async fn a_run_goes_through_the_typed_methods_from_lease_to_last_success() -> Outcome {
    for engine in engines("run").await {
        let (db, name) = (&engine.db, engine.name);
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let ttl = chrono::Duration::minutes(30);
        let held = |owner: &str| lease(Resource::CustomFields, owner, now + ttl);

        assert!(db.take_lease(held("a"), now).await?, "{name}");
        assert!(
            !db.take_lease(held("b"), now).await?,
            "{name}: another owner waits while the lease holds"
        );
        let new = new_run(Resource::CustomFields, Mode::Full, now);
        let run_id = db.start_run(new.clone()).await?;
        db.describe_run(run_id, Mode::Full, None, None).await?;
        let pass = Pass::new(run_id, Mode::Full, now);
        let page = mark(run_id, &held("a"), now);
        let tier = field("f1", "Tier");
        db.write_catalog(
            page.clone(),
            pass.clone(),
            vec![tier.clone()],
            PageEnd::More,
        )
        .await?;
        assert_eq!(
            db.pending_passes().await?,
            vec![("acme".to_owned(), Resource::CustomFields, Mode::Full)],
            "{name}"
        );
        assert_eq!(
            db.load_cursor("acme", Resource::CustomFields).await?.pass,
            Some(pass.clone()),
            "{name}: the pass's position reads back as saved"
        );
        db.write_catalog(page, pass, vec![tier], PageEnd::Last)
            .await?;
        assert!(
            db.pending_passes().await?.is_empty(),
            "{name}: the last page completes the pass"
        );
        let figures = db.finish_run(run_id, succeeded(now), held("a")).await?;
        assert_eq!((figures.pages, figures.rows_upserted), (2, 2), "{name}");
        assert_eq!(figures.api_requests, 2, "{name}");
        assert!(
            db.take_lease(held("b"), now).await?,
            "{name}: finishing gives the lease back"
        );
        let last = db.last_successes().await?;
        assert_eq!(last.len(), 1, "{name}");
        assert_eq!(
            (
                last[0].resource.as_str(),
                last[0].mode.as_str(),
                last[0].finished_at
            ),
            ("custom_fields", "full", now),
            "{name}"
        );
        assert!(db.record_skipped(new).await? > run_id, "{name}");
        assert_eq!(
            engine
                .texts("SELECT outcome FROM mirror_runs ORDER BY id")
                .await,
            vec!["succeeded", "skipped"],
            "{name}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_starting_run_marks_the_runs_a_stopped_process_left_running_interrupted() -> Outcome {
    for engine in engines("intr").await {
        let db = &engine.db;
        let first = db
            .start_run(new_run(Resource::Lists, Mode::Full, at(1, 1)))
            .await?;
        let second = db
            .start_run(new_run(Resource::Lists, Mode::Full, at(1, 2)))
            .await?;
        assert!(second > first);
        assert_eq!(
            engine
                .texts("SELECT outcome || ':' || error FROM mirror_runs WHERE outcome <> 'running'")
                .await,
            vec!["interrupted:the process stopped during the run"],
            "{}",
            engine.name
        );
    }
    Ok(())
}

/// 5,000 contacts, each with two values and two lists.
fn big_page() -> Vec<ContactRow> {
    (0..5000)
        .map(|i| ContactRow {
            custom_fields: vec![
                ("f1".into(), format!("v{i}")),
                ("f2".into(), format!("w{i}")),
            ],
            list_ids: vec!["l1".into(), format!("l{}", 2 + i % 3)],
            ..contact(&format!("c{i:05}"))
        })
        .collect()
}

#[tokio::test]
async fn a_page_of_5000_contacts_is_written_rewritten_and_its_unseen_contacts_removed() -> Outcome {
    for engine in engines("big").await {
        let (db, name) = (&engine.db, engine.name);
        // A first pass (held until its end on SQLite) writes them.
        let (first, lease, pass) = begin(db, Resource::Contacts, Mode::Full, at(1, 0)).await?;
        let written = db
            .write_contacts(
                mark(first, &lease, at(1, 0)),
                pass,
                big_page(),
                1,
                PageEnd::Last,
            )
            .await?;
        assert_eq!((written.upserted, written.deleted), (5000, 0), "{name}");
        db.finish_run(first, succeeded(at(1, 1)), lease).await?;
        // A second full pass rewrites them page by page.
        let (run_id, lease, mut pass) = begin(db, Resource::Contacts, Mode::Full, at(2, 0)).await?;
        assert_eq!(
            engine.count("SELECT count(*) FROM contacts").await,
            5000,
            "{name}"
        );
        assert_eq!(
            engine
                .count("SELECT count(*) FROM contact_custom_field_values")
                .await,
            10_000,
            "{name}"
        );
        assert_eq!(
            engine
                .count("SELECT count(*) FROM contact_list_memberships")
                .await,
            10_000,
            "{name}"
        );

        // The same contacts again: even ones lose f2, change f1 and move to l9; every tenth
        // is deleted now.
        let changed: Vec<ContactRow> = big_page()
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                let mut row = row;
                if i % 2 == 0 {
                    row.custom_fields = vec![("f1".into(), format!("x{i}"))];
                    row.list_ids = vec!["l9".into()];
                }
                if i % 10 == 0 {
                    row.deleted_at = Some("2026-01-02".into());
                }
                row
            })
            .collect();
        pass.rows_done = 5000;
        let written = db
            .write_contacts(
                mark(run_id, &lease, at(2, 1)),
                pass.clone(),
                changed.clone(),
                1,
                PageEnd::More,
            )
            .await?;
        assert_eq!((written.upserted, written.deleted), (5000, 500), "{name}");
        assert_eq!(
            engine
                .count("SELECT count(*) FROM contact_custom_field_values")
                .await,
            7500,
            "{name}: the values a contact no longer has are gone"
        );
        assert_eq!(
            engine
                .texts(
                    "SELECT custom_field_id || '=' || value FROM contact_custom_field_values
                     WHERE contact_id = 'c00002' ORDER BY 1"
                )
                .await,
            vec!["f1=x2"],
            "{name}"
        );
        assert_eq!(
            engine
                .texts(
                    "SELECT list_id FROM contact_list_memberships
                     WHERE contact_id IN ('c00002', 'c00003') ORDER BY contact_id, list_id"
                )
                .await,
            vec!["l9", "l1", "l2"],
            "{name}"
        );
        assert_eq!(
            engine.count("SELECT count(*) FROM live_contacts").await,
            4500,
            "{name}"
        );
        let again = db
            .write_contacts(
                mark(run_id, &lease, at(2, 2)),
                pass.clone(),
                changed,
                1,
                PageEnd::Last,
            )
            .await?;
        assert_eq!(again.deleted, 0, "{name}: a deletion counts once");
        db.finish_run(run_id, succeeded(at(2, 3)), lease.clone())
            .await?;

        // A full pass that sees only the first 4,000 removes the other 1,000 and what
        // hangs on them.
        let (run_id, lease, pass) = begin(db, Resource::Contacts, Mode::Full, at(3, 0)).await?;
        let seen: Vec<ContactRow> = big_page().into_iter().take(4000).collect();
        let written = db
            .write_contacts(mark(run_id, &lease, at(3, 0)), pass, seen, 1, PageEnd::Last)
            .await?;
        assert_eq!((written.upserted, written.deleted), (4000, 1000), "{name}");
        assert_eq!(
            engine.count("SELECT count(*) FROM contacts").await,
            4000,
            "{name}"
        );
        for table in ["contact_custom_field_values", "contact_list_memberships"] {
            assert_eq!(
                engine
                    .count(&format!(
                        "SELECT count(*) FROM {table} WHERE contact_id >= 'c04000'"
                    ))
                    .await,
                0,
                "{name}: {table}"
            );
        }
        let cursor = db.load_cursor("acme", Resource::Contacts).await?;
        assert_eq!(cursor.pass, None, "{name}");
        assert_eq!(
            cursor.updated_after,
            Some(at(3, 0)),
            "{name}: the high-water mark moved"
        );
        db.finish_run(run_id, succeeded(at(3, 1)), lease).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_first_full_pass_holds_its_pages_and_moves_them_in_at_its_end_the_last_copy_winning()
-> Outcome {
    // What the move drops and puts back: indexes (and PostgreSQL's foreign keys).
    const SQLITE_SCHEMA: &str = "SELECT name || ':' || sql FROM sqlite_schema
        WHERE type = 'index' AND sql IS NOT NULL ORDER BY 1";
    const PG_SCHEMA: &str = "SELECT indexname || ':' || indexdef FROM pg_indexes
        WHERE schemaname = current_schema()
        UNION ALL SELECT conname || ':' || pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = current_schema()::regnamespace ORDER BY 1";
    for engine in engines("held").await {
        let (db, name) = (&engine.db, engine.name);
        let schema = if engine.is_postgres() {
            PG_SCHEMA
        } else {
            SQLITE_SCHEMA
        };
        let schema_before = engine.texts(schema).await;
        assert!(
            schema_before
                .iter()
                .any(|s| s.starts_with("contacts_by_email")),
            "{name}: {schema_before:?}"
        );
        let (run_id, lease, mut pass) = begin(db, Resource::Contacts, Mode::Full, at(5, 0)).await?;
        db.write_contacts(
            mark(run_id, &lease, at(5, 0)),
            pass.clone(),
            big_page(),
            1,
            PageEnd::More,
        )
        .await?;
        assert_eq!(
            engine.count("SELECT count(*) FROM contacts").await,
            0,
            "{name}: held until the pass ends"
        );
        assert_eq!(
            engine.count("SELECT count(*) FROM contacts_load").await,
            5000,
            "{name}"
        );
        // The pass reads c00001 again (read again from its start, say), changed since.
        let again = ContactRow {
            first_name: Some("Cy".into()),
            custom_fields: vec![("f3".into(), "z".into())],
            list_ids: vec!["l7".into()],
            ..contact("c00001")
        };
        pass.rows_done = 5000;
        let written = db
            .write_contacts(
                mark(run_id, &lease, at(5, 1)),
                pass,
                vec![again, contact("c09999")],
                1,
                PageEnd::Last,
            )
            .await?;
        assert_eq!((written.upserted, written.deleted), (2, 0), "{name}");
        assert_eq!(
            engine.count("SELECT count(*) FROM contacts").await,
            5001,
            "{name}"
        );
        for table in ["contact_custom_field_values", "contact_list_memberships"] {
            assert_eq!(
                engine.count(&format!("SELECT count(*) FROM {table}")).await,
                9999,
                "{name}: {table}, c00001's first copy replaced by its second"
            );
        }
        assert_eq!(
            engine
                .texts(
                    "SELECT first_name FROM contacts WHERE contact_id = 'c00001'
                     UNION ALL SELECT custom_field_id || '=' || value
                     FROM contact_custom_field_values WHERE contact_id = 'c00001'
                     UNION ALL SELECT list_id FROM contact_list_memberships
                     WHERE contact_id = 'c00001'"
                )
                .await,
            vec!["Cy", "f3=z", "l7"],
            "{name}: the copy read last wins"
        );
        assert_eq!(
            engine
                .count(&format!(
                    "SELECT count(*) FROM contacts WHERE seen_run IS NULL OR seen_run <> {run_id}"
                ))
                .await,
            0,
            "{name}"
        );
        assert_eq!(
            engine.count("SELECT count(*) FROM contacts_load").await,
            0,
            "{name}"
        );
        assert_eq!(
            engine.texts(schema).await,
            schema_before,
            "{name}: what the move dropped is back as the migrations made it"
        );
        let cursor = db.load_cursor("acme", Resource::Contacts).await?;
        assert_eq!(cursor.pass, None, "{name}: the pass completed");
        db.finish_run(run_id, succeeded(at(5, 2)), lease).await?;
    }
    Ok(())
}

#[tokio::test]
async fn held_rows_move_into_an_account_that_has_contacts_by_then_through_the_page_merge() -> Outcome
{
    // Only a store copy of a pass in progress can bring this about (the held pass is the only
    // writer of its account's contacts): rows held while the account had no contact, moved
    // after some other write gave it one.
    for engine in engines("heldmerge").await {
        let (db, name) = (&engine.db, engine.name);
        let (run_id, lease, mut pass) = begin(db, Resource::Contacts, Mode::Full, at(9, 0)).await?;
        db.write_contacts(
            mark(run_id, &lease, at(9, 0)),
            pass.clone(),
            big_page(),
            1,
            PageEnd::More,
        )
        .await?;
        let other = Pass::new(run_id, Mode::Incremental, at(9, 0));
        db.write_contacts(
            mark(run_id, &lease, at(9, 0)),
            other,
            // c00007 exactly as the pass holds it (unchanged when the held rows are merged).
            vec![
                contact("x-not-in-the-pass"),
                contact("c00003"),
                big_page().swap_remove(7),
            ],
            1,
            PageEnd::More,
        )
        .await?;
        pass.rows_done = 5000;
        // The last page reads c00003 as the mirror holds it (unchanged there); its held copy
        // is merged after the page all the same, whatever else is unchanged beside it.
        let written = db
            .write_contacts(
                mark(run_id, &lease, at(9, 1)),
                pass,
                vec![contact("c09999"), contact("c00003")],
                1,
                PageEnd::Last,
            )
            .await?;
        assert_eq!((written.upserted, written.deleted), (2, 1), "{name}");
        assert_eq!(
            engine.count("SELECT count(*) FROM contacts").await,
            5001,
            "{name}: the held 5,000 and the last page; the contact the pass did not see is gone"
        );
        assert_eq!(
            engine
                .count("SELECT count(*) FROM contact_custom_field_values")
                .await,
            10_000,
            "{name}: c00003's held values replaced the ones written meanwhile"
        );
        assert_eq!(
            engine.count("SELECT count(*) FROM contacts_load").await,
            0,
            "{name}"
        );
        db.finish_run(run_id, succeeded(at(9, 2)), lease).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_full_pass_leaves_unchanged_contacts_as_they_were_and_keeps_them() -> Outcome {
    for engine in engines("same").await {
        let (db, name) = (&engine.db, engine.name);
        // c00004, c00005 and c00008 come with their tags (t1), the others without.
        let tagged = || {
            let mut page = big_page();
            page[4].tag_ids = Some(vec!["t1".into()]);
            page[5].tag_ids = Some(vec!["t1".into()]);
            page[8].tag_ids = Some(vec!["t1".into()]);
            page
        };
        let (first, lease, pass) = begin(db, Resource::Contacts, Mode::Full, at(6, 0)).await?;
        db.write_contacts(
            mark(first, &lease, at(6, 0)),
            pass,
            tagged(),
            1,
            PageEnd::Last,
        )
        .await?;
        db.finish_run(first, succeeded(at(6, 1)), lease).await?;

        // The next night: c00001 renamed, c00002 joined a list, c00003's f1 changed, c00004
        // read without its tags (kept), c00005 tagged t2 instead, c00006 left its lists,
        // c00007 without f2, the rest as they were; read in two pages.
        let mut page = tagged();
        page[1].first_name = Some("Di".into());
        page[2].list_ids.push("l8".into());
        page[3].custom_fields[0].1 = "changed".into();
        page[4].tag_ids = None;
        page[5].tag_ids = Some(vec!["t2".into()]);
        page[6].list_ids.clear();
        page[7].custom_fields.pop();
        let (second, lease, mut pass) = begin(db, Resource::Contacts, Mode::Full, at(7, 0)).await?;
        let rest = page.split_off(2500);
        db.write_contacts(
            mark(second, &lease, at(7, 0)),
            pass.clone(),
            page,
            1,
            PageEnd::More,
        )
        .await?;
        pass.rows_done = 2500;
        let written = db
            .write_contacts(mark(second, &lease, at(7, 0)), pass, rest, 1, PageEnd::Last)
            .await?;
        assert_eq!((written.upserted, written.deleted), (2500, 0), "{name}");
        db.finish_run(second, succeeded(at(7, 1)), lease).await?;
        assert_eq!(
            engine
                .texts(&format!(
                    "SELECT contact_id FROM contacts WHERE seen_run = {second} ORDER BY 1"
                ))
                .await,
            vec!["c00001", "c00002", "c00003", "c00005", "c00006", "c00007"],
            "{name}: only the changed contacts were written"
        );
        assert_eq!(
            engine
                .count(&format!(
                    "SELECT count(*) FROM contacts WHERE seen_run = {first}"
                ))
                .await,
            4994,
            "{name}: the unchanged ones kept their row as it was"
        );
        assert_eq!(
            engine
                .texts(
                    "SELECT contact_id || ' ' || custom_field_id FROM contact_custom_field_values
                     WHERE contact_id = 'c00007'
                     UNION ALL SELECT contact_id || ' ' || list_id FROM contact_list_memberships
                     WHERE contact_id = 'c00006'"
                )
                .await,
            vec!["c00007 f1"],
            "{name}: a value and lists the source no longer says are gone"
        );
        assert_eq!(
            engine
                .texts("SELECT contact_id || ' ' || tag_id FROM contact_taggings ORDER BY 1")
                .await,
            vec!["c00004 t1", "c00005 t2", "c00008 t1"],
            "{name}: tags the source did not say are kept, and those it said again"
        );
        assert_eq!(
            engine
                .texts(
                    "SELECT custom_field_id || ' ' || value FROM contact_custom_field_values
                     WHERE contact_id = 'c00003' ORDER BY 1"
                )
                .await,
            vec!["f1 changed", "f2 w3"],
            "{name}"
        );
        assert_eq!(
            engine
                .texts("SELECT first_name FROM contacts WHERE contact_id = 'c00001'")
                .await,
            vec!["Di"],
            "{name}"
        );
        assert_eq!(
            engine.count("SELECT count(*) FROM contacts").await,
            5000,
            "{name}: and stay in the mirror"
        );
        assert_eq!(
            engine
                .texts(
                    "SELECT list_id FROM contact_list_memberships
                     WHERE contact_id = 'c00002' ORDER BY list_id"
                )
                .await,
            vec!["l1", "l4", "l8"],
            "{name}"
        );
        assert_eq!(
            engine.count("SELECT count(*) FROM contacts_seen").await,
            0,
            "{name}: the pass's notes are gone with it"
        );

        // A third night sees all but the last ten, c00001 under its first name again.
        let seen: Vec<ContactRow> = big_page().into_iter().take(4990).collect();
        let (third, lease, pass) = begin(db, Resource::Contacts, Mode::Full, at(8, 0)).await?;
        let written = db
            .write_contacts(mark(third, &lease, at(8, 0)), pass, seen, 1, PageEnd::Last)
            .await?;
        assert_eq!((written.upserted, written.deleted), (4990, 10), "{name}");
        assert_eq!(
            engine.count("SELECT count(*) FROM contacts").await,
            4990,
            "{name}"
        );
        assert_eq!(
            engine
                .texts("SELECT first_name FROM contacts WHERE contact_id = 'c00001'")
                .await,
            vec!["Ann"],
            "{name}"
        );
        db.finish_run(third, succeeded(at(8, 1)), lease).await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_incremental_page_keeps_the_full_pass_that_last_saw_a_contact() -> Outcome {
    for engine in engines("incr").await {
        let db = &engine.db;
        let (run_id, lease, pass) = begin(db, Resource::Contacts, Mode::Full, at(4, 0)).await?;
        db.write_contacts(
            mark(run_id, &lease, at(4, 0)),
            pass,
            vec![contact("a")],
            1,
            PageEnd::Last,
        )
        .await?;
        let (later, lease2, pass2) =
            begin(db, Resource::Contacts, Mode::Incremental, at(4, 1)).await?;
        let renamed = ContactRow {
            first_name: Some("Bea".into()),
            ..contact("a")
        };
        db.write_contacts(
            mark(later, &lease2, at(4, 1)),
            pass2,
            vec![renamed],
            1,
            PageEnd::Last,
        )
        .await?;
        assert_eq!(
            engine
                .texts("SELECT first_name FROM contacts WHERE contact_id = 'a'")
                .await,
            vec!["Bea"]
        );
        assert_eq!(
            engine
                .count("SELECT seen_run FROM contacts WHERE contact_id = 'a'")
                .await,
            run_id,
            "{}",
            engine.name
        );
    }
    Ok(())
}

#[tokio::test]
async fn campaigns_are_listed_their_details_written_once_and_unlisted_ones_removed() -> Outcome {
    for engine in engines("camp").await {
        let (db, name) = (&engine.db, engine.name);
        let campaign = |id: &str, status: &str| -> EmailCampaign {
            serde_json::from_value(serde_json::json!({
                "campaign_id": id, "name": format!("Campaign {id}"), "current_status": status,
                "updated_at": "2026-01-01T10:00:00.123456789Z"
            }))
            .expect("a campaign")
        };
        let activity: FetchedActivity = FetchedActivity {
            activity: serde_json::from_value(serde_json::json!({
                "campaign_activity_id": "a1", "campaign_id": "k1", "role": "primary_email",
                "contact_list_ids": ["l2", "l1"], "subject": "Hello"
            }))?,
            scheduled_date: Some("2026-02-01T09:00:00Z".into()),
        };
        let (run_id, lease, pass) = begin(db, Resource::Campaigns, Mode::Full, at(5, 0)).await?;
        let page = mark(run_id, &lease, at(5, 0));
        let stale = db
            .write_campaigns(
                page.clone(),
                pass.clone(),
                vec![campaign("k1", "Done"), campaign("k2", "Draft")],
                PageEnd::More,
            )
            .await?;
        assert_eq!(stale.len(), 2, "{name}: new campaigns need their details");
        for (id, updated_at) in stale {
            let activities = if id == "k1" {
                vec![activity.clone()]
            } else {
                Vec::new()
            };
            db.write_campaign_details(page.clone(), id, updated_at, activities)
                .await?;
        }
        db.write_campaigns(page, pass, Vec::new(), PageEnd::Last)
            .await?;
        db.finish_run(run_id, succeeded(at(5, 1)), lease).await?;
        let (run_id, lease, pass) = begin(db, Resource::Campaigns, Mode::Full, at(5, 2)).await?;
        let again = db
            .write_campaigns(
                mark(run_id, &lease, at(5, 2)),
                pass,
                vec![campaign("k1", "Done")],
                PageEnd::Last,
            )
            .await?;
        assert!(
            again.is_empty(),
            "{name}: details already current are not fetched again"
        );
        assert_eq!(
            engine.texts("SELECT campaign_id FROM campaigns").await,
            vec!["k1"],
            "{name}: the campaign no longer listed is removed"
        );
        assert_eq!(
            engine
                .count("SELECT count(*) FROM campaign_activities WHERE subject = 'Hello'")
                .await,
            1,
            "{name}"
        );
        let lists = if engine.is_postgres() {
            "SELECT contact_list_ids::text FROM campaign_activities"
        } else {
            "SELECT contact_list_ids FROM campaign_activities"
        };
        let lists: serde_json::Value = serde_json::from_str(&engine.texts(lists).await[0])?;
        assert_eq!(lists, serde_json::json!(["l1", "l2"]), "{name}");
        db.finish_run(run_id, succeeded(at(5, 3)), lease).await?;
    }
    Ok(())
}

/// Lists l1, l2 and a deleted l3; field f1; contacts c1 (live, l1 and l2, f1 = a), c2
/// (deleted, was on l1), c3 (live, nothing).
pub(crate) async fn fill_small(db: &MirrorDb) -> Result<(), Box<dyn std::error::Error>> {
    let (run_id, lease, pass) = begin(db, Resource::Lists, Mode::Full, at(6, 0)).await?;
    let lists = vec![
        list("l1", "VIP", false),
        list("l2", "News", false),
        list("l3", "Old", true),
    ];
    db.write_catalog(mark(run_id, &lease, at(6, 0)), pass, lists, PageEnd::More)
        .await?;
    db.finish_run(run_id, succeeded(at(6, 0)), lease).await?;
    let (run_id, lease, pass) = begin(db, Resource::CustomFields, Mode::Full, at(6, 1)).await?;
    db.write_catalog(
        mark(run_id, &lease, at(6, 1)),
        pass,
        vec![field("f1", "Color")],
        PageEnd::Last,
    )
    .await?;
    db.finish_run(run_id, succeeded(at(6, 1)), lease).await?;
    let (run_id, lease, pass) = begin(db, Resource::Contacts, Mode::Full, at(6, 2)).await?;
    let rows = vec![
        ContactRow {
            custom_fields: vec![("f1".into(), "a".into())],
            list_ids: vec!["l1".into(), "l2".into()],
            ..contact("c1")
        },
        ContactRow {
            list_ids: vec!["l1".into()],
            deleted_at: Some("2026-01-05".into()),
            permission_to_send: Some("unsubscribed".into()),
            ..contact("c2")
        },
        ContactRow {
            permission_to_send: Some("explicit".into()),
            ..contact("c3")
        },
    ];
    db.write_contacts(mark(run_id, &lease, at(6, 2)), pass, rows, 1, PageEnd::Last)
        .await?;
    db.finish_run(run_id, succeeded(at(6, 3)), lease).await?;
    Ok(())
}

#[tokio::test]
async fn the_analysts_views_show_live_contacts_with_lists_and_values_and_list_sizes() -> Outcome {
    for engine in engines("views").await {
        let name = engine.name;
        fill_small(&engine.db).await?;
        let sql = if engine.is_postgres() {
            "SELECT contact_id || ' ' || lists::text || ' ' || custom_fields::text
             FROM live_contacts_detailed ORDER BY contact_id"
        } else {
            "SELECT contact_id || ' ' || lists || ' ' || custom_fields
             FROM live_contacts_detailed ORDER BY contact_id"
        };
        let rows: Vec<(String, serde_json::Value, serde_json::Value)> = engine
            .texts(sql)
            .await
            .iter()
            .map(|row| {
                let mut parts = row.splitn(2, ' ');
                let id = parts.next().unwrap_or_default().to_owned();
                let rest = parts.next().unwrap_or_default();
                // `[…] {…}`: the array ends at the first "] ".
                let split = rest.find("] ").expect("lists then values") + 1;
                (
                    id,
                    serde_json::from_str(&rest[..split]).expect("lists JSON"),
                    serde_json::from_str(rest[split..].trim()).expect("values JSON"),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (
                    "c1".into(),
                    serde_json::json!(["l1", "l2"]),
                    serde_json::json!({"f1": "a"})
                ),
                ("c3".into(), serde_json::json!([]), serde_json::json!({})),
            ],
            "{name}"
        );
        assert_eq!(
            engine
                .texts(
                    "SELECT list_id || '=' || name || '=' || live_contacts FROM list_sizes
                     WHERE account = 'acme' ORDER BY list_id"
                )
                .await,
            vec!["l1=VIP=1", "l2=News=1"],
            "{name}: deleted contacts and deleted lists are not counted"
        );
    }
    Ok(())
}

#[tokio::test]
async fn live_contacts_are_found_by_address_in_any_ascii_case_and_deleted_erased_or_doubled_ones_not()
-> Outcome {
    for engine in engines("lookup").await {
        let (db, name) = (&engine.db, engine.name);
        let with = |id: &str, email: &str| ContactRow {
            email_address: Some(email.into()),
            ..contact(id)
        };
        let (run_id, held, pass) = begin(db, Resource::Contacts, Mode::Full, at(7, 0)).await?;
        let rows = vec![
            with("c1", "Ann@Example.com"),
            ContactRow {
                deleted_at: Some("2026-01-05".into()),
                ..with("c2", "bob@example.com")
            },
            with("c3", "cy@example.com"),
            with("c4", "dup@example.com"),
            with("c5", "DUP@example.com"),
            with("c6", "zoë@example.com"),
            ContactRow {
                email_address: None,
                ..contact("c7")
            },
        ];
        db.write_contacts(mark(run_id, &held, at(7, 0)), pass, rows, 1, PageEnd::Last)
            .await?;
        db.finish_run(run_id, succeeded(at(7, 1)), held).await?;
        db.erase_contact("acme", "c3", "erase-1", at(7, 2)).await?;
        // Another account's contact with the same address is not acme's.
        let beta = Lease {
            account: "beta".into(),
            ..lease(Resource::Contacts, "me", at(7, 4))
        };
        assert!(db.take_lease(beta.clone(), at(7, 3)).await?, "{name}");
        let run_id = db
            .start_run(NewRun {
                account: "beta".into(),
                ..new_run(Resource::Contacts, Mode::Full, at(7, 3))
            })
            .await?;
        let page = PageMark {
            account: "beta".into(),
            ..mark(run_id, &beta, at(7, 3))
        };
        let pass = Pass::new(run_id, Mode::Full, at(7, 3));
        let rows = vec![with("b1", "nobody@example.com")];
        db.write_contacts(page, pass, rows, 1, PageEnd::Last)
            .await?;

        let asked = [
            "ANN@example.com",
            "bob@example.com",
            "cy@example.com",
            "dup@example.com",
            "nobody@example.com",
            "ann@EXAMPLE.COM",
            "zoë@EXAMPLE.COM",
            "ZOË@example.com",
        ];
        let found = db
            .live_contact_ids_by_email("acme", asked.map(String::from).to_vec())
            .await?;
        let c = |id: &str| Some(id.to_owned());
        assert_eq!(
            found,
            [c("c1"), None, None, None, None, c("c1"), c("c6"), None],
            "{name}: live ones only, ASCII case folded (Ë is not folded to ë)"
        );
        assert!(
            db.live_contact_ids_by_email("acme", Vec::new())
                .await?
                .is_empty(),
            "{name}"
        );
    }
    Ok(())
}

#[test]
fn the_sqlite_mirror_schema_applies_with_its_views_and_keys() -> Outcome {
    let mut conn = rusqlite::Connection::open_in_memory()?;
    crate::store::migrate::migrate_mirror(&mut conn)?;
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    let views: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'view' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    assert_eq!(
        views,
        [
            "campaign_report_rates",
            "contact_engagement",
            "link_click_ranking",
            "list_sizes",
            "live_contacts",
            "live_contacts_detailed",
            "tag_sizes"
        ]
    );
    let orphan = conn.execute(
        "INSERT INTO campaign_activities (account, campaign_activity_id, campaign_id, mirrored_at)
         VALUES ('acme', 'a1', 'nowhere', 'now')",
        [],
    );
    assert!(orphan.is_err(), "an activity needs its campaign");
    Ok(())
}
