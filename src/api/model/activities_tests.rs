//! Tests of the bulk-activity models.

use serde_json::json;

use super::*;

#[test]
fn the_documented_import_answer_decodes_as_initialized_and_not_terminal() {
    let activity: Activity = serde_json::from_value(json!({
        "activity_id": "86b90820-cc52-11ea-9dad-fa163e3d9194", "state": "initialized",
        "created_at": "2020-07-22T18:23:14Z", "updated_at": "2020-07-22T18:23:14Z",
        "percent_done": 0, "activity_errors": [],
        "status": {"items_total_count": 0, "person_count": 0, "error_count": 0, "correctable_count": 0,
                   "cannot_add_to_list_count": 0},
        "_links": {"self": {"href": "/v3/activities/86b90820-cc52-11ea-9dad-fa163e3d9194"}}
    }))
    .expect("decodes");
    assert_eq!(activity.state, Some(ActivityState::Initialized));
    assert!(!activity.is_terminal());
    assert_eq!(activity.percent_done, Some(0.0));
    let counts = activity.status.as_ref().expect("counts");
    assert_eq!(counts.cannot_add_to_list_count, Some(0));
    assert_eq!(counts.list_count, None);
    assert_eq!(
        activity.links.self_link.as_ref().and_then(Link::href),
        Some("/v3/activities/86b90820-cc52-11ea-9dad-fa163e3d9194")
    );
    assert_eq!(activity.results_href(), None);
}

#[test]
fn a_completed_export_exposes_its_results_href_verbatim() {
    let activity: Activity = serde_json::from_value(json!({
        "activity_id": "a1", "state": "completed", "percent_done": 100,
        "status": {"items_total_count": 8751, "items_completed_count": 8751},
        "_links": {"self": {"href": "/v3/activities/a1"}, "results": {"href": "/v3/contacts_exports/a1"}}
    }))
    .expect("decodes");
    assert!(activity.is_terminal());
    assert_eq!(activity.results_href(), Some("/v3/contacts_exports/a1"));
}

#[test]
fn every_terminal_state_is_terminal_and_unknown_states_are_not() {
    for state in ["completed", "failed", "cancelled", "timed_out"] {
        assert!(ActivityState::parse(state).is_terminal(), "{state}");
    }
    for state in ["initialized", "processing", "paused_for_review"] {
        assert!(!ActivityState::parse(state).is_terminal(), "{state}");
    }
    assert_eq!(
        ActivityState::parse("paused_for_review"),
        ActivityState::Other("paused_for_review".into())
    );
}

#[test]
fn activity_errors_decode_as_strings_or_message_objects_and_a_bare_activity_decodes() {
    let activity: Activity = serde_json::from_value(json!({
        "activity_id": "a1", "state": "failed", "percent_done": 37.5, "started_at": "garbage",
        "activity_errors": ["bad row 2", {"message": "bad row 3", "line_number": 3}, {"code": 7}, null]
    }))
    .expect("decodes");
    assert_eq!(
        activity.activity_errors,
        vec!["bad row 2", "bad row 3", r#"{"code":7}"#]
    );
    assert_eq!(activity.started_at, None);
    let bare: Activity = serde_json::from_value(json!({"activity_id": "a2"})).expect("decodes");
    assert_eq!(bare.state, None);
    assert!(!bare.is_terminal());
    assert_eq!(bare.links, ActivityLinks::default());
}

#[test]
fn import_rows_send_custom_fields_as_cf_columns_and_nothing_unset() {
    let mut row = ImportRow::new("pat@example.com");
    row.first_name = Some("Pat".into());
    row.work_city = Some("Boston".into());
    row.birthday_month = Some(11);
    row.custom_fields.insert("hobby".into(), "Skiing".into());
    row.custom_fields.insert("shoe_size".into(), "44".into());
    let body = ContactsJsonImport {
        import_data: vec![row, ImportRow::new("lee@example.com")],
        list_ids: vec!["l1".into()],
    };
    assert_eq!(
        serde_json::to_value(&body).expect("encodes"),
        json!({
            "import_data": [
                {"email": "pat@example.com", "first_name": "Pat", "birthday_month": 11, "work_city": "Boston",
                 "cf:hobby": "Skiing", "cf:shoe_size": "44"},
                {"email": "lee@example.com"}
            ],
            "list_ids": ["l1"]
        })
    );
}

#[test]
fn export_requests_send_only_the_filters_that_were_set() {
    assert_eq!(
        serde_json::to_value(ExportRequest::default()).expect("encodes"),
        json!({})
    );
    let request = ExportRequest {
        list_ids: vec!["l1".into()],
        fields: vec!["email_address".into(), "first_name".into()],
        status: Some("active".into()),
        exclude: Some(ExportExclude {
            contact_ids: vec!["c9".into()],
        }),
        ..ExportRequest::default()
    };
    assert_eq!(
        serde_json::to_value(&request).expect("encodes"),
        json!({"list_ids": ["l1"], "fields": ["email_address", "first_name"], "status": "active",
               "exclude": {"contact_ids": ["c9"]}})
    );
}

#[test]
fn each_bulk_delete_sends_its_ids_under_the_key_its_endpoint_names() {
    let ids = vec!["a".to_owned(), "b".to_owned()];
    for (body, key, path) in [
        (
            DeleteRequest::Contacts(&ids),
            "contact_ids",
            "/activities/contact_delete",
        ),
        (
            DeleteRequest::Lists(&ids),
            "list_ids",
            "/activities/list_delete",
        ),
        (
            DeleteRequest::Tags(&ids),
            "tag_ids",
            "/activities/contacts_tags_delete",
        ),
        (
            DeleteRequest::CustomFields(&ids),
            "custom_field_ids",
            "/activities/custom_fields_delete",
        ),
    ] {
        assert_eq!(
            serde_json::to_value(body).expect("encodes"),
            json!({ key: ["a", "b"] })
        );
        let (name, route_path) = body.route();
        assert_eq!((name, route_path), (format!("POST {path}").as_str(), path));
    }
}

#[test]
fn the_documented_delete_answers_decode_with_their_own_counts() {
    // The spec's examples: createDeleteActivity_201_response, createListDeleteActivity_201_response
    // and postCustomFieldDelete_201_response (which has no status).
    let contacts: Activity = serde_json::from_value(json!({
        "activity_id": "86b90820-cc52-11ea-9dad-fa163e3d9194", "state": "initialized",
        "created_at": "2016-01-23T13:48:44.108Z", "percent_done": 75,
        "activity_errors": ["Message describing the error condition."],
        "status": {"items_completed_count": 351, "list_count": 4, "items_total_count": 375},
        "_links": {"self": {"href": "/v3/activities/04fe9a97-a579-43c5-bb1a-58ed29bf0a6a"}}
    }))
    .expect("decodes");
    let status = contacts.status.expect("a status");
    assert_eq!(
        (
            status.items_total_count,
            status.items_completed_count,
            status.list_count
        ),
        (Some(375), Some(351), Some(4))
    );
    let lists: Activity = serde_json::from_value(json!({
        "activity_id": "af86135c-8740-11eb-8abf-fa163ef30864", "state": "completed",
        "completed_at": "2019-12-12T15:38:24Z", "percent_done": 100, "status": {"list_count": 5},
        "_links": {"self": {"href": "/v3/activities/af86135c-8740-11eb-8abf-fa163ef30864"}}
    }))
    .expect("decodes");
    assert!(lists.is_terminal());
    let status = lists.status.expect("a status");
    assert_eq!(
        (status.items_total_count, status.list_count),
        (None, Some(5))
    );
    let fields: Activity = serde_json::from_value(json!({
        "activity_id": "86b90820-cc52-11ea-9dad-fa163e3d9194", "state": "completed",
        "activity_errors": [],
        "_links": {"self": {"href": "/v3/activities/04fe9a97-a579-43c5-bb1a-58ed29bf0a6a"}}
    }))
    .expect("decodes");
    assert_eq!(fields.status, None);
}
