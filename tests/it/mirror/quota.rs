//! Quota exhaustion stops a run cleanly (interrupted, resumable) and the pass continues after
//! the daily reset.

use std::time::Duration;

use ctct_sandbox::{FaultSpec, LimitsMode, SandboxOptions};
use ctct_sync::clock::Clock;
use ctct_sync::clock::next_utc_midnight;
use ctct_sync::mirror::{ContactsPath, MirrorOptions, Mode, Resource, RunOutcome};

use super::{assert_contacts_equal_sandbox, fast_options, mirror_for, run, seed};
use crate::support::api::TestApi;
use crate::support::engine::Engine;

fn paging(page_size: u32) -> MirrorOptions {
    MirrorOptions {
        contacts_path: ContactsPath::Paging,
        page_size,
        ..fast_options()
    }
}

crate::both_engines!(
    #[tokio::test]
    the_mirrors_share_of_the_day_stops_a_pass_which_continues_after_midnight
);
async fn the_mirrors_share_of_the_day_stops_a_pass_which_continues_after_midnight(engine: Engine) {
    // 40 requests a day for the API key; the mirror may spend 60% of them (24).
    let mut options = SandboxOptions::for_tests();
    options.limits = LimitsMode::Real;
    options.per_second = 1000;
    options.per_day = 40;
    let t = TestApi::start_with_on(engine, options, 1000, 40).await;
    seed(&t, 2_000);
    let total = t
        .sandbox
        .admin()
        .snapshot(&t.sandbox.admin().primary_account())
        .expect("snapshot")
        .contacts
        .len() as u64;
    let pages_needed = total.div_ceil(50);
    assert!(
        pages_needed > 24,
        "the pass needs more requests than a day allows"
    );
    let mirror = mirror_for(&t, paging(50));

    let stopped = run(&mirror, Resource::Contacts, Mode::Full).await;
    assert_eq!(stopped.outcome, RunOutcome::Interrupted, "{stopped:?}");
    assert_eq!(
        stopped.pages, 24,
        "every request of the mirror's share became a page"
    );
    assert_eq!(stopped.resets_at, Some(next_utc_midnight(t.clock.now())));
    let again = run(&mirror, Resource::Contacts, Mode::Full).await;
    assert_eq!(
        again.outcome,
        RunOutcome::Interrupted,
        "still the same day: {again:?}"
    );
    assert_eq!((again.pages, again.api_requests), (0, 0), "{again:?}");

    t.advance_clocks(Duration::from_secs(24 * 3600));
    let resumed = run(&mirror, Resource::Contacts, Mode::Full).await;
    assert_eq!(resumed.outcome, RunOutcome::Succeeded, "{resumed:?}");
    assert_eq!(resumed.resumed_from, Some(stopped.run_id));
    assert_eq!(stopped.pages + resumed.pages, pages_needed);
    assert_eq!(stopped.rows_upserted + resumed.rows_upserted, total);
    assert_contacts_equal_sandbox(&t).await;
    t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    a_quota_exceeded_answer_from_the_api_interrupts_the_run_until_the_reset
);
async fn a_quota_exceeded_answer_from_the_api_interrupts_the_run_until_the_reset(engine: Engine) {
    let t = TestApi::start_on(engine).await;
    seed(&t, 300);
    let mirror = mirror_for(&t, paging(100));
    t.sandbox
        .admin()
        .inject_fault(FaultSpec::quota_exceeded().path_prefix("/v3/contacts"))
        .expect("a fault");

    let stopped = run(&mirror, Resource::Contacts, Mode::Full).await;
    assert_eq!(stopped.outcome, RunOutcome::Interrupted, "{stopped:?}");
    assert!(stopped.resets_at.is_some(), "{stopped:?}");
    assert!(
        stopped
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("quota"),
        "{stopped:?}"
    );

    t.advance_clocks(Duration::from_secs(24 * 3600));
    let resumed = run(&mirror, Resource::Contacts, Mode::Full).await;
    assert_eq!(resumed.outcome, RunOutcome::Succeeded, "{resumed:?}");
    assert_contacts_equal_sandbox(&t).await;
    t.stop().await;
}
