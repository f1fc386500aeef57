//! Campaigns cost one list request per run, plus details and activities only for campaigns
//! whose `updated_at` changed.

use std::collections::BTreeMap;

use ctct_sync::mirror::{Mode, Resource, RunOutcome};

use super::{fast_options, mirror_for, requests_to, run, seed};
use crate::support::api::TestApi;
use crate::support::engine::Engine;

/// `campaign_id → (name, status, activity subjects)` as mirrored.
async fn mirrored(t: &TestApi) -> BTreeMap<String, (String, String, Vec<String>)> {
    let tables = t.mirror_tables();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut activities: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in tables
        .query(
            "SELECT campaign_id, role, current_status, coalesce(subject, '')
             FROM campaign_activities WHERE account = 'default' ORDER BY campaign_id, role",
        )
        .await
        .rows
    {
        activities.entry(text(&r[0])).or_default().push(format!(
            "{}:{}:{}",
            text(&r[1]),
            text(&r[2]),
            text(&r[3])
        ));
    }
    tables
        .query("SELECT campaign_id, name, current_status FROM campaigns WHERE account = 'default'")
        .await
        .rows
        .iter()
        .map(|r| {
            let id = text(&r[0]);
            let mut of = activities.remove(&id).unwrap_or_default();
            of.sort();
            (id, (text(&r[1]), text(&r[2]), of))
        })
        .collect()
}

/// The same from the sandbox's snapshot.
fn expected(t: &TestApi) -> BTreeMap<String, (String, String, Vec<String>)> {
    let admin = t.sandbox.admin();
    let snapshot = admin
        .snapshot(&admin.primary_account())
        .expect("a snapshot");
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    snapshot
        .campaigns
        .iter()
        .map(|c| {
            let id = text(c, "campaign_id");
            let mut activities: Vec<String> = snapshot
                .campaign_activities
                .iter()
                .filter(|a| text(a, "campaign_id") == id)
                .map(|a| {
                    format!(
                        "{}:{}:{}",
                        text(a, "role"),
                        text(a, "current_status"),
                        text(a, "subject")
                    )
                })
                .collect();
            activities.sort();
            (id, (text(c, "name"), text(c, "current_status"), activities))
        })
        .collect()
}

crate::both_engines!(
    #[tokio::test]
    only_campaigns_whose_updated_at_changed_are_fetched_again
);
async fn only_campaigns_whose_updated_at_changed_are_fetched_again(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 50);
    let campaigns = expected(&t);
    assert!(campaigns.len() >= 2, "the seed has campaigns");
    let mirror = mirror_for(&t, fast_options());

    let first = run(&mirror, Resource::Campaigns, Mode::Full).await;
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{first:?}");
    let details = requests_to(&t, "GET", "/v3/emails/");
    assert!(
        details >= campaigns.len(),
        "each campaign's details were read once"
    );
    assert_eq!(mirrored(&t).await, expected(&t));

    t.sandbox.admin().clear_request_log();
    let unchanged = run(&mirror, Resource::Campaigns, Mode::Full).await;
    assert_eq!(
        unchanged.api_requests, 1,
        "one list page and nothing else: {unchanged:?}"
    );
    assert_eq!(requests_to(&t, "GET", "/v3/emails/"), 0);

    let api = t.api();
    let (renamed_id, _) = campaigns.iter().next().expect("a campaign");
    api.rename_campaign(renamed_id, "Renamed by the mirror test")
        .await
        .expect("renamed");
    t.sandbox.admin().clear_request_log();
    let after_rename = run(&mirror, Resource::Campaigns, Mode::Incremental).await;
    assert_eq!(after_rename.outcome, RunOutcome::Succeeded);
    let fetched: Vec<String> = t
        .sandbox
        .admin()
        .request_log()
        .into_iter()
        .filter(|r| {
            r.path.starts_with("/v3/emails/") && !r.path.starts_with("/v3/emails/activities")
        })
        .map(|r| r.path)
        .collect();
    assert_eq!(
        fetched,
        [format!("/v3/emails/{renamed_id}")],
        "only the renamed campaign"
    );
    assert_eq!(mirrored(&t).await, expected(&t));
    t.stop().await;
}
