//! E-mail campaigns: create, read, rename, list; the primary activity's read and replace;
//! schedules and test sends; unconfirmed senders, duplicate names, unknown ids.

use chrono::{DurationRound, TimeDelta};
use ctct_sync::api::model::{
    AccountEmailFilter, CampaignActivityCreate, CampaignActivityInclude, CampaignActivityRole,
    CampaignActivityStatus, CampaignCreate, CampaignQuery, CampaignStatus, ScheduleAt, TestSend,
};
use ctct_sync::api::{AccountApi, ApiError};

use super::{UNKNOWN_ID, new_list};
use crate::support::api::TestApi;

const HTML: &str = "<html><body>[[trackingImage]]<h1>Spring</h1></body></html>";

async fn confirmed_sender(api: &AccountApi) -> String {
    let emails = api
        .list_account_emails(&AccountEmailFilter::Confirmed)
        .await
        .expect("account e-mails");
    emails
        .first()
        .expect("the account has a confirmed e-mail")
        .email_address
        .clone()
}

fn campaign(name: &str, sender: &str) -> CampaignCreate {
    CampaignCreate::new(
        name,
        CampaignActivityCreate::custom_code("Acme", sender, sender, "Spring", HTML),
    )
}

#[tokio::test]
async fn a_campaign_is_created_renamed_addressed_scheduled_unscheduled_test_sent_and_sent() {
    let test = TestApi::start().await;
    let api = test.api();
    let sender = confirmed_sender(&api).await;
    let list = new_list(&api, "Readers").await;

    let created = api
        .create_campaign(&campaign("Spring News", &sender))
        .await
        .expect("created");
    assert_eq!(created.current_status, Some(CampaignStatus::Draft));
    assert_eq!(created.campaign_activities.len(), 2, "{created:?}");
    let primary = created
        .primary_email_activity_id()
        .expect("a primary_email activity")
        .to_owned();
    let fetched = api.get_campaign(&created.campaign_id).await.expect("read");
    assert_eq!(fetched.primary_email_activity_id(), Some(primary.as_str()));

    let renamed = api
        .rename_campaign(&created.campaign_id, "Spring News 2026")
        .await
        .expect("renamed");
    assert_eq!(renamed.name, "Spring News 2026");
    let mut names = Vec::new();
    let mut page = api
        .list_campaigns(&CampaignQuery {
            limit: Some(1),
            ..CampaignQuery::default()
        })
        .await
        .expect("first page");
    loop {
        names.extend(
            page.campaigns
                .iter()
                .map(|c| (c.campaign_id.clone(), c.name.clone())),
        );
        let Some(next) = page.next.take() else { break };
        page = api.next_campaigns_page(&next).await.expect("next page");
    }
    assert!(
        names.contains(&(created.campaign_id.clone(), "Spring News 2026".to_owned())),
        "{names:?}"
    );

    let activity = api
        .get_campaign_activity(&primary, &CampaignActivityInclude::ALL)
        .await
        .expect("the activity");
    assert_eq!(activity.role, Some(CampaignActivityRole::PrimaryEmail));
    assert_eq!(activity.current_status, Some(CampaignActivityStatus::Draft));
    assert_eq!(activity.html_content.as_deref(), Some(HTML));
    let bare = api
        .get_campaign_activity(&primary, &[])
        .await
        .expect("without includes");
    let mut put = bare.to_put();
    put.set_lists(vec![list.list_id.clone()]);
    put.subject = "Spring is here".into();
    let updated = api
        .update_campaign_activity(&primary, &put)
        .await
        .expect("replaced");
    assert_eq!(
        updated.contact_list_ids,
        std::slice::from_ref(&list.list_id)
    );
    assert_eq!(updated.subject.as_deref(), Some("Spring is here"));
    let reread = api
        .get_campaign_activity(&primary, &[CampaignActivityInclude::HtmlContent])
        .await
        .expect("read again");
    assert_eq!(
        reread.html_content.as_deref(),
        Some(HTML),
        "left-out content is kept"
    );
    assert_eq!(reread.from_email.as_deref(), Some(sender.as_str()));

    let at = (test.sandbox.admin().now() + TimeDelta::days(2))
        .duration_trunc(TimeDelta::seconds(1))
        .expect("truncates");
    let schedules = api
        .schedule_campaign_activity(&primary, ScheduleAt::At(at))
        .await
        .expect("scheduled");
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].scheduled_date, Some(at));
    let listed = api
        .get_campaign_schedules(&primary)
        .await
        .expect("schedules");
    assert_eq!(listed, schedules);
    let scheduled = api.get_campaign(&created.campaign_id).await.expect("read");
    assert_eq!(scheduled.current_status, Some(CampaignStatus::Scheduled));

    api.unschedule_campaign_activity(&primary)
        .await
        .expect("unscheduled");
    assert!(
        api.get_campaign_schedules(&primary)
            .await
            .expect("schedules")
            .is_empty()
    );

    let test_send = TestSend {
        email_addresses: vec!["qa@example.com".into()],
        personal_message: Some("Please check".into()),
    };
    api.send_campaign_test(&primary, &test_send)
        .await
        .expect("test sent");

    let now = api
        .schedule_campaign_activity(&primary, ScheduleAt::Now)
        .await
        .expect("sent now");
    assert!(now.is_empty(), "an immediate send has no schedule: {now:?}");
    let sending = api
        .get_campaign_activity(&primary, &[])
        .await
        .expect("read");
    assert_ne!(sending.current_status, Some(CampaignActivityStatus::Draft));
    test.stop().await;
}

#[tokio::test]
async fn an_unconfirmed_sender_is_invalid_and_a_duplicate_name_is_a_conflict() {
    let test = TestApi::start().await;
    let api = test.api();
    let added = api
        .add_account_email("new-sender@example.com")
        .await
        .expect("added");
    assert!(!added.is_confirmed());
    let error = api
        .create_campaign(&campaign("Unconfirmed", "new-sender@example.com"))
        .await
        .expect_err("an unconfirmed from_email");
    assert!(
        matches!(error, ApiError::Invalid { status: 400, .. }),
        "{error:?}"
    );

    let sender = confirmed_sender(&api).await;
    api.create_campaign(&campaign("Only Once", &sender))
        .await
        .expect("created");
    let error = api
        .create_campaign(&campaign("Only Once", &sender))
        .await
        .expect_err("duplicate");
    assert!(matches!(error, ApiError::Conflict { .. }), "{error:?}");
    test.stop().await;
}

#[tokio::test]
async fn unknown_campaigns_and_activities_are_not_found_and_bad_test_sends_are_invalid() {
    let test = TestApi::start().await;
    let api = test.api();
    assert_eq!(
        api.get_campaign(UNKNOWN_ID)
            .await
            .expect_err("unknown")
            .status(),
        Some(404)
    );
    assert_eq!(
        api.rename_campaign(UNKNOWN_ID, "X")
            .await
            .expect_err("unknown")
            .status(),
        Some(404)
    );
    assert_eq!(
        api.get_campaign_activity(UNKNOWN_ID, &[])
            .await
            .expect_err("unknown")
            .status(),
        Some(404)
    );
    assert_eq!(
        api.get_campaign_schedules(UNKNOWN_ID)
            .await
            .expect_err("unknown")
            .status(),
        Some(404)
    );

    let sender = confirmed_sender(&api).await;
    let created = api
        .create_campaign(&campaign("Tests", &sender))
        .await
        .expect("created");
    let primary = created
        .primary_email_activity_id()
        .expect("primary")
        .to_owned();
    let too_many = TestSend {
        email_addresses: (0..6).map(|n| format!("qa{n}@example.com")).collect(),
        personal_message: None,
    };
    let error = api
        .send_campaign_test(&primary, &too_many)
        .await
        .expect_err("at most five");
    assert!(
        matches!(error, ApiError::Invalid { status: 400, .. }),
        "{error:?}"
    );
    let error = api
        .schedule_campaign_activity(&primary, ScheduleAt::Now)
        .await
        .expect_err("no recipients yet");
    assert!(
        matches!(error, ApiError::Invalid { status: 400, .. }),
        "{error:?}"
    );
    test.stop().await;
}
