//! The admin surface: every HTTP admin route on loopback with the run's admin token (and
//! nothing without it, from a foreign origin or under a foreign Host), reset, a request log
//! free of secrets, the loopback-only listen rule and the command-line arguments.

use ctct_sandbox::{FaultKind, FaultSpec, SandboxOptions};
use reqwest::Method;
use serde_json::{Value, json};

use super::harness::{Env, read};

pub(super) async fn admin_call(
    env: &Env,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = env
        .http
        .request(method, format!("{}/__sandbox{path}", env.origin))
        .bearer_auth(&env.sandbox.credentials().admin_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = read(request.send().await.expect("admin answers")).await;
    (r.status, r.body)
}

#[tokio::test]
async fn every_admin_route_answers_a_loopback_client() {
    let env = Env::start().await;
    let (status, body) = admin_call(
        &env,
        Method::POST,
        "/faults",
        Some(json!({"kind": "status", "status": 503, "count": 1, "path_prefix": "/v3/emails"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, faults) = admin_call(&env, Method::GET, "/faults", None).await;
    assert_eq!(faults["faults"][0]["kind"], "status");
    assert_eq!(faults["faults"][0]["remaining"], 1);
    assert_eq!(env.get("/emails").await.status, 503);
    assert_eq!(
        admin_call(&env, Method::POST, "/faults", Some(json!({"kind": "nope"})))
            .await
            .0,
        400
    );
    admin_call(
        &env,
        Method::POST,
        "/faults",
        Some(json!({"kind": "throttled", "ratio": 1.0})),
    )
    .await;
    assert_eq!(
        admin_call(&env, Method::DELETE, "/faults", None).await.0,
        204
    );
    assert!(env.admin.faults().is_empty());

    let (_, log) = admin_call(&env, Method::GET, "/requests?since=0&limit=10", None).await;
    assert_eq!(log["requests"][0]["path"], "/v3/emails");
    assert_eq!(log["requests"][0]["status"], 503);
    let (_, log) = admin_call(&env, Method::GET, "/requests?since=1", None).await;
    assert_eq!(log["requests"], json!([]));
    assert_eq!(
        admin_call(&env, Method::DELETE, "/requests", None).await.0,
        204
    );

    let (status, seeded) = admin_call(
        &env,
        Method::POST,
        "/seed",
        Some(json!({"contacts": 50, "seed": 3})),
    )
    .await;
    assert_eq!(status, 200, "{seeded}");
    assert_eq!(seeded["contacts"], 50);
    let (_, summary) = admin_call(&env, Method::GET, "/state", None).await;
    assert_eq!(summary["accounts"][0]["contacts"], 50);
    let (_, full) = admin_call(&env, Method::GET, "/state?full=true", None).await;
    assert_eq!(full["contacts"].as_array().expect("contacts").len(), 50);

    let (_, clock) = admin_call(
        &env,
        Method::POST,
        "/clock",
        Some(json!({"freeze": true, "set": "2024-05-01T12:00:00Z"})),
    )
    .await;
    assert_eq!(clock["now"], "2024-05-01T12:00:00Z");
    assert_eq!(clock["frozen"], true);
    let (_, clock) = admin_call(
        &env,
        Method::POST,
        "/clock",
        Some(json!({"advance_secs": 90})),
    )
    .await;
    assert_eq!(clock["now"], "2024-05-01T12:01:30Z");
    assert_eq!(
        admin_call(
            &env,
            Method::POST,
            "/clock",
            Some(json!({"advance_secs": 1e30}))
        )
        .await
        .0,
        400
    );
    let (_, clock) = admin_call(&env, Method::POST, "/clock", Some(json!({"new_day": true}))).await;
    assert_eq!(clock["now"], "2024-05-02T00:00:00Z");
    assert_eq!(
        admin_call(&env, Method::GET, "/clock", None).await.1["now"],
        "2024-05-02T00:00:00Z"
    );

    let (status, account) = admin_call(&env, Method::POST, "/accounts", None).await;
    assert_eq!(status, 201);
    let other = account["account_id"].as_str().expect("id").to_owned();
    assert!(account["refresh_token"].is_string());
    let (_, fresh) = admin_call(
        &env,
        Method::POST,
        &format!("/accounts/{other}/refresh_token"),
        None,
    )
    .await;
    assert!(fresh["refresh_token"].is_string());
    let (_, tokens) = admin_call(
        &env,
        Method::POST,
        &format!("/accounts/{other}/tokens"),
        Some(json!({"scope": "contact_data"})),
    )
    .await;
    let token = tokens["access_token"].as_str().expect("access").to_owned();
    assert!(tokens["refresh_token"].is_null(), "no offline_access asked");
    assert_eq!(
        env.call_as(&token, Method::GET, "/contacts", None)
            .await
            .status,
        200
    );
    let (_, revoked) = admin_call(
        &env,
        Method::POST,
        &format!("/accounts/{other}/revoke"),
        None,
    )
    .await;
    assert_eq!(revoked["revoked_families"], 3);
    assert_eq!(
        env.call_as(&token, Method::GET, "/contacts", None)
            .await
            .status,
        401
    );
    assert_eq!(
        admin_call(&env, Method::POST, "/accounts/nobody/revoke", None)
            .await
            .0,
        404
    );

    env.post("/activities/contact_exports", json!({})).await;
    assert_eq!(
        admin_call(&env, Method::POST, "/activities/complete", None)
            .await
            .0,
        200
    );
    assert_eq!(env.admin.summary().accounts[0].queued_activities, 0);
    assert_eq!(
        admin_call(
            &env,
            Method::POST,
            "/activities/rate",
            Some(json!({"rows_per_sec": 5}))
        )
        .await
        .0,
        200
    );

    env.post(
        "/account/emails",
        json!({"email_address": "new@acme.example"}),
    )
    .await;
    let (status, _) = admin_call(
        &env,
        Method::POST,
        "/account_emails/confirm",
        Some(json!({"email_address": "new@acme.example"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        env.get("/account/emails?email_address=new@acme.example")
            .await
            .body[0]["confirm_status"],
        "CONFIRMED"
    );

    let (_, limits) = admin_call(
        &env,
        Method::POST,
        "/limits",
        Some(json!({"mode": "real", "per_second": 100, "per_day": 5})),
    )
    .await;
    assert_eq!(limits["limits"]["mode"], "real");
    assert_eq!(
        admin_call(&env, Method::GET, "/limits", None).await.1["limits"]["per_day"],
        5
    );

    let (_, effects) = admin_call(
        &env,
        Method::GET,
        "/effects?kind=account_email.created",
        None,
    )
    .await;
    assert_eq!(effects["effects"].as_array().expect("effects").len(), 1);
    assert_eq!(
        admin_call(&env, Method::POST, "/state/save", None).await.0,
        400,
        "no state file configured"
    );
    assert_eq!(
        admin_call(&env, Method::DELETE, "/state", None).await.0,
        204
    );
    assert_eq!(
        env.admin.summary().accounts[0].contacts,
        0,
        "reset to the start state"
    );
    assert!(env.admin.effects().is_empty());
}

#[tokio::test]
async fn the_admin_api_wants_the_run_s_token_a_loopback_host_and_no_foreign_origin() {
    let env = Env::start().await;
    let token = env.sandbox.credentials().admin_token.clone();
    assert!(token.len() >= 32, "a long random token");
    let other = super::harness::Env::start().await;
    assert_ne!(
        token,
        other.sandbox.credentials().admin_token,
        "a new token every run"
    );
    let url = format!("{}/__sandbox/faults", env.origin);
    let fault = r#"{"kind":"status","status":503,"path_prefix":"/v3/emails"}"#;
    let post = |request: reqwest::RequestBuilder| async move {
        request
            .header("content-type", "text/plain")
            .body(fault)
            .send()
            .await
            .expect("answers")
            .status()
            .as_u16()
    };
    // Any local process (or a web page's cross-origin text/plain POST) without the token.
    assert_eq!(post(env.http.post(&url)).await, 401);
    assert_eq!(
        post(env.http.post(&url).bearer_auth("not-the-token")).await,
        401
    );
    assert_eq!(
        post(
            env.http
                .post(&url)
                .bearer_auth(&other.sandbox.credentials().admin_token)
        )
        .await,
        401
    );
    let get = env.http.get(&url).send().await.expect("answers");
    assert_eq!(get.status(), 401);
    assert!(get.headers().contains_key("www-authenticate"));
    // A foreign Origin is refused even with the token.
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let status = post(
            env.http
                .post(&url)
                .bearer_auth(&token)
                .header("origin", origin),
        )
        .await;
        assert_eq!(status, 403, "Origin {origin}");
    }
    // DNS rebinding: a name that resolved to 127.0.0.1 still names itself in Host.
    for host in ["evil.example", "evil.example:8080", "10.0.0.1"] {
        let status = post(env.http.post(&url).bearer_auth(&token).header("host", host)).await;
        assert_eq!(status, 403, "Host {host}");
    }
    assert!(env.admin.faults().is_empty(), "nothing refused took effect");
    // The token, from its own origin or none, and loopback Host names: accepted.
    assert_eq!(post(env.http.post(&url).bearer_auth(&token)).await, 201);
    assert_eq!(
        post(
            env.http
                .post(&url)
                .bearer_auth(&token)
                .header("origin", &env.origin)
        )
        .await,
        201
    );
    let port = env.sandbox.local_addr().port();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let status = post(
            env.http
                .post(&url)
                .bearer_auth(&token)
                .header("host", &host),
        )
        .await;
        assert_eq!(status, 201, "Host {host}");
    }
    assert_eq!(env.admin.faults().len(), 4);
}

#[tokio::test]
async fn the_request_log_never_holds_tokens_codes_or_secrets() {
    let env = Env::start().await;
    let creds = env.sandbox.credentials().clone();
    env.get("/contacts?limit=3").await;
    let url = format!(
        "{}?grant_type=refresh_token&refresh_token={}&client_id={}&client_secret={}",
        creds.token_url, creds.refresh_token, creds.client_id, creds.client_secret
    );
    let r = env.http.post(url).send().await.expect("answers");
    assert_eq!(r.status(), 200);
    let entries = env.admin.request_log();
    let token_entry = entries.last().expect("the token request is logged");
    assert_eq!(
        token_entry.client_id.as_deref(),
        Some(creds.client_id.as_str())
    );
    assert_eq!(token_entry.status, 200);
    let log = serde_json::to_string(&entries).expect("json");
    for secret in [
        &env.token,
        &creds.refresh_token,
        &creds.client_secret,
        &creds.admin_token,
    ] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret leaked into the request log"
        );
    }
    assert!(log.contains("/v3/contacts?limit=3"));
    assert!(format!("{creds:?}").contains("[redacted]"));
    let debug = format!("{:?} {:?}", env.sandbox, env.admin);
    assert!(
        !debug.contains(&creds.client_secret),
        "Debug of the handles hides the secret"
    );
    assert!(!format!("{creds:?}").contains(&creds.client_secret));
    assert!(!format!("{creds:?}").contains(&creds.admin_token));
    assert!(!debug.contains(&creds.admin_token));
    let json = serde_json::to_value(&creds).expect("credentials serialise");
    for key in [
        "base_url",
        "authorize_url",
        "token_url",
        "device_authorize_url",
        "revoke_url",
        "client_id",
        "client_secret",
        "refresh_token",
        "admin_url",
        "admin_token",
    ] {
        assert!(json[key].is_string(), "{key}");
    }
    assert!(json["base_url"].as_str().expect("url").ends_with("/v3"));
    assert!(
        json["admin_url"]
            .as_str()
            .expect("url")
            .ends_with("/__sandbox")
    );
}

#[tokio::test]
async fn a_non_loopback_listen_address_needs_public() {
    let refused = ctct_sandbox::start(SandboxOptions {
        listen: "0.0.0.0:0".parse().expect("addr"),
        ..SandboxOptions::for_tests()
    })
    .await;
    assert!(matches!(
        refused,
        Err(ctct_sandbox::SandboxError::NotLoopback(_))
    ));
    let allowed = ctct_sandbox::start(SandboxOptions {
        listen: "0.0.0.0:0".parse().expect("addr"),
        public: true,
        ..SandboxOptions::for_tests()
    })
    .await
    .expect("--public allows it");
    allowed.shutdown().await;
    let spec = FaultSpec::latency(5);
    assert_eq!(spec.kind, FaultKind::Latency { ms: 5 });
}

#[test]
fn the_command_line_arguments_map_onto_options() {
    use clap::Parser;
    use ctct_sandbox::LimitsMode;
    use ctct_sandbox::cli::SandboxArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SandboxArgs,
    }
    let cli = Cli::parse_from([
        "sandbox",
        "--listen",
        "127.0.0.1:9999",
        "--seed-contacts",
        "5",
        "--seed",
        "9",
        "--limits",
        "off",
        "--state",
        "/tmp/x.json",
    ]);
    let opts = SandboxOptions::from(&cli.args);
    assert_eq!(opts.listen.port(), 9999);
    assert_eq!((opts.seed_contacts, opts.seed), (5, 9));
    assert_eq!(opts.limits, LimitsMode::Off);
    assert_eq!(
        opts.state_file.as_deref(),
        Some(std::path::Path::new("/tmp/x.json"))
    );
    let defaults = Cli::parse_from(["sandbox"]);
    let opts = SandboxOptions::from(&defaults.args);
    assert_eq!(opts.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        (opts.limits, opts.per_second, opts.per_day),
        (LimitsMode::Real, 4, 10_000)
    );
    assert!(!opts.public);
    assert!(Cli::try_parse_from(["sandbox", "--limits", "sometimes"]).is_err());
}
