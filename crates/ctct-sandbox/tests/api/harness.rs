//! Test harness: a sandbox started in-process on port 0, a reqwest client holding an access
//! token, and request helpers that check every API answer against the OpenAPI spec.

use std::time::Duration;

use ctct_sandbox::{Sandbox, SandboxAdmin, SandboxOptions, start};
use reqwest::Method;
use serde_json::Value;

use super::spec::spec;

pub const ALL_SCOPES: &str =
    "account_read account_update contact_data campaign_data offline_access";

/// A started sandbox plus a client.
pub struct Env {
    pub sandbox: Sandbox,
    pub admin: SandboxAdmin,
    pub http: reqwest::Client,
    pub origin: String,
    pub account: String,
    /// Access token (all scopes) for the primary account.
    pub token: String,
}

/// An answer: status, parsed JSON body (Null when empty or not JSON), raw text, headers.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a reqwest client builds")
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(SandboxOptions::for_tests()).await
    }

    pub async fn start_with(opts: SandboxOptions) -> Env {
        let sandbox = start(opts).await.expect("the sandbox starts");
        let admin = sandbox.admin();
        let account = admin.primary_account();
        let token = admin
            .issue_tokens(&account, ALL_SCOPES)
            .expect("tokens are issued")
            .access_token;
        Env {
            origin: format!("http://{}", sandbox.local_addr()),
            sandbox,
            admin,
            http: client(),
            account,
            token,
        }
    }

    /// `/contacts` → `http://ADDR/v3/contacts`; `/v3/…` and `/oauth2/…` hrefs are used as is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else if path.starts_with("/v3")
            || path.starts_with("/oauth2")
            || path.starts_with("/__sandbox")
        {
            format!("{}{path}", self.origin)
        } else {
            format!("{}/v3{path}", self.origin)
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call_as(&self.token, method, path, body).await
    }

    /// A request with another bearer token; the answer is checked against the spec.
    pub async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut request = self
            .http
            .request(method.clone(), self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the sandbox answers");
        let resp = read(response).await;
        let api_path = self.url(path).replacen(&self.origin, "", 1);
        if api_path.starts_with("/v3") && !resp.body.is_null() {
            spec().assert_response(method.as_str(), &api_path, resp.status, &resp.body);
        }
        resp
    }

    /// A fresh access token with only these scopes.
    pub fn token_with(&self, scopes: &str) -> String {
        self.admin
            .issue_tokens(&self.account, scopes)
            .expect("tokens are issued")
            .access_token
    }

    /// Creates a list; returns its id.
    pub async fn list(&self, name: &str) -> String {
        let r = self
            .post("/contact_lists", serde_json::json!({"name": name}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["list_id"].as_str().expect("list_id").to_owned()
    }

    /// Creates a contact with this e-mail; returns its id.
    pub async fn contact(&self, email: &str) -> String {
        let r = self
            .post(
                "/contacts",
                serde_json::json!({
                    "email_address": {"address": email, "permission_to_send": "implicit"},
                    "first_name": "Test",
                    "create_source": "Account",
                }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["contact_id"]
            .as_str()
            .expect("contact_id")
            .to_owned()
    }
}

pub async fn read(response: reqwest::Response) -> Resp {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("the body is readable");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        body,
        text,
        headers,
    }
}
