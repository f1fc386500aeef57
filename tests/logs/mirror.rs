//! A mirror run writes its lines inside one span naming the run.

use ctct_sandbox::FaultSpec;
use ctct_sync::mirror::{ContactsPath, Mirror, MirrorOptions, Mode, Resource, RunOutcome, Trigger};
use tracing::Level;

use crate::capture::capture;
use crate::support::api::TestApi;

#[tokio::test]
async fn every_line_of_a_mirror_run_names_its_account_resource_and_mode() {
    let capture = capture().await;
    let t = TestApi::start().await;
    let admin = t.sandbox.admin();
    admin
        .seed(&admin.primary_account(), 300, 7)
        .expect("seeded");
    // The export fails, so the run warns and goes on by pages.
    admin
        .inject_fault(
            FaultSpec::status(500)
                .times(1)
                .path_prefix("/v3/activities/contact_exports"),
        )
        .expect("a fault");
    let mirror = Mirror::new(
        t.mirror_db(),
        t.client.clone(),
        t.clock.clone(),
        MirrorOptions {
            contacts_path: ContactsPath::Export,
            ..MirrorOptions::default()
        },
    );
    let summary = mirror
        .run_once("default", Resource::Contacts, Mode::Full, Trigger::Cli)
        .await;
    assert_eq!(summary.outcome, RunOutcome::Succeeded, "{summary:?}");

    let warnings = capture.records_at(Level::WARN);
    let fallback = warnings
        .iter()
        .find(|line| line.contains("mirroring by pages instead"))
        .unwrap_or_else(|| panic!("no fallback warning in {warnings:#?}"));
    for field in [
        "mirror_run{",
        "account=\"default\"",
        "resource=\"contacts\"",
        "mode=\"full\"",
    ] {
        assert!(fallback.contains(field), "{field} missing from: {fallback}");
    }
    t.stop().await;
}
