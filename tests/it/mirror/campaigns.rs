//! Campaigns cost one list request per run, plus details and activities only for campaigns
//! whose `updated_at` changed.

use std::collections::BTreeMap;

use ctct_sync::mirror::{Mode, Resource, RunOutcome};

use super::{fast_options, mirror_for, requests_to, run, seed};
use crate::support::api::TestApi;

/// `campaign_id → (name, status, activity subjects)` as mirrored.
async fn mirrored(t: &TestApi) -> BTreeMap<String, (String, String, Vec<String>)> {
    t.mirror_store
        .call(|conn| {
            let mut out = BTreeMap::new();
            let rows = conn
                .prepare(
                    "SELECT c.campaign_id, c.name, c.current_status,
                            coalesce((SELECT group_concat(role || ':' || current_status || ':'
                                                          || coalesce(subject, ''), '|')
                                      FROM (SELECT * FROM campaign_activities a
                                            WHERE a.account = c.account
                                              AND a.campaign_id = c.campaign_id
                                            ORDER BY role)), '')
                     FROM campaigns c WHERE c.account = 'default'",
                )?
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?
                .collect::<Result<Vec<(String, String, String, String)>, _>>()?;
            for (id, name, status, activities) in rows {
                let activities = activities
                    .split('|')
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect();
                out.insert(id, (name, status, activities));
            }
            Ok(out)
        })
        .await
        .expect("readable")
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

#[tokio::test]
async fn only_campaigns_whose_updated_at_changed_are_fetched_again() {
    let t = TestApi::start().await;
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
