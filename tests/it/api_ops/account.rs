//! Account: e-mail addresses with their filters, user privileges, the summary.

use ctct_sync::api::ApiError;
use ctct_sync::api::model::{AccountEmailFilter, SummaryExtra};

use crate::support::api::TestApi;

#[tokio::test]
async fn account_emails_are_listed_filtered_and_added_unconfirmed_once() {
    let test = TestApi::start().await;
    let api = test.api();
    let all = api
        .list_account_emails(&AccountEmailFilter::All)
        .await
        .expect("listed");
    let owner = all
        .iter()
        .find(|e| e.is_confirmed())
        .expect("a confirmed owner e-mail")
        .clone();
    assert!(owner.email_id.is_some());

    let added = api
        .add_account_email("billing@example.com")
        .await
        .expect("added");
    assert_eq!(added.email_address, "billing@example.com");
    assert_eq!(added.confirm_status.as_deref(), Some("UNCONFIRMED"));
    assert!(added.email_id.is_some());

    let unconfirmed = api
        .list_account_emails(&AccountEmailFilter::Unconfirmed)
        .await
        .expect("listed");
    assert!(
        unconfirmed
            .iter()
            .any(|e| e.email_address == "billing@example.com")
    );
    assert!(unconfirmed.iter().all(|e| !e.is_confirmed()));
    let confirmed = api
        .list_account_emails(&AccountEmailFilter::Confirmed)
        .await
        .expect("listed");
    assert!(
        confirmed
            .iter()
            .any(|e| e.email_address == owner.email_address)
    );
    assert!(confirmed.iter().all(|e| e.is_confirmed()));
    let by_address = api
        .list_account_emails(&AccountEmailFilter::Address("billing@example.com".into()))
        .await
        .expect("listed");
    assert_eq!(by_address.len(), 1);

    let error = api
        .add_account_email("billing@example.com")
        .await
        .expect_err("already there");
    assert!(matches!(error, ApiError::Conflict { .. }), "{error:?}");
    test.stop().await;
}

#[tokio::test]
async fn privileges_and_the_account_summary_are_read() {
    let test = TestApi::start().await;
    let api = test.api();
    let privileges = api.get_user_privileges().await.expect("privileges");
    assert!(!privileges.is_empty());
    assert!(
        privileges.iter().all(|p| !p.privilege_name.is_empty()),
        "{privileges:?}"
    );

    let plain = api.get_account_summary(&[]).await.expect("summary");
    assert!(plain.encoded_account_id.is_some(), "{plain:?}");
    assert!(plain.organization_name.is_some());
    let full = api
        .get_account_summary(&[SummaryExtra::PhysicalAddress, SummaryExtra::CompanyLogo])
        .await
        .expect("summary with extras");
    assert_eq!(full.encoded_account_id, plain.encoded_account_id);
    assert!(full.physical_address.is_some(), "{full:?}");
    test.stop().await;
}
