//! `ApiClient`: the one way ctct-sync talks to the Constant Contact V3 API.
//!
//! Every call goes through [`AccountApi::send`]: rate permit → access token → request →
//! classify → ask the retry policy → wait, refresh or return. Nothing else in the crate
//! builds API requests, so the budget, the token rules and the retry rules hold everywhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use crate::api::budget::{Priority, RateBudget};
use crate::api::error::{ApiError, parse_error_body};
use crate::api::retry::{Attempt, Decision, Failure, Policy};
use crate::api::tokens::TokenManager;

/// Header carrying the id of the command a request serves, so that the API's (and the
/// sandbox's) request logs can be tied back to commands.
pub const COMMAND_ID_HEADER: &str = "X-Ctct-Command-Id";

/// Characters left as they are in a path segment: letters, digits, `-`, `_`, `.`, `~`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment. `.`, `..` (and their `%2e` forms) stay dot segments
/// under URL parsing whatever the encoding, so callers refuse them first (the endpoints'
/// `path_id`), and commands only carry UUIDs.
pub fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// HTTP settings of the client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub base_url: String,
    /// A whole request, answer included. A streamed download (the export file) has no
    /// total limit: it fails when no byte arrives for this long.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub policy: Policy,
}

impl ClientSettings {
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            policy: Policy::default(),
        }
    }
}

/// Requests sent, by outcome, since start.
#[derive(Debug, Default)]
pub struct ApiCounters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    pub refreshes_after_401: AtomicU64,
    /// Answers by (route template, status); status `0` for no answer (transport failure).
    pub by_route: crate::histogram::CounterFamily,
    /// Latency per route template.
    pub latency: crate::histogram::HistogramFamily,
}

struct Inner {
    http: reqwest::Client,
    timeout: Duration,
    base_url: String,
    origin: url::Url,
    budget: Arc<RateBudget>,
    tokens: TokenManager,
    policy: Policy,
    jitter_state: Mutex<u64>,
    counters: ApiCounters,
}

/// The API client of one API key. Cheap to clone.
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    pub fn new(
        settings: ClientSettings,
        budget: Arc<RateBudget>,
        tokens: TokenManager,
    ) -> Result<Self, ApiError> {
        let origin = url::Url::parse(&settings.base_url)
            .map_err(|e| ApiError::Decode {
                route: "configuration",
                detail: format!("api.base_url is not a URL: {e}"),
            })?
            .join("/")
            .map_err(|e| ApiError::Decode {
                route: "configuration",
                detail: e.to_string(),
            })?;
        let http = reqwest::Client::builder()
            .read_timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ctct-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Transport {
                route: "client",
                maybe_applied: false,
                attempts: 0,
                detail: e.without_url().to_string(),
            })?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                timeout: settings.timeout,
                base_url: settings.base_url,
                origin,
                budget,
                tokens,
                policy: settings.policy,
                jitter_state: Mutex::new(seed),
                counters: ApiCounters::default(),
            }),
        })
    }

    /// Calls made on behalf of `account`, at command priority.
    pub fn account(&self, account: &str) -> AccountApi {
        AccountApi {
            client: self.clone(),
            account: Arc::from(account),
            priority: Priority::Command,
            command_id: None,
            fence: None,
        }
    }

    pub fn budget(&self) -> &Arc<RateBudget> {
        &self.inner.budget
    }

    pub fn tokens(&self) -> &TokenManager {
        &self.inner.tokens
    }

    pub fn counters(&self) -> &ApiCounters {
        &self.inner.counters
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// A number in [0, 1) for jitter (xorshift; no need for a cryptographic source).
    fn jitter(&self) -> f64 {
        let mut state = self
            .inner
            .jitter_state
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A path below the base URL, e.g. `/contacts/{id}` (segments already encoded).
    Path(String),
    /// A `_links` href as the API gave it: a path from the host that already holds `/v3`.
    Href(String),
}

/// One API request, described before it is sent (and possibly sent again).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    /// The route template for logs and errors, e.g. `GET /contacts/{contact_id}`.
    pub route: &'static str,
    pub target: Target,
    pub query: Vec<(String, String)>,
    pub body: Option<Bytes>,
    /// Safe to send twice (GET, PUT, DELETE, or a write guarded by the caller).
    pub repeatable: bool,
    /// The media type asked for (`application/json` unless set).
    pub accept: &'static str,
}

impl Request {
    pub fn get(route: &'static str, path: impl Into<String>) -> Self {
        Self::new(Method::GET, route, path, true)
    }

    pub fn new(
        method: Method,
        route: &'static str,
        path: impl Into<String>,
        repeatable: bool,
    ) -> Self {
        Self {
            method,
            route,
            target: Target::Path(path.into()),
            query: Vec::new(),
            body: None,
            repeatable,
            accept: "application/json",
        }
    }

    pub fn href(route: &'static str, href: &str) -> Self {
        Self {
            method: Method::GET,
            route,
            target: Target::Href(href.to_owned()),
            query: Vec::new(),
            body: None,
            repeatable: true,
            accept: "application/json",
        }
    }

    /// Asks for another media type (the export download is `text/csv`).
    pub fn accept(mut self, media_type: &'static str) -> Self {
        self.accept = media_type;
        self
    }

    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }

    pub fn json<T: serde::Serialize>(mut self, body: &T) -> Result<Self, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Decode {
            route: self.route,
            detail: format!("request body did not encode: {e}"),
        })?;
        self.body = Some(Bytes::from(bytes));
        Ok(self)
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// Asked right before each request that may change something (any method but GET) made for
/// a command: whether this process still holds the command's claim in the ledger (`Ok(false)`:
/// another replica took it over; nothing is sent). See `Store::ledger_fence`.
pub type Fence = Arc<
    dyn Fn() -> futures_util::future::BoxFuture<'static, Result<bool, crate::store::StoreError>>
        + Send
        + Sync,
>;

/// Calls on behalf of one account. Cheap to clone.
#[derive(Clone)]
pub struct AccountApi {
    client: ApiClient,
    account: Arc<str>,
    priority: Priority,
    command_id: Option<Arc<str>>,
    fence: Option<Fence>,
}

impl std::fmt::Debug for AccountApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountApi")
            .field("account", &self.account)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

enum Mode {
    Buffered,
    Streamed,
}

enum Answer {
    Buffered(Response),
    Streamed(reqwest::Response),
}

impl AccountApi {
    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    /// The same account at another priority (the mirror uses [`Priority::Mirror`]).
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Tags requests with the command they serve.
    pub fn for_command(mut self, command_id: &str) -> Self {
        self.command_id = Some(Arc::from(command_id));
        self
    }

    /// Checks `fence` right before each write (after the request's slot in the rate budget
    /// is taken, so a long wait for the slot cannot hide a takeover).
    pub fn with_fence(mut self, fence: Option<Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// Sends `request` and decodes a JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, request: Request) -> Result<T, ApiError> {
        let route = request.route;
        let response = self.send(request).await?;
        serde_json::from_slice(&response.body).map_err(|e| ApiError::Decode {
            route,
            detail: e.to_string(),
        })
    }

    /// Sends `request` and returns the whole answer.
    pub(crate) async fn send(&self, request: Request) -> Result<Response, ApiError> {
        match self.execute(request, Mode::Buffered).await? {
            Answer::Buffered(response) => Ok(response),
            Answer::Streamed(_) => unreachable!("buffered mode never streams"),
        }
    }

    /// Sends `request` and returns the answer with its body still to be read (large
    /// downloads). Retries cover the request up to the headers, not the body.
    pub(crate) async fn stream(&self, request: Request) -> Result<reqwest::Response, ApiError> {
        match self.execute(request, Mode::Streamed).await? {
            Answer::Streamed(response) => Ok(response),
            Answer::Buffered(_) => unreachable!("streamed mode never buffers"),
        }
    }

    fn url(&self, target: &Target) -> Result<url::Url, String> {
        match target {
            Target::Path(path) => url::Url::parse(&format!("{}{path}", self.client.inner.base_url))
                .map_err(|e| e.to_string()),
            Target::Href(href) => {
                let url = self
                    .client
                    .inner
                    .origin
                    .join(href)
                    .map_err(|e| e.to_string())?;
                // A link may only lead back to the API's own host.
                if url.origin() != self.client.inner.origin.origin() {
                    return Err("a _links href pointed to another host".into());
                }
                Ok(url)
            }
        }
    }

    async fn execute(&self, request: Request, mode: Mode) -> Result<Answer, ApiError> {
        let inner = &self.client.inner;
        let route = request.route;
        let url = self
            .url(&request.target)
            .map_err(|detail| ApiError::Decode { route, detail })?;
        let mut attempt = 0u32;
        let mut refreshed = false;
        let mut token = None;
        loop {
            attempt += 1;
            // The token first: a refresh may take a while, and the request must go as soon as
            // the budget gives it its slot.
            let access = match token.take() {
                Some(access) => access,
                None => inner.tokens.access_token(&self.account).await?,
            };
            inner.budget.acquire(self.priority).await?;
            if request.method != Method::GET
                && let Some(fence) = &self.fence
            {
                match fence().await {
                    Ok(true) => {}
                    Ok(false) => return Err(ApiError::ClaimLost { route }),
                    Err(error) => {
                        return Err(ApiError::FenceUnchecked {
                            route,
                            error: Arc::new(error),
                        });
                    }
                }
            }
            let span = tracing::debug_span!(
                "api_call",
                method = %request.method,
                route,
                account = %self.account,
                attempt,
                status = tracing::field::Empty,
            );
            let mut builder = inner
                .http
                .request(request.method.clone(), url.clone())
                .bearer_auth(access.bearer())
                .header(reqwest::header::ACCEPT, request.accept);
            if let Mode::Buffered = mode {
                builder = builder.timeout(inner.timeout);
            }
            if !request.query.is_empty() {
                builder = builder.query(&request.query);
            }
            if let Some(id) = &self.command_id {
                builder = builder.header(COMMAND_ID_HEADER, id.as_ref());
            }
            if let Some(body) = &request.body {
                builder = builder
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            inner.counters.requests.fetch_add(1, Ordering::Relaxed);
            let sent_at = std::time::Instant::now();
            let outcome = async {
                let response = builder.send().await;
                match response {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        tracing::Span::current().record("status", status);
                        if response.status().is_success()
                            && let Mode::Streamed = mode
                        {
                            return Ok(Answer::Streamed(response));
                        }
                        match response.bytes().await {
                            Ok(body) if (200..300).contains(&status) => {
                                Ok(Answer::Buffered(Response { status, body }))
                            }
                            Ok(body) => Err((
                                Failure::Status {
                                    status,
                                    error_key: None,
                                },
                                body,
                                String::new(),
                            )),
                            Err(e) => Err((
                                Failure::Transport {
                                    maybe_applied: true,
                                },
                                Bytes::new(),
                                e.without_url().to_string(),
                            )),
                        }
                    }
                    Err(e) => Err((
                        Failure::Transport {
                            maybe_applied: !e.is_connect(),
                        },
                        Bytes::new(),
                        e.without_url().to_string(),
                    )),
                }
            }
            .instrument(span)
            .await;
            let status = match &outcome {
                Ok(Answer::Buffered(response)) => response.status,
                Ok(Answer::Streamed(response)) => response.status().as_u16(),
                Err((Failure::Status { status, .. }, _, _)) => *status,
                Err((Failure::Transport { .. }, _, _)) => 0,
            };
            inner
                .counters
                .by_route
                .increment(&[route, &status.to_string()]);
            inner.counters.latency.observe(route, sent_at.elapsed());
            let (mut failure, body, detail) = match outcome {
                Ok(answer) => return Ok(answer),
                Err(failed) => failed,
            };
            let errors = parse_error_body(&body);
            if let Failure::Status { error_key, .. } = &mut failure {
                *error_key = errors.iter().find_map(|e| e.error_key.clone());
            }
            let decision = inner.policy.decide(
                &failure,
                Attempt {
                    number: attempt,
                    repeatable: request.repeatable,
                    refreshed,
                    jitter: self.client.jitter(),
                },
            );
            match decision {
                Decision::RetryAfter(wait) => {
                    inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                    if matches!(&failure, Failure::Status { status: 429, .. }) {
                        inner.counters.throttled.fetch_add(1, Ordering::Relaxed);
                        inner.budget.note_throttled();
                    }
                    tracing::warn!(
                        route,
                        attempt,
                        ?failure,
                        wait_ms = wait.as_millis() as u64,
                        "API call failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Decision::RefreshToken => {
                    inner
                        .counters
                        .refreshes_after_401
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(route, account = %self.account, "API answered 401; refreshing the access token once");
                    refreshed = true;
                    token = Some(
                        inner
                            .tokens
                            .after_unauthorized(&self.account, &access)
                            .await?,
                    );
                }
                Decision::QuotaExhausted => {
                    let resets_at = inner.budget.note_quota_exceeded().await?;
                    tracing::warn!(route, %resets_at, "the API key's daily quota is spent; spending nothing until the reset");
                    return Err(ApiError::QuotaExhausted { resets_at });
                }
                Decision::Stop => {
                    return Err(final_error(route, failure, attempt, &errors, detail));
                }
            }
        }
    }
}

fn final_error(
    route: &'static str,
    failure: Failure,
    attempts: u32,
    errors: &[crate::api::error::ApiErrorBody],
    detail: String,
) -> ApiError {
    let message = errors
        .iter()
        .filter_map(|e| e.error_message.as_deref())
        .collect::<Vec<_>>()
        .join("; ");
    match failure {
        Failure::Transport { maybe_applied } => ApiError::Transport {
            route,
            maybe_applied,
            attempts,
            detail,
        },
        Failure::Status { status, error_key } => match status {
            400 => ApiError::Invalid {
                route,
                status,
                error_key,
                message,
            },
            401 => ApiError::Unauthorized { route },
            403 => ApiError::Forbidden {
                route,
                error_key,
                message,
            },
            404 => ApiError::NotFound {
                route,
                error_key,
                message,
            },
            409 => ApiError::Conflict {
                route,
                error_key,
                message,
            },
            429 if matches!(error_key.as_deref(), None | Some("throttled")) => {
                ApiError::Throttled { route, attempts }
            }
            429 => ApiError::TooMany {
                route,
                error_key,
                message,
            },
            500..=599 => ApiError::Server {
                route,
                status,
                attempts,
            },
            _ => ApiError::Status {
                route,
                status,
                error_key,
                message,
            },
        },
    }
}
