//! Tags: create (409 on a taken name), paging with `limit`, read, rename, delete (an
//! activity), and unknown ids.

use ctct_sync::api::ApiError;
use ctct_sync::api::model::{TagCreate, TagPut};

use super::UNKNOWN_ID;
use crate::support::api::TestApi;

fn create(name: &str) -> TagCreate {
    TagCreate {
        name: name.to_owned(),
        tag_source: None,
    }
}

#[tokio::test]
async fn tags_are_created_paged_renamed_and_deleted() {
    let test = TestApi::start().await;
    let api = test.api();
    let gold = api
        .create_tag(&TagCreate {
            name: "Gold".into(),
            tag_source: Some("ESTY".into()),
        })
        .await
        .expect("created");
    assert_eq!(gold.tag_source.as_deref(), Some("ESTY"));
    assert!(gold.created_at.is_some() && gold.updated_at.is_some());
    for name in ["Silver", "Bronze"] {
        api.create_tag(&create(name)).await.expect("created");
    }
    let taken = api.create_tag(&create("GOLD")).await.expect_err("taken");
    assert!(matches!(taken, ApiError::Conflict { .. }), "{taken:?}");

    let mut page = api.list_tags(Some(2)).await.expect("first page");
    let mut names = Vec::new();
    let mut pages = 1;
    loop {
        names.extend(page.tags.iter().map(|t| t.name.clone()));
        let Some(next) = page.next.take() else { break };
        page = api.next_tags_page(&next).await.expect("next page");
        pages += 1;
    }
    assert_eq!(
        (names, pages),
        (vec!["Gold".into(), "Silver".into(), "Bronze".into()], 2)
    );

    let renamed = api
        .update_tag(
            &gold.tag_id,
            &TagPut {
                name: "Platinum".into(),
            },
        )
        .await
        .expect("renamed");
    assert_eq!(renamed.name, "Platinum");
    assert_eq!(
        api.get_tag(&gold.tag_id).await.expect("read").name,
        "Platinum"
    );

    let activity = api.delete_tag(&gold.tag_id).await.expect("accepted");
    assert_eq!(activity.activity_id.len(), 36);
    let gone = api.get_tag(&gold.tag_id).await.expect_err("deleted");
    assert!(matches!(gone, ApiError::NotFound { .. }), "{gone:?}");
    for error in [
        api.get_tag(UNKNOWN_ID).await.expect_err("unknown"),
        api.update_tag(UNKNOWN_ID, &TagPut { name: "A".into() })
            .await
            .expect_err("unknown"),
        api.delete_tag(UNKNOWN_ID).await.expect_err("unknown"),
    ] {
        assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    }
    test.stop().await;
}
