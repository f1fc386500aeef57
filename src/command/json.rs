//! Strict JSON for message bodies: `serde_json::from_str::<Value>`, except that an object
//! repeating a key is refused, naming the key's path. serde_json keeps the last value; another
//! reader (a validating proxy, a schema check) may keep the first, and one message must not
//! mean two commands (RELIABILITY.md §10.6 B1, duplicate keys). serde_json's limit of 128
//! nesting levels still applies.

use std::cell::RefCell;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::field::truncate;

/// Why a body is not acceptable JSON.
#[derive(Debug)]
pub enum JsonError {
    /// Not JSON at all (or nested too deeply).
    Syntax(serde_json::Error),
    /// An object repeats a key; the path is like `data.email` or `data.phone_numbers[0].kind`.
    DuplicateKey { path: String },
}

/// Parses one JSON value, refusing repeated keys.
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let duplicate = RefCell::new(None);
    let mut reader = serde_json::Deserializer::from_str(text);
    let parsed = Node {
        at: None,
        duplicate: &duplicate,
    }
    .deserialize(&mut reader)
    .and_then(|value| reader.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(path)) => Err(JsonError::DuplicateKey { path }),
        (Err(error), None) => Err(JsonError::Syntax(error)),
    }
}

/// Where a value sits: a linked list up to the root, built only on the stack.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

struct Place<'a> {
    step: Step<'a>,
    up: Option<&'a Place<'a>>,
}

fn path(at: Option<&Place<'_>>, key: &str) -> String {
    let mut steps = vec![format!(".{}", truncate(key, 60))];
    let mut next = at;
    while let Some(place) = next {
        steps.push(match place.step {
            Step::Key(k) => format!(".{}", truncate(k, 60)),
            Step::Index(i) => format!("[{i}]"),
        });
        next = place.up;
    }
    let joined: String = steps.into_iter().rev().collect();
    joined
        .strip_prefix('.')
        .map(str::to_owned)
        .unwrap_or(joined)
}

#[derive(Clone, Copy)]
struct Node<'a> {
    at: Option<&'a Place<'a>>,
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let place = Place {
                step: Step::Index(items.len()),
                up: self.at,
            };
            let node = Node {
                at: Some(&place),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(node)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(path(self.at, &key));
                return Err(de::Error::custom("a key appears more than once"));
            }
            let place = Place {
                step: Step::Key(&key),
                up: self.at,
            };
            let value = map.next_value_seed(Node {
                at: Some(&place),
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_serde_json_parses_them() {
        for text in [
            r#"{"id":"a","data":{"n":[1,-2,3.5,true,null,"x"],"o":{}}}"#,
            "[]",
            "\"\\u00e9\\ud83d\\ude00\"",
            "18446744073709551615",
        ] {
            let strict = parse(text).unwrap();
            assert_eq!(
                strict,
                serde_json::from_str::<Value>(text).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn a_repeated_key_is_refused_naming_its_path() {
        let cases = [
            (r#"{"id":"a","id":"b"}"#, "id"),
            (r#"{"data":{"email":"a","email":"b"}}"#, "data.email"),
            (
                r#"{"data":{"phone_numbers":[{},{"kind":"home","kind":"work"}]}}"#,
                "data.phone_numbers[1].kind",
            ),
        ];
        for (text, expected) in cases {
            match parse(text) {
                Err(JsonError::DuplicateKey { path }) => assert_eq!(path, expected),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn syntax_errors_and_depth_stay_syntax_errors() {
        for text in ["{", "{} x", "", "\"\\ud800\""] {
            assert!(matches!(parse(text), Err(JsonError::Syntax(_))), "{text}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(parse(&deep), Err(JsonError::Syntax(_))));
    }
}
