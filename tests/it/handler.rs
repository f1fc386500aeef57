//! The handler against the sandbox: every command type applied (and its main failure), and
//! the rules that make a second attempt safe.

use std::sync::Arc;

use chrono::Utc;
use ctct_sync::api::model::account::AccountEmailFilter;
use ctct_sync::command::{Command, Envelope};
use ctct_sync::handler::{Attempt, HandleError, Handler};
use serde_json::{Value, json};

use crate::support::api::TestApi;
use crate::support::engine::Engine;

struct Fixture {
    t: TestApi,
    handler: Handler,
    owner: String,
}

async fn fixture(engine: Engine) -> Fixture {
    let t = TestApi::start_on(engine).await;
    let handler = Handler::new(
        t.client.clone(),
        t.store.clone(),
        t.clock.clone() as Arc<dyn ctct_sync::clock::Clock>,
    );
    let owner = t
        .api()
        .list_account_emails(&AccountEmailFilter::Confirmed)
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("the sandbox has a confirmed account e-mail")
        .email_address;
    Fixture { t, handler, owner }
}

fn command(command_type: &str, data: Value) -> Command {
    let envelope = Envelope {
        id: "unused".into(),
        command_type: command_type.into(),
        account: "default".into(),
        data: data.as_object().cloned().unwrap(),
    };
    Command::parse(&envelope, Utc::now()).unwrap_or_else(|e| panic!("{command_type}: {e}"))
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

impl Fixture {
    async fn run(&self, id: &str, command_type: &str, data: Value) -> Result<Value, HandleError> {
        self.handler
            .handle(&attempt(id, 1), &command(command_type, data))
            .await
    }

    async fn ok(&self, id: &str, command_type: &str, data: Value) -> Value {
        self.run(id, command_type, data)
            .await
            .unwrap_or_else(|e| panic!("{command_type} failed: {e:?}"))
    }

    /// Records the command's arrival in the ledger, as the pipeline does before handling.
    async fn begin(&self, id: &str) {
        self.begin_at(id, Utc::now()).await;
    }

    async fn begin_at(&self, id: &str, at: chrono::DateTime<Utc>) {
        self.t
            .store
            .ledger_begin(
                "default",
                id,
                "campaign.create",
                "seeded",
                ctct_sync::store::ledger::Claim {
                    owner: "a-process-that-died",
                    lease: std::time::Duration::ZERO,
                },
                at,
            )
            .await
            .unwrap();
    }

    fn effects(&self, id: &str) -> Vec<String> {
        self.t
            .sandbox
            .admin()
            .effects_for_command(id)
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    async fn new_list(&self, name: &str) -> String {
        self.ok(
            &format!("list-{name}"),
            "list.create",
            json!({"name": name}),
        )
        .await["list_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn new_campaign(&self, name: &str, lists: Option<Vec<String>>) -> Value {
        let mut data = json!({
            "name": name, "subject": "Hello", "from_name": "Acme", "from_email": self.owner,
            "reply_to_email": self.owner, "html_content": "<html><body>[[trackingImage]] Hi</body></html>",
        });
        if let Some(lists) = lists {
            data["list_ids"] = json!(lists);
        }
        self.ok(&format!("campaign-{name}"), "campaign.create", data)
            .await
    }
}

crate::both_engines!(
    #[tokio::test]
    contacts_are_created_upserted_updated_read_signed_up_and_deleted
);
async fn contacts_are_created_upserted_updated_read_signed_up_and_deleted(engine: Engine) {
    let f = fixture(engine).await;
    f.ok(
        "cf",
        "custom_field.create",
        json!({"label": "Hobby", "type": "string"}),
    )
    .await;
    let list = f.new_list("Members").await;

    let created = f
        .ok("c1", "contact.create", json!({"email": "pat@example.com", "first_name": "Pat", "job_title": "Chef",
                                             "custom_fields": {"Hobby": "Skiing"}, "list_ids": [list]}))
        .await;
    assert_eq!(created["already_existed"], false);
    let id = created["contact_id"].as_str().unwrap().to_owned();

    // Upsert keeps what it is not told about and adds lists.
    let upserted = f
        .ok(
            "c2",
            "contact.upsert",
            json!({"email": "pat@example.com", "last_name": "Lee"}),
        )
        .await;
    assert_eq!(upserted["action"], "updated");
    let contact = &upserted["contact"];
    assert_eq!(
        (
            contact["first_name"].as_str(),
            contact["last_name"].as_str()
        ),
        (Some("Pat"), Some("Lee"))
    );
    assert_eq!(
        contact["job_title"], "Chef",
        "PUT replaces, so the handler merged"
    );
    assert_eq!(contact["custom_fields"][0]["value"], "Skiing");

    // The same upsert again changes nothing and spends no write.
    let again = f
        .ok(
            "c3",
            "contact.upsert",
            json!({"email": "pat@example.com", "last_name": "Lee"}),
        )
        .await;
    assert_eq!(again["action"], "unchanged");
    assert!(f.effects("c3").is_empty(), "{:?}", f.effects("c3"));

    // Update clears with null and replaces lists.
    let updated = f
        .ok("c4", "contact.update", json!({"contact_id": id, "job_title": null, "list_ids": [], "custom_fields": {"Hobby": null}}))
        .await;
    let contact = &updated["contact"];
    assert!(contact.get("job_title").is_none(), "{contact}");
    assert_eq!(contact["first_name"], "Pat");

    let got = f
        .ok("c5", "contact.get", json!({"email": "PAT@example.com"}))
        .await;
    assert_eq!(got["contact_id"], id.as_str());

    let signed = f
        .ok(
            "c6",
            "contact.sign_up",
            json!({"email": "new@example.com", "list_ids": [list]}),
        )
        .await;
    assert_eq!(signed["action"], "created");

    let deleted = f
        .ok("c7", "contact.delete", json!({"contact_id": id}))
        .await;
    assert_eq!(deleted["already_deleted"], false);
    let again = f
        .ok("c8", "contact.delete", json!({"email": "pat@example.com"}))
        .await;
    assert_eq!(again["already_deleted"], true);

    // Upserting a deleted contact revives it.
    let revived = f
        .ok(
            "c9",
            "contact.upsert",
            json!({"email": "pat@example.com", "first_name": "Pat"}),
        )
        .await;
    assert_eq!(revived["action"], "revived");
    f.t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    creating_an_existing_contact_answers_with_the_existing_id
);
async fn creating_an_existing_contact_answers_with_the_existing_id(engine: Engine) {
    let f = fixture(engine).await;
    let first = f
        .ok("a", "contact.create", json!({"email": "dup@example.com"}))
        .await;
    let second = f
        .ok("b", "contact.create", json!({"email": "dup@example.com"}))
        .await;
    assert_eq!(second["already_existed"], true);
    assert_eq!(second["contact_id"], first["contact_id"]);
    f.t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    a_create_whose_answer_was_lost_is_not_made_twice
);
async fn a_create_whose_answer_was_lost_is_not_made_twice(engine: Engine) {
    let f = fixture(engine).await;
    f.t.sandbox
        .admin()
        .inject_fault(
            ctct_sandbox::FaultSpec::drop_connection()
                .method("POST")
                .path_prefix("/v3/contacts")
                .after_effect()
                .times(1),
        )
        .unwrap();
    let cmd = command("contact.create", json!({"email": "lost@example.com"}));
    let first = f
        .handler
        .handle(&attempt("lost", 1), &cmd)
        .await
        .unwrap_err();
    assert!(matches!(first, HandleError::Transient(_)), "{first:?}");
    let second = f
        .handler
        .handle(&attempt("lost", 2), &cmd)
        .await
        .expect("the retry finds it");
    assert!(second["contact_id"].is_string());
    let creates = f
        .effects("lost")
        .iter()
        .filter(|k| *k == "contact.created")
        .count();
    assert_eq!(creates, 1, "one contact, whatever the attempts");
    f.t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    main_failures_are_told_apart
);
async fn main_failures_are_told_apart(engine: Engine) {
    let f = fixture(engine).await;
    let missing = f
        .run(
            "m1",
            "contact.get",
            json!({"contact_id": "0b2f2a4e-0000-4000-8000-000000000000"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&missing, HandleError::Failed(e) if e.code == "not_found"),
        "{missing:?}"
    );

    let unknown_field = f
        .run(
            "m2",
            "contact.upsert",
            json!({"email": "a@example.com", "custom_fields": {"no_such_field": "x"}}),
        )
        .await
        .unwrap_err();
    let HandleError::Rejected(rejection) = unknown_field else {
        panic!("expected a rejection, got {unknown_field:?}");
    };
    assert_eq!(
        rejection.fields[0].field,
        "data.custom_fields.no_such_field"
    );

    let unconfirmed = f
        .run(
            "m3",
            "campaign.create",
            json!({"name": "Nope", "subject": "s", "from_name": "n",
               "from_email": "stranger@example.com", "reply_to_email": "stranger@example.com",
               "html_content": "<html><body>x</body></html>"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(unconfirmed, HandleError::Rejected(ref r) if r.code == "api_validation"),
        "{unconfirmed:?}"
    );

    let other_account = f
        .handler
        .handle(
            &Attempt {
                account: "nobody".into(),
                ..attempt("m4", 1)
            },
            &command("list.list", json!({})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(other_account, HandleError::Rejected(ref r) if r.code == "account_not_authorised")
    );
    f.t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    custom_fields_lists_and_account_commands_apply
);
async fn custom_fields_lists_and_account_commands_apply(engine: Engine) {
    let f = fixture(engine).await;
    let created = f
        .ok(
            "f1",
            "custom_field.create",
            json!({"label": "Shoe size", "type": "string"}),
        )
        .await;
    let field_id = created["custom_field_id"].as_str().unwrap().to_owned();
    let duplicate = f
        .ok(
            "f2",
            "custom_field.create",
            json!({"label": "Shoe size", "type": "string"}),
        )
        .await;
    assert_eq!(
        (
            duplicate["already_existed"].as_bool(),
            duplicate["custom_field_id"].as_str()
        ),
        (Some(true), Some(field_id.as_str()))
    );
    let renamed = f
        .ok(
            "f3",
            "custom_field.update",
            json!({"custom_field_id": field_id, "label": "Shoe"}),
        )
        .await;
    assert_eq!(renamed["custom_field"]["label"], "Shoe");
    let listed = f.ok("f4", "custom_field.list", json!({})).await;
    assert!(listed["count"].as_u64().unwrap() >= 1);
    f.ok(
        "f5",
        "custom_field.delete",
        json!({"custom_field_id": field_id}),
    )
    .await;

    let list = f
        .ok(
            "l1",
            "list.create",
            json!({"name": "VIP club", "description": "Best"}),
        )
        .await;
    assert_eq!(list["already_existed"], false);
    let again = f.ok("l2", "list.create", json!({"name": "VIP club"})).await;
    assert_eq!(
        (again["already_existed"].as_bool(), &again["list_id"]),
        (Some(true), &list["list_id"])
    );
    assert!(
        f.ok("l3", "list.list", json!({})).await["count"]
            .as_u64()
            .unwrap()
            >= 1
    );

    let emails = f
        .ok(
            "a1",
            "account.emails.list",
            json!({"confirm_status": "CONFIRMED"}),
        )
        .await;
    assert!(emails["count"].as_u64().unwrap() >= 1);
    let added = f
        .ok(
            "a2",
            "account.email.add",
            json!({"email_address": "ops@acme.example"}),
        )
        .await;
    assert_eq!(added["already_existed"], false);
    let twice = f
        .ok(
            "a3",
            "account.email.add",
            json!({"email_address": "ops@acme.example"}),
        )
        .await;
    assert_eq!(twice["already_existed"], true);
    assert!(
        f.ok("a4", "account.privileges.get", json!({})).await["count"]
            .as_u64()
            .unwrap()
            >= 1
    );
    f.t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    campaigns_are_created_updated_scheduled_unscheduled_and_tested
);
async fn campaigns_are_created_updated_scheduled_unscheduled_and_tested(engine: Engine) {
    let f = fixture(engine).await;
    let list = f.new_list("Readers").await;
    let created = f
        .new_campaign("Winter news", Some(vec![list.clone()]))
        .await;
    let id = created["campaign_id"].as_str().unwrap().to_owned();

    let updated = f
        .ok(
            "u",
            "campaign.update",
            json!({"campaign_id": id, "name": "Winter news 2", "subject": "Brr"}),
        )
        .await;
    assert_eq!(updated["campaign"]["name"], "Winter news 2");
    assert_eq!(updated["primary_email"]["subject"], "Brr");
    assert_eq!(
        updated["primary_email"]["contact_list_ids"][0],
        list.as_str(),
        "recipients kept by the PUT"
    );

    let got = f.ok("g", "campaign.get", json!({"campaign_id": id})).await;
    assert_eq!(got["campaign"]["current_status"], "Draft");
    assert!(
        f.ok("l", "campaign.list", json!({"limit": 5})).await["count"]
            .as_u64()
            .unwrap()
            >= 1
    );

    let at = (Utc::now() + chrono::Duration::days(3))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let scheduled = f
        .ok(
            "s1",
            "campaign.schedule",
            json!({"campaign_id": id, "scheduled_at": at}),
        )
        .await;
    assert_eq!(scheduled["already_scheduled"], false);
    let again = f
        .ok(
            "s2",
            "campaign.schedule",
            json!({"campaign_id": id, "scheduled_at": at}),
        )
        .await;
    assert_eq!(
        again["already_scheduled"], true,
        "the same schedule is not made twice"
    );
    assert!(f.effects("s2").is_empty());

    let unscheduled = f
        .ok("x1", "campaign.unschedule", json!({"campaign_id": id}))
        .await;
    assert_eq!(unscheduled["was_scheduled"], true);
    let noop = f
        .ok("x2", "campaign.unschedule", json!({"campaign_id": id}))
        .await;
    assert_eq!(noop["was_scheduled"], false);

    let tested = f
        .ok(
            "t",
            "campaign.send_test",
            json!({"campaign_id": id, "email_addresses": ["qa@acme.example"]}),
        )
        .await;
    assert_eq!(tested["recipients"], 1);

    let now = f
        .ok(
            "n",
            "campaign.schedule",
            json!({"campaign_id": id, "scheduled_at": "now"}),
        )
        .await;
    assert_eq!(now["scheduled_at"], "now");
    f.t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    a_sent_campaign_s_report_equals_the_sandbox_s_and_an_unsent_one_is_not_found
);
async fn a_sent_campaign_s_report_equals_the_sandbox_s_and_an_unsent_one_is_not_found(
    engine: Engine,
) {
    let f = fixture(engine).await;
    let admin = f.t.sandbox.admin();
    let account = admin.primary_account();
    admin.seed(&account, 80, 11).expect("seeded");
    let [seeded] = &admin.campaign_reports(&account).expect("reports")[..] else {
        panic!("one seeded sent campaign");
    };
    let lists = f
        .ok(
            "seeded",
            "campaign.get",
            json!({"campaign_id": seeded.campaign_id}),
        )
        .await["primary_email"]["contact_list_ids"]
        .clone();
    let owner = f
        .ok(
            "owner",
            "account.emails.list",
            json!({"confirm_status": "CONFIRMED"}),
        )
        .await["account_emails"][0]["email_address"]
        .clone();
    let campaign = |name: &str| {
        json!({
            "name": name, "subject": "Hello", "from_name": "Acme", "from_email": owner,
            "reply_to_email": owner, "list_ids": lists,
            "html_content": "<html><body>[[trackingImage]]<a href=\"https://example.com/a\">a</a></body></html>",
        })
    };
    let sent = f.ok("c1", "campaign.create", campaign("Sent")).await["campaign_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let draft = f.ok("c2", "campaign.create", campaign("Draft")).await["campaign_id"]
        .as_str()
        .unwrap()
        .to_owned();
    f.ok(
        "s",
        "campaign.schedule",
        json!({"campaign_id": sent, "scheduled_at": "now"}),
    )
    .await;
    admin.complete_activities_now();
    // Opens and clicks arrive within hours of a send.
    f.t.advance_clocks(std::time::Duration::from_secs(7 * 3600));

    let report = f
        .ok("r1", "report.campaign.get", json!({"campaign_id": sent}))
        .await;
    let sandbox = admin.campaign_reports(&account).expect("reports");
    let own = sandbox
        .iter()
        .find(|r| r.campaign_id == sent)
        .expect("the sandbox reports the sent campaign");
    assert_eq!(report["campaign_id"], sent.as_str());
    assert!(report["last_refresh_time"].is_string(), "{report:#}");
    let stats = report["stats"].as_object().expect("stats");
    assert_eq!(stats.len(), 19, "every count, always: {report:#}");
    let want = |name: &str| own.stats[format!("em_{name}")].as_i64().expect(name);
    for (name, got) in stats {
        assert_eq!(got.as_i64(), Some(want(name)), "stats.{name}");
    }
    assert!(
        want("sends") > 0 && want("opens") > 0 && want("clicks") > 0 && want("bounces") > 0,
        "the comparison covers engagement: {}",
        own.stats
    );
    // The percentages, as the documentation defines them (one decimal).
    let percent = |part: i64, whole: i64| {
        if whole == 0 {
            0.0
        } else {
            (part as f64 * 1000.0 / whole as f64).round() / 10.0
        }
    };
    let delivered = want("sends") - want("bounces");
    let device = |kind: &str, names: &[&str]| -> i64 {
        names.iter().map(|n| want(&format!("{kind}_all_{n}"))).sum()
    };
    let expected = [
        ("open", percent(want("opens"), delivered)),
        ("click", percent(want("clicks"), want("opens"))),
        ("did_not_open", percent(want("not_opened"), delivered)),
        ("bounce", percent(want("bounces"), want("sends"))),
        ("unsubscribe", percent(want("optouts"), delivered)),
        (
            "desktop_open",
            percent(device("opens", &["computer"]), want("opens_all")),
        ),
        (
            "mobile_open",
            percent(device("opens", &["mobile", "tablet"]), want("opens_all")),
        ),
        (
            "desktop_click",
            percent(device("clicks", &["computer"]), want("clicks_all")),
        ),
        (
            "mobile_click",
            percent(device("clicks", &["mobile", "tablet"]), want("clicks_all")),
        ),
    ];
    let percents = report["percents"].as_object().expect("percents");
    assert_eq!(percents.len(), expected.len(), "{report:#}");
    for (name, value) in expected {
        assert_eq!(percents[name].as_f64(), Some(value), "percents.{name}");
    }

    // Never sent, and unknown: not_found naming the campaign, as campaign.get.
    for id in [draft.as_str(), "0b2f2a4e-0000-4000-8000-000000000000"] {
        let error = f
            .run("r2", "report.campaign.get", json!({"campaign_id": id}))
            .await
            .unwrap_err();
        let HandleError::Failed(e) = &error else {
            panic!("{error:?}");
        };
        assert_eq!(e.code, "not_found", "{e:?}");
        assert!(e.message.contains(id) && !e.retryable, "{e:?}");
        assert_eq!(e.api_status, Some(404));
    }
    let got = f
        .run(
            "g",
            "campaign.get",
            json!({"campaign_id": "0b2f2a4e-0000-4000-8000-000000000000"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&got, HandleError::Failed(e) if e.code == "not_found"),
        "{got:?}"
    );

    // A bad id is refused before the API is asked, naming the field.
    let bad = Envelope {
        id: "bad".into(),
        command_type: "report.campaign.get".into(),
        account: "default".into(),
        data: json!({"campaign_id": "../stats"})
            .as_object()
            .cloned()
            .unwrap(),
    };
    let rejection = Command::parse(&bad, Utc::now()).unwrap_err();
    assert_eq!(rejection.code, "invalid_data");
    assert_eq!(rejection.fields[0].field, "data.campaign_id");
    f.t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    scheduling_a_campaign_without_recipients_fails_with_the_apis_reason
);
async fn scheduling_a_campaign_without_recipients_fails_with_the_apis_reason(engine: Engine) {
    let f = fixture(engine).await;
    let created = f.new_campaign("No readers", None).await;
    let error = f
        .run(
            "s",
            "campaign.schedule",
            json!({"campaign_id": created["campaign_id"], "scheduled_at": "now"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, HandleError::Rejected(_) | HandleError::Failed(_)),
        "{error:?}"
    );
    f.t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    a_campaign_create_whose_answer_was_lost_finds_its_campaign_by_name
);
async fn a_campaign_create_whose_answer_was_lost_finds_its_campaign_by_name(engine: Engine) {
    let f = fixture(engine).await;
    f.t.sandbox
        .admin()
        .inject_fault(
            ctct_sandbox::FaultSpec::status(503)
                .method("POST")
                .path_prefix("/v3/emails")
                .after_effect()
                .times(1),
        )
        .unwrap();
    let cmd = command(
        "campaign.create",
        json!({"name": "Lost reply", "subject": "s", "from_name": "n", "from_email": f.owner,
               "reply_to_email": f.owner, "html_content": "<html><body>x</body></html>"}),
    );
    f.begin("lost-c").await;
    assert!(matches!(
        f.handler.handle(&attempt("lost-c", 1), &cmd).await,
        Err(HandleError::Transient(_))
    ));
    let second = f
        .handler
        .handle(&attempt("lost-c", 2), &cmd)
        .await
        .expect("found by name");
    assert!(second["campaign_id"].is_string());
    let creates = f
        .effects("lost-c")
        .iter()
        .filter(|k| *k == "campaign.created")
        .count();
    assert_eq!(creates, 1);
    f.t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    a_retried_campaign_create_never_adopts_an_older_campaign_of_the_same_name
);
async fn a_retried_campaign_create_never_adopts_an_older_campaign_of_the_same_name(engine: Engine) {
    // Regression: a retry used to take over any campaign with the command's name.
    let f = fixture(engine).await;
    f.new_campaign("Taken name", None).await;
    // The command arrives ten minutes after that campaign was made.
    f.begin_at("late", Utc::now() + chrono::Duration::minutes(10))
        .await;
    let cmd = command(
        "campaign.create",
        json!({"name": "Taken name", "subject": "s", "from_name": "n", "from_email": f.owner,
               "reply_to_email": f.owner, "html_content": "<html><body>x</body></html>"}),
    );
    let error = f
        .handler
        .handle(&attempt("late", 2), &cmd)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, HandleError::Failed(e) if e.code == "conflict"),
        "{error:?}"
    );
    f.t.stop().await;
}

#[tokio::test]
async fn a_contact_named_by_both_id_and_email_is_rejected() {
    let envelope = Envelope {
        id: "both".into(),
        command_type: "contact.get".into(),
        account: "default".into(),
        data:
            json!({"contact_id": "0b2f2a4e-0000-4000-8000-000000000000", "email": "a@example.com"})
                .as_object()
                .cloned()
                .unwrap(),
    };
    let rejection = Command::parse(&envelope, Utc::now()).unwrap_err();
    assert_eq!(rejection.fields[0].field, "data.email");
}

crate::both_engines!(
    #[tokio::test]
    a_custom_field_list_fetched_before_a_create_is_not_kept_as_fresh
);
async fn a_custom_field_list_fetched_before_a_create_is_not_kept_as_fresh(engine: Engine) {
    // An upsert naming an unknown field refreshes the cache; its answer is held for 2 s.
    // Meanwhile a custom field is created. The list that comes back predates the create and
    // must not be trusted as fresh, or an upsert naming the new field would be rejected for
    // the next 5 s.
    let f = fixture(engine).await;
    f.t.sandbox
        .admin()
        .inject_fault(
            ctct_sandbox::FaultSpec::latency(2_000)
                .method("GET")
                .path_prefix("/v3/contact_custom_fields")
                .after_effect()
                .times(1),
        )
        .unwrap();
    let (unknown, created) = tokio::join!(
        f.run(
            "u1",
            "contact.upsert",
            json!({"email": "ghost@example.com", "custom_fields": {"Ghost": "x"}}),
        ),
        async {
            let admin = f.t.sandbox.admin();
            while admin
                .faults()
                .iter()
                .any(|fault| fault.remaining != Some(0))
            {
                tokio::task::yield_now().await;
            }
            f.ok(
                "c1",
                "custom_field.create",
                json!({"label": "Favourite colour", "type": "string"}),
            )
            .await
        }
    );
    assert!(
        matches!(&unknown, Err(HandleError::Rejected(r)) if r.fields[0].field == "data.custom_fields.Ghost"),
        "{unknown:?}"
    );
    assert!(created["custom_field_id"].is_string());
    let upserted = f
        .ok(
            "u2",
            "contact.upsert",
            json!({"email": "colour@example.com", "custom_fields": {"Favourite colour": "teal"}}),
        )
        .await;
    assert!(upserted["contact_id"].is_string(), "{upserted}");
    f.t.stop().await;
}

crate::both_engines!(
    #[tokio::test]
    concurrent_lookups_of_an_unknown_field_share_one_refresh
);
async fn concurrent_lookups_of_an_unknown_field_share_one_refresh(engine: Engine) {
    let f = fixture(engine).await;
    let before = f.t.sandbox.admin().request_log().len();
    let upsert = |id: &'static str| {
        f.run(
            id,
            "contact.upsert",
            json!({"email": format!("{id}@example.com"), "custom_fields": {"Nope": "x"}}),
        )
    };
    let (a, b, c) = tokio::join!(upsert("n1"), upsert("n2"), upsert("n3"));
    for answer in [a, b, c] {
        assert!(
            matches!(answer, Err(HandleError::Rejected(_))),
            "{answer:?}"
        );
    }
    let listed = f.t.sandbox.admin().request_log()[before..]
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v3/contact_custom_fields"))
        .count();
    assert_eq!(listed, 1, "three unknown names, one list request");
    f.t.stop().await;
}
