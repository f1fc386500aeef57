//! The command envelope: what a backend puts on the queue, and its checks.
//!
//! ```json
//! {"id": "7f0c…", "type": "contact.upsert", "account": "default", "data": {…}}
//! ```
//! `id` is the idempotency key (falls back to the AMQP `message_id`), `account` defaults to
//! `default`. The body must be UTF-8 JSON of at most [`MAX_BODY_BYTES`]; the content type,
//! when set, must be `application/json`. Every failure is a [`Rejection`] naming the field
//! and the reason — it becomes a `rejected` result, never a panic.
//!
//! A message refused for its content type or encoding is still read as far as it can be
//! (a gzip or deflate body inflated, a JSON body under another content type), so that its
//! result names the command's `id`, `type` and `account` (see [`Partial`]).

use std::io::Read;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::field::{FieldError, truncate};
use super::json::JsonError;
use super::outcome::ErrorCode;
use super::rejection::Rejection;

/// Largest accepted message body. Constant Contact's largest request body (a 40,000-row
/// import) never comes from one command; 256 KiB is far above any single command.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Longest accepted command id and account name.
pub const MAX_ID_LEN: usize = 128;
pub const MAX_ACCOUNT_LEN: usize = 64;

/// Unknown envelope keys named in a rejection; more are counted in its message.
pub const MAX_UNKNOWN_NAMED: usize = 10;

/// AMQP properties that matter to decoding.
#[derive(Debug, Clone, Default)]
pub struct MessageMeta<'a> {
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    pub message_id: Option<&'a str>,
}

/// A decoded envelope: the command is still raw JSON, checked per type afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub command_type: String,
    pub account: String,
    pub data: Map<String, Value>,
}

impl Envelope {
    /// What the ledger compares to tell the same command from another one under the same
    /// id: see [`fingerprint`].
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.command_type, &self.data)
    }
}

/// SHA-256 (hex) of a command's `type` and its `data` as canonical JSON (object keys sorted at
/// every level, no white space). A redelivery, a retry or a re-send of the same command has
/// the same fingerprint whatever its key order or spacing; another type or other data (also
/// `1.0` for `1`) has another. The canonical text is streamed into the hash as it is written,
/// without a copy of `data`: every command is fingerprinted once on arrival.
pub fn fingerprint(command_type: &str, data: &Map<String, Value>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"command\0");
    hasher.update(command_type.as_bytes());
    hasher.update(b"\0");
    // Writing into a hash cannot fail, nor can serialising a JSON value.
    let _ = serde_json::to_writer(HashWriter(&mut hasher), &Canonical::Object(data));
    hex(&hasher.finalize())
}

/// The fingerprint of a message whose `type` and `data` cannot be read: SHA-256 of its bytes.
/// A redelivery matches it; any other message does not.
pub fn body_fingerprint(body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"body\0");
    hasher.update(body);
    hex(&hasher.finalize())
}

/// A JSON value serialised with the keys of every object in sorted order. serde_json's `Map`
/// keeps keys sorted unless its `preserve_order` feature is on (another crate in the build
/// may turn it on); sorting them here gives the same text either way. Everything else is
/// written by `Value`'s own serialisation, so the text is what `serde_json::to_vec` of the
/// sorted value gives.
enum Canonical<'a> {
    Value(&'a Value),
    Object(&'a Map<String, Value>),
}

impl serde::Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let object: &Map<String, Value> = match *self {
            Canonical::Object(object) | Canonical::Value(Value::Object(object)) => object,
            Canonical::Value(Value::Array(items)) => {
                return serializer.collect_seq(items.iter().map(Canonical::Value));
            }
            Canonical::Value(other) => return other.serialize(serializer),
        };
        let mut entries: Vec<(&String, &Value)> = object.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (key, value) in entries {
            map.serialize_entry(key, &Canonical::Value(value))?;
        }
        map.end()
    }
}

/// Feeds what is written into a running hash.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// What could be learnt from a message even when it is rejected, so the result can still
/// name the command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partial {
    pub id: Option<String>,
    pub command_type: Option<String>,
    pub account: Option<String>,
    /// [`fingerprint`] when `type` and `data` could be read, else [`body_fingerprint`]: how
    /// the ledger tells a redelivery of this message from another command under its id.
    pub fingerprint: Option<String>,
}

/// A message that could not be decoded: why, and what could be learnt of it anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub rejection: Rejection,
    pub partial: Partial,
}

/// Decodes and checks the envelope of one message.
pub fn decode(body: &[u8], meta: &MessageMeta<'_>) -> Result<Envelope, Box<DecodeError>> {
    let mut partial = Partial {
        id: meta.message_id.filter(|id| valid_id(id)).map(str::to_owned),
        ..Partial::default()
    };
    let reject = |rejection: Rejection, partial: &Partial| {
        let mut partial = partial.clone();
        if partial.fingerprint.is_none() {
            partial.fingerprint = Some(body_fingerprint(body));
        }
        Err(Box::new(DecodeError { rejection, partial }))
    };

    if let Some(content_type) = meta.content_type {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            peek(body, meta.content_encoding, &mut partial);
            return reject(
                Rejection::with_fields(
                    ErrorCode::UnsupportedContentType,
                    format!("content type {content_type:?} is not application/json"),
                    vec![FieldError::new(
                        "properties.content_type",
                        "must be application/json",
                    )],
                ),
                &partial,
            );
        }
    }
    if let Some(encoding) = meta.content_encoding.filter(|e| !e.is_empty())
        && !matches!(
            encoding.to_ascii_lowercase().as_str(),
            "identity" | "utf-8" | "utf8"
        )
    {
        peek(body, Some(encoding), &mut partial);
        return reject(
            Rejection::with_fields(
                ErrorCode::UnsupportedContentEncoding,
                format!("content encoding {encoding:?} is not supported; send plain UTF-8 JSON"),
                vec![FieldError::new(
                    "properties.content_encoding",
                    "must be absent",
                )],
            ),
            &partial,
        );
    }
    if body.len() > MAX_BODY_BYTES {
        return reject(
            Rejection::new(
                ErrorCode::TooLarge,
                format!(
                    "message body is {} bytes; the limit is {MAX_BODY_BYTES}",
                    body.len()
                ),
            ),
            &partial,
        );
    }
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            return reject(
                Rejection::new(
                    ErrorCode::InvalidUtf8,
                    format!("message body is not UTF-8 (byte {})", e.valid_up_to()),
                ),
                &partial,
            );
        }
    };
    // serde_json refuses nesting deeper than 128 levels, so hostile depth is an error here.
    let value: Value = match super::json::parse(text) {
        Ok(value) => value,
        Err(JsonError::Syntax(e)) => {
            return reject(
                Rejection::new(
                    ErrorCode::InvalidJson,
                    format!("message body is not JSON: {e}"),
                ),
                &partial,
            );
        }
        Err(JsonError::DuplicateKey { path }) => {
            return reject(
                Rejection::with_fields(
                    ErrorCode::InvalidJson,
                    "message body repeats a key in one object; readers disagree on which counts",
                    vec![FieldError::new(
                        path,
                        "appears more than once in its object",
                    )],
                ),
                &partial,
            );
        }
    };
    let Value::Object(mut object) = value else {
        return reject(
            Rejection::new(
                ErrorCode::InvalidEnvelope,
                "message body must be a JSON object",
            ),
            &partial,
        );
    };

    let mut problems = Vec::new();
    match object.remove("id") {
        Some(Value::String(id)) if valid_id(&id) => partial.id = Some(id),
        Some(Value::String(_)) => problems.push(FieldError::new(
            "id",
            format!("must be 1 to {MAX_ID_LEN} printable ASCII characters"),
        )),
        Some(Value::Null) | None if partial.id.is_some() => {}
        Some(Value::Null) | None => problems.push(FieldError::new(
            "id",
            "is required (or set the AMQP message_id property)",
        )),
        Some(_) => problems.push(FieldError::new("id", "must be a string")),
    }
    match object.remove("type") {
        Some(Value::String(t)) if valid_type(&t) => partial.command_type = Some(t),
        Some(Value::String(_)) => {
            problems.push(FieldError::new("type", "must be 1 to 64 characters"))
        }
        None | Some(Value::Null) => problems.push(FieldError::new("type", "is required")),
        Some(_) => problems.push(FieldError::new("type", "must be a string")),
    }
    match object.remove("account") {
        None | Some(Value::Null) => partial.account = Some("default".to_owned()),
        Some(Value::String(a)) if valid_account(&a) => partial.account = Some(a),
        Some(Value::String(_)) => problems.push(FieldError::new(
            "account",
            format!("must be 1 to {MAX_ACCOUNT_LEN} letters, digits, '-' or '_'"),
        )),
        Some(_) => problems.push(FieldError::new("account", "must be a string")),
    }
    let data = match object.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data,
        Some(_) => {
            problems.push(FieldError::new("data", "must be an object"));
            Map::new()
        }
    };
    if let Some(command_type) = &partial.command_type
        && !problems.iter().any(|p| p.field == "data")
    {
        partial.fingerprint = Some(fingerprint(command_type, &data));
    }
    // Name a few unknown keys, not thousands: the reason travels in a dead letter's header,
    // which must fit one AMQP frame.
    for unknown in object.keys().take(MAX_UNKNOWN_NAMED) {
        problems.push(FieldError::new(
            truncate(unknown, 64),
            "is not an envelope field (expected id, type, account, data)",
        ));
    }
    if !problems.is_empty() {
        let message = if object.len() > MAX_UNKNOWN_NAMED {
            format!(
                "the envelope is invalid ({} unknown keys; the first {MAX_UNKNOWN_NAMED} are named)",
                object.len()
            )
        } else {
            "the envelope is invalid".to_owned()
        };
        return reject(
            Rejection::with_fields(ErrorCode::InvalidEnvelope, message, problems),
            &partial,
        );
    }
    Ok(Envelope {
        id: partial.id.clone().unwrap_or_default(),
        command_type: partial.command_type.clone().unwrap_or_default(),
        account: partial.account.clone().unwrap_or_default(),
        data,
    })
}

/// Reads `id`, `type`, `account` (and the fingerprint) from a body refused for its content
/// type or encoding, when it is a JSON object once inflated (`gzip`, `x-gzip`, `deflate`) or
/// as it is. Values breaking the envelope's rules are left out; nothing is refused here.
fn peek(body: &[u8], encoding: Option<&str>, partial: &mut Partial) {
    if body.len() > MAX_BODY_BYTES {
        return;
    }
    let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
    let inflated = match encoding.as_deref() {
        Some("gzip" | "x-gzip") => inflate(flate2::read::GzDecoder::new(body)),
        Some("deflate") => inflate(flate2::read::ZlibDecoder::new(body))
            .or_else(|| inflate(flate2::read::DeflateDecoder::new(body))),
        _ => None,
    };
    // A producer may set the encoding without compressing: the body as it is comes second.
    let object = [inflated.as_deref(), Some(body)]
        .into_iter()
        .flatten()
        .find_map(
            |bytes| match super::json::parse(std::str::from_utf8(bytes).ok()?) {
                Ok(Value::Object(object)) => Some(object),
                _ => None,
            },
        );
    let Some(object) = object else {
        return;
    };
    if let Some(Value::String(id)) = object.get("id")
        && valid_id(id)
    {
        partial.id = Some(id.clone());
    }
    if let Some(Value::String(command_type)) = object.get("type")
        && valid_type(command_type)
    {
        partial.command_type = Some(command_type.clone());
    }
    match object.get("account") {
        None | Some(Value::Null) => partial.account = Some("default".to_owned()),
        Some(Value::String(account)) if valid_account(account) => {
            partial.account = Some(account.clone())
        }
        Some(_) => {}
    }
    let data = match object.get("data") {
        None | Some(Value::Null) => Some(Map::new()),
        Some(Value::Object(data)) => Some(data.clone()),
        Some(_) => None,
    };
    if let (Some(command_type), Some(data)) = (&partial.command_type, data) {
        partial.fingerprint = Some(fingerprint(command_type, &data));
    }
}

/// Inflates at most [`MAX_BODY_BYTES`]; `None` when the stream is broken or inflates larger.
fn inflate(mut reader: impl Read) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    (&mut reader)
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() <= MAX_BODY_BYTES).then_some(out)
}

fn valid_type(command_type: &str) -> bool {
    !command_type.is_empty() && command_type.len() <= 64
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

fn valid_account(account: &str) -> bool {
    !account.is_empty()
        && account.len() <= MAX_ACCOUNT_LEN
        && account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json() -> MessageMeta<'static> {
        MessageMeta {
            content_type: Some("application/json"),
            ..MessageMeta::default()
        }
    }

    #[test]
    fn a_complete_envelope_decodes() {
        let body =
            br#"{"id":"c-1","type":"contact.get","account":"emea","data":{"email":"a@b.example"}}"#;
        let envelope = decode(body, &json()).unwrap();
        assert_eq!(envelope.id, "c-1");
        assert_eq!(envelope.command_type, "contact.get");
        assert_eq!(envelope.account, "emea");
        assert_eq!(envelope.data["email"], "a@b.example");
    }

    #[test]
    fn account_defaults_to_default_and_id_falls_back_to_message_id() {
        let meta = MessageMeta {
            message_id: Some("amqp-7"),
            ..MessageMeta::default()
        };
        let envelope = decode(br#"{"type":"list.list"}"#, &meta).unwrap();
        assert_eq!(
            (envelope.id.as_str(), envelope.account.as_str()),
            ("amqp-7", "default")
        );
        assert!(envelope.data.is_empty());
    }

    #[test]
    fn each_envelope_problem_is_named() {
        let DecodeError { rejection, partial } = *decode(
            br#"{"type":7,"account":"a b","data":[],"extra":1}"#,
            &json(),
        )
        .unwrap_err();
        assert_eq!(rejection.code, "invalid_envelope");
        let fields: Vec<_> = rejection.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, vec!["id", "type", "account", "data", "extra"]);
        assert_eq!(
            (partial.id, partial.command_type, partial.account),
            (None, None, None)
        );
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_gzip_body_is_refused_but_its_id_type_and_account_are_read() {
        let body = gzip(
            br#"{"id":"zipped-1","type":"contact.upsert","account":"emea","data":{"email":"nope"}}"#,
        );
        let meta = MessageMeta {
            content_type: Some("application/json"),
            content_encoding: Some("gzip"),
            ..MessageMeta::default()
        };
        let DecodeError { rejection, partial } = *decode(&body, &meta).unwrap_err();
        assert_eq!(rejection.code, "unsupported_content_encoding");
        assert_eq!(partial.id.as_deref(), Some("zipped-1"));
        assert_eq!(partial.command_type.as_deref(), Some("contact.upsert"));
        assert_eq!(partial.account.as_deref(), Some("emea"));
        let data = serde_json::json!({"email": "nope"});
        assert_eq!(
            partial.fingerprint,
            Some(fingerprint("contact.upsert", data.as_object().unwrap())),
            "the same command sent uncompressed has the same fingerprint"
        );
    }

    #[test]
    fn what_cannot_be_inflated_or_read_leaves_the_result_unnamed() {
        let meta = MessageMeta {
            content_encoding: Some("gzip"),
            message_id: Some("from-amqp"),
            ..MessageMeta::default()
        };
        for body in [
            gzip(b"not json"),
            gzip(br#"{"id": 7, "type": ""}"#),
            b"\x1f\x8b broken".to_vec(),
        ] {
            let partial = decode(&body, &meta).unwrap_err().partial;
            assert_eq!(partial.id.as_deref(), Some("from-amqp"));
            assert_eq!(partial.command_type, None);
            assert_eq!(partial.fingerprint, Some(body_fingerprint(&body)));
        }
        // A gzip bomb inflates no further than the body limit.
        let bomb = gzip(&vec![b' '; MAX_BODY_BYTES * 4]);
        assert!(bomb.len() < MAX_BODY_BYTES);
        assert_eq!(decode(&bomb, &meta).unwrap_err().partial.command_type, None);
    }

    /// The fingerprint as first written (a sorted copy of `data`, serialised, hashed, hex by
    /// `format!`): ledgers hold fingerprints made that way, so the streamed one must equal it.
    fn fingerprint_as_stored(command_type: &str, data: &Map<String, Value>) -> String {
        fn sorted(value: &Value) -> Value {
            match value {
                Value::Object(object) => {
                    let mut entries: Vec<_> = object.iter().collect();
                    entries.sort_by(|a, b| a.0.cmp(b.0));
                    Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.clone(), sorted(v)))
                            .collect(),
                    )
                }
                Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
                other => other.clone(),
            }
        }
        let mut hasher = Sha256::new();
        hasher.update(b"command\0");
        hasher.update(command_type.as_bytes());
        hasher.update(b"\0");
        hasher.update(serde_json::to_vec(&sorted(&Value::Object(data.clone()))).unwrap());
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_streamed_fingerprint_equals_the_one_ledgers_hold() {
        let samples = [
            serde_json::json!({}),
            serde_json::json!({"email": "a@b.example", "list_ids": ["l2", "l1"], "first_name": "Zoë"}),
            serde_json::json!({
                "z": {"b": [1, 1.0, -2.5e-7, 1e300, {"y": null, "x": true}], "a": "\"q\"\n\u{1}\\"},
                "custom_fields": {"k\u{e9}y": "\u{1F600}", "key": ""},
                "n": 18446744073709551615u64,
                "m": -9223372036854775808i64
            }),
            serde_json::json!({"nested": [[[]], [{}], [{"b": 1, "a": [{"d": 4, "c": 3}]}]]}),
        ];
        for sample in samples {
            let Value::Object(data) = sample else {
                unreachable!()
            };
            assert_eq!(
                fingerprint("contact.upsert", &data),
                fingerprint_as_stored("contact.upsert", &data),
                "{data:?}"
            );
        }
        // And one pinned, so that neither can drift with the other.
        let Value::Object(data) = serde_json::json!({"email": "a@b.example", "list_ids": ["l1"]})
        else {
            unreachable!()
        };
        assert_eq!(
            fingerprint("contact.upsert", &data),
            "fa46c5637854a77f763d25c61269f04460810c154fd608a304f235a8a0390287"
        );
    }

    #[test]
    fn fingerprints_ignore_key_order_and_spacing_but_not_type_or_data() {
        let a = decode(
            br#"{"id":"f","type":"contact.upsert","data":{"email":"a@b.example","custom_fields":{"x":1,"a":2}}}"#,
            &json(),
        )
        .unwrap();
        let b = decode(
            br#"{ "data" : { "custom_fields" : { "a" : 2 , "x" : 1 }, "email" : "a@b.example" }, "type" : "contact.upsert", "id" : "other" }"#,
            &json(),
        )
        .unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let mut other_type = a.clone();
        other_type.command_type = "contact.create".into();
        assert_ne!(a.fingerprint(), other_type.fingerprint());
        let mut other_data = a.clone();
        other_data.data.insert("first_name".into(), "Pat".into());
        assert_ne!(a.fingerprint(), other_data.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn wrong_content_type_encoding_size_utf8_and_json_are_rejected_with_codes() {
        let text = MessageMeta {
            content_type: Some("text/plain"),
            ..MessageMeta::default()
        };
        assert_eq!(
            decode(b"{}", &text).unwrap_err().rejection.code,
            "unsupported_content_type"
        );
        let gzip = MessageMeta {
            content_encoding: Some("gzip"),
            ..MessageMeta::default()
        };
        assert_eq!(
            decode(b"{}", &gzip).unwrap_err().rejection.code,
            "unsupported_content_encoding"
        );
        let huge = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            decode(&huge, &json()).unwrap_err().rejection.code,
            "too_large"
        );
        assert_eq!(
            decode(b"{\"id\":\"\xff\"}", &json())
                .unwrap_err()
                .rejection
                .code,
            "invalid_utf8"
        );
        assert_eq!(
            decode(b"{\"id\":", &json()).unwrap_err().rejection.code,
            "invalid_json"
        );
        assert_eq!(
            decode(b"[1,2]", &json()).unwrap_err().rejection.code,
            "invalid_envelope"
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            decode(deep.as_bytes(), &json()).unwrap_err().rejection.code,
            "invalid_json"
        );
    }

    #[test]
    fn charset_parameters_on_the_content_type_are_accepted() {
        let meta = MessageMeta {
            content_type: Some("application/json; charset=utf-8"),
            message_id: Some("m"),
            ..MessageMeta::default()
        };
        assert!(decode(br#"{"type":"list.list"}"#, &meta).is_ok());
    }

    #[test]
    fn thousands_of_unknown_keys_name_a_few_and_count_the_rest() {
        let keys: String = (0..20_000).map(|i| format!(",\"k{i}\":0")).collect();
        let body = format!(r#"{{"id":"many","type":"list.list"{keys}}}"#);
        let rejection = decode(body.as_bytes(), &json()).unwrap_err().rejection;
        assert_eq!(rejection.code, "invalid_envelope");
        assert_eq!(rejection.fields.len(), MAX_UNKNOWN_NAMED);
        assert!(
            rejection.message.contains("20000 unknown keys"),
            "{rejection}"
        );
        assert!(rejection.to_string().len() < 2_000);
    }

    #[test]
    fn a_repeated_key_is_invalid_json_naming_the_key() {
        let rejection = decode(br#"{"id":"a","id":"b","type":"list.list"}"#, &json())
            .unwrap_err()
            .rejection;
        assert_eq!(rejection.code, "invalid_json");
        assert_eq!(
            rejection.fields,
            vec![FieldError::new(
                "id",
                "appears more than once in its object"
            )]
        );
    }

    #[test]
    fn the_id_is_kept_for_the_result_even_when_the_rest_is_bad() {
        let partial = decode(br#"{"id":"keep-me","type":"x","data":5}"#, &json())
            .unwrap_err()
            .partial;
        assert_eq!(partial.id.as_deref(), Some("keep-me"));
        assert_eq!(partial.command_type.as_deref(), Some("x"));
    }
}
