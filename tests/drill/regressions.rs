//! Defects the drill found, each pinned by a test that does not need the broker (the drill
//! restarts RabbitMQ while these run beside it), or by a step of the drill itself.

use std::sync::Arc;

use chrono::Utc;
use ctct_sandbox::FaultSpec;
use ctct_sync::api::model::account::AccountEmailFilter;
use ctct_sync::command::{Command, Envelope};
use ctct_sync::handler::{Attempt, HandleError, Handler};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::run::Drill;
use crate::support::api::TestApi;

fn command(command_type: &str, data: Value) -> Command {
    let envelope = Envelope {
        id: "unused".into(),
        command_type: command_type.into(),
        account: "default".into(),
        data: data.as_object().cloned().expect("an object"),
    };
    Command::parse(&envelope, Utc::now()).expect("a valid command")
}

fn attempt(id: &str, number: u32) -> Attempt {
    Attempt {
        command_id: id.into(),
        account: "default".into(),
        number,
        effect_ref: None,
        fence: None,
    }
}

/// Drill finding: after an attempt whose answer was lost, `campaign.create` found its
/// campaign through the list of campaigns, which leaves out `campaign_activities`, and so
/// failed with `no_primary_email` instead of setting the recipients.
#[tokio::test]
async fn a_campaign_create_whose_answer_was_lost_finds_its_campaign_and_sets_its_recipients() {
    let t = TestApi::start().await;
    let handler = Handler::new(
        t.client.clone(),
        t.store.clone(),
        t.clock.clone() as Arc<dyn ctct_sync::clock::Clock>,
    );
    let owner = t
        .api()
        .list_account_emails(&AccountEmailFilter::Confirmed)
        .await
        .expect("the account's e-mails")[0]
        .email_address
        .clone();
    let list = handler
        .handle(
            &attempt("list", 1),
            &command("list.create", json!({"name": "Lost answers"})),
        )
        .await
        .expect("a list")["list_id"]
        .as_str()
        .expect("a list id")
        .to_owned();
    t.store
        .call(|conn| {
            ctct_sync::store::ledger::begin(
                conn,
                "default",
                "lost",
                "campaign.create",
                "drill-fingerprint",
                ctct_sync::store::ledger::Claim {
                    owner: "a-process-that-died",
                    lease: std::time::Duration::ZERO,
                },
                Utc::now(),
            )
        })
        .await
        .expect("the ledger records the arrival");
    t.sandbox
        .admin()
        .inject_fault(
            FaultSpec::drop_connection()
                .method("POST")
                .path_prefix("/v3/emails")
                .after_effect()
                .times(1),
        )
        .expect("a valid fault");
    let create = command(
        "campaign.create",
        json!({"name": "Lost answer", "subject": "s", "from_name": "n", "from_email": owner,
            "reply_to_email": owner, "html_content": "<html><body>x</body></html>",
            "list_ids": [list]}),
    );
    let first = handler.handle(&attempt("lost", 1), &create).await;
    assert!(matches!(first, Err(HandleError::Transient(_))), "{first:?}");

    let second = handler
        .handle(&attempt("lost", 2), &create)
        .await
        .unwrap_or_else(|e| panic!("the retry failed: {e:?}"));
    let activity = second["campaign_activity_id"]
        .as_str()
        .expect("the primary e-mail is named")
        .to_owned();
    let admin = t.sandbox.admin();
    let effects = admin.effects_for_command("lost");
    assert_eq!(
        effects
            .iter()
            .filter(|e| e.kind == "campaign.created")
            .count(),
        1,
        "one campaign"
    );
    let snapshot = admin
        .snapshot(&admin.primary_account())
        .expect("a snapshot");
    let primary = snapshot
        .campaign_activities
        .iter()
        .find(|a| a["campaign_activity_id"] == activity.as_str())
        .expect("the primary e-mail");
    assert_eq!(primary["contact_list_ids"], json!([list]));
    t.stop().await;
}

/// Drill finding: `ctct-sync auth import` gave up at once when the token endpoint answered
/// `slow_down` (one request a second per client, shared with the daemon's refreshes),
/// although the refresh token had not been spent.
#[tokio::test]
async fn importing_a_refresh_token_waits_out_a_slow_down_from_the_token_endpoint() {
    let t = TestApi::start_limited(4, 10_000).await;
    let admin = t.sandbox.admin();
    let fresh = admin
        .issue_refresh_token(&admin.primary_account())
        .expect("a fresh grant");
    let credentials = t.sandbox.credentials().clone();
    // Another process's token request takes this second's slot.
    let http = reqwest::Client::new();
    loop {
        let status = http
            .post(&credentials.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(format!(
                "grant_type=refresh_token&refresh_token=not-a-token&client_id={}",
                credentials.client_id
            ))
            .send()
            .await
            .expect("the token endpoint answers")
            .status();
        if status != reqwest::StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let since = admin.request_log().last().map_or(0, |r| r.seq);

    t.client
        .tokens()
        .import_refresh_token("default", SecretString::from(fresh))
        .await
        .expect("the import waits and succeeds");
    let answers: Vec<u16> = admin
        .requests_since(since, usize::MAX)
        .iter()
        .filter(|r| r.path.starts_with("/oauth2/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(
        answers.first(),
        Some(&429),
        "told to slow down first: {answers:?}"
    );
    assert_eq!(answers.last(), Some(&200), "{answers:?}");
    t.stop().await;
}

impl Drill {
    /// Drill finding: a broken message (here: not JSON) that came back after its verdict was
    /// stored (the daemon killed, the broker gone, a publish refused) was judged again: a
    /// second result not marked replayed, and another dead letter. Made certain here: the
    /// dead-letter exchange loses its queues, so the dead letter is refused after the result went
    /// out, and the message comes back once the daemon has declared its queues again.
    /// Expected: one result, one replay, one dead letter.
    pub async fn a_broken_message_that_comes_back_is_answered_from_the_ledger(&mut self) {
        let id = "drill-regression-broken";
        let topology = self.d.pipeline_settings.topology.clone();
        let dead = topology.dead_letter_queue.clone();
        // The daemon has declared its topology (and would bind the queues again) once it
        // consumes both the commands and the dead-letter watch queue.
        // Every replica: one that declares its topology after the unbinding below would bind
        // the queues again. (The commands queue counts only its active consumer; the watch
        // queue counts each replica's.)
        let replicas = self.ha.as_ref().map_or(1, |ha| ha.options.replicas) as u32;
        let ready = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.link.consumers(&topology.commands_queue).await == 0
            || self.link.consumers(&topology.dead_letter_watch_queue).await < replicas
        {
            assert!(
                tokio::time::Instant::now() < ready,
                "the daemon never consumed its queues"
            );
            self.absorb(std::time::Duration::from_millis(50)).await;
        }
        // Neither queue on the dead-letter exchange takes the dead letter: both are unbound
        // (deleting them would cancel the daemon's consumer of the watch queue, and the
        // session rebuilt for that would bind them again before the message arrives).
        for queue in [
            &topology.dead_letter_queue,
            &topology.dead_letter_watch_queue,
        ] {
            self.link
                .unbind(queue, &topology.dead_letter_exchange)
                .await;
        }
        let properties = crate::support::daemon::json_properties()
            .with_message_id(id.into())
            .with_correlation_id(id.into());
        self.link
            .publish(
                br#"{"id":"drill-regression-broken","type":"list.list","#,
                &properties,
            )
            .await;
        let count = |drill: &Drill, replayed: bool| {
            drill
                .link
                .received
                .iter()
                .filter(|r| r.command_id == id && r.replayed == replayed)
                .count()
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while count(self, false) < 2
            && (count(self, true) == 0 || self.link.depth(&dead).await == 0)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no replay or dead letter: {} results, {} replays",
                count(self, false),
                count(self, true)
            );
            self.absorb(std::time::Duration::from_millis(100)).await;
        }
        self.absorb(std::time::Duration::from_millis(500)).await;
        // Each replica meets the unbound queues once: the first to fail declares the
        // topology again when it reconnects, and the redelivery may reach another replica
        // before that (one replay per replica at most).
        let replicas = replicas as usize;
        let (fresh, replays) = (count(self, false), count(self, true));
        assert!(
            fresh == 1 && (1..=replicas).contains(&replays),
            "one result and its replay (one per replica at most): {fresh} results, {replays} replays"
        );
        assert_eq!(self.link.dead_letter_ids().await, vec![id.to_owned()]);
    }
}

/// Drill finding (two token revocations in one daemon's life): an account authorised again
/// by another process (`ctct-sync auth import` beside the running daemon) was never seen as
/// authorised by the daemon, so its next loss went unannounced (`account.reauth_required`
/// comes once per loss).
#[tokio::test]
async fn an_account_authorised_again_elsewhere_is_reported_authorised_when_next_used() {
    use ctct_sync::api::AuthEvent;
    let t = TestApi::start().await;
    let admin = t.sandbox.admin();
    let account = admin.primary_account();
    let mut events = t.client.tokens().subscribe();
    admin.revoke_tokens(&account).expect("revoked");
    t.advance_clocks(std::time::Duration::from_secs(25 * 3600));
    t.client
        .tokens()
        .access_token("default")
        .await
        .expect_err("the grant is gone");
    assert!(matches!(
        events.try_recv(),
        Ok(AuthEvent::ReauthRequired { .. })
    ));

    let fresh = admin.issue_refresh_token(&account).expect("a fresh grant");
    t.another_process()
        .tokens()
        .import_refresh_token("default", SecretString::from(fresh))
        .await
        .expect("imported by another process");
    t.client
        .tokens()
        .access_token("default")
        .await
        .expect("usable again");
    assert_eq!(
        events.try_recv().ok(),
        Some(AuthEvent::Authorised {
            account: "default".into()
        })
    );
    t.stop().await;
}
