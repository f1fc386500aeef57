//! The message-interface documentation kept honest (issue 5): docs/messages/*.schema.json,
//! docs/asyncapi.yaml and docs/messages.md against the code that really decodes commands and
//! writes results.
//!
//! * every example decodes through `envelope::decode` + `Command::parse` and is valid against
//!   its own schema (validated by the `jsonschema` crate, draft 2020-12 with formats asserted;
//!   keywords outside the ones the docs use are refused, so a typo cannot leave a rule out);
//! * mutations of the examples (each limit ±1, each required field removed, unknown keys,
//!   wrong types, bad patterns) are accepted or refused by the schema and the code alike;
//! * result examples are exactly what `CommandResult` serialises; real rejections match
//!   result.schema.json, and so does every message a running pipeline (with the mirror)
//!   publishes: results of every command type and outcome, replays, `mirror.run`, and every
//!   event, under its `event.<type>` routing key and its deprecated bare one;
//! * the error codes documented are exactly [`ErrorCode::ALL`], with the outcome each has.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ctct_sandbox::FaultSpec;
use ctct_sync::amqp::event::{DEPRECATED_HEADER, EVENT_TYPES, REAUTH_REQUIRED, routing_key};
use ctct_sync::clock::Clock;
use ctct_sync::command::check::is_email;
use ctct_sync::command::envelope::{self, MessageMeta};
use ctct_sync::command::outcome::{CommandResult, ErrorCode, Outcome, ResultError};
use ctct_sync::command::{COMMAND_TYPES, Command};
use ctct_sync::pipeline::process::{REASON_CODE_HEADER, REASON_HEADER, reauth_event};
use lapin::BasicProperties;
use lapin::types::AMQPValue;
use serde_json::{Map, Value, json};

use crate::support::api::TestApi;
use crate::support::daemon::{TestDaemon, json_properties};

/// Decoding time: fixed, so example times in 2030 stay in the future.
fn now() -> DateTime<Utc> {
    "2026-11-23T12:00:00Z".parse().expect("a time")
}

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}

/// Every schema file, by name (`contact.upsert.schema.json` → `contact.upsert`).
fn schemas() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(docs().join("messages")).expect("docs/messages exists") {
        let path = entry.expect("a directory entry").path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let name = file
            .strip_suffix(".schema.json")
            .unwrap_or_else(|| panic!("docs/messages/{file} is not a *.schema.json file"));
        let text = std::fs::read_to_string(&path).expect("readable");
        let schema = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        out.insert(name.to_owned(), schema);
    }
    out
}

fn command_types() -> Vec<&'static str> {
    COMMAND_TYPES.to_vec()
}

fn examples(schema: &Value) -> &Vec<Value> {
    schema["examples"].as_array().expect("an examples array")
}

/// What the code makes of an envelope: the command, or the rejection as text.
fn decode(envelope: &Value) -> Result<Command, String> {
    let body = serde_json::to_vec(envelope).expect("serialisable");
    let meta = MessageMeta {
        content_type: Some("application/json"),
        ..MessageMeta::default()
    };
    let decoded = envelope::decode(&body, &meta).map_err(|e| e.rejection.to_string())?;
    Command::parse(&decoded, now()).map_err(|r| r.to_string())
}

// ------------------------------------------------------------------ validator

/// Patterns used by the docs (the mutations below make values for each).
const NO_CONTROL: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";
const NO_CONTROL_BUT_LINES: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";
const BLANK: &str = r"^[\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$";
const UUID: &str = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";
const COMMAND_ID: &str = r"^[!-~]+$";
const ACCOUNT: &str = r"^[A-Za-z0-9_-]+$";
const COUNTRY: &str = r"^[A-Z]{2}$";
const ANNIVERSARY: &str = r"^([0-9]{4}[-/][0-9]+[-/][0-9]+|[0-9]+[-/][0-9]+[-/][0-9]{4})$";

/// The keywords the docs may use: anything else (a misspelt keyword) would be ignored by
/// validators, leaving a rule unchecked.
const KEYWORDS: &[&str] = &[
    "$schema",
    "$defs",
    "$ref",
    "$comment",
    "title",
    "description",
    "examples",
    "default",
    "type",
    "const",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "deprecated",
    "readOnly",
];

/// Compiles a schema with the `jsonschema` crate: draft 2020-12, formats asserted (as the guide
/// tells users to), `email` being ctct-sync's own rule (the schemas describe it), unknown
/// formats refused.
fn compile(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .with_format("email", is_email)
        .build(schema)
        .unwrap_or_else(|e| panic!("not a valid schema: {e}\n{schema:#}"))
}

/// A JSON Schema document of docs/messages/ and its validator.
struct Schema<'a> {
    root: &'a Value,
    validator: jsonschema::Validator,
    /// Subschemas (with the root's `$defs`) compiled on demand, by address in `root`.
    parts: RefCell<HashMap<*const Value, Arc<jsonschema::Validator>>>,
}

impl<'a> Schema<'a> {
    fn new(root: &'a Value) -> Self {
        Self {
            root,
            validator: compile(root),
            parts: RefCell::new(HashMap::new()),
        }
    }

    /// What the validator finds wrong with `value` (empty when it is valid).
    fn errors(&self, value: &Value) -> Vec<String> {
        self.validator
            .iter_errors(value)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    /// Whether `value` is valid against `schema`, a part of the root.
    fn valid(&self, schema: &'a Value, value: &Value) -> bool {
        let key = schema as *const Value;
        let cached = self.parts.borrow().get(&key).cloned();
        let validator = cached.unwrap_or_else(|| {
            let mut part = match schema {
                Value::Object(map) => map.clone(),
                Value::Bool(true) => Map::new(),
                _ => return Arc::new(compile(&json!({"not": {}}))),
            };
            if let Some(defs) = self.root.get("$defs") {
                part.entry("$defs").or_insert_with(|| defs.clone());
            }
            let validator = Arc::new(compile(&Value::Object(part)));
            self.parts.borrow_mut().insert(key, validator.clone());
            validator
        });
        validator.is_valid(value)
    }

    fn resolve(&self, reference: &Value) -> &'a Value {
        let name = reference
            .as_str()
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .unwrap_or_else(|| panic!("only #/$defs/ references are used: {reference}"));
        self.root["$defs"]
            .get(name)
            .unwrap_or_else(|| panic!("$ref to a missing definition: {name}"))
    }

    /// Subschemas that apply to `value` at the same place: the node, its `$ref`, `allOf`, the
    /// branches of `anyOf`/`oneOf` it matches and the `then`/`else` its `if` picks.
    fn applicable(&self, schema: &'a Value, value: &Value, out: &mut Vec<&'a Value>) {
        let Some(node) = schema.as_object() else {
            return;
        };
        out.push(schema);
        if let Some(reference) = node.get("$ref") {
            self.applicable(self.resolve(reference), value, out);
        }
        for sub in node
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.applicable(sub, value, out);
        }
        for key in ["anyOf", "oneOf"] {
            for sub in node
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if self.valid(sub, value) {
                    self.applicable(sub, value, out);
                }
            }
        }
        if let Some(condition) = node.get("if") {
            let branch = if self.valid(condition, value) {
                "then"
            } else {
                "else"
            };
            if let Some(sub) = node.get(branch) {
                self.applicable(sub, value, out);
            }
        }
    }

    /// Object keys the schema does not declare where it leaves objects open only by omission:
    /// documentation gaps (JSON Schema allows them; the docs should name them).
    fn undeclared(&self, schema: &'a Value, value: &Value, at: &str, out: &mut Vec<String>) {
        let mut nodes = Vec::new();
        self.applicable(schema, value, &mut nodes);
        match value {
            Value::Object(map) => {
                let open = nodes
                    .iter()
                    .any(|n| matches!(n.get("additionalProperties"), Some(a) if a != &Value::Bool(false)));
                let declared: BTreeSet<&str> = nodes
                    .iter()
                    .filter_map(|n| n.get("properties").and_then(Value::as_object))
                    .flat_map(|p| p.keys().map(String::as_str))
                    .collect();
                let described = nodes.iter().any(|n| n.get("properties").is_some());
                for (key, child) in map {
                    let path = format!("{at}.{key}");
                    if described && !open && !declared.contains(key.as_str()) {
                        out.push(format!("{path} is not declared"));
                    }
                    for node in &nodes {
                        if let Some(sub) = node.get("properties").and_then(|p| p.get(key)) {
                            self.undeclared(sub, child, &path, out);
                        } else if let Some(sub @ Value::Object(_)) =
                            node.get("additionalProperties")
                        {
                            self.undeclared(sub, child, &path, out);
                        }
                    }
                }
            }
            Value::Array(items) => {
                for node in &nodes {
                    if let Some(item) = node.get("items") {
                        for (i, child) in items.iter().enumerate() {
                            self.undeclared(item, child, &format!("{at}[{i}]"), out);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Every keyword in `schema` is one of [`KEYWORDS`].
fn scan(schema: &Value, at: &str, problems: &mut Vec<String>) {
    let Some(node) = schema.as_object() else {
        return;
    };
    for (key, value) in node {
        if !KEYWORDS.contains(&key.as_str()) {
            problems.push(format!("{at}: keyword {key} is not one the docs use"));
        }
        let here = format!("{at}/{key}");
        match key.as_str() {
            "properties" | "$defs" => {
                for (name, sub) in value.as_object().into_iter().flatten() {
                    scan(sub, &format!("{here}/{name}"), problems);
                }
            }
            "allOf" | "anyOf" | "oneOf" => {
                for (i, sub) in value.as_array().into_iter().flatten().enumerate() {
                    scan(sub, &format!("{here}/{i}"), problems);
                }
            }
            "items" | "additionalProperties" | "propertyNames" | "not" | "if" | "then" | "else" => {
                scan(value, &here, problems)
            }
            _ => {}
        }
    }
}

// ------------------------------------------------------------------ mutations

/// One change to an example: set (or, with `None`, remove) the value at `path`.
struct Mutation {
    path: Vec<String>,
    set: Option<Value>,
    what: String,
}

fn apply(example: &Value, mutation: &Mutation) -> Value {
    let mut value = example.clone();
    let (last, parents) = mutation.path.split_last().expect("never the root");
    let mut parent = &mut value;
    for step in parents {
        parent = match parent {
            Value::Object(map) => map.get_mut(step).expect("a path into the example"),
            Value::Array(items) => &mut items[step.parse::<usize>().expect("an index")],
            _ => panic!("a path into the example"),
        };
    }
    match (parent, &mutation.set) {
        (Value::Object(map), Some(new)) => {
            map.insert(last.clone(), new.clone());
        }
        (Value::Object(map), None) => {
            map.remove(last);
        }
        (Value::Array(items), Some(new)) => {
            items[last.parse::<usize>().expect("an index")] = new.clone()
        }
        (Value::Array(items), None) => {
            items.remove(last.parse::<usize>().expect("an index"));
        }
        _ => panic!("a path into the example"),
    }
    value
}

fn text_of(len: usize) -> String {
    "x".repeat(len)
}

/// A valid e-mail address of exactly `len` characters (8 ≤ len ≤ 130).
fn email_of(len: usize) -> String {
    let local = (len - 6).min(64);
    let domain = len - 1 - local;
    format!("{}@{}.com", "p".repeat(local), "d".repeat(domain - 4))
}

fn uuid_of(i: usize) -> String {
    format!("{i:08x}-0000-4000-8000-{i:012x}")
}

/// Mutations of `value` guided by the keywords of `schema` (directly on each node).
fn mutations(s: &Schema, schema: &Value, value: &Value, path: &[String], out: &mut Vec<Mutation>) {
    let schema = match schema.get("$ref") {
        Some(reference) => s.resolve(reference),
        None => schema,
    };
    let Some(node) = schema.as_object() else {
        return;
    };
    let mut add = |set: Option<Value>, what: String| {
        out.push(Mutation {
            path: path.to_vec(),
            set,
            what,
        })
    };
    let kinds: Vec<&str> = match node.get("type") {
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        Some(kind) => kind.as_str().into_iter().collect(),
        None => Vec::new(),
    };
    let allows = |k: &str| kinds.contains(&k) || (k == "number" && kinds.contains(&"integer"));
    if !path.is_empty() && !kinds.is_empty() {
        if !allows("string") {
            add(Some(json!("text")), "a string instead".into());
        } else if !allows("number") {
            add(Some(json!(7)), "a number instead".into());
        }
        if !allows("object") {
            add(Some(json!({})), "an object instead".into());
        }
        if allows("null") {
            add(Some(Value::Null), "null where allowed".into());
        }
    }
    if allows("string") && !path.is_empty() {
        add(Some(json!("")), "empty string".into());
        let pattern = node.get("pattern").and_then(Value::as_str);
        let format = node.get("format").and_then(Value::as_str);
        if let Some(max) = node.get("maxLength").and_then(Value::as_u64) {
            let max = max as usize;
            if format == Some("email") {
                add(
                    Some(json!(email_of(max + 1))),
                    format!("e-mail of {}", max + 1),
                );
                add(Some(json!(email_of(max))), format!("e-mail of {max}"));
            } else {
                add(
                    Some(json!(text_of(max + 1))),
                    format!("text of {}", max + 1),
                );
                if matches!(
                    pattern,
                    None | Some(NO_CONTROL | NO_CONTROL_BUT_LINES | COMMAND_ID | ACCOUNT)
                ) {
                    add(Some(json!(text_of(max))), format!("text of {max}"));
                }
            }
        }
        if format == Some("email") {
            add(Some(json!("pat@example")), "undotted domain".into());
            add(Some(json!("pat lee@example.com")), "space".into());
        }
        let (bad, good): (&[&str], &[&str]) = match pattern {
            Some(NO_CONTROL) => (&["bell\u{7}"], &[]),
            Some(NO_CONTROL_BUT_LINES) => (&["nul\u{0}"], &["one\ntwo\tthree\r\n"]),
            Some(UUID) => (
                &[
                    "07936f78-662a-11eb-af0a-fa163e56c9b",
                    "07936f78662a11ebaf0afa163e56c9b0",
                    "{07936f78-662a-11eb-af0a-fa163e56c9b0}",
                ],
                &["07936F78-662A-11EB-AF0A-FA163E56C9B0"],
            ),
            Some(COMMAND_ID) => (&["has space"], &["~crm:42/1"]),
            Some(ACCOUNT) => (&["emea.eu"], &["EMEA_2-b"]),
            Some(COUNTRY) => (&["us", "USA"], &["GB"]),
            Some(ANNIVERSARY) => (
                &["15.11.2006", "2006-11", "06-11-15"],
                &["11/15/2006", "2006/1/5"],
            ),
            _ => (&[], &[]),
        };
        for text in bad.iter().chain(good) {
            add(Some(json!(text)), format!("{text:?}"));
        }
        if node
            .get("not")
            .and_then(|n| n.get("pattern"))
            .and_then(Value::as_str)
            == Some(BLANK)
        {
            add(Some(json!(" \t ")), "blank".into());
        }
    }
    for member in node
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add(Some(member.clone()), format!("enum member {member}"));
    }
    if node.get("enum").is_some() {
        add(Some(json!("no-such-value")), "not in the enum".into());
    }
    if let Some(Value::String(c)) = node.get("const") {
        add(Some(json!(format!("{c}.x"))), "another constant".into());
    }
    if allows("integer") {
        for (key, step) in [("minimum", -1), ("maximum", 1)] {
            if let Some(bound) = node.get(key).and_then(Value::as_i64) {
                add(Some(json!(bound)), format!("{key} {bound}"));
                add(Some(json!(bound + step)), format!("{key} {bound} {step:+}"));
            }
        }
        add(Some(json!(1.5)), "a fraction".into());
    }
    match value {
        Value::Array(items) => {
            let item_schema = node.get("items").cloned().unwrap_or(Value::Null);
            let item = |i: usize| -> Option<Value> {
                if item_schema.get("pattern").and_then(Value::as_str) == Some(UUID) {
                    Some(json!(uuid_of(i + 1)))
                } else if item_schema.get("format").and_then(Value::as_str) == Some("email") {
                    Some(json!(format!("p{i}@example.com")))
                } else {
                    items.first().cloned()
                }
            };
            let list = |n: usize| -> Option<Value> {
                (0..n)
                    .map(item)
                    .collect::<Option<Vec<_>>>()
                    .map(Value::Array)
            };
            if let Some(max) = node.get("maxItems").and_then(Value::as_u64) {
                for n in [max as usize, max as usize + 1] {
                    if let Some(list) = list(n) {
                        add(Some(list), format!("{n} items"));
                    }
                }
            }
            if let Some(min) = node
                .get("minItems")
                .and_then(Value::as_u64)
                .filter(|m| *m > 0)
                && let Some(list) = list(min as usize - 1)
            {
                add(Some(list), format!("{} items", min - 1));
            }
            if node.get("uniqueItems") == Some(&Value::Bool(true))
                && let Some(first) = items.first()
            {
                add(Some(json!([first, first])), "a repeated item".into());
            }
            if let (Some(first), Some(item_schema)) = (items.first(), node.get("items")) {
                let mut child = path.to_vec();
                child.push("0".into());
                mutations(s, item_schema, first, &child, out);
            }
        }
        Value::Object(map) => {
            let properties = node.get("properties").and_then(Value::as_object);
            for (name, child) in map {
                let mut at = path.to_vec();
                at.push(name.clone());
                out.push(Mutation {
                    path: at.clone(),
                    set: None,
                    what: "removed".into(),
                });
                match properties.and_then(|p| p.get(name)) {
                    Some(sub) => mutations(s, sub, child, &at, out),
                    None => {
                        if let Some(sub @ Value::Object(_)) = node.get("additionalProperties") {
                            mutations(s, sub, child, &at, out);
                        }
                    }
                }
            }
            let mut key = |name: String, what: &str| {
                let mut at = path.to_vec();
                at.push(name);
                out.push(Mutation {
                    path: at,
                    set: Some(json!("x")),
                    what: what.into(),
                });
            };
            // Every object of a command is closed in the code (deny_unknown_fields).
            if properties.is_some() {
                key("zz_unknown".into(), "an unknown key");
            }
            if let Some(names) = node.get("propertyNames") {
                if let Some(max) = names.get("maxLength").and_then(Value::as_u64) {
                    key("k".repeat(max as usize + 1), "a key too long");
                    key("k".repeat(max as usize), "a key of the longest length");
                }
                key("  ".into(), "a blank key");
                key("a\u{1}b".into(), "a key with a control character");
            }
            if let Some(max) = node.get("maxProperties").and_then(Value::as_u64) {
                for n in [max, max + 1] {
                    let many: Map<String, Value> =
                        (0..n).map(|i| (format!("field {i}"), json!("x"))).collect();
                    out.push(Mutation {
                        path: path.to_vec(),
                        set: Some(Value::Object(many)),
                        what: format!("{n} keys"),
                    });
                }
            }
        }
        _ => {}
    }
}

// ------------------------------------------------------------------ the files

#[test]
fn there_is_one_schema_per_command_type_and_event_type_plus_the_result() {
    let schemas = schemas();
    let mut expected: BTreeSet<String> = COMMAND_TYPES.iter().map(|t| t.to_string()).collect();
    expected.extend(EVENT_TYPES.iter().map(|t| t.to_string()));
    expected.insert("result".into());
    let found: BTreeSet<String> = schemas.keys().cloned().collect();
    assert_eq!(
        found, expected,
        "docs/messages/ holds exactly these schemas"
    );
    for t in COMMAND_TYPES {
        assert_eq!(
            schemas[t]["properties"]["type"]["const"], t,
            "{t}.schema.json fixes `type` to {t}"
        );
    }
    for t in EVENT_TYPES {
        let schema = &schemas[t];
        assert_eq!(schema["properties"]["type"]["const"], t);
        assert!(
            schema["properties"].get("outcome").is_none()
                && schema["properties"].get("command_id").is_none(),
            "{t}: events have no `outcome` or `command_id`"
        );
        let text = schema["description"].as_str().unwrap_or_default();
        assert!(
            text.contains(&format!("`{}`", routing_key(t))),
            "{t}.schema.json names its routing key"
        );
        for example in examples(schema) {
            let errors = Schema::new(schema).errors(example);
            assert!(errors.is_empty(), "{t}: {errors:?}");
        }
    }
}

#[test]
fn every_schema_is_draft_2020_12_with_examples_and_only_keywords_the_docs_use() {
    for (name, schema) in schemas() {
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert!(
            schema["title"].is_string() && schema["description"].is_string(),
            "{name}"
        );
        assert!(!examples(&schema).is_empty(), "{name} has examples");
        let mut problems = Vec::new();
        scan(&schema, &name, &mut problems);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

#[test]
fn every_command_example_is_valid_against_its_schema_and_decodes_through_the_real_code() {
    let schemas = schemas();
    for t in command_types() {
        let schema = Schema::new(&schemas[t]);
        for example in examples(&schemas[t]) {
            let errors = schema.errors(example);
            assert!(errors.is_empty(), "{t} example {example}: {errors:?}");
            let mut gaps = Vec::new();
            schema.undeclared(schema.root, example, "$", &mut gaps);
            assert!(gaps.is_empty(), "{t}: {gaps:?}");
            decode(example).unwrap_or_else(|e| panic!("{t} example {example} is refused: {e}"));
            assert_eq!(example["type"], t);
        }
    }
}

/// The schemas say exactly what the code accepts, at every limit the schemas name: each
/// mutation is accepted by both or refused by both.
#[test]
fn mutated_examples_are_accepted_or_refused_by_the_schema_and_the_code_alike() {
    let schemas = schemas();
    let mut tried = 0;
    let mut disagreements = Vec::new();
    for t in command_types() {
        let schema = Schema::new(&schemas[t]);
        for example in examples(&schemas[t]) {
            let mut all = Vec::new();
            mutations(&schema, schema.root, example, &[], &mut all);
            for mutation in all {
                let mutated = apply(example, &mutation);
                let by_schema = schema.errors(&mutated);
                let by_code = decode(&mutated);
                tried += 1;
                if by_schema.is_empty() != by_code.is_ok() {
                    disagreements.push(format!(
                        "{t} {} ({}): schema {} {:?}, code {}",
                        mutation.path.join("."),
                        mutation.what,
                        if by_schema.is_empty() {
                            "accepts"
                        } else {
                            "refuses"
                        },
                        by_schema,
                        match &by_code {
                            Ok(_) => "accepts".to_owned(),
                            Err(e) => format!("refuses ({e})"),
                        },
                    ));
                }
            }
        }
    }
    assert!(tried > 500, "only {tried} mutations");
    assert!(
        disagreements.is_empty(),
        "{} of {tried} mutations disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

// ------------------------------------------------------------------ results and events

#[test]
fn result_examples_are_exactly_what_the_code_serialises_and_valid() {
    let schemas = schemas();
    let schema = Schema::new(&schemas["result"]);
    let mut outcomes = BTreeSet::new();
    for example in examples(schema.root) {
        let result: CommandResult = serde_json::from_value(example.clone())
            .unwrap_or_else(|e| panic!("{example} is not a CommandResult: {e}"));
        assert_eq!(
            &serde_json::to_value(&result).unwrap(),
            example,
            "the example is what ctct-sync publishes"
        );
        let errors = schema.errors(example);
        assert!(errors.is_empty(), "{example}: {errors:?}");
        let mut gaps = Vec::new();
        schema.undeclared(schema.root, example, "$", &mut gaps);
        assert!(gaps.is_empty(), "{gaps:?}");
        outcomes.insert(result.outcome.as_str());
    }
    assert_eq!(outcomes.len(), 3, "examples show every outcome");
}

#[test]
fn the_result_schema_refuses_data_and_error_that_do_not_fit_the_outcome() {
    let schemas = schemas();
    let schema = Schema::new(&schemas["result"]);
    let good = examples(schema.root)[0].clone();
    for (field, value) in [
        (
            "error",
            json!({"code": "x", "message": "m", "retryable": false, "fields": []}),
        ),
        ("data", Value::Null),
        ("outcome", json!("done")),
    ] {
        let mut bad = good.clone();
        bad[field] = value;
        assert!(!schema.errors(&bad).is_empty(), "{field} {bad}");
    }
    let mut wrong_data = good.clone();
    wrong_data["data"] = json!({"count": 1});
    assert!(
        !schema.errors(&wrong_data).is_empty(),
        "data is checked per type"
    );
}

/// The documented error codes (`anyOf` consts of `error.code`).
fn documented_codes(schemas: &BTreeMap<String, Value>) -> BTreeSet<String> {
    schemas["result"]["properties"]["error"]["anyOf"][0]["properties"]["code"]["anyOf"]
        .as_array()
        .expect("error.code lists its codes")
        .iter()
        .filter_map(|c| c["const"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn rejections_of_the_real_decoder_make_valid_results_with_documented_codes() {
    let schemas = schemas();
    let schema = Schema::new(&schemas["result"]);
    let codes = documented_codes(&schemas);
    let json_type = Some("application/json");
    let huge = vec![b' '; envelope::MAX_BODY_BYTES + 1];
    let cases: Vec<(&[u8], MessageMeta, &str)> = vec![
        (b"{}".as_slice(), MessageMeta { content_type: Some("text/plain"), ..MessageMeta::default() }, "unsupported_content_type"),
        (b"{}", MessageMeta { content_encoding: Some("gzip"), ..MessageMeta::default() }, "unsupported_content_encoding"),
        (&huge, MessageMeta::default(), "too_large"),
        (b"{\"id\":\"\xff\"}", MessageMeta::default(), "invalid_utf8"),
        (b"{\"id\":", MessageMeta { message_id: Some("amqp-77"), ..MessageMeta::default() }, "invalid_json"),
        (br#"{"id":"a b","type":7,"extra":1}"#, MessageMeta::default(), "invalid_envelope"),
        (br#"{"id":"c-1","type":"contact.frobnicate"}"#, MessageMeta { content_type: json_type, ..MessageMeta::default() }, "unknown_type"),
        (br#"{"id":"c-2","type":"contact.create","data":{"email":"nope","birthday_day":3}}"#, MessageMeta::default(), "invalid_data"),
        (br#"{"id":"c-3","type":"campaign.schedule","data":{"campaign_id":"987cb9ab-ad0c-4087-bd46-2e2ad241221f","scheduled_at":"2020-01-01T00:00:00Z"}}"#, MessageMeta::default(), "invalid_data"),
    ];
    for (body, meta, code) in cases {
        let (rejection, id, command_type, account) = match envelope::decode(body, &meta) {
            Err(e) => {
                let e = *e;
                let partial = e.partial;
                (
                    e.rejection,
                    partial.id,
                    partial.command_type,
                    partial.account,
                )
            }
            Ok(env) => (
                Command::parse(&env, now()).expect_err("a bad command"),
                Some(env.id),
                Some(env.command_type),
                Some(env.account),
            ),
        };
        assert_eq!(rejection.code, code);
        assert!(codes.contains(code), "{code} is documented");
        let result = CommandResult {
            command_id: id.unwrap_or_default(),
            command_type: command_type.unwrap_or_default(),
            account: account.unwrap_or_else(|| "default".into()),
            outcome: Outcome::Rejected,
            data: None,
            error: Some(ResultError::from(&rejection)),
            attempts: 1,
            replayed: false,
            started_at: now(),
            finished_at: now(),
            warnings: Vec::new(),
        };
        let value = serde_json::to_value(&result).unwrap();
        let errors = schema.errors(&value);
        assert!(errors.is_empty(), "{code}: {value}: {errors:?}");
    }
}

/// The `| `code` | outcome |` rows of messages.md's error code table.
fn guide_codes() -> BTreeMap<String, String> {
    let guide = std::fs::read_to_string(docs().join("messages.md")).expect("docs/messages.md");
    let table = guide
        .split("## Error codes")
        .nth(1)
        .expect("an error codes section");
    table
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((code.to_owned(), cells.get(2)?.to_string()))
        })
        .collect()
}

#[test]
fn every_error_code_is_documented_with_its_outcome_and_every_documented_code_exists() {
    let schemas = schemas();
    let all: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(
        documented_codes(&schemas),
        all,
        "result.schema.json error.code lists exactly ErrorCode::ALL"
    );
    let described =
        &schemas["result"]["properties"]["error"]["anyOf"][0]["properties"]["code"]["anyOf"];
    let guide = guide_codes();
    assert_eq!(
        guide.keys().cloned().collect::<BTreeSet<_>>(),
        all,
        "messages.md's table lists exactly ErrorCode::ALL"
    );
    for &code in ErrorCode::ALL {
        let outcome = code.outcome().as_str();
        assert_eq!(guide[code.as_str()], outcome, "messages.md: {code}");
        let description = described
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["const"] == code.as_str())
            .and_then(|c| c["description"].as_str())
            .unwrap_or_default();
        assert!(
            description.starts_with(&format!("({outcome})")),
            "result.schema.json: {code} is described as {outcome}"
        );
    }
}

#[test]
fn reauth_event_examples_are_what_the_pipeline_publishes() {
    let schemas = schemas();
    let schema = Schema::new(&schemas[REAUTH_REQUIRED]);
    for example in examples(schema.root) {
        assert_eq!(example["type"], REAUTH_REQUIRED);
        let account = example["account"].as_str().expect("an account");
        let reason = example["reason"].as_str().expect("a reason");
        let at: DateTime<Utc> = serde_json::from_value(example["at"].clone()).expect("a time");
        assert_eq!(&reauth_event(account, reason, at), example);
        assert!(schema.errors(example).is_empty());
    }
    let real = reauth_event("emea", "refresh token refused", now());
    assert!(schema.errors(&real).is_empty(), "{real}");
}

// ------------------------------------------------------------------ asyncapi and guide

fn asyncapi() -> Value {
    let text = std::fs::read_to_string(docs().join("asyncapi.yaml")).expect("docs/asyncapi.yaml");
    let yaml: serde_norway::Value = serde_norway::from_str(&text).expect("asyncapi.yaml is YAML");
    serde_json::to_value(yaml).expect("it converts to JSON")
}

/// Every `$ref` in `value`: (where, reference).
fn refs(value: &Value, at: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    out.push((at.clone(), child.as_str().unwrap_or_default().to_owned()));
                } else {
                    refs(child, format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                refs(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_asyncapi_document_names_every_command_type_and_its_references_resolve() {
    let doc = asyncapi();
    let schemas = schemas();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let messages = doc["components"]["messages"].as_object().expect("messages");
    for t in COMMAND_TYPES.iter().chain(&EVENT_TYPES) {
        let t = *t;
        let message = &messages
            .get(t)
            .unwrap_or_else(|| panic!("asyncapi.yaml has message {t}"));
        assert_eq!(
            message["payload"]["schema"]["$ref"],
            format!("./messages/{t}.schema.json"),
            "{t} uses its schema file"
        );
        let shown = message["examples"].as_array().expect("examples");
        assert!(!shown.is_empty(), "{t} has an example");
        let schema = Schema::new(&schemas[t]);
        for example in shown {
            let payload = &example["payload"];
            assert!(schema.errors(payload).is_empty(), "{t}: {payload}");
            if !EVENT_TYPES.contains(&t) {
                decode(payload).unwrap_or_else(|e| panic!("{t}: {e}"));
                assert!(
                    doc["channels"]["commands"]["messages"][t].is_object(),
                    "the commands channel carries {t}"
                );
            }
        }
    }
    let result = Schema::new(&schemas["result"]);
    for example in messages["result"]["examples"]
        .as_array()
        .expect("result examples")
    {
        let payload = &example["payload"];
        assert!(result.errors(payload).is_empty(), "{payload}");
        serde_json::from_value::<CommandResult>(payload.clone()).expect("a CommandResult");
    }

    // Every reference resolves: inside the document, or to a file beside it.
    let mut all = Vec::new();
    refs(&doc, String::new(), &mut all);
    assert!(all.len() > 50, "references found: {}", all.len());
    for (at, reference) in all {
        if let Some(pointer) = reference.strip_prefix('#') {
            assert!(doc.pointer(pointer).is_some(), "{at}: {reference} resolves");
        } else {
            let file = reference.split('#').next().unwrap_or_default();
            assert!(
                docs().join(file).is_file(),
                "{at}: {reference} names a file"
            );
        }
    }

    // The names and headers are the daemon's defaults.
    let config: toml::Table = toml::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"))
            .expect("config/default.toml"),
    )
    .expect("TOML");
    let amqp = &config["amqp"];
    let channels = &doc["channels"];
    let commands_queue = amqp["commands_queue"].as_str().unwrap();
    assert_eq!(channels["commands"]["address"], commands_queue);
    assert_eq!(
        channels["commands"]["bindings"]["amqp"]["queue"]["name"],
        commands_queue
    );
    assert_eq!(
        channels["commands"]["x-amqp-queue-arguments"]["x-delivery-limit"],
        amqp["delivery_limit"].as_integer().unwrap()
    );
    assert_eq!(
        channels["commands"]["x-amqp-queue-arguments"]["x-dead-letter-exchange"],
        format!("{commands_queue}.dlx")
    );
    for channel in ["results", "accountEvents", "mirrorEvents"] {
        assert_eq!(
            channels[channel]["bindings"]["amqp"]["exchange"]["name"],
            amqp["results_exchange"].as_str().unwrap()
        );
    }
    assert_eq!(
        channels["accountEvents"]["address"],
        routing_key(REAUTH_REQUIRED)
    );
    assert_eq!(channels["mirrorEvents"]["address"], "event.mirror.{end}");
    for end in ["completed", "failed"] {
        let t = format!("mirror.{end}");
        assert!(
            channels["mirrorEvents"]["parameters"]["end"]["enum"]
                .as_array()
                .is_some_and(|e| e.contains(&json!(end))),
            "{t}"
        );
        assert!(channels["mirrorEvents"]["messages"][&t].is_object(), "{t}");
    }
    assert_eq!(
        channels["deadLetters"]["address"],
        amqp["dead_letter_queue"].as_str().unwrap()
    );
    assert_eq!(
        channels["unrouted"]["address"],
        amqp["unrouted_queue"].as_str().unwrap()
    );
    assert_eq!(
        channels["unrouted"]["x-amqp-queue-arguments"]["x-max-length"],
        ctct_sync::amqp::topology::UNROUTED_MAX_LENGTH
    );
    let headers = &messages["deadLetter"]["headers"]["properties"];
    for header in [REASON_CODE_HEADER, REASON_HEADER] {
        assert!(
            headers[header].is_object(),
            "dead letters document {header}"
        );
    }
}

#[test]
fn the_guide_covers_every_command_type_and_the_commands_to_try_it() {
    let guide = std::fs::read_to_string(docs().join("messages.md")).expect("docs/messages.md");
    for t in COMMAND_TYPES.iter().chain(&EVENT_TYPES) {
        assert!(guide.contains(&format!("`{t}`")), "messages.md names {t}");
    }
    for t in EVENT_TYPES {
        assert!(
            guide.contains(&format!("`{}`", routing_key(t))),
            "messages.md names the routing key of {t}"
        );
    }
    for needle in [
        "ctct-sync send",
        "--wait",
        "ctct-sync dlq list",
        "ctct-sync dlq replay --id",
        REASON_CODE_HEADER,
        REASON_HEADER,
        "reply_to",
        "correlation_id",
        "replayed",
        DEPRECATED_HEADER,
    ] {
        assert!(guide.contains(needle), "messages.md mentions {needle}");
    }
}

// ------------------------------------------------------------------ live results and events

/// A pipeline with the mirror, publishing to its own results exchange; every message it
/// publishes is checked at the end.
struct Run {
    d: TestDaemon,
    n: u32,
}

impl Run {
    /// Publishes a command and returns its result as published (the raw body).
    async fn send(&mut self, account: &str, command_type: &str, data: Value) -> Value {
        self.n += 1;
        let id = format!("docs-{}", self.n);
        self.d.publish_for(account, &id, command_type, data).await;
        self.raw_result(&id).await
    }

    /// The first result published for `id`, as published.
    async fn raw_result(&mut self, id: &str) -> Value {
        self.d.result(id).await;
        self.d
            .messages
            .iter()
            .find(|(_, _, body)| body["command_id"] == id)
            .map(|(_, _, body)| body.clone())
            .expect("the result's message")
    }

    /// Publishes a command that must succeed; returns the result's `data`.
    async fn ok(&mut self, command_type: &str, data: Value) -> Value {
        let result = self.send("default", command_type, data).await;
        assert_eq!(result["outcome"], "succeeded", "{command_type}: {result:#}");
        result["data"].clone()
    }

    /// Publishes a body as it is; returns the result for `id` (the body's or the message id).
    async fn raw(&mut self, id: &str, body: &[u8], properties: BasicProperties) -> Value {
        self.d.publish_body(body, properties).await;
        self.raw_result(id).await
    }
}

/// A message body's form under the deprecated key: mirror events had `outcome` for `status`.
fn legacy_form(body: &Value) -> Value {
    let mut legacy = body.clone();
    if let Value::Object(map) = &mut legacy
        && let Some(status) = map.remove("status")
    {
        map.insert("outcome".into(), status);
    }
    legacy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_result_and_event_a_running_pipeline_publishes_matches_its_schema() {
    let api = TestApi::start().await;
    let (second_id, second) = api.sandbox.admin().add_account();
    api.client
        .tokens()
        .import_refresh_token("second", secrecy::SecretString::from(second))
        .await
        .expect("the second account");
    // Two attempts: a command failing transiently through both ends `retries_exhausted`.
    let d = TestDaemon::start_with_mirror(api, &[("CTCT_SYNC__AMQP__MAX_ATTEMPTS", "2")]).await;
    let mut r = Run { d, n: 0 };
    let emails = r
        .ok(
            "account.emails.list",
            json!({"confirm_status": "CONFIRMED"}),
        )
        .await;
    let owner = emails["account_emails"][0]["email_address"]
        .as_str()
        .expect("a confirmed address")
        .to_owned();
    r.ok("account.privileges.get", json!({})).await;
    for _ in 0..2 {
        r.ok(
            "account.email.add",
            json!({"email_address": "docs@leeskitchen.example"}),
        )
        .await;
    }
    let field = r
        .ok(
            "custom_field.create",
            json!({"label": "Hobby", "type": "string"}),
        )
        .await;
    let field_id = field["custom_field_id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.ok(
            "custom_field.create",
            json!({"label": "Hobby", "type": "string"})
        )
        .await["already_existed"],
        true
    );
    r.ok(
        "custom_field.update",
        json!({"custom_field_id": field_id, "label": "Pastime"}),
    )
    .await;
    r.ok("custom_field.list", json!({})).await;
    let list = r
        .ok(
            "list.create",
            json!({"name": "Docs newsletter", "description": "Tests"}),
        )
        .await;
    let list_id = list["list_id"].as_str().unwrap().to_owned();
    let other = r.ok("list.create", json!({"name": "Docs VIP"})).await["list_id"].clone();
    r.ok("list.create", json!({"name": "Docs VIP"})).await;
    r.ok("list.list", json!({})).await;
    let gone = r.ok("list.create", json!({"name": "Docs gone"})).await["list_id"].clone();
    r.ok(
        "list.update",
        json!({"list_id": gone, "name": "Docs going", "description": "Soon deleted", "favorite": true}),
    )
    .await;
    r.ok("list.delete", json!({"list_id": gone})).await;
    let admin = r.d.api.sandbox.admin();
    let segment = admin
        .add_segment(
            &admin.primary_account(),
            "Docs re-engage",
            r#"{"version":"1.0.0","criteria":{"type":"and","group":[]}}"#,
        )
        .expect("a segment");
    r.ok("segment.list", json!({})).await;
    r.ok("segment.get", json!({"segment_id": segment})).await;
    let tag = r
        .ok(
            "tag.create",
            json!({"name": "Docs gold", "tag_source": "ESTY"}),
        )
        .await["tag_id"]
        .clone();
    r.ok("tag.create", json!({"name": "Docs gold"})).await;
    r.ok(
        "tag.update",
        json!({"tag_id": tag, "name": "Docs platinum"}),
    )
    .await;
    r.ok("tag.delete", json!({"tag_id": tag})).await;

    let contact = json!({"email": "pat.docs@example.com", "first_name": "Pat", "birthday_month": 4,
        "birthday_day": 17, "anniversary": "2019-06-01",
        "phone_numbers": [{"phone_number": "+1 555-0100", "kind": "mobile"}],
        "street_addresses": [{"kind": "work", "street": "12 Harbour St", "city": "Boston"}],
        "custom_fields": {"Pastime": "Sailing"}, "list_ids": [list_id]});
    let created = r.ok("contact.create", contact.clone()).await;
    let contact_id = created["contact_id"].as_str().unwrap().to_owned();
    let silver = r.ok("tag.create", json!({"name": "Docs silver"})).await["tag_id"].clone();
    r.ok(
        "contact.tag",
        json!({"emails": ["pat.docs@example.com"], "tag_ids": [silver]}),
    )
    .await;
    r.ok(
        "contact.untag",
        json!({"contact_ids": [contact_id], "tag_ids": [silver]}),
    )
    .await;
    r.ok(
        "list.add_contacts",
        json!({"emails": ["pat.docs@example.com"], "list_ids": [other]}),
    )
    .await;
    r.ok(
        "list.remove_contacts",
        json!({"contact_ids": [contact_id], "list_ids": [other]}),
    )
    .await;
    assert_eq!(
        r.ok("contact.create", contact).await["already_existed"],
        true
    );
    r.ok(
        "contact.upsert",
        json!({"email": "pat.docs@example.com", "last_name": "Lee", "list_ids": [other]}),
    )
    .await;
    r.ok("contact.upsert", json!({"email": "new.docs@example.com"}))
        .await;
    r.ok(
        "contact.update",
        json!({"contact_id": contact_id, "job_title": "Chef", "custom_fields": {"Pastime": null}}),
    )
    .await;
    r.ok(
        "contact.sign_up",
        json!({"email": "sam.docs@example.net", "list_ids": [list_id]}),
    )
    .await;
    r.ok("contact.get", json!({"email": "pat.docs@example.com"}))
        .await;
    r.ok("contact.get", json!({"contact_id": contact_id})).await;
    // Unsubscribed: upsert, update and sign-up without consent leave it so; with consent
    // it is subscribed again.
    let sam = json!({"email": "sam.docs@example.net"});
    assert_eq!(
        r.ok(
            "contact.opt_out",
            json!({"email": "sam.docs@example.net", "reason": "Docs"})
        )
        .await["action"],
        "unsubscribed"
    );
    assert_eq!(
        r.ok("contact.opt_out", sam.clone()).await["already_unsubscribed"],
        true
    );
    assert_eq!(
        r.ok(
            "contact.upsert",
            json!({"email": "sam.docs@example.net", "first_name": "Sam"})
        )
        .await["permission"],
        "unchanged"
    );
    assert_eq!(
        r.ok(
            "contact.update",
            json!({"email": "sam.docs@example.net", "last_name": "Ortiz"})
        )
        .await["permission"],
        "unchanged"
    );
    assert_eq!(
        r.ok(
            "contact.sign_up",
            json!({"email": "sam.docs@example.net", "list_ids": [list_id]})
        )
        .await["permission"],
        "unchanged"
    );
    r.ok(
        "contact.sign_up",
        json!({"email": "sam.docs@example.net", "list_ids": [list_id],
               "consent": {"source": "docs form", "at": "2026-12-01T09:30:00Z"}}),
    )
    .await;
    r.ok("contact.delete", json!({"contact_id": contact_id}))
        .await;
    assert_eq!(
        r.ok(
            "contact.upsert",
            json!({"email": "pat.docs@example.com", "first_name": "Pat"})
        )
        .await["action"],
        "revived"
    );
    // Erasure: a command about the contact sent again afterwards replays its scrubbed result.
    let sam_get = format!("docs-{}", r.n + 1);
    r.ok("contact.get", sam.clone()).await;
    let erased = r.ok("contact.erase", sam.clone()).await;
    assert_eq!(erased["erased"], true);
    r.d.publish(&sam_get, "contact.get", sam.clone()).await;
    let scrubbed = |d: &TestDaemon| {
        d.messages.iter().any(|(_, _, b)| {
            b["command_id"] == sam_get.as_str()
                && b["replayed"] == true
                && b["data"]["erased"] == true
        })
    };
    assert!(
        r.d.receive_until(Duration::from_secs(30), scrubbed).await,
        "the scrubbed result replayed"
    );

    let campaign = r
        .ok("campaign.create", json!({"name": "Docs spring", "subject": "Hello", "from_name": "Lee's Kitchen",
            "from_email": owner, "reply_to_email": owner, "preheader": "Hi",
            "html_content": "<html><body>[[trackingImage]]<p>Hi</p></body></html>",
            "physical_address": {"address_line1": "12 Harbour St", "city": "Boston", "state_code": "MA",
                                 "postal_code": "02110", "country_code": "US", "organization_name": "Lee's Kitchen"},
            "list_ids": [list_id]}))
        .await;
    let campaign_id = campaign["campaign_id"].as_str().unwrap().to_owned();
    r.ok(
        "campaign.update",
        json!({"campaign_id": campaign_id, "subject": "Hello again", "list_ids": [list_id, other]}),
    )
    .await;
    r.ok(
        "campaign.update",
        json!({"campaign_id": campaign_id, "name": "Docs spring 2"}),
    )
    .await;
    r.ok("campaign.get", json!({"campaign_id": campaign_id}))
        .await;
    r.ok("campaign.list", json!({"limit": 5})).await;
    let at = (r.d.api.clock.now() + chrono::Duration::days(2)).to_rfc3339();
    r.ok(
        "campaign.schedule",
        json!({"campaign_id": campaign_id, "scheduled_at": at}),
    )
    .await;
    r.ok("campaign.unschedule", json!({"campaign_id": campaign_id}))
        .await;
    r.ok("campaign.unschedule", json!({"campaign_id": campaign_id}))
        .await;
    r.ok(
        "campaign.send_test",
        json!({"campaign_id": campaign_id, "email_addresses": [owner]}),
    )
    .await;
    r.ok(
        "campaign.schedule",
        json!({"campaign_id": campaign_id, "scheduled_at": "now"}),
    )
    .await;
    // Sent: the campaign has statistics.
    r.d.api.sandbox.admin().complete_activities_now();
    let report = r
        .ok("report.campaign.get", json!({"campaign_id": campaign_id}))
        .await;
    assert_eq!(report["campaign_id"], campaign_id.as_str(), "{report:#}");
    r.ok("custom_field.delete", json!({"custom_field_id": field_id}))
        .await;
    let mirrored = r.ok("mirror.run", json!({})).await;
    assert_eq!(
        mirrored["runs"].as_array().map(|runs| runs
            .iter()
            .map(|r| r["resource"].clone())
            .collect::<Vec<_>>()),
        Some(vec![
            json!("custom_fields"),
            json!("lists"),
            json!("tags"),
            json!("segments"),
            json!("contacts"),
            json!("campaigns"),
            json!("reports")
        ]),
        "one run per resource, reports last: {mirrored}"
    );

    // Replays, failures and rejections.
    let replay = r
        .raw(
            "docs-1",
            br#"{"id":"docs-1","type":"account.emails.list","data":{"confirm_status":"CONFIRMED"}}"#,
            json_properties(),
        )
        .await;
    let replayed = |d: &TestDaemon| {
        d.messages
            .iter()
            .any(|(_, _, b)| b["command_id"] == "docs-1" && b["replayed"] == true)
    };
    assert!(
        r.d.receive_until(Duration::from_secs(30), replayed).await,
        "a replayed result: {replay}"
    );
    for (command_type, data, code) in [
        (
            "contact.get",
            json!({"email": "nobody.docs@example.com"}),
            "not_found",
        ),
        (
            "campaign.get",
            json!({"campaign_id": "987cb9ab-ad0c-4087-bd46-2e2ad241221f"}),
            "not_found",
        ),
        (
            "report.campaign.get",
            json!({"campaign_id": "987cb9ab-ad0c-4087-bd46-2e2ad241221f"}),
            "not_found",
        ),
        ("segment.get", json!({"segment_id": 999_999}), "not_found"),
        (
            "tag.delete",
            json!({"tag_id": "987cb9ab-ad0c-4087-bd46-2e2ad241221f"}),
            "not_found",
        ),
        (
            "list.delete",
            json!({"list_id": "987cb9ab-ad0c-4087-bd46-2e2ad241221f"}),
            "not_found",
        ),
        (
            "contact.tag",
            json!({"emails": ["nobody.docs@example.com"], "tag_ids": ["987cb9ab-ad0c-4087-bd46-2e2ad241221f"]}),
            "not_found",
        ),
        (
            "contact.untag",
            json!({"contact_ids": ["987cb9ab-ad0c-4087-bd46-2e2ad241221f"], "tag_ids": ["987cb9ab-ad0c-4087-bd46-2e2ad241221f"]}),
            "not_found",
        ),
        (
            "list.update",
            json!({"list_id": "987cb9ab-ad0c-4087-bd46-2e2ad241221f", "favorite": true}),
            "not_found",
        ),
        (
            "list.add_contacts",
            json!({"emails": ["nobody.docs@example.com"], "list_ids": ["987cb9ab-ad0c-4087-bd46-2e2ad241221f"]}),
            "not_found",
        ),
        (
            "list.remove_contacts",
            json!({"contact_ids": ["987cb9ab-ad0c-4087-bd46-2e2ad241221f"], "list_ids": ["987cb9ab-ad0c-4087-bd46-2e2ad241221f"]}),
            "not_found",
        ),
        (
            "contact.opt_out",
            json!({"email": "nobody.docs@example.com"}),
            "not_found",
        ),
        (
            "contact.erase",
            json!({"email": "nobody.docs@example.com"}),
            "not_found",
        ),
    ] {
        let result = r.send("default", command_type, data).await;
        assert_eq!(result["error"]["code"], code, "{result:#}");
    }
    let result = r.send("nobody", "list.list", json!({})).await;
    assert_eq!(
        result["error"]["code"], "account_not_authorised",
        "{result:#}"
    );
    let result = r
        .send("nobody", "mirror.run", json!({"resource": "lists"}))
        .await;
    assert_eq!(result["outcome"], "failed", "{result:#}");
    assert_eq!(result["error"]["code"], "mirror_failed", "{result:#}");
    let with_id = |id: &str| json_properties().with_message_id(id.into());
    let bad: Vec<(&str, &[u8], BasicProperties, &str)> = vec![
        ("bad-json", b"{\"id\":", with_id("bad-json"), "invalid_json"),
        (
            "bad-utf8",
            b"{\"type\":\"list.list\",\"x\":\"\xff\"}",
            with_id("bad-utf8"),
            "invalid_utf8",
        ),
        (
            "bad-type",
            br#"{"id":"bad-type","type":"contact.merge"}"#,
            json_properties(),
            "unknown_type",
        ),
        (
            "bad-envelope",
            br#"{"id":"bad-envelope","type":"list.list","extra":1}"#,
            json_properties(),
            "invalid_envelope",
        ),
        (
            "bad-data",
            br#"{"id":"bad-data","type":"contact.upsert","data":{"email":"not-an-email"}}"#,
            json_properties(),
            "invalid_data",
        ),
        (
            "bad-content",
            br#"{"id":"bad-content","type":"list.list"}"#,
            BasicProperties::default()
                .with_content_type("text/plain".into())
                .with_message_id("bad-content".into()),
            "unsupported_content_type",
        ),
    ];
    for (id, body, properties, code) in bad {
        let result = r.raw(id, body, properties).await;
        assert_eq!(result["outcome"], "rejected", "{result:#}");
        assert_eq!(result["error"]["code"], code, "{result:#}");
    }

    r.d.api
        .sandbox
        .admin()
        .inject_fault(
            FaultSpec::status(503)
                .path_prefix("/v3/account/user/privileges")
                .times(1000),
        )
        .unwrap();
    let result = r.send("default", "account.privileges.get", json!({})).await;
    assert_eq!(result["error"]["code"], "retries_exhausted", "{result:#}");
    r.d.api.sandbox.admin().clear_faults();

    // An account losing its authorisation: the event.
    r.d.api.sandbox.admin().revoke_tokens(&second_id).unwrap();
    r.d.api.advance_clocks(Duration::from_secs(25 * 3600));
    r.d.publish_for("second", "docs-lost", "list.list", json!({}))
        .await;

    // Every event, under its key and its deprecated one.
    let all_events = |d: &TestDaemon| {
        EVENT_TYPES.iter().all(|t| {
            let keys = [routing_key(t), t.to_string()];
            keys.iter()
                .all(|k| d.messages.iter().any(|(key, _, _)| key == k))
        })
    };
    let arrived = r.d.receive_until(Duration::from_secs(30), all_events).await;
    let keys: Vec<&String> = r.d.messages.iter().map(|(k, _, _)| k).collect();
    assert!(arrived, "every event arrived: {keys:?}");
    r.d.drain(Duration::from_millis(500)).await;

    let schemas = schemas();
    let result_schema = Schema::new(&schemas["result"]);
    let event_schemas: BTreeMap<&str, Schema> = EVENT_TYPES
        .iter()
        .map(|t| (*t, Schema::new(&schemas[*t])))
        .collect();
    let mut succeeded = BTreeSet::new();
    let mut outcomes = BTreeSet::new();
    let mut codes = BTreeSet::new();
    let mut events = BTreeSet::new();
    let mut deprecated = BTreeSet::new();
    let mut replays = 0;
    for (key, headers, body) in &r.d.messages {
        let mut gaps = Vec::new();
        if let Some(t) = key.strip_prefix("event.") {
            let schema = event_schemas
                .get(t)
                .unwrap_or_else(|| panic!("an event the docs do not name: {key}"));
            assert_eq!(body["type"], t, "{key}: {body}");
            let errors = schema.errors(body);
            assert!(errors.is_empty(), "{key}: {errors:?}\n{body:#}");
            schema.undeclared(schema.root, body, "$", &mut gaps);
            assert!(gaps.is_empty(), "{key}: undocumented {gaps:?}");
            assert!(
                body.get("outcome").is_none(),
                "{key}: events have no outcome"
            );
            assert!(!headers.inner().contains_key(DEPRECATED_HEADER), "{key}");
            events.insert(t.to_owned());
        } else if let Some(t) = EVENT_TYPES.iter().find(|t| *t == key) {
            let note = headers.inner().get(DEPRECATED_HEADER);
            assert!(
                matches!(note, Some(AMQPValue::LongString(s)) if s.to_string().contains(&routing_key(t))),
                "{key}: the deprecated copy says what to bind instead: {note:?}"
            );
            let twin =
                r.d.messages
                    .iter()
                    .any(|(k, _, b)| *k == routing_key(t) && legacy_form(b) == *body);
            assert!(
                twin,
                "{key}: the old form of an event under {}",
                routing_key(t)
            );
            deprecated.insert(t.to_string());
        } else {
            let result: CommandResult = serde_json::from_value(body.clone())
                .unwrap_or_else(|e| panic!("{key}: not a result: {e}\n{body:#}"));
            assert_eq!(*key, result.routing_key(), "{body}");
            let errors = result_schema.errors(body);
            assert!(errors.is_empty(), "{key}: {errors:?}\n{body:#}");
            result_schema.undeclared(result_schema.root, body, "$", &mut gaps);
            assert!(gaps.is_empty(), "{key}: undocumented {gaps:?}");
            if result.outcome == Outcome::Succeeded {
                succeeded.insert(result.command_type.clone());
            }
            outcomes.insert(result.outcome.as_str());
            if let Some(error) = &result.error {
                codes.insert(error.code.as_str());
            }
            replays += usize::from(result.replayed);
        }
    }
    let all: BTreeSet<String> = command_types().into_iter().map(str::to_owned).collect();
    assert_eq!(succeeded, all, "every command type succeeded once");
    assert_eq!(outcomes.len(), 3, "every outcome: {outcomes:?}");
    for code in [
        "not_found",
        "account_not_authorised",
        "mirror_failed",
        "invalid_json",
        "invalid_utf8",
        "unknown_type",
        "invalid_envelope",
        "invalid_data",
        "unsupported_content_type",
        "retries_exhausted",
    ] {
        assert!(codes.contains(code), "{code} among {codes:?}");
    }
    assert!(replays >= 1, "a replayed result");
    let every: BTreeSet<String> = EVENT_TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(events, every, "every event type");
    assert_eq!(deprecated, every, "every event under its deprecated key");
    r.d.stop().await;
}

/// Upserts coalesced into one bulk import get results of their own shape (`action:
/// "imported"`, the batch, a contact id the import's look-up may not have found): each
/// matches the result schema and declares every key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_of_upserts_imported_in_bulk_match_the_result_schema() {
    let api = TestApi::start().await;
    let list_id = api
        .api()
        .create_list(&ctct_sync::api::model::ListInput::new("Bulk docs"))
        .await
        .expect("a list")
        .list_id;
    let mut d = TestDaemon::start_with(
        api,
        &[
            ("CTCT_SYNC__BULK__WINDOW_MS", "60000"),
            ("CTCT_SYNC__BULK__MAX_BATCH", "20"),
            ("CTCT_SYNC__BULK__POLL_INITIAL_MS", "100"),
            ("CTCT_SYNC__BULK__POLL_MAX_MS", "200"),
        ],
    )
    .await;
    let n = 20;
    for i in 0..n {
        d.publish(
            &format!("bulk-docs-{i}"),
            "contact.upsert",
            json!({"email": format!("bulk.docs{i}@example.com"), "list_ids": [list_id]}),
        )
        .await;
    }
    assert!(
        d.receive_until(Duration::from_secs(60), |d| d.received.len() >= n)
            .await,
        "{} of {n} results",
        d.received.len()
    );
    let schemas = schemas();
    let result_schema = Schema::new(&schemas["result"]);
    let mut imported = 0;
    for (key, _, body) in &d.messages {
        if !key.starts_with("contact.upsert.") {
            continue;
        }
        let errors = result_schema.errors(body);
        assert!(errors.is_empty(), "{key}: {errors:?}\n{body:#}");
        let mut gaps = Vec::new();
        result_schema.undeclared(result_schema.root, body, "$", &mut gaps);
        assert!(gaps.is_empty(), "{key}: undocumented {gaps:?}\n{body:#}");
        imported += usize::from(body["data"]["action"] == "imported");
    }
    assert_eq!(imported, n, "every upsert went through the import");
    d.stop().await;
}
