//! 10,000 contacts mirrored fully, then creates, updates, deletions, list and custom-field
//! changes in the sandbox, and an incremental run that makes the mirror equal to the sandbox
//! field by field again.

use std::collections::BTreeSet;

use ctct_sync::api::model::{
    ContactCreate, ContactCustomField, ContactQuery, ContactStatus, CustomFieldCreate,
    EmailAddressInput, Include, ListInput, Source,
};
use ctct_sync::mirror::{ContactsPath, Mode, Resource, RunSummary};

use super::{
    ActivityCompleter, assert_contacts_equal_sandbox, fast_options, mirror_for, requests_to,
    run_all_ok, seed,
};
use crate::support::api::TestApi;
use crate::support::engine::Engine;
use crate::support::engine::Tables;

fn of(summaries: &[RunSummary], resource: Resource) -> &RunSummary {
    summaries
        .iter()
        .find(|s| s.resource == resource)
        .expect("a run of the resource")
}

/// `(id, label)` of custom fields and `(id, name, deleted)` of lists.
type Catalog = (BTreeSet<(String, String)>, BTreeSet<(String, String, bool)>);

/// The mirrored custom fields and lists.
async fn catalog(tables: &Tables) -> Catalog {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = tables
        .query("SELECT custom_field_id, label FROM custom_fields WHERE account = 'default'")
        .await
        .rows
        .iter()
        .map(|r| (text(&r[0]), text(&r[1])))
        .collect();
    let lists = tables
        .query(
            "SELECT list_id, name, deleted_at IS NOT NULL FROM contact_lists
             WHERE account = 'default'",
        )
        .await
        .rows
        .iter()
        .map(|r| (text(&r[0]), text(&r[1]), text(&r[2]) == "1"))
        .collect();
    (fields, lists)
}

/// The sandbox's live custom fields and all its lists.
fn sandbox_catalog(t: &TestApi) -> Catalog {
    let admin = t.sandbox.admin();
    let snapshot = admin
        .snapshot(&admin.primary_account())
        .expect("a snapshot");
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let fields = snapshot
        .custom_fields
        .iter()
        .map(|f| (text(f, "custom_field_id"), text(f, "label")))
        .collect();
    let lists = snapshot
        .lists
        .iter()
        .map(|l| {
            (
                text(l, "list_id"),
                text(l, "name"),
                !l["deleted_at"].is_null(),
            )
        })
        .collect();
    (fields, lists)
}

crate::both_engines!(
    #[tokio::test]
    ten_thousand_contacts_mirror_fully_and_an_incremental_run_catches_up_with_every_change
);
async fn ten_thousand_contacts_mirror_fully_and_an_incremental_run_catches_up_with_every_change(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 10_000);
    let _completer = ActivityCompleter::start(t.sandbox.admin());
    let mirror = mirror_for(&t, fast_options());

    // Full: every contact (deleted ones too) by one export.
    let full = run_all_ok(&mirror, Mode::Full).await;
    let contacts = of(&full, Resource::Contacts);
    assert_eq!(contacts.mode, Mode::Full);
    assert_eq!(contacts.path, Some(ContactsPath::Export));
    assert_eq!(contacts.rows_upserted, 10_000, "{contacts:?}");
    let polls = requests_to(&t, "GET", "/v3/activities/") as u64;
    assert!(
        contacts.api_requests <= 10 + polls,
        "a full mirror by export costs a handful of requests plus polls: {contacts:?}, {polls} polls"
    );
    assert_eq!(requests_to(&t, "POST", "/v3/activities/contact_exports"), 1);
    assert_contacts_equal_sandbox(&t).await;
    assert_eq!(catalog(&t.mirror_tables()).await, sandbox_catalog(&t));

    // Changes in the account.
    let api = t.api();
    let fields = api
        .list_custom_fields(Some(100))
        .await
        .expect("fields")
        .custom_fields;
    assert!(fields.len() >= 3, "the seed has custom fields");
    let (kept, renamed, dropped) = (&fields[0], &fields[1], &fields[2]);
    let mut put = renamed.to_put();
    put.label = format!("{} (renamed)", renamed.label);
    api.update_custom_field(&renamed.custom_field_id, &put)
        .await
        .expect("rename a field");
    api.delete_custom_field(&dropped.custom_field_id)
        .await
        .expect("delete a field");
    let added = api
        .create_custom_field(&CustomFieldCreate::new("Mirror Test Field", "string"))
        .await
        .expect("a new field");
    let new_list = api
        .create_list(&ListInput::new("Mirror test list"))
        .await
        .expect("a new list");
    let lists = api
        .list_lists(&Default::default())
        .await
        .expect("lists")
        .lists;
    let gone_list = lists
        .iter()
        .find(|l| l.list_id != new_list.list_id)
        .expect("a seeded list");
    api.delete_list(&gone_list.list_id)
        .await
        .expect("delete a list");
    t.sandbox.admin().complete_activities_now();

    let sample = api
        .list_contacts(&ContactQuery {
            include: vec![Include::CustomFields, Include::ListMemberships],
            status: vec![ContactStatus::Active],
            limit: Some(40),
            ..ContactQuery::default()
        })
        .await
        .expect("some contacts")
        .contacts;
    for contact in &sample[..8] {
        let mut put = contact.to_put(Source::Account);
        put.first_name = Some(format!("Changed {}", &contact.contact_id[..8]));
        let mut values = contact.custom_fields.clone().unwrap_or_default();
        values.retain(|v| v.custom_field_id != dropped.custom_field_id);
        values.push(ContactCustomField::new(
            &added.custom_field_id,
            "set by the test",
        ));
        put.custom_fields = Some(values);
        let mut lists = contact.list_memberships.clone().unwrap_or_default();
        lists.push(new_list.list_id.clone());
        put.list_memberships = Some(lists);
        api.update_contact(&contact.contact_id, &put)
            .await
            .expect("update a contact");
    }
    for contact in &sample[8..12] {
        api.delete_contact(&contact.contact_id)
            .await
            .expect("delete a contact");
    }
    for n in 0..6 {
        let mut create = ContactCreate::new(Source::Account);
        create.email_address = Some(EmailAddressInput::new(
            &format!("mirror.new.{n}@example.com"),
            None,
        ));
        create.last_name = Some(format!("New {n}"));
        create.custom_fields = vec![ContactCustomField::new(&kept.custom_field_id, "kept value")];
        create.list_memberships = vec![new_list.list_id.clone()];
        api.create_contact(&create).await.expect("create a contact");
    }
    let changed: u64 = 8 + 4 + 6;

    // Incremental: one page of changed contacts brings the mirror level again.
    let incremental = run_all_ok(&mirror, Mode::Incremental).await;
    let contacts = of(&incremental, Resource::Contacts);
    assert_eq!(contacts.mode, Mode::Incremental);
    assert_eq!(contacts.path, Some(ContactsPath::Paging));
    assert!(contacts.rows_upserted >= changed, "{contacts:?}");
    assert_eq!(contacts.rows_deleted, 4, "{contacts:?}");
    assert!(
        contacts.api_requests <= changed / 500 + 3,
        "incremental requests ≤ changed/500 + 3: {contacts:?}"
    );
    assert_contacts_equal_sandbox(&t).await;
    let (mirrored_fields, mirrored_lists) = catalog(&t.mirror_tables()).await;
    assert_eq!(
        (mirrored_fields.clone(), mirrored_lists.clone()),
        sandbox_catalog(&t)
    );
    assert!(
        mirrored_fields
            .iter()
            .any(|(_, label)| label.ends_with("(renamed)"))
    );
    assert!(
        !mirrored_fields
            .iter()
            .any(|(id, _)| *id == dropped.custom_field_id)
    );
    assert!(mirrored_lists.contains(&(gone_list.list_id.clone(), gone_list.name.clone(), true)));
    let orphans = t
        .mirror_tables()
        .number(&format!(
            "SELECT (SELECT count(*) FROM contact_custom_field_values WHERE custom_field_id = '{}')
                  + (SELECT count(*) FROM contact_list_memberships WHERE list_id = '{}')",
            dropped.custom_field_id, gone_list.list_id
        ))
        .await;
    assert_eq!(
        orphans, 0,
        "values of a deleted field and members of a deleted list are gone"
    );
    t.stop().await;
}
