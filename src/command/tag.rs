//! Contact tag commands: `tag.create`, `tag.update` (a rename) and `tag.delete`. Tag ids are
//! UUIDs; names are 1 to 255 characters and unique in the account (OpenAPI spec
//! `postTag_request` / `putTag_request`).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::check::{self, Checker};
use super::rejection::Rejection;

/// The longest tag name (spec: `maxLength: 255`).
pub const MAX_TAG_NAME: usize = 255;

/// `tag.create`: the name, and the source used to tag contacts (settable only here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSpec {
    pub name: String,
    pub tag_source: Option<String>,
}

/// `tag.update`: which tag, and its new name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRename {
    pub tag_id: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateData {
    #[serde(default)]
    tag_id: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tag_source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateData {
    #[serde(default)]
    tag_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdData {
    #[serde(default)]
    tag_id: Option<String>,
}

fn name(c: &mut Checker, name: Option<String>) -> String {
    let name = name.unwrap_or_default();
    c.required_text("data.name", &name, MAX_TAG_NAME);
    name
}

/// `tag.create`: `name` required; `tag_source` optional, not blank, at most 255 characters.
pub fn parse_create(data: Map<String, Value>) -> Result<TagSpec, Rejection> {
    let raw: CreateData = check::data(data)?;
    let mut c = Checker::new();
    if raw.tag_id.is_some() {
        c.fail(
            "data.tag_id",
            "is assigned by Constant Contact; leave it out",
        );
    }
    let name = name(&mut c, raw.name);
    if let Some(source) = &raw.tag_source {
        c.required_text("data.tag_source", source, MAX_TAG_NAME);
    }
    c.finish(TagSpec {
        name,
        tag_source: raw.tag_source,
    })
}

/// `tag.update`: `tag_id` (a UUID) and the new `name`.
pub fn parse_update(data: Map<String, Value>) -> Result<TagRename, Rejection> {
    let raw: UpdateData = check::data(data)?;
    let mut c = Checker::new();
    let tag_id = raw.tag_id.unwrap_or_default();
    c.required_uuid("data.tag_id", &tag_id);
    let name = name(&mut c, raw.name);
    c.finish(TagRename { tag_id, name })
}

/// `tag.delete`: `tag_id`, a UUID.
pub fn parse_delete(data: Map<String, Value>) -> Result<String, Rejection> {
    let raw: IdData = check::data(data)?;
    let mut c = Checker::new();
    let tag_id = raw.tag_id.unwrap_or_default();
    c.required_uuid("data.tag_id", &tag_id);
    c.finish(tag_id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

    fn map(data: Value) -> Map<String, Value> {
        data.as_object().cloned().unwrap_or_default()
    }

    fn fields(rejection: Rejection) -> Vec<String> {
        rejection.fields.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn valid_data_parses() {
        assert_eq!(
            parse_create(map(json!({"name": "Gold", "tag_source": "ESTY"}))),
            Ok(TagSpec {
                name: "Gold".into(),
                tag_source: Some("ESTY".into())
            })
        );
        assert_eq!(
            parse_update(map(json!({"tag_id": ID, "name": "x".repeat(255)}))),
            Ok(TagRename {
                tag_id: ID.into(),
                name: "x".repeat(255)
            })
        );
        assert_eq!(parse_delete(map(json!({"tag_id": ID}))), Ok(ID.to_owned()));
    }

    #[test]
    fn bad_names_are_refused_naming_data_name() {
        for data in [
            json!({}),
            json!({"name": ""}),
            json!({"name": "   "}),
            json!({"name": "x".repeat(256)}),
        ] {
            let rejection = parse_create(map(data.clone())).expect_err("refused");
            assert_eq!(rejection.code.as_str(), "invalid_data", "{data}");
            assert_eq!(fields(rejection), ["data.name"], "{data}");
            let mut update = map(data.clone());
            update.insert("tag_id".into(), json!(ID));
            let rejection = parse_update(update).expect_err("refused");
            assert_eq!(fields(rejection), ["data.name"], "{data}");
        }
        let rejection =
            parse_create(map(json!({"name": "A", "tag_source": " "}))).expect_err("refused");
        assert_eq!(fields(rejection), ["data.tag_source"]);
    }

    #[test]
    fn bad_ids_are_refused_naming_data_tag_id() {
        for id in [json!("14"), json!("not-a-uuid"), json!("")] {
            let rejection =
                parse_update(map(json!({"tag_id": id, "name": "A"}))).expect_err("refused");
            assert_eq!(fields(rejection), ["data.tag_id"], "{id}");
            let rejection = parse_delete(map(json!({"tag_id": id}))).expect_err("refused");
            assert_eq!(fields(rejection), ["data.tag_id"], "{id}");
        }
        assert_eq!(
            fields(parse_delete(map(json!({}))).expect_err("refused")),
            ["data.tag_id"]
        );
        assert_eq!(
            fields(parse_delete(map(json!({"tag_id": 14}))).expect_err("refused")),
            ["data.tag_id"]
        );
        let rejection = parse_create(map(json!({"tag_id": ID, "name": "A"}))).expect_err("refused");
        assert_eq!(fields(rejection), ["data.tag_id"]);
        let rejection = parse_update(map(json!({"tag_id": ID, "name": "A", "tag_source": "X"})))
            .expect_err("refused");
        assert_eq!(fields(rejection), ["data.tag_source"]);
    }
}
