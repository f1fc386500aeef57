//! Decoding tests of the contact models: captured answers, leniency, the list query.

use chrono::TimeZone;

use super::*;
use crate::api::model::fixtures;

#[test]
fn the_captured_first_page_decodes_with_its_next_link_and_custom_fields() {
    let page: ContactsPage =
        serde_json::from_str(fixtures::CONTACTS_FIRST_PAGE).expect("fixture decodes");
    assert_eq!(
        page.next.as_deref(),
        Some("/v3/contacts?cursor=bGltaXQ9MSZuZXh0PTI=")
    );
    assert_eq!(page.contacts_count, None);
    let [contact] = page.contacts.as_slice() else {
        panic!("one contact expected, got {}", page.contacts.len());
    };
    assert_eq!(contact.contact_id, "af73e650-96f0-11ef-b2a0-fa163eafb85e");
    assert_eq!(contact.email(), Some("dlang@example.com"));
    let email = contact.email_address.as_ref().expect("email object");
    assert_eq!(email.permission_to_send, Some(PermissionToSend::Implicit));
    assert_eq!(email.opt_in_source, Some(Source::Account));
    assert_eq!(email.confirm_status.as_deref(), Some("off"));
    assert_eq!(contact.birthday_month, Some(11));
    assert_eq!(contact.birthday_day, Some(24));
    assert_eq!(contact.anniversary.as_deref(), Some("2006-11-15"));
    assert_eq!(contact.create_source, Some(Source::Account));
    assert_eq!(contact.update_source, None);
    assert_eq!(
        contact.created_at,
        Utc.with_ymd_and_hms(2024, 10, 30, 18, 56, 35).single()
    );
    let custom = contact
        .custom_fields
        .as_deref()
        .expect("custom fields included");
    assert_eq!(
        custom,
        [ContactCustomField::new(
            "77317b4e-b35c-11ef-ad2e-fa163e5a0a14",
            "Skiing"
        )]
    );
    assert_eq!(
        contact.list_memberships, None,
        "not included, so unknown rather than empty"
    );
}

#[test]
fn the_captured_last_page_has_no_next_link() {
    let page: ContactsPage =
        serde_json::from_str(fixtures::CONTACTS_LAST_PAGE).expect("fixture decodes");
    assert_eq!(page.next, None);
    assert_eq!(page.contacts.len(), 1);
    assert_eq!(page.contacts[0].update_source, Some(Source::Account));
    assert_eq!(page.contacts[0].job_title, None);
}

#[test]
fn the_captured_create_answer_decodes_without_update_source() {
    let contact: Contact =
        serde_json::from_str(fixtures::CREATED_CONTACT).expect("fixture decodes");
    assert_eq!(contact.first_name.as_deref(), Some("Debora"));
    assert_eq!(contact.company_name.as_deref(), Some("Acme Corp."));
    assert_eq!(contact.update_source, None);
    assert!(!contact.is_deleted());
}

#[test]
fn unknown_fields_odd_timestamps_and_new_enum_values_do_not_fail_a_page() {
    let body = r#"{
        "contacts": [
            {"contact_id": "a", "email_address": {"address": "a@example.com", "permission_to_send": "brand_new",
              "created_at": "not a date", "sms_thing": {"x": 1}},
             "updated_at": "2024-13-45T99:00:00Z", "created_at": 12, "deleted_at": "2016-07-08",
             "sms_channel": {"sms_address": "5551212"}, "loyalty_tier": "gold",
             "custom_fields": [{"custom_field_id": "cf", "choice_ids": [1, "000002", null]}],
             "phone_numbers": [{"phone_number": "+1 555", "kind": "pager", "phone_number_id": "p1"}],
             "street_addresses": [{"kind": "home", "city": "Boston"}],
             "notes": [{"note_id": "n1", "content": "hi", "created_at": "2021-05-12T13:48:44.108Z"}],
             "taggings": []},
            {"contact_id": "b"}
        ],
        "contacts_count": 2,
        "_links": {"next": {"href": "/v3/contacts?cursor=abc"}, "self": {"href": "/v3/contacts"}},
        "status": "ok"
    }"#;
    let page: ContactsPage = serde_json::from_str(body).expect("lenient decode");
    assert_eq!(page.contacts_count, Some(2));
    let first = &page.contacts[0];
    let email = first.email_address.as_ref().expect("email");
    assert_eq!(
        email.permission_to_send,
        Some(PermissionToSend::Other("brand_new".into()))
    );
    assert_eq!(email.created_at, None);
    assert_eq!(first.updated_at, None);
    assert_eq!(first.created_at, None);
    assert!(first.is_deleted());
    let custom = first.custom_fields.as_deref().expect("custom fields");
    assert_eq!(
        custom[0].choice_ids.as_deref(),
        Some(&["1".to_owned(), "000002".to_owned()][..])
    );
    assert_eq!(
        first.phone_numbers.as_ref().expect("phones")[0]
            .kind
            .as_deref(),
        Some("pager")
    );
    assert_eq!(
        first.street_addresses.as_ref().expect("addresses")[0].street,
        None
    );
    assert_eq!(
        first.taggings.as_deref(),
        Some(&[][..]),
        "an included empty array stays empty"
    );
    assert_eq!(page.contacts[1].email_address, None);
}

#[test]
fn include_all_names_every_subresource() {
    assert_eq!(
        Include::join(&Include::ALL),
        "custom_fields,list_memberships,phone_numbers,street_addresses,taggings,notes"
    );
}
