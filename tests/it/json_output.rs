//! `--json` on `config`, `auth status`, `dlq list`, `doctor` and `mirror`: the real binary
//! prints exactly one JSON document on stdout (the whole of stdout parses as one value),
//! with the keys docs/operations.md lists, no secret, and the usual exit code.

use std::process::Output;
use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use serde_json::{Value, json};

use crate::support;
use crate::support::api::TestApi;
use crate::support::daemon::{TestDaemon, amqp_url};
use crate::support::eventually::eventually;

/// The keys of each document's parts, sorted (as [`keys`] returns them).
const CHECK_KEYS: [&str; 4] = ["advice", "detail", "name", "status"];
const SUMMARY_KEYS: [&str; 4] = ["fail", "ok", "total", "warn"];
const ACCOUNT_KEYS: [&str; 7] = [
    "access_token_expires_at",
    "account",
    "generation",
    "last_refresh_at",
    "scopes",
    "state",
    "state_reason",
];
const BUDGET_KEYS: [&str; 7] = [
    "client_id",
    "day",
    "exhausted",
    "per_day",
    "remaining",
    "resets_at",
    "used",
];
const DEAD_LETTER_KEYS: [&str; 5] = ["account", "code", "command_type", "id", "reason"];
const RUN_KEYS: [&str; 12] = [
    "api_requests",
    "error",
    "mode",
    "outcome",
    "pages",
    "path",
    "resets_at",
    "resource",
    "rows_deleted",
    "rows_per_second",
    "rows_upserted",
    "seconds",
];

/// The whole of stdout as one JSON document (failing on anything around it, or a second one).
fn document(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The names of an object's keys, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

async fn output(mut cmd: tokio::process::Command) -> Output {
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the command ends within the deadline")
        .expect("the binary runs")
}

#[test]
fn config_json_prints_the_layered_settings_as_one_object_with_secrets_redacted() {
    let dir = support::temp_dir();
    std::fs::write(dir.path().join("site.toml"), "[limits]\nper_day = 777\n").unwrap();
    let output = support::ctct_sync_command(dir.path())
        .args(["--config", "site.toml", "config", "--json"])
        .env("CTCT_SYNC__OAUTH__CLIENT_ID", "id-1")
        .env("CTCT_SYNC__OAUTH__CLIENT_SECRET", "s3cr3t-xyz")
        .env("CTCT_SYNC__STORE__URL", "postgres://ctct:pg-pa55@db/ctct")
        .env("CTCT_SYNC__AMQP__URL", "amqp://svc:mq-pa55@mq:5672/%2f")
        .output()
        .expect("binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let settings = document(&output);
    assert_eq!(settings["limits"]["per_day"], 777);
    assert_eq!(settings["oauth"]["client_id"], "id-1");
    assert_eq!(settings["oauth"]["client_secret"], "[redacted]");
    assert_eq!(settings["store"]["url"], "postgres://ctct:***@db/ctct");
    assert_eq!(settings["amqp"]["url"], "amqp://svc:***@mq:5672/%2f");
    assert_eq!(
        keys(&settings),
        [
            "amqp", "api", "bulk", "limits", "log", "mirror", "oauth", "ops", "store"
        ]
    );
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        for secret in ["s3cr3t-xyz", "pg-pa55", "mq-pa55"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

#[test]
fn auth_status_json_on_a_fresh_store_is_a_document_with_no_accounts() {
    let dir = support::temp_dir();
    let output = support::ctct_sync_command(dir.path())
        .args(["auth", "status", "--json"])
        .env("CTCT_SYNC__OAUTH__CLIENT_ID", "id-1")
        .env("CTCT_SYNC__OAUTH__CLIENT_SECRET", "s3cr3t-xyz")
        .output()
        .expect("binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = document(&output);
    assert_eq!(keys(&status), ["accounts", "api_budget"]);
    assert_eq!(status["accounts"], json!([]));
    let budget = &status["api_budget"];
    assert_eq!(keys(budget), BUDGET_KEYS);
    assert_eq!(budget["client_id"], "id-1");
    assert_eq!(budget["used"], 0);
    assert_eq!(budget["remaining"], budget["per_day"]);
    assert_eq!(budget["exhausted"], false);
    assert!(!String::from_utf8_lossy(&output.stdout).contains("s3cr3t-xyz"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_status_json_lists_an_imported_account_and_none_of_its_tokens() {
    let t = TestApi::start().await;
    let refresh = t
        .sandbox
        .admin()
        .issue_refresh_token(&t.sandbox.admin().primary_account())
        .unwrap();
    t.client
        .tokens()
        .import_refresh_token("eu", secrecy::SecretString::from(refresh.clone()))
        .await
        .unwrap();
    let mut cmd = support::ctct_sync_process(t.dir.path());
    cmd.args(["auth", "status", "--json"]).envs(t.cli_env());
    let output = output(cmd).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = document(&output);
    let accounts = status["accounts"].as_array().expect("an array of accounts");
    let eu = accounts
        .iter()
        .find(|a| a["account"] == "eu")
        .unwrap_or_else(|| panic!("account eu: {status}"));
    assert_eq!(keys(eu), ACCOUNT_KEYS);
    assert_eq!(eu["state"], "active");
    assert_eq!(eu["state_reason"], Value::Null);
    assert!(eu["generation"].is_i64(), "{eu}");
    assert!(
        eu["scopes"]
            .as_array()
            .expect("scopes as an array")
            .contains(&json!("contact_data")),
        "{eu}"
    );
    let expires = eu["access_token_expires_at"].as_str().expect("an expiry");
    chrono::DateTime::parse_from_rfc3339(expires).expect("an RFC 3339 time");

    let row = t.client.tokens().account("eu").await.unwrap().unwrap();
    let stored_refresh =
        secrecy::ExposeSecret::expose_secret(row.refresh_token.as_ref().unwrap()).to_owned();
    let access =
        secrecy::ExposeSecret::expose_secret(row.access_token.as_ref().unwrap()).to_owned();
    let client_secret = t.sandbox.credentials().client_secret.clone();
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        for secret in [&refresh, &stored_refresh, &access, &client_secret] {
            assert!(
                !text.contains(secret.as_str()),
                "a secret reached the output"
            );
        }
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_list_json_prints_the_dead_letters_in_one_document() {
    let mut d = TestDaemon::start().await;
    let dead_queue = d.settings.amqp.dead_letter_queue.clone();

    let empty = output(d.command(&["dlq", "list", "--json"])).await;
    assert!(
        empty.status.success(),
        "{}",
        String::from_utf8_lossy(&empty.stderr)
    );
    assert_eq!(
        document(&empty),
        json!({"queue": dead_queue, "dead_letters": [], "shown": 0})
    );

    d.publish("json-bad-1", "contact.upsert", json!({"email": "nope"}))
        .await;
    let result = d.result("json-bad-1").await;
    assert_eq!(result.outcome, Outcome::Rejected, "{result:?}");
    let code = result.error.expect("a rejection carries an error").code;
    eventually(
        Duration::from_secs(30),
        "the command dead-lettered",
        async || d.depth(&dead_queue).await == 1,
    )
    .await;

    let listed = output(d.command(&["dlq", "list", "--json"])).await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listing = document(&listed);
    assert_eq!(keys(&listing), ["dead_letters", "queue", "shown"]);
    assert_eq!(listing["shown"], 1);
    let dead = &listing["dead_letters"][0];
    assert_eq!(keys(dead), DEAD_LETTER_KEYS);
    assert_eq!(dead["id"], "json-bad-1");
    assert_eq!(dead["account"], "default");
    assert_eq!(dead["command_type"], "contact.upsert");
    assert_eq!(dead["code"], code.as_str());
    assert!(!dead["reason"].as_str().unwrap_or_default().is_empty());
    // Listing leaves the dead letter where it was.
    eventually(
        Duration::from_secs(30),
        "the dead letter back in its queue",
        async || d.depth(&dead_queue).await == 1,
    )
    .await;
    d.stop().await;
}

/// Checks a `doctor --json` document's shape; returns its checks by name and whether one
/// failed.
fn doctor_checks(report: &Value) -> (Vec<(String, Value)>, bool) {
    assert_eq!(keys(report), ["checks", "summary"]);
    let checks = report["checks"].as_array().expect("an array of checks");
    assert!(!checks.is_empty());
    let mut counts = [0u64; 3];
    for check in checks {
        assert_eq!(keys(check), CHECK_KEYS, "{check}");
        let status = check["status"].as_str().expect("a status");
        let at = ["ok", "warn", "fail"]
            .iter()
            .position(|s| *s == status)
            .unwrap_or_else(|| panic!("status {status:?} of {check}"));
        counts[at] += 1;
        assert!(check["detail"].is_string(), "{check}");
        match (status, &check["advice"]) {
            ("ok", advice) => assert!(advice.is_null(), "{check}"),
            (_, advice) => assert!(advice.is_string() || advice.is_null(), "{check}"),
        }
    }
    assert_eq!(
        report["summary"],
        json!({
            "total": checks.len(),
            "ok": counts[0],
            "warn": counts[1],
            "fail": counts[2]
        })
    );
    let named = checks
        .iter()
        .map(|c| (c["name"].as_str().unwrap_or_default().to_owned(), c.clone()))
        .collect();
    (named, counts[2] > 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_json_reports_every_check_and_exits_1_exactly_when_one_failed() {
    let t = TestApi::start().await;
    let mut cmd = support::ctct_sync_process(t.dir.path());
    cmd.args(["doctor", "--json"])
        .envs(t.cli_env())
        .env("CTCT_SYNC__AMQP__URL", amqp_url());
    let output = output(cmd).await;
    let report = document(&output);
    let (checks, failed) = doctor_checks(&report);
    assert_eq!(
        output.status.code(),
        Some(if failed { 1 } else { 0 }),
        "{report:#}"
    );
    let api = checks
        .iter()
        .find(|(name, _)| name == "account default api")
        .unwrap_or_else(|| panic!("an api check: {report:#}"));
    assert_eq!(api.1["status"], "ok", "{report:#}");
    assert_eq!(checks[0].0, "configuration");
    t.stop().await;
}

#[test]
fn doctor_json_reports_a_broken_configuration_as_one_failed_check() {
    let dir = support::temp_dir();
    let output = support::ctct_sync_command(dir.path())
        .args(["doctor", "--json"])
        .env("CTCT_SYNC__LIMITS__PER_SECOND", "fast")
        .output()
        .expect("binary runs");
    let report = document(&output);
    let (checks, failed) = doctor_checks(&report);
    assert!(failed);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(checks.len(), 1, "{report:#}");
    let (name, check) = &checks[0];
    assert_eq!(name, "configuration");
    assert_eq!(check["status"], "fail");
    assert!(
        check["detail"]
            .as_str()
            .is_some_and(|d| d.contains("limits.per_second")),
        "{check}"
    );
    assert!(check["advice"].is_string(), "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_json_prints_each_run_s_figures_as_numbers_in_one_document() {
    let t = TestApi::start().await;
    crate::mirror::seed(&t, 40);
    let _completer = crate::mirror::ActivityCompleter::start(t.sandbox.admin());
    let mut cmd = support::ctct_sync_process(t.dir.path());
    cmd.args(["mirror", "--full", "--json"]).envs(t.cli_env());
    let output = output(cmd).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.stdout.contains(&b'\r'),
        "no progress bar under --json"
    );
    let report = document(&output);
    assert_eq!(keys(&report), ["account", "runs"]);
    assert_eq!(report["account"], "default");
    let runs = report["runs"].as_array().expect("an array of runs");
    let resources: Vec<&str> = runs
        .iter()
        .map(|r| r["resource"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        resources,
        [
            "custom_fields",
            "lists",
            "tags",
            "segments",
            "contacts",
            "campaigns",
            "reports"
        ]
    );
    for run in runs {
        assert_eq!(keys(run), RUN_KEYS, "{run}");
        assert_eq!(run["outcome"], "succeeded", "{run}");
        assert_eq!(run["mode"], "full", "{run}");
        for number in ["pages", "rows_upserted", "rows_deleted", "api_requests"] {
            assert!(run[number].is_u64(), "{number} of {run}");
        }
        assert!(run["seconds"].is_f64(), "{run}");
        assert_eq!(run["error"], Value::Null, "{run}");
    }
    let contacts = &runs[4];
    assert_eq!(contacts["path"], "export");
    assert_eq!(contacts["rows_upserted"], 40);
    assert!(contacts["api_requests"].as_u64() > Some(0), "{contacts}");
    assert_eq!(runs[1]["path"], Value::Null);
    t.stop().await;
}

/// The ```json blocks of docs/operations.md's section on `--json`, parsed, in order.
fn documented_examples() -> Vec<Value> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .expect("docs/operations.md is readable");
    let section = doc
        .split("## Machine-readable output (`--json`)")
        .nth(1)
        .expect("docs/operations.md has the section on --json")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    section
        .split("```json\n")
        .skip(1)
        .map(|block| {
            let text = block.split("```").next().unwrap_or_default();
            serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("an example is not JSON ({e}):\n{text}"))
        })
        .collect()
}

#[test]
fn the_operations_guide_shows_each_document_with_the_keys_the_commands_print() {
    let examples = documented_examples();
    assert_eq!(
        examples.len(),
        5,
        "doctor, auth status, dlq list, config, mirror"
    );
    let (doctor, auth, dlq, config, mirror) = (
        &examples[0],
        &examples[1],
        &examples[2],
        &examples[3],
        &examples[4],
    );
    assert_eq!(keys(doctor), ["checks", "summary"]);
    for check in doctor["checks"].as_array().expect("checks") {
        assert_eq!(keys(check), CHECK_KEYS, "{check}");
    }
    assert_eq!(keys(&doctor["summary"]), SUMMARY_KEYS);
    assert_eq!(keys(auth), ["accounts", "api_budget"]);
    assert_eq!(keys(&auth["accounts"][0]), ACCOUNT_KEYS);
    assert_eq!(keys(&auth["api_budget"]), BUDGET_KEYS);
    assert_eq!(keys(dlq), ["dead_letters", "queue", "shown"]);
    assert_eq!(keys(&dlq["dead_letters"][0]), DEAD_LETTER_KEYS);
    assert_eq!(config["oauth"]["client_secret"], "[redacted]");
    assert_eq!(keys(mirror), ["account", "runs"]);
    assert_eq!(keys(&mirror["runs"][0]), RUN_KEYS);
}
