//! What the daemon logs while it processes commands: each line names its command, and
//! e-mail addresses show only at debug level and below.

use ctct_sandbox::FaultSpec;
use ctct_sync::command::outcome::Outcome;
use serde_json::json;
use tracing::Level;

use crate::capture::capture;
use crate::support::daemon::TestDaemon;

#[tokio::test]
async fn log_lines_written_while_a_command_is_processed_name_the_command() {
    let capture = capture().await;
    let mut d = TestDaemon::start().await;
    d.api
        .sandbox
        .admin()
        .inject_fault(
            FaultSpec::status(503)
                .method("GET")
                .path_prefix("/v3/contact_lists")
                .times(3),
        )
        .unwrap();
    let properties =
        crate::support::daemon::json_properties().with_correlation_id("corr-log".into());
    d.publish_body(
        br#"{"id":"span-1","type":"list.list","account":"default"}"#,
        properties,
    )
    .await;
    assert_eq!(d.result("span-1").await.outcome, Outcome::Succeeded);
    let mut records = capture.records_at(Level::INFO);
    records.extend(capture.records_at(Level::WARN));
    let logs = records.join("\n");
    let retried = logs
        .lines()
        .find(|l| l.contains("transient failure; retrying later"))
        .unwrap_or_else(|| panic!("no retry line in:\n{logs}"));
    for field in [
        "command_id=span-1",
        "command_type=list.list",
        "account=default",
        "correlation_id=corr-log",
    ] {
        assert!(retried.contains(field), "{field} missing from: {retried}");
    }
    d.stop().await;
}

/// Every address the commands below carry; none may show in a line above debug level.
const ADDRESSES: [&str; 6] = [
    "audit.create@example.com",
    "audit.upsert@example.com",
    "audit.signup@example.com",
    "audit.qa@example.com",
    "audit.ops@example.com",
    "audit bad@example",
];

#[tokio::test]
async fn e_mail_addresses_show_only_at_debug_level_and_below() {
    let capture = capture().await;
    let mut d = TestDaemon::start().await;
    let from = d
        .api
        .api()
        .list_account_emails(&ctct_sync::api::model::account::AccountEmailFilter::Confirmed)
        .await
        .unwrap()[0]
        .email_address
        .clone();
    // Retries and a conflict make the daemon log warnings about these very commands.
    d.api
        .sandbox
        .admin()
        .inject_fault(
            FaultSpec::status(503)
                .method("POST")
                .path_prefix("/v3/contacts")
                .times(2),
        )
        .unwrap();
    d.publish("list", "list.create", json!({"name": "Audit list"}))
        .await;
    let list = d.result("list").await.data.unwrap()["list_id"]
        .as_str()
        .unwrap()
        .to_owned();
    d.publish(
        "campaign",
        "campaign.create",
        json!({"name": "Audit", "subject": "s",
        "from_name": "n", "from_email": from, "reply_to_email": from,
        "html_content": "<html><body>x</body></html>", "list_ids": [list]}),
    )
    .await;
    let campaign = d.result("campaign").await.data.unwrap()["campaign_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let commands = [
        ("create", "contact.create", json!({"email": ADDRESSES[0]})),
        (
            "create-again",
            "contact.create",
            json!({"email": ADDRESSES[0]}),
        ),
        (
            "upsert",
            "contact.upsert",
            json!({"email": ADDRESSES[1], "first_name": "A", "list_ids": [list]}),
        ),
        (
            "sign-up",
            "contact.sign_up",
            json!({"email": ADDRESSES[2], "list_ids": [list]}),
        ),
        ("get", "contact.get", json!({"email": ADDRESSES[1]})),
        (
            "update",
            "contact.update",
            json!({"email": ADDRESSES[2], "last_name": "B"}),
        ),
        (
            "test-send",
            "campaign.send_test",
            json!({"campaign_id": campaign, "email_addresses": [ADDRESSES[3]]}),
        ),
        (
            "add-email",
            "account.email.add",
            json!({"email_address": ADDRESSES[4]}),
        ),
        ("bad", "contact.upsert", json!({"email": ADDRESSES[5]})),
        ("delete", "contact.delete", json!({"email": ADDRESSES[0]})),
    ];
    for (id, command_type, data) in commands {
        d.publish(id, command_type, data).await;
        d.result(id).await;
    }
    assert_eq!(d.result("upsert").await.outcome, Outcome::Succeeded);
    assert_eq!(d.result("bad").await.outcome, Outcome::Rejected);

    let debug = capture.records_at(Level::DEBUG).join("\n");
    assert!(
        debug.contains("command_id=upsert"),
        "the capture holds the debug lines of the run"
    );
    for level in [Level::INFO, Level::WARN, Level::ERROR] {
        for record in capture.records_at(level) {
            let lower = record.to_lowercase();
            for address in ADDRESSES {
                assert!(
                    !lower.contains(address),
                    "{address} shows at {level}: {record}"
                );
            }
        }
    }
    d.stop().await;
}
