//! The OpenAPI 3 spec (shared/reference) loaded once, and a small JSON-schema validator for
//! the parts the spec uses: `$ref`, `type`, `properties`, `required`, `items`, `enum`,
//! `nullable`, `allOf`/`oneOf`/`anyOf`, `format` (date-time, date, uuid, email — loosely),
//! `maxLength`/`minLength`, `minimum`/`maximum`, `maxItems`/`minItems`. Objects are checked
//! strictly: a property the schema does not declare is an error (catches misspelt fields),
//! except the documented list `description`.

use std::sync::OnceLock;

use serde_json::Value;

const SPEC_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/reference/constant-contact-v3-openapi3-csharp-sdk-1.9.0.yaml"
);

pub struct Spec {
    doc: Value,
}

/// Answers the spec does not declare for an operation but the sandbox gives by choice, each
/// documented in the sandbox README: `POST /activities/add_list_memberships` answers 404 for
/// an unknown list or contact id as its twin `remove_list_memberships` (which declares 404)
/// does; `contact_delete`, `list_delete` and `contacts_tags_delete` answer 404 for an unknown
/// id as `custom_fields_delete` (which declares 404) does.
const CHOSEN_UNDECLARED: [(&str, &str, u16); 4] = [
    ("POST", "/activities/add_list_memberships", 404),
    ("POST", "/activities/contact_delete", 404),
    ("POST", "/activities/list_delete", 404),
    ("POST", "/activities/contacts_tags_delete", 404),
];

/// The spec, parsed on first use.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = std::env::var("CTCT_SPEC_PATH").unwrap_or_else(|_| SPEC_PATH.to_owned());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the OpenAPI spec is readable at {path}: {e}"));
        let yaml: serde_norway::Value = serde_norway::from_str(&text).expect("the spec is YAML");
        let doc = serde_json::to_value(yaml).expect("the spec converts to JSON");
        Spec { doc }
    })
}

impl Spec {
    /// The spec path template matching a concrete API path (`/v3` and query stripped).
    pub fn template(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let path = path.strip_prefix("/v3").unwrap_or(path);
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best: Option<(usize, &String)> = None;
        for template in self.doc["paths"].as_object()?.keys() {
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let fits = parts.iter().zip(&segments).all(|(p, s)| {
                if p.starts_with('{') {
                    true
                } else {
                    literal += 1;
                    p == s
                }
            });
            if fits && best.is_none_or(|(n, _)| literal > n) {
                best = Some((literal, template));
            }
        }
        best.map(|(_, t)| t.clone())
    }

    /// The JSON response schema of an operation for a status, if the spec declares one.
    pub fn response_schema(&self, method: &str, template: &str, status: u16) -> Option<&Value> {
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        if op.is_null() {
            return None;
        }
        op["responses"][status.to_string()]["content"]["application/json"].get("schema")
    }

    /// True when the spec has this method on this template.
    pub fn has_operation(&self, method: &str, template: &str) -> bool {
        !self.doc["paths"][template][method.to_ascii_lowercase()].is_null()
    }

    /// True when the spec declares this status for the operation.
    pub fn declares_status(&self, method: &str, template: &str, status: u16) -> bool {
        CHOSEN_UNDECLARED.contains(&(method, template, status))
            || !self.doc["paths"][template][method.to_ascii_lowercase()]["responses"]
                [status.to_string()]
            .is_null()
    }

    pub fn component(&self, name: &str) -> &Value {
        &self.doc["components"]["schemas"][name]
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut current = schema;
        for _ in 0..32 {
            match current.get("$ref").and_then(Value::as_str) {
                Some(reference) => {
                    let name = reference.rsplit('/').next().unwrap_or_default();
                    current = self.component(name);
                }
                None => break,
            }
        }
        current
    }

    /// Every violation of `schema` by `value` (empty = valid).
    pub fn validate(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, "$", &mut errors);
        errors
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if value.is_null() && schema["nullable"] == Value::Bool(true) {
            return;
        }
        if let Some(all) = schema["allOf"].as_array() {
            for sub in all {
                self.check(sub, value, at, errors);
            }
        }
        if let Some(any) = schema["anyOf"].as_array()
            && !any.iter().any(|sub| self.validate(sub, value).is_empty())
        {
            errors.push(format!("{at}: matches none of anyOf"));
        }
        if let Some(one) = schema["oneOf"].as_array() {
            let n = one
                .iter()
                .filter(|sub| self.validate(sub, value).is_empty())
                .count();
            if n != 1 {
                errors.push(format!("{at}: matches {n} of oneOf (want exactly 1)"));
            }
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(value)
        {
            errors.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
        let kind = schema["type"].as_str();
        let type_ok = match kind {
            None => true,
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            Some(other) => {
                errors.push(format!("{at}: unknown schema type {other}"));
                true
            }
        };
        if !type_ok {
            errors.push(format!(
                "{at}: expected {}, got {value}",
                kind.unwrap_or("?")
            ));
            return;
        }
        match value {
            Value::String(s) => self.check_string(schema, s, at, errors),
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or_default();
                if schema["minimum"].as_f64().is_some_and(|m| x < m) {
                    errors.push(format!("{at}: {x} is below the minimum"));
                }
                if schema["maximum"].as_f64().is_some_and(|m| x > m) {
                    errors.push(format!("{at}: {x} is above the maximum"));
                }
            }
            Value::Array(items) => {
                if schema["maxItems"]
                    .as_u64()
                    .is_some_and(|m| items.len() as u64 > m)
                {
                    errors.push(format!("{at}: more than maxItems items"));
                }
                if schema["minItems"]
                    .as_u64()
                    .is_some_and(|m| (items.len() as u64) < m)
                {
                    errors.push(format!("{at}: fewer than minItems items"));
                }
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            Value::Object(map) => self.check_object(schema, map, at, errors),
            _ => {}
        }
    }

    fn check_string(&self, schema: &Value, s: &str, at: &str, errors: &mut Vec<String>) {
        let len = s.chars().count() as u64;
        if schema["maxLength"].as_u64().is_some_and(|m| len > m) {
            errors.push(format!("{at}: longer than maxLength"));
        }
        if schema["minLength"].as_u64().is_some_and(|m| len < m) {
            errors.push(format!("{at}: shorter than minLength"));
        }
        let ok = match schema["format"].as_str() {
            Some("date-time") => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            Some("date") => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            Some("uuid") => uuid::Uuid::parse_str(s).is_ok(),
            Some("email") => s.contains('@'),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: {s:?} is not a valid {}", schema["format"]));
        }
    }

    fn check_object(
        &self,
        schema: &Value,
        map: &serde_json::Map<String, Value>,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        let properties = schema["properties"].as_object();
        if let Some(required) = schema["required"].as_array() {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    errors.push(format!("{at}: required property {name} is missing"));
                }
            }
        }
        let composed = ["allOf", "oneOf", "anyOf"]
            .iter()
            .any(|k| schema.get(*k).is_some());
        for (name, value) in map {
            let path = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(sub) => self.check(sub, value, &path, errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Object(_)) => {
                        let sub = &schema["additionalProperties"];
                        self.check(sub, value, &path, errors);
                    }
                    Some(Value::Bool(true)) => {}
                    _ if properties.is_none() || composed => {}
                    _ if name == "description"
                        && properties.is_some_and(|p| p.contains_key("list_id")) => {}
                    _ => errors.push(format!("{path}: property not declared by the spec")),
                },
            }
        }
    }

    /// Validates a response of `method path` with `status` against the spec; panics with
    /// every violation. 2xx and ordinary 4xx answers must be declared by the operation;
    /// 401/403/429 (possible anywhere) are checked against the error schemas only.
    pub fn assert_response(&self, method: &str, path: &str, status: u16, body: &Value) {
        let Some(template) = self.template(path) else {
            return;
        };
        if !self.has_operation(method, &template) {
            assert!(
                matches!(status, 401 | 403 | 404 | 405 | 429),
                "{method} {template}: no such operation in the spec (status {status})"
            );
            return;
        }
        let schema = match status {
            401 | 429 => Some(self.component("AuthorizationErrorSchema").clone()),
            403 => Some(self.component("APIErrorSchema").clone()),
            500..=599 => None,
            _ => {
                assert!(
                    self.declares_status(method, &template, status),
                    "{method} {template}: the spec does not declare status {status}; body {body}"
                );
                match status {
                    200..=299 => self.response_schema(method, &template, status).cloned(),
                    // Reporting errors are single `StatsError` objects (reference §3.1).
                    _ if template.starts_with("/reports/") => {
                        Some(self.component("StatsError").clone())
                    }
                    _ => Some(self.component("APIErrorSchema").clone()),
                }
            }
        };
        let Some(schema) = schema else {
            return;
        };
        let errors = self.validate(&schema, body);
        assert!(
            errors.is_empty(),
            "{method} {path} ({status}) does not match the spec:\n  {}\nbody: {body}",
            errors.join("\n  ")
        );
    }
}

#[test]
fn the_validator_catches_type_format_required_and_unknown_property_errors() {
    let spec = spec();
    let schema = spec
        .response_schema("get", "/contacts/{contact_id}", 200)
        .expect("declared")
        .clone();
    let good = serde_json::json!({
        "contact_id": "af73e650-96f0-11ef-b2a0-fa163eafb85e",
        "email_address": {"address": "a@b.example", "permission_to_send": "implicit"},
        "created_at": "2024-10-30T18:56:35Z",
        "deleted_at": "2024-10-31",
    });
    assert!(spec.validate(&schema, &good).is_empty());
    let bad = serde_json::json!({
        "contact_id": "not-a-uuid",
        "email_address": {"permission_to_send": "implicit"},
        "first_name": "x".repeat(51),
        "birthday_month": "May",
        "created_at": "yesterday",
        "first_nmae": "typo",
    });
    let errors = spec.validate(&schema, &bad);
    for needle in [
        "contact_id",
        "required property address",
        "first_name: longer",
        "birthday_month: expected integer",
        "created_at",
        "first_nmae: property not declared",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "no error about {needle}: {errors:?}"
        );
    }
}

#[test]
fn path_templates_prefer_literal_segments() {
    let spec = spec();
    assert_eq!(
        spec.template("/v3/contacts/sign_up_form").as_deref(),
        Some("/contacts/sign_up_form")
    );
    assert_eq!(
        spec.template("/v3/contacts/6f2d1c6e-0000-4000-8000-000000000000?include=notes")
            .as_deref(),
        Some("/contacts/{contact_id}")
    );
}
