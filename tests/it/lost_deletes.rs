//! A delete whose answer was lost on its way back (the resource is gone, the connection
//! dropped) succeeds with `already_deleted: true` when the command is tried again — for
//! custom fields and tags as for lists (tests/it/lists.rs). The API client does not resend
//! such a DELETE itself: a second DELETE in the same attempt would meet a 404 that the
//! command cannot tell from an unknown id, and the command would fail `not_found`. (A
//! contact's DELETE is a soft delete that the API answers 204 again: resending it is safe.)

use serde_json::{Value, json};

use crate::support::daemon::TestDaemon;

/// Deletes through `command_type` with `data` while the answer to the first DELETE under
/// `prefix` is dropped after the sandbox applied it: the command succeeds as already
/// deleted, the sandbox deleted the resource once (effect `effect`) and saw two DELETEs.
async fn lost_answer(
    d: &mut TestDaemon,
    id: &str,
    command_type: &str,
    data: Value,
    prefix: &str,
    effect: &str,
    resource_id: &str,
) {
    let admin = d.api.sandbox.admin();
    admin
        .inject_fault(
            ctct_sandbox::FaultSpec::drop_connection()
                .method("DELETE")
                .path_prefix(prefix)
                .after_effect()
                .times(1),
        )
        .expect("a fault");
    let deleted = d.succeeded(id, command_type, data).await;
    assert_eq!(
        deleted["already_deleted"], true,
        "{command_type}: {deleted}"
    );
    let gone = admin
        .effects()
        .into_iter()
        .filter(|e| e.kind == effect && e.resource_id.as_deref() == Some(resource_id))
        .count();
    assert_eq!(gone, 1, "{command_type}: deleted once");
    let deletes = admin
        .request_log()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.starts_with(prefix))
        .count();
    assert_eq!(
        deletes, 2,
        "{command_type}: the command's retry deleted again and met the 404"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_field_delete_whose_answer_was_lost_succeeds_as_already_deleted() {
    let mut d = TestDaemon::start().await;
    let created = d
        .succeeded(
            "lost-field-create",
            "custom_field.create",
            json!({"label": "Lost answer", "type": "string"}),
        )
        .await;
    let field_id = created["custom_field_id"]
        .as_str()
        .expect("custom_field_id")
        .to_owned();
    lost_answer(
        &mut d,
        "lost-field-delete",
        "custom_field.delete",
        json!({"custom_field_id": field_id}),
        "/v3/contact_custom_fields/",
        "custom_field.deleted",
        &field_id,
    )
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_delete_whose_answer_was_lost_succeeds_as_already_deleted() {
    let mut d = TestDaemon::start().await;
    let created = d
        .succeeded(
            "lost-tag-create",
            "tag.create",
            json!({"name": "Lost answer"}),
        )
        .await;
    let tag_id = created["tag_id"].as_str().expect("tag_id").to_owned();
    lost_answer(
        &mut d,
        "lost-tag-delete",
        "tag.delete",
        json!({"tag_id": tag_id}),
        "/v3/contact_tags/",
        "tag.deleted",
        &tag_id,
    )
    .await;
    d.stop().await;
}
