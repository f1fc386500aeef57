//! Bad input end to end (RELIABILITY.md §10.6 B1): the corpus in tests/corpus/bad/ — broken
//! JSON, wrong types, huge and deep bodies, invalid UTF-8, wrong properties, unknown types,
//! oversize arrays, refused injection strings — goes through one daemon. Each case gets exactly
//! one `rejected` result naming its code and field (docs/messages.md, "Error codes") and one
//! dead letter carrying its reason, and costs no Constant Contact call. Then the valid but
//! hostile cases in tests/corpus/hostile/ come back from the sandbox verbatim, and the daemon
//! still serves.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ctct_sync::command::outcome::{CommandResult, Outcome};
use ctct_sync::pipeline::process::{REASON_CODE_HEADER, REASON_HEADER};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, QueueBindOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Consumer};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::daemon::{TestDaemon, exclusive_queue};
use crate::support::eventually::eventually;

const WAIT: Duration = Duration::from_secs(60);
/// How long to keep listening once every case has its result, to catch a second one.
const QUIET: Duration = Duration::from_millis(750);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    case: Vec<Case>,
}

/// One message of the corpus; keys are described at the top of each manifest.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    category: String,
    why: String,
    file: Option<String>,
    code: Option<String>,
    field: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    fields: Option<Vec<String>>,
    command_id: Option<String>,
    account: Option<String>,
    routing_key: Option<String>,
    /// A string sets it; `false` leaves it unset; absent means application/json.
    content_type: Option<toml::Value>,
    content_encoding: Option<String>,
    message_id: Option<String>,
    correlation_id: Option<String>,
    reply_to: Option<String>,
    #[serde(default)]
    expand: Vec<Expand>,
    #[serde(default)]
    verbatim: Vec<Verbatim>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expand {
    marker: String,
    with: String,
    times: Option<usize>,
    total_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Verbatim {
    sent: String,
    got: String,
}

fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind)
}

fn load(kind: &str) -> Vec<Case> {
    let dir = corpus_dir(kind);
    let text = std::fs::read_to_string(dir.join("manifest.toml")).expect("a manifest");
    let manifest: Manifest =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{kind}/manifest.toml: {e}"));
    let mut names = std::collections::HashSet::new();
    for case in &manifest.case {
        assert!(names.insert(&case.name), "{kind}: {} twice", case.name);
        assert!(!case.why.is_empty() && !case.category.is_empty());
    }
    manifest.case
}

impl Case {
    fn correlation_id(&self) -> &str {
        self.correlation_id.as_deref().unwrap_or(&self.name)
    }

    /// The raw body: the file with its markers expanded.
    fn body(&self, kind: &str) -> Vec<u8> {
        let file = self.file.clone().unwrap_or(format!("{}.json", self.name));
        let mut body = std::fs::read(corpus_dir(kind).join(&file))
            .unwrap_or_else(|e| panic!("{kind}/{file}: {e}"));
        for expand in &self.expand {
            let marker = expand.marker.as_bytes();
            let at = body
                .windows(marker.len())
                .position(|w| w == marker)
                .unwrap_or_else(|| panic!("{}: marker {} not found", self.name, expand.marker));
            let fill = match (expand.times, expand.total_bytes) {
                (Some(times), None) => (0..times)
                    .map(|i| expand.with.replace("{i}", &i.to_string()))
                    .collect::<String>()
                    .into_bytes(),
                (None, Some(total)) => {
                    let room = total + marker.len() - body.len();
                    assert_eq!(room % expand.with.len(), 0, "{}: padding fits", self.name);
                    expand.with.repeat(room / expand.with.len()).into_bytes()
                }
                _ => panic!("{}: give times or total_bytes", self.name),
            };
            body.splice(at..at + marker.len(), fill);
            if let Some(total) = expand.total_bytes {
                assert_eq!(body.len(), total, "{}", self.name);
            }
        }
        body
    }

    fn properties(&self, commands_queue: &str) -> BasicProperties {
        let mut properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_correlation_id(self.correlation_id().into());
        match &self.content_type {
            None => properties = properties.with_content_type("application/json".into()),
            Some(toml::Value::String(content_type)) => {
                properties = properties.with_content_type(content_type.as_str().into())
            }
            Some(toml::Value::Boolean(false)) => {}
            Some(other) => panic!("{}: content_type = {other}", self.name),
        }
        if let Some(encoding) = &self.content_encoding {
            properties = properties.with_content_encoding(encoding.as_str().into());
        }
        if let Some(id) = &self.message_id {
            properties = properties.with_message_id(id.as_str().into());
        }
        if let Some(reply_to) = &self.reply_to {
            let reply_to = reply_to.replace("@COMMANDS_QUEUE@", commands_queue);
            properties = properties.with_reply_to(reply_to.into());
        }
        properties
    }
}

/// A message from the results exchange, with the properties the harness does not keep.
#[derive(Debug, Clone)]
struct Received {
    routing_key: String,
    message_id: Option<String>,
    result: CommandResult,
    raw: Value,
}

/// Everything published to the daemon's results exchange, by correlation id.
struct Results {
    consumer: Consumer,
    by_correlation: HashMap<String, Vec<Received>>,
}

impl Results {
    async fn bind(d: &TestDaemon) -> Self {
        let queue = exclusive_queue(&d.channel).await;
        d.channel
            .queue_bind(
                queue.as_str().into(),
                d.pipeline_settings
                    .topology
                    .results_exchange
                    .as_str()
                    .into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bound to the results exchange");
        let consumer = d
            .channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consuming results");
        Results {
            consumer,
            by_correlation: HashMap::new(),
        }
    }

    /// Takes one message, or returns false once `deadline` has passed.
    async fn receive_until(&mut self, deadline: tokio::time::Instant) -> bool {
        let Ok(Some(Ok(delivery))) = tokio::time::timeout_at(deadline, self.consumer.next()).await
        else {
            return false;
        };
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        let raw: Value = serde_json::from_slice(&delivery.data).expect("results are JSON");
        let Ok(result) = serde_json::from_value::<CommandResult>(raw.clone()) else {
            return true; // an event, e.g. account.reauth_required
        };
        let properties = &delivery.properties;
        let correlation = properties
            .correlation_id()
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        self.by_correlation
            .entry(correlation)
            .or_default()
            .push(Received {
                routing_key: delivery.routing_key.to_string(),
                message_id: properties.message_id().as_ref().map(|m| m.to_string()),
                result,
                raw,
            });
        true
    }

    /// Waits until every correlation id has a result, then listens a moment longer.
    async fn wait_for(&mut self, correlations: &[&str]) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let missing: Vec<_> = correlations
                .iter()
                .filter(|c| !self.by_correlation.contains_key(**c))
                .collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                self.receive_until(deadline).await,
                "no result within {WAIT:?} for {} cases: {missing:?}",
                missing.len()
            );
        }
        let quiet = tokio::time::Instant::now() + QUIET;
        while self.receive_until(quiet).await {}
    }
}

/// Every dead letter in the queue, by correlation id (taken off the queue).
async fn dead_letters(d: &TestDaemon, expected: usize) -> HashMap<String, Delivery> {
    let queue = d.pipeline_settings.topology.dead_letter_queue.clone();
    eventually(
        WAIT,
        "every bad message in the dead-letter queue",
        async || d.depth(&queue).await as usize >= expected,
    )
    .await;
    let mut out = HashMap::new();
    let mut total = 0;
    while let Some(message) = d
        .channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get on the dead-letter queue")
    {
        total += 1;
        let correlation = message
            .delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        assert!(
            out.insert(correlation.clone(), message.delivery).is_none(),
            "{correlation}: dead-lettered twice"
        );
    }
    assert_eq!(total, expected, "one dead letter per bad message");
    out
}

fn header(message: &Delivery, name: &str) -> String {
    match message
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name).cloned())
    {
        Some(AMQPValue::LongString(value)) => value.to_string(),
        other => panic!("header {name}: {other:?}"),
    }
}

/// Checks one bad case's result against its manifest entry; returns what went wrong.
fn check_rejection(case: &Case, got: &[Received]) -> Result<(), String> {
    let [received] = got else {
        return Err(format!("{} results", got.len()));
    };
    let result = &received.result;
    let error = result.error.as_ref().ok_or("no error")?;
    let expect = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };
    expect(
        result.outcome == Outcome::Rejected,
        format!("outcome {:?}", result.outcome),
    )?;
    let code = case.code.as_deref().expect("bad cases name their code");
    expect(
        error.code == code,
        format!("code {} ({})", error.code, error.message),
    )?;
    expect(!error.retryable, "retryable".into())?;
    expect(result.data.is_none(), "data on a rejection".into())?;
    expect(!error.message.is_empty(), "no message".into())?;
    let command_id = case.command_id.as_deref().unwrap_or(&case.name);
    expect(
        result.command_id == command_id,
        format!(
            "command_id {:?}, expected {command_id:?}",
            result.command_id
        ),
    )?;
    let message_id = received.message_id.as_deref().unwrap_or_default();
    expect(
        message_id == command_id,
        format!("message_id property {message_id:?}"),
    )?;
    let account = case.account.as_deref().unwrap_or("default");
    expect(
        result.account == account,
        format!("account {:?}", result.account),
    )?;
    let routing_key = case
        .routing_key
        .clone()
        .unwrap_or_else(|| result.routing_key());
    expect(
        received.routing_key == routing_key && routing_key.ends_with(".rejected"),
        format!("routing key {:?}", received.routing_key),
    )?;
    let named: Vec<&str> = error.fields.iter().map(|f| f.field.as_str()).collect();
    if let Some(fields) = &case.fields {
        expect(named == *fields, format!("fields {named:?}"))?;
    }
    match (&case.field, &case.reason) {
        (Some(field), reason) => {
            let reason = reason.as_deref().unwrap_or_default();
            if !error
                .fields
                .iter()
                .any(|f| f.field == *field && f.reason.contains(reason))
            {
                return Err(format!(
                    "no field {field:?} with reason {reason:?} in {:?}",
                    error.fields
                ));
            }
        }
        (None, Some(reason)) => expect(
            error.message.contains(reason.as_str()),
            format!("message {:?}", error.message),
        )?,
        (None, None) => {}
    }
    if let Some(message) = &case.message {
        expect(
            error.message.contains(message.as_str()),
            format!("message {:?}", error.message),
        )?;
    }
    // The answer stays small whatever the input: a hostile key or value is not echoed whole.
    let size = received.raw.to_string().len();
    expect(size <= 16 * 1024, format!("a {size}-byte result"))?;
    Ok(())
}

/// Checks a dead letter: the original body, untouched, with its code and reason.
fn check_dead_letter(case: &Case, body: &[u8], dead: Option<&Delivery>) -> Result<(), String> {
    let dead = dead.ok_or("no dead letter")?;
    let code = case.code.as_deref().unwrap_or_default();
    if dead.data != body {
        return Err("the dead letter's body differs from the message".into());
    }
    let reason_code = header(dead, REASON_CODE_HEADER);
    if reason_code != code {
        return Err(format!("{REASON_CODE_HEADER} {reason_code:?}"));
    }
    let reason = header(dead, REASON_HEADER);
    if !reason.starts_with(code) {
        return Err(format!(
            "{REASON_HEADER} {reason:?} does not start with the code"
        ));
    }
    if let Some(field) = &case.field
        && !reason.contains(&format!("; {field}"))
    {
        return Err(format!("{REASON_HEADER} does not name {field}"));
    }
    if reason.len() > 16 * 1024 {
        return Err(format!("a {}-byte {REASON_HEADER}", reason.len()));
    }
    Ok(())
}

/// Checks a hostile but valid case: succeeded once, its strings back verbatim.
fn check_verbatim(case: &Case, body: &[u8], got: &[Received]) -> Result<(), String> {
    let [received] = got else {
        return Err(format!("{} results", got.len()));
    };
    let result = &received.result;
    if result.outcome != Outcome::Succeeded {
        return Err(format!("{:?}: {:?}", result.outcome, result.error));
    }
    let sent: Value = serde_json::from_slice(body).expect("hostile cases are JSON");
    let command_id = case
        .command_id
        .clone()
        .or_else(|| sent["id"].as_str().map(str::to_owned))
        .or_else(|| case.message_id.clone())
        .unwrap_or_default();
    if result.command_id != command_id {
        return Err(format!("command_id {:?}", result.command_id));
    }
    for Verbatim {
        sent: from,
        got: to,
    } in &case.verbatim
    {
        let expected = sent.pointer(from).ok_or(format!("nothing at {from}"))?;
        let came_back = received.raw.pointer(to);
        if came_back != Some(expected) {
            return Err(format!(
                "{from} {expected} came back as {came_back:?} at {to}"
            ));
        }
    }
    Ok(())
}

/// Publishes a corpus; returns each case's body.
async fn publish_all(d: &TestDaemon, kind: &str, cases: &[Case]) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    for case in cases {
        let body = case.body(kind);
        d.publish_body(&body, case.properties(d.queue())).await;
        bodies.push(body);
    }
    bodies
}

fn report(failures: BTreeMap<String, String>, what: &str) {
    assert!(
        failures.is_empty(),
        "{} cases {what}:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|(name, why)| format!("  {name}: {why}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_message_is_rejected_once_naming_its_field_and_dead_lettered_and_hostile_strings_come_back_verbatim()
 {
    crate::support::init_test_log();
    let started = Instant::now();
    let mut d = TestDaemon::start().await;
    let mut results = Results::bind(&d).await;
    let sandbox = d.api.sandbox.admin();

    // Bad input: one rejection each, one dead letter each, no API call.
    let bad = load("bad");
    assert!(bad.len() >= 50, "the corpus holds {} bad cases", bad.len());
    let calls_before = sandbox.request_log().len();
    let bodies = publish_all(&d, "bad", &bad).await;
    let correlations: Vec<&str> = bad.iter().map(Case::correlation_id).collect();
    results.wait_for(&correlations).await;
    let dead = dead_letters(&d, bad.len()).await;
    let mut failures = BTreeMap::new();
    for (case, body) in bad.iter().zip(&bodies) {
        let got = results
            .by_correlation
            .get(case.correlation_id())
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Err(why) = check_rejection(case, got)
            .and_then(|()| check_dead_letter(case, body, dead.get(case.correlation_id())))
        {
            failures.insert(case.name.clone(), why);
        }
    }
    report(failures, "not rejected as the manifest says");
    let stray: Vec<_> = results
        .by_correlation
        .keys()
        .filter(|c| !correlations.contains(&c.as_str()))
        .collect();
    assert!(stray.is_empty(), "results nobody asked for: {stray:?}");
    let calls: Vec<_> = sandbox.request_log()[calls_before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(calls.is_empty(), "bad input reached the API: {calls:?}");
    let stats = &d.processor().stats;
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(count(&stats.rejected), bad.len() as u64);
    assert_eq!(count(&stats.dead_lettered), bad.len() as u64);
    assert_eq!(count(&stats.ack_lost), 0, "no session broke");
    let bad_done = started.elapsed();

    // Hostile but valid: applied, and the sandbox hands the strings back unchanged.
    let hostile = load("hostile");
    let bodies = publish_all(&d, "hostile", &hostile).await;
    let correlations: Vec<&str> = hostile.iter().map(Case::correlation_id).collect();
    results.wait_for(&correlations).await;
    let mut failures = BTreeMap::new();
    for (case, body) in hostile.iter().zip(&bodies) {
        let got = results
            .by_correlation
            .get(case.correlation_id())
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Err(why) = check_verbatim(case, body, got) {
            failures.insert(case.name.clone(), why);
        }
    }
    report(failures, "not applied verbatim");

    // And the daemon still serves.
    d.publish(
        "after-the-corpus",
        "list.create",
        json!({"name": "Still here"}),
    )
    .await;
    results.wait_for(&[]).await;
    let after = d.result("after-the-corpus").await;
    assert_eq!(after.outcome, Outcome::Succeeded, "{:?}", after.error);
    assert_eq!(
        d.depth(&d.pipeline_settings.topology.dead_letter_queue)
            .await,
        0,
        "nothing more was dead-lettered"
    );
    assert_eq!(d.ops("/readyz").await.0, 200);
    eprintln!(
        "bad_input: {} bad cases in {:?}, {} hostile cases, all in {:?}",
        bad.len(),
        bad_done,
        hostile.len(),
        started.elapsed()
    );
    d.stop().await;
}
