//! Custom fields (`/contact_custom_fields`, shared/reference/constant-contact-v3.md §5): the
//! resource, its create body, its PUT body (a full replacement) and a page of them.
//!
//! The PUT body always carries `label` and `type`: the current spec's PUT schema lists `label`
//! (and `choices`) only, but the older vendor spec requires both and says omitted properties
//! become null, so sending `type` as it is costs nothing and protects it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::model::{paging, time};

/// A custom field.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CustomField {
    pub custom_field_id: String,
    /// Display name, unique in the account.
    #[serde(default)]
    pub label: String,
    /// Read-only, derived from the label; the key used by JSON import (`cf:<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `string`, `date`, … (`type` in JSON).
    #[serde(rename = "type", default)]
    pub field_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// 1 = legacy string dates, 2 = real dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<CustomFieldChoice>>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        deserialize_with = "time::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at: Option<DateTime<Utc>>,
}

impl CustomField {
    /// A PUT body that changes nothing (label, type, metadata and choices as fetched).
    pub fn to_put(&self) -> CustomFieldPut {
        CustomFieldPut {
            label: self.label.clone(),
            field_type: self.field_type.clone(),
            metadata: self.metadata.clone(),
            choices: self.choices.as_ref().map(|choices| {
                choices
                    .iter()
                    .map(|choice| CustomFieldChoiceInput {
                        choice_id: choice.choice_id,
                        choice_label: choice.choice_label.clone(),
                        display_order: choice.display_order,
                    })
                    .collect()
            }),
        }
    }
}

/// One choice of a select-type field.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CustomFieldChoice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice_id: Option<i64>,
    #[serde(default)]
    pub choice_label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_order: Option<i64>,
}

/// A choice as sent: without `choice_id` on create, with it to keep a choice on PUT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomFieldChoiceInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choice_id: Option<i64>,
    pub choice_label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_order: Option<i64>,
}

/// The body of `POST /contact_custom_fields`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CustomFieldCreate {
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<CustomFieldChoiceInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

impl CustomFieldCreate {
    /// A plain field (`string`, `date`, …).
    pub fn new(label: &str, field_type: &str) -> Self {
        Self {
            label: label.to_owned(),
            field_type: field_type.to_owned(),
            ..Self::default()
        }
    }
}

/// The body of `PUT /contact_custom_fields/{id}`: a full replacement.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CustomFieldPut {
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<CustomFieldChoiceInput>>,
}

/// One page of `GET /contact_custom_fields`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CustomFieldsPage {
    #[serde(default)]
    pub custom_fields: Vec<CustomField>,
    #[serde(rename = "_links", default, deserialize_with = "paging::next_href")]
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::model::fixtures;

    #[test]
    fn the_captured_custom_fields_page_decodes() {
        let page: CustomFieldsPage =
            serde_json::from_str(fixtures::CUSTOM_FIELDS).expect("fixture decodes");
        assert_eq!(page.next, None, "the capture has no _links at all");
        let [field] = page.custom_fields.as_slice() else {
            panic!("one field expected");
        };
        assert_eq!(
            field.custom_field_id,
            "77317b4e-b35c-11ef-ad2e-fa163e5a0a14"
        );
        assert_eq!(field.label, "Hobby");
        assert_eq!(field.name.as_deref(), Some("hobby"));
        assert_eq!(field.field_type, "string");
        assert!(field.created_at.is_some() && field.updated_at.is_some());
    }

    #[test]
    fn select_fields_with_metadata_and_choices_decode_leniently() {
        let field: CustomField = serde_json::from_value(json!({
            "custom_field_id": "f1", "label": "Fruit", "type": "single_select", "version": 2,
            "metadata": {"display_type": "radio"},
            "choices": [{"choice_id": 111, "choice_label": "Apple", "display_order": 1,
                         "created_at": "2024-06-27T10:28:09Z", "deleted_at": "2023-12-18"}],
            "created_at": "sometime", "brand_new_field": [1, 2]
        }))
        .expect("decodes");
        assert_eq!(field.created_at, None);
        let choices = field.choices.as_deref().expect("choices");
        assert_eq!(choices[0].choice_id, Some(111));
        assert_eq!(
            field.metadata.as_ref().and_then(|m| m.get("display_type")),
            Some(&json!("radio"))
        );
    }

    #[test]
    fn the_create_body_sends_label_and_type_and_nothing_unset() {
        let body =
            serde_json::to_value(CustomFieldCreate::new("Hobby", "string")).expect("encodes");
        assert_eq!(body, json!({"label": "Hobby", "type": "string"}));
    }

    #[test]
    fn the_put_body_from_a_fetched_field_always_carries_label_and_type() {
        let field: CustomField = serde_json::from_str(fixtures::CUSTOM_FIELDS)
            .map(|page: CustomFieldsPage| page.custom_fields[0].clone())
            .expect("fixture decodes");
        let mut put = field.to_put();
        put.label = "Hobbies".into();
        assert_eq!(
            serde_json::to_value(&put).expect("encodes"),
            json!({"label": "Hobbies", "type": "string"})
        );
        let select: CustomField = serde_json::from_value(json!({
            "custom_field_id": "f1", "label": "Fruit", "type": "single_select",
            "choices": [{"choice_id": 7, "choice_label": "Apple"}]
        }))
        .expect("decodes");
        assert_eq!(
            serde_json::to_value(select.to_put()).expect("encodes"),
            json!({"label": "Fruit", "type": "single_select", "choices": [{"choice_id": 7, "choice_label": "Apple"}]})
        );
    }
}
