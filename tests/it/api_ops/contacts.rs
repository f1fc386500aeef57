//! Contacts: create, read, find by e-mail, replace, delete, sign-up form, paging.

use std::collections::HashSet;

use ctct_sync::api::ApiError;
use ctct_sync::api::model::{
    ContactCreate, ContactCustomField, ContactPut, ContactQuery, CustomFieldCreate,
    EmailAddressInput, Include, PermissionToSend, SignUpForm, Source,
};

use super::{UNKNOWN_ID, new_list};
use crate::support::api::TestApi;

fn new_contact(email: &str) -> ContactCreate {
    let mut create = ContactCreate::new(Source::Account);
    create.email_address = Some(EmailAddressInput::new(
        email,
        Some(PermissionToSend::Implicit),
    ));
    create
}

#[tokio::test]
async fn a_contact_is_created_read_found_replaced_and_deleted() {
    let test = TestApi::start().await;
    let api = test.api();
    let list = new_list(&api, "Ops Customers").await;
    let field = api
        .create_custom_field(&CustomFieldCreate::new("Hobby", "string"))
        .await
        .expect("the field is created");
    let mut create = new_contact("pat@example.com");
    create.first_name = Some("Pat".into());
    create.last_name = Some("Lee".into());
    create.company_name = Some("Acme".into());
    create.birthday_month = Some(11);
    create.birthday_day = Some(24);
    create.list_memberships = vec![list.list_id.clone()];
    create.custom_fields = vec![ContactCustomField::new(&field.custom_field_id, "Skiing")];

    let created = api
        .create_contact(&create)
        .await
        .expect("the contact is created");
    assert_eq!(created.email(), Some("pat@example.com"));
    assert_eq!(created.create_source, Some(Source::Account));

    let fetched = api
        .get_contact(&created.contact_id, &Include::ALL)
        .await
        .expect("the contact is read");
    assert_eq!(
        fetched.list_memberships.as_deref(),
        Some(&[list.list_id.clone()][..])
    );
    assert_eq!(
        fetched.custom_fields.as_ref().map(|f| f[0].value.clone()),
        Some(Some("Skiing".into()))
    );
    let plain = api
        .get_contact(&created.contact_id, &[])
        .await
        .expect("read without includes");
    assert_eq!(
        plain.list_memberships, None,
        "subresources only come when included"
    );

    let found = api
        .find_contact_by_email("PAT@example.com", &[Include::ListMemberships], false)
        .await
        .expect("the search answers")
        .expect("the contact is found by e-mail, whatever its case");
    assert_eq!(found.contact_id, created.contact_id);

    // Change one core field on a body built from a read without includes: every other core
    // field and every subresource must survive the PUT.
    let mut put = plain.to_put(Source::Account);
    put.job_title = Some("Chef".into());
    let updated = api
        .update_contact(&created.contact_id, &put)
        .await
        .expect("the contact is replaced");
    assert_eq!(updated.update_source, Some(Source::Account));
    let after = api
        .get_contact(&created.contact_id, &Include::ALL)
        .await
        .expect("read again");
    assert_eq!(after.job_title.as_deref(), Some("Chef"));
    assert_eq!(after.first_name.as_deref(), Some("Pat"));
    assert_eq!(after.last_name.as_deref(), Some("Lee"));
    assert_eq!(after.company_name.as_deref(), Some("Acme"));
    assert_eq!(
        (after.birthday_month, after.birthday_day),
        (Some(11), Some(24))
    );
    assert_eq!(after.list_memberships, fetched.list_memberships);
    assert_eq!(after.custom_fields, fetched.custom_fields);

    api.delete_contact(&created.contact_id)
        .await
        .expect("the contact is deleted");
    let hidden = api
        .find_contact_by_email("pat@example.com", &[], false)
        .await
        .expect("the search answers");
    assert_eq!(hidden, None, "deleted contacts are hidden by default");
    let deleted = api
        .find_contact_by_email("pat@example.com", &[], true)
        .await
        .expect("the search answers")
        .expect("status=all shows deleted contacts");
    assert!(deleted.is_deleted());
    test.stop().await;
}

#[tokio::test]
async fn creating_a_contact_with_a_taken_email_is_a_conflict_naming_the_owner_even_after_deletion()
{
    let test = TestApi::start().await;
    let api = test.api();
    let first = api
        .create_contact(&new_contact("dup@example.com"))
        .await
        .expect("created");

    let error = api
        .create_contact(&new_contact("dup@example.com"))
        .await
        .expect_err("a duplicate");
    assert!(matches!(error, ApiError::Conflict { .. }), "{error:?}");
    assert_eq!(
        error.conflicting_contact_id().as_deref(),
        Some(first.contact_id.as_str())
    );

    api.delete_contact(&first.contact_id)
        .await
        .expect("deleted");
    let error = api
        .create_contact(&new_contact("dup@example.com"))
        .await
        .expect_err("still taken");
    assert_eq!(
        error.conflicting_contact_id().as_deref(),
        Some(first.contact_id.as_str())
    );
    test.stop().await;
}

#[tokio::test]
async fn an_unknown_contact_is_not_found_for_every_operation() {
    let test = TestApi::start().await;
    let api = test.api();
    let error = api.get_contact(UNKNOWN_ID, &[]).await.expect_err("unknown");
    assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    let mut body = ContactPut::new(Source::Account);
    body.first_name = Some("X".into());
    let error = api
        .update_contact(UNKNOWN_ID, &body)
        .await
        .expect_err("unknown");
    assert_eq!(error.status(), Some(404), "{error:?}");
    let error = api.delete_contact(UNKNOWN_ID).await.expect_err("unknown");
    assert_eq!(error.status(), Some(404), "{error:?}");
    let error = api.delete_contact("..").await.expect_err("not an id");
    assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    test.stop().await;
}

#[tokio::test]
async fn the_sign_up_form_creates_then_updates_by_email_and_merges_lists() {
    let test = TestApi::start().await;
    let api = test.api();
    let first_list = new_list(&api, "Ops Newsletter").await;
    let second_list = new_list(&api, "Ops Offers").await;
    let mut form = SignUpForm {
        email_address: "kim@example.com".into(),
        first_name: Some("Kim".into()),
        list_memberships: vec![first_list.list_id.clone()],
        ..SignUpForm::default()
    };

    let created = api.sign_up_form(&form).await.expect("signed up");
    assert!(created.created, "201 for a new contact");
    form.list_memberships = vec![second_list.list_id.clone()];
    form.first_name = None;
    let updated = api.sign_up_form(&form).await.expect("signed up again");
    assert!(!updated.created, "200 for an existing contact");
    assert_eq!(updated.contact_id, created.contact_id);

    let contact = api
        .get_contact(&created.contact_id, &[Include::ListMemberships])
        .await
        .expect("read");
    let lists: HashSet<_> = contact
        .list_memberships
        .unwrap_or_default()
        .into_iter()
        .collect();
    assert_eq!(
        lists,
        HashSet::from([first_list.list_id, second_list.list_id])
    );
    assert_eq!(
        contact.first_name.as_deref(),
        Some("Kim"),
        "sign-up updates are partial"
    );
    let permission = contact.email_address.and_then(|e| e.permission_to_send);
    assert_eq!(permission, Some(PermissionToSend::Explicit));

    form.list_memberships.clear();
    let error = api
        .sign_up_form(&form)
        .await
        .expect_err("at least one list is required");
    assert!(
        matches!(error, ApiError::Invalid { status: 400, .. }),
        "{error:?}"
    );
    test.stop().await;
}

#[tokio::test]
async fn listing_contacts_follows_next_links_to_the_last_page_without_gaps_or_repeats() {
    let test = TestApi::start().await;
    let admin = test.sandbox.admin();
    let account = admin.primary_account();
    admin.seed(&account, 23, 7).expect("seeded");
    let expected = admin.contact_count(&account, false).expect("counted");
    let api = test.api();

    let query = ContactQuery {
        limit: Some(5),
        include_count: true,
        include: vec![Include::ListMemberships],
        ..ContactQuery::default()
    };
    let mut page = api.list_contacts(&query).await.expect("first page");
    assert_eq!(page.contacts_count, Some(expected as u64));
    let mut seen = HashSet::new();
    let mut pages = 1;
    loop {
        assert!(page.contacts.len() <= 5);
        for contact in &page.contacts {
            assert!(
                seen.insert(contact.contact_id.clone()),
                "{} repeated",
                contact.contact_id
            );
            assert!(
                contact.list_memberships.is_some(),
                "the include holds on every page"
            );
        }
        let Some(next) = page.next.take() else { break };
        assert!(next.starts_with("/v3/"), "{next}");
        page = api.next_contacts_page(&next).await.expect("next page");
        pages += 1;
    }
    assert_eq!(seen.len(), expected);
    assert!(
        pages >= expected.div_ceil(5) && pages <= expected.div_ceil(5) + 1,
        "{pages} pages"
    );
    test.stop().await;
}
