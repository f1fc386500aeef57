//! Which operations the client may send twice: after an ambiguous server error every POST is
//! left to the caller (sent once, its effect possibly applied), while PUT, PATCH, DELETE and GET
//! are repeated until they succeed.

use ctct_sandbox::{FaultSpec, SandboxAdmin};
use ctct_sync::api::model::{
    AccountEmailFilter, CampaignActivityCreate, CampaignCreate, ContactCreate, ContactsJsonImport,
    CustomFieldCreate, EmailAddressInput, ExportRequest, ImportRow, Include, ListInput, ScheduleAt,
    SignUpForm, Source, TestSend,
};
use ctct_sync::api::{AccountApi, ApiError};

use super::new_list;
use crate::support::api::TestApi;

/// Makes the next `method` request under `path` fail with a 503 after its effect applied, and
/// starts counting requests afresh.
fn fail_after_effect(admin: &SandboxAdmin, method: &str, path: &str) {
    admin.clear_request_log();
    admin
        .inject_fault(
            FaultSpec::status(503)
                .method(method)
                .path_prefix(path)
                .after_effect(),
        )
        .expect("a valid fault");
}

/// How many `method` requests reached `path` exactly since the log was last cleared.
fn sent(admin: &SandboxAdmin, method: &str, path: &str) -> usize {
    admin
        .request_log()
        .iter()
        .filter(|r| r.method == method && r.path.split('?').next() == Some(path))
        .count()
}

fn assert_sent_once<T: std::fmt::Debug>(
    admin: &SandboxAdmin,
    path: &str,
    result: Result<T, ApiError>,
) {
    let error = result.expect_err("the injected 503");
    assert!(
        matches!(
            error,
            ApiError::Server {
                status: 503,
                attempts: 1,
                ..
            }
        ),
        "{path}: {error:?}"
    );
    assert_eq!(
        sent(admin, "POST", path),
        1,
        "{path} must not be repeated blindly"
    );
}

/// A new campaign: its id and its primary activity's id.
async fn new_campaign(api: &AccountApi, name: &str) -> (String, String) {
    let sender = api
        .list_account_emails(&AccountEmailFilter::Confirmed)
        .await
        .expect("e-mails")
        .remove(0)
        .email_address;
    let html = "<html><body>[[trackingImage]]</body></html>";
    let activity = CampaignActivityCreate::custom_code("Acme", &sender, &sender, "Hi", html);
    let campaign = api
        .create_campaign(&CampaignCreate::new(name, activity))
        .await
        .expect("campaign");
    let primary = campaign
        .primary_email_activity_id()
        .expect("primary")
        .to_owned();
    (campaign.campaign_id, primary)
}

#[tokio::test]
async fn every_post_is_sent_once_after_an_ambiguous_server_error_and_the_caller_resolves_by_reading()
 {
    let test = TestApi::start().await;
    let admin = test.sandbox.admin();
    let api = test.api();
    let list = new_list(&api, "Ops Repeats").await;

    let mut create = ContactCreate::new(Source::Account);
    create.email_address = Some(EmailAddressInput::new("once@example.com", None));
    fail_after_effect(&admin, "POST", "/v3/contacts");
    assert_sent_once(&admin, "/v3/contacts", api.create_contact(&create).await);
    let resolved = api
        .find_contact_by_email("once@example.com", &[], true)
        .await
        .expect("search");
    assert!(
        resolved.is_some(),
        "the create took effect; reading finds it"
    );

    let form = SignUpForm {
        email_address: "form@example.com".into(),
        list_memberships: vec![list.list_id.clone()],
        ..SignUpForm::default()
    };
    fail_after_effect(&admin, "POST", "/v3/contacts/sign_up_form");
    assert_sent_once(
        &admin,
        "/v3/contacts/sign_up_form",
        api.sign_up_form(&form).await,
    );

    fail_after_effect(&admin, "POST", "/v3/contact_lists");
    assert_sent_once(
        &admin,
        "/v3/contact_lists",
        api.create_list(&ListInput::new("Ops Once")).await,
    );

    fail_after_effect(&admin, "POST", "/v3/contact_custom_fields");
    let field = CustomFieldCreate::new("Once", "string");
    assert_sent_once(
        &admin,
        "/v3/contact_custom_fields",
        api.create_custom_field(&field).await,
    );

    let import = ContactsJsonImport {
        import_data: vec![ImportRow::new("imported-once@example.com")],
        list_ids: vec![list.list_id.clone()],
    };
    fail_after_effect(&admin, "POST", "/v3/activities/contacts_json_import");
    assert_sent_once(
        &admin,
        "/v3/activities/contacts_json_import",
        api.import_contacts_json(&import).await,
    );

    fail_after_effect(&admin, "POST", "/v3/activities/contact_exports");
    let export = api.create_export(&ExportRequest::default()).await;
    assert_sent_once(&admin, "/v3/activities/contact_exports", export);

    fail_after_effect(&admin, "POST", "/v3/account/emails");
    assert_sent_once(
        &admin,
        "/v3/account/emails",
        api.add_account_email("once@acme.example").await,
    );

    let (_, primary) = new_campaign(&api, "Ops Once").await;
    let tests = format!("/v3/emails/activities/{primary}/tests");
    fail_after_effect(&admin, "POST", &tests);
    let send = TestSend {
        email_addresses: vec!["qa@example.com".into()],
        personal_message: None,
    };
    assert_sent_once(
        &admin,
        &tests,
        api.send_campaign_test(&primary, &send).await,
    );

    let mut put = api
        .get_campaign_activity(&primary, &[])
        .await
        .expect("activity")
        .to_put();
    put.set_lists(vec![list.list_id.clone()]);
    api.update_campaign_activity(&primary, &put)
        .await
        .expect("recipients set");
    let schedules = format!("/v3/emails/activities/{primary}/schedules");
    fail_after_effect(&admin, "POST", &schedules);
    assert_sent_once(
        &admin,
        &schedules,
        api.schedule_campaign_activity(&primary, ScheduleAt::Now)
            .await,
    );
    test.stop().await;
}

#[tokio::test]
async fn puts_patches_deletes_and_gets_are_repeated_after_a_server_error() {
    let test = TestApi::start().await;
    let admin = test.sandbox.admin();
    let api = test.api();
    let mut create = ContactCreate::new(Source::Account);
    create.email_address = Some(EmailAddressInput::new("again@example.com", None));
    create.first_name = Some("Again".into());
    let contact = api.create_contact(&create).await.expect("created");
    let path = format!("/v3/contacts/{}", contact.contact_id);
    admin.clear_request_log();

    admin
        .inject_fault(FaultSpec::status(503).method("GET").path_prefix(&path))
        .expect("fault");
    let fetched = api
        .get_contact(&contact.contact_id, &Include::ALL)
        .await
        .expect("read after a retry");
    assert_eq!(sent(&admin, "GET", &path), 2);

    admin
        .inject_fault(
            FaultSpec::status(503)
                .method("PUT")
                .path_prefix(&path)
                .after_effect(),
        )
        .expect("fault");
    let mut put = fetched.to_put(Source::Account);
    put.last_name = Some("Twice".into());
    let updated = api
        .update_contact(&contact.contact_id, &put)
        .await
        .expect("replaced after a retry");
    assert_eq!(updated.last_name.as_deref(), Some("Twice"));
    assert_eq!(sent(&admin, "PUT", &path), 2);

    let (campaign_id, _) = new_campaign(&api, "Ops Twice").await;
    let campaign_path = format!("/v3/emails/{campaign_id}");
    admin.clear_request_log();
    admin
        .inject_fault(
            FaultSpec::status(503)
                .method("PATCH")
                .path_prefix(&campaign_path),
        )
        .expect("fault");
    let renamed = api
        .rename_campaign(&campaign_id, "Ops Twice Renamed")
        .await
        .expect("renamed after a retry");
    assert_eq!(renamed.name, "Ops Twice Renamed");
    assert_eq!(sent(&admin, "PATCH", &campaign_path), 2);

    admin
        .inject_fault(FaultSpec::status(503).method("DELETE").path_prefix(&path))
        .expect("fault");
    api.delete_contact(&contact.contact_id)
        .await
        .expect("deleted after a retry");
    assert_eq!(sent(&admin, "DELETE", &path), 2);
    test.stop().await;
}
