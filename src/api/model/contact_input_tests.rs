//! Tests of the contact request bodies: absent fields stay absent, `to_put` keeps everything.

use serde_json::json;

use super::*;
use crate::api::model::fixtures;

fn full_contact() -> Contact {
    serde_json::from_value(json!({
        "contact_id": "c1",
        "email_address": {"address": "pat@example.com", "permission_to_send": "unsubscribed",
                          "opt_out_reason": "too many mails", "opt_out_source": "Contact",
                          "created_at": "2024-10-30T18:56:35Z", "confirm_status": "off"},
        "first_name": "Pat", "last_name": "Lee", "job_title": "Chef", "company_name": "Acme",
        "birthday_month": 2, "birthday_day": 29, "anniversary": "2006-11-15",
        "create_source": "Contact", "update_source": "Account",
        "created_at": "2024-10-30T18:56:35Z", "updated_at": "2024-11-02T09:01:12Z",
        "custom_fields": [{"custom_field_id": "f1", "value": "Skiing"}],
        "list_memberships": ["l1", "l2"],
        "phone_numbers": [{"phone_number_id": "p1", "phone_number": "+1 555 0100", "kind": "work",
                           "created_at": "2024-10-30T18:56:35Z", "create_source": "Account"}],
        "street_addresses": [{"street_address_id": "s1", "kind": "home", "street": "1 Main St",
                              "city": "Boston", "state": "MA", "postal_code": "02101", "country": "US"}],
        "taggings": ["t1"],
        "notes": [{"note_id": "n1", "created_at": "2021-05-12T13:48:44Z", "content": "VIP"}]
    }))
    .expect("contact decodes")
}

#[test]
fn to_put_keeps_every_core_field_and_every_included_subresource() {
    let body = serde_json::to_value(full_contact().to_put(Source::Account)).expect("encodes");
    assert_eq!(
        body,
        json!({
            "email_address": {"address": "pat@example.com", "permission_to_send": "unsubscribed",
                              "opt_out_reason": "too many mails"},
            "first_name": "Pat", "last_name": "Lee", "job_title": "Chef", "company_name": "Acme",
            "birthday_month": 2, "birthday_day": 29, "anniversary": "2006-11-15",
            "update_source": "Account",
            "custom_fields": [{"custom_field_id": "f1", "value": "Skiing"}],
            "list_memberships": ["l1", "l2"],
            "phone_numbers": [{"phone_number": "+1 555 0100", "kind": "work"}],
            "street_addresses": [{"kind": "home", "street": "1 Main St", "city": "Boston", "state": "MA",
                                  "postal_code": "02101", "country": "US"}],
            "taggings": ["t1"],
            "notes": [{"note_id": "n1", "created_at": "2021-05-12T13:48:44Z", "content": "VIP"}]
        })
    );
}

#[test]
fn to_put_leaves_out_subresources_the_fetch_did_not_include_so_the_api_keeps_them() {
    let contact: Contact =
        serde_json::from_str(fixtures::CREATED_CONTACT).expect("fixture decodes");
    let body = serde_json::to_value(contact.to_put(Source::Contact)).expect("encodes");
    let object = body.as_object().expect("object");
    for kept in [
        "custom_fields",
        "list_memberships",
        "phone_numbers",
        "street_addresses",
        "taggings",
        "notes",
    ] {
        assert!(!object.contains_key(kept), "{kept} must not be sent");
    }
    for core in [
        "email_address",
        "first_name",
        "last_name",
        "job_title",
        "company_name",
        "birthday_month",
        "birthday_day",
        "anniversary",
        "update_source",
    ] {
        assert!(object.contains_key(core), "{core} must be sent");
    }
    assert_eq!(body["update_source"], "Contact");
    assert_eq!(
        body["email_address"],
        json!({"address": "dlang@example.com", "permission_to_send": "implicit"})
    );
}

#[test]
fn an_emptied_subresource_is_sent_as_an_empty_array() {
    let mut put = full_contact().to_put(Source::Account);
    put.list_memberships = Some(Vec::new());
    let body = serde_json::to_value(&put).expect("encodes");
    assert_eq!(body["list_memberships"], json!([]));
}

#[test]
fn a_minimal_create_sends_only_the_source_and_what_was_set() {
    let mut create = ContactCreate::new(Source::Account);
    assert_eq!(
        serde_json::to_value(&create).expect("encodes"),
        json!({"create_source": "Account"})
    );
    create.email_address = Some(EmailAddressInput::new(
        "pat@example.com",
        Some(PermissionToSend::Implicit),
    ));
    create.first_name = Some("Pat".into());
    create.list_memberships = vec!["l1".into()];
    create.custom_fields = vec![ContactCustomField::new("f1", "Skiing")];
    assert_eq!(
        serde_json::to_value(&create).expect("encodes"),
        json!({
            "email_address": {"address": "pat@example.com", "permission_to_send": "implicit"},
            "first_name": "Pat",
            "create_source": "Account",
            "custom_fields": [{"custom_field_id": "f1", "value": "Skiing"}],
            "list_memberships": ["l1"]
        })
    );
}

#[test]
fn the_sign_up_form_sends_the_address_as_a_plain_string_and_always_sends_its_lists() {
    let form = SignUpForm {
        email_address: "pat@example.com".into(),
        first_name: Some("Pat".into()),
        list_memberships: vec!["l1".into()],
        street_address: Some(StreetAddressInput {
            kind: "home".into(),
            city: Some("Boston".into()),
            ..StreetAddressInput::default()
        }),
        ..SignUpForm::default()
    };
    assert_eq!(
        serde_json::to_value(&form).expect("encodes"),
        json!({
            "email_address": "pat@example.com",
            "first_name": "Pat",
            "list_memberships": ["l1"],
            "street_address": {"kind": "home", "city": "Boston"}
        })
    );
}

#[test]
fn the_sign_up_answer_decodes_with_or_without_an_action() {
    let result: SignUpResult =
        serde_json::from_str(r#"{"contact_id":"c1","action":"updated","extra":1}"#)
            .expect("decodes");
    assert_eq!(result.contact_id, "c1");
    assert_eq!(result.action.as_deref(), Some("updated"));
    assert!(
        !result.created,
        "set from the status by the operation, not from the body"
    );
    let bare: SignUpResult = serde_json::from_str(r#"{"contact_id":"c2"}"#).expect("decodes");
    assert_eq!(bare.action, None);
}

#[test]
fn a_bare_put_body_holds_only_the_update_source() {
    let body = serde_json::to_value(ContactPut::new(Source::Contact)).expect("encodes");
    assert_eq!(body, json!({"update_source": "Contact"}));
}
