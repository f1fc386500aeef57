//! The mirror against the sandbox (issue 6): full and incremental passes equal the sandbox
//! field by field, export and paging give the same database, stopped runs resume without loss
//! or duplication, the quota stops and resumes a run, campaigns cost requests only when they
//! change, and runs are reachable through the schedule, `mirror.run`, events and the CLI.
//!
//! Helpers here compare the mirror with the sandbox's own snapshot, read independently of the
//! mirror's code: straight from the snapshot's JSON and straight from the tables.

mod campaigns;
mod full;
mod paths;
mod progress;
mod quota;
mod report_queries;
mod reports;
mod resume;
mod tags;
mod triggers;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use ctct_sandbox::SandboxAdmin;
use ctct_sync::api::ApiClient;
use ctct_sync::config::{SecretUrl, Settings};
use ctct_sync::mirror::{
    Mirror, MirrorDb, MirrorOptions, Mode, Resource, RunOutcome, RunSummary, Trigger,
};
use secrecy::SecretString;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::support::api::{TestApi, build_client};
use crate::support::engine::Tables;
use crate::support::{fresh_db_path, temp_dir};

/// Options with short export polls (the sandbox's activities are completed by
/// [`ActivityCompleter`]).
pub fn fast_options() -> MirrorOptions {
    MirrorOptions {
        export_poll_initial: Duration::from_millis(20),
        export_poll_max: Duration::from_millis(50),
        export_deadline: Duration::from_secs(30),
        ..MirrorOptions::default()
    }
}

/// A mirror on the test's store and client.
pub fn mirror_for(t: &TestApi, options: MirrorOptions) -> Mirror {
    Mirror::new(t.mirror_db(), t.client.clone(), t.clock.clone(), options)
}

/// Seeds the sandbox's account with `contacts` contacts (and its fields, lists, campaigns).
pub fn seed(t: &TestApi, contacts: usize) {
    let admin = t.sandbox.admin();
    admin
        .seed(&admin.primary_account(), contacts, 7)
        .expect("the sandbox seeds");
}

/// Finishes the sandbox's queued activities (exports) every few milliseconds while it lives,
/// standing in for the sandbox's clock so tests do not wait out its processing time.
pub struct ActivityCompleter(JoinHandle<()>);

impl ActivityCompleter {
    pub fn start(admin: SandboxAdmin) -> Self {
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tick.tick().await;
                admin.complete_activities_now();
            }
        }))
    }
}

impl Drop for ActivityCompleter {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `resource` once and returns its summary, with a deadline.
pub async fn run(mirror: &Mirror, resource: Resource, mode: Mode) -> RunSummary {
    tokio::time::timeout(
        Duration::from_secs(120),
        mirror.run_once("default", resource, mode, Trigger::Cli),
    )
    .await
    .expect("the run ends within its deadline")
}

/// Runs every resource and asserts each succeeded.
pub async fn run_all_ok(mirror: &Mirror, mode: Mode) -> Vec<RunSummary> {
    let mut summaries = Vec::new();
    for resource in Resource::ALL {
        let summary = run(mirror, resource, mode).await;
        assert_eq!(summary.outcome, RunOutcome::Succeeded, "{summary:?}");
        summaries.push(summary);
    }
    summaries
}

/// A second ctct-sync (state and mirror stores, client) on the same sandbox account, with a
/// token grant of its own: on SQLite two files in the returned directory, on PostgreSQL the
/// schemas `ctct_state_2` and `ctct_mirror_2` of the test's database. Returns its mirror
/// store, its client and its mirror's tables.
pub async fn second_client(t: &TestApi) -> (MirrorDb, ApiClient, Tables, tempfile::TempDir) {
    let dir = temp_dir();
    let mut settings = Settings::load(None, HashMap::new()).expect("the default settings");
    match &t.pg {
        None => settings.store.path = fresh_db_path(dir.path()),
        Some(db) => {
            settings.store.url = Some(SecretUrl::new(db.url()));
            settings.store.schema = "ctct_state_2".into();
            settings.mirror.url = Some(SecretUrl::new(db.url()));
            settings.mirror.schema = "ctct_mirror_2".into();
        }
    }
    let stores = ctct_sync::daemon::open_stores(&settings)
        .await
        .expect("a second pair of stores opens");
    let tables = match &t.pg {
        None => Tables::Sqlite(stores.mirror.store().expect("a SQLite mirror").clone()),
        Some(db) => Tables::Postgres {
            url: db.url().to_owned(),
            schema: "ctct_mirror_2".into(),
        },
    };
    let client = build_client(&t.sandbox, &stores.state, &t.clock, t.per_second, t.per_day);
    let admin = t.sandbox.admin();
    let refresh = admin
        .issue_refresh_token(&admin.primary_account())
        .expect("a second grant");
    client
        .tokens()
        .import_refresh_token("default", SecretString::from(refresh))
        .await
        .expect("the second grant imports");
    (stores.mirror, client, tables, dir)
}

/// One contact, field by field, as plain comparable text.
pub type ContactView = BTreeMap<&'static str, Option<String>>;

/// An instant in any RFC 3339 form (or a bare date) as epoch seconds, so the sandbox's and the
/// mirror's spellings compare by value.
fn epoch(text: Option<&str>) -> Option<String> {
    let text = text.filter(|t| !t.is_empty())?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp().to_string())
        .ok()
        .or_else(|| Some(format!("date:{text}")))
}

fn json_text(value: &Value, path: &[&str]) -> Option<String> {
    let mut at = value;
    for key in path {
        at = at.get(*key)?;
    }
    match at {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

const TEXT_FIELDS: [(&str, &[&str]); 13] = [
    ("email_address", &["email_address", "address"]),
    (
        "permission_to_send",
        &["email_address", "permission_to_send"],
    ),
    ("confirm_status", &["email_address", "confirm_status"]),
    ("opt_in_source", &["email_address", "opt_in_source"]),
    ("opt_out_source", &["email_address", "opt_out_source"]),
    ("opt_out_reason", &["email_address", "opt_out_reason"]),
    ("first_name", &["first_name"]),
    ("last_name", &["last_name"]),
    ("job_title", &["job_title"]),
    ("company_name", &["company_name"]),
    ("anniversary", &["anniversary"]),
    ("create_source", &["create_source"]),
    ("update_source", &["update_source"]),
];

const TIME_FIELDS: [(&str, &[&str]); 4] = [
    ("opt_in_date", &["email_address", "opt_in_date"]),
    ("opt_out_date", &["email_address", "opt_out_date"]),
    ("created_at", &["created_at"]),
    ("updated_at", &["updated_at"]),
];

/// Every contact of the sandbox's snapshot (deleted ones included), by id.
pub fn sandbox_contacts(t: &TestApi) -> BTreeMap<String, ContactView> {
    let admin = t.sandbox.admin();
    let snapshot = admin
        .snapshot(&admin.primary_account())
        .expect("a snapshot");
    snapshot
        .contacts
        .iter()
        .map(|c| {
            let mut view = ContactView::new();
            for (column, path) in TEXT_FIELDS {
                view.insert(column, json_text(c, path));
            }
            for (column, path) in TIME_FIELDS {
                view.insert(column, epoch(json_text(c, path).as_deref()));
            }
            view.insert("birthday_month", json_text(c, &["birthday_month"]));
            view.insert("birthday_day", json_text(c, &["birthday_day"]));
            view.insert("deleted_at", json_text(c, &["deleted_at"]));
            let mut values: Vec<String> = c["custom_fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| {
                    let value = v["value"].as_str().filter(|s| !s.is_empty())?;
                    Some(format!("{}={value}", v["custom_field_id"].as_str()?))
                })
                .collect();
            values.sort();
            view.insert("custom_fields", Some(values.join("|")));
            let mut lists: Vec<String> = c["list_memberships"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect();
            lists.sort();
            view.insert("lists", Some(lists.join("|")));
            let id = c["contact_id"].as_str().expect("an id").to_owned();
            (id, view)
        })
        .collect()
}

/// Every mirrored contact of account `default`, read from the tables (of either engine), by
/// id.
pub async fn mirror_contacts(tables: &Tables) -> BTreeMap<String, ContactView> {
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in tables
        .query(
            "SELECT contact_id, custom_field_id, value FROM contact_custom_field_values
             WHERE account = 'default' ORDER BY 1, 2",
        )
        .await
        .rows
    {
        let [id, field, value] = <[Option<String>; 3]>::try_from(row).expect("three columns");
        values.entry(id.expect("an id")).or_default().push(format!(
            "{}={}",
            field.unwrap_or_default(),
            value.unwrap_or_default()
        ));
    }
    let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in tables
        .query(
            "SELECT contact_id, list_id FROM contact_list_memberships
             WHERE account = 'default' ORDER BY 1, 2",
        )
        .await
        .rows
    {
        let [id, list] = <[Option<String>; 2]>::try_from(row).expect("two columns");
        lists
            .entry(id.expect("an id"))
            .or_default()
            .push(list.unwrap_or_default());
    }
    let text_columns: Vec<&str> = TEXT_FIELDS.iter().map(|(c, _)| *c).collect();
    let time_columns: Vec<&str> = TIME_FIELDS.iter().map(|(c, _)| *c).collect();
    let sql = format!(
        "SELECT contact_id, {}, {}, birthday_month, birthday_day, deleted_at
         FROM contacts WHERE account = 'default'",
        text_columns.join(", "),
        time_columns.join(", ")
    );
    let mut out = BTreeMap::new();
    for row in tables.query(&sql).await.rows {
        let mut row = row.into_iter();
        let id = row.next().flatten().expect("an id");
        let mut view = ContactView::new();
        for column in &text_columns {
            view.insert(column, row.next().flatten());
        }
        for column in &time_columns {
            view.insert(column, epoch(row.next().flatten().as_deref()));
        }
        view.insert("birthday_month", row.next().flatten());
        view.insert("birthday_day", row.next().flatten());
        view.insert("deleted_at", row.next().flatten());
        view.insert(
            "custom_fields",
            Some(values.remove(&id).unwrap_or_default().join("|")),
        );
        view.insert(
            "lists",
            Some(lists.remove(&id).unwrap_or_default().join("|")),
        );
        out.insert(id, view);
    }
    out
}

/// Asserts the mirror's contacts equal the sandbox's, naming the first differences.
pub async fn assert_contacts_equal_sandbox(t: &TestApi) {
    let expected = sandbox_contacts(t);
    let mirrored = mirror_contacts(&t.mirror_tables()).await;
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !mirrored.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = mirrored
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .take(5)
        .collect();
    let differing: Vec<_> = expected
        .iter()
        .filter_map(|(id, want)| {
            let got = mirrored.get(id)?;
            let fields: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .map(|(k, v)| format!("{k}: sandbox {v:?} mirror {:?}", got.get(k)))
                .collect();
            (!fields.is_empty()).then(|| format!("{id}: {}", fields.join(", ")))
        })
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differing.is_empty(),
        "mirror ≠ sandbox ({} vs {} contacts)\nmissing: {missing:?}\nextra: {extra:?}\ndiffering:\n{}",
        expected.len(),
        mirrored.len(),
        differing.join("\n")
    );
}

/// A table's rows as text, sorted, without the bookkeeping columns (`mirrored_at`, `seen_run`).
pub async fn dump_table(tables: &Tables, table: &'static str) -> Vec<String> {
    let answer = tables.query(&format!("SELECT * FROM {table}")).await;
    let kept: Vec<usize> = (0..answer.columns.len())
        .filter(|&i| answer.columns[i] != "mirrored_at" && answer.columns[i] != "seen_run")
        .collect();
    let mut rows: Vec<String> = answer
        .rows
        .iter()
        .map(|row| {
            kept.iter()
                .map(|&i| match &row[i] {
                    Some(value) => format!("'{value}'"),
                    None => "NULL".to_owned(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    rows.sort();
    rows
}

/// The mirror's reporting tables.
pub const MIRROR_TABLES: [&str; 10] = [
    "contacts",
    "contact_custom_field_values",
    "contact_list_memberships",
    "contact_taggings",
    "custom_fields",
    "contact_lists",
    "contact_tags",
    "segments",
    "campaigns",
    "campaign_activities",
];

/// The ids of the sandbox account's live contacts, in the snapshot's order.
pub fn live_contact_ids(t: &TestApi) -> Vec<String> {
    let admin = t.sandbox.admin();
    admin
        .snapshot(&admin.primary_account())
        .expect("a snapshot")
        .contacts
        .iter()
        .filter(|c| c["deleted_at"].as_str().is_none_or(str::is_empty))
        .map(|c| c["contact_id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Creates a tag through the API; returns its id.
pub async fn create_tag(t: &TestApi, name: &str) -> String {
    let tag = ctct_sync::api::model::TagCreate {
        name: name.into(),
        tag_source: Some("Shop".into()),
    };
    t.api().create_tag(&tag).await.expect("a tag").tag_id
}

/// Adds (`add`) or removes tags to (from) contacts through the tagging activity, completed at
/// once.
pub async fn tagging(t: &TestApi, add: bool, contacts: &[&str], tag_ids: &[&str]) {
    let request = ctct_sync::api::model::TaggingRequest {
        source: ctct_sync::api::model::TaggingSource {
            contact_ids: contacts.iter().map(|c| (*c).to_owned()).collect(),
        },
        tag_ids: tag_ids.iter().map(|c| (*c).to_owned()).collect(),
    };
    t.api()
        .tagging_activity(add, &request)
        .await
        .expect("the tagging activity starts");
    t.sandbox.admin().complete_activities_now();
}

/// A shared counter of pages written, and a hook that cancels a token after `pages` pages of
/// contacts.
pub fn cancel_after(
    pages: u64,
    token: tokio_util::sync::CancellationToken,
) -> ctct_sync::mirror::ProgressFn {
    Arc::new(move |progress: &ctct_sync::mirror::Progress| {
        if progress.resource == Resource::Contacts && progress.pages >= pages {
            token.cancel();
        }
    })
}

/// Requests the sandbox logged whose path starts with `prefix` and whose method is `method`.
pub fn requests_to(t: &TestApi, method: &str, prefix: &str) -> usize {
    t.sandbox
        .admin()
        .request_log()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(prefix))
        .count()
}
