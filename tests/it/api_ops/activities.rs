//! Bulk activities: JSON import and its status, export and the streamed CSV download, list
//! membership activities, the four bulk deletes.

use std::time::Duration;

use ctct_sync::api::model::{
    Activity, ActivityState, ContactCreate, ContactQuery, ContactsJsonImport, CustomFieldCreate,
    EmailAddressInput, ExportRequest, ImportRow, Include, MembershipRequest, MembershipSource,
    PermissionToSend, Source, TagCreate,
};
use ctct_sync::api::{AccountApi, ApiError, ExportDownload};

use super::{UNKNOWN_ID, new_list};
use crate::support::api::TestApi;

/// Polls until the activity is terminal, letting the sandbox finish queued work between polls.
async fn wait_until_done(test: &TestApi, api: &AccountApi, activity: &Activity) -> Activity {
    let mut current = activity.clone();
    for _ in 0..50 {
        if current.is_terminal() {
            return current;
        }
        test.sandbox.admin().complete_activities_now();
        current = api
            .get_activity(&activity.activity_id)
            .await
            .expect("the activity is read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "activity {} never finished: {current:?}",
        activity.activity_id
    );
}

#[tokio::test]
async fn a_json_import_creates_contacts_with_lists_and_custom_fields() {
    let test = TestApi::start().await;
    let api = test.api();
    let list = new_list(&api, "Imported").await;
    let field = api
        .create_custom_field(&CustomFieldCreate::new("Favourite Colour", "string"))
        .await
        .expect("field");
    let name = field.name.clone().expect("a derived name");
    let rows = (0..3)
        .map(|n| {
            let mut row = ImportRow::new(&format!("import{n}@example.com"));
            row.first_name = Some(format!("Imported {n}"));
            row.work_city = Some("Boston".into());
            row.custom_fields
                .insert(name.clone(), format!("colour {n}"));
            row
        })
        .collect();
    let import = ContactsJsonImport {
        import_data: rows,
        list_ids: vec![list.list_id.clone()],
    };

    let activity = api.import_contacts_json(&import).await.expect("queued");
    assert!(
        !activity.is_terminal(),
        "a new import is queued, not done: {activity:?}"
    );
    let done = wait_until_done(&test, &api, &activity).await;
    assert_eq!(done.state, Some(ActivityState::Completed), "{done:?}");
    assert!(
        done.activity_errors.is_empty(),
        "{:?}",
        done.activity_errors
    );

    let contact = api
        .find_contact_by_email(
            "import1@example.com",
            &[Include::ListMemberships, Include::CustomFields],
            false,
        )
        .await
        .expect("search")
        .expect("imported");
    assert_eq!(contact.first_name.as_deref(), Some("Imported 1"));
    assert_eq!(
        contact.list_memberships.as_deref(),
        Some(&[list.list_id.clone()][..])
    );
    let values: Vec<_> = contact
        .custom_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.custom_field_id == field.custom_field_id)
        .filter_map(|v| v.value)
        .collect();
    assert_eq!(values, ["colour 1"]);
    test.stop().await;
}

#[tokio::test]
async fn an_import_without_lists_is_invalid_and_an_unknown_activity_is_not_found() {
    let test = TestApi::start().await;
    let api = test.api();
    let import = ContactsJsonImport {
        import_data: vec![ImportRow::new("nolist@example.com")],
        list_ids: Vec::new(),
    };
    let error = api
        .import_contacts_json(&import)
        .await
        .expect_err("lists are required");
    assert!(
        matches!(error, ApiError::Invalid { status: 400, .. }),
        "{error:?}"
    );
    let error = api.get_activity(UNKNOWN_ID).await.expect_err("unknown");
    assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    test.stop().await;
}

#[tokio::test]
async fn an_export_is_downloaded_record_by_record_and_holds_every_contact() {
    let test = TestApi::start().await;
    let admin = test.sandbox.admin();
    let account = admin.primary_account();
    admin.seed(&account, 20_000, 11).expect("seeded");
    let api = test.api();
    let counted = ContactQuery {
        include_count: true,
        limit: Some(1),
        ..ContactQuery::default()
    };
    let expected = api
        .list_contacts(&counted)
        .await
        .expect("counted")
        .contacts_count
        .expect("a count");

    let export = ExportRequest {
        fields: vec![
            "email_address".into(),
            "first_name".into(),
            "last_name".into(),
        ],
        ..ExportRequest::default()
    };
    let activity = api.create_export(&export).await.expect("queued");
    let error = api
        .download_export(&format!("/v3/contact_exports/{}", activity.activity_id))
        .await
        .expect_err("not ready until completed");
    assert_eq!(error.status(), Some(404), "{error:?}");
    let done = wait_until_done(&test, &api, &activity).await;
    let href = done
        .results_href()
        .expect("a completed export links its file")
        .to_owned();

    let mut download: ExportDownload = api.download_export(&href).await.expect("the file opens");
    let email = download.column("email_address").expect("an email column");
    assert!(
        download.column("first_name").is_some(),
        "{:?}",
        download.header()
    );
    let width = download.header().len();
    let mut records = 0usize;
    let mut addresses = std::collections::HashSet::new();
    while let Some(record) = download.next_record().await.expect("a record") {
        assert_eq!(record.len(), width, "every record has every column");
        assert!(record[email].contains('@'), "{record:?}");
        addresses.insert(record[email].clone());
        records += 1;
    }
    assert_eq!(
        records as u64, expected,
        "the export holds what GET /contacts counts"
    );
    assert_eq!(records, addresses.len(), "no record twice");
    assert!(download.bytes_read() > 20 * records as u64);
    test.stop().await;
}

fn membership(contact_ids: &[&str], list_ids: &[&str]) -> MembershipRequest {
    MembershipRequest {
        source: MembershipSource {
            contact_ids: contact_ids.iter().map(|s| (*s).to_owned()).collect(),
        },
        list_ids: list_ids.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[tokio::test]
async fn membership_activities_add_contacts_to_lists_and_remove_them() {
    let test = TestApi::start().await;
    let api = test.api();
    let news = new_list(&api, "Members news").await.list_id;
    let deals = new_list(&api, "Members deals").await.list_id;
    let mut create = ContactCreate::new(Source::Account);
    create.email_address = Some(EmailAddressInput::new(
        "member@example.com",
        Some(PermissionToSend::Implicit),
    ));
    let contact = api
        .create_contact(&create)
        .await
        .expect("created")
        .contact_id;
    let lists = |c: ctct_sync::api::model::Contact| c.list_memberships.unwrap_or_default();

    let added = api
        .membership_activity(true, &membership(&[&contact], &[&news, &deals]))
        .await
        .expect("accepted");
    assert!(!added.is_terminal(), "{added:?}");
    let done = wait_until_done(&test, &api, &added).await;
    assert_eq!(done.state, Some(ActivityState::Completed), "{done:?}");
    let status = done.status.clone().expect("a status");
    assert_eq!(
        (
            status.items_total_count,
            status.items_completed_count,
            status.list_count
        ),
        (Some(1), Some(1), Some(2)),
        "{done:?}"
    );
    let read = api
        .get_contact(&contact, &[Include::ListMemberships])
        .await
        .expect("read");
    assert_eq!(lists(read), vec![news.clone(), deals.clone()]);

    let removed = api
        .membership_activity(false, &membership(&[&contact], &[&news]))
        .await
        .expect("accepted");
    wait_until_done(&test, &api, &removed).await;
    let read = api
        .get_contact(&contact, &[Include::ListMemberships])
        .await
        .expect("read");
    assert_eq!(lists(read), vec![deals.clone()]);

    for add in [true, false] {
        let error = api
            .membership_activity(add, &membership(&[&contact], &[UNKNOWN_ID]))
            .await
            .expect_err("an unknown list");
        assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
        let error = api
            .membership_activity(add, &membership(&[UNKNOWN_ID], &[&news]))
            .await
            .expect_err("an unknown contact");
        assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    }
    test.stop().await;
}

#[tokio::test]
async fn the_bulk_delete_activities_delete_contacts_lists_tags_and_fields_once_complete() {
    let test = TestApi::start().await;
    let api = test.api();
    let list = new_list(&api, "Doomed list").await.list_id;
    let tag = api
        .create_tag(&TagCreate {
            name: "Doomed tag".into(),
            tag_source: None,
        })
        .await
        .expect("tag")
        .tag_id;
    let field = api
        .create_custom_field(&CustomFieldCreate::new("Doomed field", "string"))
        .await
        .expect("field")
        .custom_field_id;
    let mut create = ContactCreate::new(Source::Account);
    create.email_address = Some(EmailAddressInput::new(
        "doomed@example.com",
        Some(PermissionToSend::Implicit),
    ));
    let contact = api
        .create_contact(&create)
        .await
        .expect("created")
        .contact_id;

    let contacts = api
        .delete_contacts_activity(std::slice::from_ref(&contact))
        .await
        .expect("accepted");
    let lists = api
        .delete_lists_activity(std::slice::from_ref(&list))
        .await
        .expect("accepted");
    let tags = api
        .delete_tags_activity(std::slice::from_ref(&tag))
        .await
        .expect("accepted");
    let fields = api
        .delete_custom_fields_activity(std::slice::from_ref(&field))
        .await
        .expect("accepted");
    assert_eq!(fields.status, None, "the spec gives this 201 no status");
    let counts = |a: &Activity| {
        let s = a.status.clone().unwrap_or_default();
        (s.items_total_count, s.items_completed_count, s.list_count)
    };
    assert_eq!(counts(&lists), (None, None, Some(0)), "{lists:?}");
    for (activity, want) in [
        (&contacts, (Some(1), Some(1), None)),
        (&lists, (Some(1), Some(1), Some(1))),
        (&tags, (Some(1), Some(1), None)),
        (&fields, (Some(1), Some(1), None)),
    ] {
        assert!(!activity.is_terminal(), "{activity:?}");
        let done = wait_until_done(&test, &api, activity).await;
        assert_eq!(done.state, Some(ActivityState::Completed), "{done:?}");
        assert_eq!(counts(&done), want, "{done:?}");
    }
    let read = api
        .get_contact(&contact, &[])
        .await
        .expect("still readable");
    assert!(read.deleted_at.is_some(), "soft-deleted: {read:?}");
    let missing = [
        api.get_list(&list, None).await.map(drop),
        api.get_tag(&tag).await.map(drop),
        api.get_custom_field(&field).await.map(drop),
    ];
    for result in missing {
        assert!(
            matches!(result, Err(ApiError::NotFound { .. })),
            "{result:?}"
        );
    }

    let unknown = [UNKNOWN_ID.to_owned()];
    let refused = [
        api.delete_contacts_activity(&unknown).await,
        api.delete_lists_activity(&unknown).await,
        api.delete_tags_activity(&unknown).await,
        api.delete_custom_fields_activity(&unknown).await,
    ];
    for result in refused {
        assert!(
            matches!(result, Err(ApiError::NotFound { .. })),
            "{result:?}"
        );
    }
    test.stop().await;
}
