//! The message-interface documentation kept honest (issue 5): docs/messages/*.schema.json,
//! docs/asyncapi.yaml and docs/messages.md against the code that really decodes commands and
//! writes results.
//!
//! * every example decodes through `envelope::decode` + `Command::parse` and is valid against
//!   its own schema (a small draft 2020-12 validator below; it refuses keywords, patterns and
//!   formats it does not know, so nothing in the docs goes unchecked);
//! * mutations of the examples (each limit ±1, each required field removed, unknown keys,
//!   wrong types, bad patterns) are accepted or refused by the schema and the code alike;
//! * result examples are exactly what `CommandResult` serialises; real rejections and the data
//!   of every command type run against the sandbox match result.schema.json;
//! * every error code in the source is documented, and every documented one exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ctct_sync::api::Clock;
use ctct_sync::command::check::is_email;
use ctct_sync::command::envelope::{self, MessageMeta};
use ctct_sync::command::outcome::{CommandResult, Outcome, ResultError};
use ctct_sync::command::{COMMAND_TYPES, Command};
use ctct_sync::handler::{Attempt, HandleError, Handler};
use ctct_sync::pipeline::process::{REASON_CODE_HEADER, REASON_HEADER, reauth_event};
use serde_json::{Map, Value, json};

use crate::support::api::TestApi;

const EVENT: &str = "account.reauth_required";

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
    COMMAND_TYPES.into_iter().filter(|t| *t != EVENT).collect()
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

/// Patterns used by the docs, with their meaning in Rust (keep in step with the schemas).
const NO_CONTROL: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";
const NO_CONTROL_BUT_LINES: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";
const BLANK: &str = r"^[\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$";
const UUID: &str = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";
const COMMAND_ID: &str = r"^[!-~]+$";
const ACCOUNT: &str = r"^[A-Za-z0-9_-]+$";
const COUNTRY: &str = r"^[A-Z]{2}$";
const ANNIVERSARY: &str = r"^([0-9]{4}[-/][0-9]+[-/][0-9]+|[0-9]+[-/][0-9]+[-/][0-9]{4})$";

fn pattern_matches(pattern: &str, s: &str) -> Option<bool> {
    let is_uuid = |s: &str| {
        s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let anniversary = |s: &str| {
        let parts: Vec<&str> = s.split(['-', '/']).collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && (parts[0].len() == 4 || parts[2].len() == 4)
    };
    Some(match pattern {
        NO_CONTROL => !s.chars().any(char::is_control),
        NO_CONTROL_BUT_LINES => !s
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')),
        BLANK => s.chars().all(char::is_whitespace),
        UUID => is_uuid(s),
        COMMAND_ID => !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()),
        ACCOUNT => {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        COUNTRY => s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()),
        ANNIVERSARY => anniversary(s),
        _ => return None,
    })
}

/// `format: email` means the daemon's own rule (the schemas describe it).
fn format_matches(format: &str, s: &str) -> Option<bool> {
    match format {
        "email" => Some(is_email(s)),
        "date-time" => Some(DateTime::parse_from_rfc3339(s).is_ok()),
        _ => None,
    }
}

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

/// A JSON Schema document and the subset of draft 2020-12 the docs use.
struct Schema<'a> {
    root: &'a Value,
}

impl<'a> Schema<'a> {
    fn new(root: &'a Value) -> Self {
        Self { root }
    }

    fn errors(&self, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(self.root, value, "$", &mut errors);
        errors
    }

    fn valid(&self, schema: &'a Value, value: &Value) -> bool {
        let mut errors = Vec::new();
        self.check(schema, value, "$", &mut errors);
        errors.is_empty()
    }

    fn resolve(&self, reference: &Value) -> &'a Value {
        let name = reference
            .as_str()
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .unwrap_or_else(|| panic!("only #/$defs/ references are supported: {reference}"));
        self.root["$defs"]
            .get(name)
            .unwrap_or_else(|| panic!("$ref to a missing definition: {name}"))
    }

    fn check(&self, schema: &'a Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let Some(node) = schema.as_object() else {
            if schema == &Value::Bool(false) {
                errors.push(format!("{at}: nothing is allowed here"));
            }
            return;
        };
        if let Some(reference) = node.get("$ref") {
            self.check(self.resolve(reference), value, at, errors);
        }
        if let Some(kind) = node.get("type") {
            let kinds: Vec<&str> = match kind {
                Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
                other => other.as_str().into_iter().collect(),
            };
            let fits = kinds.iter().any(|k| match *k {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "null" => value.is_null(),
                other => panic!("unknown type {other}"),
            });
            if !fits {
                errors.push(format!("{at}: {value} is not of type {kinds:?}"));
                return;
            }
        }
        if let Some(c) = node.get("const")
            && c != value
        {
            errors.push(format!("{at}: {value} is not {c}"));
        }
        if let Some(allowed) = node.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            errors.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
        for sub in node
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.check(sub, value, at, errors);
        }
        if let Some(any) = node.get("anyOf").and_then(Value::as_array)
            && !any.iter().any(|sub| self.valid(sub, value))
        {
            errors.push(format!("{at}: matches none of anyOf"));
        }
        if let Some(one) = node.get("oneOf").and_then(Value::as_array) {
            let n = one.iter().filter(|sub| self.valid(sub, value)).count();
            if n != 1 {
                errors.push(format!("{at}: matches {n} of oneOf (want 1)"));
            }
        }
        if let Some(not) = node.get("not")
            && self.valid(not, value)
        {
            errors.push(format!("{at}: {value} matches a `not` schema"));
        }
        if let Some(condition) = node.get("if") {
            let branch = if self.valid(condition, value) {
                node.get("then")
            } else {
                node.get("else")
            };
            if let Some(branch) = branch {
                self.check(branch, value, at, errors);
            }
        }
        match value {
            Value::String(s) => self.check_string(node, s, at, errors),
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or_default();
                if node
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .is_some_and(|m| x < m)
                {
                    errors.push(format!("{at}: {x} is below the minimum"));
                }
                if node
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .is_some_and(|m| x > m)
                {
                    errors.push(format!("{at}: {x} is above the maximum"));
                }
            }
            Value::Array(items) => {
                let len = items.len() as u64;
                if node
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .is_some_and(|m| len > m)
                {
                    errors.push(format!("{at}: more than maxItems items"));
                }
                if node
                    .get("minItems")
                    .and_then(Value::as_u64)
                    .is_some_and(|m| len < m)
                {
                    errors.push(format!("{at}: fewer than minItems items"));
                }
                if node.get("uniqueItems") == Some(&Value::Bool(true))
                    && items
                        .iter()
                        .enumerate()
                        .any(|(i, a)| items[..i].contains(a))
                {
                    errors.push(format!("{at}: repeated items"));
                }
                if let Some(item) = node.get("items") {
                    for (i, value) in items.iter().enumerate() {
                        self.check(item, value, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            Value::Object(map) => self.check_object(node, map, at, errors),
            _ => {}
        }
    }

    fn check_string(&self, node: &Map<String, Value>, s: &str, at: &str, errors: &mut Vec<String>) {
        let len = s.chars().count() as u64;
        if node
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            errors.push(format!("{at}: longer than maxLength"));
        }
        if node
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            errors.push(format!("{at}: shorter than minLength"));
        }
        if let Some(pattern) = node.get("pattern").and_then(Value::as_str) {
            let ok = pattern_matches(pattern, s)
                .unwrap_or_else(|| panic!("the validator does not know pattern {pattern}"));
            if !ok {
                errors.push(format!("{at}: {s:?} does not match {pattern}"));
            }
        }
        if let Some(format) = node.get("format").and_then(Value::as_str) {
            let ok = format_matches(format, s)
                .unwrap_or_else(|| panic!("the validator does not know format {format}"));
            if !ok {
                errors.push(format!("{at}: {s:?} is not a valid {format}"));
            }
        }
    }

    fn check_object(
        &self,
        node: &'a Map<String, Value>,
        map: &Map<String, Value>,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        for name in node
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap_or_default();
            if !map.contains_key(name) {
                errors.push(format!("{at}: required property {name} is missing"));
            }
        }
        if let Some(dependent) = node.get("dependentRequired").and_then(Value::as_object) {
            for (name, needs) in dependent {
                for need in needs
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if map.contains_key(name) && !map.contains_key(need) {
                        errors.push(format!("{at}: {name} needs {need}"));
                    }
                }
            }
        }
        let count = map.len() as u64;
        if node
            .get("maxProperties")
            .and_then(Value::as_u64)
            .is_some_and(|m| count > m)
        {
            errors.push(format!("{at}: more than maxProperties properties"));
        }
        if node
            .get("minProperties")
            .and_then(Value::as_u64)
            .is_some_and(|m| count < m)
        {
            errors.push(format!("{at}: fewer than minProperties properties"));
        }
        let properties = node.get("properties").and_then(Value::as_object);
        for (name, value) in map {
            let path = format!("{at}.{name}");
            if let Some(names) = node.get("propertyNames") {
                self.check(
                    names,
                    &Value::String(name.clone()),
                    &format!("{path} (name)"),
                    errors,
                );
            }
            match properties.and_then(|p| p.get(name)) {
                Some(sub) => self.check(sub, value, &path, errors),
                None => match node.get("additionalProperties") {
                    Some(Value::Bool(false)) => errors.push(format!("{path}: not allowed")),
                    Some(sub @ Value::Object(_)) => self.check(sub, value, &path, errors),
                    _ => {}
                },
            }
        }
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

/// Every keyword, pattern and format in `schema` is one the validator knows.
fn scan(schema: &Value, at: &str, problems: &mut Vec<String>) {
    let Some(node) = schema.as_object() else {
        return;
    };
    for (key, value) in node {
        if !KEYWORDS.contains(&key.as_str()) {
            problems.push(format!(
                "{at}: keyword {key} is not checked by the validator"
            ));
        }
        let here = format!("{at}/{key}");
        match key.as_str() {
            "pattern" if pattern_matches(value.as_str().unwrap_or_default(), "").is_none() => {
                problems.push(format!("{here}: unknown pattern {value}"));
            }
            "format" if format_matches(value.as_str().unwrap_or_default(), "").is_none() => {
                problems.push(format!("{here}: unknown format {value}"));
            }
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
fn there_is_one_schema_per_command_type_plus_the_result_and_the_event() {
    let schemas = schemas();
    let mut expected: BTreeSet<String> = COMMAND_TYPES.iter().map(|t| t.to_string()).collect();
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
}

#[test]
fn every_schema_is_draft_2020_12_with_examples_and_only_keywords_the_validator_checks() {
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

/// The codes the source can put in a result: string literals given to the constructors of
/// rejections and failures, and `code: "…"` fields.
fn codes_in_source() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in ["command", "handler", "pipeline"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("a source directory") {
            files.push(entry.expect("an entry").path());
        }
    }
    let needles = [
        "Rejection::new(",
        "Rejection::with_fields(",
        "HandleError::failed(",
        "api_failure(",
        "code: ",
    ];
    let mut codes = BTreeSet::new();
    let sources = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs") && !f.ends_with("tests.rs"));
    for file in sources {
        let text = std::fs::read_to_string(file).expect("readable source");
        for needle in needles {
            for (at, _) in text.match_indices(needle) {
                let rest = text[at + needle.len()..].trim_start();
                if let Some(literal) = rest.strip_prefix('"')
                    && let Some(end) = literal.find('"')
                {
                    codes.insert(literal[..end].to_owned());
                }
            }
        }
    }
    codes
}

#[test]
fn every_error_code_in_the_source_is_documented_and_every_documented_code_exists() {
    let schemas = schemas();
    let documented = documented_codes(&schemas);
    let in_source = codes_in_source();
    assert!(
        in_source.len() >= 15,
        "the scan finds the codes: {in_source:?}"
    );
    assert_eq!(
        documented, in_source,
        "result.schema.json error.code lists exactly the codes the source produces"
    );
    let guide = std::fs::read_to_string(docs().join("messages.md")).expect("docs/messages.md");
    for code in &documented {
        assert!(
            guide.contains(&format!("| `{code}` |")),
            "messages.md has a row for {code}"
        );
    }
}

#[test]
fn reauth_event_examples_are_what_the_pipeline_publishes() {
    let schemas = schemas();
    let schema = Schema::new(&schemas[EVENT]);
    for example in examples(schema.root) {
        assert_eq!(example["type"], EVENT);
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
    for t in COMMAND_TYPES {
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
            if t != EVENT {
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
    for channel in ["results", "accountEvents"] {
        assert_eq!(
            channels[channel]["bindings"]["amqp"]["exchange"]["name"],
            amqp["results_exchange"].as_str().unwrap()
        );
    }
    assert_eq!(channels["accountEvents"]["address"], EVENT);
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
    for t in COMMAND_TYPES {
        assert!(guide.contains(&format!("`{t}`")), "messages.md names {t}");
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
    ] {
        assert!(guide.contains(needle), "messages.md mentions {needle}");
    }
}

// ------------------------------------------------------------------ result data from the sandbox

struct Run {
    t: TestApi,
    handler: Handler,
    schemas: BTreeMap<String, Value>,
    covered: BTreeSet<String>,
    n: u32,
}

impl Run {
    /// Decodes `data` as a command, applies it, and checks the result against the schema.
    async fn ok(&mut self, command_type: &str, data: Value) -> Value {
        self.n += 1;
        let id = format!("docs-{}", self.n);
        let envelope = json!({"id": id, "type": command_type, "data": data});
        let body = serde_json::to_vec(&envelope).unwrap();
        let decoded = envelope::decode(&body, &MessageMeta::default()).expect("an envelope");
        let command = Command::parse(&decoded, self.t.clock.now())
            .unwrap_or_else(|e| panic!("{command_type}: {e}"));
        let attempt = Attempt {
            command_id: id.clone(),
            account: "default".into(),
            number: 1,
            effect_ref: None,
        };
        let started_at = Utc::now();
        let (outcome, data, error) = match self.handler.handle(&attempt, &command).await {
            Ok(data) => (Outcome::Succeeded, Some(data), None),
            Err(HandleError::Failed(error)) => (Outcome::Failed, None, Some(error)),
            Err(other) => panic!("{command_type}: {other:?}"),
        };
        let result = CommandResult {
            command_id: id,
            command_type: command_type.into(),
            account: "default".into(),
            outcome,
            data,
            error,
            attempts: 1,
            replayed: false,
            started_at,
            finished_at: Utc::now(),
            warnings: Vec::new(),
        };
        let value = serde_json::to_value(&result).unwrap();
        let schema = Schema::new(&self.schemas["result"]);
        let errors = schema.errors(&value);
        assert!(errors.is_empty(), "{command_type}: {errors:?}\n{value:#}");
        let mut gaps = Vec::new();
        schema.undeclared(schema.root, &value, "$", &mut gaps);
        assert!(gaps.is_empty(), "{command_type}: undocumented {gaps:?}");
        self.covered.insert(command_type.to_owned());
        value["data"].clone()
    }
}

#[tokio::test]
async fn every_command_type_s_result_from_the_sandbox_matches_the_result_schema() {
    let t = TestApi::start().await;
    let handler = Handler::new(
        t.client.clone(),
        t.store.clone(),
        t.clock.clone() as Arc<dyn Clock>,
    );
    let mut r = Run {
        t,
        handler,
        schemas: schemas(),
        covered: BTreeSet::new(),
        n: 0,
    };
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

    let contact = json!({"email": "pat.docs@example.com", "first_name": "Pat", "birthday_month": 4,
        "birthday_day": 17, "anniversary": "2019-06-01",
        "phone_numbers": [{"phone_number": "+1 555-0100", "kind": "mobile"}],
        "street_addresses": [{"kind": "work", "street": "12 Harbour St", "city": "Boston"}],
        "custom_fields": {"Pastime": "Sailing"}, "list_ids": [list_id]});
    let created = r.ok("contact.create", contact.clone()).await;
    let contact_id = created["contact_id"].as_str().unwrap().to_owned();
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
    let at = (r.t.clock.now() + chrono::Duration::days(2)).to_rfc3339();
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
    r.ok("custom_field.delete", json!({"custom_field_id": field_id}))
        .await;
    r.ok("mirror.run", json!({"resource": "contacts"})).await;

    let all: BTreeSet<String> = command_types().into_iter().map(str::to_owned).collect();
    assert_eq!(r.covered, all, "every command type ran");
    r.t.stop().await;
}
