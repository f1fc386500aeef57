//! Talking to the token endpoint: the oauth2 client, the HTTP adapter that tells 429 and
//! 5xx apart from OAuth error bodies, and the classification of every answer. Never formats a
//! token or a raw token response.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthUrl, ClientId, ClientSecret, RefreshToken, RequestTokenError, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::config::OAuthConfig;
use super::error::AuthError;
use crate::clock::Clock;
use crate::store::tokens::NewTokens;

/// What one token request produced.
pub(crate) enum Exchange {
    Tokens(NewTokens),
    /// `invalid_grant`: the refresh token (or code) is dead.
    InvalidGrant(String),
    InvalidClient(String),
    /// Refused for another reason; repeating will not help.
    Refused(String),
    /// No usable answer; the server may or may not have acted.
    Ambiguous(String),
    /// Rejected before acting (429, connection refused): safe to repeat after a pause.
    Retry(String),
}

/// The token endpoint: the application's settings, the HTTP client for token requests, the
/// one-request-per-second pacer and the count of requests this process sent.
pub(crate) struct TokenEndpoint {
    pub config: OAuthConfig,
    pub(super) http: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// The token endpoint allows one request per second.
    pacer: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    requests: AtomicU64,
}

impl TokenEndpoint {
    pub(crate) fn new(config: OAuthConfig, clock: Arc<dyn Clock>) -> Result<Self, AuthError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| AuthError::Unavailable {
                detail: e.without_url().to_string(),
            })?;
        Ok(Self {
            config,
            http,
            clock,
            pacer: tokio::sync::Mutex::new(None),
            requests: AtomicU64::new(0),
        })
    }

    /// Token requests sent (refreshes, code and device exchanges).
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn oauth_client(
        &self,
    ) -> Result<
        BasicClient<
            oauth2::EndpointSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointSet,
        >,
        AuthError,
    > {
        let config = &self.config;
        let bad = |key: &str, e: url::ParseError| AuthError::Refused {
            detail: format!("{key} is not a URL: {e}"),
        };
        Ok(BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                config.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(
                AuthUrl::new(config.authorize_url.clone())
                    .map_err(|e| bad("oauth.authorize_url", e))?,
            )
            .set_token_uri(
                TokenUrl::new(config.token_url.clone()).map_err(|e| bad("oauth.token_url", e))?,
            ))
    }

    /// The HTTP client for the oauth2 crate: each call owns its clone of the reqwest client,
    /// so the futures are `'static` and `Send`.
    pub(crate) fn token_http(
        &self,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<oauth2::HttpResponse, TokenHttpError>> + Send>,
    > + Send
    + Sync
    + 'static {
        let http = self.http.clone();
        move |request| {
            let http = TokenHttp(http.clone());
            Box::pin(async move { http.call(request).await })
        }
    }

    /// Waits for the token endpoint's one-request-per-second allowance and counts the call.
    pub(crate) async fn pace_token_request(&self) {
        let mut last = self.pacer.lock().await;
        if let Some(at) = *last {
            tokio::time::sleep_until(at + Duration::from_secs(1)).await;
        }
        *last = Some(tokio::time::Instant::now());
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) async fn exchange_refresh(&self, refresh_token: &SecretString) -> Exchange {
        let client = match self.oauth_client() {
            Ok(client) => client,
            Err(error) => return Exchange::Refused(error.to_string()),
        };
        self.pace_token_request().await;
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let result = client
            .exchange_refresh_token(&token)
            .request_async(&self.token_http())
            .await;
        self.classify(result, Some(refresh_token))
    }

    /// Turns a token endpoint answer into an [`Exchange`]. Never formats a token.
    pub(crate) fn classify(
        &self,
        result: Result<
            BasicTokenResponse,
            RequestTokenError<TokenHttpError, oauth2::basic::BasicErrorResponse>,
        >,
        presented_refresh: Option<&SecretString>,
    ) -> Exchange {
        match result {
            Ok(response) => Exchange::Tokens(self.new_tokens(&response, presented_refresh)),
            Err(RequestTokenError::ServerResponse(error)) => {
                let detail = match error.error_description() {
                    Some(description) => format!("{}: {description}", error.error()),
                    None => error.error().to_string(),
                };
                match error.error() {
                    BasicErrorResponseType::InvalidGrant => Exchange::InvalidGrant(detail),
                    BasicErrorResponseType::InvalidClient
                    | BasicErrorResponseType::UnauthorizedClient => Exchange::InvalidClient(detail),
                    BasicErrorResponseType::Extension(kind) if kind == "slow_down" => {
                        Exchange::Retry(detail)
                    }
                    _ => Exchange::Refused(detail),
                }
            }
            Err(RequestTokenError::Request(TokenHttpError::Status(429))) => {
                Exchange::Retry("token endpoint answered HTTP 429".into())
            }
            Err(RequestTokenError::Request(TokenHttpError::Connect(detail))) => {
                Exchange::Retry(detail)
            }
            Err(RequestTokenError::Request(error)) => Exchange::Ambiguous(error.to_string()),
            // The body is never shown: it may hold tokens.
            Err(RequestTokenError::Parse(error, body)) => Exchange::Ambiguous(format!(
                "unreadable token response ({} bytes) at {}",
                body.len(),
                error.path()
            )),
            Err(RequestTokenError::Other(detail)) => Exchange::Ambiguous(detail),
        }
    }

    pub(super) fn new_tokens(
        &self,
        response: &BasicTokenResponse,
        presented_refresh: Option<&SecretString>,
    ) -> NewTokens {
        let access = response.access_token().secret().clone();
        let now = self.clock.now();
        let expires_at = jwt_expiry(&access)
            .or_else(|| {
                response.expires_in().map(|d| {
                    let secs = d.as_secs();
                    // Constant Contact's spec calls expires_in an epoch; Okta sends seconds.
                    if secs >= 1_000_000_000 {
                        DateTime::from_timestamp(secs as i64, 0).unwrap_or(now)
                    } else {
                        now + chrono::Duration::seconds(secs as i64)
                    }
                })
            })
            .unwrap_or(now + chrono::Duration::hours(1));
        let scopes = response
            .scopes()
            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        NewTokens {
            access_token: SecretString::from(access),
            refresh_token: response
                .refresh_token()
                .map(|t| SecretString::from(t.secret().clone()))
                .or_else(|| presented_refresh.cloned()),
            access_expires_at: expires_at,
            scopes,
        }
    }
}

/// The `exp` claim of a JWT-shaped access token, without verifying it.
pub fn jwt_expiry(token: &str) -> Option<DateTime<Utc>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    DateTime::from_timestamp(claims.get("exp")?.as_i64()?, 0)
}

/// Why a token request got no usable HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum TokenHttpError {
    #[error("token endpoint answered HTTP {0}")]
    Status(u16),
    #[error("token endpoint unreachable: {0}")]
    Connect(String),
    #[error("token request failed: {0}")]
    Transport(String),
}

/// The HTTP client handed to the oauth2 crate: reqwest without redirects, turning 429 and
/// 5xx answers into errors so they are told apart from OAuth error bodies.
pub(crate) struct TokenHttp(pub reqwest::Client);

impl TokenHttp {
    pub(crate) async fn call(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, TokenHttpError> {
        let request: reqwest::Request = request
            .try_into()
            .map_err(|e: reqwest::Error| TokenHttpError::Transport(e.without_url().to_string()))?;
        let response = self.0.execute(request).await.map_err(|e| {
            if e.is_connect() {
                TokenHttpError::Connect(e.without_url().to_string())
            } else {
                TokenHttpError::Transport(e.without_url().to_string())
            }
        })?;
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(TokenHttpError::Status(status.as_u16()));
        }
        let mut builder = oauth2::http::Response::builder().status(status.as_u16());
        for (name, value) in response.headers() {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| TokenHttpError::Transport(e.without_url().to_string()))?;
        builder
            .body(body.to_vec())
            .map_err(|e| TokenHttpError::Transport(e.to_string()))
    }
}
