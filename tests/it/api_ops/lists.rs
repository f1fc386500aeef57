//! Contact lists: create, read with member counts, list with filters and paging, replace,
//! asynchronous delete; duplicate names and unknown ids.

use ctct_sync::api::ApiError;
use ctct_sync::api::model::{
    ContactCreate, EmailAddressInput, ListInput, ListQuery, MembershipCount, PermissionToSend,
    Source,
};

use super::{UNKNOWN_ID, new_list};
use crate::support::api::TestApi;

#[tokio::test]
async fn a_list_is_created_counted_found_by_name_replaced_and_deleted() {
    let test = TestApi::start().await;
    let api = test.api();
    let mut input = ListInput::new("Trade Fair 2026");
    input.description = Some("Met at the fair".into());
    input.favorite = Some(true);
    let list = api.create_list(&input).await.expect("created");
    assert_eq!(list.name, "Trade Fair 2026");
    assert_eq!(list.favorite, Some(true));

    let mut contact = ContactCreate::new(Source::Account);
    contact.email_address = Some(EmailAddressInput::new(
        "visitor@example.com",
        Some(PermissionToSend::Implicit),
    ));
    contact.list_memberships = vec![list.list_id.clone()];
    api.create_contact(&contact).await.expect("a member");
    let counted = api
        .get_list(&list.list_id, Some(MembershipCount::All))
        .await
        .expect("read");
    assert_eq!(counted.membership_count, Some(1));

    let query = ListQuery {
        name: Some("Trade Fair 2026".into()),
        include_count: true,
        ..ListQuery::default()
    };
    let found = api.list_lists(&query).await.expect("filtered");
    assert_eq!(found.lists.len(), 1);
    assert_eq!(found.lists[0].list_id, list.list_id);

    let mut put = counted.to_input();
    put.description = Some("Met at the 2026 fair".into());
    let updated = api
        .update_list(&list.list_id, &put)
        .await
        .expect("replaced");
    assert_eq!(updated.description.as_deref(), Some("Met at the 2026 fair"));
    assert_eq!(updated.favorite, Some(true));

    let activity = api
        .delete_list(&list.list_id)
        .await
        .expect("deletion accepted");
    assert!(!activity.activity_id.is_empty());
    assert!(activity.state.is_some());
    let polled = api
        .get_activity(&activity.activity_id)
        .await
        .expect("the deletion's activity");
    assert_eq!(polled.activity_id, activity.activity_id);
    let error = api
        .get_list(&list.list_id, None)
        .await
        .expect_err("deleted");
    assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    test.stop().await;
}

#[tokio::test]
async fn paging_through_lists_visits_each_list_once() {
    let test = TestApi::start().await;
    let api = test.api();
    for n in 0..5 {
        new_list(&api, &format!("Paged {n}")).await;
    }
    let query = ListQuery {
        limit: Some(2),
        include_count: true,
        ..ListQuery::default()
    };
    let mut page = api.list_lists(&query).await.expect("first page");
    let total = page.lists_count.expect("count asked for");
    let mut names = Vec::new();
    loop {
        names.extend(page.lists.iter().map(|l| l.name.clone()));
        let Some(next) = page.next.take() else { break };
        page = api.next_lists_page(&next).await.expect("next page");
    }
    assert_eq!(names.len() as u64, total);
    for n in 0..5 {
        assert_eq!(
            names
                .iter()
                .filter(|name| **name == format!("Paged {n}"))
                .count(),
            1
        );
    }
    test.stop().await;
}

#[tokio::test]
async fn a_duplicate_list_name_is_a_conflict_and_an_unknown_list_is_not_found() {
    let test = TestApi::start().await;
    let api = test.api();
    new_list(&api, "Ops VIP").await;
    let error = api
        .create_list(&ListInput::new("Ops VIP"))
        .await
        .expect_err("duplicate");
    assert!(matches!(error, ApiError::Conflict { .. }), "{error:?}");
    for error in [
        api.get_list(UNKNOWN_ID, None).await.expect_err("unknown"),
        api.update_list(UNKNOWN_ID, &ListInput::new("X"))
            .await
            .expect_err("unknown"),
        api.delete_list(UNKNOWN_ID).await.expect_err("unknown"),
    ] {
        assert_eq!(error.status(), Some(404), "{error:?}");
    }
    test.stop().await;
}
