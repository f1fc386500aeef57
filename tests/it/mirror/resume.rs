//! A run stopped mid-way — cancelled between pages, or killed outright — resumes where it
//! stopped, without losing a contact or reading a page twice.

use std::sync::Arc;
use std::time::Duration;

use ctct_sync::mirror::{ContactsPath, MirrorOptions, Mode, Progress, Resource, RunOutcome};
use tokio_util::sync::CancellationToken;

use super::{
    ActivityCompleter, assert_contacts_equal_sandbox, cancel_after, fast_options, mirror_for,
    requests_to, run, seed,
};
use crate::support::api::TestApi;
use crate::support::engine::Engine;

fn paging(page_size: u32) -> MirrorOptions {
    MirrorOptions {
        contacts_path: ContactsPath::Paging,
        page_size,
        ..fast_options()
    }
}

/// `(outcome, pages, rows_upserted)` of a stored run.
async fn stored_run(t: &TestApi, run_id: i64) -> (String, u64, u64) {
    let rows = t
        .mirror_tables()
        .query(&format!(
            "SELECT outcome, pages, rows_upserted FROM mirror_runs WHERE id = {run_id}"
        ))
        .await
        .rows;
    let [outcome, pages, rows] =
        <[Option<String>; 3]>::try_from(rows[0].clone()).expect("three columns");
    let number = |v: Option<String>| v.and_then(|v| v.parse().ok()).unwrap_or(0);
    (outcome.unwrap_or_default(), number(pages), number(rows))
}

crate::both_engines!(
    #[tokio::test]
    a_paging_pass_cancelled_after_seven_pages_keeps_the_page_in_flight_and_resumes_after_it
);
async fn a_paging_pass_cancelled_after_seven_pages_keeps_the_page_in_flight_and_resumes_after_it(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 2_000);
    let total = t
        .sandbox
        .admin()
        .snapshot(&t.sandbox.admin().primary_account())
        .expect("snapshot")
        .contacts
        .len() as u64;
    let token = CancellationToken::new();
    let first = mirror_for(&t, paging(100))
        .with_cancel(token.clone())
        .with_progress(cancel_after(7, token));

    let stopped = run(&first, Resource::Contacts, Mode::Full).await;
    assert_eq!(stopped.outcome, RunOutcome::Interrupted, "{stopped:?}");
    // Page 7 is reported written while page 8, already read, is being written: the cancel
    // stops the reading, and the write in flight lands whole with its position.
    assert_eq!(
        (stopped.pages, stopped.rows_upserted),
        (8, 800),
        "{stopped:?}"
    );

    let second = mirror_for(&t, paging(100));
    let resumed = run(&second, Resource::Contacts, Mode::Incremental).await;
    assert_eq!(resumed.outcome, RunOutcome::Succeeded, "{resumed:?}");
    assert_eq!(
        resumed.mode,
        Mode::Full,
        "the pending full pass is continued"
    );
    assert_eq!(resumed.resumed_from, Some(stopped.run_id));
    assert_eq!(
        stopped.rows_upserted + resumed.rows_upserted,
        total,
        "every contact read exactly once across the two runs"
    );
    assert_eq!(stopped.pages + resumed.pages, total.div_ceil(100));
    assert_contacts_equal_sandbox(&t).await;
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    an_export_pass_killed_mid_file_resumes_from_its_last_batch_without_exporting_again
);
async fn an_export_pass_killed_mid_file_resumes_from_its_last_batch_without_exporting_again(
    engine: Engine,
) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 2_000);
    let total = t
        .sandbox
        .admin()
        .snapshot(&t.sandbox.admin().primary_account())
        .expect("snapshot")
        .contacts
        .len() as u64;
    let _completer = ActivityCompleter::start(t.sandbox.admin());
    let (reached, mut reached_rx) = tokio::sync::mpsc::unbounded_channel();
    let options = MirrorOptions {
        export_batch: 100,
        ..fast_options()
    };
    let first = mirror_for(&t, options.clone()).with_progress(Arc::new(move |p: &Progress| {
        if p.resource == Resource::Contacts && p.pages >= 5 {
            let _ = reached.send(());
        }
    }));
    let task = tokio::spawn(async move { run(&first, Resource::Contacts, Mode::Full).await });
    tokio::time::timeout(Duration::from_secs(60), reached_rx.recv())
        .await
        .expect("five batches within the deadline");
    task.abort();
    assert!(
        task.await.is_err_and(|e| e.is_cancelled()),
        "the run was killed"
    );
    let killed_id = t
        .mirror_tables()
        .number("SELECT max(id) FROM mirror_runs")
        .await;
    let (outcome, _, _) = stored_run(&t, killed_id).await;
    assert_eq!(
        outcome, "running",
        "a killed run could not close its record"
    );

    // Another process finds the resource claimed by the dead one until its lease lapses.
    let second = mirror_for(&t, options);
    let too_soon = run(&second, Resource::Contacts, Mode::Full).await;
    assert_eq!(too_soon.outcome, RunOutcome::Skipped, "{too_soon:?}");
    t.clock.advance(chrono::Duration::minutes(31));
    if engine == Engine::Postgres {
        // There the database's clock judges the lease: the dead owner's lease is moved to
        // where 31 minutes on that clock would have left it.
        t.mirror_tables()
            .execute(
                "UPDATE mirror_cursors SET lease_until = now() - interval '1 minute'
                 WHERE lease_owner IS NOT NULL",
            )
            .await;
    }
    let resumed = run(&second, Resource::Contacts, Mode::Full).await;
    assert_eq!(resumed.outcome, RunOutcome::Succeeded, "{resumed:?}");
    assert_eq!(resumed.resumed_from, Some(killed_id));
    // (Read now: a batch write the killed run had handed to the store still landed, whole.)
    let (_, _, done_before) = stored_run(&t, killed_id).await;
    assert!(done_before >= 500 && done_before < total, "{done_before}");
    assert_eq!(resumed.path, Some(ContactsPath::Export));
    assert_eq!(
        done_before + resumed.rows_upserted,
        total,
        "the resumed run applies exactly the rows the killed one had not"
    );
    assert_eq!(
        requests_to(&t, "POST", "/v3/activities/contact_exports"),
        1,
        "the export is read again, not made again"
    );
    let (outcome, _, _) = stored_run(&t, killed_id).await;
    assert_eq!(
        outcome, "interrupted",
        "the next run closes the killed run's record"
    );
    assert_contacts_equal_sandbox(&t).await;
    t.stop().await;
}
