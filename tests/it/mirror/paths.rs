//! The export path and the paging path of a full pass give identical databases.

use std::sync::Arc;

use ctct_sync::api::ClientSettings;
use ctct_sync::mirror::{ContactsPath, Mirror, MirrorOptions, Mode, Resource};

use super::{
    ActivityCompleter, MIRROR_TABLES, assert_contacts_equal_sandbox, dump_table, fast_options,
    mirror_for, requests_to, run, run_all_ok, second_client, seed,
};
use crate::support::api::{TestApi, build_client_with};
use crate::support::engine::Engine;

crate::both_engines!(
    #[tokio::test]
    a_full_pass_by_export_and_one_by_pages_give_identical_databases
);
async fn a_full_pass_by_export_and_one_by_pages_give_identical_databases(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 3_000);
    let _completer = ActivityCompleter::start(t.sandbox.admin());
    let by_export = mirror_for(&t, fast_options());
    let (db, client, paged_tables, _dir) = second_client(&t).await;
    let by_pages = Mirror::new(
        db,
        client,
        t.clock.clone(),
        MirrorOptions {
            contacts_path: ContactsPath::Paging,
            page_size: 250,
            ..fast_options()
        },
    );

    // Some contacts tagged, so that both paths carry taggings.
    let live = super::live_contact_ids(&t);
    let tag = super::create_tag(&t, "Compared").await;
    super::tagging(&t, true, &[&live[0], &live[1], &live[2]], &[&tag]).await;

    let exported = run_all_ok(&by_export, Mode::Full).await;
    let paged = run_all_ok(&by_pages, Mode::Full).await;
    let contacts = |runs: &[ctct_sync::mirror::RunSummary]| {
        runs.iter()
            .find(|r| r.resource == Resource::Contacts)
            .expect("a contacts run")
            .clone()
    };
    assert_eq!(contacts(&exported).path, Some(ContactsPath::Export));
    assert_eq!(contacts(&paged).path, Some(ContactsPath::Paging));
    assert_eq!(contacts(&paged).pages, 12, "3,000 contacts in pages of 250");

    for table in MIRROR_TABLES {
        let a = dump_table(&t.mirror_tables(), table).await;
        let b = dump_table(&paged_tables, table).await;
        assert!(!a.is_empty(), "{table} is mirrored");
        let first_difference = a.iter().zip(&b).find(|(x, y)| x != y);
        assert!(
            a == b,
            "{table}: export and paging differ ({} vs {} rows); first difference: {first_difference:?}",
            a.len(),
            b.len()
        );
    }
    let deleted = t
        .mirror_tables()
        .number("SELECT count(*) FROM contacts WHERE deleted_at IS NOT NULL")
        .await;
    assert!(
        deleted > 0,
        "the seed's deleted contacts are mirrored, with deleted_at"
    );
    assert_contacts_equal_sandbox(&t).await;
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    a_failed_export_falls_back_to_paging_in_the_same_pass
);
async fn a_failed_export_falls_back_to_paging_in_the_same_pass(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 600);
    let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = progress.clone();
    let mirror = mirror_for(&t, fast_options()).with_progress(Arc::new(move |p| {
        seen.store(p.rows, std::sync::atomic::Ordering::Relaxed);
    }));
    t.sandbox
        .admin()
        .inject_fault(
            ctct_sandbox::FaultSpec::status(500)
                .times(1)
                .path_prefix("/v3/activities/contact_exports"),
        )
        .expect("a fault");

    let summary = run(&mirror, Resource::Contacts, Mode::Full).await;
    assert_eq!(
        summary.outcome,
        ctct_sync::mirror::RunOutcome::Succeeded,
        "{summary:?}"
    );
    assert_eq!(summary.path, Some(ContactsPath::Paging), "{summary:?}");
    assert_eq!(summary.rows_upserted, 600);
    assert_eq!(progress.load(std::sync::atomic::Ordering::Relaxed), 600);
    assert_contacts_equal_sandbox(&t).await;
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    an_export_file_that_downloads_for_longer_than_the_request_timeout_is_read_whole
);
async fn an_export_file_that_downloads_for_longer_than_the_request_timeout_is_read_whole(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 6_000);
    let _completer = ActivityCompleter::start(t.sandbox.admin());
    // Three chunks of 2,000 contacts with 700 ms between them: over 2 s of download, against a
    // 1 s timeout. Bytes keep coming, so the download must not be cut off.
    t.sandbox
        .admin()
        .set_download_pace(std::time::Duration::from_millis(700));
    let mut settings = ClientSettings::new(&t.sandbox.credentials().base_url);
    settings.timeout = std::time::Duration::from_secs(1);
    let client = build_client_with(&t.sandbox, &t.store, &t.clock, 1_000, 1_000_000, settings);
    let mirror = Mirror::new(t.mirror_db(), client, t.clock.clone(), fast_options());

    let summary = run(&mirror, Resource::Contacts, Mode::Full).await;
    assert_eq!(
        summary.outcome,
        ctct_sync::mirror::RunOutcome::Succeeded,
        "{summary:?}"
    );
    assert_eq!(summary.path, Some(ContactsPath::Export), "{summary:?}");
    assert_eq!(summary.rows_upserted, 6_000);
    assert_eq!(
        requests_to(&t, "GET", "/v3/contact_exports"),
        1,
        "the file was downloaded once"
    );
    assert_contacts_equal_sandbox(&t).await;
    t.stop().await;
}
