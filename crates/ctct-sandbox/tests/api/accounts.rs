//! Accounts and persistence: seeding determinism and realism, sandbox-clock timestamps,
//! several accounts with separate data and logins, the state file across a restart.

use std::time::Duration;

use ctct_sandbox::SandboxOptions;
use reqwest::Method;
use serde_json::json;

use super::harness::{ALL_SCOPES, Env, read};

#[tokio::test]
async fn seeding_is_deterministic_for_a_seed_and_realistic() {
    async fn seeded(seed: u64) -> (Env, ctct_sandbox::AccountSnapshot) {
        let env = Env::start().await;
        env.admin.freeze_clock();
        env.admin
            .set_clock("2026-06-01T00:00:00Z".parse().expect("instant"));
        env.admin.seed(&env.account, 2_000, seed).expect("seeded");
        let snapshot = env.admin.snapshot(&env.account).expect("snapshot");
        (env, snapshot)
    }
    let (_a, first) = seeded(42).await;
    let (b, second) = seeded(42).await;
    assert_eq!(first, second, "same seed, same account");
    let (_c, other) = seeded(43).await;
    assert_ne!(first.contacts, other.contacts);

    let emails: std::collections::HashSet<&str> = first
        .contacts
        .iter()
        .map(|c| c["email_address"]["address"].as_str().expect("email"))
        .collect();
    assert_eq!(emails.len(), 2_000, "unique e-mails");
    assert!((3..=5).contains(&first.custom_fields.len()));
    assert!((3..=5).contains(&first.lists.len()));
    assert!((2..=3).contains(&first.campaigns.len()));
    let deleted = first
        .contacts
        .iter()
        .filter(|c| c.get("deleted_at").is_some())
        .count();
    let unsubscribed = first
        .contacts
        .iter()
        .filter(|c| c["email_address"]["permission_to_send"] == "unsubscribed")
        .count();
    assert!(deleted > 0 && deleted < 200, "{deleted} deleted");
    assert!(
        unsubscribed > 0 && unsubscribed < 200,
        "{unsubscribed} unsubscribed"
    );
    let oldest = first
        .contacts
        .iter()
        .map(|c| c["created_at"].as_str().expect("t"))
        .min()
        .expect("some");
    assert!(oldest < "2024-07-01", "spread over two years: {oldest}");
    assert!(
        first
            .contacts
            .iter()
            .any(|c| !c["custom_fields"].as_array().expect("cf").is_empty())
    );
    let confirmed = b.get("/account/emails?confirm_status=CONFIRMED").await;
    assert_eq!(
        confirmed.body.as_array().expect("emails").len(),
        1,
        "one confirmed owner e-mail"
    );
    // The seeded data is served by the API and passes the spec checks.
    let page = b
        .get("/contacts?limit=500&include=custom_fields,list_memberships&status=all")
        .await;
    assert_eq!(
        page.body["contacts"].as_array().expect("contacts").len(),
        500
    );
    let campaigns = b.get("/emails").await;
    assert_eq!(
        campaigns.body["campaigns"]
            .as_array()
            .expect("campaigns")
            .len(),
        first.campaigns.len()
    );
}

#[tokio::test]
async fn times_follow_the_sandbox_clock() {
    let env = Env::start().await;
    env.admin.freeze_clock();
    env.admin
        .set_clock("2024-02-29T08:30:15Z".parse().expect("instant"));
    let id = env.contact("clock@example.com").await;
    let c = env.get(&format!("/contacts/{id}")).await.body;
    assert_eq!(c["created_at"], "2024-02-29T08:30:15Z");
    env.admin.advance_clock(Duration::from_secs(86_400));
    env.delete(&format!("/contacts/{id}")).await;
    let c = env.get(&format!("/contacts/{id}")).await.body;
    assert_eq!(c["deleted_at"], "2024-03-01");
    assert_eq!(c["updated_at"], "2024-03-01T08:30:15Z");
}

#[tokio::test]
async fn accounts_keep_separate_data_tokens_and_logins() {
    let env = Env::start().await;
    let (other, refresh) = env.admin.add_account();
    assert_ne!(other, env.account);
    let creds = env.sandbox.credentials();
    let r = read(
        env.http
            .post(&creds.token_url)
            .basic_auth(&creds.client_id, Some(&creds.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=refresh_token&refresh_token={refresh}"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.body["access_token"].as_str().expect("access").to_owned();
    env.contact("same@example.com").await;
    let theirs = env.call_as(&token, Method::GET, "/contacts", None).await;
    assert_eq!(
        theirs.body["contacts"],
        json!([]),
        "accounts do not share contacts"
    );
    let create = env
        .call_as(
            &token,
            Method::POST,
            "/contacts",
            Some(json!({"create_source": "Account", "email_address": {"address": "same@example.com"}})),
        )
        .await;
    assert_eq!(create.status, 201, "e-mails are unique per account only");
    let summary = env
        .call_as(&token, Method::GET, "/account/summary", None)
        .await;
    assert_eq!(summary.body["encoded_account_id"], other.as_str());

    let url = format!(
        "{}?client_id={}&redirect_uri=http://127.0.0.1:1/cb&response_type=code&scope=account_read&state=s&login_hint={other}",
        creds.authorize_url, creds.client_id
    );
    let redirect = env.http.get(url).send().await.expect("answers");
    let location = redirect.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let code = url::Url::parse(&location)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("code")
        .1
        .into_owned();
    let r = read(
        env.http
            .post(&creds.token_url)
            .basic_auth(&creds.client_id, Some(&creds.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=authorization_code&code={code}&redirect_uri=http://127.0.0.1:1/cb"
            ))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    let token = r.body["access_token"].as_str().expect("access");
    let summary = env
        .call_as(token, Method::GET, "/account/summary", None)
        .await;
    assert_eq!(
        summary.body["encoded_account_id"],
        other.as_str(),
        "login_hint picks the account"
    );
    assert_eq!(env.admin.account_ids(), vec![env.account.clone(), other]);
}

#[tokio::test]
async fn the_state_file_keeps_data_and_tokens_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sandbox.json");
    let opts = SandboxOptions {
        state_file: Some(path.clone()),
        seed_contacts: 20,
        ..SandboxOptions::for_tests()
    };
    let env = Env::start_with(opts.clone()).await;
    let id = env.contact("kept@example.com").await;
    let tokens = env
        .admin
        .issue_tokens(&env.account, ALL_SCOPES)
        .expect("tokens");
    let client_id = env.sandbox.credentials().client_id.clone();
    env.admin.save_state().expect("saved on request");
    let Env { sandbox, .. } = env;
    sandbox.shutdown().await;
    assert!(path.exists());

    let env = Env::start_with(SandboxOptions {
        seed_contacts: 0,
        ..opts
    })
    .await;
    assert_eq!(env.sandbox.credentials().client_id, client_id);
    let r = env
        .call_as(
            &tokens.access_token,
            Method::GET,
            &format!("/contacts/{id}"),
            None,
        )
        .await;
    assert_eq!(
        r.status, 200,
        "stored access tokens keep working: {}",
        r.text
    );
    assert_eq!(
        env.admin.contact_count(&env.account, true).expect("count"),
        21
    );
    let creds = env.sandbox.credentials();
    let r = read(
        env.http
            .post(&creds.token_url)
            .basic_auth(&creds.client_id, Some(&creds.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=refresh_token&refresh_token={}",
                tokens.refresh_token.expect("refresh")
            ))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "stored refresh tokens keep working: {}",
        r.text
    );
    let text = std::fs::read_to_string(&path).expect("readable");
    assert!(
        !text.contains(&tokens.access_token),
        "tokens are stored hashed"
    );
    env.sandbox.shutdown().await;
}
