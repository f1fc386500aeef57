//! Constant Contact's official clients against the sandbox: the Python client (PyPI
//! `constant-contact-api-client` 1.5.0, which parses each answer into its pydantic models)
//! and the TypeScript client (npm `ctct-api-client` 1.23.0). Each runs a script from
//! `tests/clients/` against a sandbox and prints what it read: `reports` reads every reporting
//! operation of a seeded account (the counts must equal the sandbox's own); `organise` pages
//! and reads segments, creates, lists, renames and deletes tags, tags and untags contacts
//! (and adds them to and removes them from lists, once the sandbox has those activities),
//! renames and deletes a list, reads each activity it started, unsubscribes a contact with a
//! reason, and starts each of the four bulk delete activities (contacts by id and by list,
//! lists, tags, custom fields) and polls it through the client until it completes (what every
//! answer said must be what the spec's models describe, and the sandbox must then hold the
//! changes). Ignored by default because the clients come from
//! PyPI and npm; install them and run (README.md, "Campaign reports"):
//!
//! ```sh
//! pip install constant-contact-api-client==1.5.0
//! npm install --prefix /tmp/ctct-npm ctct-api-client@1.23.0
//! CTCT_NODE_MODULES=/tmp/ctct-npm/node_modules \
//!   cargo test -p ctct-sandbox --test api official_clients -- --ignored
//! ```
//!
//! `CTCT_PYTHON` names the Python interpreter (default `python3`).

use std::process::Command;
use std::time::Duration;

use ctct_sandbox::{TrackingEvent, TrackingKind};
use serde_json::{Value, json};

use super::conformance::implements;
use super::harness::Env;
use super::reports::{activity_stats, seeded, tracking};

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");

/// What the scripts must print, from the sandbox's own answers.
async fn expected(env: &Env, campaign: &str, activity: &str) -> Value {
    let mut counts = serde_json::Map::new();
    for report in [
        "sends",
        "opens",
        "unique_opens",
        "didnotopens",
        "clicks",
        "forwards",
        "optouts",
        "bounces",
    ] {
        let rows = tracking(env, activity, report).await;
        assert!(rows.len() <= 500, "one page each");
        assert!(!rows.is_empty(), "{report} has rows to read");
        counts.insert(report.to_owned(), json!(rows.len()));
        counts.insert(format!("{report}_next"), json!(false));
    }
    counts.insert("sends_page".to_owned(), json!(1));
    counts.insert("sends_page_next".to_owned(), json!(true));
    let links = env
        .get(&format!(
            "/reports/email_reports/{activity}/links?no_clicks=true"
        ))
        .await;
    let links = links.body["link_click_counts"]
        .as_array()
        .expect("links")
        .clone();
    counts.insert("links".to_owned(), json!(links.len()));
    let total: u64 = links
        .iter()
        .map(|l| l["unique_clicks"].as_u64().expect("count"))
        .sum();
    counts.insert("link_clicks".to_owned(), json!(total));
    let first = links[0]["url_id"].as_str().expect("url_id");
    let on_first = tracking(env, activity, &format!("clicks?url_id={first}")).await;
    counts.insert("clicks_on_first_link".to_owned(), json!(on_first.len()));
    let stats = activity_stats(env, activity).await;
    counts.insert("activity_em_sends".to_owned(), stats["em_sends"].clone());
    counts.insert("activity_em_opens".to_owned(), stats["em_opens"].clone());
    counts.insert("campaign_em_clicks".to_owned(), stats["em_clicks"].clone());
    let summaries = env
        .get("/reports/summary_reports/email_campaign_summaries")
        .await;
    let summaries = summaries.body["bulk_email_campaign_summaries"]
        .as_array()
        .expect("summaries")
        .clone();
    assert_eq!(summaries[0]["campaign_id"], *campaign);
    counts.insert("summaries".to_owned(), json!(summaries.len()));
    counts.insert("summary_sends".to_owned(), stats["em_sends"].clone());
    Value::Object(counts)
}

/// Runs a client's script against `env` with these variables besides the base URL and the
/// token; returns the JSON it printed.
fn run(mut command: Command, env: &Env, vars: &[(&str, &str)], what: &str) -> Value {
    command
        .env("CTCT_BASE_URL", format!("{}/v3", env.origin))
        .env("CTCT_TOKEN", &env.token);
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what} cannot be started: {e}"));
    assert!(
        output.status.success(),
        "{what} failed (is the official client installed?):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the official clients from PyPI and npm (see the module doc)"]
async fn the_official_clients_read_every_reporting_operation() {
    let (env, campaign, activity) = seeded(300).await;
    // Rows of every kind, whatever this small send generated by itself.
    let quiet = tracking(&env, &activity, "didnotopens").await;
    let contact: uuid::Uuid = quiet[0]["contact_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let events: Vec<TrackingEvent> = [
        TrackingKind::Open,
        TrackingKind::Click,
        TrackingKind::Forward,
        TrackingKind::Optout,
    ]
    .into_iter()
    .map(|kind| TrackingEvent::new(kind, contact))
    .collect();
    env.admin
        .add_tracking_events(&env.account, activity.parse().expect("uuid"), &events)
        .expect("events are added");
    let want = expected(&env, &campaign, &activity).await;

    let vars = [("CTCT_CAMPAIGN", &*campaign), ("CTCT_ACTIVITY", &*activity)];
    let got = run(python("reports.py"), &env, &vars, "the Python client");
    assert_eq!(got, want, "the Python client");
    let got = run(node("reports.js"), &env, &vars, "the TypeScript client");
    assert_eq!(got, want, "the TypeScript client");
}

/// The Python client running `script` from `tests/clients/`.
fn python(script: &str) -> Command {
    let python = std::env::var("CTCT_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut command = Command::new(python);
    command.arg(format!("{SCRIPTS}/{script}"));
    command
}

/// The TypeScript client (its CommonJS build under `CTCT_NODE_MODULES`) running `script`.
fn node(script: &str) -> Command {
    let mut command = Command::new("node");
    command.arg(format!("{SCRIPTS}/{script}"));
    if let Ok(modules) = std::env::var("CTCT_NODE_MODULES") {
        command.env("CTCT_NODE_MODULES", modules);
    }
    command
}

const CRITERIA: &str = r#"{"version":"1.0.0","criteria":{"type":"and","group":[{"source":"tracking","field":"not_opened","op":"contains-any","const_value":"last-n-campaigns","param":"5"}]}}"#;

/// What `organise.py` and `organise.js` work on: a sandbox with segments Alpha, Beta and
/// Gamma made a minute apart, two contacts to tag (and add to a list), one to unsubscribe, a
/// list to rename and delete and one for the list membership activities (an unsubscribed
/// contact is not added to lists, hence a contact of its own for the opt-out), and for the
/// bulk deletes a contact, a list with two members, two lists, and a custom field with a value
/// on a contact that stays. The clock stays frozen, so every activity the scripts start waits
/// (`initialized`, then `processing` once read) until the test completes it, or the script
/// moves the clock on over the admin API while it polls a bulk delete.
struct Organised {
    env: Env,
    first: String,
    second: String,
    opting_out: String,
    list: String,
    members: String,
    doomed: Doomed,
}

/// What the scripts' bulk deletes delete, and the contact that keeps a value of the field.
struct Doomed {
    contact: String,
    members_list: String,
    members: Vec<String>,
    lists: Vec<String>,
    field: String,
    keeper: String,
}

impl Doomed {
    async fn make(env: &Env) -> Doomed {
        let contact = env.contact("doomed@example.com").await;
        let members_list = env.list("Doomed members").await;
        let field = env
            .post(
                "/contact_custom_fields",
                json!({"label": "Doomed field", "type": "string"}),
            )
            .await;
        assert_eq!(field.status, 201, "{}", field.text);
        let field = field.body["custom_field_id"]
            .as_str()
            .expect("custom_field_id")
            .to_owned();
        let mut members = Vec::new();
        for (email, lists, values) in [
            ("member1@example.com", json!([members_list]), json!([])),
            ("member2@example.com", json!([members_list]), json!([])),
            (
                "keeper@example.com",
                json!([]),
                json!([{"custom_field_id": field, "value": "kept"}]),
            ),
        ] {
            let r = env
                .post(
                    "/contacts",
                    json!({"email_address": {"address": email, "permission_to_send": "implicit"},
                           "create_source": "Account", "list_memberships": lists, "custom_fields": values}),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
            members.push(r.body["contact_id"].as_str().expect("id").to_owned());
        }
        let keeper = members.pop().expect("the keeper");
        let lists = vec![env.list("Old A").await, env.list("Old B").await];
        Doomed {
            contact,
            members_list,
            members,
            lists,
            field,
            keeper,
        }
    }
}

impl Organised {
    async fn start() -> Organised {
        let env = Env::start().await;
        env.admin.freeze_clock();
        for name in ["Alpha", "Beta", "Gamma"] {
            env.admin
                .add_segment(&env.account, name, CRITERIA)
                .expect("a segment is added");
            env.admin.advance_clock(Duration::from_secs(60));
        }
        let first = env.contact("first@example.com").await;
        let second = env.contact("second@example.com").await;
        let opting_out = env.contact("third@example.com").await;
        let list = env.list("Newsletter").await;
        let members = env.list("Members").await;
        let doomed = Doomed::make(&env).await;
        Organised {
            env,
            first,
            second,
            opting_out,
            list,
            members,
            doomed,
        }
    }

    /// Runs a client's `organise` script; returns what it printed.
    fn run(&self, command: Command, memberships: bool, what: &str) -> Value {
        let contacts = format!("{},{}", self.first, self.second);
        let lists = self.doomed.lists.join(",");
        let admin = format!("{}/__sandbox", self.env.origin);
        let vars = [
            ("CTCT_CONTACTS", contacts.as_str()),
            ("CTCT_OPT_OUT_CONTACT", &self.opting_out),
            ("CTCT_LIST", &self.list),
            ("CTCT_MEMBERS_LIST", &self.members),
            ("CTCT_MEMBERSHIPS", if memberships { "1" } else { "0" }),
            ("CTCT_DELETE_CONTACT", &self.doomed.contact),
            ("CTCT_DELETE_MEMBERS", &self.doomed.members_list),
            ("CTCT_DELETE_LISTS", &lists),
            ("CTCT_DELETE_FIELD", &self.doomed.field),
            ("CTCT_ADMIN_URL", &admin),
            (
                "CTCT_ADMIN_TOKEN",
                &self.env.sandbox.credentials().admin_token,
            ),
        ];
        run(command, &self.env, &vars, what)
    }

    /// The contact with its taggings and list memberships, as the API reads it.
    async fn contact(&self, id: &str) -> Value {
        let r = self
            .env
            .get(&format!("/contacts/{id}?include=taggings,list_memberships"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// After the script: the activities it started do what they were asked once they
    /// complete, and the other calls changed what they should have.
    async fn check_effects(&self, memberships: bool, what: &str) {
        let env = &self.env;
        env.admin.complete_activities_now();
        let r = env.get("/contact_tags").await;
        let tags = r.body["tags"].as_array().expect("tags");
        assert_eq!(
            tags.len(),
            1,
            "{what}: Spare deleted, VIP renamed: {}",
            r.text
        );
        assert_eq!(tags[0]["name"], "VIP Gold", "{what}");
        let vip = &tags[0]["tag_id"];
        let first = self.contact(&self.first).await;
        let second = self.contact(&self.second).await;
        assert_eq!(first["taggings"], json!([vip]), "{what}: tagged");
        assert_eq!(
            second["taggings"],
            json!([]),
            "{what}: tagged, then untagged"
        );
        let email = &self.contact(&self.opting_out).await["email_address"];
        assert_eq!(
            email["permission_to_send"], "unsubscribed",
            "{what}: {email}"
        );
        assert_eq!(
            email["opt_out_reason"], "Too many e-mails",
            "{what}: {email}"
        );
        for contact in [&first, &second] {
            assert_eq!(
                contact["email_address"]["permission_to_send"], "implicit",
                "{what}"
            );
        }
        let r = env.get(&format!("/contact_lists/{}", self.list)).await;
        assert_eq!(r.status, 404, "{what}: the list is deleted: {}", r.text);
        self.check_deletes(what).await;
        if memberships {
            assert_eq!(
                first["list_memberships"],
                json!([self.members]),
                "{what}: added"
            );
            assert_eq!(
                second["list_memberships"],
                json!([]),
                "{what}: added, then removed"
            );
        }
    }
}

impl Organised {
    /// The bulk deletes deleted what they named, and nothing else.
    async fn check_deletes(&self, what: &str) {
        let env = &self.env;
        let doomed = &self.doomed;
        for contact in doomed.members.iter().chain([&doomed.contact]) {
            let read = self.contact(contact).await;
            assert!(read["deleted_at"].is_string(), "{what}: deleted: {read}");
        }
        let r = env
            .get(&format!(
                "/contacts/{}?include=custom_fields,list_memberships",
                doomed.keeper
            ))
            .await;
        assert!(r.body["deleted_at"].is_null(), "{what}: {}", r.text);
        assert_eq!(
            r.body["custom_fields"],
            json!([]),
            "{what}: the field's value is gone with it: {}",
            r.text
        );
        let r = env
            .get(&format!("/contact_lists/{}", doomed.members_list))
            .await;
        assert_eq!(r.status, 200, "{what}: only its members go: {}", r.text);
        for list in &doomed.lists {
            let r = env.get(&format!("/contact_lists/{list}")).await;
            assert_eq!(r.status, 404, "{what}: {}", r.text);
        }
        let r = env
            .get(&format!("/contact_custom_fields/{}", doomed.field))
            .await;
        assert_eq!(r.status, 404, "{what}: {}", r.text);
    }
}

/// What the `organise` scripts must print. A created activity is `initialized`; the first
/// read finds it `processing` (the clock is frozen, so it goes no further). The 202 of a
/// DELETE has no `status` (optional in the spec), the activity read then has one.
fn organised_expected(memberships: bool) -> Value {
    let queued = |items: u32| json!({"created": "initialized", "read": "processing", "items": items, "read_items": items});
    let deleting = json!({"created": "initialized", "read": "processing", "read_items": 1});
    let mut want = json!({
        "segments_page_1": ["Gamma", "Beta"],
        "segments_page_2": ["Alpha"],
        "segments_page_2_next": false,
        "segment": {"name": "Alpha", "criteria": serde_json::from_str::<Value>(CRITERIA).expect("JSON")},
        "tags": [["Spare", 0], ["VIP", 0]],
        "tag_renamed": "VIP Gold",
        "tag_read": ["VIP Gold", 0],
        "taggings_add": queued(2),
        "taggings_remove": queued(1),
        "tag_delete": deleting.clone(),
        "list_updated": ["Renamed", "Spanish newsletter", true],
        "list_delete": deleting,
        "opt_out": ["unsubscribed", "Account", "Too many e-mails"],
        "opt_out_dated": true,
    });
    if memberships {
        want["memberships_add"] = queued(2);
        want["memberships_remove"] = queued(1);
    }
    // Bulk deletes: each 201 in its own spec shape, then polled until completed.
    let counts =
        |total: u32, done: u32| json!({"items_total_count": total, "items_completed_count": done});
    let ended = |created: Value, status: Value| json!({"created": "initialized", "created_status": created, "ended": "completed", "status": status});
    let by_lists = |done: u32| {
        let mut status = counts(2, done);
        status["list_count"] = json!(1);
        status
    };
    want["contact_delete"] = ended(counts(1, 0), counts(1, 1));
    want["contact_delete_by_lists"] = ended(by_lists(0), by_lists(2));
    want["lists_delete"] = ended(
        json!({"list_count": 0}),
        json!({"items_total_count": 2, "items_completed_count": 2, "list_count": 2}),
    );
    want["tags_delete"] = ended(counts(1, 0), counts(1, 1));
    want["custom_fields_delete"] = ended(Value::Null, counts(1, 1));
    want
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the official clients from PyPI and npm (see the module doc)"]
async fn the_official_clients_call_the_segment_tag_tagging_list_opt_out_and_bulk_delete_operations()
{
    // The list membership activities are called once the sandbox implements them (they are
    // then in the conformance test's list of operations).
    let memberships = implements("POST", "/activities/add_list_memberships")
        && implements("POST", "/activities/remove_list_memberships");
    let want = organised_expected(memberships);
    for (command, what) in [
        (python("organise.py"), "the Python client"),
        (node("organise.js"), "the TypeScript client"),
    ] {
        let organised = Organised::start().await;
        let got = organised.run(command, memberships, what);
        assert_eq!(got, want, "{what}");
        organised.check_effects(memberships, what).await;
    }
}
