//! Custom fields: create, read, list with paging, replace, delete; duplicate labels.

use ctct_sync::api::ApiError;
use ctct_sync::api::model::CustomFieldCreate;

use super::UNKNOWN_ID;
use crate::support::api::TestApi;

#[tokio::test]
async fn a_custom_field_is_created_listed_replaced_and_deleted() {
    let test = TestApi::start().await;
    let api = test.api();
    let created = api
        .create_custom_field(&CustomFieldCreate::new("Shoe Size", "string"))
        .await
        .expect("created");
    assert_eq!(created.label, "Shoe Size");
    assert_eq!(created.field_type, "string");
    assert!(created.name.is_some(), "the API derives a name");

    let fetched = api
        .get_custom_field(&created.custom_field_id)
        .await
        .expect("read");
    assert_eq!(fetched.custom_field_id, created.custom_field_id);

    let mut ids = Vec::new();
    let mut page = api.list_custom_fields(Some(1)).await.expect("first page");
    loop {
        assert!(page.custom_fields.len() <= 1);
        ids.extend(page.custom_fields.iter().map(|f| f.custom_field_id.clone()));
        let Some(next) = page.next.take() else { break };
        page = api.next_custom_fields_page(&next).await.expect("next page");
    }
    assert!(
        ids.contains(&created.custom_field_id),
        "paging reaches the new field"
    );
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no field twice");

    let mut put = fetched.to_put();
    put.label = "Shoe Size EU".into();
    let updated = api
        .update_custom_field(&created.custom_field_id, &put)
        .await
        .expect("replaced");
    assert_eq!(updated.label, "Shoe Size EU");
    assert_eq!(
        updated.field_type, "string",
        "the type survives the replacement"
    );

    api.delete_custom_field(&created.custom_field_id)
        .await
        .expect("deleted");
    let error = api
        .get_custom_field(&created.custom_field_id)
        .await
        .expect_err("gone");
    assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    test.stop().await;
}

#[tokio::test]
async fn a_duplicate_label_is_a_conflict_and_an_unknown_field_is_not_found() {
    let test = TestApi::start().await;
    let api = test.api();
    api.create_custom_field(&CustomFieldCreate::new("Loyalty Tier", "string"))
        .await
        .expect("created");
    let error = api
        .create_custom_field(&CustomFieldCreate::new("Loyalty Tier", "string"))
        .await
        .expect_err("duplicate label");
    assert!(matches!(error, ApiError::Conflict { .. }), "{error:?}");

    let error = api.get_custom_field(UNKNOWN_ID).await.expect_err("unknown");
    assert_eq!(error.status(), Some(404));
    let error = api
        .delete_custom_field(UNKNOWN_ID)
        .await
        .expect_err("unknown");
    assert_eq!(error.status(), Some(404));
    test.stop().await;
}
