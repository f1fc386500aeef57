//! Decoding tests: every command type decodes from its documented example, and bad data is
//! rejected naming each field.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::contact::{ContactRef, CustomFieldKey};
use super::patch::Patch;
use super::*;

const LIST: &str = "07936f78-662a-11eb-af0a-fa163e56c9b0";
const CAMPAIGN: &str = "987cb9ab-ad0c-4087-bd46-2e2ad241221f";
const FIELD: &str = "77317b4e-b35c-11ef-ad2e-fa163e5a0a14";

fn now() -> DateTime<Utc> {
    "2026-11-23T12:00:00Z".parse().unwrap()
}

fn envelope(command_type: &str, data: serde_json::Value) -> Envelope {
    Envelope {
        id: "cmd-1".into(),
        command_type: command_type.into(),
        account: "default".into(),
        data: data.as_object().cloned().unwrap_or_default(),
    }
}

fn parse(command_type: &str, data: serde_json::Value) -> Result<Command, Rejection> {
    Command::parse(&envelope(command_type, data), now())
}

fn fields(rejection: Rejection) -> Vec<String> {
    rejection.fields.into_iter().map(|f| f.field).collect()
}

#[test]
fn every_command_type_decodes_from_a_valid_example() {
    let examples = [
        (
            "contact.create",
            json!({"email": "pat@example.com", "first_name": "Pat", "list_ids": [LIST]}),
        ),
        (
            "contact.update",
            json!({"contact_id": FIELD, "last_name": null, "custom_fields": {"hobby": null}}),
        ),
        (
            "contact.upsert",
            json!({"email": "pat@example.com", "custom_fields": {"hobby": "Skiing", FIELD: 3}}),
        ),
        (
            "contact.sign_up",
            json!({"email": "pat@example.com", "list_ids": [LIST]}),
        ),
        ("contact.get", json!({"email": "pat@example.com"})),
        ("contact.delete", json!({"contact_id": FIELD})),
        (
            "contact.opt_out",
            json!({"email": "pat@example.com", "reason": "asked by phone"}),
        ),
        ("contact.erase", json!({"email": "pat@example.com"})),
        (
            "contact.tag",
            json!({"emails": ["pat@example.com"], "tag_ids": [FIELD]}),
        ),
        (
            "contact.untag",
            json!({"contact_ids": [FIELD], "tag_ids": [FIELD]}),
        ),
        (
            "custom_field.create",
            json!({"label": "Hobby", "type": "string"}),
        ),
        (
            "custom_field.update",
            json!({"custom_field_id": FIELD, "label": "Pastime"}),
        ),
        ("custom_field.delete", json!({"custom_field_id": FIELD})),
        ("custom_field.list", json!({})),
        (
            "list.create",
            json!({"name": "Newsletter", "favorite": true}),
        ),
        ("list.list", json!({})),
        (
            "list.update",
            json!({"list_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "favorite": true}),
        ),
        (
            "list.delete",
            json!({"list_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6"}),
        ),
        (
            "list.add_contacts",
            json!({"emails": ["pat@example.com"], "list_ids": [FIELD]}),
        ),
        (
            "list.remove_contacts",
            json!({"contact_ids": [FIELD], "list_ids": [FIELD]}),
        ),
        ("segment.list", json!({})),
        ("segment.get", json!({"segment_id": 14})),
        ("tag.create", json!({"name": "Gold", "tag_source": "ESTY"})),
        (
            "tag.update",
            json!({"tag_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "name": "Silver"}),
        ),
        (
            "tag.delete",
            json!({"tag_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6"}),
        ),
        (
            "campaign.create",
            json!({"name": "Spring", "subject": "Hi", "from_name": "Acme", "from_email": "news@acme.example",
                   "reply_to_email": "news@acme.example", "html_content": "<html><body>[[trackingImage]]</body></html>",
                   "list_ids": [LIST]}),
        ),
        (
            "campaign.update",
            json!({"campaign_id": CAMPAIGN, "subject": "Hello"}),
        ),
        ("campaign.get", json!({"campaign_id": CAMPAIGN})),
        ("campaign.list", json!({"limit": 10})),
        (
            "campaign.schedule",
            json!({"campaign_id": CAMPAIGN, "scheduled_at": "2026-12-01T09:00:00Z"}),
        ),
        ("campaign.unschedule", json!({"campaign_id": CAMPAIGN})),
        (
            "campaign.send_test",
            json!({"campaign_id": CAMPAIGN, "email_addresses": ["qa@acme.example"]}),
        ),
        ("report.campaign.get", json!({"campaign_id": CAMPAIGN})),
        (
            "account.emails.list",
            json!({"confirm_status": "CONFIRMED"}),
        ),
        (
            "account.email.add",
            json!({"email_address": "ops@acme.example"}),
        ),
        ("account.privileges.get", json!({})),
        ("mirror.run", json!({"resource": "contacts", "full": true})),
    ];
    assert_eq!(
        examples.len(),
        COMMAND_TYPES.len(),
        "one example per command type"
    );
    for (command_type, data) in examples {
        parse(command_type, data).unwrap_or_else(|e| panic!("{command_type}: {e}"));
    }
}

#[test]
fn upsert_keeps_custom_field_names_and_ids_apart() {
    let Command::ContactUpsert(changes) = parse(
        "contact.upsert",
        json!({"email": "a@b.example", "custom_fields": {"hobby": "x", FIELD: "y"}}),
    )
    .unwrap() else {
        panic!("wrong command");
    };
    assert!(
        changes
            .custom_fields
            .contains(&(CustomFieldKey::Name("hobby".into()), Some("x".into())))
    );
    assert!(
        changes
            .custom_fields
            .contains(&(CustomFieldKey::Id(FIELD.into()), Some("y".into())))
    );
}

#[test]
fn upsert_is_rejected_when_email_is_missing() {
    let rejection = parse("contact.upsert", json!({"first_name": "Pat"})).unwrap_err();
    assert_eq!(rejection.code, "invalid_data");
    assert_eq!(fields(rejection), vec!["data.email"]);
}

#[test]
fn every_bad_field_of_a_contact_is_named_at_once() {
    let rejection = parse(
        "contact.create",
        json!({
            "email": "not-an-email",
            "first_name": "x".repeat(51),
            "birthday_month": 13, "birthday_day": 1,
            "list_ids": ["nope"],
            "phone_numbers": [{"phone_number": "1", "kind": "pager"}],
            "anniversary": "someday",
        }),
    )
    .unwrap_err();
    let named = fields(rejection);
    for field in [
        "data.email",
        "data.first_name",
        "data.birthday_month",
        "data.list_ids[0]",
        "data.phone_numbers[0].kind",
        "data.anniversary",
    ] {
        assert!(
            named.iter().any(|f| f == field),
            "{field} missing from {named:?}"
        );
    }
}

#[test]
fn wrong_types_and_unknown_fields_are_named_with_their_path() {
    let rejection = parse("contact.create", json!({"email": 5})).unwrap_err();
    assert_eq!(fields(rejection.clone()), vec!["data.email"]);
    assert!(
        rejection.fields[0].reason.contains("invalid type"),
        "{rejection}"
    );
    let rejection = parse(
        "contact.create",
        json!({"email": "a@b.example", "nickname": "P"}),
    )
    .unwrap_err();
    assert!(
        rejection.fields[0]
            .reason
            .contains("unknown field `nickname`"),
        "{rejection}"
    );
}

#[test]
fn clearing_a_field_is_only_for_update() {
    let rejection = parse(
        "contact.upsert",
        json!({"email": "a@b.example", "job_title": null}),
    )
    .unwrap_err();
    assert_eq!(fields(rejection), vec!["data.job_title"]);
    let Command::ContactUpdate(ContactRef::Email(email), changes) = parse(
        "contact.update",
        json!({"email": "a@b.example", "job_title": null}),
    )
    .unwrap() else {
        panic!("wrong command");
    };
    assert_eq!(email, "a@b.example");
    assert_eq!(changes.job_title, Patch::Null);
    assert_eq!(
        changes.first_name,
        Patch::Absent,
        "fields not given are kept"
    );
}

#[test]
fn too_many_custom_fields_and_long_values_are_rejected() {
    let many: serde_json::Map<String, serde_json::Value> =
        (0..26).map(|i| (format!("f{i}"), json!("v"))).collect();
    let rejection = parse(
        "contact.upsert",
        json!({"email": "a@b.example", "custom_fields": many}),
    )
    .unwrap_err();
    assert_eq!(fields(rejection), vec!["data.custom_fields"]);
    let rejection = parse(
        "contact.upsert",
        json!({"email": "a@b.example", "custom_fields": {"hobby": "x".repeat(256)}}),
    )
    .unwrap_err();
    assert_eq!(fields(rejection), vec!["data.custom_fields.hobby"]);
}

#[test]
fn sign_up_requires_a_list() {
    let rejection = parse("contact.sign_up", json!({"email": "a@b.example"})).unwrap_err();
    assert_eq!(fields(rejection), vec!["data.list_ids"]);
}

#[test]
fn a_campaign_time_in_the_past_is_rejected() {
    let rejection = parse(
        "campaign.schedule",
        json!({"campaign_id": CAMPAIGN, "scheduled_at": "2026-11-23T11:59:59Z"}),
    )
    .unwrap_err();
    assert_eq!(fields(rejection.clone()), vec!["data.scheduled_at"]);
    assert!(rejection.fields[0].reason.contains("in the past"));
    assert!(matches!(
        parse(
            "campaign.schedule",
            json!({"campaign_id": CAMPAIGN, "scheduled_at": "now"})
        )
        .unwrap(),
        Command::CampaignSchedule(_, campaign::When::Now)
    ));
}

#[test]
fn a_campaign_create_names_every_missing_field() {
    let rejection = parse("campaign.create", json!({"name": "Spring"})).unwrap_err();
    assert_eq!(
        fields(rejection),
        vec![
            "data.subject",
            "data.from_name",
            "data.from_email",
            "data.reply_to_email",
            "data.html_content"
        ]
    );
}

#[test]
fn test_sends_take_one_to_five_addresses() {
    let six: Vec<String> = (0..6).map(|i| format!("qa{i}@acme.example")).collect();
    let rejection = parse(
        "campaign.send_test",
        json!({"campaign_id": CAMPAIGN, "email_addresses": six}),
    )
    .unwrap_err();
    assert_eq!(fields(rejection), vec!["data.email_addresses"]);
}

#[test]
fn an_unknown_type_lists_the_known_ones() {
    let rejection = parse("contact.merge", json!({})).unwrap_err();
    assert_eq!(rejection.code, "unknown_type");
    assert!(rejection.fields[0].reason.contains("contact.upsert"));
}

#[test]
fn ids_in_paths_must_be_uuids() {
    for hostile in [
        "../../admin",
        "abc?x=1",
        "a#b",
        "07936f78-662a-11eb-af0a-fa163e56c9b0/../x",
    ] {
        for command_type in ["campaign.get", "report.campaign.get"] {
            let rejection = parse(command_type, json!({"campaign_id": hostile})).unwrap_err();
            assert_eq!(
                fields(rejection),
                vec!["data.campaign_id"],
                "{command_type} {hostile}"
            );
        }
    }
}

#[test]
fn a_campaign_report_is_read_only_keyed_by_its_campaign_and_needs_its_id() {
    let report = parse("report.campaign.get", json!({"campaign_id": CAMPAIGN})).unwrap();
    assert_eq!(report, Command::ReportCampaignGet(CAMPAIGN.into()));
    assert!(report.is_read_only());
    let get = parse("campaign.get", json!({"campaign_id": CAMPAIGN})).unwrap();
    assert_eq!(report.ordering_key(), get.ordering_key());
    for data in [
        json!({}),
        json!({"campaign_id": ""}),
        json!({"campaign_id": 7}),
    ] {
        let rejection = parse("report.campaign.get", data.clone()).unwrap_err();
        assert_eq!(rejection.code, "invalid_data", "{data}");
        assert_eq!(fields(rejection), vec!["data.campaign_id"], "{data}");
    }
    let rejection = parse(
        "report.campaign.get",
        json!({"campaign_id": CAMPAIGN, "since": "2025-01-01"}),
    )
    .unwrap_err();
    assert_eq!(rejection.code, "invalid_data");
}

#[test]
fn commands_about_the_same_contact_share_an_ordering_key() {
    let a = parse("contact.upsert", json!({"email": "Pat@Example.com"})).unwrap();
    let b = parse("contact.get", json!({"email": "pat@example.com"})).unwrap();
    assert_eq!(a.ordering_key(), b.ordering_key());
    assert_eq!(parse("list.list", json!({})).unwrap().ordering_key(), None);
}

#[test]
fn list_update_and_delete_name_the_bad_field() {
    const LIST: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    for (data, field) in [
        (json!({"list_id": "14", "name": "A"}), "data.list_id"),
        (json!({"name": "A"}), "data.list_id"),
        (json!({"list_id": LIST, "name": ""}), "data.name"),
        (json!({"list_id": LIST, "name": "  "}), "data.name"),
        (
            json!({"list_id": LIST, "name": "x".repeat(256)}),
            "data.name",
        ),
        (
            json!({"list_id": LIST, "description": "x".repeat(1001)}),
            "data.description",
        ),
        (json!({"list_id": LIST}), "data"),
    ] {
        let rejection = parse("list.update", data.clone()).unwrap_err();
        assert_eq!(rejection.code, "invalid_data", "{data}");
        assert_eq!(fields(rejection), vec![field], "{data}");
    }
    assert!(
        parse(
            "list.update",
            json!({"list_id": LIST, "name": "x".repeat(255)})
        )
        .is_ok()
    );
    for data in [
        json!({}),
        json!({"list_id": "not-a-uuid"}),
        json!({"list_id": 14}),
    ] {
        let rejection = parse("list.delete", data.clone()).unwrap_err();
        assert_eq!(fields(rejection), vec!["data.list_id"], "{data}");
    }
    let update = parse("list.update", json!({"list_id": LIST, "favorite": false})).unwrap();
    let delete = parse("list.delete", json!({"list_id": LIST})).unwrap();
    assert_eq!(update.ordering_key(), delete.ordering_key());
    assert_eq!(delete.ordering_key(), Some(format!("list:{LIST}")));
}
