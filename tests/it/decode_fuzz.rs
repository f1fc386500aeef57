//! Decoding under fuzzing (RELIABILITY.md §10.6 B2): `envelope::decode` + `Command::parse`
//! never panic, and every message either becomes a command or a `Rejection` with a code
//! documented in docs/messages.md, naming its fields, small enough to travel in a dead
//! letter's header. Inputs: random bytes, random JSON values, and structured mutations of
//! the examples in docs/messages/*.schema.json. Bounded (a few thousand cases per property),
//! seeded (`DECODE_FUZZ_SEED` picks another seed), no failure files written.

use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use ctct_sync::command::Rejection;
use ctct_sync::command::envelope::{self, MessageMeta};
use ctct_sync::command::{COMMAND_TYPES, Command};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Value};

/// Codes `envelope::decode` may give, then those `Command::parse` may give.
const DECODE_CODES: [&str; 6] = [
    "unsupported_content_type",
    "unsupported_content_encoding",
    "too_large",
    "invalid_utf8",
    "invalid_json",
    "invalid_envelope",
];
const PARSE_CODES: [&str; 2] = ["unknown_type", "invalid_data"];

/// A rejection must fit easily in the `x-ctct-reason` header (one AMQP frame, 128 KiB).
const MAX_REJECTION_BYTES: usize = 16 * 1024;

fn config(cases: u32) -> Config {
    let seed = std::env::var("DECODE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00c7_c75e_ed00_0001);
    Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-23T12:00:00Z".parse().expect("a time")
}

/// The documented error codes: rows of the table in docs/messages.md.
fn documented(code: &str) -> bool {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/messages.md"))
            .expect("docs/messages.md")
    })
    .contains(&format!("| `{code}` |"))
}

/// Every envelope example of the command schemas.
fn examples() -> &'static [Value] {
    static EXAMPLES: OnceLock<Vec<Value>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/messages");
        let mut out = Vec::new();
        for command_type in COMMAND_TYPES {
            let text = std::fs::read_to_string(dir.join(format!("{command_type}.schema.json")))
                .expect("a schema per command type");
            let schema: Value = serde_json::from_str(&text).expect("JSON");
            out.extend(
                schema["examples"]
                    .as_array()
                    .expect("examples")
                    .iter()
                    .cloned(),
            );
        }
        assert!(out.len() >= 23, "examples found");
        out
    })
}

/// Field names used by any command, so random data sometimes hits real fields.
const FIELD_NAMES: [&str; 33] = [
    "email",
    "contact_id",
    "first_name",
    "birthday_month",
    "birthday_day",
    "anniversary",
    "phone_numbers",
    "street_addresses",
    "custom_fields",
    "list_ids",
    "label",
    "type",
    "custom_field_id",
    "name",
    "description",
    "favorite",
    "campaign_id",
    "segment_id",
    "list_id",
    "tag_id",
    "tag_source",
    "contact_ids",
    "emails",
    "tag_ids",
    "reason",
    "consent",
    "html_content",
    "physical_address",
    "scheduled_at",
    "email_addresses",
    "limit",
    "email_address",
    "resource",
];

type Meta = (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

/// AMQP properties: mostly right, sometimes wrong.
fn meta_strategy() -> impl Strategy<Value = Meta> {
    (
        prop_oneof![
            12 => Just(Some("application/json")),
            3 => Just(None),
            1 => Just(Some("application/json; charset=utf-8")),
            1 => Just(Some("APPLICATION/JSON")),
            1 => Just(Some("text/plain")),
            1 => Just(Some("")),
        ],
        prop_oneof![
            16 => Just(None),
            1 => Just(Some("identity")),
            1 => Just(Some("gzip")),
            1 => Just(Some("")),
        ],
        prop::sample::select(vec![None, None, Some("m-1"), Some("bad id"), Some("")]),
    )
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z._@-]{0,12}",
        any::<String>(),
        prop::sample::select(vec![
            "pat@example.com".to_owned(),
            "07936f78-662a-11eb-af0a-fa163e56c9b0".to_owned(),
            "2030-03-02T09:00:00Z".to_owned(),
            "now".to_owned(),
            "\u{202e}x\0\r\n".to_owned(),
            "x".repeat(300),
            // Longer than a rejection may be: echoing it whole is caught.
            "k".repeat(20_000),
        ]),
    ]
}

fn json_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text_strategy().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(FIELD_NAMES.to_vec()).prop_map(str::to_owned),
                        text_strategy()
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One change to a valid example: `at` picks a node (pre-order, modulo their number).
#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Replace(usize, Value),
    AddKey(usize, String, Value),
    /// Repeats a string's text or an array's items `n` times (limits, oversize arrays).
    Stretch(usize, usize),
    /// Adds `n` keys `k0`, `k1`, … to an object.
    ManyKeys(usize, usize),
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), json_strategy()).prop_map(|(at, v)| Mutation::Replace(at, v)),
        (any::<usize>(), text_strategy(), json_strategy())
            .prop_map(|(at, k, v)| Mutation::AddKey(at, k, v)),
        (any::<usize>(), 2..120usize).prop_map(|(at, n)| Mutation::Stretch(at, n)),
        (any::<usize>(), 2..2000usize).prop_map(|(at, n)| Mutation::ManyKeys(at, n)),
    ]
}

/// A change to the serialised bytes.
#[derive(Debug, Clone)]
enum ByteEdit {
    None,
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, u8),
    /// Repeats the first key: `{"id":"x",` … → `{"id":"x","id":"x",` ….
    DuplicateFirstKey,
}

fn byte_edit_strategy() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        6 => Just(ByteEdit::None),
        1 => any::<usize>().prop_map(ByteEdit::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| ByteEdit::Flip(at, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        1 => Just(ByteEdit::DuplicateFirstKey),
    ]
}

/// Nodes of a value in pre-order, as paths of steps.
fn paths(value: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                here.push(Step::Key(key.clone()));
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                here.push(Step::Index(i));
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn node<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

fn mutate(mut value: Value, mutation: &Mutation) -> Value {
    let mut all = Vec::new();
    paths(&value, &mut Vec::new(), &mut all);
    // Three times in four, a node inside `data`: that is where the rules are.
    let in_data: Vec<_> = all
        .iter()
        .filter(|p| matches!(p.first(), Some(Step::Key(k)) if k == "data"))
        .cloned()
        .collect();
    let pick = |at: usize| {
        let from = if !at.is_multiple_of(4) && !in_data.is_empty() {
            &in_data
        } else {
            &all
        };
        from[(at / 4) % from.len()].clone()
    };
    match mutation {
        Mutation::Remove(at) => {
            let mut path = pick(*at);
            if let Some(last) = path.pop() {
                match (node(&mut value, &path), last) {
                    (Value::Object(map), Step::Key(k)) => {
                        map.remove(&k);
                    }
                    (Value::Array(items), Step::Index(i)) => {
                        items.remove(i);
                    }
                    _ => {}
                }
            }
        }
        Mutation::Replace(at, with) => *node(&mut value, &pick(*at)) = with.clone(),
        Mutation::AddKey(at, key, with) => {
            if let Value::Object(map) = node(&mut value, &pick(*at)) {
                map.insert(key.clone(), with.clone());
            }
        }
        Mutation::Stretch(at, n) => match node(&mut value, &pick(*at)) {
            // Just past the size limit at most: bigger bodies are all `too_large` alike.
            Value::String(s) if s.len() * n <= 300_000 => *s = s.repeat(*n),
            Value::Array(items) if !items.is_empty() => {
                *items = items
                    .iter()
                    .cycle()
                    .take(items.len() * n)
                    .cloned()
                    .collect()
            }
            _ => {}
        },
        Mutation::ManyKeys(at, n) => {
            if let Value::Object(map) = node(&mut value, &pick(*at)) {
                map.extend((0..*n).map(|i| (format!("k{i}"), Value::from(i))));
            }
        }
    }
    value
}

fn edit(mut bytes: Vec<u8>, edit: &ByteEdit) -> Vec<u8> {
    match edit {
        ByteEdit::None => {}
        ByteEdit::Truncate(at) => bytes.truncate(at % (bytes.len() + 1)),
        ByteEdit::Flip(at, b) if !bytes.is_empty() => {
            let at = at % bytes.len();
            bytes[at] ^= b | 1;
        }
        ByteEdit::Flip(..) => {}
        ByteEdit::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), *b),
        ByteEdit::DuplicateFirstKey => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Some(Value::Object(map)) = serde_json::from_str::<Value>(&text).ok()
                && let Some((key, value)) = map.iter().next()
            {
                let pair = format!("{}:{},", Value::from(key.as_str()), value);
                bytes = text.replacen('{', &format!("{{{pair}"), 1).into_bytes();
            }
        }
    }
    bytes
}

/// The property: no panic (proptest reports one as a failure); a command, or a documented,
/// explained, bounded rejection.
fn decodes_or_explains(body: &[u8], meta: &MessageMeta<'_>) -> Result<(), TestCaseError> {
    let envelope = match envelope::decode(body, meta) {
        Err(error) => return explains(&error.rejection, &DECODE_CODES),
        Ok(envelope) => envelope,
    };
    prop_assert!(!envelope.id.is_empty() && envelope.id.len() <= envelope::MAX_ID_LEN);
    prop_assert!(envelope.id.bytes().all(|b| b.is_ascii_graphic()));
    prop_assert!(!envelope.command_type.is_empty());
    prop_assert!(!envelope.account.is_empty());
    match Command::parse(&envelope, now()) {
        Ok(command) => {
            prop_assert!(COMMAND_TYPES.contains(&envelope.command_type.as_str()));
            let _ = (command.ordering_key(), command.is_read_only());
            Ok(())
        }
        Err(rejection) => explains(&rejection, &PARSE_CODES),
    }
}

fn explains(rejection: &Rejection, codes: &[&str]) -> Result<(), TestCaseError> {
    let code = rejection.code.as_str();
    prop_assert!(codes.contains(&code), "unexpected code {code}: {rejection}");
    prop_assert!(documented(code), "{code} is not in docs/messages.md");
    prop_assert!(!rejection.message.is_empty());
    let names_fields = !matches!(code, "too_large" | "invalid_utf8" | "invalid_json")
        && rejection.message != "message body must be a JSON object";
    prop_assert!(
        !names_fields || !rejection.fields.is_empty(),
        "{code} names no field: {rejection}"
    );
    for field in &rejection.fields {
        prop_assert!(!field.reason.is_empty(), "{rejection}");
        let known = ["id", "type", "account", "data"].contains(&field.field.as_str())
            || field.field.starts_with("data.")
            || field.field.starts_with("data[")
            || field.field.starts_with("properties.")
            // unknown envelope keys and repeated keys are named as sent (shortened)
            || field.reason.contains("not an envelope field")
            || field.reason.contains("more than once");
        prop_assert!(known, "field {:?} in {rejection}", field.field);
        prop_assert!(field.field.chars().count() <= 200, "a long field name");
    }
    let size = rejection.to_string().len();
    prop_assert!(size <= MAX_REJECTION_BYTES, "a {size}-byte rejection");
    Ok(())
}

fn meta(m: &Meta) -> MessageMeta<'static> {
    MessageMeta {
        content_type: m.0,
        content_encoding: m.1,
        message_id: m.2,
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn random_bytes_are_decoded_or_rejected_with_a_documented_code(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            "[{}\\[\\]\":,.a-z0-9 -]{0,96}".prop_map(String::into_bytes),
        ],
        m in meta_strategy(),
    ) {
        decodes_or_explains(&body, &meta(&m))?;
    }

    #[test]
    fn random_json_is_decoded_or_rejected_with_a_documented_code(
        value in json_strategy(),
        fields in prop::collection::btree_map(
            prop::sample::select(FIELD_NAMES.to_vec()),
            json_strategy(),
            0..5,
        ),
        command_type in prop::sample::select(COMMAND_TYPES.to_vec()),
        shape in 0..3u8,
        m in meta_strategy(),
    ) {
        let body = match shape {
            // A value in place of the whole envelope, or of its data, or data made of real
            // field names with random values.
            0 => value,
            1 => serde_json::json!({"id": "fuzz-1", "type": command_type, "data": value}),
            _ => serde_json::json!({"id": "fuzz-1", "type": command_type, "data": fields}),
        };
        decodes_or_explains(&serde_json::to_vec(&body).unwrap(), &meta(&m))?;
    }

    #[test]
    fn mutated_documented_examples_are_decoded_or_rejected_with_a_documented_code(
        example in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation_strategy(), 1..4),
        byte_edit in byte_edit_strategy(),
        m in meta_strategy(),
    ) {
        let mut value = example.get(examples()).clone();
        for mutation in &mutations {
            value = mutate(value, mutation);
        }
        let body = edit(serde_json::to_vec(&value).unwrap(), &byte_edit);
        decodes_or_explains(&body, &meta(&m))?;
    }
}

#[test]
fn every_documented_example_decodes() {
    let json = MessageMeta {
        content_type: Some("application/json"),
        ..MessageMeta::default()
    };
    for example in examples() {
        let body = serde_json::to_vec(example).unwrap();
        let envelope = envelope::decode(&body, &json).expect("an example's envelope decodes");
        Command::parse(&envelope, now()).expect("an example's command decodes");
    }
}
