//! Segment commands: `segment.list` (no data) and `segment.get`. Segments are made in
//! Constant Contact's UI; ctct-sync only reads them. Their ids are integers (int32 in the
//! OpenAPI spec), unlike the UUIDs of every other resource.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::check::{self, Checker};
use super::rejection::Rejection;

/// The largest segment id: the spec declares `segment_id` as int32.
pub const MAX_SEGMENT_ID: u32 = i32::MAX as u32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdData {
    #[serde(default)]
    segment_id: Option<Value>,
}

/// `segment.get`: `segment_id`, a JSON integer from 1 to [`MAX_SEGMENT_ID`]. A string (also
/// `"14"`) or a UUID is refused, naming the field.
pub fn parse_get(data: Map<String, Value>) -> Result<u32, Rejection> {
    let raw: IdData = check::data(data)?;
    let mut c = Checker::new();
    const FIELD: &str = "data.segment_id";
    let id = match &raw.segment_id {
        None => {
            c.fail(
                FIELD,
                "is required: the segment's id, a whole number such as 14",
            );
            None
        }
        Some(Value::Number(n)) => match n.as_u64() {
            Some(id @ 1..) if id <= u64::from(MAX_SEGMENT_ID) => Some(id as u32),
            _ => {
                c.fail(
                    FIELD,
                    format!("must be a whole number from 1 to {MAX_SEGMENT_ID}"),
                );
                None
            }
        },
        Some(Value::String(_)) => {
            c.fail(
                FIELD,
                "must be a JSON number, not a string: segment ids are whole numbers such as 14, not UUIDs",
            );
            None
        }
        Some(_) => {
            c.fail(FIELD, "must be a whole number such as 14");
            None
        }
    };
    c.finish_required(id, FIELD, "is required")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(data: Value) -> Result<u32, Rejection> {
        parse_get(data.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn a_positive_integer_up_to_int32_is_a_segment_id() {
        assert_eq!(parse(json!({"segment_id": 14})), Ok(14));
        assert_eq!(parse(json!({"segment_id": 1})), Ok(1));
        assert_eq!(
            parse(json!({"segment_id": 2_147_483_647})),
            Ok(MAX_SEGMENT_ID)
        );
    }

    #[test]
    fn anything_else_is_refused_naming_segment_id() {
        for data in [
            json!({}),
            json!({"segment_id": null}),
            json!({"segment_id": 0}),
            json!({"segment_id": -3}),
            json!({"segment_id": 1.5}),
            json!({"segment_id": 2_147_483_648_u64}),
            json!({"segment_id": "14"}),
            json!({"segment_id": "987cb9ab-ad0c-4087-bd46-2e2ad241221f"}),
            json!({"segment_id": [14]}),
            json!({"segment_id": true}),
        ] {
            let rejection = parse(data.clone()).expect_err("refused");
            assert_eq!(rejection.code.as_str(), "invalid_data", "{data}");
            let fields: Vec<&str> = rejection.fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(fields, ["data.segment_id"], "{data}");
        }
        let uuid = parse(json!({"segment_id": "987cb9ab-ad0c-4087-bd46-2e2ad241221f"}))
            .expect_err("refused");
        assert!(uuid.fields[0].reason.contains("not UUIDs"), "{uuid}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let rejection = parse(json!({"segment_id": 14, "name": "x"})).expect_err("refused");
        assert_eq!(rejection.fields[0].field, "data.name");
    }
}
