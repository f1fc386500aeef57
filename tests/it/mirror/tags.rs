//! Tags, taggings and segments mirrored against the sandbox: the tags' definitions with their
//! counts, every contact's taggings (by export and by pages, with no request of their own),
//! segments with their criteria (read once, again only after an edit); a deleted tag or
//! segment leaves the mirror with its next run and an untagged contact loses its row.

use ctct_sync::api::model::SegmentQuery;
use ctct_sync::mirror::{ContactsPath, Mirror, MirrorOptions, Mode, Resource, RunSummary};

use super::{
    ActivityCompleter, create_tag, fast_options, live_contact_ids, mirror_for, requests_to,
    run_all_ok, second_client, seed, tagging,
};
use crate::support::api::TestApi;
use crate::support::engine::{Engine, Tables};

const CRITERIA: &str = r#"{"version":"1.0.0","criteria":{"type":"and","group":[{"source":"contact","field":"email_address","op":"contains","value":"example"}]}}"#;

/// `contact_id:tag name` of every tagging of account `default`, sorted.
async fn taggings(tables: &Tables) -> Vec<String> {
    tables
        .query(
            "SELECT g.contact_id || ':' || coalesce(t.name, '?') FROM contact_taggings AS g
             LEFT JOIN contact_tags AS t ON t.account = g.account AND t.tag_id = g.tag_id
             WHERE g.account = 'default' ORDER BY 1",
        )
        .await
        .rows
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect()
}

/// `name=contacts_count` of every mirrored tag, by name.
async fn tags(tables: &Tables) -> Vec<String> {
    tables
        .query(
            "SELECT name || '=' || coalesce(contacts_count, -1) FROM contact_tags
             WHERE account = 'default' ORDER BY name",
        )
        .await
        .rows
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect()
}

/// `name:criteria held` of every mirrored segment, by name.
async fn segments(tables: &Tables) -> Vec<String> {
    tables
        .query(
            "SELECT name || ':' || CASE WHEN segment_criteria IS NULL THEN 'none' ELSE 'held' END
             FROM segments WHERE account = 'default' ORDER BY name",
        )
        .await
        .rows
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect()
}

fn of(summaries: &[RunSummary], resource: Resource) -> &RunSummary {
    summaries
        .iter()
        .find(|s| s.resource == resource)
        .expect("a run of every resource")
}

/// `name:held` of every segment the API lists, by name.
async fn listed_segments(t: &TestApi) -> Vec<String> {
    let page = t
        .api()
        .list_segments(&SegmentQuery {
            limit: Some(1000),
            sort_by: None,
        })
        .await
        .expect("the segments");
    assert!(page.next.is_none(), "one page of segments");
    let mut names: Vec<String> = page
        .segments
        .iter()
        .map(|s| format!("{}:held", s.name))
        .collect();
    names.sort();
    names
}

/// The SQL of the "Tag and segment queries" section of docs/mirror.md.
fn documented_queries() -> Vec<String> {
    crate::support::mirror_doc_queries("## Tag and segment queries")
}

crate::both_engines!(
    #[tokio::test]
    tags_taggings_and_segments_follow_the_account_at_a_bounded_cost
);
async fn tags_taggings_and_segments_follow_the_account_at_a_bounded_cost(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 300);
    let _completer = ActivityCompleter::start(t.sandbox.admin());
    let admin = t.sandbox.admin();
    let account = admin.primary_account();
    let live = live_contact_ids(&t);
    let (c0, c1, c2) = (live[0].as_str(), live[1].as_str(), live[2].as_str());
    let vip = create_tag(&t, "VIP").await;
    let late = create_tag(&t, "Late").await;
    tagging(&t, true, &[c0, c1], &[&vip]).await;
    tagging(&t, true, &[c1, c2], &[&late]).await;
    let buyers = admin
        .add_segment(&account, "Buyers", CRITERIA)
        .expect("a segment");
    let lapsed = admin
        .add_segment(&account, "Lapsed", CRITERIA)
        .expect("a segment");
    let all_segments = listed_segments(&t).await;
    assert!(all_segments.contains(&"Lapsed:held".to_owned()));

    // By export (the default path of a full pass).
    let mirror = mirror_for(&t, fast_options());
    admin.clear_request_log();
    let first = run_all_ok(&mirror, Mode::Full).await;
    let tables = t.mirror_tables();
    let mut expected = vec![
        format!("{c0}:VIP"),
        format!("{c1}:Late"),
        format!("{c1}:VIP"),
        format!("{c2}:Late"),
    ];
    expected.sort();
    assert_eq!(taggings(&tables).await, expected);
    assert_eq!(tags(&tables).await, ["Late=2", "VIP=2"]);
    assert_eq!(segments(&tables).await, all_segments);
    let contacts = of(&first, Resource::Contacts);
    assert_eq!(contacts.path, Some(ContactsPath::Export));
    assert_eq!(
        requests_to(&t, "GET", "/v3/contacts/"),
        0,
        "no contact read on its own"
    );
    assert!(
        contacts.api_requests <= 8,
        "300 contacts' taggings come with the export's few requests: {contacts:?}"
    );
    assert_eq!(
        of(&first, Resource::Tags).api_requests,
        1,
        "one page of tags"
    );
    assert_eq!(
        of(&first, Resource::Segments).api_requests,
        1 + all_segments.len() as u64,
        "the listing and each new segment's criteria"
    );

    // The documented queries, as written, on this engine.
    let queries = documented_queries();
    assert_eq!(queries.len(), 2, "two documented queries");
    let per_tag = tables.query(&queries[0]).await;
    assert_eq!(
        per_tag.columns,
        ["tag", "live_contacts", "api_count"],
        "contacts per tag"
    );
    let per_tag: Vec<Vec<String>> = per_tag
        .rows
        .iter()
        .map(|r| r.iter().map(|v| v.clone().unwrap_or_default()).collect())
        .collect();
    assert_eq!(per_tag, [["Late", "2", "2"], ["VIP", "2", "2"]]);
    let by_edit = tables.query(&queries[1]).await;
    assert_eq!(by_edit.rows.len(), all_segments.len(), "every segment");
    assert_eq!(
        by_edit.rows[0][1].as_deref(),
        Some("Lapsed"),
        "the last segment made comes first"
    );
    assert!(by_edit.rows.iter().all(|r| r[4].as_deref() == Some("yes")));

    // By pages, into a second mirror: the same taggings.
    let (db, client, paged_tables, _dir) = second_client(&t).await;
    let by_pages = Mirror::new(
        db,
        client,
        t.clock.clone(),
        MirrorOptions {
            contacts_path: ContactsPath::Paging,
            ..fast_options()
        },
    );
    admin.clear_request_log();
    let paged = run_all_ok(&by_pages, Mode::Full).await;
    assert_eq!(
        of(&paged, Resource::Contacts).path,
        Some(ContactsPath::Paging)
    );
    assert_eq!(taggings(&paged_tables).await, expected);
    assert_eq!(
        requests_to(&t, "GET", "/v3/contacts/"),
        0,
        "no contact read on its own"
    );
    assert_eq!(
        requests_to(&t, "GET", "/v3/contacts"),
        1,
        "300 contacts with their taggings in one page of 500"
    );

    // In Constant Contact: c1 untagged from VIP, the tag Late deleted, the segment Lapsed
    // deleted (Buyers left as it was).
    tagging(&t, false, &[c1], &[&vip]).await;
    t.api().delete_tag(&late).await.expect("the tag is deleted");
    admin.complete_activities_now();
    admin
        .delete_segment(&account, lapsed)
        .expect("the segment is deleted");
    admin.clear_request_log();
    let second = run_all_ok(&mirror, Mode::Full).await;
    assert_eq!(taggings(&tables).await, [format!("{c0}:VIP")]);
    assert_eq!(tags(&tables).await, ["VIP=1"]);
    let remaining = listed_segments(&t).await;
    assert!(!remaining.contains(&"Lapsed:held".to_owned()));
    assert_eq!(segments(&tables).await, remaining);
    assert_eq!(
        of(&second, Resource::Segments).api_requests,
        1,
        "criteria not edited since are not read again"
    );
    assert_eq!(requests_to(&t, "GET", &format!("/v3/segments/{buyers}")), 0);
    t.stop().await;
}
