//! A result the broker returns (its `reply_to` queue is gone) is logged without its body:
//! lapin would log the whole returned message, contact e-mail address included, at WARN.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ctct_sync::command::outcome::Outcome;
use serde_json::json;
use tracing::Level;

use crate::capture::capture;
use crate::support::daemon::{TestDaemon, json_properties};
use crate::support::eventually::eventually;

const ADDRESS: &str = "returned.reply@example.com";

/// The address as a `Vec<u8>` Debug print shows it: `114, 101, 116, …`.
fn as_byte_list(text: &str) -> String {
    text.bytes()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test]
async fn a_result_returned_from_a_reply_to_queue_that_is_gone_is_logged_without_its_body() {
    let capture = capture().await;
    let mut d = TestDaemon::start().await;
    d.publish("create", "contact.create", json!({"email": ADDRESS}))
        .await;
    assert_eq!(d.result("create").await.outcome, Outcome::Succeeded);

    let gone = format!("ctct.reply.t-gone-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"id": "get", "type": "contact.get", "data": {"email": ADDRESS}});
    d.publish_body(
        &serde_json::to_vec(&body).unwrap(),
        json_properties().with_reply_to(gone.as_str().into()),
    )
    .await;
    let result = d.result("get").await;
    assert!(
        serde_json::to_string(&result).unwrap().contains(ADDRESS),
        "the returned result carries the address: {result:?}"
    );
    // Wait until the broker returned the reply and the daemon kept it.
    eventually(
        Duration::from_secs(30),
        "the reply returned by the broker",
        async || d.processor().stats.unrouted_replies.load(Ordering::Relaxed) > 0,
    )
    .await;

    let warnings = capture.records_at(Level::WARN).join("\n");
    assert!(
        warnings.contains("kept in the unrouted queue") && warnings.contains(&gone),
        "one line says where the reply was going and where it is kept:\n{warnings}"
    );
    let bytes = as_byte_list(ADDRESS);
    for level in [Level::INFO, Level::WARN, Level::ERROR] {
        for record in capture.records_at(level) {
            assert!(
                !record.contains(ADDRESS),
                "{ADDRESS} shows at {level}: {record}"
            );
            assert!(
                !record.contains(&bytes),
                "the body's bytes show at {level}: {record}"
            );
            assert!(
                !record.contains("returned us a message"),
                "lapin's dump shows at {level}: {record}"
            );
        }
    }
    d.stop().await;
}
